//! Jobs per second through a real RabbitMQ broker (on 127.0.0.1:5672 with
//! guest/guest; vhost `/`, queue names of its own, deleted afterwards).
//!
//! - `cargo bench --bench queue_throughput [-- JOBS CONCURRENCY]`: small
//!   images, one worker in-process (CPU backend, memory storage): publish
//!   JOBS jobs, time until every confirmed result has arrived; beside the
//!   same jobs through the engine alone, CONCURRENCY at a time.
//! - `cargo bench --bench queue_throughput -- processes [JOBS [ROUNDS]]`:
//!   1920x1080 photo jobs (scripts/fetch-photos.sh) through 1, 2 and 4
//!   `imgworker serve` processes on a local folder, against the engine
//!   alone (the same jobs in-process, no broker), alternating round by
//!   round; with where a job's time goes (its stages, from the results'
//!   timings, and what is left: the queue and the process).

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use imgworker::backend::Backend;
use imgworker::config::WorkerConfig;
use imgworker::metrics::Metrics;
use imgworker::pipeline::Engine;
use imgworker::queue::{ServeConfig, Topology};
use imgworker::storage::MemoryStorage;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn source_png() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(320, 240, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8, 255])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !std::env::args().any(|a| a == "--bench") {
        // Built by `cargo test --all-targets`; only `cargo bench` runs it.
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    if args.first().map(String::as_str) == Some("processes") {
        let jobs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(120);
        let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
        rt.block_on(processes::run(jobs, rounds));
        return;
    }
    let jobs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    rt.block_on(run(jobs, concurrency));
}

/// A topology of its own for a bench run (`imgworker.bench.{tag}.*`).
fn bench_topology(tag: &str) -> Topology {
    let name = |what: &str| format!("imgworker.bench.{tag}.{what}");
    Topology {
        jobs_queue: name("jobs"),
        dead_letter_exchange: name("dlx"),
        dead_queue: name("dead"),
        results_exchange: name("results"),
        audit_exchange: name("audit"),
        audit_queue: name("audit"),
        retry_queue: name("retry"),
        delivery_limit: 5,
    }
}

/// Declare `topo` on `ch` and an exclusive queue bound to every result.
async fn declare_with_results(ch: &lapin::Channel, topo: &Topology) -> lapin::Consumer {
    topo.declare(ch).await.unwrap();
    let results = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    ch.queue_bind(
        results.name().clone(),
        topo.results_exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_consume(
        results.name().clone(),
        "bench".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap()
}

/// Publish job bodies to `queue`, each confirmed.
async fn publish_jobs(ch: &lapin::Channel, queue: &str, bodies: &[Vec<u8>]) {
    for body in bodies {
        imgworker::queue::publish::confirmed(
            ch,
            "",
            queue,
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();
    }
}

/// Delete `topo`'s queues.
async fn delete_queues(ch: &lapin::Channel, topo: &Topology) {
    for q in [
        &topo.jobs_queue,
        &topo.dead_queue,
        &topo.audit_queue,
        &topo.retry_queue,
    ] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}

/// Wait for `n` results on `consumer` (acking each), their bodies.
async fn collect_results(consumer: &mut lapin::Consumer, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let d = tokio::time::timeout(Duration::from_secs(120), consumer.next())
            .await
            .expect("results stopped arriving")
            .unwrap()
            .unwrap();
        d.acker.ack(BasicAckOptions::default()).await.unwrap();
        out.push(d.data);
        if out.len() % 100 == 0 {
            eprintln!("{}/{n} results", out.len());
        }
    }
    out
}

mod processes {
    //! Worker processes against the engine alone, on 1920x1080 photo jobs.

    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use imgworker::backend::Backend;
    use imgworker::config::WorkerConfig;
    use imgworker::pipeline::Engine;
    use imgworker::result::{ResultMessage, Status};
    use imgworker::storage::LocalStorage;
    use lapin::{Connection, ConnectionProperties};

    use super::{
        bench_topology, collect_results, declare_with_results, delete_queues, publish_jobs, URL,
    };

    /// Slots per worker process (and of the engine alone).
    const CONCURRENCY: usize = 2;
    const IMAGE: &str = "bench/photo";

    fn job(i: usize) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schema": 1, "id": format!("p{i}"), "type": "edit", "image": IMAGE,
            "source": "original.jpg",
            "ops": [{"op": "resize", "width": 1280}, {"op": "adjust", "contrast": 1.1}],
            "outputs": [{"version": format!("v{i}"), "format": "jpeg", "quality": 85}],
        }))
        .unwrap()
    }

    /// Mean stage times (ms) of succeeded results.
    #[derive(Default, Clone, Copy)]
    struct Stages {
        fetch: f64,
        decode: f64,
        ops: f64,
        encode: f64,
        store: f64,
        total: f64,
    }

    fn stages(results: &[ResultMessage]) -> Stages {
        let mut s = Stages::default();
        let mut n = 0.0;
        for r in results {
            assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
            let t = r.timings_ms.as_ref().expect("timings");
            s.fetch += t.fetch;
            s.decode += t.decode;
            s.ops += t.ops;
            s.encode += t.encode;
            s.store += t.store;
            s.total += t.total;
            n += 1.0;
        }
        for v in [
            &mut s.fetch,
            &mut s.decode,
            &mut s.ops,
            &mut s.encode,
            &mut s.store,
            &mut s.total,
        ] {
            *v /= n;
        }
        s
    }

    /// The engine alone: `jobs` jobs, `CONCURRENCY` at a time, in-process on
    /// the same folder. Jobs/s and mean stages.
    async fn engine_alone(store: &Path, jobs: usize) -> (f64, Stages) {
        let storage = Arc::new(LocalStorage::new(store).unwrap());
        let engine = Engine::new(WorkerConfig::new(), storage, Backend::Cpu);
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..jobs {
            let permit = slots.clone().acquire_owned().await.unwrap();
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let out = engine.run(&job(i), 1).await;
                drop(permit);
                out.result
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        (
            jobs as f64 / started.elapsed().as_secs_f64(),
            stages(&results),
        )
    }

    struct Process(Child);

    impl Drop for Process {
        fn drop(&mut self) {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn ready(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = write!(
            s,
            "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.starts_with("HTTP/1.1 200")
    }

    /// `n` worker processes on one queue: jobs/s from the first publish to
    /// the last result, and mean stages.
    async fn through_processes(store: &Path, n: usize, jobs: usize) -> (f64, Stages) {
        let topo = bench_topology(&format!("p{n}"));
        let conn = Connection::connect(URL, ConnectionProperties::default())
            .await
            .expect("RabbitMQ on 127.0.0.1:5672 (start it with scripts/test.sh)");
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        let mut consumer = declare_with_results(&ch, &topo).await;
        let mut workers = Vec::new();
        for _ in 0..n {
            let port = free_port();
            let child = Command::new(env!("CARGO_BIN_EXE_imgworker"))
                .args(["serve", "--amqp-url", URL, "--backend", "cpu"])
                .args(["--concurrency", &CONCURRENCY.to_string()])
                .args(["--http-addr", &format!("127.0.0.1:{port}")])
                .args(["--jobs-queue", &topo.jobs_queue])
                .args(["--dead-letter-exchange", &topo.dead_letter_exchange])
                .args(["--dead-queue", &topo.dead_queue])
                .args(["--results-exchange", &topo.results_exchange])
                .args(["--audit-exchange", &topo.audit_exchange])
                .args(["--audit-queue", &topo.audit_queue])
                .args(["--retry-queue", &topo.retry_queue])
                .arg("--storage")
                .arg(store)
                .env("IMGWORKER_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("the imgworker binary");
            workers.push((Process(child), port));
        }
        let end = Instant::now() + Duration::from_secs(60);
        while !workers.iter().all(|(_, port)| ready(*port)) {
            assert!(Instant::now() < end, "the workers never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let bodies: Vec<Vec<u8>> = (0..jobs).map(job).collect();
        let started = Instant::now();
        publish_jobs(&ch, &topo.jobs_queue, &bodies).await;
        let results: Vec<ResultMessage> = collect_results(&mut consumer, jobs)
            .await
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        let rate = jobs as f64 / started.elapsed().as_secs_f64();
        drop(workers);
        delete_queues(&ch, &topo).await;
        let _ = conn.close(200, "done".into()).await;
        (rate, stages(&results))
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub async fn run(jobs: usize, rounds: usize) {
        let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("photos/bench/1920x1080.jpg");
        assert!(photo.exists(), "run scripts/fetch-photos.sh first");
        let store: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("queue-bench-store");
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(store.join(IMAGE)).unwrap();
        std::fs::copy(&photo, store.join(IMAGE).join("original.jpg")).unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut rates: Vec<(String, Vec<f64>, Stages)> = Vec::new();
        let mut record = |name: String, rate: f64, st: Stages| {
            eprintln!("{name}: {rate:.1} jobs/s");
            match rates.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, v, _)) => v.push(rate),
                None => rates.push((name, vec![rate], st)),
            }
        };
        for round in 1..=rounds {
            eprintln!("round {round} of {rounds}");
            let (r, st) = engine_alone(&store, jobs).await;
            record("engine alone".into(), r, st);
            for n in [1, 2, 4] {
                let (r, st) = through_processes(&store, n, jobs).await;
                record(
                    format!("{n} worker process{}", if n == 1 { "" } else { "es" }),
                    r,
                    st,
                );
            }
        }
        let _ = std::fs::remove_dir_all(&store);
        println!(
            "queue_throughput processes: {jobs} jobs per run (1920x1080 JPEG -> resize 1280 + adjust -> JPEG q85, local folder), {CONCURRENCY} slots per process, {cores} cores, {rounds} alternating rounds (median)"
        );
        println!("| run | jobs/s | fetch | decode | ops | encode | store | job total | per job, wall x slots | left: queue and process |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let engine_rate = median(rates[0].1.clone());
        for (name, v, st) in &rates {
            let rate = median(v.clone());
            let slots = if name == "engine alone" {
                CONCURRENCY
            } else {
                CONCURRENCY * name.split(' ').next().unwrap().parse::<usize>().unwrap()
            };
            // The time a slot spends per job, and what of it is not the job.
            let per_job = 1000.0 * slots as f64 / rate;
            println!(
                "| {name} | {rate:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {per_job:.1} | {:.1} |",
                st.fetch, st.decode, st.ops, st.encode, st.store, st.total, per_job - st.total
            );
        }
        let one = median(rates[1].1.clone());
        println!(
            "overhead of the queue and the process (1 worker process against the engine alone): {:.1} %",
            100.0 * (engine_rate / one - 1.0)
        );
    }
}

async fn run(jobs: usize, concurrency: usize) {
    let topo = bench_topology("small");
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (start it with scripts/test.sh)");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut consumer = declare_with_results(&ch, &topo).await;

    let storage = Arc::new(MemoryStorage::new());
    storage.insert("bench/img/original.png", source_png());
    let engine = Engine::new(WorkerConfig::new(), storage, Backend::Cpu);
    let broker = imgworker::queue::BrokerEndpoint::new(URL, &Default::default()).unwrap();
    let mut cfg = ServeConfig::new(broker);
    cfg.topology = topo.clone();
    cfg.concurrency = concurrency;
    let (tx, rx) = tokio::sync::watch::channel(false);

    let bodies: Vec<Vec<u8>> = (0..jobs)
        .map(|i| {
            serde_json::to_vec(&serde_json::json!({
                "schema": 1, "id": format!("b{i}"), "type": "edit", "image": "bench/img",
                "source": "original.png",
                "ops": [{"op": "resize", "width": 160}, {"op": "adjust", "contrast": 1.1}],
                "outputs": [{"version": format!("v{i}"), "format": "jpeg", "quality": 85}],
            }))
            .unwrap()
        })
        .collect();
    // The same jobs through the engine alone (no broker), `concurrency` at
    // a time: the most the broker run could reach.
    let alone = {
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(jobs);
        for body in &bodies {
            let permit = slots.clone().acquire_owned().await.unwrap();
            let (engine, body) = (engine.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let out = engine.run(&body, 1).await;
                drop(permit);
                out.result.status
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), imgworker::result::Status::Succeeded);
        }
        jobs as f64 / started.elapsed().as_secs_f64()
    };
    publish_jobs(&ch, &topo.jobs_queue, &bodies).await;
    let started = Instant::now();
    let worker = tokio::spawn(imgworker::queue::serve(
        engine,
        cfg,
        Arc::new(Metrics::new()),
        rx,
    ));
    collect_results(&mut consumer, jobs).await;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = tx.send(true);
    worker.await.unwrap().unwrap();
    println!(
        "queue_throughput: {jobs} jobs (320x240 PNG -> resize 160 + adjust -> JPEG q85), concurrency {concurrency}, {} cores: {elapsed:.2} s, {:.1} jobs/s (the engine alone, no broker: {alone:.1} jobs/s)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        jobs as f64 / elapsed
    );
    delete_queues(&ch, &topo).await;
    let _ = conn.close(200, "done".into()).await;
}
