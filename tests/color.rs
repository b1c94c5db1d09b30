//! Colour management: real photographs tagged Display P3 and Adobe RGB are
//! converted to sRGB as lcms2's `tificc` (an independent implementation)
//! converts them; Display P3 outputs carry a profile that takes their
//! pixels back to the same colours; `"color": "source"` keeps pixels and
//! profile on every format; both backends see the same converted pixels.
//! JPEG XL and AVIF sources tagged Display P3 are converted the same way.
//! HEIC sources with a profile are in tests/heif.rs.

mod common;

use common::color::{adobe_rgb_icc, display_p3_icc, photo, png_with_icc, tificc_to_srgb};
use common::{cfg, cjxl, decode, diff, gpu_backend, memory_engine, run};
use imgworker::backend::Backend;
use imgworker::color::{ColorSpace, SourceProfile};
use imgworker::pipeline::Engine;
use imgworker::result::Status;
use serde_json::{json, Value};

const IMAGE: &str = "users/42/images/7";

fn key(object: &str) -> String {
    format!("{IMAGE}/{object}")
}

fn edit(id: &str, source: &str, color: Option<&str>, ops: Value, outputs: Value) -> Value {
    let mut job = json!({"schema": 1, "id": id, "type": "edit", "image": IMAGE,
        "source": source, "ops": ops, "outputs": outputs});
    if let Some(c) = color {
        job["color"] = json!(c);
    }
    job
}

#[test]
fn display_p3_and_adobe_rgb_photographs_are_converted_as_lcms2_does() {
    for (name, profile, photo_name) in [
        ("display-p3", display_p3_icc(), "Garden"),
        ("adobe-rgb", adobe_rgb_icc(), "FreshFlower"),
    ] {
        // The photograph's values read as the wide-gamut space: a picture
        // using that gamut, as a phone or a camera set to it records one.
        let img = photo(photo_name);
        let (engine, storage) = memory_engine(cfg());
        storage.insert(&key("original.png"), png_with_icc(&img, Some(&profile)));
        let job = edit(
            name,
            "original.png",
            None,
            json!([]),
            json!([{"version": "v2", "format": "png"}]),
        );
        let r = run(&engine, &job).result;
        assert_eq!(r.status, Status::Succeeded, "{name}: {:?}", r.error);
        let color = r.outputs[0].color;
        assert_eq!(color.space, ColorSpace::Srgb, "{name}");
        assert_eq!(color.source_profile, SourceProfile::Icc, "{name}");
        assert!(color.converted, "{name}");
        let bytes = storage.object(&key("v2.png")).unwrap();
        let got = decode(&bytes);
        let reference = tificc_to_srgb(&img, &profile);
        let (max, mean) = diff(&got, &reference);
        eprintln!("{name}: against tificc, max {max}, mean {mean:.3} levels");
        assert!(mean <= 1.0, "{name}: mean {mean} levels from lcms2");
        // The conversion did something a missing one would not.
        let (_, moved) = diff(&got, &img);
        assert!(
            moved > 2.0,
            "{name}: pixels moved by only {moved} on average"
        );
        // An sRGB version is untagged.
        let dec = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
        let reader = dec.read_info().unwrap();
        assert!(
            reader.info().icc_profile.is_none(),
            "{name}: a profile was written"
        );
    }
}

/// The ICC profile an encoded version carries, read by a decoder of its
/// format (libheif for AVIF).
fn written_icc(bytes: &[u8]) -> Option<Vec<u8>> {
    use image::ImageDecoder;
    if &bytes[4..8] == b"ftyp" {
        let ctx = libheif_rs::HeifContext::read_from_bytes(bytes).unwrap();
        let h = ctx.primary_image_handle().unwrap();
        return h.color_profile_raw().map(|p| p.data);
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap();
    reader.into_decoder().unwrap().icc_profile().unwrap()
}

/// Width and height of an encoded version (libheif for AVIF).
fn dimensions(bytes: &[u8]) -> (u32, u32) {
    if &bytes[4..8] == b"ftyp" {
        let ctx = libheif_rs::HeifContext::read_from_bytes(bytes).unwrap();
        let h = ctx.primary_image_handle().unwrap();
        return (h.width(), h.height());
    }
    let img = decode(bytes);
    img.dimensions()
}

#[test]
fn display_p3_versions_carry_a_profile_that_matches_their_pixels() {
    let img = photo("Aqua");
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_with_icc(&img, None));
    let outputs = json!([
        {"version": "a", "format": "png"},
        {"version": "b", "format": "jpeg", "quality": 95},
        {"version": "c", "format": "webp"},
        {"version": "d", "format": "avif"},
    ]);
    let r = run(
        &engine,
        &edit("p3", "original.png", Some("display_p3"), json!([]), outputs),
    )
    .result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    let png = storage.object(&key("a.png")).unwrap();
    let p3 = written_icc(&png).expect("the PNG carries a profile");
    let profile = moxcms::ColorProfile::new_from_slice(&p3).unwrap();
    // Display P3's red primary, as written.
    let red = profile.red_colorant;
    assert!(
        (red.x - 0.5151).abs() < 0.002 && (red.y - 0.2412).abs() < 0.002,
        "{red:?}"
    );
    for object in ["b.jpg", "c.webp", "d.avif"] {
        let bytes = storage.object(&key(object)).unwrap();
        assert_eq!(written_icc(&bytes).as_ref(), Some(&p3), "{object}");
        assert_eq!(dimensions(&bytes), img.dimensions(), "{object}");
    }
    for out in &r.outputs {
        assert_eq!(out.color.space, ColorSpace::DisplayP3);
        assert_eq!(out.color.source_profile, SourceProfile::None);
        assert!(out.color.converted);
    }
    // The pixels differ from the sRGB ones, and lcms2 takes them back to
    // them with the written profile.
    let pixels = decode(&png);
    let (_, moved) = diff(&pixels, &img);
    assert!(moved > 1.0, "P3 pixels moved by only {moved}");
    let back = tificc_to_srgb(&pixels, &p3);
    let (max, mean) = diff(&back, &img);
    eprintln!("display_p3 round trip through tificc: max {max}, mean {mean:.3}");
    assert!(mean <= 1.0 && max <= 3, "max {max}, mean {mean}");
    // The manifest records the colour handling.
    let manifest: Value = serde_json::from_slice(&storage.object(&key("a.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["recipe"]["color"],
        json!({"space": "display_p3", "source_profile": "none", "converted": true})
    );
}

#[test]
fn source_color_keeps_pixels_and_profile_on_every_format() {
    let img = photo("Dune");
    let adobe = adobe_rgb_icc();
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_with_icc(&img, Some(&adobe)));
    let outputs = json!([
        {"version": "a", "format": "png"},
        {"version": "b", "format": "jpeg"},
        {"version": "c", "format": "webp", "lossless": true},
        {"version": "d", "format": "avif"},
    ]);
    let r = run(
        &engine,
        &edit("keep", "original.png", Some("source"), json!([]), outputs),
    )
    .result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    for object in ["a.png", "b.jpg", "c.webp", "d.avif"] {
        let bytes = storage.object(&key(object)).unwrap();
        assert_eq!(written_icc(&bytes).as_ref(), Some(&adobe), "{object}");
    }
    for object in ["a.png", "c.webp"] {
        let got = decode(&storage.object(&key(object)).unwrap());
        assert_eq!(diff(&got, &img).0, 0, "{object}: pixels changed");
    }
    assert!(r.outputs.iter().all(|o| !o.color.converted));
}

#[test]
fn an_unusable_profile_is_ignored_and_recorded() {
    let img = photo("Storm");
    let (engine, storage) = memory_engine(cfg());
    let junk: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    storage.insert(&key("original.png"), png_with_icc(&img, Some(&junk)));
    let job = edit(
        "junk",
        "original.png",
        None,
        json!([]),
        json!([{"version": "v", "format": "png"}]),
    );
    let r = run(&engine, &job).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    assert_eq!(r.outputs[0].color.source_profile, SourceProfile::Unusable);
    assert!(!r.outputs[0].color.converted);
    let bytes = storage.object(&key("v.png")).unwrap();
    assert_eq!(diff(&decode(&bytes), &img).0, 0);
    assert_eq!(written_icc(&bytes), None);
    // Kept in its space, it is still not written: it would not describe
    // the pixels.
    let mut keep = job.clone();
    keep["id"] = json!("junk-source");
    keep["color"] = json!("source");
    let r = run(&engine, &keep).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    assert_eq!(written_icc(&storage.object(&key("v.png")).unwrap()), None);
}

#[test]
fn both_backends_see_the_same_converted_pixels() {
    let img = photo("LadyBird");
    let source = png_with_icc(&img, Some(&display_p3_icc()));
    let ops = json!([{"op": "rotate", "degrees": 90}, {"op": "crop", "x": 10, "y": 20, "width": 200, "height": 150},
        {"op": "adjust", "contrast": 1.2, "saturation": 1.3}]);
    let outputs = json!([{"version": "v", "format": "png"}]);
    let mut results = Vec::new();
    for backend in [Backend::Cpu, gpu_backend()] {
        let (_, storage) = memory_engine(cfg());
        let engine = Engine::new(cfg(), storage.clone(), backend);
        storage.insert(&key("original.png"), source.clone());
        let r = run(
            &engine,
            &edit(
                "backends",
                "original.png",
                None,
                ops.clone(),
                outputs.clone(),
            ),
        )
        .result;
        assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
        assert!(r.outputs[0].color.converted);
        results.push(decode(&storage.object(&key("v.png")).unwrap()));
    }
    assert_eq!(results[0].dimensions(), (200, 150));
    // Within the ops' parity tolerance (2 levels; rotate and crop exact).
    let (max, _) = diff(&results[0], &results[1]);
    assert!(max <= 2, "CPU and GPU differ by {max}");
}

#[test]
fn color_is_an_edit_setting_with_three_values() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_with_icc(&photo("Blinds"), None));
    let bad = edit(
        "bad",
        "original.png",
        Some("adobe_rgb"),
        json!([]),
        json!([{"version": "v", "format": "png"}]),
    );
    let r = run(&engine, &bad).result;
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.error.unwrap().code.as_str(), "invalid_job");
    let purge = json!({"schema": 1, "id": "p", "type": "purge", "image": IMAGE, "color": "srgb"});
    let r = run(&engine, &purge).result;
    assert_eq!(r.error.unwrap().code.as_str(), "invalid_job");
}

/// A Display P3 photograph as a lossless JPEG XL (libjxl keeps the
/// profile) and as an AVIF written by imgworker with `"color": "source"`
/// (the profile in its `colr` box): each converted to sRGB as lcms2's
/// `tificc` converts the same pixels.
#[test]
fn display_p3_jpeg_xl_and_avif_sources_are_converted_to_srgb() {
    let img = photo("Garden");
    let p3 = display_p3_icc();
    let tagged = png_with_icc(&img, Some(&p3));
    let reference = tificc_to_srgb(&img, &p3);
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("photo.jxl"), cjxl(&tagged, "png", &["-d", "0"]));
    storage.insert(&key("photo.png"), tagged);
    // imgworker's own AVIF of the P3 pixels, tagged P3.
    let keep = edit(
        "p3-avif",
        "photo.png",
        Some("source"),
        json!([]),
        json!([{"version": "photo-avif", "format": "avif", "quality": 95}]),
    );
    let r = run(&engine, &keep).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    for (source, bound) in [("photo.jxl", 1.0), ("photo-avif.avif", 3.0)] {
        let job = edit(
            &format!("srgb-{}", source.replace('.', "-")),
            source,
            None,
            json!([]),
            json!([{"version": format!("out-{}", source.replace('.', "-")), "format": "png"}]),
        );
        let r = run(&engine, &job).result;
        assert_eq!(r.status, Status::Succeeded, "{source}: {:?}", r.error);
        assert!(r.outputs[0].color.converted, "{source}");
        let got = decode(&storage.object(&key(&r.outputs[0].object)).unwrap());
        let (max, mean) = diff(&got, &reference);
        eprintln!("{source}: against tificc, max {max}, mean {mean:.3}");
        assert!(mean <= bound, "{source}: mean {mean} (max {max})");
    }
}
