//! The container image, built and run for real with podman
//! (`scripts/container.sh` keeps podman's configuration and image store
//! under target/podman): the Dockerfile's runtime stage is built around the
//! binary this test build made (`BINARY_STAGE=prebuilt`) on the Debian base
//! that `scripts/container.sh base` makes with debootstrap (there is no
//! registry), then
//!
//! - run non-root with a read-only root filesystem against the host's
//!   RabbitMQ and S3 test server (`--network host`): it runs a job, answers
//!   its image's health check, has written nothing inside the container,
//!   and drains and exits 0 when stopped;
//! - run as the worker Deployment of `deploy/kubernetes/cpu.yaml` with
//!   `podman kube play` (its ConfigMap and Secret given as podman takes
//!   them, pointed at the host's services): it runs a job.
//!
//! scripts/test.sh installs podman, runc, catatonit and debootstrap and
//! makes the base image while the tests build.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::broker::{depth, free_port, http_get, job_for, prepare, publish, results, vhost};
use common::{block, png_bytes, s3_storage, s3_vars, test_image};
use imgworker::storage::Storage;
use serde::Deserialize;
use serde_json::{json, Value};

const IMAGE: &str = "localhost/imgworker:test";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scripts/container.sh ARGS`, its output; fails the test (with the
/// output) unless it succeeded.
fn container_sh(args: &[&str]) -> Output {
    let out = Command::new(root().join("scripts/container.sh"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("scripts/container.sh: {e}"));
    assert!(
        out.status.success(),
        "scripts/container.sh {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// podman with the checkout's configuration; fails unless it succeeded.
fn podman(args: &[&str]) -> String {
    let mut all = vec!["podman"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&container_sh(&all).stdout).into_owned()
}

/// A container's log (the worker logs to stderr, which `podman logs`
/// replays on its own stderr).
fn podman_logs(name: &str) -> String {
    let out = podman_status(&["logs", name]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// podman, whatever its exit status.
fn podman_status(args: &[&str]) -> Output {
    Command::new(root().join("scripts/container.sh"))
        .arg("podman")
        .args(args)
        .output()
        .unwrap()
}

/// The image, built once per test run: the Dockerfile's runtime stage
/// around this build's binary, on the debootstrapped base.
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    BUILT.get_or_init(|| {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman is not installed: run scripts/test.sh (as root), which installs podman, runc, catatonit and debootstrap"
        );
        // Made by the test command while the tests build; made here otherwise.
        container_sh(&["base"]);
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_imgworker"), ctx.path().join("imgworker")).unwrap();
        let dockerfile = root().join("deploy/Dockerfile");
        let started = Instant::now();
        podman(&[
            "build",
            "--format",
            "docker",
            "--pull=never",
            "--network",
            "host",
            "--target",
            "runtime",
            "--build-arg",
            "BINARY_STAGE=prebuilt",
            "--build-arg",
            "PREBUILT_BINARY=imgworker",
            "--build-arg",
            "RUNTIME_IMAGE=localhost/debian:bookworm-slim",
            "-f",
            dockerfile.to_str().unwrap(),
            "-t",
            IMAGE,
            ctx.path().to_str().unwrap(),
        ]);
        eprintln!(
            "built {IMAGE} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    });
    IMAGE
}

/// Removes a container or a kube play's pods when the test ends, passed
/// or not.
enum Cleanup {
    Container(String),
    Kube(PathBuf),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Container(name) => {
                let _ = podman_status(&["rm", "-f", "-t", "0", name]);
            }
            Cleanup::Kube(yaml) => {
                let _ = podman_status(&["kube", "down", yaml.to_str().unwrap()]);
            }
        }
    }
}

/// A bucket on the S3 test server with a source image at `t/img`.
fn bucket_with_source(bucket: &str) -> std::sync::Arc<imgworker::storage::S3Storage> {
    let s3 = s3_storage(bucket, "");
    block(s3.put(
        "t/img/original.png",
        &png_bytes(&test_image(64, 48, 3, false)),
    ))
    .unwrap();
    s3
}

/// Wait until `n` results are in `url`'s results queue.
fn wait_results(url: &str, n: u64, timeout: Duration, logs: &dyn Fn() -> String) {
    let end = Instant::now() + timeout;
    while block(depth(url, "test.results")) < Some(n) {
        assert!(
            Instant::now() < end,
            "no result within {timeout:?}; the container's log:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Wait until the worker on `port` says it is ready.
fn wait_ready(port: u16, timeout: Duration, logs: &dyn Fn() -> String) {
    let end = Instant::now() + timeout;
    loop {
        if matches!(http_get(port, "/readyz"), Ok((200, _))) {
            return;
        }
        assert!(
            Instant::now() < end,
            "the container's worker was not ready within {timeout:?}; its log:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Publish job `id` (`ops` on `t/img`, writing version `v1`) to `url`, wait
/// for its one result, check that it succeeded, and return the version as
/// stored in `s3`, decoded.
fn run_job(
    url: &str,
    s3: &imgworker::storage::S3Storage,
    id: &str,
    ops: Value,
    logs: &dyn Fn() -> String,
) -> image::RgbaImage {
    block(publish(url, &[job_for("t/img", id, "v1", ops)], None));
    wait_results(url, 1, Duration::from_secs(60), logs);
    let got: Vec<Value> = block(results(url));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["id"], id, "{got:?}");
    assert_eq!(got[0]["status"], "succeeded", "{got:?}");
    let stored = block(s3.get("t/img/v1.png", 1 << 20)).unwrap();
    image::load_from_memory(&stored).unwrap().into_rgba8()
}

#[test]
fn the_image_runs_a_job_non_root_read_only_and_answers_its_health_check() {
    let image = image();
    let url = vhost("container");
    block(prepare(&url, 5));
    let s3 = bucket_with_source("container-run");
    let port = free_port();
    let name = format!("imgworker-test-{}", std::process::id());
    let _cleanup = Cleanup::Container(name.clone());
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        &name,
        "--user",
        "65532:65532",
        "--read-only",
        // No writable /tmp, /var/tmp or /run either (podman mounts them
        // by default with --read-only): the worker needs none.
        "--read-only-tmpfs=false",
        "--network",
        "host",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut env: Vec<(String, String)> = vec![
        ("IMGWORKER_AMQP_URL".into(), url.clone()),
        ("IMGWORKER_STORAGE".into(), "s3://container-run".into()),
        ("IMGWORKER_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
        ("IMGWORKER_BACKEND".into(), "cpu".into()),
        ("IMGWORKER_GRACE_SECS".into(), "10".into()),
    ];
    env.extend(s3_vars().into_iter().map(|(k, v)| (k.to_string(), v)));
    for (k, v) in &env {
        args.push("-e".into());
        args.push(format!("{k}={v}"));
    }
    args.push(image.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    podman(&args);
    let logs = || podman_logs(&name);
    wait_ready(port, Duration::from_secs(60), &logs);

    // The image's health check (`imgworker health` against the worker's
    // endpoint), run by podman as the orchestrator would.
    let health = podman_status(&["healthcheck", "run", &name]);
    assert!(
        health.status.success(),
        "the health check failed: {}{}",
        String::from_utf8_lossy(&health.stdout),
        String::from_utf8_lossy(&health.stderr)
    );
    assert_eq!(
        podman(&["inspect", "--format", "{{.State.Health.Status}}", &name]).trim(),
        "healthy"
    );
    // Non-root, and the root filesystem cannot be written.
    assert_eq!(podman(&["exec", &name, "id", "-u"]).trim(), "65532");
    for path in ["/tmp/x", "/x"] {
        let write = podman_status(&["exec", &name, "touch", path]);
        assert!(!write.status.success(), "{path} is writable");
    }

    let flip = json!([{"op": "flip", "axis": "horizontal"}]);
    let img = run_job(&url, &s3, "in-container", flip, &logs);
    assert_eq!(img.dimensions(), (64, 48));
    assert!(block(s3.get("t/img/v1.json", 1 << 20)).is_ok());
    assert_eq!(block(depth(&url, "imgworker.jobs")), Some(0));

    // Nothing was written inside the container: no pixels, no temp files.
    let diff = podman(&["diff", &name]);
    assert!(
        diff.trim().is_empty(),
        "the container wrote into its filesystem:\n{diff}"
    );
    let log = logs();
    assert!(log.contains("consuming"), "{log}");

    // SIGTERM drains and exits 0, as a pod's termination does.
    podman(&["stop", "-t", "30", &name]);
    assert_eq!(
        podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]).trim(),
        "0",
        "the worker did not exit cleanly; its log:\n{}",
        logs()
    );
    let log = logs();
    assert!(log.contains("draining"), "{log}");
}

/// The Deployment named `name` in a multi-document YAML file.
fn deployment(path: &Path, name: &str) -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let found = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).unwrap())
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name);
    found.unwrap_or_else(|| panic!("no Deployment {name} in {}", path.display()))
}

#[test]
fn podman_kube_play_runs_the_worker_deployment() {
    let image = image();
    let url = vhost("kube");
    block(prepare(&url, 5));
    let s3 = bucket_with_source("container-kube");
    let port = free_port();
    let k8s = root().join("deploy/kubernetes");

    // The Deployment as shipped, with the image built above.
    let mut dep = deployment(&k8s.join("cpu.yaml"), "imgworker-cpu");
    let containers = &mut dep["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_sequence().unwrap().len(), 1);
    containers[0]["image"] = image.into();
    // podman 4.3 maps a declared containerPort to the host, which it
    // refuses on the host's network; the pod shares the host's network
    // here, so the health endpoints are on a free port of the host instead
    // (the ConfigMap below).
    containers[0]
        .as_mapping_mut()
        .unwrap()
        .remove("ports")
        .expect("the container declares its port");

    // The ConfigMap as shipped, pointed at the host's services: the S3 test
    // server over plain HTTP (so TLS is not required) and a free port for
    // the health endpoints.
    let cm_text = std::fs::read_to_string(k8s.join("configmap.yaml")).unwrap();
    let mut cm: serde_yaml_ng::Value = serde_yaml_ng::from_str(&cm_text).unwrap();
    let data = &mut cm["data"];
    data["IMGWORKER_STORAGE"] = "s3://container-kube".into();
    data["IMGWORKER_REQUIRE_TLS"] = "false".into();
    data["IMGWORKER_HTTP_ADDR"] = format!("127.0.0.1:{port}").into();
    for (k, v) in s3_vars() {
        if !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET") {
            data[k] = v.into();
        }
    }

    // The Secret's keys, as podman keeps a Kubernetes Secret: a JSON object
    // of base64 values, looked up by `secretKeyRef`.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secret = json!({
        "amqp-url": b64(&url),
        "aws-access-key-id": b64("test"),
        "aws-secret-access-key": b64("test"),
    });

    let dir = tempfile::tempdir().unwrap();
    let dep_file = dir.path().join("deployment.yaml");
    let cm_file = dir.path().join("configmap.yaml");
    let secret_file = dir.path().join("secret.json");
    std::fs::write(&dep_file, serde_yaml_ng::to_string(&dep).unwrap()).unwrap();
    std::fs::write(&cm_file, serde_yaml_ng::to_string(&cm).unwrap()).unwrap();
    std::fs::write(&secret_file, secret.to_string()).unwrap();
    let _ = podman_status(&["secret", "rm", "imgworker"]);
    podman(&[
        "secret",
        "create",
        "imgworker",
        secret_file.to_str().unwrap(),
    ]);
    let _cleanup = Cleanup::Kube(dep_file.clone());

    podman(&[
        "kube",
        "play",
        "--network",
        "host",
        "--configmap",
        cm_file.to_str().unwrap(),
        dep_file.to_str().unwrap(),
    ]);
    let name = "imgworker-cpu-pod-0-imgworker";
    let logs = || podman_logs(name);
    wait_ready(port, Duration::from_secs(60), &logs);
    // What the Deployment asks of the container, as podman applied it.
    assert_eq!(podman(&["exec", name, "id", "-u"]).trim(), "65532");
    assert_eq!(
        podman(&[
            "inspect",
            "--format",
            "{{.HostConfig.ReadonlyRootfs}}",
            name
        ])
        .trim(),
        "true"
    );

    let rotate = json!([{"op": "rotate", "degrees": 90}]);
    let img = run_job(&url, &s3, "in-pod", rotate, &logs);
    assert_eq!(img.dimensions(), (48, 64));

    let down = podman_status(&["kube", "down", dep_file.to_str().unwrap()]);
    assert!(down.status.success(), "{down:?}");
    let _ = podman_status(&["secret", "rm", "imgworker"]);
    assert!(
        !podman(&["ps", "-a", "--format", "{{.Names}}"]).contains(name),
        "kube down left the container"
    );
}
