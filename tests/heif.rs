//! HEIC and AVIF sources (libheif): their EXIF carried over, 10-bit
//! samples rounded, their ICC profile kept (files from heif-enc, an
//! independent writer); imgworker's own AVIF versions re-edited.
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

/// `png` through `heif-enc` (Debian's libheif-examples, an independent
/// writer that keeps a PNG's ICC profile and writes 16-bit PNGs at 10
/// bits), with `args`, as a file of extension `ext`.
fn heif_enc(png: &[u8], args: &[&str], ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (
        dir.path().join("in.png"),
        dir.path().join(format!("out.{ext}")),
    );
    std::fs::write(&input, png).unwrap();
    let status = std::process::Command::new("heif-enc")
        .args(args)
        .arg("-o")
        .arg(&output)
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("heif-enc runs (Debian's libheif-examples; scripts/test.sh installs it)");
    assert!(status.success(), "heif-enc {args:?}");
    std::fs::read(output).unwrap()
}

/// A Display P3 ICC profile (moxcms's), padded to a multiple of four
/// bytes as the ICC specification asks and libpng checks.
fn display_p3_icc() -> Vec<u8> {
    let mut icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    icc.resize(icc.len().next_multiple_of(4), 0);
    let len = u32::try_from(icc.len()).unwrap();
    icc[..4].copy_from_slice(&len.to_be_bytes());
    icc
}

/// A 16-bit RGB PNG of `pixels` with the ICC profile `icc`.
fn png16(w: u32, h: u32, pixels: &[[u16; 3]], icc: &[u8]) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
    encoder.set_icc_profile(icc.to_vec()).unwrap();
    let bytes: Vec<u8> = pixels
        .iter()
        .flatten()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    encoder
        .write_image(&bytes, w, h, image::ExtendedColorType::Rgb16)
        .unwrap();
    out
}

#[test]
fn ten_bit_heic_rounds_to_8_bits_and_keeps_its_profile() {
    // Flat grey bands of 10-bit levels; in every other band (levels 3
    // above a multiple of 4) the 8-bit value lies over half a level above an
    // integer, so rounding gives the next level up and truncation (libheif's
    // own reduction) the one below.
    let levels: Vec<u16> = (0..16u16).map(|i| i * 60 + 2 + (i % 2)).collect();
    let (w, h) = (16 * 32, 32);
    let pixels: Vec<[u16; 3]> = (0..w * h)
        .map(|i| {
            let band = usize::try_from(i % w / 32).unwrap();
            let v10 = levels[band];
            // The 16-bit value that both a shift and a rounded scaling
            // take back to the 10-bit level.
            let v16 = ((u32::from(v10) * 65_535 + 511) / 1023) as u16;
            [v16; 3]
        })
        .collect();
    let p3 = display_p3_icc();
    let png = png16(w, h, &pixels, &p3);
    // HEVC, losslessly. (Debian 12's heif-enc cannot write a 10-bit AVIF:
    // libaom 3.6 aborts on the colour configuration libheif 1.15 gives it.
    // Both brands decode through the same 16-bit path.)
    let heic = ["-L", "-p", "chroma=444", "-b", "10"];
    for (ext, args) in [("heic", &heic[..])] {
        let source = heif_enc(&png, args, ext);
        let (engine, storage) = memory_engine(cfg());
        let name = format!("deep.{ext}");
        storage.insert(&key(&name), source);
        let job = edit(
            &format!("deep-{ext}"),
            &name,
            json!([]),
            json!([{"version": "v2", "format": "png"}]),
        );
        let r = run(&engine, &job).result;
        assert_eq!(r.status, Status::Succeeded, "{ext}: {:?}", r.error);
        let bytes = storage.object(&key("v2.png")).unwrap();
        let out = decode(&bytes);
        for (band, &v10) in levels.iter().enumerate() {
            let want = (f64::from(v10) * 255.0 / 1023.0).round();
            let got = out.get_pixel(band as u32 * 32 + 16, 16)[0];
            assert!(
                (f64::from(got) - want).abs() <= 0.0,
                "{ext}: 10-bit {v10} gave {got}, rounding gives {want}"
            );
        }
        let mut dec = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        assert_eq!(
            dec.icc_profile().unwrap(),
            Some(p3.clone()),
            "{ext}: the profile is kept"
        );
    }
}
