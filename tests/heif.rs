//! HEIC and AVIF sources (libheif): displayed upright, with their EXIF
//! carried over; imgworker's own AVIF versions re-edited.
//! The hostile HEIF files are in tests/hostile.rs.

mod common;

use common::{cfg, decode, diff, exif_block, heif_bytes, memory_engine, png_bytes, run};
use image::{imageops, ImageDecoder, RgbaImage};
use imgworker::result::Status;
use libheif_rs::{CompressionFormat, ImageOrientation};
use serde_json::{json, Value};

const IMAGE: &str = "users/42/images/7";

fn edit(id: &str, source: &str, ops: Value, outputs: Value) -> Value {
    json!({"schema": 1, "id": id, "type": "edit", "image": IMAGE, "source": source, "ops": ops, "outputs": outputs})
}

fn key(object: &str) -> String {
    format!("{IMAGE}/{object}")
}

/// A smooth picture with a distinct corner, so that a wrong orientation
/// shows: lossy coding keeps smooth gradients close.
fn picture(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let corner = x < w / 4 && y < h / 4;
        image::Rgba([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            if corner { 230 } else { 40 },
            255,
        ])
    })
}

/// The EXIF block of an encoded output.
fn metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap();
    let mut dec = reader.into_decoder().unwrap();
    dec.exif_metadata().unwrap()
}

#[test]
fn heic_and_avif_sources_keep_their_exif_without_its_orientation() {
    let img = picture(96, 64);
    // An EXIF orientation tag in a HEIF repeats the container's own
    // transform (`irot`/`imir`, which libheif applies); with none in the
    // container, as here, the tag alone does not turn the pixels (as in
    // libvips), and it is reset to 1 in the EXIF carried over.
    let exif = exif_block(6, None);
    let cases = [
        (CompressionFormat::Hevc, ImageOrientation::Normal, "heic"),
        (CompressionFormat::Av1, ImageOrientation::Normal, "avif"),
    ];
    for (i, (format, orientation, ext)) in cases.into_iter().enumerate() {
        let expected = img.clone();
        let source = heif_bytes(&img, format, orientation, Some(&exif));
        let (engine, storage) = memory_engine(cfg());
        let name = format!("original.{ext}");
        storage.insert(&key(&name), source);
        // `auto_orient` finds nothing left to do: the EXIF tag repeats the
        // transform libheif has applied.
        let job = edit(
            &format!("heif-{i}"),
            &name,
            json!([{"op": "auto_orient"}]),
            json!([
                {"version": "v2", "format": "png", "metadata": "keep_exif"},
                {"version": "v2-jpeg", "format": "jpeg", "quality": 95},
                {"version": "v2-webp", "format": "webp", "lossless": true},
                {"version": "v2-avif", "format": "avif", "quality": 90}
            ]),
        );
        let r = run(&engine, &job).result;
        assert_eq!(r.status, Status::Succeeded, "{ext}: {:?}", r.error);
        for o in &r.outputs {
            assert_eq!(
                (o.width, o.height),
                expected.dimensions(),
                "{ext} {}",
                o.object
            );
        }
        let png = storage.object(&key("v2.png")).unwrap();
        let (max, mean) = diff(&decode(&png), &expected);
        assert!(
            mean < 2.0 && max < 40,
            "{ext} {orientation:?}: max {max}, mean {mean}"
        );
        let exif_out = metadata(&png);
        let exif_out = exif_out.expect("the EXIF block is kept");
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(&exif_out),
            Some(image::metadata::Orientation::NoTransforms),
            "{ext}: the orientation tag says upright, as the pixels are"
        );
        let webp = storage.object(&key("v2-webp.webp")).unwrap();
        assert_eq!(decode(&webp), decode(&png), "{ext}: webp lossless = png");
    }
}

#[test]
fn imgworkers_own_avif_versions_can_be_re_edited() {
    let img = picture(120, 80);
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&img));
    let first = edit(
        "avif-1",
        "original.png",
        json!([{"op": "adjust", "contrast": 1.1}]),
        json!([{"version": "v2", "format": "avif", "quality": 80},
               {"version": "v2-ref", "format": "png"}]),
    );
    let r = run(&engine, &first).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    // A re-edit of the AVIF version, and one rendered from the original
    // through the AVIF version's manifest.
    for (id, from) in [("avif-2", "source"), ("avif-3", "original")] {
        let mut job = edit(
            id,
            "v2.avif",
            json!([{"op": "flip", "axis": "horizontal"}]),
            json!([{"version": format!("v3-{from}"), "format": "png"}]),
        );
        job["from"] = json!(from);
        let r = run(&engine, &job).result;
        assert_eq!(r.status, Status::Succeeded, "{from}: {:?}", r.error);
        let out = decode(&storage.object(&key(&format!("v3-{from}.png"))).unwrap());
        let reference =
            imageops::flip_horizontal(&decode(&storage.object(&key("v2-ref.png")).unwrap()));
        let (max, mean) = diff(&out, &reference);
        let bound = if from == "original" { 0.0 } else { 3.0 };
        assert!(mean <= bound, "{from}: max {max}, mean {mean}");
    }
}
