//! A real RabbitMQ on loopback for the queue, TLS and privacy tests: fresh
//! vhosts, a spawned `imgworker serve`, publishing and reading queues.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;

use super::{png_bytes, test_image};

pub const BROKER: &str = "127.0.0.1:5672";
pub const HOW_TO_START: &str = "start RabbitMQ with scripts/test.sh, or `apt-get install rabbitmq-server && rabbitmq-server -detached`";

pub fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("rabbitmqctl is not available ({e}); {HOW_TO_START}"));
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait until something accepts connections on `addr`.
pub fn wait_for_port(addr: impl std::net::ToSocketAddrs + Copy, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A fresh vhost; its AMQP URL.
pub fn vhost(name: &str) -> String {
    assert!(
        wait_for_port(BROKER, Duration::from_secs(5)),
        "RabbitMQ is not reachable on {BROKER}: {HOW_TO_START}"
    );
    // A fresh name per run: a vhost deleted and at once re-created under the
    // same name can be left with a stale quorum-queue member
    // ("cluster_not_formed"). Earlier runs' vhosts of this test go first.
    let prefix = format!("imgworker-test-{name}.");
    if let Ok(out) = Command::new("rabbitmqctl")
        .args(["list_vhosts", "-q", "--no-table-headers", "name"])
        .output()
    {
        for old in String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|v| v.starts_with(&prefix) || *v == prefix.trim_end_matches('.'))
        {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_vhost", "-q", old])
                .output();
        }
    }
    let vh = format!("{prefix}{}", std::process::id());
    rabbitmqctl(&["add_vhost", "-q", &vh]);
    rabbitmqctl(&[
        "set_permissions",
        "-q",
        "-p",
        &vh,
        "guest",
        ".*",
        ".*",
        ".*",
    ]);
    format!("amqp://guest:guest@{BROKER}/{vh}")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `imgworker serve`.
pub struct Worker {
    pub child: Child,
    pub port: u16,
    pub log: Arc<Mutex<String>>,
}

impl Worker {
    pub fn start(url: &str, store: &Path, extra: &[&str]) -> Worker {
        Self::spawn(url, store, extra, &[("IMGWORKER_LOG", "info,lapin=off")])
    }

    /// Start with extra environment variables (they override the defaults,
    /// `IMGWORKER_BACKEND=cpu` among them).
    pub fn spawn(url: &str, store: &Path, extra: &[&str], env: &[(&str, &str)]) -> Worker {
        Self::spawn_wrapped(&[], url, store, extra, env)
    }

    /// Start under a wrapper command (`strace -f -o FILE`, say); the child
    /// is then the wrapper.
    pub fn spawn_wrapped(
        wrapper: &[&str],
        url: &str,
        store: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Worker {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let bin = env!("CARGO_BIN_EXE_imgworker");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(["serve", "--amqp-url", url, "--http-addr", &addr])
            .arg("--storage")
            .arg(store)
            .args(extra)
            .env("IMGWORKER_BACKEND", "cpu")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Worker { child, port, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or((0, String::new()))
    }

    pub fn wait_ready(&self) {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if self.get("/readyz").0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the worker never became ready; its log:\n{}", self.log());
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// A metric's value (first series whose line starts with `prefix`).
    pub fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

pub async fn connect(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}; {HOW_TO_START}"))
}

/// Declare the topology (as the worker will) and a durable queue catching
/// every result.
pub async fn prepare(url: &str, delivery_limit: u32) {
    prepare_with(url, delivery_limit, FieldTable::default()).await
}

/// [`prepare`], the results queue declared with `results_args`
/// (`x-queue-type: quorum` for one that outlives a cluster node).
pub async fn prepare_with(url: &str, delivery_limit: u32, results_args: FieldTable) {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    let topo = imgworker::queue::Topology {
        delivery_limit,
        ..Default::default()
    };
    topo.declare(&ch).await.unwrap();
    ch.queue_declare(
        "test.results".into(),
        QueueDeclareOptions::durable(),
        results_args,
    )
    .await
    .unwrap();
    ch.queue_bind(
        "test.results".into(),
        "imgworker.results".into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    conn.close(200, "ok".into()).await.unwrap();
}

/// Publish `bodies` to the jobs queue, persistent, in order; every message
/// is sent before any confirm is awaited, so a batch reaches a quorum queue
/// in a few raft rounds instead of one per message, and the workers meet a
/// full queue rather than a trickle.
pub async fn publish(url: &str, bodies: &[Vec<u8>], headers: Option<FieldTable>) {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let mut confirms = Vec::with_capacity(bodies.len());
    for b in bodies {
        let mut props = BasicProperties::default().with_delivery_mode(2);
        if let Some(h) = &headers {
            props = props.with_headers(h.clone());
        }
        let sent = ch
            .basic_publish(
                "".into(),
                "imgworker.jobs".into(),
                Default::default(),
                b,
                props,
            )
            .await
            .unwrap();
        confirms.push(sent);
    }
    for c in confirms {
        let confirm = tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("the broker confirms a published job within 60 s")
            .unwrap();
        assert!(!confirm.is_nack(), "the broker refused a published job");
    }
    conn.close(200, "ok".into()).await.unwrap();
}

/// Ready messages in a queue (None while the broker cannot be reached).
/// How long one step of the polling helpers below ([`depth`],
/// [`drain_available`]) may take: a call that hangs (a connection the broker
/// never answers) counts as a failed poll, to be retried, instead of
/// holding the test past its own deadlines.
const POLL_STEP: Duration = Duration::from_secs(10);

/// `f`, or `None` when it took longer than [`POLL_STEP`].
async fn within<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(POLL_STEP, f).await.ok()
}

pub async fn depth(url: &str, queue: &str) -> Option<u64> {
    let conn = within(Connection::connect(url, ConnectionProperties::default()))
        .await?
        .ok()?;
    let ch = within(conn.create_channel()).await?.ok()?;
    let q = within(ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await?
    .ok()?;
    let _ = within(conn.close(200, "ok".into())).await;
    Some(u64::from(q.message_count()))
}

/// Wait until `queue` holds at least `n` ready messages.
pub async fn wait_depth(
    url: &str,
    queue: &str,
    n: u64,
    timeout: Duration,
    w: Option<&Worker>,
) -> u64 {
    let end = Instant::now() + timeout;
    loop {
        let d = depth(url, queue).await.unwrap_or(0);
        if d >= n {
            return d;
        }
        if Instant::now() > end {
            panic!(
                "{queue} holds {d} messages, expected {n}; worker log:\n{}",
                w.map(Worker::log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every message of a queue: (headers, body).
pub async fn drain_queue(url: &str, queue: &str) -> Vec<(FieldTable, Vec<u8>)> {
    let conn = connect(url).await;
    let ch = conn.create_channel().await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let headers = m.delivery.properties.headers().clone().unwrap_or_default();
        out.push((headers, m.delivery.data.clone()));
    }
    conn.close(200, "ok".into()).await.unwrap();
    out
}

/// The messages a queue gives now: (headers, body). Unlike
/// [`drain_queue`], a broker that cannot answer (a cluster electing a
/// queue's new leader) ends the reading without failing: what was read is
/// returned, the rest stays for the next call.
pub async fn drain_available(url: &str, queue: &str) -> Vec<(FieldTable, Vec<u8>)> {
    let mut out = Vec::new();
    let Some(Ok(conn)) = within(Connection::connect(url, ConnectionProperties::default())).await
    else {
        return out;
    };
    if let Some(Ok(ch)) = within(conn.create_channel()).await {
        while let Some(Ok(Some(m))) =
            within(ch.basic_get(queue.into(), BasicGetOptions { no_ack: true })).await
        {
            let headers = m.delivery.properties.headers().clone().unwrap_or_default();
            out.push((headers, m.delivery.data.clone()));
        }
    }
    let _ = within(conn.close(200, "ok".into())).await;
    out
}

pub async fn results(url: &str) -> Vec<Value> {
    drain_queue(url, "test.results")
        .await
        .into_iter()
        .map(|(_, b)| serde_json::from_slice(&b).unwrap())
        .collect()
}

pub fn header(h: &FieldTable, name: &str) -> Option<String> {
    imgworker::queue::publish::header_str(Some(h), name)
}

/// A store with one small source image at `t/img/original.png`.
pub fn store_with_source(size: (u32, u32)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("t/img")).unwrap();
    std::fs::write(
        store.join("t/img/original.png"),
        png_bytes(&test_image(size.0, size.1, 1, false)),
    )
    .unwrap();
    (dir, store)
}

/// An edit job on the image folder `image` writing one PNG version.
pub fn job_for(image: &str, id: &str, version: &str, ops: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema": 1, "id": id, "type": "edit", "image": image, "source": "original.png",
        "ops": ops, "outputs": [{"version": version, "format": "png"}],
    }))
    .unwrap()
}

/// [`job_for`] on `t/img`, the folder [`store_with_source`] fills.
pub fn job(id: &str, version: &str, ops: Value) -> Vec<u8> {
    job_for("t/img", id, version, ops)
}

/// `n` jobs on `image` with ids `{prefix}{i}` writing versions
/// `{version}{i}`, all with `ops`.
pub fn batch_for(image: &str, prefix: &str, version: &str, n: usize, ops: Value) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            job_for(
                image,
                &format!("{prefix}{i}"),
                &format!("{version}{i}"),
                ops.clone(),
            )
        })
        .collect()
}

/// `n` jobs on `t/img` with ids `{prefix}{i}` writing versions `v{i}`.
pub fn batch(prefix: &str, n: usize, ops: Value) -> Vec<Vec<u8>> {
    batch_for("t/img", prefix, "v", n, ops)
}

/// Objects under an image folder other than the source, sorted.
pub fn objects_in(store: &Path, image: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join(image))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "original.png")
        .collect();
    v.sort();
    v
}

/// [`objects_in`] `t/img`.
pub fn objects(store: &Path) -> Vec<String> {
    objects_in(store, "t/img")
}

/// Every version `{version}{i}` for i < n exists once in `image` with a
/// manifest whose sha256 matches the bytes, and nothing else is there.
pub fn assert_versions_in(store: &Path, image: &str, version: &str, n: usize) {
    let mut want: Vec<String> = (0..n)
        .flat_map(|i| [format!("{version}{i}.json"), format!("{version}{i}.png")])
        .collect();
    want.sort();
    assert_eq!(
        objects_in(store, image),
        want,
        "exactly one copy of every version, nothing partial"
    );
    for i in 0..n {
        let bytes = std::fs::read(store.join(format!("{image}/{version}{i}.png"))).unwrap();
        image::load_from_memory(&bytes).expect("a complete image");
        let m: Value = serde_json::from_slice(
            &std::fs::read(store.join(format!("{image}/{version}{i}.json"))).unwrap(),
        )
        .unwrap();
        use sha2::Digest;
        assert_eq!(m["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    }
}

/// [`assert_versions_in`] `t/img`, versions `v{i}`.
pub fn assert_versions(store: &Path, n: usize) {
    assert_versions_in(store, "t/img", "v", n)
}

/// The ids of the succeeded results.
pub fn distinct_succeeded(results: &[Value]) -> std::collections::BTreeSet<String> {
    results
        .iter()
        .filter(|r| r["status"] == "succeeded")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Wait until the results queue holds at least `n` results.
pub async fn wait_results(url: &str, n: u64, timeout: Duration, w: &Worker) -> u64 {
    wait_depth(url, "test.results", n, timeout, Some(w)).await
}
