//! JPEG XL sources (jxl-oxide), made at test time by cjxl (libjxl's own
//! encoder, an independent writer): lossless ones decode to exactly their
//! pixels on both backends, lossy ones within a stated tolerance; 16-bit
//! samples are rounded to 8 bits; alpha (straight or premultiplied) and
//! greyscale come out as straight RGBA; the codestream's orientation is
//! displayed upright; an animation gives its first frame; every output
//! format can be written from a JPEG XL source.
//! The hostile JPEG XL files are in tests/hostile.rs.

mod common;

use common::{
    cfg, cjxl, decode, diff, exif_block, gpu_backend, jpeg_bytes, memory_engine, png_bytes, run,
    test_image, with_exif,
};
use image::{imageops, DynamicImage, ImageBuffer, ImageDecoder, Rgb, Rgba, RgbaImage};
use imgworker::backend::BackendKind;
use imgworker::pipeline::Engine;
use imgworker::result::Status;
use imgworker::storage::MemoryStorage;
use serde_json::{json, Value};
use std::sync::Arc;

const IMAGE: &str = "users/42/images/7";

fn edit(id: &str, source: &str, ops: Value, outputs: Value) -> Value {
    json!({"schema": 1, "id": id, "type": "edit", "image": IMAGE, "source": source, "ops": ops, "outputs": outputs})
}

fn key(object: &str) -> String {
    format!("{IMAGE}/{object}")
}

/// What `jxlinfo -v` (libjxl-tools, beside cjxl) says about a file: the
/// check that a fixture has the property a test relies on.
fn jxlinfo(jxl: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jxl");
    std::fs::write(&path, jxl).unwrap();
    let out = std::process::Command::new("jxlinfo")
        .arg("-v")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "jxlinfo cannot run ({e}): run scripts/test.sh, which installs it, or \
                 `apt-get install libjxl-tools`"
            )
        });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Store `source` as `name` and run one job over it on `engine`, expecting
/// success.
fn render(
    engine: &Engine,
    storage: &Arc<MemoryStorage>,
    name: &str,
    source: &[u8],
    job: &Value,
) -> imgworker::result::ResultMessage {
    storage.insert(&key(name), source.to_vec());
    let r = run(engine, job).result;
    assert_eq!(r.status, Status::Succeeded, "{}: {:?}", job["id"], r.error);
    r
}

/// The stored object `object`, decoded.
fn stored(storage: &MemoryStorage, object: &str) -> RgbaImage {
    decode(&storage.object(&key(object)).unwrap())
}

#[test]
fn lossless_jxl_decodes_to_its_exact_pixels_on_both_backends() {
    let cases = [
        ("rgb-bare", test_image(97, 61, 3, false), "--container=0"),
        (
            "rgb-container",
            test_image(97, 61, 4, false),
            "--container=1",
        ),
        ("rgba", test_image(97, 61, 5, true), "--container=0"),
    ];
    let (cpu, storage) = memory_engine(cfg());
    let gpu = Engine::new(cfg(), storage.clone(), gpu_backend());
    for (case, img, container) in cases {
        let source = cjxl(&png_bytes(&img), "png", &["-d", "0", container]);
        let expected = imageops::flip_horizontal(&img);
        for (backend, engine) in [("cpu", &cpu), ("gpu", &gpu)] {
            let version = format!("{case}-{backend}");
            let job = edit(
                &version,
                &format!("{case}.jxl"),
                json!([{"op": "flip", "axis": "horizontal"}]),
                json!([{"version": version, "format": "png"}]),
            );
            let r = render(engine, &storage, &format!("{case}.jxl"), &source, &job);
            let want = if backend == "gpu" {
                BackendKind::Gpu
            } else {
                BackendKind::Cpu
            };
            assert_eq!(r.backend, Some(want), "{version}");
            let out = stored(&storage, &format!("{version}.png"));
            assert_eq!(out.dimensions(), img.dimensions(), "{version}");
            let (max, _) = diff(&out, &expected);
            assert_eq!(
                max, 0,
                "{version}: lossless, so exactly the source's pixels"
            );
        }
    }
}

/// `jxl` decoded by `djxl`, libjxl's reference decoder (beside cjxl), to
/// an 8-bit PNG.
fn djxl(jxl: &[u8]) -> RgbaImage {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("in.jxl"), dir.path().join("out.png"));
    std::fs::write(&from, jxl).unwrap();
    let status = std::process::Command::new("djxl")
        .arg(&from)
        .arg(&to)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "djxl cannot run ({e}): run scripts/test.sh, which installs it, or \
                 `apt-get install libjxl-tools`"
            )
        })
        .status;
    assert!(status.success(), "djxl");
    decode(&std::fs::read(to).unwrap())
}

#[test]
fn lossy_jxl_decodes_as_libjxl_does() {
    // A lossy (VarDCT, XYB) file decodes as libjxl's own decoder has it,
    // within 1 level (both render in float). Against the source, cjxl's
    // `-d 1` ("visually lossless") is within 1 level on average; its
    // largest error is at the blue corner's hard edge.
    let img = common::cornered_picture(160, 120);
    let source = cjxl(&png_bytes(&img), "png", &["-d", "1"]);
    assert!(jxlinfo(&source).contains("lossy"), "a lossy fixture");
    let (engine, storage) = memory_engine(cfg());
    let job = edit(
        "lossy",
        "lossy.jxl",
        json!([]),
        json!([{"version": "v2", "format": "png"}]),
    );
    render(&engine, &storage, "lossy.jxl", &source, &job);
    let out = stored(&storage, "v2.png");
    let (max, mean) = diff(&out, &djxl(&source));
    assert!(max <= 1, "against djxl: max {max}, mean {mean}");
    let (max, mean) = diff(&out, &img);
    assert!(
        mean < 1.0 && max <= 48,
        "against the source: max {max}, mean {mean}"
    );
}

#[test]
fn sixteen_bit_jxl_is_rounded_to_8_bits() {
    // Every 8-bit level L, twice: 16-bit L * 257 + 100 lies 0.39 of a level
    // above L (rounds to L), L * 257 + 160 lies 0.62 above (rounds to
    // L + 1, where truncation would give L).
    let (w, h) = (510u32, 4u32);
    let sample = |x: u32, y: u32| -> [u16; 3] {
        let level = x / 2;
        let v = (level * 257 + if x.is_multiple_of(2) { 100 } else { 160 }).min(65_535);
        let g = 65_535 - v;
        let b = (v + y * 9_000) % 65_536;
        [v as u16, g as u16, b as u16]
    };
    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(w, h, |x, y| Rgb(sample(x, y)));
    let mut png = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb16(deep)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let source = cjxl(png.get_ref(), "png", &["-d", "0", "-e", "2"]);
    assert!(jxlinfo(&source).contains("16-bit RGB"), "a 16-bit fixture");
    let (engine, storage) = memory_engine(cfg());
    let job = edit(
        "deep",
        "deep.jxl",
        json!([]),
        json!([{"version": "v2", "format": "png"}]),
    );
    render(&engine, &storage, "deep.jxl", &source, &job);
    let out = stored(&storage, "v2.png");
    let mut rounded_up = 0;
    for (x, y, p) in out.enumerate_pixels() {
        for (c, v) in sample(x, y).into_iter().enumerate() {
            // The float64 reference: v * 255 / 65535, rounded to nearest.
            let exact = f64::from(v) * 255.0 / 65_535.0;
            let want = exact.round() as u8;
            assert_eq!(p[c], want, "({x}, {y}) channel {c}: 16-bit {v}");
            rounded_up += usize::from(want as f64 > exact.floor());
        }
        assert_eq!(p[3], 255);
    }
    assert!(
        rounded_up > 1000,
        "the case where rounding and truncation differ occurs"
    );
}

#[test]
fn greyscale_jxl_widens_to_rgb_and_keeps_alpha() {
    let grey = image::GrayImage::from_fn(45, 33, |x, y| image::Luma([(x * 5 + y * 3) as u8]));
    let grey_alpha = image::GrayAlphaImage::from_fn(45, 33, |x, y| {
        image::LumaA([(x * 5 + y * 3) as u8, (y * 7 + 10) as u8])
    });
    let (engine, storage) = memory_engine(cfg());
    for (case, img) in [
        ("grey", DynamicImage::ImageLuma8(grey)),
        ("grey-alpha", DynamicImage::ImageLumaA8(grey_alpha)),
    ] {
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let source = cjxl(png.get_ref(), "png", &["-d", "0"]);
        let info = jxlinfo(&source);
        assert!(
            info.contains("Grayscale"),
            "{case}: a greyscale fixture: {info}"
        );
        let job = edit(
            case,
            &format!("{case}.jxl"),
            json!([]),
            json!([{"version": format!("{case}-v2"), "format": "png"}]),
        );
        render(&engine, &storage, &format!("{case}.jxl"), &source, &job);
        let out = stored(&storage, &format!("{case}-v2.png"));
        assert_eq!(
            out,
            img.to_rgba8(),
            "{case}: grey replicated into R, G and B"
        );
    }
}

/// A JPEG XL codestream as bits (LSB first, as the format packs them),
/// read from `pos`.
struct Bits {
    bits: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(bytes: &[u8]) -> Self {
        let bits = (0..bytes.len() * 8)
            .map(|i| (bytes[i / 8] >> (i % 8)) & 1)
            .collect();
        Self { bits, pos: 0 }
    }

    fn bytes(&self) -> Vec<u8> {
        self.bits
            .chunks(8)
            .map(|b| b.iter().enumerate().map(|(i, &v)| v << i).sum())
            .collect()
    }

    fn read(&mut self, n: usize) -> u32 {
        let v = (0..n)
            .map(|i| u32::from(self.bits[self.pos + i]) << i)
            .sum();
        self.pos += n;
        v
    }

    /// A `U32` field: a 2-bit selector, then (offset, bits) of that choice.
    fn u32(&mut self, choices: [(u32, usize); 4]) -> u32 {
        let (offset, bits) = choices[self.read(2) as usize];
        offset + self.read(bits)
    }

    fn bit_depth(&mut self) {
        if self.read(1) == 1 {
            self.u32([(32, 0), (16, 0), (24, 0), (1, 6)]);
            self.read(4);
        } else {
            self.u32([(8, 0), (10, 0), (12, 0), (1, 6)]);
        }
    }

    fn size_header(&mut self) {
        let dim = [(1, 9), (1, 13), (1, 18), (1, 30)];
        let div8 = self.read(1) == 1;
        if div8 {
            self.read(5);
        } else {
            self.u32(dim);
        }
        if self.read(3) == 0 {
            if div8 {
                self.read(5);
            } else {
                self.u32(dim);
            }
        }
    }
}

/// `codestream` (bare) with its first extra channel, an alpha channel,
/// marked premultiplied (ISO/IEC 18181-1, ImageMetadata and
/// ExtraChannelInfo): the `alpha_associated` bit set, or, where the
/// channel is in the default form (8-bit straight alpha, one bit), that bit
/// replaced by the explicit form with the flag set. The explicit form is
/// written 17 bits long (its 8-bit depth in the long encoding), so that
/// everything after it moves by whole bytes and stays byte-aligned.
fn premultiplied(codestream: &[u8]) -> Vec<u8> {
    let mut b = Bits::new(codestream);
    b.pos = 16;
    b.size_header();
    assert_eq!(b.read(1), 0, "all_default");
    if b.read(1) == 1 {
        b.read(3); // orientation
        if b.read(1) == 1 {
            b.size_header(); // intrinsic size
        }
        assert_eq!(b.read(1), 0, "no preview");
        assert_eq!(b.read(1), 0, "no animation");
    }
    b.bit_depth();
    b.read(1); // modular_16bit_buffers
    assert!(
        b.u32([(0, 0), (1, 0), (2, 4), (1, 12)]) >= 1,
        "an extra channel"
    );
    let at = b.pos;
    if b.read(1) == 1 {
        // d_alpha 0, type Alpha, integer 8 bits as 1 + u(6), dim_shift 0,
        // no name, alpha_associated 1.
        let explicit = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        b.bits.splice(at..at + 1, explicit);
    } else {
        assert_eq!(b.u32([(0, 0), (1, 0), (2, 4), (18, 6)]), 0, "alpha");
        b.bit_depth();
        b.u32([(0, 0), (3, 0), (4, 0), (1, 3)]); // dim_shift
        let name = b.u32([(0, 0), (0, 4), (16, 5), (48, 10)]);
        b.read(8 * name as usize);
        let flag = b.pos;
        b.bits[flag] = 1;
    }
    b.bytes()
}

/// The codestream of a JPEG XL file: the file itself when bare, else its
/// `jxlc` box's payload.
fn codestream(jxl: &[u8]) -> Vec<u8> {
    if jxl.starts_with(&[0xFF, 0x0A]) {
        return jxl.to_vec();
    }
    let mut at = 0;
    while at + 8 <= jxl.len() {
        let size = u32::from_be_bytes(jxl[at..at + 4].try_into().unwrap()) as usize;
        let size = if size == 0 { jxl.len() - at } else { size };
        if &jxl[at + 4..at + 8] == b"jxlc" {
            return jxl[at + 8..at + size].to_vec();
        }
        at += size;
    }
    panic!("no jxlc box")
}

#[test]
fn premultiplied_alpha_comes_out_straight() {
    // cjxl 0.7 ignores `--premultiply`, so the fixture is a lossless 16-bit
    // RGBA file whose colour is stored premultiplied, its header then
    // marked so: the decoder must divide the alpha out. The alpha levels
    // are whole 8-bit levels, exact however cjxl stores the channel.
    let (w, h) = (64u32, 40u32);
    let straight = |x: u32, y: u32| -> [u16; 4] {
        let a8 = 20 + x * 3 + y / 8; // 8% to 100%
        [
            (x * 1_000 + y * 17) as u16,
            (65_535 - y * 1_500) as u16,
            ((x * y * 40) % 65_536) as u16,
            (a8.min(255) * 257) as u16,
        ]
    };
    let stored_premultiplied: ImageBuffer<Rgba<u16>, Vec<u16>> =
        ImageBuffer::from_fn(w, h, |x, y| {
            let [r, g, b, a] = straight(x, y);
            let p = |c: u16| ((f64::from(c) * f64::from(a) / 65_535.0).round()) as u16;
            Rgba([p(r), p(g), p(b), a])
        });
    let mut png = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgba16(stored_premultiplied)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let file = cjxl(
        png.get_ref(),
        "png",
        &["-d", "0", "--container=0", "-e", "2"],
    );
    assert!(jxlinfo(&file).contains("Non-premultiplied"));
    let source = premultiplied(&codestream(&file));
    let info = jxlinfo(&source);
    assert!(
        info.contains("alpha_premultiplied: 1"),
        "libjxl reads the flag: {info}"
    );
    let (engine, storage) = memory_engine(cfg());
    let job = edit(
        "premultiplied",
        "premultiplied.jxl",
        json!([]),
        json!([{"version": "v2", "format": "png"}]),
    );
    render(&engine, &storage, "premultiplied.jxl", &source, &job);
    let out = stored(&storage, "v2.png");
    for (x, y, p) in out.enumerate_pixels() {
        let s = straight(x, y);
        let level = |v: u16| (f64::from(v) * 255.0 / 65_535.0).round() as u8;
        assert_eq!(p[3], level(s[3]), "({x}, {y}): alpha exact");
        for c in 0..3 {
            assert!(
                p[c].abs_diff(level(s[c])) <= 1,
                "({x}, {y}) channel {c}: {} for straight {}",
                p[c],
                level(s[c])
            );
        }
    }
}

#[test]
fn orientation_6_is_displayed_upright_on_both_backends() {
    // A JPEG with EXIF orientation 6, recompressed losslessly by cjxl, which
    // turns the tag into the codestream's orientation field (and keeps the
    // EXIF, Brotli-compressed, for the JPEG's reconstruction).
    let img = common::cornered_picture(96, 64);
    let jpeg = with_exif(&jpeg_bytes(&img, 95), 6, None);
    let source = cjxl(&jpeg, "jpg", &["--lossless_jpeg=1"]);
    let info = jxlinfo(&source);
    assert!(info.contains("Orientation: 6"), "{info}");
    // Displayed: the JPEG's own pixels turned a quarter clockwise.
    let upright = imageops::rotate90(&decode(&jpeg_bytes(&img, 95)));
    let (cpu, storage) = memory_engine(cfg());
    let gpu = Engine::new(cfg(), storage.clone(), gpu_backend());
    // jxl-oxide applies the orientation while decoding: `auto_orient`
    // finds nothing left to do, and without it the source is upright too.
    for (case, ops) in [
        ("auto-orient", json!([{"op": "auto_orient"}])),
        ("plain", json!([])),
    ] {
        let job = edit(
            case,
            "portrait.jxl",
            ops,
            json!([{"version": case, "format": "png", "metadata": "keep_exif"}]),
        );
        render(&cpu, &storage, "portrait.jxl", &source, &job);
        let bytes = storage.object(&key(&format!("{case}.png"))).unwrap();
        let out = decode(&bytes);
        assert_eq!(out.dimensions(), (64, 96), "{case}: upright");
        // jxl-oxide's and the image crate's JPEG decoding differ by their
        // IDCT and chroma upsampling only.
        let (max, mean) = diff(&out, &upright);
        assert!(mean < 1.0 && max <= 8, "{case}: max {max}, mean {mean}");
        // cjxl's EXIF box is Brotli-compressed, which is not inflated.
        let mut dec = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        assert_eq!(dec.exif_metadata().unwrap(), None, "{case}");
    }
    // The same edit on both backends: the same upright source.
    let job = |id: &str| {
        edit(
            id,
            "portrait.jxl",
            json!([{"op": "auto_orient"}, {"op": "resize", "width": 32}]),
            json!([{"version": id, "format": "png"}]),
        )
    };
    render(&cpu, &storage, "portrait.jxl", &source, &job("small-cpu"));
    let r = render(&gpu, &storage, "portrait.jxl", &source, &job("small-gpu"));
    assert_eq!(r.backend, Some(BackendKind::Gpu));
    let (on_cpu, on_gpu) = (
        stored(&storage, "small-cpu.png"),
        stored(&storage, "small-gpu.png"),
    );
    assert_eq!(on_cpu.dimensions(), (32, 48));
    // The resize is bit-exact between the backends (its parity tolerance).
    assert!(on_cpu == on_gpu, "GPU and CPU differ");
}

/// A JPEG XL container holding `codestream` (bare) after an uncompressed
/// `Exif` box with `tiff`.
fn container_with_exif(codestream: &[u8], tiff: &[u8]) -> Vec<u8> {
    let boxed = |kind: &[u8; 4], payload: &[u8]| {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    };
    let mut file = boxed(b"JXL ", &[0x0D, 0x0A, 0x87, 0x0A]);
    file.extend(boxed(b"ftyp", b"jxl \0\0\0\0jxl "));
    let mut exif = 0u32.to_be_bytes().to_vec();
    exif.extend_from_slice(tiff);
    file.extend(boxed(b"Exif", &exif));
    file.extend(boxed(b"jxlc", codestream));
    file
}

#[test]
fn an_uncompressed_exif_box_is_kept_without_its_orientation() {
    // The codestream says orientation 1; an EXIF tag of 6 beside it does
    // not turn the pixels (the codestream's field is the one that counts),
    // and is reset to 1 in the EXIF carried over.
    let img = test_image(48, 32, 9, false);
    let codestream = cjxl(&png_bytes(&img), "png", &["-d", "0", "--container=0"]);
    let source = container_with_exif(&codestream, &exif_block(6, Some("jxl exif")));
    assert!(jxlinfo(&source).contains("Exif"), "an Exif box");
    let (engine, storage) = memory_engine(cfg());
    let job = edit(
        "exif",
        "exif.jxl",
        json!([{"op": "auto_orient"}]),
        json!([{"version": "v2", "format": "png", "metadata": "keep_exif"}]),
    );
    render(&engine, &storage, "exif.jxl", &source, &job);
    let bytes = storage.object(&key("v2.png")).unwrap();
    assert_eq!(decode(&bytes), img, "as stored, exactly");
    let mut dec = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    let exif = dec
        .exif_metadata()
        .unwrap()
        .expect("the EXIF block is kept");
    assert_eq!(
        image::metadata::Orientation::from_exif_chunk(&exif),
        Some(image::metadata::Orientation::NoTransforms)
    );
    assert!(
        exif.windows(8).any(|w| w == b"jxl exif"),
        "the rest is kept"
    );
}

#[test]
fn a_jxl_source_is_written_in_every_output_format() {
    let img = common::cornered_picture(120, 80);
    let source = cjxl(&png_bytes(&img), "png", &["-d", "0.5"]);
    let (engine, storage) = memory_engine(cfg());
    let job = edit(
        "formats",
        "original.jxl",
        json!([{"op": "resize", "width": 60}]),
        json!([
            {"version": "v2", "format": "png"},
            {"version": "v2-jpeg", "format": "jpeg", "quality": 95},
            {"version": "v2-webp", "format": "webp", "lossless": true},
            {"version": "v2-avif", "format": "avif", "quality": 90}
        ]),
    );
    let r = render(&engine, &storage, "original.jxl", &source, &job);
    assert_eq!(r.outputs.len(), 4);
    for o in &r.outputs {
        assert_eq!((o.width, o.height), (60, 40), "{}", o.object);
    }
    let png = stored(&storage, "v2.png");
    let small = imageops::resize(&img, 60, 40, imageops::FilterType::Lanczos3);
    let (max, mean) = diff(&png, &small);
    assert!(mean < 2.0 && max <= 24, "png: max {max}, mean {mean}");
    assert_eq!(stored(&storage, "v2-webp.webp"), png, "lossless WebP = PNG");
    // JPEG's 4:2:0 chroma blurs the blue corner's hard edge: the mean only.
    let (max, mean) = diff(&stored(&storage, "v2-jpeg.jpg"), &png);
    assert!(mean < 2.0, "jpeg: max {max}, mean {mean}");
    let avif = storage.object(&key("v2-avif.avif")).unwrap();
    assert_eq!(&avif[4..8], b"ftyp", "an AVIF file");
}

#[test]
fn an_animated_jxl_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let solid = |c: [u8; 4]| RgbaImage::from_pixel(32, 24, Rgba(c));
    let (first, second) = (solid([255, 0, 0, 255]), solid([0, 0, 255, 255]));
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut gif);
        let delay = Delay::from_numer_denom_ms(100, 1);
        enc.encode_frames([
            Frame::from_parts(first.clone(), 0, 0, delay),
            Frame::from_parts(second, 0, 0, delay),
        ])
        .unwrap();
    }
    let source = cjxl(&gif, "gif", &[]);
    assert!(
        jxlinfo(&source).contains("have_animation: 1"),
        "an animation"
    );
    let (engine, storage) = memory_engine(cfg());
    let job = edit(
        "animated",
        "animated.jxl",
        json!([]),
        json!([{"version": "v2", "format": "png"}]),
    );
    render(&engine, &storage, "animated.jxl", &source, &job);
    assert_eq!(stored(&storage, "v2.png"), first);
}
