//! Jobs per second for small images through a real RabbitMQ broker:
//! publish N jobs, run one worker in-process (CPU backend, memory storage),
//! and time until N confirmed results have arrived.
//!
//! `cargo bench --bench queue_throughput [-- JOBS CONCURRENCY]`
//! (needs RabbitMQ on 127.0.0.1:5672 with guest/guest; it uses vhost `/`
//! and its own queue names, deleted afterwards).

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
    let jobs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run(jobs, concurrency));
}

async fn run(jobs: usize, concurrency: usize) {
    let topo = Topology {
        jobs_queue: "imgworker.bench.jobs".into(),
        dead_letter_exchange: "imgworker.bench.dlx".into(),
        dead_queue: "imgworker.bench.dead".into(),
        results_exchange: "imgworker.bench.results".into(),
        audit_exchange: "imgworker.bench.audit".into(),
        audit_queue: "imgworker.bench.audit".into(),
        delivery_limit: 5,
    };
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672 (start it with scripts/test.sh)");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    topo.declare(&ch).await.unwrap();
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

    let storage = Arc::new(MemoryStorage::new());
    storage.insert("bench/img/original.png", source_png());
    let engine = Engine::new(WorkerConfig::new(), storage, Backend::Cpu);
    let broker = imgworker::queue::BrokerEndpoint::new(URL, &Default::default()).unwrap();
    let mut cfg = ServeConfig::new(broker);
    cfg.topology = topo.clone();
    cfg.concurrency = concurrency;
    let (tx, rx) = tokio::sync::watch::channel(false);

    for i in 0..jobs {
        let body = serde_json::to_vec(&serde_json::json!({
            "schema": 1, "id": format!("b{i}"), "type": "edit", "image": "bench/img",
            "source": "original.png",
            "ops": [{"op": "resize", "width": 160}, {"op": "adjust", "contrast": 1.1}],
            "outputs": [{"version": format!("v{i}"), "format": "jpeg", "quality": 85}],
        }))
        .unwrap();
        imgworker::queue::publish::confirmed(
            &ch,
            "",
            &topo.jobs_queue,
            &body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();
    }
    let mut consumer = ch
        .basic_consume(
            results.name().clone(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let worker = tokio::spawn(imgworker::queue::serve(
        engine,
        cfg,
        Arc::new(Metrics::new()),
        rx,
    ));
    let mut seen = 0;
    while seen < jobs {
        let d = tokio::time::timeout(Duration::from_secs(120), consumer.next())
            .await
            .expect("results stopped arriving")
            .unwrap()
            .unwrap();
        d.acker.ack(BasicAckOptions::default()).await.unwrap();
        seen += 1;
        if seen % 100 == 0 {
            eprintln!("{seen}/{jobs} results");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = tx.send(true);
    worker.await.unwrap().unwrap();
    println!(
        "queue_throughput: {jobs} jobs (320x240 PNG -> resize 160 + adjust -> JPEG q85), concurrency {concurrency}, {} cores: {elapsed:.2} s, {:.1} jobs/s",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        jobs as f64 / elapsed
    );
    for q in [&topo.jobs_queue, &topo.dead_queue, &topo.audit_queue] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "done".into()).await;
}
