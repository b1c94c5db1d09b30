//! HEIC and AVIF sources (libheif): displayed as their `irot` says (added to
//! libheif-written files, whose 1.15 encoder cannot write it), their EXIF
//! carried over, 10-bit samples rounded, their ICC profile kept (files from
//! heif-enc, an independent writer); imgworker's own AVIF versions
//! re-edited.
//! The hostile HEIF files are in tests/hostile.rs.

mod common;

use common::color::{display_p3_icc, photo, png_with_icc, tificc_to_srgb};
use common::{
    cfg, decode, diff, exif_block, gpu_backend, heif_bytes, memory_engine, png_bytes, run,
};
use image::{imageops, ImageDecoder, RgbaImage};
use imgworker::backend::{Backend, BackendKind};
use imgworker::pipeline::Engine;
use imgworker::result::Status;
use libheif_rs::CompressionFormat;
use serde_json::{json, Value};

const IMAGE: &str = "users/42/images/7";

fn edit(id: &str, source: &str, ops: Value, outputs: Value) -> Value {
    json!({"schema": 1, "id": id, "type": "edit", "image": IMAGE, "source": source, "ops": ops, "outputs": outputs})
}

fn key(object: &str) -> String {
    format!("{IMAGE}/{object}")
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
fn heic_and_avif_sources_are_displayed_as_their_irot_says() {
    let img = common::cornered_picture(96, 64);
    // iPhones write the rotation twice: as `irot` and as the EXIF tag.
    let exif = exif_block(6, None);
    for (format, quarter_turns, ext) in [
        (CompressionFormat::Hevc, 3, "heic"),
        (CompressionFormat::Av1, 1, "avif"),
    ] {
        // `irot` turns anticlockwise: three quarter turns are EXIF's 6.
        let expected = match quarter_turns {
            3 => imageops::rotate90(&img),
            _ => imageops::rotate270(&img),
        };
        let plain = heif_bytes(&img, format, Some(&exif));
        let source = with_irot(&plain, quarter_turns);
        let (engine, storage) = memory_engine(cfg());
        let name = format!("portrait.{ext}");
        storage.insert(&key(&name), source);
        let job = edit(
            &format!("irot-{ext}"),
            &name,
            json!([{"op": "auto_orient"}, {"op": "resize", "width": 32}]),
            json!([{"version": "v2", "format": "png", "metadata": "keep_exif"}]),
        );
        let r = run(&engine, &job).result;
        assert_eq!(r.status, Status::Succeeded, "{ext}: {:?}", r.error);
        let png = storage.object(&key("v2.png")).unwrap();
        let out = decode(&png);
        assert_eq!(out.dimensions(), (32, 48), "{ext}: upright, then resized");
        let small = imageops::resize(&expected, 32, 48, imageops::FilterType::Lanczos3);
        let (max, mean) = diff(&out, &small);
        assert!(mean < 3.0 && max < 60, "{ext}: max {max}, mean {mean}");
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(&metadata(&png).unwrap()),
            Some(image::metadata::Orientation::NoTransforms),
            "{ext}: the EXIF tag says upright, as the pixels are"
        );
        // The same job on the GPU backend: the same decoded source, the ops
        // as compute shaders.
        let gpu = Engine::new(cfg(), storage.clone(), gpu_backend());
        let mut on_gpu = job.clone();
        on_gpu["id"] = json!(format!("irot-{ext}-gpu"));
        on_gpu["outputs"][0]["version"] = json!("v2-gpu");
        let r = run(&gpu, &on_gpu).result;
        assert_eq!(r.status, Status::Succeeded, "{ext} gpu: {:?}", r.error);
        assert_eq!(r.backend, Some(BackendKind::Gpu));
        let gpu_out = decode(&storage.object(&key("v2-gpu.png")).unwrap());
        // The resize is bit-exact between the backends (its parity
        // tolerance).
        assert!(gpu_out == out, "{ext}: GPU and CPU differ");
    }
}

#[test]
fn heic_and_avif_sources_keep_their_exif_without_its_orientation() {
    let img = common::cornered_picture(96, 64);
    // An EXIF orientation tag in a HEIF repeats the container's own
    // transform (`irot`/`imir`, which libheif applies); with none in the
    // container, as here, the tag alone does not turn the pixels (as in
    // libvips), and it is reset to 1 in the EXIF carried over.
    let exif = exif_block(6, None);
    let cases = [
        (CompressionFormat::Hevc, "heic"),
        (CompressionFormat::Av1, "avif"),
    ];
    for (i, (format, ext)) in cases.into_iter().enumerate() {
        let expected = img.clone();
        let source = heif_bytes(&img, format, Some(&exif));
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
        assert!(mean < 2.0 && max < 40, "{ext}: max {max}, mean {mean}");
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
    let img = common::cornered_picture(120, 80);
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
        let mut job = edit(
            &format!("deep-{ext}"),
            &name,
            json!([]),
            json!([{"version": "v2", "format": "png"}]),
        );
        // The source's own space: the pixels as decoded, and its profile.
        job["color"] = json!("source");
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

/// An AVIF version's pixels, decoded by libheif.
fn decode_avif(bytes: &[u8]) -> RgbaImage {
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    let ctx = HeifContext::read_from_bytes(bytes).unwrap();
    let handle = ctx.primary_image_handle().unwrap();
    let img = LibHeif::new()
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgba), None)
        .unwrap();
    let plane = img.planes().interleaved.unwrap();
    let row = plane.width as usize * 4;
    let data = (0..plane.height as usize)
        .flat_map(|y| plane.data[y * plane.stride..y * plane.stride + row].to_vec())
        .collect();
    RgbaImage::from_raw(plane.width, plane.height, data).unwrap()
}

/// The iPhone case: a HEIC photograph in Display P3, turned by its `irot`,
/// written as JPEG, PNG, WebP and AVIF: each upright, of the right size,
/// in sRGB as lcms2's `tificc` converts the same pixels; on both backends.
#[test]
fn a_display_p3_heic_photo_is_written_upright_in_srgb_to_every_format() {
    let img = photo("RainDrops");
    let p3 = display_p3_icc();
    // Lossless HEVC in RGB, so that the decoded pixels are the photo's.
    let heic = heif_enc(
        &png_with_icc(&img, Some(&p3)),
        &["-L", "-p", "chroma=444", "--matrix_coefficients=0"],
        "heic",
    );
    // Three anticlockwise quarter turns: EXIF's orientation 6.
    let source = with_irot(&heic, 3);
    let expected = imageops::rotate90(&tificc_to_srgb(&img, &p3));
    let (w, h) = expected.dimensions();
    let outputs = json!([
        {"version": "a", "format": "png"},
        {"version": "b", "format": "jpeg", "quality": 95, "chroma_subsampling": "4:4:4"},
        {"version": "c", "format": "webp", "quality": 95},
        {"version": "d", "format": "avif", "quality": 90},
    ]);
    let job = edit(
        "iphone",
        "IMG_0001.heic",
        json!([{"op": "auto_orient"}]),
        outputs,
    );
    let mut pngs = Vec::new();
    for backend in [Backend::Cpu, gpu_backend()] {
        let (_, storage) = memory_engine(cfg());
        let engine = Engine::new(cfg(), storage.clone(), backend);
        storage.insert(&key("IMG_0001.heic"), source.clone());
        let r = run(&engine, &job).result;
        assert_eq!(r.status, Status::Succeeded, "{:?}", r.error);
        for out in &r.outputs {
            assert_eq!((out.width, out.height), (w, h), "{}", out.object);
            assert!(out.color.converted, "{}", out.object);
        }
        // Lossless PNG within a level of lcms2 on average; the lossy
        // formats within their coding loss of it.
        for (object, bound) in [
            ("a.png", 1.0),
            ("b.jpg", 2.5),
            ("c.webp", 3.0),
            ("d.avif", 3.0),
        ] {
            let bytes = storage.object(&key(object)).unwrap();
            let got = if object.ends_with("avif") {
                decode_avif(&bytes)
            } else {
                decode(&bytes)
            };
            let (max, mean) = diff(&got, &expected);
            eprintln!("{object}: against tificc, max {max}, mean {mean:.3}");
            assert!(mean <= bound, "{object}: mean {mean} (max {max})");
        }
        pngs.push(decode(&storage.object(&key("a.png")).unwrap()));
    }
    assert!(pngs[0] == pngs[1], "CPU and GPU differ");
}

/// A big-endian integer of `n` bytes at `at`.
fn read_be(b: &[u8], at: usize, n: usize) -> u64 {
    b[at..at + n].iter().fold(0, |v, &x| v << 8 | u64::from(x))
}

/// Write `v` as a big-endian integer of `n` bytes at `at`.
fn write_be(b: &mut [u8], at: usize, n: usize, v: u64) {
    for i in 0..n {
        b[at + i] = (v >> (8 * (n - 1 - i))) as u8;
    }
}

/// The child boxes of the box whose payload spans `range`: (start, size,
/// type) each.
fn children(b: &[u8], range: std::ops::Range<usize>) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = range.start;
    while at + 8 <= range.end {
        let size = read_be(b, at, 4) as usize;
        out.push((at, size, b[at + 4..at + 8].try_into().unwrap()));
        at += size;
    }
    out
}

fn find(boxes: &[(usize, usize, [u8; 4])], kind: &[u8; 4]) -> (usize, usize) {
    let (at, size, _) = boxes.iter().find(|b| &b.2 == kind).expect("the box");
    (*at, *size)
}

/// `heif` with an `irot` property (`quarter_turns` anticlockwise, as HEIF
/// counts) added to its primary item: the transform iPhones write, which
/// libheif 1.15's encoder cannot. The property goes at the end of `ipco`,
/// its association into the primary item's `ipma` entry, and every box
/// that holds them and every `iloc` file offset behind them grows or moves
/// by the bytes added.
fn with_irot(heif: &[u8], quarter_turns: u8) -> Vec<u8> {
    let mut b = heif.to_vec();
    let top = children(&b, 0..b.len());
    let (meta, _) = find(&top, b"meta");
    let kids = children(&b, meta + 12..meta + read_be(&b, meta, 4) as usize);
    let (pitm, _) = find(&kids, b"pitm");
    let primary = read_be(&b, pitm + 12, 2);
    let (iprp, iprp_size) = find(&kids, b"iprp");
    let props = children(&b, iprp + 8..iprp + iprp_size);
    let (ipco, ipco_size) = find(&props, b"ipco");
    let (ipma, _) = find(&props, b"ipma");
    let index = children(&b, ipco + 8..ipco + ipco_size).len() as u64 + 1;
    // The association, in the primary item's ipma entry.
    let (version, wide) = (b[ipma + 8], b[ipma + 11] & 1 == 1);
    let id_len = if version < 1 { 2 } else { 4 };
    let entries = read_be(&b, ipma + 12, 4);
    let mut at = ipma + 16;
    let mut insert_at = None;
    for _ in 0..entries {
        let id = read_be(&b, at, id_len);
        let count_at = at + id_len;
        let count = usize::from(b[count_at]);
        let end = count_at + 1 + count * if wide { 2 } else { 1 };
        if id == primary {
            b[count_at] += 1;
            insert_at = Some(end);
        }
        at = end;
    }
    let insert_at = insert_at.expect("the primary item's ipma entry");
    let association: Vec<u8> = if wide {
        (0x8000 | index as u16).to_be_bytes().to_vec()
    } else {
        vec![0x80 | index as u8]
    };
    let irot = [0, 0, 0, 9, b'i', b'r', b'o', b't', quarter_turns];
    let added = (association.len() + irot.len()) as u64;
    // Sizes, while the offsets are the old ones.
    for (at, grow) in [
        (ipma, association.len()),
        (ipco, irot.len()),
        (iprp, added as usize),
        (meta, added as usize),
    ] {
        let size = read_be(&b, at, 4);
        write_be(&mut b, at, 4, size + grow as u64);
    }
    // iloc: file offsets of items in mdat (construction method 0) move.
    let (iloc, _) = find(&kids, b"iloc");
    let v = b[iloc + 8];
    let (offset_len, length_len) = (
        usize::from(b[iloc + 12] >> 4),
        usize::from(b[iloc + 12] & 15),
    );
    let (base_len, index_len) = (
        usize::from(b[iloc + 13] >> 4),
        usize::from(b[iloc + 13] & 15),
    );
    let (items, mut at) = if v < 2 {
        (read_be(&b, iloc + 14, 2), iloc + 16)
    } else {
        (read_be(&b, iloc + 14, 4), iloc + 18)
    };
    for _ in 0..items {
        at += if v < 2 { 2 } else { 4 };
        let method = if v >= 1 {
            let m = read_be(&b, at, 2) & 15;
            at += 2;
            m
        } else {
            0
        };
        at += 2; // data reference index
        let base = read_be(&b, at, base_len);
        if method == 0 && base_len > 0 && base > 0 {
            write_be(&mut b, at, base_len, base + added);
        }
        at += base_len;
        let extents = read_be(&b, at, 2);
        at += 2;
        for _ in 0..extents {
            if v >= 1 {
                at += index_len;
            }
            if method == 0 && (base_len == 0 || base == 0) {
                let offset = read_be(&b, at, offset_len);
                write_be(&mut b, at, offset_len, offset + added);
            }
            at += offset_len + length_len;
        }
    }
    let ipco_end = ipco + ipco_size;
    b.splice(insert_at..insert_at, association.iter().copied());
    // ipco comes before ipma, so its end has not moved.
    b.splice(ipco_end..ipco_end, irot);
    b
}
