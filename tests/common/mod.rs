//! Helpers shared by the integration tests: deterministic test images, an
//! engine over in-memory storage, and byte-level builders for crafted files.

#![allow(dead_code)]

pub mod broker;
pub mod color;

use std::io::Cursor;
use std::sync::Arc;

use image::{ImageFormat, Rgba, RgbaImage};
use imgworker::backend::Backend;
use imgworker::config::WorkerConfig;
use imgworker::pipeline::{Engine, Outcome};
use imgworker::storage::MemoryStorage;

/// A deterministic "photo-like" image: smooth gradients plus hashed noise,
/// with every channel used. `alpha` adds a varying alpha channel.
pub fn test_image(w: u32, h: u32, seed: u32, alpha: bool) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let n = hash(x, y, seed);
        let g = |k: u32| ((x * (3 + k) + y * (5 + 2 * k) + seed * 7) % 256) as i32;
        let mix =
            |k: u32, shift: u32| (g(k) * 3 / 4 + ((n >> shift) & 63) as i32).clamp(0, 255) as u8;
        let a = if alpha {
            ((n >> 24) as u8).max(1) / 2 + ((x * 255) / w.max(1)) as u8 / 2
        } else {
            255
        };
        Rgba([mix(0, 0), mix(1, 6), mix(2, 12), a])
    })
}

fn hash(x: u32, y: u32, seed: u32) -> u32 {
    let mut v =
        x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ seed.wrapping_mul(0xC2B2_AE3D);
    v ^= v >> 15;
    v = v.wrapping_mul(0x2C1B_3C6D);
    v ^= v >> 12;
    v
}

/// A smooth picture with a distinct top-left corner, so that a wrong
/// orientation shows: lossy coding keeps smooth gradients close.
pub fn cornered_picture(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let corner = x < w / 4 && y < h / 4;
        Rgba([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            if corner { 230 } else { 40 },
            255,
        ])
    })
}

/// Encode an image as PNG (lossless, so tests know the exact source pixels).
pub fn png_bytes(img: &RgbaImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Encode an image as JPEG (RGB).
pub fn jpeg_bytes(img: &RgbaImage, quality: u8) -> Vec<u8> {
    let rgb = image::DynamicImage::ImageRgba8(img.clone()).into_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&rgb)
        .unwrap();
    out
}

/// Insert an EXIF APP1 segment ([`exif_block`]) right after the JPEG SOI
/// marker.
pub fn with_exif(jpeg: &[u8], orientation: u16, description: Option<&str>) -> Vec<u8> {
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif_block(orientation, description));
    with_segments(jpeg, &[(0xE1, &app1)])
}

/// An EXIF block (the TIFF structure) holding an orientation tag and,
/// optionally, an ASCII `ImageDescription`.
pub fn exif_block(orientation: u16, description: Option<&str>) -> Vec<u8> {
    // TIFF header (little endian) + IFD0 with 1 or 2 entries.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    let n: u16 = if description.is_some() { 2 } else { 1 };
    tiff.extend_from_slice(&n.to_le_bytes());
    let data_off = 8 + 2 + 12 * u32::from(n) + 4;
    if let Some(d) = description {
        let mut bytes = d.as_bytes().to_vec();
        bytes.push(0);
        tiff.extend_from_slice(&0x010Eu16.to_le_bytes()); // ImageDescription
        tiff.extend_from_slice(&2u16.to_le_bytes()); // ASCII
        tiff.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        tiff.extend_from_slice(&data_off.to_le_bytes());
    }
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&u32::from(orientation).to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    if let Some(d) = description {
        tiff.extend_from_slice(d.as_bytes());
        tiff.push(0);
    }
    tiff
}

/// `img` as a HEIF of `format` (HEVC: HEIC; AV1: AVIF), through libheif's
/// own encoders (x265, libaom) at quality 95, with EXIF where given, and an
/// alpha plane only where `img` has transparency. (libheif 1.15 writes no
/// `irot`/`imir` for an orientation: tests/heif.rs adds one to the file.) (libheif-rs 0.20 cannot attach an ICC profile: it passes
/// the profile type to libheif without its terminating NUL.)
pub fn heif_bytes(
    img: &RgbaImage,
    format: libheif_rs::CompressionFormat,
    exif: Option<&[u8]>,
) -> Vec<u8> {
    use libheif_rs::{Channel, ColorSpace, EncoderQuality, HeifContext, Image, LibHeif, RgbChroma};
    let lib = LibHeif::new();
    let (w, h) = img.dimensions();
    // An opaque image gets no alpha plane.
    let opaque = img.pixels().all(|p| p[3] == 255);
    let (chroma, channels) = if opaque {
        (RgbChroma::Rgb, 3)
    } else {
        (RgbChroma::Rgba, 4)
    };
    let mut image = Image::new(w, h, ColorSpace::Rgb(chroma)).unwrap();
    image.create_plane(Channel::Interleaved, w, h, 8).unwrap();
    let plane = image.planes_mut().interleaved.unwrap();
    let row = w as usize * channels;
    for (y, src) in img.rows().enumerate() {
        let line = &mut plane.data[y * plane.stride..y * plane.stride + row];
        for (dst, px) in line.chunks_exact_mut(channels).zip(src) {
            dst.copy_from_slice(&px.0[..channels]);
        }
    }
    let mut encoder = lib.encoder_for_format(format).unwrap();
    encoder.set_quality(EncoderQuality::Lossy(95)).unwrap();
    let mut ctx = HeifContext::new().unwrap();
    let handle = ctx.encode_image(&image, &mut encoder, None).unwrap();
    if let Some(exif) = exif {
        ctx.add_exif_metadata(&handle, exif).unwrap();
    }
    ctx.write_to_bytes().unwrap()
}

/// Insert JPEG marker segments (`marker`, payload) right after the SOI marker.
pub fn with_segments(jpeg: &[u8], segments: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, payload) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// CRC-32 (IEEE), as PNG chunks need.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG chunk with its length and CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A PNG whose IHDR says `w`x`h` (1-bit grayscale) with the given IDAT data.
pub fn png_with_header(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", idat));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// An engine over fresh memory storage, on the CPU backend.
pub fn memory_engine(cfg: WorkerConfig) -> (Engine, Arc<MemoryStorage>) {
    let storage = Arc::new(MemoryStorage::new());
    (Engine::new(cfg, storage.clone(), Backend::Cpu), storage)
}

/// Run a tool in `dir` (or here), failing with how to install it when it
/// is missing and with its stderr when it fails.
pub fn tool_in(dir: Option<&std::path::Path>, program: &str, args: &[&str], package: &str) {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "{program}: {e}: install {package} (scripts/test.sh does: apt-get install {package})"
        )
    });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run the `openssl` command in `dir`.
pub fn openssl(dir: &std::path::Path, args: &[&str]) {
    tool_in(Some(dir), "openssl", args, "openssl");
}

/// SHA-256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Default worker configuration for tests.
pub fn cfg() -> WorkerConfig {
    WorkerConfig {
        worker_name: "test".into(),
        ..WorkerConfig::default()
    }
}

/// Run a job (JSON value) to its outcome on a fresh runtime.
pub fn run(engine: &Engine, job: &serde_json::Value) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(engine.run(&serde_json::to_vec(job).unwrap(), 1))
}

/// Decode stored bytes (any supported format) to RGBA8.
pub fn decode(bytes: &[u8]) -> RgbaImage {
    image::load_from_memory(bytes).unwrap().into_rgba8()
}

/// Largest and mean absolute per-channel difference between two images.
pub fn diff(a: &RgbaImage, b: &RgbaImage) -> (u8, f64) {
    assert_eq!(a.dimensions(), b.dimensions(), "dimensions differ");
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / a.as_raw().len().max(1) as f64)
}

/// Sizes every op is tested on: 1x1, odd widths, very wide, very tall.
pub const EDGE_SIZES: &[(u32, u32)] = &[
    (1, 1),
    (9, 7),
    (17, 5),
    (33, 33),
    (65, 40),
    (300, 1),
    (1, 300),
    (128, 96),
];

/// Run a future to completion on a runtime of its own (for tests that are
/// not async themselves).
pub fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The S3-protocol test server (moto), started by scripts/test.sh.
pub const S3_ADDR: &str = "127.0.0.1:9000";

/// Create `bucket` on the test S3 server and open `s3://bucket/prefix` on it.
pub fn s3_storage(bucket: &str, prefix: &str) -> Arc<imgworker::storage::S3Storage> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(S3_ADDR).unwrap_or_else(|e| {
        panic!(
            "the S3 test server is not reachable on {S3_ADDR} ({e}): run scripts/test.sh, which \
             installs moto in target/test-venv and starts `moto_server -H 127.0.0.1 -p 9000`"
        )
    });
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {S3_ADDR}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.contains("BucketAlreadyOwnedByYou"),
        "creating bucket {bucket}: {reply}"
    );
    Arc::new(s3_at(&format!("http://{S3_ADDR}"), bucket, prefix))
}

/// The AWS environment that points imgworker at the S3 test server, with
/// the test credentials.
pub fn s3_vars() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", format!("http://{S3_ADDR}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// Point a spawned imgworker at the S3 test server ([`s3_vars`]).
pub fn s3_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.envs(s3_vars())
}

/// `s3://bucket/prefix` at an endpoint, with test credentials.
pub fn s3_at(endpoint: &str, bucket: &str, prefix: &str) -> imgworker::storage::S3Storage {
    let opts = imgworker::storage::S3Options {
        endpoint: Some(endpoint.into()),
        allow_http: true,
        credentials: Some(("test".into(), "test".into())),
        region: Some("us-east-1".into()),
        // The S3 test server shares two cores with a test binary's
        // parallel tests; a 5 s budget timed out under that load.
        timeout: Some(std::time::Duration::from_secs(30)),
        ca_file: None,
    };
    imgworker::storage::S3Storage::open(&format!("s3://{bucket}/{prefix}"), &opts).unwrap()
}

/// The colour grade the LUT tests bake into a cube: smooth, non-linear and
/// mixing channels, so that interpolation errors show.
pub fn grade(r: f64, g: f64, b: f64) -> [f64; 3] {
    [
        0.9 * r.powf(1.4) + 0.08 * g,
        0.85 * g.sqrt() + 0.1 * b * r,
        0.6 * b + 0.3 * r * g + 0.05,
    ]
}

/// [`grade`] as the text of an `n`-point `.cube`, red varying fastest.
pub fn grade_cube_text(n: usize) -> String {
    let mut s =
        format!("TITLE \"test grade\"\nLUT_3D_SIZE {n}\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 1 1 1\n");
    let v = |i: usize| i as f64 / (n - 1) as f64;
    for b in 0..n {
        for g in 0..n {
            for r in 0..n {
                let [x, y, z] = grade(v(r), v(g), v(b));
                s.push_str(&format!("{x:.6} {y:.6} {z:.6}\n"));
            }
        }
    }
    s
}

/// [`grade_cube_text`], parsed.
pub fn grade_cube(n: usize) -> imgworker::ops::lut::Cube {
    imgworker::ops::lut::Cube::parse("grade.cube", grade_cube_text(n).as_bytes())
        .expect("a valid cube")
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

/// `input` (a file of extension `ext`: `png`, `jpg`, `gif`…) encoded by
/// `cjxl` (libjxl's own encoder, Debian's libjxl-tools) with `args`: JPEG
/// XL sources from a writer independent of imgworker. A missing cjxl fails
/// the test, saying how to install it.
pub fn cjxl(input: &[u8], ext: &str, args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (
        dir.path().join(format!("in.{ext}")),
        dir.path().join("out.jxl"),
    );
    std::fs::write(&from, input).unwrap();
    let out = std::process::Command::new("cjxl")
        .arg(&from)
        .arg(&to)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cjxl cannot run ({e}): the JPEG XL tests make their sources with libjxl's \
                 encoder. Run scripts/test.sh, which installs it, or `apt-get install libjxl-tools`"
            )
        });
    assert!(
        out.status.success(),
        "cjxl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(to).unwrap()
}

/// A GPU backend (lavapipe where no GPU is present), or a failure that says
/// how to get one.
pub fn gpu_backend() -> Backend {
    Backend::select(imgworker::backend::BackendChoice::Gpu).unwrap_or_else(|e| {
        panic!(
            "this test needs a Vulkan adapter ({e}). Run scripts/test.sh, which installs \
             Mesa's software driver, or `apt-get install mesa-vulkan-drivers libvulkan1`"
        )
    })
}
