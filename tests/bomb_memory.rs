//! A complete, valid 20000x20000 PNG (400 MP, 1.6 GB as RGBA) is refused from
//! its header without the memory a decode would take. Alone in its test
//! binary so the peak resident size measured is this test's.

mod common;

use std::io::Write;

use common::{cfg, memory_engine, png_with_header, run};
use serde_json::json;

#[test]
fn valid_20000_square_png_is_refused_with_low_memory() {
    let (w, h) = (20_000u32, 20_000u32);
    let row = vec![0u8; 1 + (w as usize).div_ceil(8)];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    let png = png_with_header(w, h, &z.finish().unwrap());
    let (engine, storage) = memory_engine(cfg());
    storage.insert("u/1/original.png", png);
    let job = json!({"schema": 1, "id": "bomb", "type": "edit", "image": "u/1", "source": "original.png",
                     "outputs": [{"version": "v2", "format": "png"}]});
    let r = run(&engine, &job).result;
    assert_eq!(r.error.unwrap().code.as_str(), "limit_exceeded");
    let peak = imgworker::app::memory::peak_rss_bytes().expect("/proc/self/status") >> 10;
    assert!(
        peak < 256 * 1024,
        "peak resident memory {peak} KiB: the image was decoded"
    );
}
