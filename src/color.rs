//! Colour management: every decoded image is brought into the job's colour
//! space before the ops run, so that the CPU and GPU backends see the same
//! pixels and every version's embedded profile describes its pixels.
//!
//! A source's colours are described by its ICC profile (JPEG, PNG, WebP,
//! TIFF, HEIF, JPEG XL) or, in HEIF and AVIF, by CICP code points (`nclx`),
//! which [`crate::codec::heif`] turns into an equivalent ICC profile. A
//! source without either is sRGB, as browsers and the CSS specification
//! read untagged images. The conversion is moxcms' 8-bit transform with the
//! perceptual rendering intent (matrix-shaper profiles, the kind cameras,
//! phones and editors embed, have no perceptual tables: for them it is the
//! relative colorimetric mapping, without black point compensation, as
//! lcms2's `tificc` and libvips do it). Alpha is not touched.
//!
//! A profile that moves no colour of a 9-step RGB grid by more than one
//! level on its way to the target (an sRGB profile embedded by a camera or
//! an editor, say) is taken to be the target space itself, and the pixels
//! are left alone. A profile that cannot be used (malformed, or not an RGB
//! profile: CMYK and grey JPEGs are decoded to RGB without it) is ignored,
//! and the pixels are read as sRGB; the version's record says so.

use std::sync::OnceLock;

use image::RgbaImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, RenderingIntent, TransformOptions};
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The colour space a job's ops run in and its versions are written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColorSpace {
    /// sRGB: a source with a profile is converted; versions carry no
    /// profile (an untagged image is sRGB).
    #[default]
    Srgb,
    /// Display P3 (the iPhone's and most wide-gamut displays' space): a
    /// source is converted (an untagged one from sRGB); versions carry a
    /// Display P3 profile.
    DisplayP3,
    /// The source's own space: no conversion; versions carry the source's
    /// profile (for a HEIF or AVIF described by CICP code points, an ICC
    /// profile made from them), or none when the source has none.
    Source,
}

/// What a source said about its colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceProfile {
    /// No profile: read as sRGB.
    None,
    /// An ICC profile (or CICP code points, turned into one).
    Icc,
    /// A profile that could not be used (malformed, or not RGB): ignored,
    /// the pixels read as sRGB.
    Unusable,
}

/// How a version's colours were handled, recorded in its manifest and in
/// the job's result so that a re-edit can reproduce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColorHandling {
    /// The colour space asked for (the job's `color`).
    pub space: ColorSpace,
    /// What the source's profile was.
    pub source_profile: SourceProfile,
    /// Whether the pixels were converted (`false` when the source was
    /// already in the space, had no usable profile with `srgb` asked for, or
    /// `source` was asked for). Conversions use the perceptual intent.
    pub converted: bool,
}

/// A decoded image brought into a colour space.
#[derive(Debug)]
pub(crate) struct Managed {
    /// How it was done.
    pub handling: ColorHandling,
    /// The ICC profile the versions carry (`None`: untagged sRGB).
    pub profile: Option<Vec<u8>>,
}

/// The Display P3 profile written into versions (made once).
fn display_p3_icc() -> &'static [u8] {
    static ICC: OnceLock<Vec<u8>> = OnceLock::new();
    ICC.get_or_init(|| {
        ColorProfile::new_display_p3()
            .encode()
            .expect("moxcms encodes its own Display P3 profile")
    })
}

/// Rows converted per task: a 4K frame splits into enough tasks for two to
/// eight cores, each small enough to stay in cache.
const ROWS_PER_TASK: usize = 16;

/// The 8-bit RGBA transform from `from` to `to`, or why there is none.
fn transform(
    from: &ColorProfile,
    to: &ColorProfile,
) -> Result<std::sync::Arc<moxcms::Transform8BitExecutor>, String> {
    if from.color_space != DataColorSpace::Rgb {
        return Err(format!("a {:?} profile on RGB pixels", from.color_space));
    }
    let options = TransformOptions {
        rendering_intent: RenderingIntent::Perceptual,
        ..TransformOptions::default()
    };
    from.create_transform_8bit(Layout::Rgba, to, Layout::Rgba, options)
        .map_err(|e| e.to_string())
}

/// Whether a transform leaves every colour of a 9-step grid within one
/// level of where it was.
fn is_near_identity(t: &moxcms::Transform8BitExecutor) -> bool {
    let steps = (0..=8u32).map(|i| (i * 255 / 8) as u8);
    let src: Vec<u8> = steps
        .clone()
        .flat_map(|r| {
            let steps = steps.clone();
            steps.flat_map(move |g| (0..=8u32).map(move |b| [r, g, (b * 255 / 8) as u8, 255]))
        })
        .flatten()
        .collect();
    let mut dst = vec![0u8; src.len()];
    if t.transform(&src, &mut dst).is_err() {
        return false;
    }
    src.iter().zip(&dst).all(|(&a, &b)| a.abs_diff(b) <= 1)
}

/// Convert an image in place, rows in parallel.
fn apply(img: &mut RgbaImage, t: &moxcms::Transform8BitExecutor) -> Result<(), String> {
    let row = img.width() as usize * 4;
    img.par_chunks_mut(row * ROWS_PER_TASK).try_for_each_init(
        || Vec::with_capacity(row * ROWS_PER_TASK),
        |scratch, rows| {
            scratch.clear();
            scratch.extend_from_slice(rows);
            t.transform(scratch, rows).map_err(|e| e.to_string())
        },
    )
}

/// Bring a decoded image with the embedded profile `icc` into `space`.
/// A profile that cannot be used, or that moxcms panics on while reading it
/// or building its transform, is ignored (logged without content, recorded
/// as [`SourceProfile::Unusable`]) and the pixels are left as decoded. Only
/// a panic while converting the pixels, with a transform already built, is
/// an error (`decode_failed`): the pixels are then half converted.
pub(crate) fn manage(
    img: &mut RgbaImage,
    icc: Option<&[u8]>,
    space: ColorSpace,
) -> Result<Managed, crate::error::JobError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        manage_unguarded(img, icc, space)
    }))
    .map_err(|_| {
        crate::error::JobError::decode_failed(
            "colour conversion failed on the source's ICC profile",
        )
    })
}

/// Read a profile and build its transform, a panic counting as failure.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("moxcms panicked on the profile".into()))
}

fn manage_unguarded(img: &mut RgbaImage, icc: Option<&[u8]>, space: ColorSpace) -> Managed {
    let parsed =
        icc.map(|b| guarded(|| ColorProfile::new_from_slice(b).map_err(|e| e.to_string())));
    let source_profile = match &parsed {
        None => SourceProfile::None,
        Some(Ok(p)) if p.color_space == DataColorSpace::Rgb => SourceProfile::Icc,
        Some(_) => SourceProfile::Unusable,
    };
    let handling = |converted| ColorHandling {
        space,
        source_profile,
        converted,
    };
    // The source's profile, where it describes RGB pixels: a grey, CMYK or
    // malformed one is never written into a version.
    let usable_icc = || {
        icc.filter(|_| source_profile == SourceProfile::Icc)
            .map(<[u8]>::to_vec)
    };
    let target = match space {
        // Only a usable profile is written: a grey, CMYK or malformed one
        // would not describe RGB versions.
        ColorSpace::Source => {
            return Managed {
                handling: handling(false),
                profile: usable_icc(),
            }
        }
        ColorSpace::Srgb => ColorProfile::new_srgb(),
        ColorSpace::DisplayP3 => ColorProfile::new_display_p3(),
    };
    let profile = (space == ColorSpace::DisplayP3).then(|| display_p3_icc().to_vec());
    let from = match parsed {
        Some(Ok(p)) if source_profile == SourceProfile::Icc => p,
        Some(Ok(p)) => {
            tracing::warn!(profile_space = ?p.color_space, "the source's ICC profile is not RGB; reading its pixels as sRGB");
            ColorProfile::new_srgb()
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the source's ICC profile cannot be read; reading its pixels as sRGB");
            ColorProfile::new_srgb()
        }
        None => ColorProfile::new_srgb(),
    };
    if source_profile != SourceProfile::Icc && space == ColorSpace::Srgb {
        return Managed {
            handling: handling(false),
            profile,
        };
    }
    let built = guarded(|| {
        let t = transform(&from, &target)?;
        let same = is_near_identity(t.as_ref());
        Ok((t, same))
    });
    let converted = match built {
        Ok((_, true)) => false,
        Ok((t, false)) => match apply(img, t.as_ref()) {
            Ok(()) => true,
            Err(e) => {
                // Nothing converted: the versions keep the source's profile.
                tracing::warn!(error = %e, "colour conversion failed; pixels left as decoded");
                return Managed {
                    handling: handling(false),
                    profile: usable_icc(),
                };
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "no colour transform for the source's profile; reading its pixels as sRGB");
            return Managed {
                handling: ColorHandling {
                    space,
                    source_profile: SourceProfile::Unusable,
                    converted: false,
                },
                profile,
            };
        }
    };
    Managed {
        handling: handling(converted),
        profile,
    }
}

/// Whether a CICP transfer characteristic is HDR: PQ (SMPTE ST 2084, 16)
/// or HLG (ARIB STD-B67, 18).
pub(crate) fn is_hdr_transfer(transfer: u8) -> bool {
    matches!(transfer, 16 | 18)
}

/// An ICC profile equivalent to CICP code points (HEIF/AVIF `nclx`), or
/// `None` for sRGB's own (BT.709 primaries with the sRGB or an unspecified
/// transfer) and for code points moxcms cannot model.
pub(crate) fn icc_from_cicp(primaries: u8, transfer: u8) -> Option<Vec<u8>> {
    use moxcms::{CicpColorPrimaries, CicpProfile, MatrixCoefficients, TransferCharacteristics};
    let srgb_primaries = matches!(primaries, 1 | 2);
    let srgb_transfer = matches!(transfer, 2 | 13);
    if srgb_primaries && srgb_transfer {
        return None;
    }
    let primaries = match CicpColorPrimaries::try_from(primaries).ok()? {
        CicpColorPrimaries::Unspecified => CicpColorPrimaries::Bt709,
        p => p,
    };
    let transfer = match TransferCharacteristics::try_from(transfer).ok()? {
        TransferCharacteristics::Unspecified => TransferCharacteristics::Srgb,
        t => t,
    };
    let profile = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries: primaries,
        transfer_characteristics: transfer,
        matrix_coefficients: MatrixCoefficients::Identity,
        full_range: true,
    });
    profile.encode().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo_like(w: u32, h: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
                200,
            ])
        })
    }

    #[test]
    fn untagged_srgb_is_left_alone() {
        let mut img = photo_like(40, 40);
        let before = img.clone();
        let m = manage(&mut img, None, ColorSpace::Srgb).unwrap();
        assert_eq!(img, before);
        assert_eq!(m.profile, None);
        assert_eq!(m.handling.source_profile, SourceProfile::None);
        assert!(!m.handling.converted);
    }

    #[test]
    fn an_embedded_srgb_profile_is_not_a_conversion() {
        let mut img = photo_like(40, 40);
        let before = img.clone();
        let icc = ColorProfile::new_srgb().encode().unwrap();
        let m = manage(&mut img, Some(&icc), ColorSpace::Srgb).unwrap();
        assert_eq!(img, before);
        assert!(!m.handling.converted);
        assert_eq!(m.handling.source_profile, SourceProfile::Icc);
    }

    #[test]
    fn display_p3_is_converted_with_alpha_untouched() {
        let mut img = photo_like(64, 48);
        let before = img.clone();
        let icc = ColorProfile::new_display_p3().encode().unwrap();
        let m = manage(&mut img, Some(&icc), ColorSpace::Srgb).unwrap();
        assert!(m.handling.converted);
        assert_eq!(m.profile, None);
        assert!(img.pixels().zip(before.pixels()).all(|(a, b)| a[3] == b[3]));
        // P3's pure red lies outside sRGB: it stays red, clipped.
        let mut red = RgbaImage::from_pixel(1, 1, image::Rgba([255, 0, 0, 255]));
        manage(&mut red, Some(&icc), ColorSpace::Srgb).unwrap();
        assert_eq!(red.get_pixel(0, 0).0[0], 255);
        // A mid grey stays grey (same white point and transfer).
        let mut grey = RgbaImage::from_pixel(1, 1, image::Rgba([128, 128, 128, 255]));
        manage(&mut grey, Some(&icc), ColorSpace::Srgb).unwrap();
        let g = grey.get_pixel(0, 0).0;
        assert!(g[..3].iter().all(|&v| v.abs_diff(128) <= 1), "{g:?}");
    }

    #[test]
    fn source_space_keeps_pixels_and_profile() {
        let mut img = photo_like(16, 16);
        let before = img.clone();
        let icc = ColorProfile::new_adobe_rgb().encode().unwrap();
        let m = manage(&mut img, Some(&icc), ColorSpace::Source).unwrap();
        assert_eq!(img, before);
        assert_eq!(m.profile.as_deref(), Some(&icc[..]));
        assert!(!m.handling.converted);
    }

    #[test]
    fn display_p3_output_carries_its_profile() {
        let mut img = photo_like(16, 16);
        let m = manage(&mut img, None, ColorSpace::DisplayP3).unwrap();
        assert!(m.handling.converted);
        let written = ColorProfile::new_from_slice(m.profile.as_deref().unwrap()).unwrap();
        // Converting back with the written profile restores the sRGB input
        // within a few levels (two 8-bit quantisations, fixed-point maths).
        let back = transform(&written, &ColorProfile::new_srgb()).unwrap();
        let mut again = img.clone();
        apply(&mut again, back.as_ref()).unwrap();
        let orig = photo_like(16, 16);
        let worst = again
            .as_raw()
            .iter()
            .zip(orig.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 4, "{worst}");
    }

    #[test]
    fn unusable_profiles_are_ignored() {
        let mut img = photo_like(16, 16);
        let before = img.clone();
        let m = manage(&mut img, Some(b"not a profile"), ColorSpace::Srgb).unwrap();
        assert_eq!(img, before);
        assert_eq!(m.handling.source_profile, SourceProfile::Unusable);
        let gray = ColorProfile::new_gray_with_gamma(2.2).encode().unwrap();
        let m = manage(&mut img, Some(&gray), ColorSpace::Srgb).unwrap();
        assert_eq!(img, before);
        assert_eq!(m.handling.source_profile, SourceProfile::Unusable);
    }

    #[test]
    fn pq_and_hlg_are_hdr() {
        assert!(is_hdr_transfer(16) && is_hdr_transfer(18));
        assert!((0..=255u8).filter(|&t| is_hdr_transfer(t)).count() == 2);
    }

    #[test]
    fn cicp_srgb_needs_no_profile_and_p3_gets_one() {
        assert_eq!(icc_from_cicp(1, 13), None);
        assert_eq!(icc_from_cicp(2, 2), None);
        let p3 = icc_from_cicp(12, 13).expect("a P3 profile");
        let mut red = RgbaImage::from_pixel(1, 1, image::Rgba([200, 30, 30, 255]));
        let mut via_p3 = red.clone();
        manage(&mut via_p3, Some(&p3), ColorSpace::Srgb).unwrap();
        let icc = ColorProfile::new_display_p3().encode().unwrap();
        manage(&mut red, Some(&icc), ColorSpace::Srgb).unwrap();
        let (a, b) = (red.get_pixel(0, 0).0, via_p3.get_pixel(0, 0).0);
        assert!(
            a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 1),
            "{a:?} {b:?}"
        );
    }
}
