//! Encode RGBA8 into the output formats (JPEG through libjpeg-turbo, see
//! [`super::jpeg`]). No metadata is written (EXIF, XMP
//! and comments of the source are dropped) unless the output keeps EXIF;
//! the ICC profile is carried over where the encoder supports it (JPEG,
//! PNG).

use image::codecs::avif::AvifEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbaImage};

use crate::error::JobError;
use crate::job::{Encoding, Format};
use crate::ops::is_opaque;

/// AVIF encoder speed (1 slowest .. 10 fastest): a worker favours latency.
pub const AVIF_SPEED: u8 = 7;

/// RGB with alpha flattened onto black (what JPEG can hold).
fn flatten_rgb(img: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 4 * 3);
    for p in img.as_raw().chunks_exact(4) {
        let a = u32::from(p[3]);
        for &c in &p[..3] {
            out.push(((u32::from(c) * a + 127) / 255) as u8);
        }
    }
    out
}

/// RGB without the alpha channel (for opaque images).
fn drop_alpha(img: &RgbaImage) -> Vec<u8> {
    img.as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// PNG with fast deflate (fdeflate) and adaptive filters, written row by
/// row into a buffer sized for the stored (uncompressed) worst case, so
/// neither an RGB copy, nor the whole filtered or compressed image, nor a
/// buffer growing by doubling is ever held beside the frame. On the 4K
/// photo: 70 ms and 20.2 MB against 1189 ms and 16.9 MB at zlib level 6,
/// still smaller than libvips' default (level 6, unfiltered: 22.6 MB); see
/// BENCHMARKS.md.
fn encode_png(
    img: &RgbaImage,
    opaque: bool,
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, png::EncodingError> {
    use std::borrow::Cow;
    use std::io::Write;

    const IDAT_SIZE: usize = 1 << 20;
    let (w, h) = img.dimensions();
    let channels = if opaque { 3 } else { 4 };
    let row = w as usize * channels;
    let filtered = (row + 1) * h as usize;
    let overhead = 1024 + filtered / 65_535 * 5 + filtered / IDAT_SIZE * 12;
    let metadata = icc.map_or(0, <[u8]>::len) + exif.map_or(0, <[u8]>::len);
    let mut buf = Vec::with_capacity(filtered + overhead + metadata);

    let mut info = png::Info::with_size(w, h);
    info.icc_profile = icc.map(Cow::Borrowed);
    info.exif_metadata = exif.map(Cow::Borrowed);
    let mut encoder = png::Encoder::with_info(&mut buf, info)?;
    encoder.set_color(if opaque {
        png::ColorType::Rgb
    } else {
        png::ColorType::Rgba
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header()?;
    let mut stream = writer.stream_writer_with_size(IDAT_SIZE)?;
    let mut line = vec![0u8; row];
    for src in img.as_raw().chunks_exact(w as usize * 4) {
        if opaque {
            for (d, s) in line.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
                d.copy_from_slice(&s[..3]);
            }
            stream.write_all(&line)?;
        } else {
            stream.write_all(src)?;
        }
    }
    stream.finish()?;
    writer.finish()?;
    Ok(buf)
}

fn failed(format: Format, e: impl std::fmt::Display) -> JobError {
    JobError::internal(format!("{} encoding failed: {e}", format.ext()))
}

/// Encode an image; `exif` is written only when the output keeps EXIF.
pub fn encode(
    img: &RgbaImage,
    enc: &Encoding,
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, JobError> {
    let exif = exif.filter(|_| enc.keep_exif).map(<[u8]>::to_vec);
    let (w, h) = img.dimensions();
    let mut buf = Vec::new();
    let opaque = is_opaque(img);
    let f = enc.format;
    match f {
        Format::Jpeg => {
            let quality = enc.quality.unwrap_or(85);
            let jpeg = if opaque {
                super::jpeg::encode(img.as_raw(), w, h, true, quality)?
            } else {
                super::jpeg::encode(&flatten_rgb(img), w, h, false, quality)?
            };
            buf = super::jpeg::with_metadata(jpeg, icc, exif.as_deref())?;
        }
        Format::Png => {
            buf = encode_png(img, opaque, icc, exif.as_deref()).map_err(|e| failed(f, e))?;
        }
        Format::Webp => {
            let rgb;
            let encoder = if opaque {
                rgb = drop_alpha(img);
                webp::Encoder::from_rgb(&rgb, w, h)
            } else {
                webp::Encoder::from_rgba(img.as_raw(), w, h)
            };
            let mut mem = encoder
                .encode_simple(enc.lossless, f32::from(enc.quality.unwrap_or(80)))
                .map_err(|e| failed(f, format!("{e:?}")))?;
            buf.extend_from_slice(&mem);
            // libwebp allocated this with C malloc, which the wiping
            // allocator does not see: wipe it before it is freed.
            zeroize::Zeroize::zeroize(&mut *mem);
        }
        Format::Avif => {
            let mut e = AvifEncoder::new_with_speed_quality(
                &mut buf,
                AVIF_SPEED,
                enc.quality.unwrap_or(60),
            );
            if let Some(exif) = exif {
                e.set_exif_metadata(exif).map_err(|e| failed(f, e))?;
            }
            e.write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
                .map_err(|e| failed(f, e))?;
        }
    }
    Ok(buf)
}
