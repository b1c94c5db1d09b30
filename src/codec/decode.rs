//! Decode JPEG (libjpeg-turbo), PNG, WebP, GIF (first frame), TIFF, HEIC
//! and AVIF (libheif, [`super::heif`]), and JPEG XL (jxl-oxide, first frame,
//! [`super::jxl`]) into RGBA8.
//!
//! A source is opened in two steps so that the whole job can be planned
//! before any pixel buffer exists: [`SourceImage::open`] sniffs the format,
//! reads the header (dimensions, EXIF orientation, ICC profile) and checks the
//! limits; [`SourceImage::decode`] then decodes with an allocation cap. Panics
//! inside decoders are caught and reported as `decode_failed`.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbaImage};

use crate::config::Limits;
use crate::error::JobError;
use crate::ops::Dims;

/// Formats this worker decodes through the `image` crate.
const DECODABLE: &[ImageFormat] = &[
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Gif,
    ImageFormat::Tiff,
];

/// A source's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// GIF (the first frame).
    Gif,
    /// TIFF.
    Tiff,
    /// HEIF with HEVC (HEIC).
    Heic,
    /// HEIF with AV1 (AVIF).
    Avif,
    /// JPEG XL (the first frame).
    Jxl,
}

impl SourceFormat {
    /// The format's usual file extension.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Gif => "gif",
            Self::Tiff => "tiff",
            Self::Heic => "heic",
            Self::Avif => "avif",
            Self::Jxl => "jxl",
        }
    }

    fn of(format: ImageFormat) -> Option<Self> {
        Some(match format {
            ImageFormat::Jpeg => Self::Jpeg,
            ImageFormat::Png => Self::Png,
            ImageFormat::WebP => Self::Webp,
            ImageFormat::Gif => Self::Gif,
            ImageFormat::Tiff => Self::Tiff,
            _ => return None,
        })
    }
}

/// What the header says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Probe {
    /// Container format.
    pub format: SourceFormat,
    /// Stored dimensions (before orientation; HEIF's own transforms and a
    /// JPEG XL codestream's orientation are applied in decoding, so they
    /// count as stored).
    pub dims: Dims,
    /// EXIF orientation, 1..=8 (1 for HEIF and JPEG XL, see [`super::heif`]
    /// and [`super::jxl`]).
    pub orientation: u8,
    /// Whether the pixels have an alpha channel.
    pub(crate) has_alpha: bool,
}

/// A decoded image and its colour profile.
#[derive(Debug)]
pub struct Decoded {
    /// Pixels.
    pub img: RgbaImage,
    /// Embedded ICC profile, kept on outputs that can carry it.
    pub icc: Option<Vec<u8>>,
}

/// A source whose header has been read and checked.
pub struct SourceImage<'a> {
    /// Header facts.
    pub(crate) probe: Probe,
    bytes: &'a [u8],
    /// The `image` crate's decoder; `None` for HEIF and JPEG XL, which
    /// libheif and jxl-oxide decode from the bytes.
    decoder: Option<Box<dyn ImageDecoder + 'a>>,
    /// The limits, for the decoders that take them when decoding (JPEG XL).
    limits: Limits,
    icc: Option<Vec<u8>>,
}

impl std::fmt::Debug for SourceImage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceImage")
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

fn format_name(f: ImageFormat) -> &'static str {
    f.extensions_str().first().copied().unwrap_or("image")
}

/// Whether a JPEG reaches its end-of-image marker. Entropy-coded data never
/// holds `FF D9` (a data `FF` is stuffed as `FF 00`), so a complete file has
/// one after its first start-of-scan; decoders fill a truncated file with grey
/// instead of failing, so this is checked up front. The search runs from the
/// end, where a complete file's marker is, rather than through megabytes of
/// scan data.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return false;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xDA {
            return b[i..].windows(2).rev().any(|w| w == [0xFF, 0xD9]);
        }
        i += 2 + usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
    }
    false
}

/// Map a decoder error to the contract's codes.
fn map_err(format: &str, e: ImageError) -> JobError {
    match e {
        ImageError::Limits(l) => {
            JobError::limit_exceeded(format!("decoding would exceed a limit: {l}"))
        }
        ImageError::Unsupported(u) => {
            JobError::unsupported_format(format!("unsupported {format} variant: {u}"))
        }
        other => JobError::decode_failed(format!("source is not a valid {format}: {other}")),
    }
}

fn panic_error(what: &str) -> JobError {
    JobError::decode_failed(format!("the decoder failed on this source ({what})"))
}

impl<'a> SourceImage<'a> {
    /// Sniff the format, read the header and check it against the limits.
    pub fn open(bytes: &'a [u8], lim: &Limits) -> Result<Self, JobError> {
        if bytes.is_empty() {
            return Err(JobError::decode_failed("source is empty"));
        }
        if bytes.len() as u64 > lim.max_source_bytes {
            return Err(JobError::limit_exceeded(format!(
                "source is {} bytes, at most {} allowed",
                bytes.len(),
                lim.max_source_bytes
            )));
        }
        if let Some(brand) = super::heif::sniff(bytes) {
            let header = catch_unwind(AssertUnwindSafe(|| super::heif::header(bytes)))
                .map_err(|_| panic_error("header"))??;
            if !(8..=16).contains(&header.bits) {
                return Err(JobError::unsupported_format(format!(
                    "HEIF/AVIF with {} bits per sample",
                    header.bits
                )));
            }
            let format = match brand {
                super::heif::Brand::Heic => SourceFormat::Heic,
                super::heif::Brand::Avif => SourceFormat::Avif,
            };
            let probe = Probe {
                format,
                dims: Dims::new(header.width, header.height),
                orientation: 1,
                has_alpha: header.has_alpha,
            };
            check_size(probe.dims, lim)?;
            return Ok(Self {
                probe,
                bytes,
                decoder: None,
                limits: lim.clone(),
                icc: header.icc,
            });
        }
        if super::jxl::sniff(bytes) {
            let header = catch_unwind(AssertUnwindSafe(|| super::jxl::header(bytes, lim)))
                .map_err(|_| panic_error("header"))??;
            // The displayed size: jxl-oxide applies the codestream's
            // orientation while rendering, so the probe's orientation is 1.
            let probe = Probe {
                format: SourceFormat::Jxl,
                dims: Dims::new(header.width, header.height),
                orientation: 1,
                has_alpha: header.has_alpha,
            };
            check_size(probe.dims, lim)?;
            if header.cmyk {
                return Err(JobError::unsupported_format(
                    "CMYK JPEG XL (a black channel) is not supported",
                ));
            }
            if header.colour.hdr {
                return Err(JobError::unsupported_format(
                    "HDR JPEG XL (PQ or HLG transfer) is not supported: 8-bit versions cannot hold it",
                ));
            }
            return Ok(Self {
                probe,
                bytes,
                decoder: None,
                limits: lim.clone(),
                icc: Some(header.colour.icc),
            });
        }
        let format = image::guess_format(bytes)
            .ok()
            .filter(|f| DECODABLE.contains(f))
            .ok_or_else(|| {
                JobError::unsupported_format(
                    "source is not JPEG, PNG, WebP, GIF, TIFF, HEIC, AVIF or JPEG XL",
                )
            })?;
        if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
            return Err(JobError::decode_failed(
                "source is not a valid JPEG: truncated (no end-of-image marker)",
            ));
        }
        let mut il = image::Limits::default();
        il.max_image_width = Some(lim.max_side);
        il.max_image_height = Some(lim.max_side);
        il.max_alloc = Some(lim.max_decode_alloc());
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<_, JobError> {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
            reader.limits(il);
            let mut decoder = reader
                .into_decoder()
                .map_err(|e| map_err(format_name(format), e))?;
            let (w, h) = decoder.dimensions();
            let orientation = decoder.orientation().map(|o| o.to_exif()).unwrap_or(1);
            let icc = decoder.icc_profile().ok().flatten();
            let has_alpha = decoder.color_type().has_alpha();
            Ok((
                Box::new(decoder) as Box<dyn ImageDecoder + 'a>,
                Dims::new(w, h),
                orientation,
                icc,
                has_alpha,
            ))
        }))
        .map_err(|_| panic_error("header"))??;
        let (decoder, dims, orientation, icc, has_alpha) = opened;
        check_size(dims, lim)?;
        Ok(Self {
            probe: Probe {
                format: SourceFormat::of(format).expect("a decodable format"),
                dims,
                orientation,
                has_alpha,
            },
            bytes,
            decoder: Some(decoder),
            limits: lim.clone(),
            icc,
        })
    }

    /// The source's raw EXIF block (TIFF structure), for outputs that keep
    /// it. Never logged.
    pub fn exif(&mut self) -> Option<Vec<u8>> {
        let bytes = self.bytes;
        let jxl = self.probe.format == SourceFormat::Jxl;
        catch_unwind(AssertUnwindSafe(|| match &mut self.decoder {
            Some(decoder) => decoder.exif_metadata().ok().flatten(),
            None if jxl => super::jxl::exif(bytes),
            None => super::heif::exif(bytes),
        }))
        .ok()
        .flatten()
    }

    /// Decode the pixels into RGBA8.
    pub fn decode(self) -> Result<Decoded, JobError> {
        self.decode_shrunk(1).map(|(d, _)| d)
    }

    /// Decode the pixels into RGBA8, at 1/`shrink` of the stored size where
    /// the format allows (JPEG, `shrink` 2, 4 or 8, in the DCT domain; see
    /// [`jpeg::load_shrink`](super::jpeg::load_shrink)). Returns the image and
    /// the shrink actually used: 1 for other formats and for JPEGs that
    /// libjpeg-turbo does not decode to RGB (CMYK).
    ///
    /// JPEGs are decoded by libjpeg-turbo; one it refuses (a warning on
    /// corrupt data counts) is decoded again, at full size, by the `image`
    /// crate's decoder, which then decides: a file either decoder accepts
    /// is accepted, as before libjpeg-turbo was used.
    pub(crate) fn decode_shrunk(self, shrink: u32) -> Result<(Decoded, u32), JobError> {
        let format = self.probe.format;
        let shrink = if matches!(shrink, 2 | 4 | 8) {
            shrink
        } else {
            1
        };
        if format == SourceFormat::Jxl {
            let (bytes, lim) = (self.bytes, &self.limits);
            let (img, icc) = catch_unwind(AssertUnwindSafe(|| super::jxl::decode(bytes, lim)))
                .map_err(|_| panic_error("pixels"))??;
            return Ok((Decoded { img, icc }, 1));
        }
        let Some(decoder) = self.decoder else {
            let bytes = self.bytes;
            let img = catch_unwind(AssertUnwindSafe(|| super::heif::decode(bytes)))
                .map_err(|_| panic_error("pixels"))??;
            return Ok((Decoded { img, icc: self.icc }, 1));
        };
        if format == SourceFormat::Jpeg {
            let turbo = catch_unwind(AssertUnwindSafe(|| super::jpeg::decode(self.bytes, shrink)));
            match turbo {
                Ok(Ok(Some(img))) => return Ok((Decoded { img, icc: self.icc }, shrink)),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "libjpeg-turbo refused the source; trying the image crate's decoder");
                }
                Err(_) => {
                    tracing::debug!("libjpeg-turbo panicked; trying the image crate's decoder")
                }
            }
        }
        let img = catch_unwind(AssertUnwindSafe(move || {
            DynamicImage::from_decoder(decoder)
        }))
        .map_err(|_| panic_error("pixels"))?
        .map_err(|e| map_err(format.name(), e))?;
        let img = to_rgba8(img);
        Ok((Decoded { img, icc: self.icc }, 1))
    }
}

/// Refuse a source with no pixels or more than the limits allow.
fn check_size(dims: Dims, lim: &Limits) -> Result<(), JobError> {
    if dims.width == 0 || dims.height == 0 {
        return Err(JobError::decode_failed("source has no pixels"));
    }
    if dims.pixels() > lim.max_source_pixels
        || dims.width > lim.max_side
        || dims.height > lim.max_side
    {
        return Err(JobError::limit_exceeded(format!(
            "source is {}x{}, at most {} pixels allowed",
            dims.width, dims.height, lim.max_source_pixels
        )));
    }
    Ok(())
}

/// A decoded image as RGBA8. 8-bit grey and RGB (most PNGs, the masks and
/// patches of an editor) are widened here directly: the `image` crate's
/// general conversion goes through its colour-space machinery per pixel,
/// several times slower, for the same bytes (`widening_matches_the_image_crate`).
fn to_rgba8(img: DynamicImage) -> image::RgbaImage {
    let (w, h) = (img.width(), img.height());
    let widen = |data: Vec<u8>| image::RgbaImage::from_raw(w, h, data).expect("4 bytes a pixel");
    match img {
        DynamicImage::ImageRgba8(i) => i,
        DynamicImage::ImageRgb8(i) => widen(
            i.as_raw()
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
        ),
        DynamicImage::ImageLuma8(i) => {
            widen(i.as_raw().iter().flat_map(|&v| [v, v, v, 255]).collect())
        }
        DynamicImage::ImageLumaA8(i) => widen(
            i.as_raw()
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
        ),
        other => other.into_rgba8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_matches_the_image_crate() {
        let grey = image::GrayImage::from_fn(37, 5, |x, y| image::Luma([(x * 7 + y * 50) as u8]));
        let grey_alpha = image::GrayAlphaImage::from_fn(37, 5, |x, y| {
            image::LumaA([(x * 7) as u8, (y * 60 + x) as u8])
        });
        let rgb = image::RgbImage::from_fn(37, 5, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 51) as u8, (x * y) as u8])
        });
        for img in [
            DynamicImage::ImageLuma8(grey),
            DynamicImage::ImageLumaA8(grey_alpha),
            DynamicImage::ImageRgb8(rgb),
        ] {
            assert_eq!(to_rgba8(img.clone()), img.into_rgba8());
        }
    }
}
