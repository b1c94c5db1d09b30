//! Decode and encode per format at 1920x1080 and 3840x2160, and whole
//! standard jobs (decode, ops, encode, through the engine with memory
//! storage) on the 3840x2160 photo, CPU backend; signing Content
//! Credentials per format at 1920x1080, and one standard job with and
//! without them, side by side. Run as a test (`cargo test --all-targets`),
//! each bench runs once at 1024x576 instead.
//!
//! `cargo bench --bench codecs [-- FILTER]` (needs scripts/fetch-photos.sh).

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use imgworker::backend::Backend;
use imgworker::bench::jobs;
use imgworker::codec::{encode, SourceImage};
use imgworker::config::{Limits, WorkerConfig};
use imgworker::content_credentials::{Claim, ContentCredentials, DigitalSourceType};
use imgworker::job::{Encoding, Format};
use imgworker::pipeline::Engine;
use imgworker::result::Status;
use imgworker::storage::MemoryStorage;

fn encoding(format: Format) -> Encoding {
    Encoding {
        format,
        quality: format.default_quality().map(|_| match format {
            Format::Jpeg => jobs::JPEG_QUALITY,
            Format::Webp => jobs::WEBP_QUALITY,
            _ => 60,
        }),
        lossless: false,
        keep_exif: false,
        speed: None,
        chroma_subsampling: None,
        jpeg: None,
        max_bytes: None,
        min_quality: None,
    }
}

fn codecs(c: &mut Criterion) {
    let frames = common::photo_frames();
    let lim = Limits::default();
    let mut group = c.benchmark_group("codecs");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // Measured at 1920x1080 and up; a test run's one frame is the smallest.
    let coded = if common::measuring() {
        &frames[1..]
    } else {
        &frames[..]
    };
    for img in coded {
        let (w, h) = img.dimensions();
        let size = format!("{w}x{h}");
        group.throughput(Throughput::Elements(u64::from(w) * u64::from(h)));
        for f in [Format::Jpeg, Format::Png, Format::Webp, Format::Avif] {
            let enc = encoding(f);
            group.bench_with_input(
                BenchmarkId::new(format!("encode/{}", f.ext()), &size),
                img,
                |b, img| b.iter(|| encode(img, &enc, None, None).expect("encodes")),
            );
            if f == Format::Webp {
                // libwebp with its second thread off, beside the row above.
                let one = imgworker::codec::webp::WebpOptions {
                    lossless: false,
                    quality: f32::from(jobs::WEBP_QUALITY),
                    threads: false,
                };
                group.bench_with_input(
                    BenchmarkId::new("encode/webp-one-thread", &size),
                    img,
                    |b, img| {
                        b.iter(|| imgworker::codec::webp::encode(img, true, one).expect("encodes"))
                    },
                );
            }
            let bytes = encode(img, &enc, None, None).unwrap();
            group.bench_with_input(
                BenchmarkId::new(format!("decode/{}", f.ext()), &size),
                &bytes,
                |b, bytes| {
                    b.iter(|| {
                        SourceImage::open(bytes, &lim)
                            .and_then(SourceImage::decode)
                            .expect("decodes")
                    })
                },
            );
        }
    }
    // The photo as shipped: a progressive 8.3 MB JPEG.
    let photo = common::photo_bytes();
    group.throughput(Throughput::Elements(3840 * 2160));
    group.bench_function("decode/jpg/3840x2160-photo-progressive", |b| {
        b.iter(|| {
            SourceImage::open(&photo, &lim)
                .and_then(SourceImage::decode)
                .expect("decodes")
        })
    });
    group.finish();
}

/// The size of the whole jobs' photo: 3840x2160 when measuring, the
/// smallest bench size when each bench runs once as a test.
fn job_size() -> (u32, u32) {
    if common::measuring() {
        (3840, 2160)
    } else {
        common::SIZES[0]
    }
}

/// The photo at [`job_size`] (the shipped JPEG itself at 3840x2160, else
/// the photo scaled and encoded as JPEG) and every standard job's inputs,
/// in memory storage under `bench/photo`.
fn photo_storage() -> Arc<MemoryStorage> {
    let (w, h) = job_size();
    let storage = Arc::new(MemoryStorage::new());
    let photo = if (w, h) == (3840, 2160) {
        common::photo_bytes()
    } else {
        let frame = common::photo_frames()
            .into_iter()
            .find(|f| f.dimensions() == (w, h))
            .expect("a frame of the job size");
        encode(&frame, &encoding(Format::Jpeg), None, None).expect("encodes")
    };
    storage.insert("bench/photo/original.jpg", photo);
    for job in jobs::ALL {
        for (name, data) in job.inputs(w, h) {
            storage.insert(&format!("bench/photo/{name}"), data);
        }
    }
    storage
}

/// Time `job` on the photo through `engine`, as `name` in `group`.
fn bench_job(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    engine: &Engine,
    job: jobs::StandardJob,
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (w, h) = job_size();
    let body = serde_json::to_vec(&job.message("bench", "bench/photo", w, h)).unwrap();
    group.bench_function(name, |b| {
        b.iter(|| {
            let out = runtime.block_on(engine.run(&body, 1));
            assert_eq!(
                out.result.status,
                Status::Succeeded,
                "{:?}",
                out.result.error
            );
        })
    });
}

fn whole_jobs(c: &mut Criterion) {
    let engine = Engine::new(WorkerConfig::new(), photo_storage(), Backend::Cpu);
    let (w, h) = job_size();
    let mut group = c.benchmark_group(format!("jobs/cpu/{w}x{h}"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for job in jobs::ALL {
        bench_job(&mut group, &job.name(), &engine, job);
    }
    group.finish();
}

/// The test PKI's worker signer (`tests/fixtures/c2pa`).
fn signer() -> ContentCredentials {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c2pa");
    let read = |name: &str| std::fs::read(dir.join(name)).expect("the test PKI");
    ContentCredentials::new(&read("worker.chain"), &read("worker.key")).expect("signs")
}

fn content_credentials(c: &mut Criterion) {
    let cc = signer();
    let frames = common::photo_frames();
    // 1920x1080 when measuring; a test run's one frame otherwise.
    let img = frames
        .iter()
        .find(|f| f.dimensions() == (1920, 1080))
        .unwrap_or(&frames[0]);
    let (w, h) = img.dimensions();
    let parent = encode(img, &encoding(Format::Jpeg), None, None).unwrap();
    let claim = |parent| Claim {
        title: "v1",
        parent_title: "original.jpg",
        parent,
        parent_format: Some("jpg"),
        ops: vec![
            ("resize", "c2pa.resized"),
            ("adjust", "c2pa.color_adjustments"),
        ],
        digital_source_type: Some(DigitalSourceType::TrainedAlgorithmicMedia),
    };
    // A parent that carries a manifest of its own, as a re-edit's does.
    let signed_parent = cc.sign(&claim(&parent), Format::Jpeg, &parent).unwrap();
    let mut group = c.benchmark_group("content_credentials");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for f in [Format::Jpeg, Format::Png, Format::Webp, Format::Avif] {
        let version = encode(img, &encoding(f), None, None).unwrap();
        for (name, parent) in [("plain-parent", &parent), ("signed-parent", &signed_parent)] {
            group.bench_function(format!("sign/{}/{w}x{h}/{name}", f.ext()), |b| {
                b.iter(|| cc.sign(&claim(parent), f, &version).expect("signs"))
            });
        }
    }
    group.finish();

    // A whole standard job, signed and not, on the 3840x2160 photo.
    let storage = photo_storage();
    let job = jobs::ALL[0];
    let (w, h) = job_size();
    let mut group = c.benchmark_group(format!("content_credentials/job/cpu/{w}x{h}"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for (name, signing) in [("unsigned", None), ("signed", Some(Arc::new(signer())))] {
        let cfg = WorkerConfig {
            content_credentials: signing,
            ..WorkerConfig::new()
        };
        let engine = Engine::new(cfg, storage.clone(), Backend::Cpu);
        bench_job(&mut group, &format!("{}/{name}", job.name()), &engine, job);
    }
    group.finish();
}

criterion_group!(benches, codecs, whole_jobs, content_credentials);
criterion_main!(benches);
