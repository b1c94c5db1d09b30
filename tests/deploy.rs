//! The deployment files under deploy/: they parse, validate against the
//! Kubernetes schemas where a schema exists, and carry the fields operators
//! rely on (GPU request, probes, read-only root, no data volumes, drain
//! shorter than the termination grace, a PodDisruptionBudget, metrics,
//! KEDA scaling on imgworker.jobs); the compose stack is wired end to end;
//! the container image is multi-stage, non-root and health-checked.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every YAML document of a file, merge keys applied, as JSON values.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            let mut v = serde_yaml_ng::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            v.apply_merge().unwrap();
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// A YAML list of strings.
fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn k8s_dir() -> PathBuf {
    root().join("deploy/kubernetes")
}

/// Every manifest by (kind, name).
fn manifests() -> BTreeMap<(String, String), Value> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(k8s_dir()).unwrap() {
        let path = entry.unwrap().path();
        let kustomization = path.file_name().is_some_and(|n| n == "kustomization.yaml");
        if path.extension().is_some_and(|e| e == "yaml") && !kustomization {
            for doc in yaml_docs(&path) {
                let kind = doc["kind"].as_str().unwrap().to_string();
                let name = doc["metadata"]["name"].as_str().unwrap().to_string();
                assert!(
                    all.insert((kind.clone(), name.clone()), doc).is_none(),
                    "{kind}/{name} is defined twice"
                );
            }
        }
    }
    all
}

fn env_value(container: &Value, config: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
        .or_else(|| config["data"][name].as_str().map(String::from))
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| &labels[k] == v)
}

#[test]
fn kubernetes_manifests_carry_what_operators_rely_on() {
    let all = manifests();
    let get = |kind: &str, name: &str| {
        all.get(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no {kind}/{name} in deploy/kubernetes"))
    };
    let config = get("ConfigMap", "imgworker");
    let auth = get("TriggerAuthentication", "imgworker-rabbitmq");
    assert!(auth["spec"]["secretTargetRef"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["parameter"] == "host" && r["name"] == "imgworker"));
    let service = get("Service", "imgworker-metrics");

    for variant in ["gpu", "cpu"] {
        let name = format!("imgworker-{variant}");
        let d = get("Deployment", &name);
        let pod = &d["spec"]["template"];
        let labels = &pod["metadata"]["labels"];
        assert!(labels_match(&d["spec"]["selector"]["matchLabels"], labels));
        let spec = &pod["spec"];
        let c = &spec["containers"][0];

        // GPU request on the GPU variant only.
        let gpus = &c["resources"]["limits"]["nvidia.com/gpu"];
        if variant == "gpu" {
            assert_eq!(gpus, 1, "{name} must request one GPU");
            assert_eq!(
                env_value(c, config, "IMGWORKER_BACKEND").as_deref(),
                Some("gpu")
            );
        } else {
            assert!(gpus.is_null(), "{name} must not request a GPU");
            assert_eq!(
                env_value(c, config, "IMGWORKER_BACKEND").as_deref(),
                Some("cpu")
            );
        }

        // Hardening: non-root, read-only root, no escalation, no data volumes.
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        assert_ne!(spec["securityContext"]["runAsUser"], 0);
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
        for v in spec["volumes"].as_array().into_iter().flatten() {
            assert!(
                v.get("secret").is_some() || v.get("configMap").is_some(),
                "{name} mounts a data volume: {v}"
            );
        }

        // Probes on the health endpoints, on the metrics port.
        let port = &c["ports"][0];
        assert_eq!(port["name"], "http");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
        let http_addr = env_value(c, config, "IMGWORKER_HTTP_ADDR").unwrap();
        assert!(http_addr.ends_with(&format!(":{}", port["containerPort"])));

        // The drain fits inside the termination grace period.
        let grace: f64 = env_value(c, config, "IMGWORKER_GRACE_SECS")
            .unwrap()
            .parse()
            .unwrap();
        let termination = spec["terminationGracePeriodSeconds"].as_f64().unwrap();
        assert!(
            termination > grace + 5.0,
            "{name}: terminationGracePeriodSeconds {termination} must exceed the drain grace {grace}"
        );
        let deadline: f64 = env_value(c, config, "IMGWORKER_DEADLINE_SECS")
            .unwrap()
            .parse()
            .unwrap();
        assert!(deadline <= grace, "a job in flight must fit in the drain");

        // TLS required; secrets from the Secret, never inline.
        assert_eq!(
            env_value(c, config, "IMGWORKER_REQUIRE_TLS").as_deref(),
            Some("true")
        );
        for secret in ["IMGWORKER_AMQP_URL", "AWS_SECRET_ACCESS_KEY"] {
            let e = c["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == secret)
                .unwrap_or_else(|| panic!("{name} lacks {secret}"));
            assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "imgworker");
        }

        // A PodDisruptionBudget for exactly these pods.
        let pdb = get("PodDisruptionBudget", &name);
        assert!(labels_match(
            &pdb["spec"]["selector"]["matchLabels"],
            labels
        ));
        assert!(
            pdb["spec"]["maxUnavailable"] == 1 || pdb["spec"]["minAvailable"].is_number(),
            "{pdb}"
        );

        // KEDA scales this Deployment on the depth of imgworker.jobs.
        let so = get("ScaledObject", &name);
        assert_eq!(so["spec"]["scaleTargetRef"]["name"], name.as_str());
        let t = &so["spec"]["triggers"][0];
        assert_eq!(t["type"], "rabbitmq");
        assert_eq!(t["metadata"]["queueName"], "imgworker.jobs");
        assert_eq!(t["metadata"]["mode"], "QueueLength");
        assert!(
            t["metadata"]["value"]
                .as_str()
                .unwrap()
                .parse::<u32>()
                .unwrap()
                > 0
        );
        assert_eq!(t["authenticationRef"]["name"], "imgworker-rabbitmq");
        let (min, max) = (
            so["spec"]["minReplicaCount"].as_u64().unwrap(),
            so["spec"]["maxReplicaCount"].as_u64().unwrap(),
        );
        assert!(min <= max && max > 1);

        // The metrics Service reaches these pods on the named port.
        assert!(labels_match(&service["spec"]["selector"], labels));
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let pm = get("PodMonitor", "imgworker");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["path"], "/metrics");

    // The kustomization applies every manifest but the optional ones.
    let kust = &yaml_docs(&k8s_dir().join("kustomization.yaml"))[0];
    let listed: BTreeSet<String> = strings(&kust["resources"])
        .into_iter()
        .map(String::from)
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .filter(|n| {
            ![
                "kustomization.yaml",
                "secret.example.yaml",
                "podmonitor.yaml",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn kubernetes_manifests_pass_schema_validation() {
    let exe = root().join("target/test-venv/bin/kubernetes-validate");
    assert!(
        exe.exists(),
        "kubernetes-validate is not installed at {}: run scripts/test.sh, which installs it",
        exe.display()
    );
    let files: Vec<PathBuf> = [
        "namespace",
        "configmap",
        "service",
        "gpu",
        "cpu",
        "secret.example",
    ]
    .iter()
    .map(|f| k8s_dir().join(format!("{f}.yaml")))
    .collect();
    let out = Command::new(&exe)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schema validation failed:\n{text}");
    for kind in [
        "deployment/imgworker-gpu",
        "deployment/imgworker-cpu",
        "poddisruptionbudget/imgworker-gpu",
        "service/imgworker-metrics",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}")),
            "{kind} was not validated:\n{text}"
        );
    }
}

/// Run the KEDA schema check (tests/tools/keda_validate.mjs) on `files`:
/// whether it passed, and what it printed.
fn keda_validate(files: &[PathBuf]) -> (bool, String) {
    let modules = root().join("target/keda-validate/node_modules");
    assert!(
        modules.join("@kubernetes-models/keda").is_dir(),
        "KEDA's schema package is not installed in {}: run scripts/test.sh, which installs it with npm",
        modules.display()
    );
    let out = Command::new("node")
        .arg(root().join("tests/tools/keda_validate.mjs"))
        .args(files)
        .env("KEDA_VALIDATE_MODULES", &modules)
        .output()
        .expect("node (Node.js) runs the KEDA schema check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn keda_objects_pass_kedas_published_schema() {
    let files: Vec<PathBuf> = ["cpu", "gpu", "keda-auth"]
        .iter()
        .map(|f| k8s_dir().join(format!("{f}.yaml")))
        .collect();
    let (ok, text) = keda_validate(&files);
    assert!(ok, "KEDA schema validation failed:\n{text}");
    for kind in [
        "ScaledObject/imgworker-cpu",
        "ScaledObject/imgworker-gpu",
        "TriggerAuthentication/imgworker-rabbitmq",
    ] {
        assert!(
            text.contains(&format!("passed for {kind}")),
            "{kind} was not validated:\n{text}"
        );
    }
    // The check does refuse what KEDA would: a replica count as a string,
    // a trigger without its type.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let cpu = std::fs::read_to_string(k8s_dir().join("cpu.yaml")).unwrap();
    let broken = cpu
        .replace("minReplicaCount: 0", "minReplicaCount: \"zero\"")
        .replace("- type: rabbitmq", "- name: no-type");
    assert_ne!(broken, cpu);
    std::fs::write(&bad, broken).unwrap();
    let (ok, text) = keda_validate(&[bad]);
    assert!(!ok, "a broken ScaledObject passed:\n{text}");
    assert!(text.contains("minReplicaCount must be integer"), "{text}");
    assert!(
        text.contains("must have required property 'type'")
            || text.contains("required property type"),
        "{text}"
    );
}

/// RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password)).
fn rabbit_hash_matches(hash: &str, password: &str) -> bool {
    use base64::Engine;
    use sha2::Digest;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(hash)
        .unwrap();
    let (salt, digest) = raw.split_at(4);
    let mut h = sha2::Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    h.finalize().as_slice() == digest
}

#[test]
fn the_compose_stack_is_wired_end_to_end() {
    let deploy = root().join("deploy");
    let doc = &yaml_docs(&deploy.join("compose.yaml"))[0];
    let services = &doc["services"];

    // RabbitMQ with the definitions file (the same one the queue tests
    // compare with the worker's declared topology) and a user.
    let rabbit = &services["rabbitmq"];
    assert!(rabbit["image"].as_str().unwrap().starts_with("rabbitmq:"));
    let mounts = strings(&rabbit["volumes"]);
    for m in &mounts {
        let local = m.split(':').next().unwrap();
        assert!(
            deploy.join(local).exists(),
            "compose mounts a missing file {local}"
        );
    }
    assert!(mounts
        .iter()
        .any(|m| m.starts_with("./rabbitmq/definitions.json:")));
    let conf = std::fs::read_to_string(deploy.join("compose/rabbitmq.conf")).unwrap();
    let defs_dir = conf
        .lines()
        .find_map(|l| l.strip_prefix("definitions.local.path = "))
        .unwrap();
    assert!(mounts.iter().filter(|m| m.contains(defs_dir)).count() >= 2);

    // An S3-compatible store and its bucket.
    assert!(services["minio"]["image"]
        .as_str()
        .unwrap()
        .starts_with("minio/minio"));
    assert!(services["minio-init"]["command"][0]
        .as_str()
        .unwrap()
        .contains("mc mb"));

    // Workers: built from the Dockerfile, wired by environment variables.
    let users = &yaml_docs(&deploy.join("compose/users.json"))[0];
    for name in ["worker", "worker-gpu"] {
        let w = &services[name];
        assert_eq!(w["build"]["dockerfile"], "deploy/Dockerfile");
        assert!(root()
            .join(w["build"]["dockerfile"].as_str().unwrap())
            .exists());
        let env = &w["environment"];
        let url = env["IMGWORKER_AMQP_URL"].as_str().unwrap();
        assert!(url.contains("@rabbitmq:5672/"), "{url}");
        let creds = url.trim_start_matches("amqp://").split('@').next().unwrap();
        let (user, pass) = creds.split_once(':').unwrap();
        let entry = users["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == user)
            .unwrap_or_else(|| panic!("compose/users.json has no user {user}"));
        assert!(
            rabbit_hash_matches(entry["password_hash"].as_str().unwrap(), pass),
            "the password in IMGWORKER_AMQP_URL does not match users.json"
        );
        assert!(env["IMGWORKER_STORAGE"]
            .as_str()
            .unwrap()
            .starts_with("s3://"));
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://minio:9000");
        assert_eq!(
            env["AWS_SECRET_ACCESS_KEY"],
            services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
        );
        assert_eq!(w["read_only"], true);
        assert_eq!(w["cap_drop"][0], "ALL");
        assert_eq!(w["ulimits"]["core"], 0);
        assert!(w.get("volumes").is_none(), "{name} must not mount volumes");
        let grace: f64 = env["IMGWORKER_GRACE_SECS"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let stop: f64 = w["stop_grace_period"]
            .as_str()
            .unwrap()
            .trim_end_matches('s')
            .parse()
            .unwrap();
        assert!(
            stop > grace,
            "{name}: stop_grace_period {stop}s <= drain grace {grace}s"
        );
        assert_eq!(w["depends_on"]["rabbitmq"]["condition"], "service_healthy");
    }
    assert_eq!(
        services["worker"]["environment"]["IMGWORKER_BACKEND"],
        "cpu"
    );
    let gpu = &services["worker-gpu"];
    assert_eq!(gpu["environment"]["IMGWORKER_BACKEND"], "gpu");
    let dev = &gpu["deploy"]["resources"]["reservations"]["devices"][0];
    assert_eq!(dev["driver"], "nvidia");
    let caps = strings(&dev["capabilities"]);
    assert!(caps.contains(&"gpu") && caps.contains(&"graphics") && caps.contains(&"compute"));
}

#[test]
fn the_container_image_is_multi_stage_non_root_and_health_checked() {
    let text = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    // Join continuation lines.
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "not a multi-stage build");
    let runtime = &lines[*stages.last().unwrap()..];
    let build = &lines[stages[0]..*stages.last().unwrap()];
    assert!(
        build
            .iter()
            .any(|l| l.contains("apt-get install") && l.contains("cmake") && l.contains("nasm")),
        "the build stage installs cmake and nasm (libjpeg-turbo is built from source)"
    );
    // The runtime stage takes the binary from the `binary` stage, which is
    // the build stage unless BINARY_STAGE names the prebuilt one.
    assert!(runtime.iter().any(|l| l.starts_with("COPY --from=binary ")));
    assert!(lines.contains(&"ARG BINARY_STAGE=build"));
    assert!(lines.contains(&"FROM ${BINARY_STAGE} AS binary"));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("FROM ${BUILD_IMAGE} AS build")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("FROM ${RUNTIME_IMAGE} AS runtime")));
    assert!(lines.contains(&"ARG BUILD_IMAGE=rust:1-bookworm"));
    assert!(lines.contains(&"ARG RUNTIME_IMAGE=debian:bookworm-slim"));
    assert!(runtime
        .iter()
        .any(|l| l.contains("apt-get install") && l.contains("libvulkan1")));
    assert!(
        !runtime.iter().any(|l| l.contains("cargo")),
        "the runtime stage must not hold the toolchain"
    );
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER");
    assert_ne!(uid, 0);
    let env = runtime
        .iter()
        .filter(|l| l.starts_with("ENV "))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let caps = env
        .split_whitespace()
        .find_map(|w| w.strip_prefix("NVIDIA_DRIVER_CAPABILITIES="))
        .expect("NVIDIA_DRIVER_CAPABILITIES is set");
    assert!(
        caps.contains("graphics") && caps.contains("compute"),
        "{caps}"
    );
    let health = runtime
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(health.contains("\"imgworker\", \"health\""), "{health}");
    assert!(runtime
        .iter()
        .any(|l| l.starts_with("ENTRYPOINT [\"imgworker\"]")));

    // Every file the build copies exists, and the build copies all the crate needs.
    let copied: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from") && !l.contains("${"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[1..parts.len() - 1].to_vec()
        })
        .collect();
    for src in &copied {
        assert!(
            root().join(src).exists(),
            "the Dockerfile copies a missing {src}"
        );
    }
    // .cargo holds the CFLAGS libwebp's threads need.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "src",
        "shaders",
        "benches",
    ] {
        assert!(
            copied.contains(&needed),
            "the Dockerfile does not copy {needed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_command_answers_for_a_running_worker() {
    use common::broker::*;
    let url = vhost("deploy-health");
    let (_dir, store) = store_with_source((8, 8));
    let worker = Worker::start(&url, &store, &[]);
    worker.wait_ready();
    let health = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_imgworker"))
            .args(["health", "--http-addr", &format!("0.0.0.0:{port}")])
            .output()
            .unwrap()
    };
    let ok = health(worker.port);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let down = health(free_port());
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("no answer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_worker_answers_health_checks_and_stops_on_shutdown() {
    use common::broker::*;
    use imgworker::settings::Settings;
    let url = vhost("deploy-in-process");
    let (_dir, store) = store_with_source((8, 8));
    let settings = Settings {
        amqp_url: url.as_str().into(),
        storage: store.to_string_lossy().into_owned(),
        backend: imgworker::backend::BackendChoice::Cpu,
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    let worker = imgworker::app::Worker::new(&settings).await.unwrap();
    let port = worker.http_addr().unwrap().port();
    assert_ne!(port, 0, "the system picked a port");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    let ready = async {
        while http_get(port, "/readyz").map(|(s, _)| s).unwrap_or(0) != 200 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), ready)
        .await
        .expect("the in-process worker never became ready");
    let health = Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .args(["health", "--http-addr", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    stop.send(()).unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), serving)
        .await
        .expect("the worker did not stop after shutdown");
    stopped.unwrap().unwrap();
    assert!(
        http_get(port, "/healthz").is_err(),
        "the HTTP endpoints outlived the worker"
    );
}
