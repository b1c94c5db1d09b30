//! `imgworker serve` and `submit` against a real RabbitMQ on loopback, each
//! test in a fresh vhost: throughput without loss, a SIGKILLed worker, a
//! broker restart, poison and bad jobs, drain on SIGTERM, signatures, and
//! the HTTP endpoints.
//!
//! The tests run one at a time (a broker restart would disturb the others).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::*;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_jobs_through_one_worker() {
    let _serial = SERIAL.lock().await;
    let url = vhost("throughput");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((64, 48));
    let bodies = batch(
        "j",
        200,
        json!([{"op": "rotate", "degrees": 90}, {"op": "invert"}]),
    );
    publish(&url, &bodies, None).await;
    let w = Worker::start(&url, &store, &["--concurrency", "4"]);
    wait_depth(
        &url,
        "test.results",
        200,
        Duration::from_secs(180),
        Some(&w),
    )
    .await;
    wait_depth_zero(&url, "imgworker.jobs", &w).await;
    let res = results(&url).await;
    assert_eq!(res.len(), 200, "one result per job");
    assert_eq!(distinct_succeeded(&res).len(), 200);
    assert_versions(&store, 200);
    assert_eq!(w.metric("imgworker_jobs_total{status=\"succeeded\""), 200.0);
}

async fn wait_depth_zero(url: &str, queue: &str, w: &Worker) {
    let end = Instant::now() + Duration::from_secs(30);
    while depth(url, queue).await != Some(0) {
        assert!(
            Instant::now() < end,
            "{queue} never emptied; log:\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_nothing_and_duplicates_nothing() {
    let _serial = SERIAL.lock().await;
    let url = vhost("sigkill");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((320, 240));
    let n = 80;
    let bodies = batch(
        "k",
        n,
        json!([{"op": "blur", "sigma": 2.0}, {"op": "sharpen"}]),
    );
    publish(&url, &bodies, None).await;
    let mut w = Worker::start(&url, &store, &["--concurrency", "3"]);
    wait_depth(&url, "test.results", 10, Duration::from_secs(120), Some(&w)).await;
    w.signal(libc::SIGKILL);
    w.wait_exit(Duration::from_secs(10));
    let done_before = depth(&url, "test.results").await.unwrap();
    assert!(
        done_before < n as u64,
        "the kill must land mid-batch ({done_before} done)"
    );
    let w2 = Worker::start(&url, &store, &["--concurrency", "3"]);
    let end = Instant::now() + Duration::from_secs(180);
    let mut all = Vec::new();
    loop {
        all.extend(results(&url).await);
        if distinct_succeeded(&all).len() == n {
            break;
        }
        assert!(
            Instant::now() < end,
            "jobs lost after a SIGKILL; log:\n{}",
            w2.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_depth_zero(&url, "imgworker.jobs", &w2).await;
    assert_versions(&store, n);
    // The audit trail: every job's accesses, those of the jobs the killed
    // worker had started included (made again on redelivery: at least once,
    // deduplicated by job id). Events are confirmed before the ack, so a
    // job that has a result has its events.
    let mut accesses = std::collections::BTreeSet::new();
    for (_, body) in drain_queue(&url, "imgworker.audit").await {
        let e: Value = serde_json::from_slice(&body).unwrap();
        accesses.insert((
            e["job_id"].as_str().unwrap().to_string(),
            e["action"].as_str().unwrap().to_string(),
            e["key"].as_str().unwrap().to_string(),
        ));
    }
    let mut want = std::collections::BTreeSet::new();
    for i in 0..n {
        let id = format!("k{i}");
        for (action, key) in [
            ("read", "t/img/original.png".to_string()),
            ("read", "t/img/original.json".to_string()),
            ("write", format!("t/img/v{i}.png")),
            ("write", format!("t/img/v{i}.json")),
        ] {
            want.insert((id.clone(), action.to_string(), key));
        }
    }
    assert_eq!(
        accesses, want,
        "the audit queue does not hold exactly the batch's accesses"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_recovers_from_a_broker_restart() {
    let _serial = SERIAL.lock().await;
    let url = vhost("restart");
    prepare(&url, 5).await;
    // Jobs heavy enough (about 0.1 s each) that the restart lands while
    // most are still queued: with small ones the worker once finished all
    // of them before the broker went down.
    let (_dir, store) = store_with_source((1280, 960));
    let n = 60;
    let bodies = batch("r", n, json!([{"op": "blur", "sigma": 4.0}]));
    publish(&url, &bodies, None).await;
    let mut w = Worker::start(&url, &store, &["--concurrency", "3"]);
    wait_depth(&url, "test.results", 5, Duration::from_secs(120), Some(&w)).await;
    rabbitmqctl(&["stop_app"]);
    let done_before = w.log().matches("job succeeded").count();
    assert!(
        done_before < n,
        "every job finished before the broker stopped: the restart tests nothing"
    );
    std::thread::sleep(Duration::from_secs(2));
    rabbitmqctl(&["start_app"]);
    assert!(
        wait_for_port(BROKER, Duration::from_secs(60)),
        "the broker did not come back"
    );
    let end = Instant::now() + Duration::from_secs(180);
    let mut all = Vec::new();
    loop {
        if let Ok(conn) = Connection::connect(&url, ConnectionProperties::default()).await {
            let _ = conn.close(200, "ok".into()).await;
            all.extend(results(&url).await);
        }
        if distinct_succeeded(&all).len() == n {
            break;
        }
        assert!(
            w.wait_exit(Duration::ZERO).is_none(),
            "the worker died; log:\n{}",
            w.log()
        );
        assert!(
            Instant::now() < end,
            "jobs unfinished after a broker restart; log:\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_depth_zero(&url, "imgworker.jobs", &w).await;
    assert_versions(&store, n);
    // The reconnect is counted once the session is back; the results can be
    // read a moment before that.
    let end = Instant::now() + Duration::from_secs(30);
    while w.metric("imgworker_broker_reconnects_total") < 1.0 {
        assert!(
            Instant::now() < end,
            "no reconnect counted; log:\n{}",
            w.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(w.get("/readyz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_bad_jobs_end_in_the_dead_letter_queue() {
    let _serial = SERIAL.lock().await;
    let url = vhost("dead");
    prepare(&url, 2).await;
    let (_dir, store) = store_with_source((16, 16));
    // An image folder whose parent is a file: every read fails with an I/O
    // error, a transient storage failure.
    std::fs::write(store.join("p"), b"not a folder").unwrap();
    let poison = serde_json::to_vec(&json!({
        "schema": 1, "id": "poison", "type": "edit", "image": "p/q", "source": "original.png",
        "outputs": [{"version": "v", "format": "png"}]}))
    .unwrap();
    let bodies = vec![
        poison,
        b"{not json".to_vec(),
        job("bad-op", "v0", json!([{"op": "explode"}])),
        serde_json::to_vec(
            &json!({"schema": 1, "id": "missing", "type": "edit", "image": "t/none",
            "source": "original.png", "outputs": [{"version": "v", "format": "png"}]}),
        )
        .unwrap(),
        job("bad-param", "v0", json!([{"op": "blur", "sigma": -1}])),
    ];
    publish(&url, &bodies, None).await;
    let w = Worker::start(
        &url,
        &store,
        &["--delivery-limit", "2", "--retry-backoff-ms", "50"],
    );
    wait_depth(&url, "imgworker.dead", 5, Duration::from_secs(60), Some(&w)).await;
    let dead = drain_queue(&url, "imgworker.dead").await;
    let mut codes: Vec<(String, String, String)> = dead
        .iter()
        .map(|(h, body)| {
            let id = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["id"].as_str().map(String::from))
                .unwrap_or_default();
            (
                id,
                header(h, "x-imgworker-error").expect("error header"),
                imgworker::queue::publish::header_int(Some(h), "x-imgworker-attempts")
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("".into(), "invalid_job".into(), "1".into()),
            ("bad-op".into(), "unsupported_op".into(), "1".into()),
            ("bad-param".into(), "invalid_param".into(), "1".into()),
            ("missing".into(), "source_not_found".into(), "1".into()),
            ("poison".into(), "storage_unavailable".into(), "3".into()),
        ],
        "log:\n{}",
        w.log()
    );
    // Dead letters carry the job, never image data or messages.
    for (h, _) in &dead {
        assert!(h.inner().keys().all(|k| k.as_str().starts_with("x-")));
    }
    let res = results(&url).await;
    assert_eq!(res.len(), 5, "a failed result for each: {res:?}");
    assert!(res.iter().all(|r| r["status"] == "failed"));
    assert_eq!(depth(&url, "imgworker.jobs").await, Some(0));
    assert_eq!(w.metric("imgworker_retries_total"), 2.0);
    assert!(
        objects(&store).is_empty(),
        "nothing written for failed jobs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_jobs_in_flight_and_exits_0() {
    let _serial = SERIAL.lock().await;
    let url = vhost("drain");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((900, 700));
    let n = 6;
    let bodies = batch(
        "d",
        n,
        json!([{"op": "blur", "sigma": 12.0}, {"op": "sharpen", "sigma": 4.0}]),
    );
    publish(&url, &bodies, None).await;
    // lapin's own logs on (Worker::start turns them off): a clean drain
    // must not make it log an error either.
    let mut w = Worker::spawn(
        &url,
        &store,
        &["--concurrency", "2", "--grace-secs", "120"],
        &[("IMGWORKER_LOG", "info")],
    );
    let end = Instant::now() + Duration::from_secs(60);
    while w.metric("imgworker_jobs_in_flight") < 1.0 {
        assert!(Instant::now() < end, "no job started; log:\n{}", w.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let started_before = depth(&url, "test.results").await.unwrap_or(0);
    w.signal(libc::SIGTERM);
    let code = w.wait_exit(Duration::from_secs(150));
    assert_eq!(code, Some(0), "log:\n{}", w.log());
    let res = results(&url).await;
    let done = distinct_succeeded(&res).len();
    assert!(
        done as u64 > started_before,
        "the job in flight at SIGTERM was finished ({done} done, {started_before} before)"
    );
    assert!(
        done < n,
        "the worker stopped taking jobs ({done} of {n} done)"
    );
    // Every finished job was acked; the rest wait in the queue.
    assert_eq!(
        depth(&url, "imgworker.jobs").await,
        Some((n - done) as u64),
        "log:\n{}",
        w.log()
    );
    let mut names = objects(&store);
    names.retain(|n| n.ends_with(".png"));
    assert_eq!(names.len(), done);
    assert!(
        w.log().contains("every job in flight finished"),
        "{}",
        w.log()
    );
    let errors: Vec<String> = w
        .log()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(String::from)
        .collect();
    assert!(
        errors.is_empty(),
        "a clean drain logged errors: {errors:#?}\nlog:\n{}",
        w.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_correctly_signed_jobs_run() {
    let _serial = SERIAL.lock().await;
    let url = vhost("signed");
    prepare(&url, 5).await;
    let (dir, store) = store_with_source((16, 16));
    let w = Worker::start(
        &url,
        &store,
        &["--signing-keys", "k1:first-secret,k2:second-secret"],
    );
    w.wait_ready();
    // Unsigned.
    publish(&url, &[job("unsigned", "v0", json!([]))], None).await;
    // Tampered: signed, then the body changed.
    let keys = imgworker::queue::SigningKeys::parse("k2:second-secret").unwrap();
    let original = job("tampered", "v0", json!([]));
    let sig = keys.sign("k2", &original).unwrap();
    let mut h = FieldTable::default();
    h.insert(
        "x-imgworker-key-id".into(),
        lapin::types::AMQPValue::LongString("k2".into()),
    );
    h.insert(
        "x-imgworker-signature".into(),
        lapin::types::AMQPValue::LongString(sig.as_str().into()),
    );
    publish(&url, &[job("tampered", "v1", json!([]))], Some(h)).await;
    // Signed by `submit` (first key), waiting for the result over reply_to.
    let path = dir.path().join("signed.json");
    std::fs::write(&path, job("signed", "v2", json!([{"op": "invert"}]))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .args([
            "submit",
            "--amqp-url",
            &url,
            "--signing-keys",
            "k2:second-secret",
            "--wait",
            "--timeout-secs",
            "60",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(printed["id"], "signed");
    assert_eq!(printed["status"], "succeeded");
    wait_depth(&url, "imgworker.dead", 2, Duration::from_secs(30), Some(&w)).await;
    let dead = drain_queue(&url, "imgworker.dead").await;
    for (h, _) in &dead {
        assert_eq!(
            header(h, "x-imgworker-error").as_deref(),
            Some("invalid_signature")
        );
    }
    assert_eq!(
        objects(&store),
        vec!["v2.json".to_string(), "v2.png".to_string()]
    );
}

/// Signature headers as AMQP byte arrays (what Python's pika sends for
/// `bytes` values) are read like strings: a correct signature runs, a wrong
/// one is refused as `invalid_signature`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_in_byte_array_headers_are_checked_like_strings() {
    use lapin::types::{AMQPValue, ByteArray};
    let _serial = SERIAL.lock().await;
    let url = vhost("signed-bytes");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((16, 16));
    let w = Worker::start(&url, &store, &["--signing-keys", "k1:first-secret"]);
    w.wait_ready();
    let keys = imgworker::queue::SigningKeys::parse("k1:first-secret").unwrap();
    let headers = |key_id: &str, sig: &str| {
        let mut h = FieldTable::default();
        h.insert(
            "x-imgworker-key-id".into(),
            AMQPValue::ByteArray(ByteArray::from(key_id.as_bytes())),
        );
        h.insert(
            "x-imgworker-signature".into(),
            AMQPValue::ByteArray(ByteArray::from(sig.as_bytes())),
        );
        h
    };
    let good = job("bytes-ok", "v0", json!([{"op": "invert"}]));
    let sig = keys.sign("k1", &good).unwrap();
    publish(&url, &[good], Some(headers("k1", &sig))).await;
    // Signed correctly, but for another body.
    let bad = job("bytes-bad", "v1", json!([]));
    publish(&url, &[bad], Some(headers("k1", &sig))).await;

    wait_depth(&url, "imgworker.dead", 1, Duration::from_secs(30), Some(&w)).await;
    wait_results(&url, 2, Duration::from_secs(30), &w).await;
    let mut res: Vec<(String, String, String)> = results(&url)
        .await
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["error"]["code"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    res.sort();
    assert_eq!(
        res,
        vec![
            (
                "bytes-bad".into(),
                "failed".into(),
                "invalid_signature".into()
            ),
            ("bytes-ok".into(), "succeeded".into(), String::new()),
        ],
        "log:\n{}",
        w.log()
    );
    let dead = drain_queue(&url, "imgworker.dead").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0].0, "x-imgworker-error").as_deref(),
        Some("invalid_signature")
    );
    // The dead letter keeps the original headers, byte arrays included.
    assert!(matches!(
        dead[0].0.inner().get("x-imgworker-signature"),
        Some(AMQPValue::ByteArray(_))
    ));
    assert_eq!(
        objects(&store),
        vec!["v0.json".to_string(), "v0.png".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints_answer() {
    let _serial = SERIAL.lock().await;
    // A worker that cannot reach its broker is alive but not ready.
    let (_d, store) = store_with_source((16, 16));
    let closed = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let lonely = Worker::start(&closed, &store, &[]);
    let end = Instant::now() + Duration::from_secs(20);
    while lonely.get("/healthz").0 != 200 {
        assert!(Instant::now() < end, "no /healthz; log:\n{}", lonely.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lonely.get("/readyz").0, 503);
    drop(lonely);

    let url = vhost("metrics");
    prepare(&url, 5).await;
    let w = Worker::start(&url, &store, &[]);
    w.wait_ready();
    publish(
        &url,
        &[
            job("ok", "v0", json!([{"op": "invert"}])),
            job(
                "bad",
                "v1",
                json!([{"op": "crop", "x": 0, "y": 0, "width": 999, "height": 1}]),
            ),
        ],
        None,
    )
    .await;
    wait_depth(&url, "test.results", 2, Duration::from_secs(30), Some(&w)).await;
    // A job's metrics are recorded once its result is confirmed, a moment
    // after the result reaches the queue: poll until they show.
    let needles = [
        "imgworker_jobs_total{status=\"succeeded\",code=\"\",backend=\"cpu\"} 1",
        "imgworker_jobs_total{status=\"failed\",code=\"invalid_param\",backend=\"\"} 1",
        "imgworker_stage_duration_seconds_count{stage=\"decode\"} 1",
        "imgworker_jobs_in_flight 0",
        "imgworker_dead_lettered_total 1",
        "imgworker_gpu_fallbacks_total 0",
        "imgworker_broker_reconnects_total 0",
    ];
    let end = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = w.get("/metrics");
        assert_eq!(status, 200);
        if needles.iter().all(|n| body.contains(n)) || Instant::now() > end {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for needle in needles {
        assert!(body.contains(needle), "missing `{needle}` in:\n{body}");
    }
    assert_eq!(w.get("/healthz").0, 200);
    assert_eq!(w.get("/readyz").0, 200);
    // No keys, ids or content in metric labels.
    assert!(!body.contains("t/img") && !body.contains("\"ok\""));
}

/// `consume` is used by results-over-reply_to in `submit`; here it checks
/// the reply carries the correlation id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_go_to_reply_to_with_the_correlation_id() {
    let _serial = SERIAL.lock().await;
    let url = vhost("reply");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((16, 16));
    let w = Worker::start(&url, &store, &[]);
    w.wait_ready();
    let conn = connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    ch.queue_declare(
        "test.reply".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            "test.reply".into(),
            "t".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let props = BasicProperties::default()
        .with_reply_to("test.reply".into())
        .with_correlation_id("corr-42".into());
    imgworker::queue::publish::confirmed(
        &ch,
        "",
        "imgworker.jobs",
        &job("rpc", "v0", json!([])),
        props,
    )
    .await
    .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("a reply")
        .unwrap()
        .unwrap();
    d.acker.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(
        d.properties.correlation_id().as_ref().unwrap().as_str(),
        "corr-42"
    );
    let r: Value = serde_json::from_slice(&d.data).unwrap();
    assert_eq!(
        (r["id"].as_str(), r["status"].as_str()),
        (Some("rpc"), Some("succeeded"))
    );
    // And on the topic exchange under `edit.succeeded`.
    let topic = results(&url).await;
    assert_eq!(topic.len(), 1);
    conn.close(200, "ok".into()).await.unwrap();
}

/// The shipped definitions declare exactly what the worker declares, so a
/// broker loaded from them accepts the worker's declarations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_definitions_match_the_declared_topology() {
    let _serial = SERIAL.lock().await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rabbitmq/definitions.json");
    let defs: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let topo = imgworker::queue::Topology::default();
    let queue = |name: &str| {
        defs["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("queue {name} missing"))
            .clone()
    };
    let jobs = queue(&topo.jobs_queue);
    assert_eq!(jobs["durable"], true);
    assert_eq!(jobs["arguments"]["x-queue-type"], "quorum");
    assert_eq!(jobs["arguments"]["x-delivery-limit"], topo.delivery_limit);
    assert_eq!(
        jobs["arguments"]["x-dead-letter-exchange"],
        topo.dead_letter_exchange.as_str()
    );
    assert_eq!(
        queue(&topo.dead_queue)["arguments"]["x-queue-type"],
        "quorum"
    );
    let retry = &queue(&topo.retry_queue)["arguments"];
    assert_eq!(retry["x-queue-type"], "quorum");
    assert_eq!(retry["x-dead-letter-exchange"], "");
    assert_eq!(retry["x-dead-letter-routing-key"], topo.jobs_queue.as_str());
    assert_eq!(retry["x-dead-letter-strategy"], "at-least-once");
    assert_eq!(retry["x-overflow"], "reject-publish");
    let exchange = |name: &str| {
        defs["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["type"]
            .clone()
    };
    assert_eq!(exchange(&topo.dead_letter_exchange), "fanout");
    assert_eq!(exchange(&topo.results_exchange), "topic");
    assert_eq!(exchange(&topo.audit_exchange), "fanout");
    assert_eq!(
        queue(&topo.audit_queue)["arguments"]["x-queue-type"],
        "quorum"
    );
    assert!(
        defs["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["source"] == topo.audit_exchange.as_str()
                && b["destination"] == topo.audit_queue.as_str()),
        "the audit queue is not bound"
    );
    let b = &defs["bindings"][0];
    assert_eq!(
        (b["source"].as_str(), b["destination"].as_str()),
        (Some("imgworker.dlx"), Some("imgworker.dead"))
    );

    // Importing them into a vhost and declaring again is accepted (the
    // arguments agree), twice (idempotent).
    let url = vhost("definitions");
    let vh = url.rsplit('/').next().unwrap().to_string();
    let mut defs = defs.clone();
    for list in ["exchanges", "queues", "bindings"] {
        for item in defs[list].as_array_mut().unwrap() {
            item["vhost"] = json!(vh);
        }
    }
    defs["vhosts"] = json!([{"name": vh}]);
    let mut import = Command::new("rabbitmqctl")
        .args(["import_definitions", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    import
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&defs).unwrap())
        .unwrap();
    let out = import.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    topo.declare(&ch)
        .await
        .expect("the worker's declarations agree with the definitions");
    topo.declare(&ch).await.expect("declaring twice is a no-op");
    conn.close(200, "ok".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_cancelled_by_the_server_resubscribes() {
    let _serial = SERIAL.lock().await;
    let url = vhost("cancel");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((16, 16));
    let w = Worker::start(&url, &store, &[]);
    w.wait_ready();
    // Deleting the queue cancels its consumers server-side.
    let conn = connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete("imgworker.jobs".into(), Default::default())
        .await
        .unwrap();
    conn.close(200, "ok".into()).await.unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while w.metric("imgworker_broker_reconnects_total") < 1.0 || w.get("/readyz").0 != 200 {
        assert!(Instant::now() < end, "no resubscription; log:\n{}", w.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The worker re-declared the queue and consumes from it again.
    publish(&url, &[job("after-cancel", "v0", json!([]))], None).await;
    wait_depth(&url, "test.results", 1, Duration::from_secs(30), Some(&w)).await;
    assert_eq!(
        objects(&store),
        vec!["v0.json".to_string(), "v0.png".to_string()]
    );
}

/// The editing vocabulary through the queue on the GPU backend: a patch
/// composited through a feathered mask, levels, curves, a LUT and a masked
/// pixelate; then a re-edit of that version rendered from the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_ops_and_a_re_edit_from_the_original_through_the_queue() {
    let _serial = SERIAL.lock().await;
    let url = vhost("editing");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((48, 32));
    let img = store.join("t/img");
    std::fs::write(
        img.join("patch.png"),
        common::png_bytes(&common::test_image(20, 12, 4, true)),
    )
    .unwrap();
    std::fs::write(
        img.join("mask.png"),
        common::png_bytes(&common::test_image(48, 32, 5, true)),
    )
    .unwrap();
    std::fs::write(img.join("grade.cube"), common::grade_cube_text(9)).unwrap();
    // On the GPU backend (Mesa's lavapipe where there is no GPU): the CLI
    // test runs the same ops on both backends through `imgworker run`.
    let w = Worker::start(&url, &store, &["--backend", "gpu"]);
    w.wait_ready();
    let edit = job(
        "edit",
        "v1",
        json!([
            {"op": "composite", "source": "patch.png", "gravity": "center", "blend": "multiply",
             "mask": {"object": "mask.png", "feather": 2}},
            {"op": "levels", "white": 0.9},
            {"op": "curves", "points": [[0, 0.05], [1, 0.95]]},
            {"op": "lut", "object": "grade.cube", "interpolation": "trilinear"},
            {"op": "pixelate", "size": 6, "mask": {"object": "mask.png", "invert": true}}
        ]),
    );
    publish(&url, &[edit], None).await;
    wait_results(&url, 1, Duration::from_secs(60), &w).await;
    let mut reedit: Value =
        serde_json::from_slice(&job("reedit", "v2", json!([{"op": "invert"}]))).unwrap();
    reedit["source"] = json!("v1.png");
    reedit["from"] = json!("original");
    publish(&url, &[serde_json::to_vec(&reedit).unwrap()], None).await;
    wait_results(&url, 2, Duration::from_secs(60), &w).await;
    let res = results(&url).await;
    assert_eq!(distinct_succeeded(&res).len(), 2, "{res:?}\n{}", w.log());
    assert!(res.iter().all(|r| r["backend"] == "gpu"), "{res:?}");
    let m: Value = serde_json::from_slice(&std::fs::read(img.join("v2.json")).unwrap()).unwrap();
    assert_eq!(m["parent"], "v1.png");
    assert_eq!(m["recipe"]["from_original"]["object"], "original.png");
    assert_eq!(
        m["recipe"]["from_original"]["ops"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let (v1, v2) = (
        image::load_from_memory(&std::fs::read(img.join("v1.png")).unwrap())
            .unwrap()
            .to_rgba8(),
        image::load_from_memory(&std::fs::read(img.join("v2.png")).unwrap())
            .unwrap()
            .to_rgba8(),
    );
    for (a, b) in v2.pixels().zip(v1.pixels()) {
        assert_eq!(a.0[..3], [255 - b.0[0], 255 - b.0[1], 255 - b.0[2]]);
    }
}
