//! Output control through whole jobs: byte budgets (`max_bytes`) on JPEG,
//! WebP and AVIF against a brute-force scan of every quality; `format:
//! auto` against every candidate encoded at its defaults; and the
//! refusals of both.

mod common;

use common::color::photo;
use common::{cfg, memory_engine, png_bytes, run};
use imgworker::codec::encode;
use imgworker::job::{Encoding, Format};
use imgworker::result::Status;
use serde_json::{json, Value};

const IMAGE: &str = "users/42/images/7";

fn key(object: &str) -> String {
    format!("{IMAGE}/{object}")
}

fn job(id: &str, outputs: Value) -> Value {
    json!({"schema": 1, "id": id, "type": "edit", "image": IMAGE,
        "source": "original.png", "outputs": outputs})
}

fn settings(format: Format, quality: u8) -> Encoding {
    Encoding {
        format,
        quality: Some(quality),
        lossless: false,
        keep_exif: false,
        speed: (format == Format::Avif).then_some(7),
        chroma_subsampling: (format == Format::Avif).then(Default::default),
        jpeg: (format == Format::Jpeg).then(Default::default),
        max_bytes: None,
        min_quality: None,
    }
}

#[test]
fn max_bytes_gives_the_best_quality_that_fits() {
    let img = photo("GreenMeadow");
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&img));
    for (format, name, ceiling) in [
        (Format::Jpeg, "jpeg", 85u8),
        (Format::Webp, "webp", 80),
        (Format::Avif, "avif", 60),
    ] {
        // Every quality's size, by brute force; the budget sits between
        // the sizes at two thirds and at the ceiling.
        let sizes: Vec<(u8, usize)> = (10..=ceiling)
            .map(|q| {
                (
                    q,
                    encode(&img, &settings(format, q), None, None)
                        .unwrap()
                        .len(),
                )
            })
            .collect();
        let at = |q: u8| sizes.iter().find(|s| s.0 == q).unwrap().1;
        let max = (at(ceiling * 2 / 3) + at(ceiling)) / 2;
        let best = sizes.iter().rev().find(|s| s.1 <= max).unwrap().0;
        let outputs =
            json!([{"version": format!("small-{name}"), "format": name, "max_bytes": max}]);
        let r = run(&engine, &job(&format!("budget-{name}"), outputs)).result;
        assert_eq!(r.status, Status::Succeeded, "{name}: {:?}", r.error);
        let out = &r.outputs[0];
        let q = out.quality.unwrap();
        eprintln!(
            "{name}: max_bytes {max}: quality {q} ({} bytes), best by scan {best}",
            out.bytes
        );
        assert!(out.bytes as usize <= max, "{name}: {} > {max}", out.bytes);
        assert_eq!(
            out.bytes as usize,
            at(q),
            "{name}: the bytes of quality {q}"
        );
        assert!(
            q <= best && best - q <= 2,
            "{name}: chose {q}, best is {best}"
        );
        let manifest: Value =
            serde_json::from_slice(&storage.object(&key(&format!("small-{name}.json"))).unwrap())
                .unwrap();
        assert_eq!(manifest["recipe"]["output"]["quality"], json!(q), "{name}");
        assert_eq!(
            manifest["recipe"]["output"]["max_bytes"],
            json!(max),
            "{name}"
        );
    }
}

#[test]
fn a_budget_met_at_the_asked_quality_keeps_it() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&photo("Blinds")));
    let outputs = json!([{"version": "v", "format": "jpeg", "quality": 70, "max_bytes": 1 << 30}]);
    let r = run(&engine, &job("roomy", outputs)).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    assert_eq!(r.outputs[0].quality, Some(70));
}

#[test]
fn a_budget_nothing_fits_is_limit_exceeded_and_writes_nothing() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&photo("Storm")));
    let outputs = json!([{"version": "ok", "format": "png"},
        {"version": "tiny", "format": "webp", "max_bytes": 200, "min_quality": 5}]);
    let r = run(&engine, &job("tiny", outputs)).result;
    assert_eq!(r.status, Status::Failed);
    let err = r.error.unwrap();
    assert_eq!(err.code.as_str(), "limit_exceeded");
    assert!(err.message.contains("at quality 5"), "{}", err.message);
    assert_eq!(storage.object(&key("ok.png")), None);
    assert_eq!(storage.object(&key("tiny.webp")), None);
}

#[test]
fn budgets_are_refused_where_they_cannot_apply() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&photo("Dune")));
    for (output, field) in [
        (
            json!({"version": "v", "format": "png", "max_bytes": 1000}),
            "max_bytes",
        ),
        (
            json!({"version": "v", "format": "webp", "lossless": true, "max_bytes": 1000}),
            "max_bytes",
        ),
        (
            json!({"version": "v", "format": "jpeg", "max_bytes": 0}),
            "max_bytes",
        ),
        (
            json!({"version": "v", "format": "jpeg", "min_quality": 20}),
            "min_quality",
        ),
        (
            json!({"version": "v", "format": "jpeg", "quality": 50, "max_bytes": 9000, "min_quality": 60}),
            "min_quality",
        ),
    ] {
        let r = run(&engine, &job("refused", json!([output.clone()]))).result;
        let err = r.error.unwrap();
        assert_eq!(err.code.as_str(), "invalid_param", "{output}");
        assert!(err.message.contains(field), "{output}: {}", err.message);
    }
}

/// A format's default settings, as `format: auto` encodes each candidate.
fn defaults(format: Format) -> Encoding {
    match format.default_quality() {
        Some(q) => settings(format, q),
        None => Encoding {
            quality: None,
            ..settings(format, 0)
        },
    }
}

#[test]
fn auto_format_writes_the_smallest_candidate() {
    for (photo_name, candidates) in [
        ("GreenMeadow", json!(null)),
        ("Aqua", json!(["jpeg", "webp"])),
        ("Blinds", json!(["png", "jpeg", "avif"])),
    ] {
        let img = photo(photo_name);
        let (engine, storage) = memory_engine(cfg());
        storage.insert(&key("original.png"), png_bytes(&img));
        let mut output = json!({"version": "v2", "format": "auto"});
        let list: Vec<Format> = if candidates.is_null() {
            vec![Format::Avif, Format::Webp, Format::Jpeg]
        } else {
            output["candidates"] = candidates.clone();
            serde_json::from_value(candidates.clone()).unwrap()
        };
        let sizes: Vec<(Format, usize)> = list
            .iter()
            .map(|&f| (f, encode(&img, &defaults(f), None, None).unwrap().len()))
            .collect();
        let smallest = sizes.iter().min_by_key(|s| s.1).unwrap();
        let r = run(&engine, &job("auto", json!([output]))).result;
        assert_eq!(r.status, Status::Succeeded, "{photo_name}: {:?}", r.error);
        let out = &r.outputs[0];
        eprintln!("{photo_name}: {sizes:?}: chose {:?}", out.format);
        assert_eq!((out.format, out.bytes as usize), *smallest, "{photo_name}");
        let object = format!("v2.{}", smallest.0.ext());
        assert_eq!(out.object, object);
        assert!(storage.object(&key(&object)).is_some());
        let manifest: Value =
            serde_json::from_slice(&storage.object(&key("v2.json")).unwrap()).unwrap();
        assert_eq!(manifest["object"], json!(object));
        assert_eq!(manifest["format"], json!(smallest.0));
        assert_eq!(manifest["recipe"]["output"]["format"], json!(smallest.0));
        let recorded: Vec<Format> =
            serde_json::from_value(manifest["recipe"]["candidates"].clone()).unwrap();
        assert_eq!(recorded, list);
    }
}

#[test]
fn auto_format_leaves_out_jpeg_for_transparent_images() {
    // Transparent edges: JPEG would flatten them, and is smaller.
    let mut img = photo("LadyBird");
    for (x, _, p) in img.enumerate_pixels_mut() {
        if x < 40 {
            p[3] = 0;
        }
    }
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&img));
    let jpeg = encode(&img, &defaults(Format::Jpeg), None, None)
        .unwrap()
        .len();
    let png = encode(&img, &defaults(Format::Png), None, None)
        .unwrap()
        .len();
    assert!(jpeg < png, "the test needs JPEG to be smaller");
    for (candidates, want) in [
        (json!(["jpeg", "png"]), Format::Png),
        (json!(["jpeg"]), Format::Jpeg),
    ] {
        let output = json!({"version": "v", "format": "auto", "candidates": candidates});
        let r = run(&engine, &job("alpha", json!([output]))).result;
        assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
        assert_eq!(r.outputs[0].format, want, "{candidates}");
    }
}

#[test]
fn auto_format_with_a_budget_fits_the_chosen_format() {
    let img = photo("Garden");
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&img));
    let webp = encode(&img, &defaults(Format::Webp), None, None)
        .unwrap()
        .len();
    let max = webp * 2 / 3;
    let output =
        json!({"version": "v", "format": "auto", "candidates": ["webp", "jpeg"], "max_bytes": max});
    let r = run(&engine, &job("auto-budget", json!([output]))).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    let out = &r.outputs[0];
    assert!(out.bytes as usize <= max);
    assert!(out.quality.unwrap() < out.format.default_quality().unwrap());
}

#[test]
fn auto_format_settings_that_cannot_apply_are_refused() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&photo("Dune")));
    for (output, field) in [
        (
            json!({"version": "v", "format": "auto", "quality": 80}),
            "quality",
        ),
        (
            json!({"version": "v", "format": "jpeg", "candidates": ["jpeg"]}),
            "candidates",
        ),
        (
            json!({"version": "v", "format": "auto", "candidates": ["webp", "webp"]}),
            "candidates",
        ),
        (
            json!({"version": "v", "format": "auto", "candidates": []}),
            "candidates",
        ),
        (
            json!({"version": "v", "format": "auto", "speed": 5}),
            "speed",
        ),
        (
            json!({"version": "v", "format": "auto", "metadata": "keep_exif"}),
            "metadata",
        ),
        (
            json!({"version": "v", "format": "auto", "candidates": ["png", "jpeg"], "max_bytes": 5000}),
            "max_bytes",
        ),
    ] {
        let r = run(&engine, &job("refused", json!([output.clone()]))).result;
        let err = r.error.unwrap();
        assert_eq!(
            err.code.as_str(),
            "invalid_param",
            "{output}: {}",
            err.message
        );
        assert!(err.message.contains(field), "{output}: {}", err.message);
    }
}

#[test]
fn a_version_written_again_in_another_format_is_one_object() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&photo("Aqua")));
    let first = job("first", json!([{"version": "v2", "format": "jpeg"}]));
    assert_eq!(run(&engine, &first).result.status, Status::Succeeded);
    assert!(storage.object(&key("v2.jpg")).is_some());
    let again = job(
        "again",
        json!([{"version": "v2", "format": "auto", "candidates": ["png"]}]),
    );
    let r = run(&engine, &again).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    assert_eq!(r.outputs[0].object, "v2.png");
    assert!(storage.object(&key("v2.png")).is_some());
    assert_eq!(
        storage.object(&key("v2.jpg")),
        None,
        "the JPEG object is left behind"
    );
    let manifest: Value =
        serde_json::from_slice(&storage.object(&key("v2.json")).unwrap()).unwrap();
    assert_eq!(manifest["object"], json!("v2.png"));
}
