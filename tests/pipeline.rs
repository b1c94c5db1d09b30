//! Whole jobs through the engine: renditions, manifests and lineage,
//! rollback on storage failure, idempotent redelivery, purge, overlays,
//! orientation and metadata.

mod common;

use common::{cfg, decode, jpeg_bytes, memory_engine, png_bytes, run, test_image, with_exif};
use image::ImageFormat;
use imgworker::config::WorkerConfig;
use imgworker::manifest::Manifest;
use imgworker::result::Status;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const IMAGE: &str = "users/42/images/7";

fn edit(id: &str, source: &str, ops: Value, outputs: Value) -> Value {
    json!({"schema": 1, "id": id, "type": "edit", "image": IMAGE, "source": source, "ops": ops, "outputs": outputs})
}

fn key(object: &str) -> String {
    format!("{IMAGE}/{object}")
}

#[test]
fn renditions_decode_once_and_give_each_output_its_size_and_format() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(
        &key("original.jpg"),
        jpeg_bytes(&test_image(800, 600, 1, false), 92),
    );
    let job = edit(
        "renditions",
        "original.jpg",
        json!([{"op": "crop", "x": 0, "y": 0, "width": 640, "height": 480}, {"op": "adjust", "contrast": 1.1}]),
        json!([
            {"version": "v2", "format": "jpeg", "quality": 88},
            {"version": "v2-thumb", "format": "webp", "quality": 80,
             "ops": [{"op": "resize", "width": 256, "height": 256, "fit": "cover"}]},
            {"version": "v2-small", "format": "png", "ops": [{"op": "resize", "width": 100}, {"op": "grayscale"}]},
            {"version": "v2-lossless", "format": "webp", "lossless": true, "ops": [{"op": "resize", "width": 64}]},
            {"version": "v2-avif", "format": "avif", "quality": 50, "ops": [{"op": "resize", "width": 48}]}
        ]),
    );
    let out = run(&engine, &job);
    let r = out.result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    assert_eq!(out.stats.source_decodes, 1);
    assert_eq!(r.backend, Some(imgworker::backend::BackendKind::Cpu));
    let expect = [
        ("v2.jpg", ImageFormat::Jpeg, (640, 480)),
        ("v2-thumb.webp", ImageFormat::WebP, (256, 256)),
        ("v2-small.png", ImageFormat::Png, (100, 75)),
        ("v2-lossless.webp", ImageFormat::WebP, (64, 48)),
        ("v2-avif.avif", ImageFormat::Avif, (48, 36)),
    ];
    assert_eq!(r.outputs.len(), expect.len());
    for ((object, format, dims), o) in expect.iter().zip(&r.outputs) {
        assert_eq!(&o.object, object);
        assert_eq!((o.width, o.height), *dims);
        let bytes = storage.object(&key(object)).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), *format, "{object}");
        if *format != ImageFormat::Avif {
            assert_eq!(decode(&bytes).dimensions(), *dims, "{object}");
        }
    }
    // The grayscale rendition is grey; the lossless WebP is exact.
    let small = decode(&storage.object(&key("v2-small.png")).unwrap());
    assert!(small.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let t = r.timings_ms.unwrap();
    assert!(t.total >= t.decode && t.total > 0.0);
}

#[test]
fn manifests_record_lineage_and_match_the_stored_objects() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(
        &key("original.png"),
        png_bytes(&test_image(120, 80, 2, false)),
    );
    let steps = [
        (
            "j1",
            "original.png",
            "v2",
            json!([{"op": "crop", "x": 10, "y": 10, "width": 100, "height": 60}]),
        ),
        (
            "j2",
            "v2.png",
            "v3",
            json!([{"op": "rotate", "degrees": 90}]),
        ),
        ("j3", "v3.png", "v4", json!([{"op": "blur", "sigma": 1.0}])),
    ];
    for (id, source, version, ops) in &steps {
        let r = run(
            &engine,
            &edit(
                id,
                source,
                ops.clone(),
                json!([{"version": version, "format": "png"}]),
            ),
        )
        .result;
        assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    }
    let m: Manifest = serde_json::from_slice(&storage.object(&key("v4.json")).unwrap()).unwrap();
    assert_eq!(
        (m.image.as_str(), m.version.as_str(), m.object.as_str()),
        (IMAGE, "v4", "v4.png")
    );
    assert_eq!(m.parent, "v3.png");
    assert_eq!(m.job_id, "j3");
    assert_eq!((m.width, m.height), (60, 100));
    let stored = storage.object(&key("v4.png")).unwrap();
    assert_eq!(m.bytes, stored.len() as u64);
    assert_eq!(m.sha256, hex::encode(Sha256::digest(&stored)));
    let chain = m.recipe.lineage();
    let parents: Vec<&str> = chain.iter().map(|r| r.parent.as_str()).collect();
    assert_eq!(parents, ["original.png", "v2.png", "v3.png"]);
    let ops: Vec<&str> = chain.iter().map(|r| r.ops[0].name()).collect();
    assert_eq!(ops, ["crop", "rotate", "blur"]);
    assert!(time::OffsetDateTime::parse(
        &m.created_at,
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    // The result reports the same facts as the manifest.
    let r = run(
        &engine,
        &edit(
            "j3",
            "v3.png",
            steps[2].3.clone(),
            json!([{"version": "v4", "format": "png"}]),
        ),
    )
    .result;
    assert_eq!(r.outputs[0].sha256, m.sha256);
}

#[test]
fn a_redelivered_job_rewrites_identical_objects() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(
        &key("original.jpg"),
        jpeg_bytes(&test_image(200, 150, 3, false), 90),
    );
    let job = edit(
        "again",
        "original.jpg",
        json!([{"op": "sharpen"}]),
        json!([
            {"version": "v2", "format": "jpeg"}, {"version": "t", "format": "webp", "ops": [{"op": "resize", "width": 50}]}
        ]),
    );
    assert_eq!(run(&engine, &job).result.status, Status::Succeeded);
    let first: Vec<(String, Vec<u8>)> = storage
        .keys()
        .into_iter()
        .map(|k| (k.clone(), storage.object(&k).unwrap()))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(run(&engine, &job).result.status, Status::Succeeded);
    let second: Vec<(String, Vec<u8>)> = storage
        .keys()
        .into_iter()
        .map(|k| (k.clone(), storage.object(&k).unwrap()))
        .collect();
    assert_eq!(first, second, "redelivery changed or added objects");
    assert_eq!(first.len(), 5);
}

/// Needs the `test-hooks` feature (`MemoryStorage::fail_writes_after`).
#[cfg(feature = "test-hooks")]
#[test]
fn a_storage_failure_part_way_rolls_back_every_write() {
    for writes_before_failure in [0, 1, 2, 3] {
        let (engine, storage) = memory_engine(cfg());
        storage.insert(
            &key("original.png"),
            png_bytes(&test_image(50, 40, 4, false)),
        );
        storage.fail_writes_after(writes_before_failure);
        let job = edit(
            "fails",
            "original.png",
            json!([]),
            json!([
                {"version": "v2", "format": "png"}, {"version": "v3", "format": "jpeg"}
            ]),
        );
        let r = run(&engine, &job).result;
        assert_eq!(r.error.unwrap().code.as_str(), "storage_unavailable");
        assert_eq!(
            storage.keys(),
            vec![key("original.png")],
            "after {writes_before_failure} writes"
        );
    }
}

/// The same rollback without a test hook: a real folder where the second
/// write (the first manifest) cannot land, because a folder holds its name.
#[test]
fn a_local_write_that_fails_rolls_back_the_versions_already_written() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(IMAGE);
    std::fs::create_dir_all(folder.join("v2.json/in-the-way")).unwrap();
    std::fs::write(
        folder.join("original.png"),
        png_bytes(&test_image(50, 40, 4, false)),
    )
    .unwrap();
    let storage = Arc::new(imgworker::storage::LocalStorage::new(dir.path()).unwrap());
    let engine = imgworker::pipeline::Engine::new(cfg(), storage, imgworker::backend::Backend::Cpu);
    let job = edit(
        "fails-locally",
        "original.png",
        json!([]),
        json!([{"version": "v2", "format": "png"}, {"version": "v3", "format": "jpeg"}]),
    );
    let r = run(&engine, &job).result;
    let err = r.error.expect("the job failed");
    assert_eq!(err.code.as_str(), "storage_unavailable", "{}", err.message);
    assert!(
        err.message
            .starts_with("storage unavailable: write failed: "),
        "{}",
        err.message
    );
    let mut left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["original.png", "v2.json"],
        "v2.png was not rolled back"
    );
}

#[test]
fn purge_removes_exactly_the_image_objects() {
    let (engine, storage) = memory_engine(cfg());
    for k in [
        "u/1/original.jpg",
        "u/1/v2.jpg",
        "u/1/v2.json",
        "u/10/original.jpg",
        "u/1/x/original.jpg",
        "u/original.jpg",
    ] {
        storage.insert(k, vec![1, 2, 3]);
    }
    let r = run(
        &engine,
        &json!({"schema": 1, "id": "p1", "type": "purge", "image": "u/1"}),
    )
    .result;
    assert_eq!(r.status, Status::Succeeded);
    assert_eq!(r.removed, Some(3));
    assert_eq!(
        storage.keys(),
        ["u/1/x/original.jpg", "u/10/original.jpg", "u/original.jpg"]
    );
    assert_eq!(r.routing_key(), "purge.succeeded");
    // Purging again finds nothing; purge with edit fields is refused.
    assert_eq!(
        run(
            &engine,
            &json!({"schema": 1, "id": "p2", "type": "purge", "image": "u/1"})
        )
        .result
        .removed,
        Some(0)
    );
    let bad =
        json!({"schema": 1, "id": "p3", "type": "purge", "image": "u/1", "source": "original.jpg"});
    assert_eq!(
        run(&engine, &bad).result.error.unwrap().code.as_str(),
        "invalid_job"
    );
}

#[test]
fn overlays_read_from_the_image_or_an_allowed_watermark_prefix() {
    let logo = png_bytes(&image::RgbaImage::from_pixel(
        8,
        8,
        image::Rgba([255, 0, 0, 255]),
    ));
    let cfg = WorkerConfig {
        watermark_prefixes: vec!["watermarks/".into()],
        ..cfg()
    };
    let (engine, storage) = memory_engine(cfg);
    storage.insert(
        &key("original.png"),
        png_bytes(&image::RgbaImage::from_pixel(
            32,
            32,
            image::Rgba([0, 0, 255, 255]),
        )),
    );
    storage.insert(&key("logo.png"), logo.clone());
    storage.insert("watermarks/acme/logo.png", logo);
    for source in ["logo.png", "watermarks/acme/logo.png"] {
        let job = edit(
            "ov",
            "original.png",
            json!([{"op": "overlay", "source": source, "gravity": "north_west"}]),
            json!([{"version": "v2", "format": "png"}]),
        );
        let out = run(&engine, &job);
        assert_eq!(
            out.result.status,
            Status::Succeeded,
            "{source}: {:?}",
            out.result.error
        );
        assert_eq!(out.stats.overlay_decodes, 1);
        let img = decode(&storage.object(&key("v2.png")).unwrap());
        assert_eq!(img.get_pixel(0, 0).0, [255, 0, 0, 255]);
        assert_eq!(img.get_pixel(31, 31).0, [0, 0, 255, 255]);
    }
    let job = edit(
        "ov",
        "original.png",
        json!([{"op": "overlay", "source": "secrets/acme/logo.png"}]),
        json!([{"version": "v2", "format": "png"}]),
    );
    assert_eq!(
        run(&engine, &job).result.error.unwrap().code.as_str(),
        "forbidden_key"
    );
}

/// A `.cube` object of the image grades the output like the op does with
/// the same cube in hand; a missing or malformed one is a clear error.
#[test]
fn a_lut_object_is_fetched_parsed_and_applied() {
    use imgworker::ops::{Frame, OpContext, OpSpec};
    let (engine, storage) = memory_engine(cfg());
    let src = test_image(24, 16, 8, false);
    storage.insert(&key("original.png"), png_bytes(&src));
    storage.insert(&key("grade.cube"), common::grade_cube_text(9).into_bytes());
    let ops = json!([{"op": "lut", "object": "grade.cube"}, {"op": "invert"}]);
    let job = edit(
        "lut",
        "original.png",
        ops.clone(),
        json!([{"version": "v2", "format": "png"}]),
    );
    let out = run(&engine, &job);
    assert_eq!(
        out.result.status,
        Status::Succeeded,
        "{:?}",
        out.result.error
    );
    let got = decode(&storage.object(&key("v2.png")).unwrap());
    // The same ops, run directly with the cube parsed by the test.
    let ctx = OpContext {
        luts: [(
            "grade.cube".to_string(),
            std::sync::Arc::new(common::grade_cube(9)),
        )]
        .into(),
        ..Default::default()
    };
    let mut frame = Frame {
        img: src.clone(),
        orientation: 1,
    };
    for spec in ops.as_array().unwrap() {
        let mut op = serde_json::from_value::<OpSpec>(spec.clone())
            .unwrap()
            .validate(&cfg().limits)
            .unwrap();
        op.bind(&ctx).unwrap();
        frame = op.run_cpu(frame, &ctx).unwrap();
    }
    assert!(
        got == frame.img,
        "the stored version is not the graded source"
    );
    assert!(got != src);

    let missing = edit(
        "lut2",
        "original.png",
        json!([{"op": "lut", "object": "none.cube"}]),
        json!([{"version": "v3", "format": "png"}]),
    );
    let err = run(&engine, &missing).result.error.unwrap();
    assert_eq!(err.code.as_str(), "source_not_found", "{}", err.message);
    storage.insert(&key("bad.cube"), b"LUT_3D_SIZE 2\n0 0 0\n0 0 x\n".to_vec());
    let bad = edit(
        "lut3",
        "original.png",
        json!([{"op": "lut", "object": "bad.cube"}]),
        json!([{"version": "v4", "format": "png"}]),
    );
    let err = run(&engine, &bad).result.error.unwrap();
    assert_eq!(err.code.as_str(), "invalid_param");
    assert!(err.message.contains("line 3"), "{}", err.message);
    assert!(
        storage.object(&key("v4.png")).is_none(),
        "a failed job wrote a version"
    );
}

#[test]
fn auto_orient_honours_exif_and_outputs_carry_no_metadata() {
    let secret = "SENTINEL-41b7-gps-and-comment";
    let src = test_image(40, 20, 5, false);
    let jpeg = with_exif(&jpeg_bytes(&src, 95), 6, Some(secret));
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.jpg"), jpeg);
    let outputs = json!([{"version": "a", "format": "jpeg"}, {"version": "b", "format": "png"}, {"version": "c", "format": "webp"}]);
    let r = run(
        &engine,
        &edit("o", "original.jpg", json!([{"op": "auto_orient"}]), outputs),
    )
    .result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    // Orientation 6 is a 90 degree clockwise turn: 40x20 becomes 20x40.
    assert_eq!((r.outputs[0].width, r.outputs[0].height), (20, 40));
    for object in ["a.jpg", "b.png", "c.webp", "a.json"] {
        let bytes = storage.object(&key(object)).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{object} carries EXIF text"
        );
        assert!(
            !bytes.windows(4).any(|w| w == b"Exif"),
            "{object} carries an EXIF block"
        );
    }
    // The rotated pixels match a rotation of the decoded source.
    let png = decode(&storage.object(&key("b.png")).unwrap());
    let reference = image::imageops::rotate90(&decode(&jpeg_bytes(&src, 95)));
    let (max, _) = common::diff(&png, &reference);
    assert!(max <= 2, "max diff {max}");
    // Without auto_orient the stored orientation is kept as is.
    let r = run(
        &engine,
        &edit(
            "o2",
            "original.jpg",
            json!([]),
            json!([{"version": "d", "format": "png"}]),
        ),
    )
    .result;
    assert_eq!((r.outputs[0].width, r.outputs[0].height), (40, 20));
}

#[test]
fn with_source_color_the_source_icc_profile_is_kept_on_every_format() {
    use image::ImageDecoder;
    let profile = common::color::adobe_rgb_icc();
    let mut app2 = b"ICC_PROFILE\0\x01\x01".to_vec();
    app2.extend_from_slice(&profile);
    let src = test_image(40, 20, 3, false);
    let jpeg = common::with_segments(&jpeg_bytes(&src, 95), &[(0xE2, &app2)]);
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.jpg"), jpeg);
    let outputs = json!([{"version": "a", "format": "jpeg"}, {"version": "b", "format": "png"},
        {"version": "c", "format": "webp"}, {"version": "d", "format": "webp", "lossless": true},
        {"version": "e", "format": "avif"}]);
    // `source`: the pixels stay Adobe RGB, and every version says so.
    let mut job = edit("icc", "original.jpg", json!([]), outputs);
    job["color"] = json!("source");
    let r = run(&engine, &job).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    let avif = storage.object(&key("e.avif")).unwrap();
    let ctx = libheif_rs::HeifContext::read_from_bytes(&avif).unwrap();
    let handle = ctx.primary_image_handle().unwrap();
    assert_eq!(
        handle.color_profile_raw().map(|p| p.data),
        Some(profile.clone())
    );
    assert_eq!((handle.width(), handle.height()), (40, 20));
    for (object, format) in [
        ("a.jpg", ImageFormat::Jpeg),
        ("b.png", ImageFormat::Png),
        ("c.webp", ImageFormat::WebP),
        ("d.webp", ImageFormat::WebP),
    ] {
        let bytes = storage.object(&key(object)).unwrap();
        let reader = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
            .with_guessed_format()
            .unwrap();
        assert_eq!(reader.format(), Some(format), "{object}");
        let mut dec = reader.into_decoder().unwrap();
        assert_eq!(dec.dimensions(), (40, 20), "{object}");
        assert_eq!(
            dec.icc_profile().unwrap(),
            Some(profile.clone()),
            "{object}"
        );
    }
}

#[test]
fn alpha_is_flattened_for_jpeg_and_kept_for_png() {
    let (engine, storage) = memory_engine(cfg());
    let src = image::RgbaImage::from_pixel(4, 4, image::Rgba([200, 100, 50, 128]));
    storage.insert(&key("original.png"), png_bytes(&src));
    let out = json!([{"version": "j", "format": "jpeg", "quality": 100}, {"version": "p", "format": "png"}]);
    assert_eq!(
        run(&engine, &edit("a", "original.png", json!([]), out))
            .result
            .status,
        Status::Succeeded
    );
    assert_eq!(decode(&storage.object(&key("p.png")).unwrap()), src);
    let j = decode(&storage.object(&key("j.jpg")).unwrap());
    let p = j.get_pixel(1, 1).0;
    // Flattened onto black: 200 * 128/255 = 100, 100 -> 50, 50 -> 25.
    assert!(
        p[0].abs_diff(100) <= 2 && p[1].abs_diff(50) <= 2 && p[2].abs_diff(25) <= 2,
        "{p:?}"
    );
}

#[test]
fn failed_result_keeps_the_job_identity() {
    let (engine, _) = memory_engine(cfg());
    let r = run(
        &engine,
        &edit(
            "id-9",
            "original.png",
            json!([]),
            json!([{"version": "v2", "format": "png"}]),
        ),
    )
    .result;
    assert_eq!((r.id.as_str(), r.image.as_deref()), ("id-9", Some(IMAGE)));
    assert_eq!(r.routing_key(), "edit.failed");
    assert_eq!(r.worker, "test");
}

/// Resample with fast_image_resize's Lanczos3 from the full-size decode: the
/// reference a shrink-on-load result is held to.
fn lanczos(img: &image::RgbaImage, w: u32, h: u32) -> image::RgbaImage {
    imgworker::ops::resize::resize_rgba(
        img,
        imgworker::ops::Dims::new(w, h),
        [0.0, 0.0, f64::from(img.width()), f64::from(img.height())],
        fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3),
    )
    .unwrap()
}

#[test]
fn large_jpeg_downscales_decode_smaller_and_still_match_a_full_size_resize() {
    // A smooth photo-like source (no per-pixel noise, which no two
    // downscalers agree on).
    let src = image::RgbaImage::from_fn(1600, 1200, |x, y| {
        let f = |a: f64, b: f64| (127.5 + 120.0 * ((x as f64) / a + (y as f64) / b).sin()) as u8;
        image::Rgba([f(97.0, 211.0), f(173.0, 59.0), f(43.0, 131.0), 255])
    });
    let jpeg = jpeg_bytes(&src, 95);
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.jpg"), jpeg.clone());
    let full = decode(&jpeg);
    // (ops, expected shrink, output size): shrink-on-load leaves the resize
    // at least a factor of two, as libvips does.
    let cases = [
        (json!([{"op": "resize", "width": 100}]), 8, (100, 75)),
        (json!([{"op": "resize", "width": 200}]), 4, (200, 150)),
        (
            json!([{"op": "resize", "width": 300, "height": 300}]),
            2,
            (300, 225),
        ),
        (json!([{"op": "resize", "width": 500}]), 1, (500, 375)),
        (
            json!([{"op": "resize", "width": 64, "height": 64, "fit": "cover"}]),
            8,
            (64, 64),
        ),
        // Not the first op: decoded at full size.
        (
            json!([{"op": "grayscale"}, {"op": "resize", "width": 100}]),
            1,
            (100, 75),
        ),
        // In linear light: the DCT would average encoded values, so the
        // decode is full size.
        (
            json!([{"op": "resize", "width": 100, "linear": true}]),
            1,
            (100, 75),
        ),
    ];
    for (i, (ops, shrink, dims)) in cases.into_iter().enumerate() {
        let out = run(
            &engine,
            &edit(
                &format!("s{i}"),
                "original.jpg",
                ops.clone(),
                json!([{"version": format!("s{i}"), "format": "png"}]),
            ),
        );
        assert_eq!(
            out.result.status,
            Status::Succeeded,
            "{ops}: {:?}",
            out.result.error
        );
        assert_eq!(out.stats.source_shrink, shrink, "{ops}");
        let o = &out.result.outputs[0];
        assert_eq!((o.width, o.height), dims, "{ops}");
        if i < 4 {
            let got = decode(&storage.object(&key(&format!("s{i}.png"))).unwrap());
            let (max, mean) = common::diff(&got, &lanczos(&full, dims.0, dims.1));
            assert!(mean < 1.5 && max < 24, "{ops}: max {max}, mean {mean}");
        }
    }
    // The same shrink in an output's own ops when it is the only output,
    // and after auto_orient (orientation 6 turns 1600x1200 into 1200x1600).
    storage.insert(&key("turned.jpg"), with_exif(&jpeg, 6, None));
    let out = run(
        &engine,
        &edit(
            "t",
            "turned.jpg",
            json!([{"op": "auto_orient"}]),
            json!([{"version": "t", "format": "jpeg", "ops": [{"op": "resize", "height": 200}]}]),
        ),
    );
    assert_eq!(
        out.result.status,
        Status::Succeeded,
        "{:?}",
        out.result.error
    );
    assert_eq!(out.stats.source_shrink, 4);
    assert_eq!(
        (out.result.outputs[0].width, out.result.outputs[0].height),
        (150, 200)
    );
    // A PNG source is always decoded at full size.
    storage.insert(&key("flat.png"), png_bytes(&src));
    let out = run(
        &engine,
        &edit(
            "p",
            "flat.png",
            json!([{"op": "resize", "width": 100}]),
            json!([{"version": "p", "format": "png"}]),
        ),
    );
    assert_eq!(out.stats.source_shrink, 1);
    assert_eq!(
        (out.result.outputs[0].width, out.result.outputs[0].height),
        (100, 75)
    );
}

#[test]
fn cmyk_jpegs_decode_through_the_fallback_decoder() {
    // libjpeg-turbo does not turn CMYK into RGB; the image crate's decoder does.
    let (w, h) = (64usize, 48usize);
    let cmyk: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i % 200) as u8, 40, 90, 10])
        .collect();
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_quality(90).unwrap();
    c.set_subsamp(turbojpeg::Subsamp::None).unwrap();
    let jpeg = c
        .compress_to_vec(turbojpeg::Image {
            pixels: cmyk.as_slice(),
            width: w,
            pitch: 4 * w,
            height: h,
            format: turbojpeg::PixelFormat::CMYK,
        })
        .unwrap();
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("cmyk.jpg"), jpeg);
    let out = run(
        &engine,
        &edit(
            "c",
            "cmyk.jpg",
            json!([{"op": "resize", "width": 8}]),
            json!([{"version": "c", "format": "png"}]),
        ),
    );
    assert_eq!(
        out.result.status,
        Status::Succeeded,
        "{:?}",
        out.result.error
    );
    assert_eq!(out.stats.source_shrink, 1, "CMYK is decoded at full size");
    assert_eq!(
        (out.result.outputs[0].width, out.result.outputs[0].height),
        (8, 6)
    );
}

/// A generative-fill patch pasted back through the model's soft mask, the
/// mask given as a grey object or as the alpha of an RGBA one (the same
/// plane either way), under an allowed prefix too; the manifest records the
/// mask with the op.
#[test]
fn composite_through_a_mask_object_as_grey_or_alpha() {
    let cfg = WorkerConfig {
        watermark_prefixes: vec!["masks/".into()],
        ..cfg()
    };
    let (engine, storage) = memory_engine(cfg);
    let base = test_image(48, 32, 3, false);
    let patch = test_image(48, 32, 4, false);
    let plane = common::soft_mask(24, 16);
    let grey = image::DynamicImage::ImageLuma8(plane.clone());
    let mut grey_png = Vec::new();
    grey.write_to(&mut std::io::Cursor::new(&mut grey_png), ImageFormat::Png)
        .unwrap();
    let alpha = image::RgbaImage::from_fn(24, 16, |x, y| {
        image::Rgba([9, 200, 17, plane.get_pixel(x, y).0[0]])
    });
    storage.insert(&key("original.png"), png_bytes(&base));
    storage.insert(&key("patch.png"), png_bytes(&patch));
    storage.insert(&key("mask.png"), grey_png.clone());
    storage.insert(&key("mask-alpha.png"), png_bytes(&alpha));
    storage.insert("masks/shared/mask.png", grey_png);
    let mut results = Vec::new();
    for object in ["mask.png", "mask-alpha.png", "masks/shared/mask.png"] {
        let job = edit(
            "masked",
            "original.png",
            json!([{"op": "composite", "source": "patch.png", "mask": {"object": object, "fit": "fill", "feather": 1.0}}]),
            json!([{"version": "v2", "format": "png"}]),
        );
        let out = run(&engine, &job);
        assert_eq!(
            out.result.status,
            Status::Succeeded,
            "{object}: {:?}",
            out.result.error
        );
        results.push(decode(&storage.object(&key("v2.png")).unwrap()));
        let manifest: Manifest =
            serde_json::from_slice(&storage.object(&key("v2.json")).unwrap()).unwrap();
        let recorded = serde_json::to_value(&manifest.recipe.ops[0]).unwrap();
        assert_eq!(recorded["mask"]["object"], object);
        assert_eq!(recorded["op"], "composite");
    }
    assert_eq!(results[0], results[1], "grey and alpha masks differ");
    assert_eq!(results[0], results[2]);
    let img = &results[0];
    // The centre of the mask is 255: the patch; the corners are 0: the base.
    assert_eq!(img.get_pixel(24, 16), patch.get_pixel(24, 16));
    assert_eq!(img.get_pixel(0, 0), base.get_pixel(0, 0));
    assert_eq!(img.get_pixel(47, 31), base.get_pixel(47, 31));
    // Between them, a mix of both.
    let mixed = (0..48).any(|x| {
        let (p, b, o) = (
            patch.get_pixel(x, 16),
            base.get_pixel(x, 16),
            img.get_pixel(x, 16),
        );
        o != p && o != b
    });
    assert!(mixed, "no soft edge");
}

/// The start-of-frame marker and the first component's sampling factors of
/// a JPEG, read from its markers.
fn jpeg_frame(jpeg: &[u8]) -> (u8, u8) {
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if (0xC0..=0xC2).contains(&marker) {
            return (marker, jpeg[i + 4 + 7]);
        }
        i += 2 + len;
    }
    panic!("no frame header");
}

#[test]
fn jpeg_options_reach_the_file_and_the_manifest() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(
        &key("original.png"),
        png_bytes(&test_image(120, 80, 3, false)),
    );
    let job = edit(
        "jpeg-options",
        "original.png",
        json!([]),
        json!([
            {"version": "plain", "format": "jpeg"},
            {"version": "prog", "format": "jpeg", "progressive": true, "chroma_subsampling": "4:4:4"},
            {"version": "opt", "format": "jpeg", "optimize_coding": true, "chroma_subsampling": "4:2:2"}
        ]),
    );
    let r = run(&engine, &job).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    for (version, frame, progressive, chroma, optimize) in [
        ("plain", (0xC0, 0x22), false, "4:2:0", false),
        ("prog", (0xC2, 0x11), true, "4:4:4", false),
        ("opt", (0xC0, 0x21), false, "4:2:2", true),
    ] {
        let bytes = storage.object(&key(&format!("{version}.jpg"))).unwrap();
        assert_eq!(jpeg_frame(&bytes), frame, "{version}");
        assert_eq!(decode(&bytes).dimensions(), (120, 80));
        let manifest: Value =
            serde_json::from_slice(&storage.object(&key(&format!("{version}.json"))).unwrap())
                .unwrap();
        let recorded = &manifest["recipe"]["output"]["jpeg"];
        assert_eq!(recorded["progressive"], progressive, "{version}");
        assert_eq!(recorded["chroma_subsampling"], chroma, "{version}");
        assert_eq!(recorded["optimize_coding"], optimize, "{version}");
    }
    // The options are JPEG's alone.
    for (i, (format, option)) in [
        ("webp", json!({"progressive": true})),
        ("png", json!({"chroma_subsampling": "4:4:4"})),
        ("avif", json!({"optimize_coding": true})),
    ]
    .into_iter()
    .enumerate()
    {
        let mut output = json!({"version": "bad", "format": format});
        output
            .as_object_mut()
            .unwrap()
            .extend(option.as_object().unwrap().clone());
        let job = edit(
            &format!("bad-{i}"),
            "original.png",
            json!([]),
            json!([output]),
        );
        let err = run(&engine, &job).result.error.unwrap();
        assert_eq!(err.code.as_str(), "invalid_param", "{format}");
        assert!(
            err.message.contains("only applies to jpeg"),
            "{}",
            err.message
        );
    }
    let bad = edit(
        "bad-chroma",
        "original.png",
        json!([]),
        json!([{"version": "bad", "format": "jpeg", "chroma_subsampling": "4:1:1"}]),
    );
    let err = run(&engine, &bad).result.error.unwrap();
    assert_eq!(err.code.as_str(), "invalid_param", "{}", err.message);
}

#[test]
fn avif_speed_is_validated_recorded_and_used() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(
        &key("original.png"),
        png_bytes(&test_image(96, 64, 5, false)),
    );
    let job = edit(
        "avif-speed",
        "original.png",
        json!([]),
        json!([
            {"version": "default", "format": "avif"},
            {"version": "slow", "format": "avif", "speed": 3, "chroma_subsampling": "4:4:4"},
            {"version": "fast", "format": "avif", "speed": 10, "chroma_subsampling": "4:2:2"}
        ]),
    );
    let r = run(&engine, &job).result;
    assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
    let mut encoded = Vec::new();
    // (version, speed, chroma, the av1C box's chroma_subsampling_x and _y)
    for (version, speed, chroma, flags) in [
        ("default", 7, "4:2:0", 0b1100),
        ("slow", 3, "4:4:4", 0b0000),
        ("fast", 10, "4:2:2", 0b1000),
    ] {
        let manifest: Value =
            serde_json::from_slice(&storage.object(&key(&format!("{version}.json"))).unwrap())
                .unwrap();
        let recorded = &manifest["recipe"]["output"];
        assert_eq!(recorded["speed"], speed, "{version}");
        assert_eq!(recorded["chroma_subsampling"], chroma, "{version}");
        let avif = storage.object(&key(&format!("{version}.avif"))).unwrap();
        let at = avif.windows(4).position(|w| w == b"av1C").unwrap() + 4;
        assert_eq!(avif[at + 2] & 0b1100, flags, "{version}");
        encoded.push(avif);
    }
    assert_ne!(encoded[1], encoded[2], "the speed reaches the encoder");
    for (i, (format, speed)) in [("avif", 0), ("avif", 11), ("webp", 5)]
        .into_iter()
        .enumerate()
    {
        let job = edit(
            &format!("bad-speed-{i}"),
            "original.png",
            json!([]),
            json!([{"version": "bad", "format": format, "speed": speed}]),
        );
        let err = run(&engine, &job).result.error.unwrap();
        assert_eq!(err.code.as_str(), "invalid_param", "{format} {speed}");
        assert!(err.message.contains("speed"), "{}", err.message);
    }
}
