//! Beyond one worker on one node: retries parked on the broker while
//! storage is down, four worker processes on one queue, and two workers
//! failing over when the node holding the jobs queue's leader is killed in
//! a three-node cluster (started by `scripts/rabbitmq-cluster.sh`, which the
//! test command runs).
//!
//! The tests run one at a time: each measures progress against the clock
//! or kills a broker node.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::broker::*;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{json, Value};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Results and the other queues' depths, checked at the end of a test.
async fn assert_queues_empty(url: &str, queues: &[&str]) {
    for q in queues {
        assert_eq!(depth(url, q).await, Some(0), "{q} is not empty");
    }
}

/// Wait until `n` distinct jobs succeeded, collecting every result read
/// (reading through a node that cannot answer for a while is retried).
async fn collect_succeeded(
    url: &str,
    n: usize,
    timeout: Duration,
    seen: &mut Vec<Value>,
    logs: &dyn Fn() -> String,
) {
    let end = Instant::now() + timeout;
    loop {
        seen.extend(
            drain_available(url, "test.results")
                .await
                .into_iter()
                .map(|(_, b)| serde_json::from_slice::<Value>(&b).unwrap()),
        );
        if distinct_succeeded(seen).len() >= n {
            return;
        }
        assert!(
            Instant::now() < end,
            "{} of {n} jobs succeeded in {timeout:?}; logs:\n{}",
            distinct_succeeded(seen).len(),
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_parks_jobs_on_the_broker_while_good_jobs_flow() {
    let _serial = SERIAL.lock().await;
    let url = vhost("retry");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((32, 32));
    // The outage: the image folder `p/q` sits under a file, so every read
    // fails with an I/O error, a transient storage failure.
    std::fs::write(store.join("p"), b"not a folder").unwrap();
    let parked = 40;
    let good = 200;
    let ops = json!([{"op": "flip", "axis": "horizontal"}]);
    let mut bodies = batch_for("p/q", "late", "w", parked, ops.clone());
    bodies.extend(batch("good", good, ops));
    publish(&url, &bodies, None).await;
    // Each failed attempt would hold its slot for a second or more if the
    // worker waited out the backoff itself: 40 of them on 2 slots would
    // stall the good jobs for 20 s, twice the outage.
    let w = Worker::start(
        &url,
        &store,
        &["--concurrency", "2", "--retry-backoff-ms", "1000"],
    );
    let outage = Instant::now();
    let mut seen = Vec::new();
    let logs = || w.log();
    collect_succeeded(&url, good, Duration::from_secs(60), &mut seen, &logs).await;
    let good_done = outage.elapsed();
    assert!(
        good_done < Duration::from_secs(10),
        "the good jobs took {good_done:?}: failed attempts held the slots"
    );
    assert!(
        seen.iter()
            .all(|r| r["id"].as_str().unwrap().starts_with("good")),
        "no result for a parked job while storage is down"
    );
    assert!(
        depth(&url, "imgworker.retry").await.unwrap() > 0,
        "failed jobs wait in the retry queue"
    );
    // Storage comes back after 10 s.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    std::fs::remove_file(store.join("p")).unwrap();
    std::fs::create_dir_all(store.join("p/q")).unwrap();
    std::fs::copy(
        store.join("t/img/original.png"),
        store.join("p/q/original.png"),
    )
    .unwrap();
    collect_succeeded(
        &url,
        good + parked,
        Duration::from_secs(90),
        &mut seen,
        &logs,
    )
    .await;
    // Let anything late arrive, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    seen.extend(results(&url).await);
    assert_eq!(seen.len(), good + parked, "one result per job: {seen:?}");
    assert!(seen.iter().all(|r| r["status"] == "succeeded"));
    assert_versions(&store, good);
    assert_versions_in(&store, "p/q", "w", parked);
    assert_queues_empty(
        &url,
        &["imgworker.jobs", "imgworker.retry", "imgworker.dead"],
    )
    .await;
    let retries = w.metric("imgworker_retries_total");
    assert!(retries >= parked as f64, "{retries} retries");
    assert!(!w.log().contains("could not park"), "{}", w.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_share_one_queue() {
    let _serial = SERIAL.lock().await;
    let url = vhost("four");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((64, 48));
    let workers: Vec<Worker> = (0..4)
        .map(|_| Worker::start(&url, &store, &["--concurrency", "2"]))
        .collect();
    for w in &workers {
        w.wait_ready();
    }
    let n = 400;
    publish(
        &url,
        &batch("j", n, json!([{"op": "rotate", "degrees": 90}])),
        None,
    )
    .await;
    let mut seen = Vec::new();
    let logs = || {
        workers
            .iter()
            .map(Worker::log)
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    collect_succeeded(&url, n, Duration::from_secs(120), &mut seen, &logs).await;
    assert_eq!(seen.len(), n, "one result per job");
    assert_versions(&store, n);
    let done: Vec<f64> = workers
        .iter()
        .map(|w| w.metric("imgworker_jobs_total{status=\"succeeded\""))
        .collect();
    assert!(
        done.iter().all(|&d| d > 0.0),
        "a worker did nothing: {done:?}"
    );
    assert_eq!(done.iter().sum::<f64>(), n as f64, "{done:?}");
    assert_queues_empty(&url, &["imgworker.jobs", "imgworker.dead"]).await;
}

/// The three-node cluster of `scripts/rabbitmq-cluster.sh`.
struct Cluster;

const NODES: [(&str, u16); 3] = [("a", 5681), ("b", 5682), ("c", 5683)];
const HOW_TO_START_CLUSTER: &str =
    "start it with `scripts/rabbitmq-cluster.sh start` (scripts/test.sh does)";

impl Cluster {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rabbitmq-cluster.sh")
    }

    fn run(args: &[&str]) -> String {
        let out = Command::new(Self::script()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "rabbitmq-cluster.sh {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// rabbitmqctl against node `n`, its JSON output.
    fn ctl_json(n: &str, args: &[&str]) -> Value {
        let mut all = vec!["ctl", n, "-q"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--formatter", "json"]);
        serde_json::from_str(&Self::run(&all)).unwrap()
    }

    fn running_nodes(via: &str) -> usize {
        Self::ctl_json(via, &["cluster_status"])["running_nodes"]
            .as_array()
            .unwrap()
            .len()
    }

    /// A fresh vhost on the cluster: one URL per node.
    fn vhost(name: &str) -> Vec<String> {
        for (n, port) in NODES {
            assert!(
                wait_for_port(("127.0.0.1", port), Duration::from_secs(5)),
                "cluster node {n} is not reachable on 127.0.0.1:{port}: {HOW_TO_START_CLUSTER}"
            );
        }
        assert_eq!(Self::running_nodes("a"), 3, "{HOW_TO_START_CLUSTER}");
        let vh = format!("imgworker-test-{name}.{}", std::process::id());
        Self::run(&["ctl", "a", "-q", "add_vhost", &vh]);
        Self::run(&[
            "ctl",
            "a",
            "-q",
            "set_permissions",
            "-p",
            &vh,
            "guest",
            ".*",
            ".*",
            ".*",
        ]);
        NODES
            .iter()
            .map(|(_, port)| format!("amqp://guest:guest@127.0.0.1:{port}/{vh}"))
            .collect()
    }

    /// The jobs queue's row in `list_queues` (leader, members, counts).
    fn jobs_queue(via: &str, vhost: &str) -> Value {
        let rows = Self::ctl_json(
            via,
            &[
                "list_queues",
                "-p",
                vhost,
                "name",
                "leader",
                "members",
                "messages",
                "messages_unacknowledged",
            ],
        );
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "imgworker.jobs")
            .cloned()
            .expect("the jobs queue exists")
    }
}

/// Restarts a killed node when dropped, so that a failing test leaves the
/// cluster whole for the next run.
struct Revive(Option<&'static str>);

impl Drop for Revive {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            let _ = Command::new(Cluster::script())
                .args(["restart", n])
                .output();
        }
    }
}

/// The node (`a`, `b`, `c`) a worker is connected to, from its metrics.
fn node_of(w: &Worker) -> Option<&'static str> {
    let (_, body) = w.get("/metrics");
    NODES.iter().find_map(|(n, port)| {
        body.lines()
            .any(|l| {
                l.starts_with("imgworker_broker_connected{")
                    && l.contains(&format!("node=\"127.0.0.1:{port}\""))
                    && l.ends_with(" 1")
            })
            .then_some(*n)
    })
}

/// A worker given every node's URL, restarted until it connected to a node
/// `want` accepts (the order of the nodes is random on every connect).
fn worker_on(urls: &str, store: &Path, want: impl Fn(&str) -> bool) -> (Worker, &'static str) {
    for _ in 0..40 {
        let w = Worker::start(urls, store, &["--concurrency", "2"]);
        w.wait_ready();
        if let Some(n) = node_of(&w).filter(|n| want(n)) {
            return (w, n);
        }
    }
    panic!("40 workers in a row connected to the wrong node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_fail_over_when_the_jobs_queue_leader_node_dies() {
    let _serial = SERIAL.lock().await;
    let urls = Cluster::vhost("failover");
    let vh = urls[0].rsplit('/').next().unwrap().to_string();
    // The topology, and a results queue that survives a node (quorum).
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    prepare_with(&urls[0], 5, quorum).await;
    let queue = Cluster::jobs_queue("a", &vh);
    assert_eq!(
        queue["members"].as_array().unwrap().len(),
        3,
        "the jobs queue is replicated on every node: {queue}"
    );
    let leader_name = queue["leader"].as_str().unwrap().to_string();
    let leader = NODES
        .iter()
        .map(|(n, _)| *n)
        .find(|n| leader_name.starts_with(&format!("imgworker-{n}@")))
        .unwrap();
    // Jobs big enough (a few seconds for all of them) that the node dies
    // with most of them still to do.
    let (_dir, store) = store_with_source((768, 512));
    let all = urls.join(",");
    // One worker on the leader's node, the other on another node.
    let (w1, n1) = worker_on(&all, &store, |n| n == leader);
    let (w2, n2) = worker_on(&all, &store, |n| n != leader);
    assert_ne!(n1, n2);
    let n = 300;
    let bodies = batch("f", n, json!([{"op": "blur", "sigma": 3.0}]));
    let survivor = NODES.iter().position(|(x, _)| *x == n2).unwrap();
    publish(&urls[survivor], &bodies, None).await;
    // Kill the leader's node once a sixth of the jobs are done.
    let mut seen = Vec::new();
    let logs = || format!("{}\n---\n{}", w1.log(), w2.log());
    collect_succeeded(
        &urls[survivor],
        n / 6,
        Duration::from_secs(120),
        &mut seen,
        &logs,
    )
    .await;
    Cluster::run(&["kill", leader]);
    let mut revive = Revive(Some(leader));
    let killed_at = distinct_succeeded(&seen).len();
    eprintln!("killed the leader's node with {killed_at} of {n} jobs done");
    collect_succeeded(
        &urls[survivor],
        n,
        Duration::from_secs(180),
        &mut seen,
        &logs,
    )
    .await;
    assert!(
        killed_at < n / 2,
        "{killed_at} of {n} jobs were done when the node died: not in the middle"
    );
    // w1 moved to a live node; both still consume.
    assert!(
        w1.log().contains("lost the broker"),
        "w1 saw its node die: {}",
        w1.log()
    );
    let moved = node_of(&w1).expect("w1 is connected again");
    assert_ne!(moved, leader, "w1 is on a live node");
    assert_eq!(w1.get("/readyz").0, 200);
    assert_eq!(w2.get("/readyz").0, 200);
    // Every job exactly one version; every result published (at least
    // once: a job whose ack died with the node may be done twice); nothing
    // unacked, nothing dead-lettered.
    assert_versions_in(&store, "t/img", "v", n);
    assert!(seen.iter().all(|r| r["status"] == "succeeded"), "{seen:?}");
    let w1_jobs = w1.metric("imgworker_jobs_total{status=\"succeeded\"");
    let w2_jobs = w2.metric("imgworker_jobs_total{status=\"succeeded\"");
    assert!(w1_jobs > 0.0 && w2_jobs > 0.0, "{w1_jobs} {w2_jobs}");
    let live = NODES.iter().find(|(x, _)| *x != leader).unwrap().0;
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let q = Cluster::jobs_queue(live, &vh);
        if q["messages"] == 0 && q["messages_unacknowledged"] == 0 {
            break;
        }
        assert!(Instant::now() < end, "jobs left in the queue: {q}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(depth(&urls[survivor], "imgworker.dead").await, Some(0));
    // The node comes back and rejoins; the queue has its three members.
    revive.0 = None;
    Cluster::run(&["restart", leader]);
    assert_eq!(Cluster::running_nodes(live), 3, "the node rejoined");
    let q = Cluster::jobs_queue(leader, &vh);
    assert_eq!(q["members"].as_array().unwrap().len(), 3, "{q}");
    Cluster::run(&["ctl", "a", "-q", "delete_vhost", &vh]);
}
