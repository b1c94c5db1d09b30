//! `imgworker bench` end to end on a real photograph: every standard job on
//! imgworker (in-process and as a process) and on the peers (libvips and
//! ImageMagick command lines; pyvips, Pillow and Pillow-SIMD in-process),
//! with the report, the chart and each tool's output checked. Needs the
//! photos (scripts/fetch-photos.sh) and the peers (scripts/bench-peers.sh);
//! scripts/test.sh provides both. Only with the `bench` cargo feature (on
//! by default), which holds the runner.

#![cfg(feature = "bench")]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const PHOTO: &str = "photos/bench/1920x1080.jpg";

fn photo() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(PHOTO);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-photos.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

fn peers_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-peers");
    for venv in ["pillow", "pillow-simd"] {
        assert!(
            p.join(venv).join("bin/python").is_file(),
            "{} is missing: run scripts/bench-peers.sh (scripts/test.sh does)",
            p.join(venv).display()
        );
    }
    p
}

#[test]
fn every_job_runs_on_every_tool_and_the_report_adds_up() {
    let peers = peers_dir();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let chart = dir.path().join("c.svg");
    let outputs = dir.path().join("out");
    let out = bench(&[
        "--input",
        photo().to_str().unwrap(),
        "--backend",
        "cpu",
        "--iterations",
        "1",
        "--warmup",
        "0",
        "--concurrency",
        "2",
        "--compare",
        "--peers",
        peers.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--chart",
        chart.to_str().unwrap(),
        "--outputs",
        outputs.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Progress lines on a pipe (no terminal for a bar).
    assert!(stderr.contains("round 1/1"), "{stderr}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["input"]["width"], 1920);
    assert_eq!(report["input"]["height"], 1080);
    assert_eq!(report["backend"], "cpu");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[0].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "imgworker",
            "libvips",
            "imagemagick",
            "pyvips",
            "pillow",
            "pillow-simd"
        ]
    );
    let versions = report["tools"].to_string();
    assert!(versions.contains("Pillow-SIMD 9."), "{versions}");
    let results = report["results"].as_array().unwrap();
    // 16 jobs x (imgworker twice, two CLI peers, three library peers),
    // less the pairs without an equivalent: no 3D LUT in libvips, pyvips or
    // ImageMagick (without a Hald image), no attention crop in ImageMagick
    // or Pillow, no AVIF encoder in Pillow or Pillow-SIMD.
    const CELLS: usize = 16 * 7 - 3 - 3 - 2;
    assert_eq!(results.len(), CELLS, "{report:#}");
    // Every cell knows its output's size; the AVIF job's cells are scored
    // against each tool's own lossless rendering.
    for r in results {
        assert!(r["output_bytes"].as_u64().unwrap() > 1000, "{r}");
        let score = r["ssimulacra2"].as_f64();
        if r["job"] == "thumbnail-1920-avif" {
            let score = score.unwrap_or_else(|| panic!("no score: {r}"));
            assert!((40.0..100.0).contains(&score), "{r}");
        } else {
            assert!(score.is_none(), "{r}");
        }
    }
    assert!(has_avif(results, "imgworker") && has_avif(results, "libvips"));
    let has = |job: &str, tool: &str| results.iter().any(|r| r["job"] == job && r["tool"] == tool);
    assert!(has("jpeg-to-webp-lossless", "pillow") && !has("thumbnail-1920-avif", "pillow"));
    assert!(!has("lut-33", "libvips") && !has("lut-33", "pyvips") && has("lut-33", "pillow"));
    assert!(has("smartcrop-512", "pyvips") && !has("smartcrop-512", "pillow"));
    for r in results {
        let samples = r["samples_ms"].as_array().unwrap();
        // One round of two jobs at once: two latencies.
        assert_eq!(samples.len(), 2, "{r}");
        let median = r["median_ms"].as_f64().unwrap();
        let (lo, hi) = (
            samples
                .iter()
                .map(|s| s.as_f64().unwrap())
                .fold(f64::MAX, f64::min),
            samples
                .iter()
                .map(|s| s.as_f64().unwrap())
                .fold(0.0, f64::max),
        );
        assert!(median > 0.0 && median >= lo && median <= hi, "{r}");
        // Two jobs per batch, so throughput is at least one job per the
        // slower latency.
        let jobs_per_s = r["jobs_per_s"].as_f64().unwrap();
        assert!(jobs_per_s >= 1000.0 / hi * 0.99, "{r}");
        let mp = r["megapixels_per_s"].as_f64().unwrap();
        assert!(
            (mp - jobs_per_s * 1920.0 * 1080.0 / 1e6).abs() < 1e-6,
            "{r}"
        );
        // A real process holding a decoded 2 MP image needs more than 8 MiB.
        let peak = r["peak_rss_mib"].as_f64().unwrap();
        assert!(peak > 8.0 && peak < 4096.0, "{r}");
    }
    // Ratios: each peer against imgworker in the same mode, per job: the
    // CLIs against whole-process runs, the libraries against in-process.
    let ratios = report["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), CELLS - 16 * 2, "{ratios:?}");
    for q in ratios {
        let in_process = ["pyvips", "pillow", "pillow-simd"].contains(&q["peer"].as_str().unwrap());
        assert_eq!(q["mode"], if in_process { "in-process" } else { "process" });
        let find = |tool: &str| {
            results
                .iter()
                .find(|r| r["job"] == q["job"] && r["tool"] == tool && r["mode"] == q["mode"])
                .unwrap()["median_ms"]
                .as_f64()
                .unwrap()
        };
        let want = find(q["peer"].as_str().unwrap()) / find("imgworker");
        assert!((q["speedup"].as_f64().unwrap() - want).abs() < 1e-9, "{q}");
    }
    // The table names every job and the ratios.
    for job in [
        "thumbnail-1920",
        "thumbnail-256",
        "resize-half",
        "blur-5",
        "unsharp",
        "colour",
        "chain",
        "jpeg-to-webp",
        "jpeg-to-png",
        "jpeg-recode",
        "composite-mask",
        "lut-33",
        "levels-curves",
        "smartcrop-512",
    ] {
        assert!(
            stdout.contains(job),
            "{job} missing from the table:\n{stdout}"
        );
    }
    assert!(stdout.contains("ratios"), "{stdout}");

    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    for label in [
        "chain",
        "jpeg-to-png",
        "libvips (process)",
        "imgworker (in-process)",
        "pillow-simd (in-process)",
    ] {
        assert!(svg.contains(label), "{label} missing from the chart");
    }

    // Every tool did the same job: the outputs' formats and sizes agree.
    let expect = |job: &str| -> (image::ImageFormat, u32, u32) {
        use image::ImageFormat::*;
        match job {
            "thumbnail-1920" => (Jpeg, 1920, 1080),
            "thumbnail-256" => (Jpeg, 256, 144),
            "resize-half" => (Jpeg, 960, 540),
            // 5/6 crop (1600x900) rotated, then 60 % of 900 wide.
            "chain" => (Jpeg, 540, 960),
            "jpeg-to-webp" | "jpeg-to-webp-lossless" => (WebP, 1920, 1080),
            "thumbnail-1920-avif" => (Avif, 1920, 1080),
            "jpeg-to-png" => (Png, 1920, 1080),
            "smartcrop-512" => (Jpeg, 512, 512),
            _ => (Jpeg, 1920, 1080),
        }
    };
    let mut seen = 0;
    let mut pictures = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&outputs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let job = name.split('.').next().unwrap();
        let (format, w, h) = expect(job);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), format, "{name}");
        if format == image::ImageFormat::Avif {
            // The image crate reads no AVIF here: libheif gives the size.
            let ctx = libheif_rs::HeifContext::read_from_bytes(&bytes).unwrap();
            let handle = ctx.primary_image_handle().unwrap();
            assert_eq!((handle.width(), handle.height()), (w, h), "{name}");
            seen += 1;
            continue;
        }
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (w, h), "{name}");
        pictures.insert(name, img.to_rgb8());
        seen += 1;
    }
    assert_eq!(seen, CELLS, "one output per job and tool");
    // The new editing jobs do the same work everywhere: each peer's picture
    // is within JPEG noise of imgworker's (a reversed mask, a LUT read in
    // the wrong order or a missing curve would be tens of levels off).
    for job in ["composite-mask", "levels-curves", "lut-33"] {
        let ours = &pictures[&format!("{job}.imgworker-in-process.jpg")];
        for (name, theirs) in pictures
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{job}.")))
        {
            let sum: u64 = ours
                .as_raw()
                .iter()
                .zip(theirs.as_raw())
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            let mean = sum as f64 / ours.as_raw().len() as f64;
            assert!(
                mean < 4.0,
                "{name} is {mean:.2} levels from imgworker's on average"
            );
        }
    }

    // A saved report prints the same table and draws the same chart again,
    // without running anything.
    let again = dir.path().join("again.svg");
    let out = bench(&[
        "--report",
        json.to_str().unwrap(),
        "--chart",
        again.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), svg);
}

#[test]
fn bad_settings_are_refused_clearly() {
    let out = bench(&["--input", "no/such/photo.jpg", "--iterations", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fetch-photos.sh"), "{err}");

    let out = bench(&[
        "--input",
        photo().to_str().unwrap(),
        "--jobs",
        "blur-5,explode",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown job \"explode\"") && err.contains("thumbnail-256"),
        "{err}"
    );

    let out = bench(&["--input", photo().to_str().unwrap(), "--concurrency", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 1"), "{err}");

    // A PNG is not a valid input: the standard jobs start from a JPEG.
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png");
    image::RgbImage::new(8, 8).save(&png).unwrap();
    let out = bench(&["--input", png.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a JPEG"), "{err}");

    // --report reads only a report.
    let out = bench(&["--report", png.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an imgworker bench report"), "{err}");
}

/// Whether `tool` has a cell for the AVIF job.
fn has_avif(results: &[serde_json::Value], tool: &str) -> bool {
    results
        .iter()
        .any(|r| r["job"] == "thumbnail-1920-avif" && r["tool"] == tool)
}
