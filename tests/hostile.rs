//! Hostile input: every case gets its exact error code and writes nothing.

mod common;

use std::io::Write;

use common::{
    cfg, cjxl, heif_bytes, jpeg_bytes, memory_engine, png_bytes, png_with_header, run, test_image,
};
use imgworker::config::WorkerConfig;
use imgworker::result::Status;
use serde_json::{json, Value};

const IMAGE: &str = "users/42/images/7";

fn job(source: &str, ops: Value, outputs: Value) -> Value {
    json!({"schema": 1, "id": "job-1", "type": "edit", "image": IMAGE, "source": source, "ops": ops, "outputs": outputs})
}

fn simple_job() -> Value {
    job(
        "original.png",
        json!([]),
        json!([{"version": "v2", "format": "png"}]),
    )
}

/// Run `job` against storage holding `source` as the original; assert the
/// error code and that storage still holds exactly what it held before.
fn expect_code_with(cfg: WorkerConfig, source: &[u8], body: &[u8], code: &str) -> String {
    expect_code_in(cfg, &[("original.png", source.to_vec())], body, code)
}

/// [`expect_code_with`] over storage holding `objects` of the image.
fn expect_code_in(
    cfg: WorkerConfig,
    objects: &[(&str, Vec<u8>)],
    body: &[u8],
    code: &str,
) -> String {
    let (engine, storage) = memory_engine(cfg);
    for (name, bytes) in objects {
        storage.insert(&format!("{IMAGE}/{name}"), bytes.clone());
    }
    let before = storage.keys();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(engine.run(body, 1));
    let r = out.result;
    assert_eq!(r.status, Status::Failed, "expected {code}, got success");
    let err = r.error.unwrap();
    assert_eq!(err.code.as_str(), code, "message: {}", err.message);
    assert_eq!(storage.keys(), before, "a failed job wrote to storage");
    assert!(r.outputs.is_empty());
    err.message
}

fn expect_code(source: &[u8], job: &Value, code: &str) -> String {
    expect_code_with(cfg(), source, &serde_json::to_vec(job).unwrap(), code)
}

fn good_png() -> Vec<u8> {
    png_bytes(&test_image(64, 48, 1, false))
}

#[test]
fn truncated_images_fail_to_decode() {
    let png = good_png();
    expect_code(&png[..png.len() / 2], &simple_job(), "decode_failed");
    let jpeg = jpeg_bytes(&test_image(64, 48, 1, false), 90);
    expect_code(&jpeg[..jpeg.len() / 3], &simple_job(), "decode_failed");
}

#[test]
fn random_bytes_are_refused() {
    let mut state = 0x1234_5678u32;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    expect_code(&random, &simple_job(), "unsupported_format");
    // A PNG signature followed by garbage claims PNG and fails as one.
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.extend_from_slice(&random);
    expect_code(&fake, &simple_job(), "decode_failed");
}

#[test]
fn empty_file_fails_to_decode() {
    let msg = expect_code(b"", &simple_job(), "decode_failed");
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn png_header_declaring_60000_square_is_refused_from_the_header() {
    let bomb = png_with_header(
        60_000,
        60_000,
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    expect_code(&bomb, &simple_job(), "limit_exceeded");
}

#[test]
fn valid_20000_square_png_is_refused() {
    // A real, complete 1-bit 20000x20000 PNG (400 MP; 1.6 GB as RGBA),
    // compressed to a few hundred kilobytes.
    let (w, h) = (20_000u32, 20_000u32);
    let row = vec![0u8; 1 + (w as usize).div_ceil(8)];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    let png = png_with_header(w, h, &z.finish().unwrap());
    let msg = expect_code(&png, &simple_job(), "limit_exceeded");
    assert!(msg.contains("20000x20000"), "{msg}");
}

#[test]
fn gif_with_huge_canvas_is_refused() {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&65535u16.to_le_bytes());
    gif.extend_from_slice(&65535u16.to_le_bytes());
    gif.extend_from_slice(&[0x00, 0x00, 0x00]); // no global colour table
                                                // One 1x1 frame with a 2-entry local colour table, then the trailer.
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0x80, 0, 0, 0, 255, 255, 255]);
    gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]);
    expect_code(&gif, &simple_job(), "limit_exceeded");
}

#[test]
fn hostile_heic_and_avif_files_get_their_codes() {
    use libheif_rs::CompressionFormat;
    let img = test_image(64, 48, 1, false);
    for format in [CompressionFormat::Hevc, CompressionFormat::Av1] {
        let good = heif_bytes(&img, format, None);
        expect_code(&good[..good.len() / 2], &simple_job(), "decode_failed");
        expect_code(&good[..40], &simple_job(), "decode_failed");
        // The container's `ispe` boxes (the coded image's, the displayed
        // size's, the alpha plane's) declare 20000x20000: refused from the
        // header, before libheif decodes (or allocates) anything.
        let mut huge = good.clone();
        let boxes: Vec<usize> = (0..good.len() - 16)
            .filter(|&i| &good[i..i + 4] == b"ispe")
            .collect();
        assert!(!boxes.is_empty(), "an ispe box");
        for at in boxes {
            huge[at + 8..at + 12].copy_from_slice(&20_000u32.to_be_bytes());
            huge[at + 12..at + 16].copy_from_slice(&20_000u32.to_be_bytes());
        }
        let msg = expect_code(&huge, &simple_job(), "limit_exceeded");
        assert!(msg.contains("20000x20000"), "{msg}");
        // A valid file type box, then garbage.
        let mut garbage = good[..good.windows(4).position(|w| w == b"meta").unwrap() - 4].to_vec();
        garbage.extend((0..4000u32).map(|i| (i * 131 % 251) as u8));
        expect_code(&garbage, &simple_job(), "decode_failed");
        // The pixel data cut short inside the coded image.
        let mut cut = good.clone();
        let len = cut.len();
        cut[len - 64..].fill(0);
        cut.truncate(len - 16);
        expect_code(&cut, &simple_job(), "decode_failed");
    }
}

/// A bare JPEG XL codestream with its SizeHeader replaced by one that
/// declares `w`x`h` (ISO/IEC 18181-1: `div8` 0, the height and width as
/// `U32` fields, `ratio` 0). Each dimension's `U32` encoding (9, 13, 18 or
/// 30 bits) is chosen so that the new header has as many bits as the old
/// one modulo 8: the rest of the bits follow unchanged and stay aligned to
/// the bytes where the format pads to them, so only the size differs.
fn jxl_with_size(codestream: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut bits: Vec<u8> = (0..codestream.len() * 8)
        .map(|i| (codestream[i / 8] >> (i % 8)) & 1)
        .collect();
    // A field of `n` bits at `pos`, least significant first.
    let read = |pos: &mut usize, n: usize| {
        let v = (0..n).map(|i| u32::from(bits[*pos + i]) << i).sum::<u32>();
        *pos += n;
        v
    };
    let dim_bits = [9, 13, 18, 30];
    let dim = |pos: &mut usize, div8: bool| {
        if div8 {
            read(pos, 5);
        } else {
            let selector = read(pos, 2) as usize;
            read(pos, dim_bits[selector]);
        }
    };
    let mut pos = 16; // after the signature
    let div8 = read(&mut pos, 1) == 1;
    dim(&mut pos, div8);
    if read(&mut pos, 3) == 0 {
        dim(&mut pos, div8); // the width, unless a ratio gives it
    }
    let old_len = pos - 16;
    let fits = |v: u32| (0..4).filter(move |&s| v - 1 < 1 << dim_bits[s]);
    let (sh, sw) = fits(h)
        .flat_map(|sh| fits(w).map(move |sw| (sh, sw)))
        .find(|&(sh, sw)| (1 + 2 + dim_bits[sh] + 3 + 2 + dim_bits[sw]) % 8 == old_len % 8)
        .unwrap_or_else(|| panic!("no encoding of {w}x{h} is {old_len} bits modulo 8"));
    let mut header = vec![0u8]; // div8 0
    let mut push = |v: u32, n: usize| header.extend((0..n).map(|i| (v >> i & 1) as u8));
    push(sh as u32, 2);
    push(h - 1, dim_bits[sh]);
    push(0, 3); // ratio 0: the width follows
    push(sw as u32, 2);
    push(w - 1, dim_bits[sw]);
    bits.splice(16..16 + old_len, header);
    bits.chunks(8)
        .map(|b| b.iter().enumerate().map(|(i, &v)| v << i).sum())
        .collect()
}

#[test]
fn hostile_jpeg_xl_files_get_their_codes() {
    // 63x63: cjxl writes its size in 15 bits (a 9-bit height, the width
    // by ratio), which the sizes below can match modulo 8.
    let png = png_bytes(&test_image(63, 63, 1, false));
    let bare = cjxl(&png, "png", &["-d", "0", "--container=0"]);
    let container = cjxl(&png, "png", &["-d", "0", "--container=1"]);
    assert!(bare.starts_with(&[0xFF, 0x0A]) && container.starts_with(&[0, 0, 0, 12]));
    for good in [&bare, &container] {
        // Cut short: in the pixel data, and inside the header.
        expect_code(&good[..good.len() / 2], &simple_job(), "decode_failed");
        expect_code(&good[..good.len() - 1], &simple_job(), "decode_failed");
        let header_cut = if good[0] == 0xFF { 6 } else { 40 };
        expect_code(&good[..header_cut], &simple_job(), "decode_failed");
    }
    // A signature, then garbage: it claims JPEG XL and fails as one.
    let garbage: Vec<u8> = (0..4000u32).map(|i| (i * 131 % 251) as u8).collect();
    for signature in [&bare[..2], &container[..32]] {
        let mut fake = signature.to_vec();
        fake.extend_from_slice(&garbage);
        expect_code(&fake, &simple_job(), "decode_failed");
    }
    // A size header declaring 8000x20000 (160 MP): refused from the
    // header, before jxl-oxide decodes (or allocates) anything.
    let huge = jxl_with_size(&bare, 8_000, 20_000);
    let msg = expect_code(&huge, &simple_job(), "limit_exceeded");
    assert!(msg.contains("8000x20000"), "{msg}");
    // A size header lying within the limits (2000x1500 over the data of a
    // 63x63 image): the frame does not fit it.
    let lying = jxl_with_size(&bare, 2000, 1500);
    expect_code(&lying, &simple_job(), "decode_failed");
    // (It is read as 2000x1500: under a 2 MP limit, it is refused as such.)
    let mut small = cfg();
    small.limits.max_source_pixels = 2_000_000;
    let body = serde_json::to_vec(&simple_job()).unwrap();
    let msg = expect_code_with(small, &lying, &body, "limit_exceeded");
    assert!(msg.contains("2000x1500"), "{msg}");
    // A codestream box declaring more bytes than the file holds.
    let mut long_box = container.clone();
    let at = long_box.windows(4).position(|w| w == b"jxlc").unwrap() - 4;
    let size = u32::from_be_bytes(long_box[at..at + 4].try_into().unwrap());
    long_box[at..at + 4].copy_from_slice(&(size + 4096).to_be_bytes());
    expect_code(&long_box, &simple_job(), "decode_failed");
}

#[test]
fn svg_is_an_unsupported_format() {
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#;
    expect_code(svg, &simple_job(), "unsupported_format");
}

#[test]
fn malformed_json_is_an_invalid_job() {
    expect_code_with(
        cfg(),
        &good_png(),
        br#"{"schema": 1, "id": "x""#,
        "invalid_job",
    );
    expect_code_with(cfg(), &good_png(), b"[1, 2, 3]", "invalid_job");
    expect_code_with(cfg(), &good_png(), b"\xff\xfe not utf8", "invalid_job");
}

#[test]
fn wrong_schema_or_missing_fields_are_invalid_jobs() {
    let mut j = simple_job();
    j["schema"] = json!(2);
    expect_code(&good_png(), &j, "invalid_job");
    let mut j = simple_job();
    j.as_object_mut().unwrap().remove("source");
    expect_code(&good_png(), &j, "invalid_job");
    expect_code(
        &good_png(),
        &job("original.png", json!([]), json!([])),
        "invalid_job",
    );
    let mut j = simple_job();
    j["id"] = json!("has space");
    expect_code(&good_png(), &j, "invalid_job");
}

#[test]
fn unknown_op_is_unsupported() {
    expect_code(
        &good_png(),
        &job(
            "original.png",
            json!([{"op": "posterize"}]),
            json!([{"version": "v2", "format": "png"}]),
        ),
        "unsupported_op",
    );
    let trailing = json!([{"version": "v2", "format": "png", "ops": [{"op": "swirl"}]}]);
    expect_code(
        &good_png(),
        &job("original.png", json!([]), trailing),
        "unsupported_op",
    );
}

#[test]
fn unknown_fields_are_rejected() {
    let mut j = simple_job();
    j["priority"] = json!(5);
    expect_code(&good_png(), &j, "invalid_job");
    let in_op = job(
        "original.png",
        json!([{"op": "blur", "sigma": 1.0, "radius": 3}]),
        json!([{"version": "v2", "format": "png"}]),
    );
    expect_code(&good_png(), &in_op, "invalid_job");
    let in_output = job(
        "original.png",
        json!([]),
        json!([{"version": "v2", "format": "png", "dpi": 300}]),
    );
    expect_code(&good_png(), &in_output, "invalid_job");
}

#[test]
fn out_of_range_and_non_finite_parameters_are_invalid() {
    let out = json!([{"version": "v2", "format": "png"}]);
    // Each message names the parameter (the path before the colon), also
    // where serde's own message for a bad value does not.
    for (bad, field) in [
        (json!({"op": "blur", "sigma": 0}), ".sigma"),
        (json!({"op": "blur", "sigma": "wide"}), ".sigma"),
        (json!({"op": "adjust", "brightness": 2}), ".brightness"),
        (json!({"op": "adjust"}), ""),
        (json!({"op": "sepia", "strength": -1}), ".strength"),
        (json!({"op": "rotate", "degrees": 45}), ".background"),
        (json!({"op": "resize", "width": 0}), ".width"),
        (json!({"op": "resize", "width": -5}), ".width"),
        (json!({"op": "flip", "axis": "diagonal"}), ".axis"),
        (
            json!({"op": "overlay", "source": "logo.png", "opacity": 3}),
            ".opacity",
        ),
        (json!({"op": "pad", "top": 2, "color": "red"}), ".color"),
        (
            json!({"op": "resize", "width": 9, "fit": "contain", "background": "#12"}),
            ".background",
        ),
        // A missing field is named by serde's message, not blamed on one
        // that is present.
        (json!({"op": "crop", "width": 10}), ""),
    ] {
        let msg = expect_code(
            &good_png(),
            &job("original.png", json!([bad.clone()]), out.clone()),
            "invalid_param",
        );
        assert!(msg.starts_with(&format!("ops[0]{field}: ")), "{bad}: {msg}");
    }
    // JSON has no NaN; an overflowing number is the non-finite case.
    let raw = br#"{"schema":1,"id":"j","type":"edit","image":"users/42/images/7","source":"original.png","ops":[{"op":"blur","sigma":1e999}],"outputs":[{"version":"v2","format":"png"}]}"#;
    expect_code_with(cfg(), &good_png(), raw, "invalid_param");
    let q = json!([{"version": "v2", "format": "jpeg", "quality": 101}]);
    expect_code(
        &good_png(),
        &job("original.png", json!([]), q),
        "invalid_param",
    );
    let q = json!([{"version": "v2", "format": "png", "quality": 80}]);
    expect_code(
        &good_png(),
        &job("original.png", json!([]), q),
        "invalid_param",
    );
}

#[test]
fn crop_outside_the_image_is_invalid() {
    let crop = json!([{"op": "crop", "x": 40, "y": 0, "width": 30, "height": 10}]);
    let msg = expect_code(
        &good_png(),
        &job(
            "original.png",
            crop,
            json!([{"version": "v2", "format": "png"}]),
        ),
        "invalid_param",
    );
    assert!(msg.contains("outside the 64x48 image"), "{msg}");
}

#[test]
fn huge_output_size_is_refused_before_any_work() {
    let big = json!([{"op": "resize", "width": 60000, "height": 60000, "fit": "fill"}]);
    expect_code(
        &good_png(),
        &job(
            "original.png",
            big,
            json!([{"version": "v2", "format": "png"}]),
        ),
        "limit_exceeded",
    );
    // WebP's own limit is 16383 per side.
    let wide = json!([{"version": "v2", "format": "webp", "ops": [{"op": "resize", "width": 20000, "height": 10, "fit": "fill"}]}]);
    expect_code(
        &good_png(),
        &job("original.png", json!([]), wide),
        "limit_exceeded",
    );
}

#[test]
fn too_many_ops_or_outputs_exceed_limits() {
    let ops: Vec<Value> = (0..33).map(|_| json!({"op": "invert"})).collect();
    expect_code(
        &good_png(),
        &job(
            "original.png",
            json!(ops),
            json!([{"version": "v2", "format": "png"}]),
        ),
        "limit_exceeded",
    );
    let outs: Vec<Value> = (0..9)
        .map(|i| json!({"version": format!("v{i}"), "format": "png"}))
        .collect();
    expect_code(
        &good_png(),
        &job("original.png", json!([]), json!(outs)),
        "limit_exceeded",
    );
}

#[test]
fn path_traversal_is_a_forbidden_key() {
    let out = json!([{"version": "v2", "format": "png"}]);
    for image in [
        "../etc",
        "users/../../x",
        "/abs",
        "a//b",
        "users/42/",
        "a\\b",
        "users/%2e%2e",
    ] {
        let mut j = job("original.png", json!([]), out.clone());
        j["image"] = json!(image);
        expect_code(&good_png(), &j, "forbidden_key");
    }
    for source in [
        "../original.png",
        "a/original.png",
        ".hidden",
        "/etc/passwd",
    ] {
        expect_code(
            &good_png(),
            &job(source, json!([]), out.clone()),
            "forbidden_key",
        );
    }
    for version in ["../v2", "v2/x", "..", "v2.png", ""] {
        expect_code(
            &good_png(),
            &job(
                "original.png",
                json!([]),
                json!([{"version": version, "format": "png"}]),
            ),
            "forbidden_key",
        );
    }
    let overlay = json!([{"op": "overlay", "source": "../../other/logo.png"}]);
    expect_code(
        &good_png(),
        &job("original.png", overlay, out.clone()),
        "forbidden_key",
    );
}

#[test]
fn allow_list_confines_the_worker() {
    let cfg = WorkerConfig {
        allow_prefixes: vec!["tenants/".into()],
        ..cfg()
    };
    expect_code_with(
        cfg,
        &good_png(),
        &serde_json::to_vec(&simple_job()).unwrap(),
        "forbidden_key",
    );
}

#[test]
fn missing_source_is_source_not_found() {
    expect_code(
        &good_png(),
        &job(
            "missing.png",
            json!([]),
            json!([{"version": "v2", "format": "png"}]),
        ),
        "source_not_found",
    );
    let overlay = json!([{"op": "overlay", "source": "logo.png"}]);
    expect_code(
        &good_png(),
        &job(
            "original.png",
            overlay,
            json!([{"version": "v2", "format": "png"}]),
        ),
        "source_not_found",
    );
}

#[test]
fn duplicate_versions_are_an_invalid_job() {
    let outs = json!([{"version": "v2", "format": "png"}, {"version": "v2", "format": "jpeg"}]);
    expect_code(
        &good_png(),
        &job("original.png", json!([]), outs),
        "invalid_job",
    );
    // Writing over the source is refused too.
    expect_code(
        &good_png(),
        &job(
            "original.png",
            json!([]),
            json!([{"version": "original", "format": "png"}]),
        ),
        "invalid_job",
    );
}

#[test]
fn oversized_source_bytes_exceed_the_limit() {
    let mut c = cfg();
    c.limits.max_source_bytes = 100;
    expect_code_with(
        c,
        &good_png(),
        &serde_json::to_vec(&simple_job()).unwrap(),
        "limit_exceeded",
    );
}

#[test]
fn deadline_is_enforced() {
    let mut c = cfg();
    c.limits.deadline = std::time::Duration::from_nanos(1);
    let j = job(
        "original.png",
        json!([{"op": "blur", "sigma": 2}]),
        json!([{"version": "v2", "format": "png"}]),
    );
    expect_code_with(
        c,
        &good_png(),
        &serde_json::to_vec(&j).unwrap(),
        "limit_exceeded",
    );
}

#[test]
fn error_messages_carry_no_exif_text() {
    let secret = "SENTINEL-7f3a9c-do-not-log";
    let jpeg = common::with_exif(
        &jpeg_bytes(&test_image(32, 32, 1, false), 90),
        1,
        Some(secret),
    );
    let truncated = &jpeg[..jpeg.len() - 200];
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&format!("{IMAGE}/original.jpg"), truncated.to_vec());
    let j = job(
        "original.jpg",
        json!([]),
        json!([{"version": "v2", "format": "png"}]),
    );
    let r = run(&engine, &j).result;
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains(secret), "{text}");
}

/// [`expect_code`] with more objects of the image in storage (masks).
fn expect_code_with_objects(objects: &[(&str, Vec<u8>)], job: &Value, code: &str) -> String {
    let mut all = vec![("original.png", good_png())];
    all.extend(objects.iter().cloned());
    expect_code_in(cfg(), &all, &serde_json::to_vec(job).unwrap(), code)
}

#[test]
fn hostile_masks_get_their_codes_and_write_nothing() {
    let out = json!([{"version": "v2", "format": "png"}]);
    let good_mask = png_bytes(&test_image(64, 48, 5, false));
    let objects = [
        ("mask.png", good_mask.clone()),
        ("small.png", png_bytes(&test_image(10, 10, 5, false))),
        ("noise.png", b"definitely not an image".to_vec()),
        ("cut.png", good_mask[..good_mask.len() / 2].to_vec()),
    ];
    let with = |op: Value| job("original.png", json!([op]), out.clone());
    let cases = [
        (
            json!({"op": "invert", "mask": {"object": "mask.png", "blur": 2}}),
            "invalid_job",
        ),
        (
            json!({"op": "invert", "mask": {"object": "mask.png", "feather": -1}}),
            "invalid_param",
        ),
        (
            json!({"op": "invert", "mask": {"object": "mask.png", "feather": 1e3}}),
            "invalid_param",
        ),
        (
            json!({"op": "invert", "mask": {"object": "mask.png", "invert": "yes"}}),
            "invalid_param",
        ),
        (
            json!({"op": "invert", "mask": {"object": "mask.png", "fit": "stretch"}}),
            "invalid_param",
        ),
        (json!({"op": "invert", "mask": "mask.png"}), "invalid_param"),
        (json!({"op": "invert", "mask": {}}), "invalid_param"),
        (
            json!({"op": "resize", "width": 32, "mask": {"object": "mask.png"}}),
            "invalid_param",
        ),
        (
            json!({"op": "trim", "mask": {"object": "mask.png"}}),
            "invalid_param",
        ),
        (
            json!({"op": "auto_orient", "mask": {"object": "mask.png"}}),
            "invalid_param",
        ),
        (
            json!({"op": "invert", "mask": {"object": "../../other/mask.png"}}),
            "forbidden_key",
        ),
        (
            json!({"op": "invert", "mask": {"object": "secrets/acme/mask.png"}}),
            "forbidden_key",
        ),
        (
            json!({"op": "invert", "mask": {"object": "absent.png"}}),
            "source_not_found",
        ),
        (
            json!({"op": "invert", "mask": {"object": "small.png"}}),
            "invalid_param",
        ),
        (
            json!({"op": "invert", "mask": {"object": "noise.png"}}),
            "unsupported_format",
        ),
        (
            json!({"op": "invert", "mask": {"object": "cut.png"}}),
            "decode_failed",
        ),
    ];
    for (op, code) in cases {
        let msg = expect_code_with_objects(&objects, &with(op.clone()), code);
        if code == "invalid_param" && op["op"] != "invert" {
            assert!(msg.contains("keep"), "{op}: {msg}");
        }
    }
    // Masks count as their op: a masked op inside an output too.
    let masked_output = job(
        "original.png",
        json!([]),
        json!([{"version": "v2", "format": "png", "ops": [{"op": "blur", "sigma": 1, "mask": {"object": "small.png"}}]}]),
    );
    let msg = expect_code_with_objects(&objects, &masked_output, "invalid_param");
    assert!(msg.contains("fit"), "{msg}");
}
