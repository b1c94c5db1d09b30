//! TLS to the broker and to storage, against real servers on loopback with
//! certificates made here by `openssl`:
//! - a second RabbitMQ node with only a TLS listener that requires client
//!   certificates: the worker consumes over `amqps://`; an untrusted server
//!   certificate and a missing client certificate fail fast with a clear
//!   error;
//! - moto's S3 server over HTTPS, trusted through `AWS_CA_BUNDLE`;
//! - `--require-tls` refuses `amqp://` and `http://` endpoints at start-up.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::broker::{free_port, store_with_source, wait_for_port, Worker, HOW_TO_START};
use common::{openssl, png_bytes, test_image};
use imgworker::storage::Storage;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_imgworker");

/// A CA, a server certificate for localhost and 127.0.0.1, and a client
/// certificate, all made by the `openssl` command.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        std::fs::write(
            d.join("client.ext"),
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=imgworker test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        for (name, cn) in [("server", "localhost"), ("client", "imgworker")] {
            let subj = format!("/CN={cn}");
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            let pem = format!("{name}.pem");
            let ext = format!("{name}.ext");
            openssl(
                d,
                &[
                    "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                    &subj,
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A server process in its own process group, killed with the group.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A second RabbitMQ node with only a TLS listener (TLS 1.2 and 1.3) that
/// requires a client certificate signed by the test CA.
fn tls_broker(pki: &Pki) -> Server {
    let exe = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
    assert!(
        exe.exists(),
        "rabbitmq-server is not installed: {HOW_TO_START}"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let conf = format!(
        "listeners.tcp = none\n\
         listeners.ssl.default = {port}\n\
         ssl_options.cacertfile = {ca}\n\
         ssl_options.certfile = {cert}\n\
         ssl_options.keyfile = {key}\n\
         ssl_options.verify = verify_peer\n\
         ssl_options.fail_if_no_peer_cert = true\n\
         ssl_options.versions.1 = tlsv1.3\n\
         ssl_options.versions.2 = tlsv1.2\n",
        ca = pki.arg("ca.pem"),
        cert = pki.arg("server.pem"),
        key = pki.arg("server.key"),
    );
    std::fs::write(d.join("rabbitmq.conf"), conf).unwrap();
    std::fs::write(d.join("enabled_plugins"), "[].\n").unwrap();
    let node = format!("imgworker-tls-{}@localhost", std::process::id());
    let child = Command::new(exe)
        .env("RABBITMQ_NODENAME", &node)
        .env("RABBITMQ_DIST_PORT", free_port().to_string())
        .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
        .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", d.join("log"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
        .env("RABBITMQ_PID_FILE", d.join("pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start rabbitmq-server ({e}): {HOW_TO_START}"));
    let server = Server {
        child,
        port,
        _dir: dir,
    };
    assert!(
        wait_for_port(("127.0.0.1", port), Duration::from_secs(90)),
        "the TLS RabbitMQ node did not open port {port}"
    );
    server
}

/// moto's S3 server over HTTPS with the test's server certificate.
fn https_s3(pki: &Pki) -> Server {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/moto_server");
    assert!(
        exe.exists(),
        "moto_server is not installed at {}: run scripts/test.sh, which installs it",
        exe.display()
    );
    let port = free_port();
    let child = Command::new(exe)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .arg("-c")
        .arg(pki.path("server.pem"))
        .arg("-k")
        .arg(pki.path("server.key"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let server = Server {
        child,
        port,
        _dir: tempfile::tempdir().unwrap(),
    };
    assert!(
        wait_for_port(("127.0.0.1", port), Duration::from_secs(30)),
        "moto_server over HTTPS did not open port {port}"
    );
    server
}

fn job_file(dir: &Path, id: &str) -> PathBuf {
    let path = dir.join(format!("{id}.json"));
    let job = json!({
        "schema": 1, "id": id, "type": "edit", "image": "t/img", "source": "original.png",
        "ops": [{"op": "resize", "width": 32}],
        "outputs": [{"version": id, "format": "png"}],
    });
    std::fs::write(&path, serde_json::to_vec(&job).unwrap()).unwrap();
    path
}

/// Run the binary and wait at most `timeout` for it.
fn run_bin(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env("IMGWORKER_LOG", "info,lapin=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            let Output {
                status,
                stdout,
                stderr,
            } = child.wait_with_output().unwrap();
            return (
                status.code(),
                String::from_utf8_lossy(&stdout).into_owned(),
                String::from_utf8_lossy(&stderr).into_owned(),
            );
        }
        if Instant::now() > end {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return (
                None,
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start `serve` with `extra` flags against `url`; it must stop by itself,
/// non-zero and within 20 s (no retrying a TLS failure). Its stderr.
fn refused_fast(url: &str, store: &Path, extra: &[&str]) -> String {
    let started = Instant::now();
    let addr = format!("127.0.0.1:{}", free_port());
    let store = store.display().to_string();
    let mut args = vec![
        "serve",
        "--amqp-url",
        url,
        "--backend",
        "cpu",
        "--http-addr",
        &addr,
        "--storage",
        &store,
    ];
    args.extend(extra);
    let (code, _, stderr) = run_bin(&args, &[], Duration::from_secs(30));
    assert!(
        code.is_some(),
        "the worker hung instead of failing: {stderr}"
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failing took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("TLS handshake with the broker failed"),
        "unclear error: {stderr}"
    );
    stderr
}

#[test]
fn the_worker_consumes_over_amqps_and_refuses_untrusted_peers() {
    let pki = Pki::new();
    let broker = tls_broker(&pki);
    let url = format!("amqps://guest:guest@localhost:{}/%2f", broker.port);
    let (dir, store) = store_with_source((64, 48));
    let tls_args = [
        "--amqp-ca-file".to_string(),
        pki.arg("ca.pem"),
        "--amqp-cert-file".to_string(),
        pki.arg("client.pem"),
        "--amqp-key-file".to_string(),
        pki.arg("client.key"),
    ];
    let tls: Vec<&str> = tls_args.iter().map(String::as_str).collect();

    // A trusted server, a client certificate, TLS required: jobs flow.
    let mut extra = tls.clone();
    extra.push("--require-tls");
    let worker = Worker::start(&url, &store, &extra);
    worker.wait_ready();
    let job = job_file(dir.path(), "over-tls");
    let mut args = vec![
        "--require-tls",
        "submit",
        "--amqp-url",
        &url,
        "--wait",
        "--timeout-secs",
        "60",
    ];
    args.extend(&tls);
    let job_arg = job.display().to_string();
    args.push(&job_arg);
    let (code, stdout, stderr) = run_bin(&args, &[], Duration::from_secs(90));
    assert_eq!(
        code,
        Some(0),
        "submit over amqps failed: {stderr}\nworker:\n{}",
        worker.log()
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["status"], "succeeded", "{result}");
    assert!(store.join("t/img/over-tls.png").exists());
    assert!(store.join("t/img/over-tls.json").exists());
    drop(worker);

    // No CA file: the broker's certificate is not trusted. The worker stops
    // at once with a clear error instead of retrying forever.
    let stderr = refused_fast(&url, &store, &[]);
    assert!(stderr.contains("certificate"), "{stderr}");

    // A trusted server, but no client certificate where the broker requires
    // one: refused, also fast and clearly.
    refused_fast(&url, &store, &["--amqp-ca-file", &pki.arg("ca.pem")]);
}

#[test]
fn require_tls_refuses_plain_endpoints_at_start_up() {
    let (_dir, store) = store_with_source((64, 48));
    let store_arg = store.display().to_string();
    let started = Instant::now();
    // A plain broker URL.
    let (code, _, stderr) = run_bin(
        &[
            "serve",
            "--require-tls",
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "--storage",
            &store_arg,
        ],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("TLS is required") && stderr.contains("amqp://"),
        "{stderr}"
    );
    // The same through the environment, for submit.
    let (code, _, stderr) = run_bin(
        &[
            "submit",
            "--amqp-url",
            "amqp://127.0.0.1:5672/%2f",
            "x.json",
        ],
        &[("IMGWORKER_REQUIRE_TLS", "true")],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("TLS is required"), "{stderr}");
    // An S3 endpoint over plain HTTP, with a TLS broker URL.
    let (code, _, stderr) = run_bin(
        &[
            "serve",
            "--require-tls",
            "--amqp-url",
            "amqps://127.0.0.1:5671/%2f",
            "--storage",
            "s3://bucket",
        ],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ALLOW_HTTP", "true"),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("TLS is required") && stderr.contains("not https://"),
        "{stderr}"
    );
    // run: plain HTTP allowed for S3 is refused too.
    let job = job_file(_dir.path(), "j");
    let (code, _, stderr) = run_bin(
        &[
            "run",
            "--require-tls",
            &job.display().to_string(),
            "--storage",
            "s3://bucket",
        ],
        &[("AWS_ALLOW_HTTP", "1")],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("AWS_ALLOW_HTTP"), "{stderr}");
    // Nothing was attempted: all of that is decided before connecting.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn storage_over_https_with_a_private_ca() {
    let pki = Pki::new();
    let s3 = https_s3(&pki);
    let endpoint = format!("https://localhost:{}", s3.port);
    let opts = imgworker::storage::S3Options {
        endpoint: Some(endpoint.clone()),
        credentials: Some(("test".into(), "test".into())),
        region: Some("us-east-1".into()),
        timeout: Some(Duration::from_secs(5)),
        ca_file: Some(pki.path("ca.pem")),
        ..Default::default()
    };
    assert_eq!(imgworker::storage::s3::plain_transport(&opts), None);
    let made = Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", "--cacert", &pki.arg("ca.pem")])
        .arg(format!("{endpoint}/tls-bucket"))
        .output()
        .expect("curl is missing: apt-get install curl");
    assert!(
        made.status.success(),
        "creating the bucket over HTTPS: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let storage = imgworker::storage::S3Storage::open("s3://tls-bucket", &opts).unwrap();
    rt.block_on(async {
        storage
            .put(
                "t/img/original.png",
                &png_bytes(&test_image(64, 48, 5, false)),
            )
            .await
            .unwrap();
    });

    // The CLI, trusting the CA through AWS_CA_BUNDLE, with TLS required.
    let dir = tempfile::tempdir().unwrap();
    let job = job_file(dir.path(), "https");
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let ca = pki.arg("ca.pem");
    let mut with_ca = env.to_vec();
    with_ca.push(("AWS_CA_BUNDLE", &ca));
    let job_arg = job.display().to_string();
    let (code, stdout, stderr) = run_bin(
        &[
            "run",
            "--require-tls",
            &job_arg,
            "--storage",
            "s3://tls-bucket",
            "--backend",
            "cpu",
        ],
        &with_ca,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["status"], "succeeded");
    let written = rt
        .block_on(storage.get("t/img/https.png", 1 << 20))
        .unwrap();
    assert_eq!(
        result["outputs"][0]["sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&written))
    );

    // Without the CA the store's certificate is not trusted: the job fails
    // as storage_unavailable, promptly, and says why.
    let (code, stdout, stderr) = run_bin(
        &[
            "run",
            &job_arg,
            "--storage",
            "s3://tls-bucket",
            "--backend",
            "cpu",
        ],
        &env,
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["error"]["code"], "storage_unavailable", "{result}");
}
