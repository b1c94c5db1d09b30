//! Encode RGBA8 into the output formats (JPEG through libjpeg-turbo, see
//! [`super::jpeg`]; WebP through libwebp, see [`super::webp`]; AVIF through
//! libheif and libaom, see [`super::avif`]). No metadata is written (EXIF,
//! XMP and comments of the source are dropped) unless the output keeps
//! EXIF; the version's ICC profile (see [`crate::color`]) is written into
//! every format.

use image::RgbaImage;

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
    let opaque = is_opaque(img);
    let f = enc.format;
    let buf = match f {
        Format::Jpeg => {
            let quality = enc.quality.unwrap_or(85);
            let settings = enc.jpeg.unwrap_or_default();
            let jpeg = if opaque {
                super::jpeg::encode(img.as_raw(), w, h, true, quality, &settings)?
            } else {
                super::jpeg::encode(&flatten_rgb(img), w, h, false, quality, &settings)?
            };
            with_metadata(jpeg, icc, exif.as_deref())?
        }
        Format::Png => encode_png(img, opaque, icc, exif.as_deref()).map_err(|e| failed(f, e))?,
        Format::Webp => {
            let opts = super::webp::WebpOptions {
                lossless: enc.lossless,
                quality: f32::from(enc.quality.unwrap_or(80)),
                threads: true,
            };
            let webp = super::webp::encode(img, opaque, opts).map_err(|e| failed(f, e))?;
            with_metadata(webp, icc, exif.as_deref())?
        }
        Format::Avif => {
            let opts = super::avif::AvifOptions {
                quality: enc.quality.unwrap_or(60),
                speed: enc.speed.unwrap_or(crate::job::DEFAULT_AVIF_SPEED),
                chroma: enc.chroma_subsampling.unwrap_or_default(),
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            super::avif::encode(img, opaque, opts, icc, exif.as_deref())
                .map_err(|e| failed(f, e))?
        }
    };
    Ok(buf)
}

/// Most encodes a byte budget may take (`max_bytes`).
pub(crate) const MAX_BUDGET_ENCODES: usize = 6;

/// Encode an output and return the settings used: its one format, or with
/// `format: auto` the smallest encoding among its `candidates`, each at its
/// default settings. A candidate that cannot hold the image is left out:
/// one whose side limit it exceeds, and JPEG when the image has
/// transparency (JPEG would flatten it) unless JPEG is all that is left.
/// The byte budget, if any, then applies to the chosen format.
pub fn encode_choosing(
    img: &RgbaImage,
    enc: &Encoding,
    candidates: &[Format],
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
) -> Result<(Vec<u8>, Encoding), JobError> {
    if candidates.is_empty() {
        return encode_output(img, enc, icc, exif);
    }
    let (w, h) = img.dimensions();
    let fitting: Vec<Format> = candidates
        .iter()
        .copied()
        .filter(|f| w <= f.max_side() && h <= f.max_side())
        .collect();
    let opaque = is_opaque(img);
    let keeping_alpha: Vec<Format> = fitting
        .iter()
        .copied()
        .filter(|&f| opaque || f != Format::Jpeg)
        .collect();
    let pool = if keeping_alpha.is_empty() {
        fitting
    } else {
        keeping_alpha
    };
    let mut best: Option<(Vec<u8>, Encoding)> = None;
    for format in pool {
        let settings = enc.for_candidate(format);
        let unbudgeted = Encoding {
            max_bytes: None,
            min_quality: None,
            ..settings
        };
        let bytes = encode(img, &unbudgeted, icc, exif)?;
        tracing::debug!(
            format = format.ext(),
            bytes = bytes.len(),
            "auto format candidate"
        );
        if best.as_ref().is_none_or(|(b, _)| bytes.len() < b.len()) {
            best = Some((bytes, settings));
        }
    }
    let (bytes, chosen) = best.ok_or_else(|| {
        JobError::limit_exceeded(format!(
            "{w}x{h} is larger than every candidate format allows"
        ))
    })?;
    // The candidate's encoding is the budget's first attempt.
    budgeted(img, &chosen, icc, exif, Some(bytes))
}

/// Encode an output, and return the settings used. With a byte budget
/// (`max_bytes`), the highest quality in `min_quality..=quality` whose
/// encoding fits is searched for ([`fit_budget`]).
pub fn encode_output(
    img: &RgbaImage,
    enc: &Encoding,
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
) -> Result<(Vec<u8>, Encoding), JobError> {
    budgeted(img, enc, icc, exif, None)
}

/// [`encode_output`], given the encoding at `enc`'s own quality when it is
/// already made.
fn budgeted(
    img: &RgbaImage,
    enc: &Encoding,
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
    mut known: Option<Vec<u8>>,
) -> Result<(Vec<u8>, Encoding), JobError> {
    let (Some(max), Some(ceiling), Some(floor)) = (enc.max_bytes, enc.quality, enc.min_quality)
    else {
        let bytes = match known {
            Some(b) => b,
            None => encode(img, enc, icc, exif)?,
        };
        return Ok((bytes, *enc));
    };
    let (bytes, quality) = fit_budget(max, floor, ceiling, |quality| {
        if quality == ceiling {
            if let Some(b) = known.take() {
                return Ok(b);
            }
        }
        let settings = Encoding {
            quality: Some(quality),
            ..*enc
        };
        encode(img, &settings, icc, exif)
    })
    .map_err(|e| match e {
        BudgetError::Encoder(e) => e,
        BudgetError::TooLarge(quality, size) => JobError::limit_exceeded(format!(
            "at quality {quality} the {} version takes {size} bytes, more than its max_bytes of {max}",
            enc.format.ext()
        )),
    })?;
    let used = Encoding {
        quality: Some(quality),
        ..*enc
    };
    Ok((bytes, used))
}

/// Why a byte budget was not met.
#[derive(Debug)]
enum BudgetError {
    /// The encoder failed.
    Encoder(JobError),
    /// Even the lowest quality (the first field) gave this many bytes.
    TooLarge(u8, usize),
}

/// The highest quality in `floor..=ceiling` whose encoding fits in `max`
/// bytes, and that encoding, in at most [`MAX_BUDGET_ENCODES`] calls of
/// `encode`: the ceiling first (most budgets are met there), then the floor
/// (`Err((floor, its size))` when even it does not fit), then guesses
/// interpolated on the logarithm of the size between the best quality known
/// to fit and the lowest known not to, until the two are adjacent or the
/// encodes are spent.
fn fit_budget(
    max: u64,
    floor: u8,
    ceiling: u8,
    mut encode: impl FnMut(u8) -> Result<Vec<u8>, JobError>,
) -> Result<(Vec<u8>, u8), BudgetError> {
    let fits = |bytes: &[u8]| bytes.len() as u64 <= max;
    let top = encode(ceiling).map_err(BudgetError::Encoder)?;
    if fits(&top) {
        return Ok((top, ceiling));
    }
    if floor >= ceiling {
        return Err(BudgetError::TooLarge(ceiling, top.len()));
    }
    let bottom = encode(floor).map_err(BudgetError::Encoder)?;
    if !fits(&bottom) {
        return Err(BudgetError::TooLarge(floor, bottom.len()));
    }
    let (mut lo, mut lo_size) = (floor, bottom.len() as f64);
    let (mut hi, mut hi_size) = (ceiling, top.len() as f64);
    let mut best = bottom;
    let mut encodes = 2;
    while encodes < MAX_BUDGET_ENCODES && hi - lo > 1 {
        let t = ((max as f64).ln() - lo_size.ln()) / (hi_size.ln() - lo_size.ln());
        let t = if t.is_finite() { t } else { 0.5 };
        let guess = f64::from(lo) + t.clamp(0.0, 1.0) * f64::from(hi - lo);
        let q = (guess.floor() as u8).clamp(lo + 1, hi - 1);
        let attempt = encode(q).map_err(BudgetError::Encoder)?;
        encodes += 1;
        if fits(&attempt) {
            (lo, lo_size) = (q, attempt.len() as f64);
            best = attempt;
        } else {
            (hi, hi_size) = (q, attempt.len() as f64);
        }
    }
    tracing::debug!(quality = lo, encodes, "byte budget met");
    Ok((best, lo))
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
                        chroma_subsampling: None,
                        jpeg: None,
                        max_bytes: None,
                        min_quality: None,
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

    /// A size model like a real encoder's: growing with quality, steeply
    /// near the top, not quite smooth.
    fn model(q: u8) -> usize {
        let q = f64::from(q);
        (2000.0 * (q / 18.0).exp() + 37.0 * (q * 1.7).sin().abs()) as usize
    }

    #[test]
    fn a_byte_budget_finds_the_best_fitting_quality_in_six_encodes() {
        let mut worst_gap = 0;
        for max in (2_500..=500_000u64).step_by(1_499) {
            let mut calls = 0;
            let got = fit_budget(max, 10, 85, |q| {
                calls += 1;
                Ok(vec![0; model(q)])
            });
            assert!(calls <= MAX_BUDGET_ENCODES, "{max}: {calls} encodes");
            let best = (10..=85u8).rev().find(|&q| model(q) as u64 <= max);
            match (got, best) {
                (Ok((bytes, q)), Some(best)) => {
                    assert!(bytes.len() as u64 <= max, "{max}");
                    assert_eq!(bytes.len(), model(q));
                    assert!(q <= best);
                    worst_gap = worst_gap.max(best - q);
                }
                (Err(BudgetError::TooLarge(10, size)), None) => assert_eq!(size, model(10)),
                (other, best) => panic!("{max}: {other:?}, best {best:?}"),
            }
        }
        // The search lands within two quality steps of the best.
        assert!(worst_gap <= 2, "{worst_gap}");
    }

    #[test]
    fn a_budget_met_at_the_ceiling_takes_one_encode() {
        let mut calls = 0;
        let (_, q) = fit_budget(u64::MAX, 10, 85, |q| {
            calls += 1;
            Ok(vec![0; model(q)])
        })
        .unwrap();
        assert_eq!((q, calls), (85, 1));
    }
}
