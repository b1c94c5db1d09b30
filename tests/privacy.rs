//! The never-persisted guarantee, checked on a real worker (`imgworker
//! serve` against RabbitMQ on loopback, local-folder storage):
//! - a source carrying a sentinel string in EXIF, XMP and a JPEG comment,
//!   processed at trace log level: the sentinel is in no log line, result,
//!   manifest, output or dead-letter header; GPS is gone from the outputs
//!   (and kept where a job asks for `keep_exif`, so the check can fail);
//! - under strace, the worker opens no file for writing outside storage;
//! - after a job, the source bytes, its pixels and the encoded outputs are
//!   nowhere in the worker's memory (freed memory is wiped);
//! - core dumps are disabled;
//! - 2,000 jobs through one worker: resident memory and open file
//!   descriptors stay flat after warm-up.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use common::broker::*;
use common::{jpeg_bytes, png_bytes, test_image, with_segments};
use image::ImageDecoder;
use serde_json::{json, Value};

const SENTINEL: &str = "SENTINEL-7f3a9c2e-imgworker-privacy";

/// A little-endian TIFF block: IFD0 with ImageDescription (the sentinel),
/// Orientation 1 and a GPS IFD with latitude and longitude.
fn exif_with_gps(text: &str) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
        out.extend(tag.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(value.to_le_bytes());
    }
    let mut desc = text.as_bytes().to_vec();
    desc.push(0);
    if desc.len() % 2 == 1 {
        desc.push(0);
    }
    let ifd0 = 8u32;
    let desc_at = ifd0 + 2 + 3 * 12 + 4;
    let gps_at = desc_at + desc.len() as u32;
    let rationals_at = gps_at + 2 + 4 * 12 + 4;
    let mut t = b"II\x2a\x00".to_vec();
    t.extend(ifd0.to_le_bytes());
    t.extend(3u16.to_le_bytes());
    entry(&mut t, 0x010E, 2, (text.len() + 1) as u32, desc_at);
    entry(&mut t, 0x0112, 3, 1, 1);
    entry(&mut t, 0x8825, 4, 1, gps_at);
    t.extend(0u32.to_le_bytes());
    t.extend(&desc);
    t.extend(4u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, rationals_at);
    entry(&mut t, 0x0003, 2, 2, u32::from_le_bytes(*b"E\0\0\0"));
    entry(&mut t, 0x0004, 5, 3, rationals_at + 24);
    t.extend(0u32.to_le_bytes());
    for (num, den) in [(48, 1), (51, 1), (2988, 100), (2, 1), (17, 1), (4020, 100)] {
        t.extend((num as u32).to_le_bytes());
        t.extend((den as u32).to_le_bytes());
    }
    t
}

/// A JPEG with the sentinel in EXIF (plus GPS), in XMP and in a comment.
fn tagged_jpeg() -> Vec<u8> {
    let plain = jpeg_bytes(&test_image(96, 64, 11, false), 90);
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(exif_with_gps(SENTINEL));
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend(
        format!(
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
             <rdf:Description xmlns:dc=\"http://purl.org/dc/elements/1.1/\" dc:description=\"{SENTINEL}\"/>\
             </rdf:RDF></x:xmpmeta>"
        )
        .as_bytes(),
    );
    with_segments(
        &plain,
        &[(0xE1, &exif), (0xE1, &xmp), (0xFE, SENTINEL.as_bytes())],
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// The EXIF block of an encoded image, if it has one.
fn exif_of(bytes: &[u8]) -> Option<Vec<u8>> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .unwrap();
    let mut dec = reader.into_decoder().unwrap();
    dec.exif_metadata().unwrap()
}

/// Whether a TIFF block has a GPS IFD pointer (tag 0x8825, either byte order).
fn has_gps(tiff: &[u8]) -> bool {
    contains(tiff, &[0x25, 0x88, 0x04, 0x00]) || contains(tiff, &[0x88, 0x25, 0x00, 0x04])
}

fn worker_pid(w: &Worker) -> u32 {
    w.child.id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_never_leaks_into_logs_results_manifests_or_outputs() {
    let url = vhost("privacy-sentinel");
    prepare(&url, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("p/img")).unwrap();
    let source = tagged_jpeg();
    // The fixture really carries what the test looks for.
    assert!(contains(&source, SENTINEL.as_bytes()));
    assert!(has_gps(&exif_of(&source).unwrap()));
    std::fs::write(store.join("p/img/original.jpg"), &source).unwrap();
    // A truncated copy: its failure message must not quote the file either.
    std::fs::write(store.join("p/img/broken.jpg"), &source[..source.len() - 40]).unwrap();

    let worker = Worker::spawn(
        &url,
        &store,
        &["--log-format", "json"],
        &[("IMGWORKER_LOG", "trace")],
    );
    worker.wait_ready();
    let stripped = ["jpeg", "png", "webp", "avif"];
    let mut outputs: Vec<Value> = stripped
        .iter()
        .map(|f| json!({"version": format!("s-{f}"), "format": f}))
        .collect();
    outputs.push(json!({"version": "kept", "format": "jpeg", "metadata": "keep_exif"}));
    let jobs = vec![
        serde_json::to_vec(&json!({
            "schema": 1, "id": "sentinel-ok", "type": "edit", "image": "p/img",
            "source": "original.jpg", "ops": [{"op": "auto_orient"}, {"op": "resize", "width": 48}],
            "outputs": outputs,
        }))
        .unwrap(),
        serde_json::to_vec(&json!({
            "schema": 1, "id": "sentinel-broken", "type": "edit", "image": "p/img",
            "source": "broken.jpg", "outputs": [{"version": "b", "format": "png"}],
        }))
        .unwrap(),
    ];
    publish(&url, &jobs, None).await;
    wait_results(&url, 2, Duration::from_secs(60), &worker).await;
    wait_depth(
        &url,
        "imgworker.dead",
        1,
        Duration::from_secs(30),
        Some(&worker),
    )
    .await;
    let results = results(&url).await;
    let dead = drain_queue(&url, "imgworker.dead").await;
    let log = worker.log();
    drop(worker);

    let by_id: BTreeMap<String, &Value> = results
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(by_id["sentinel-ok"]["status"], "succeeded", "{results:?}");
    assert_eq!(by_id["sentinel-broken"]["error"]["code"], "decode_failed");

    // Logs: trace level was really on, and the sentinel is in no line.
    assert!(
        log.contains("\"level\":\"TRACE\""),
        "no trace lines logged:\n{log}"
    );
    assert!(log.contains("sentinel-ok"), "the job is not in the log");
    for line in log.lines() {
        assert!(
            !line.contains(SENTINEL),
            "a log line carries the sentinel: {line}"
        );
    }
    let sentinel = SENTINEL.as_bytes();
    for r in &results {
        assert!(!contains(r.to_string().as_bytes(), sentinel), "result: {r}");
    }
    for (headers, body) in &dead {
        assert!(!contains(format!("{headers:?}").as_bytes(), sentinel));
        assert!(!contains(body, sentinel));
    }
    for f in stripped {
        let ext = if f == "jpeg" { "jpg" } else { f };
        let out = std::fs::read(store.join(format!("p/img/s-{f}.{ext}"))).unwrap();
        assert!(!contains(&out, sentinel), "{f} output carries the sentinel");
        assert!(
            !contains(&out, b"http://ns.adobe.com/xap"),
            "{f} output carries XMP"
        );
        if f != "avif" {
            assert_eq!(exif_of(&out), None, "{f} output carries EXIF");
        }
        let manifest = std::fs::read(store.join(format!("p/img/s-{f}.json"))).unwrap();
        assert!(!contains(&manifest, sentinel), "{f} manifest");
    }
    // The control: a job that asks to keep EXIF gets it, GPS included, with
    // the orientation reset after auto_orient; XMP and the comment still go.
    let kept = std::fs::read(store.join("p/img/kept.jpg")).unwrap();
    let kept_exif = exif_of(&kept).expect("keep_exif output has EXIF");
    assert!(has_gps(&kept_exif));
    assert!(contains(&kept_exif, sentinel));
    assert!(!contains(&kept, b"http://ns.adobe.com/xap"));
    assert_eq!(kept.windows(2).filter(|w| w == &[0xFF, 0xFE]).count(), 0);
}

/// A PNG of random noise (nothing in it repeats), and its RGBA pixels.
fn noise_png(w: u32, h: u32, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut x = seed | 1;
    let raw: Vec<u8> = (0..w * h * 4)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 4 == 3 {
                255
            } else {
                (x >> 24) as u8
            }
        })
        .collect();
    let img = image::RgbaImage::from_raw(w, h, raw.clone()).unwrap();
    (png_bytes(&img), raw)
}

/// Which of `needles` occur in the readable memory of process `pid`.
fn find_in_memory(pid: u32, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap_or_else(|e| panic!("cannot open /proc/{pid}/mem ({e}); the test needs root"));
    let finders: Vec<_> = needles
        .iter()
        .map(|(name, n)| (name.as_str(), memchr::memmem::Finder::new(n)))
        .collect();
    let mut found = std::collections::BTreeSet::new();
    let mut scanned = 0u64;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        if !perms.starts_with('r')
            || path.starts_with("/")
            || path == "[vvar]"
            || path == "[vsyscall]"
        {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.read_exact_at(&mut buf, a).is_err() {
            continue;
        }
        scanned += b - a;
        for (name, finder) in &finders {
            if finder.find(&buf).is_some() {
                found.insert(name.to_string());
            }
        }
    }
    assert!(
        scanned > 1 << 20,
        "read only {scanned} bytes of the worker's memory"
    );
    found.into_iter().collect()
}

/// 48 bytes from the middle of `data`, at an odd offset.
fn window(data: &[u8]) -> Vec<u8> {
    let at = (data.len() / 2) | 1;
    data[at..at + 48].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_job_remains_in_the_workers_memory() {
    let url = vhost("privacy-memory");
    prepare(&url, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("m/img")).unwrap();
    let (source, pixels) = noise_png(640, 480, 0x5eed);
    std::fs::write(store.join("m/img/original.png"), &source).unwrap();
    for backend in ["cpu", "gpu"] {
        let worker = Worker::spawn(&url, &store, &[], &[("IMGWORKER_BACKEND", backend)]);
        worker.wait_ready();
        let job = serde_json::to_vec(&json!({
            "schema": 1, "id": format!("memory-{backend}"), "type": "edit", "image": "m/img",
            "source": "original.png",
            "ops": [{"op": "crop", "x": 1, "y": 1, "width": 600, "height": 400}],
            "outputs": [{"version": format!("{backend}-png"), "format": "png"},
                        {"version": format!("{backend}-jpg"), "format": "jpeg"},
                        {"version": format!("{backend}-webp"), "format": "webp", "lossless": true}],
        }))
        .unwrap();
        publish(&url, &[job], None).await;
        wait_results(&url, 1, Duration::from_secs(120), &worker).await;
        let r = &results(&url).await[0];
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["backend"], backend, "{r}");
        // The job is acked and its result published: nothing of it is in use.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut needles = vec![
            ("source bytes".to_string(), window(&source)),
            ("decoded pixels".to_string(), window(&pixels)),
            // The control: configuration the worker holds for its whole life.
            ("control".to_string(), b"imgworker.results".to_vec()),
        ];
        for ext in ["png", "jpg", "webp"] {
            let out = std::fs::read(store.join(format!("m/img/{backend}-{ext}.{ext}"))).unwrap();
            needles.push((format!("{ext} output"), window(&out)));
        }
        let found = find_in_memory(worker_pid(&worker), &needles);
        assert_eq!(
            found,
            vec!["control".to_string()],
            "{backend}: job data left in the worker's memory"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_writes_no_file_outside_storage() {
    let url = vhost("privacy-writes");
    prepare(&url, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("w/img")).unwrap();
    std::fs::write(store.join("w/img/original.jpg"), tagged_jpeg()).unwrap();
    let trace = dir.path().join("trace");
    let trace_arg = trace.display().to_string();
    for backend in ["cpu", "gpu"] {
        let mut worker = Worker::spawn_wrapped(
            &[
                "strace", "-f", "-qq", "-o", &trace_arg, "-e",
                "trace=open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,unlink,unlinkat,truncate",
            ],
            &url,
            &store,
            &[],
            &[("IMGWORKER_BACKEND", backend)],
        );
        worker.wait_ready();
        // The worker is strace's child; it must not outlive a failed test.
        let strace_pid = worker_pid(&worker);
        let children =
            std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children"))
                .unwrap();
        let traced = KillOnDrop(children.split_whitespace().next().unwrap().parse().unwrap());
        let jobs: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                serde_json::to_vec(&json!({
                    "schema": 1, "id": format!("{backend}-{i}"), "type": "edit", "image": "w/img",
                    "source": "original.jpg", "ops": [{"op": "resize", "width": 40}, {"op": "blur", "sigma": 1.0}],
                    "outputs": [{"version": format!("{backend}{i}"), "format": "webp"},
                                {"version": format!("{backend}{i}p"), "format": "png"}],
                }))
                .unwrap()
            })
            .collect();
        publish(&url, &jobs, None).await;
        wait_results(&url, 3, Duration::from_secs(120), &worker).await;
        for r in results(&url).await {
            assert_eq!(r["status"], "succeeded", "{r}");
            assert_eq!(r["backend"], backend, "{r}");
        }
        // SIGTERM the worker itself (strace's child); strace exits with it.
        // The wait is past the worker's 30 s drain grace: under strace, and
        // beside this file's 2,000-job soak on two cores, a clean exit once
        // took longer than 30 s.
        unsafe { libc::kill(traced.0, libc::SIGTERM) };
        assert!(
            worker.wait_exit(Duration::from_secs(90)).is_some(),
            "{}",
            worker.log()
        );

        let text = std::fs::read_to_string(&trace).unwrap();
        let store_prefix = store.display().to_string();
        let mut writes = Vec::new();
        let mut opened = 0;
        for line in text.lines() {
            let call = line.split_whitespace().nth(1).unwrap_or("");
            let name = call.split('(').next().unwrap_or("");
            let writing = match name {
                "open" | "openat" | "openat2" => {
                    opened += 1;
                    [
                        "O_WRONLY",
                        "O_RDWR",
                        "O_CREAT",
                        "O_TRUNC",
                        "O_APPEND",
                        "O_TMPFILE",
                    ]
                    .iter()
                    .any(|f| line.contains(f))
                }
                "" => false,
                _ => true,
            };
            if !writing {
                continue;
            }
            let mut paths: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
            if name.contains("link") || name.starts_with("rename") {
                // Only the new name is written (linkat names an O_TMPFILE
                // descriptor through /proc/self/fd as its source).
                paths = paths.split_off(paths.len().saturating_sub(1));
            }
            let outside = paths
                .iter()
                .filter(|p| !p.is_empty())
                .any(|p| !p.starts_with(&store_prefix) && !p.starts_with("/dev/"));
            if outside {
                writes.push(line.to_string());
            }
        }
        assert!(opened > 10, "strace saw only {opened} opens: {text}");
        assert!(
            writes.is_empty(),
            "{backend}: the worker wrote outside storage:\n{}",
            writes.join("\n")
        );
    }
}

/// Kills a process (by pid) when dropped.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: signalling a process this test started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// `(soft, hard)` core file size limits of a process, from /proc.
fn core_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let mut f = line["Max core file size".len()..].split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

#[test]
fn core_dumps_are_disabled_in_process() {
    imgworker::privacy::harden().unwrap();
    assert!(imgworker::privacy::core_dumps_disabled());
    assert_eq!(core_limits(std::process::id()), ("0".into(), "0".into()));
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Resident memory may grow by at most this much after warm-up.
const RSS_GROWTH_BOUND_KIB: u64 = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_jobs_leave_memory_and_descriptors_flat() {
    let url = vhost("privacy-soak");
    prepare(&url, 5).await;
    let (_dir, store) = store_with_source((160, 120));
    let worker = Worker::start(&url, &store, &["--concurrency", "2"]);
    worker.wait_ready();
    let pid = worker_pid(&worker);
    // The running worker has core dumps off, as the kernel reports it.
    assert_eq!(core_limits(pid), ("0".into(), "0".into()));

    let job = |i: usize| {
        let format = ["jpeg", "png", "webp"][i % 3];
        serde_json::to_vec(&json!({
            "schema": 1, "id": format!("soak{i}"), "type": "edit", "image": "t/img",
            "source": "original.png",
            "ops": [{"op": "resize", "width": 80 + (i % 7) as u32}, {"op": "adjust", "contrast": 1.1}],
            "outputs": [{"version": format!("v{i}"), "format": format}],
        }))
        .unwrap()
    };
    let total = 2000;
    let warm = 200;
    let started = Instant::now();
    publish(&url, &(0..warm).map(job).collect::<Vec<_>>(), None).await;
    wait_results(&url, warm as u64, Duration::from_secs(120), &worker).await;
    let (rss0, fds0) = (rss_kib(pid), open_fds(pid));
    let mut samples = vec![(warm, rss0, fds0)];
    for chunk in (warm..total).step_by(300) {
        let end = (chunk + 300).min(total);
        publish(&url, &(chunk..end).map(job).collect::<Vec<_>>(), None).await;
        wait_results(&url, end as u64, Duration::from_secs(180), &worker).await;
        samples.push((end, rss_kib(pid), open_fds(pid)));
    }
    let results = results(&url).await;
    assert_eq!(results.len(), total);
    assert!(results.iter().all(|r| r["status"] == "succeeded"));
    let peak = samples.iter().map(|s| s.1).max().unwrap();
    let (_, rss_end, fds_end) = *samples.last().unwrap();
    eprintln!(
        "soak: {total} jobs in {:.1} s; (jobs, RSS KiB, fds): {samples:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        peak <= rss0 + RSS_GROWTH_BOUND_KIB,
        "resident memory grew from {rss0} KiB to {peak} KiB: {samples:?}"
    );
    assert!(
        fds_end <= fds0,
        "file descriptors grew from {fds0} to {fds_end}: {samples:?}"
    );
    let _ = rss_end;
}
