//! HEIC/HEIF and AVIF sources through libheif (Debian's `libheif1`, which
//! decodes HEVC with libde265 and AV1 with dav1d): iPhone photos, and the
//! AVIF versions imgworker writes itself.
//!
//! The container is parsed first ([`header`]) without decoding any pixels:
//! the size libheif reports is the displayed one, after the file's own
//! rotation, mirroring and crop (`irot`, `imir`, `clap`), which libheif
//! applies while decoding. A HEIF's EXIF orientation tag repeats that
//! transform (iPhones write both), so it is not applied again: the probe
//! reports orientation 1, and the EXIF block handed on has the tag reset
//! to 1. Sources of 10 or 12 bits are decoded at their depth and rounded to
//! 8 bits here (libheif's own reduction truncates).

use image::RgbaImage;
use libheif_rs::{ColorSpace, HeifContext, ItemId, LibHeif, RgbChroma};

use crate::error::JobError;

/// Which HEIF brand a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Brand {
    /// HEVC-coded (HEIC, iPhone photos).
    Heic,
    /// AV1-coded (AVIF).
    Avif,
}

/// The brand of an ISO-BMFF file whose major or compatible brands name a
/// HEIF image; `None` for anything else.
pub(crate) fn sniff(bytes: &[u8]) -> Option<Brand> {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes[0..4].try_into().ok()?) as usize;
    let brands = bytes.get(8..size.min(bytes.len()))?;
    // The major brand, then (after the minor version) the compatible ones.
    let names = std::iter::once(&brands[..4]).chain(brands.get(8..)?.chunks_exact(4));
    let mut found = None;
    for name in names {
        match name {
            b"avif" | b"avis" => return Some(Brand::Avif),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => found = Some(Brand::Heic),
            _ => {}
        }
    }
    found
}

/// What the container says before any pixel is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// Displayed width (after `irot`/`imir`/`clap`).
    pub width: u32,
    /// Displayed height.
    pub height: u32,
    /// Whether the image has an alpha plane.
    pub has_alpha: bool,
    /// Bits per luma sample (8, 10 or 12).
    pub bits: u8,
    /// The embedded ICC profile (`colr` of type `prof` or `rICC`), or one
    /// made from the `colr` box's CICP code points (`nclx`).
    pub icc: Option<Vec<u8>>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> JobError {
    JobError::decode_failed(format!("source is not a valid HEIF/AVIF ({what}): {e}"))
}

/// The primary image's header.
pub(crate) fn header(bytes: &[u8]) -> Result<Header, JobError> {
    let ctx = HeifContext::read_from_bytes(bytes).map_err(|e| failed("container", e))?;
    let h = ctx
        .primary_image_handle()
        .map_err(|e| failed("primary image", e))?;
    // An ICC profile, or else CICP code points turned into one (no profile
    // for sRGB's own code points).
    let icc = h
        .color_profile_raw()
        .filter(|p| !p.data.is_empty())
        .map(|p| p.data)
        .or_else(|| {
            let nclx = h.color_profile_nclx()?;
            crate::color::icc_from_cicp(
                nclx.color_primaries() as u8,
                nclx.transfer_characteristics() as u8,
            )
        });
    // PQ (16) and HLG (18): HDR, which 8-bit versions cannot hold.
    if let Some(nclx) = h.color_profile_nclx() {
        if crate::color::is_hdr_transfer(nclx.transfer_characteristics() as u8) {
            return Err(JobError::unsupported_format(
                "HDR HEIF/AVIF (PQ or HLG transfer) is not supported: 8-bit versions cannot hold it",
            ));
        }
    }
    Ok(Header {
        width: h.width(),
        height: h.height(),
        has_alpha: h.has_alpha_channel(),
        bits: h.luma_bits_per_pixel(),
        icc,
    })
}

/// The primary image's EXIF block (the TIFF structure), its orientation
/// tag reset to 1: the pixels are decoded upright already.
pub(crate) fn exif(bytes: &[u8]) -> Option<Vec<u8>> {
    let ctx = HeifContext::read_from_bytes(bytes).ok()?;
    let h = ctx.primary_image_handle().ok()?;
    let mut ids: [ItemId; 1] = [0];
    if h.metadata_block_ids(&mut ids, b"Exif") == 0 {
        return None;
    }
    let block = h.metadata(ids[0]).ok()?;
    // A 4-byte big-endian offset from its end to the TIFF header.
    let offset = u32::from_be_bytes(block.get(..4)?.try_into().ok()?) as usize;
    let mut tiff = block.get(4usize.checked_add(offset)?..)?.to_vec();
    let _ = image::metadata::Orientation::remove_from_exif_chunk(&mut tiff);
    Some(tiff)
}

/// Decode the primary image, upright, into RGBA8.
pub(crate) fn decode(bytes: &[u8]) -> Result<RgbaImage, JobError> {
    let lib = LibHeif::new();
    let ctx = HeifContext::read_from_bytes(bytes).map_err(|e| failed("container", e))?;
    let h = ctx
        .primary_image_handle()
        .map_err(|e| failed("primary image", e))?;
    let deep = h.luma_bits_per_pixel() > 8;
    let chroma = if deep {
        RgbChroma::HdrRgbaLe
    } else {
        RgbChroma::Rgba
    };
    let img = lib
        .decode(&h, ColorSpace::Rgb(chroma), None)
        .map_err(|e| failed("pixels", e))?;
    let planes = img.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| failed("pixels", "no interleaved plane"))?;
    let (w, h) = (plane.width, plane.height);
    let row = w as usize * if deep { 8 } else { 4 };
    if plane.stride < row || plane.data.len() < plane.stride * (h as usize - 1) + row {
        return Err(failed("pixels", "plane smaller than its size"));
    }
    let mut out = Vec::with_capacity(w as usize * h as usize * 4);
    for y in 0..h as usize {
        let line = &plane.data[y * plane.stride..y * plane.stride + row];
        if deep {
            let bits = plane.bits_per_pixel.clamp(9, 16);
            out.extend(
                line.chunks_exact(2)
                    .map(|s| to_8bit(u16::from_le_bytes([s[0], s[1]]), bits)),
            );
        } else {
            out.extend_from_slice(line);
        }
    }
    RgbaImage::from_raw(w, h, out).ok_or_else(|| failed("pixels", "wrong plane size"))
}

/// A `bits`-deep sample to 8 bits, rounded to nearest: `v * 255 / max`.
fn to_8bit(v: u16, bits: u8) -> u8 {
    let max = (1u32 << bits) - 1;
    ((u32::from(v).min(max) * 255 + max / 2) / max) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_samples_round_to_nearest() {
        // 10 bits: 1023 levels onto 255; 2 is 0.5 of a level (rounds up),
        // 1 is 0.25 (down); truncation would give 0 for both.
        assert_eq!(to_8bit(0, 10), 0);
        assert_eq!(to_8bit(1023, 10), 255);
        assert_eq!(to_8bit(2, 10), 0);
        assert_eq!(to_8bit(3, 10), 1);
        assert_eq!(to_8bit(4095, 12), 255);
        assert_eq!(to_8bit(2047, 12), 127);
        assert_eq!(to_8bit(2056, 12), 128);
        // Out-of-range samples saturate.
        assert_eq!(to_8bit(u16::MAX, 10), 255);
        for v in 0..1024u16 {
            let exact = f64::from(v) * 255.0 / 1023.0;
            assert!((f64::from(to_8bit(v, 10)) - exact).abs() <= 0.5, "{v}");
        }
    }

    #[test]
    fn brands_are_sniffed_from_the_ftyp_box() {
        let ftyp = |major: &[u8; 4], compatible: &[&[u8; 4]]| {
            let mut b = Vec::new();
            let size = 16 + 4 * compatible.len() as u32;
            b.extend_from_slice(&size.to_be_bytes());
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(major);
            b.extend_from_slice(&[0; 4]);
            for c in compatible {
                b.extend_from_slice(*c);
            }
            b.extend_from_slice(&[0; 8]);
            b
        };
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1"])), Some(Brand::Heic));
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1"])), Some(Brand::Avif));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"heic"])), Some(Brand::Heic));
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"miaf", b"avif"])),
            Some(Brand::Avif)
        );
        assert_eq!(sniff(&ftyp(b"isom", &[b"mp41"])), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n........"), None);
        assert_eq!(sniff(&[0; 8]), None);
    }
}
