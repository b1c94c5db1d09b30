//! Inputs shared by the criterion benches: the photo at the three bench
//! sizes, and validated edits.

// Each bench uses a part of this module.
#![allow(dead_code)]

use std::path::Path;

use image::RgbaImage;
use imgworker::config::WorkerConfig;
use imgworker::job::{Edit, Job};
use serde_json::{json, Value};

/// The bench sizes.
pub const SIZES: [(u32, u32); 3] = [(1024, 576), (1920, 1080), (3840, 2160)];

/// Whether criterion measures (`cargo bench`, which passes `--bench`)
/// rather than running each bench once to prove that it works (`cargo test
/// --all-targets`, the test command).
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The sizes benched: all of [`SIZES`] when measuring, the smallest alone
/// when each bench only runs once as a test.
pub fn sizes() -> &'static [(u32, u32)] {
    if measuring() {
        &SIZES
    } else {
        &SIZES[..1]
    }
}

/// The 3840x2160 photo's bytes (scripts/fetch-photos.sh).
pub fn photo_bytes() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("photos/bench/3840x2160.jpg");
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-photos.sh first", p.display()))
}

/// The photo decoded and scaled to each of [`sizes`] (outside any timing).
pub fn photo_frames() -> Vec<RgbaImage> {
    let full = image::load_from_memory(&photo_bytes())
        .expect("the photo decodes")
        .into_rgba8();
    sizes()
        .iter()
        .map(|&(w, h)| {
            if (w, h) == full.dimensions() {
                full.clone()
            } else {
                image::imageops::resize(&full, w, h, image::imageops::FilterType::Triangle)
            }
        })
        .collect()
}

/// A validated edit of `ops` with one PNG output.
pub fn edit(ops: Value) -> Edit {
    let body = json!({
        "schema": 1, "id": "bench", "type": "edit", "image": "bench/photo",
        "source": "original.jpg", "ops": ops,
        "outputs": [{"version": "v", "format": "png"}]
    });
    let job = Job::parse(&serde_json::to_vec(&body).unwrap(), &WorkerConfig::new())
        .unwrap_or_else(|e| panic!("{body}: {e:?}"));
    job.into_edit().expect("an edit job")
}

/// The bench's colour grade ([`imgworker::bench::jobs::grade_cube`]) as a
/// parsed `n`-point `.cube`.
pub fn grade_cube(n: usize) -> imgworker::ops::lut::Cube {
    let text = imgworker::bench::jobs::grade_cube(n);
    imgworker::ops::lut::Cube::parse("grade.cube", text.as_bytes()).expect("a valid cube")
}

/// A soft-edged disc as a mask: 255 in the middle, 0 in the corners, a
/// ramp between (every level in between occurs).
pub fn soft_mask(w: u32, h: u32) -> image::GrayImage {
    image::GrayImage::from_fn(w, h, |x, y| {
        let dx = (f64::from(x) + 0.5) / f64::from(w) - 0.5;
        let dy = (f64::from(y) + 0.5) / f64::from(h) - 0.5;
        let r = (dx * dx + dy * dy).sqrt() * 2.0;
        image::Luma([((1.2 - r) / 0.6 * 255.0).clamp(0.0, 255.0).round() as u8])
    })
}
