//! Encode RGBA8 into the output formats (JPEG through libjpeg-turbo, see
//! [`super::jpeg`]; WebP through libwebp, see [`super::webp`]). No
//! metadata is written (EXIF, XMP and comments of the source are dropped)
//! unless the output keeps EXIF; the ICC profile is carried over into JPEG,
//! PNG and WebP (the AVIF encoder cannot write one).

use image::codecs::avif::AvifEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbaImage};

use crate::error::JobError;
use crate::job::{Encoding, Format};
use crate::ops::is_opaque;

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

/// PNG with fast deflate (fdeflate) and adaptive filters, written row by
/// row into a buffer sized for the stored (uncompressed) worst case, so
/// neither an RGB copy, nor the whole filtered or compressed image, nor a
/// buffer growing by doubling is ever held beside the frame. fdeflate
/// trades a somewhat larger file for an encode many times faster than zlib
/// (`cargo bench --bench codecs -- codecs/encode/png` measures it).
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

/// Add an ICC profile and an EXIF block to an encoded JPEG (APP2 and APP1
/// segments) or WebP (`ICCP` and `EXIF` chunks, with the `VP8X` header
/// they need); neither libjpeg-turbo's nor libwebp's encoder writes them.
pub(crate) fn with_metadata(
    encoded: Vec<u8>,
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, JobError> {
    use img_parts::{Bytes, DynImage, ImageEXIF, ImageICC};
    if icc.is_none() && exif.is_none() {
        return Ok(encoded);
    }
    let failed = |e: String| JobError::internal(format!("writing metadata: {e}"));
    let mut parsed = DynImage::from_bytes(Bytes::from(encoded))
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("not a JPEG or WebP".into()))?;
    if let Some(icc) = icc {
        parsed.set_icc_profile(Some(Bytes::copy_from_slice(icc)));
    }
    if let Some(exif) = exif {
        parsed.set_exif(Some(Bytes::copy_from_slice(exif)));
    }
    Ok(parsed.encoder().bytes().to_vec())
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
            let settings = enc.jpeg.unwrap_or_default();
            let jpeg = if opaque {
                super::jpeg::encode(img.as_raw(), w, h, true, quality, &settings)?
            } else {
                super::jpeg::encode(&flatten_rgb(img), w, h, false, quality, &settings)?
            };
            buf = with_metadata(jpeg, icc, exif.as_deref())?;
        }
        Format::Png => {
            buf = encode_png(img, opaque, icc, exif.as_deref()).map_err(|e| failed(f, e))?;
        }
        Format::Webp => {
            let opts = super::webp::WebpOptions {
                lossless: enc.lossless,
                quality: f32::from(enc.quality.unwrap_or(80)),
                threads: true,
            };
            let webp = super::webp::encode(img, opaque, opts).map_err(|e| failed(f, e))?;
            buf = with_metadata(webp, icc, exif.as_deref())?;
        }
        Format::Avif => {
            let mut e = AvifEncoder::new_with_speed_quality(
                &mut buf,
                enc.speed.unwrap_or(crate::job::DEFAULT_AVIF_SPEED),
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageDecoder;

    fn gradient(w: u32, h: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, 128, 255])
        })
    }

    /// The ICC profile and EXIF block an encoded file carries, as the
    /// `image` crate's decoder for its sniffed format reads them.
    fn read_back(format: image::ImageFormat, bytes: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .unwrap();
        assert_eq!(reader.format(), Some(format));
        let mut dec = reader.into_decoder().unwrap();
        (dec.icc_profile().unwrap(), dec.exif_metadata().unwrap())
    }

    #[test]
    fn icc_and_kept_exif_are_written_and_read_back() {
        let icc = vec![7u8; 70_000]; // two APP2 segments in a JPEG
        let exif = b"MM\0\x2a\0\0\0\x08\0\0".to_vec();
        for (format, sniffed) in [
            (Format::Jpeg, image::ImageFormat::Jpeg),
            (Format::Png, image::ImageFormat::Png),
            (Format::Webp, image::ImageFormat::WebP),
        ] {
            for alpha in [255u8, 100] {
                let mut img = gradient(16, 16);
                img.get_pixel_mut(3, 3)[3] = alpha;
                for keep_exif in [false, true] {
                    let enc = Encoding {
                        format,
                        quality: format.default_quality(),
                        lossless: false,
                        keep_exif,
                        speed: None,
                        jpeg: None,
                    };
                    let out = encode(&img, &enc, Some(&icc), Some(&exif)).unwrap();
                    let (got_icc, got_exif) = read_back(sniffed, &out);
                    let what = format!("{format:?} alpha {alpha} keep_exif {keep_exif}");
                    assert_eq!(got_icc.as_ref(), Some(&icc), "{what}");
                    assert_eq!(got_exif, keep_exif.then(|| exif.clone()), "{what}");
                    let back = image::load_from_memory(&out).unwrap();
                    assert_eq!((back.width(), back.height()), (16, 16), "{what}");
                }
            }
        }
    }

    #[test]
    fn without_metadata_the_encoders_bytes_are_untouched() {
        let jpeg = super::super::jpeg::encode(
            gradient(8, 8).as_raw(),
            8,
            8,
            true,
            85,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(with_metadata(jpeg.clone(), None, None).unwrap(), jpeg);
        assert!(with_metadata(b"not an image".to_vec(), Some(b"icc"), None).is_err());
    }
}
