//! Masks: any op limited to a region of the image.
//!
//! An op that carries `"mask": {"object": ..., "feather": .., "invert": ..,
//! "fit": ..}` is run as usual, then its result is blended with its input
//! through the mask: where the mask is 255 the op's result is kept, where it
//! is 0 the input is, and in between each channel is interpolated,
//! `out = (in * (255 - m) + result * m + 127) / 255` in integers (straight
//! alpha), so that both backends agree exactly.
//!
//! The mask is an 8-bit object: its alpha channel when it has one (a model's
//! patch with its transparency), else its grey level (BT.601 luma of a
//! colour image). It is read from an object of the same image or from under
//! an allowed prefix, like a `composite`'s source. It is prepared on the host,
//! identically for both backends, in this order:
//! 1. **fit**: a mask of another size than the image at that point of the
//!    chain is `invalid_param`, unless `fit` says how to scale it (`fill`
//!    stretches it, `contain` fits it inside and leaves the rest unmasked,
//!    `cover` fills the image and crops the overflow, centred), with a
//!    bilinear filter;
//! 2. **feather**: a Gaussian of standard deviation `feather` pixels
//!    (clamp-to-edge borders, rounded to whole levels);
//! 3. **invert**: `255 - m`.
//!
//! Only ops that keep the image size may carry a mask.

use std::sync::Arc;

use fast_image_resize::images::{Image as FirImage, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{GrayImage, RgbaImage};
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::blur::gaussian_kernel;
use super::{Dims, Frame, Op, OpContext, Shape};
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep};
use crate::gpu::GpuError;

/// The mask blend's compute shader.
pub const SHADER: &str = include_str!("../../shaders/mask.wgsl");

/// Largest `feather`, in pixels (the largest blur sigma).
pub(crate) const MAX_FEATHER: f64 = super::blur::MAX_SIGMA;

/// How a mask of another size than the image is scaled to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskFit {
    /// Stretch to the image's size.
    Fill,
    /// Keep aspect, fit inside the image, centred; outside it the op has no
    /// effect (mask 0, before `invert`).
    Contain,
    /// Keep aspect, cover the image, centred; the overflow is cropped.
    Cover,
}

/// A mask as a job carries it, on any op that keeps the image size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// An object of the same image (`mask.png`), or `image/object` under an
    /// allowed prefix (the worker's `watermark_prefixes`). Its alpha
    /// channel when it has one, else its grey level.
    #[schemars(
        regex(pattern = crate::keys::object_ref_pattern()),
        length(min = 1, max = super::composite::MAX_SOURCE_LEN),
        extend("not" = crate::keys::foreign_key_refusal())
    )]
    pub object: String,
    /// Gaussian feathering of the mask's edges: its standard deviation in
    /// pixels, `0..=64` (0, the default, is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_FEATHER))]
    pub feather: Option<f64>,
    /// Apply the op where the mask is dark instead. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invert: Option<bool>,
    /// How to scale a mask of another size than the image; without it such
    /// a mask is `invalid_param`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<MaskFit>,
}

/// A validated mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// The `object` string, the key into [`OpContext::masks`].
    pub object: String,
    /// The feathering Gaussian's normalised weights, when feathered.
    pub feather: Option<Vec<f32>>,
    /// Whether the mask is inverted.
    pub invert: bool,
    /// How a mask of another size is scaled.
    pub fit: Option<MaskFit>,
}

impl Mask {
    /// Check every field.
    pub fn validate(p: &MaskSpec) -> Result<Self, ParamError> {
        super::check_object_ref("mask.object", &p.object)?;
        let feather = match p.feather {
            None => None,
            Some(0.0) => None,
            Some(f) => {
                let f = super::check_range("mask.feather", f, 0.0, MAX_FEATHER)?;
                Some(gaussian_kernel(f))
            }
        };
        Ok(Self {
            object: p.object.clone(),
            feather,
            invert: p.invert.unwrap_or(false),
            fit: p.fit,
        })
    }

    /// The mask's 8-bit weights for an image of `dims`, one per pixel in
    /// row order: fitted, feathered and inverted as the module describes.
    pub fn weights(&self, ctx_masks: &MaskImages, dims: Dims) -> Result<Vec<u8>, JobError> {
        let grey = ctx_masks
            .get(&self.object)
            .ok_or_else(|| JobError::internal("mask image was not fetched"))?;
        let mut m = fit(grey, dims, self.fit, &self.object)?;
        if let Some(kernel) = &self.feather {
            feather(&mut m, dims, kernel);
        }
        if self.invert {
            m.iter_mut().for_each(|v| *v = 255 - *v);
        }
        Ok(m)
    }
}

/// Decoded masks by their `object` string.
pub(crate) type MaskImages = std::collections::HashMap<String, Arc<GrayImage>>;

/// The mask's 8-bit plane from a decoded object: its alpha when `has_alpha`,
/// else its BT.601 luma, `(299 r + 587 g + 114 b + 500) / 1000`.
pub(crate) fn mask_plane(img: &RgbaImage, has_alpha: bool) -> GrayImage {
    let data = img
        .as_raw()
        .par_chunks_exact(4)
        .map(|p| {
            if has_alpha {
                p[3]
            } else {
                ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500)
                    / 1000) as u8
            }
        })
        .collect();
    GrayImage::from_raw(img.width(), img.height(), data).expect("one byte per pixel")
}

fn fit(
    grey: &GrayImage,
    dims: Dims,
    fit: Option<MaskFit>,
    object: &str,
) -> Result<Vec<u8>, JobError> {
    let (mw, mh) = (grey.width(), grey.height());
    if (mw, mh) == (dims.width, dims.height) {
        return Ok(grey.as_raw().clone());
    }
    let Some(fit) = fit else {
        return Err(JobError::invalid_param(format!(
            "mask {object} is {mw}x{mh} but the image is {}x{} there; give \"fit\" (fill, contain or cover) to scale it",
            dims.width, dims.height
        )));
    };
    let (fw, fh) = (f64::from(mw), f64::from(mh));
    let (iw, ih) = (f64::from(dims.width), f64::from(dims.height));
    match fit {
        MaskFit::Fill => scale(grey, dims, [0.0, 0.0, fw, fh]),
        MaskFit::Cover => {
            // The largest centred box of the image's aspect inside the mask.
            let s = (iw / fw).max(ih / fh);
            let (bw, bh) = (iw / s, ih / s);
            scale(grey, dims, [(fw - bw) / 2.0, (fh - bh) / 2.0, bw, bh])
        }
        MaskFit::Contain => {
            let s = (iw / fw).min(ih / fh);
            let inner = Dims::new(
                ((fw * s).round() as u32).clamp(1, dims.width),
                ((fh * s).round() as u32).clamp(1, dims.height),
            );
            let scaled = scale(grey, inner, [0.0, 0.0, fw, fh])?;
            let (x0, y0) = (
                ((dims.width - inner.width) / 2) as usize,
                ((dims.height - inner.height) / 2) as usize,
            );
            let mut out = vec![0u8; dims.pixels() as usize];
            let (w, iw) = (dims.width as usize, inner.width as usize);
            for (y, row) in scaled.chunks_exact(iw).enumerate() {
                let at = (y0 + y) * w + x0;
                out[at..at + iw].copy_from_slice(row);
            }
            Ok(out)
        }
    }
}

/// Resample the `src_box` of `grey` to `dst` with a bilinear filter.
fn scale(grey: &GrayImage, dst: Dims, src_box: [f64; 4]) -> Result<Vec<u8>, JobError> {
    let internal = |e: &dyn std::fmt::Display| JobError::internal(format!("mask fit: {e}"));
    let src = ImageRef::new(grey.width(), grey.height(), grey.as_raw(), PixelType::U8)
        .map_err(|e| internal(&e))?;
    let mut out = FirImage::new(dst.width, dst.height, PixelType::U8);
    let [l, t, w, h] = src_box;
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(l, t, w, h);
    Resizer::new()
        .resize(&src, &mut out, &opts)
        .map_err(|e| internal(&e))?;
    Ok(out.into_vec())
}

/// A separable Gaussian on an 8-bit plane, clamp-to-edge, each pass rounded
/// to whole levels.
fn feather(m: &mut [u8], dims: Dims, kernel: &[f32]) {
    let (w, h) = (dims.width as usize, dims.height as usize);
    let r = kernel.len() / 2;
    let tap = |get: &dyn Fn(isize) -> u8, i: usize| -> u8 {
        let sum: f32 = kernel
            .iter()
            .enumerate()
            .map(|(k, wk)| wk * f32::from(get(i as isize + k as isize - r as isize)))
            .sum();
        (sum + 0.5).clamp(0.0, 255.0) as u8
    };
    let mut tmp = vec![0u8; m.len()];
    tmp.par_chunks_exact_mut(w)
        .zip(m.par_chunks_exact(w))
        .for_each(|(out, row)| {
            let get = |x: isize| row[x.clamp(0, w as isize - 1) as usize];
            for (x, o) in out.iter_mut().enumerate() {
                *o = tap(&get, x);
            }
        });
    m.par_chunks_exact_mut(w).enumerate().for_each(|(y, out)| {
        for (x, o) in out.iter_mut().enumerate() {
            let get = |yy: isize| tmp[yy.clamp(0, h as isize - 1) as usize * w + x];
            *o = tap(&get, y);
        }
    });
}

/// Blend `result` with `input` through `weights` (one per pixel), in place
/// in `result`.
pub fn mix(input: &RgbaImage, result: &mut RgbaImage, weights: &[u8]) {
    result
        .as_mut()
        .par_chunks_exact_mut(4)
        .zip(input.as_raw().par_chunks_exact(4))
        .zip(weights.par_iter())
        .for_each(|((r, i), &m)| {
            let m = u32::from(m);
            for c in 0..4 {
                r[c] = ((u32::from(i[c]) * (255 - m) + u32::from(r[c]) * m + 127) / 255) as u8;
            }
        });
}

/// An op limited by a mask.
#[derive(Debug, Clone)]
pub struct Masked {
    /// The op.
    pub op: Op,
    /// Its mask.
    pub mask: Mask,
}

impl Masked {
    /// Wrap an op, refusing one whose size depends on the pixels.
    pub fn new(op: Op, mask: Mask) -> Result<Self, ParamError> {
        // `trim`'s size comes from the pixels; `auto_orient` turns the image
        // and settles its EXIF orientation, which a blend cannot half do.
        if op.size_from_content() || matches!(op, Op::AutoOrient(_)) {
            return Err(ParamError::new(
                "mask",
                format!(
                    "{} may change the image size; a mask applies only to ops that keep it",
                    op.name()
                ),
            ));
        }
        Ok(Self { op, mask })
    }

    /// The op's shape, which must be its input's.
    pub fn plan(&self, input: Shape) -> Result<Shape, ParamError> {
        let out = self.op.plan(input)?;
        if out.dims != input.dims {
            return Err(ParamError::new(
                "mask",
                format!(
                    "{} changes the image size ({}x{} to {}x{}); a mask applies only to ops that keep it",
                    self.op.name(),
                    input.dims.width,
                    input.dims.height,
                    out.dims.width,
                    out.dims.height
                ),
            ));
        }
        Ok(out)
    }

    /// Run the op on the CPU and blend its result with its input.
    pub fn run_cpu(&self, frame: Frame, ctx: &OpContext) -> Result<Frame, JobError> {
        let dims = Dims::new(frame.img.width(), frame.img.height());
        let weights = self.mask.weights(&ctx.masks, dims)?;
        let input = frame.img.clone();
        let mut out = self.op.run_cpu(frame, ctx)?;
        if out.img.dimensions() != input.dimensions() {
            return Err(JobError::internal("a masked op changed the image size"));
        }
        mix(&input, &mut out.img, &weights);
        Ok(out)
    }

    /// Record the op, then the blend with its input (`shaders/mask.wgsl`).
    pub(crate) fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let dims = step.src.dims();
        let weights = self.mask.weights(&step.inputs.masks, dims)?;
        let result = self.op.record_gpu(GpuStep {
            rec: &mut *step.rec,
            src: step.src,
            inputs: step.inputs,
        })?;
        if result.dims() != dims {
            return Err(GpuError::Plan("a masked op changed the image size".into()));
        }
        let plane = step.rec.upload_bytes(&weights)?;
        step.rec.kernel_with(
            "mask_mix",
            step.src,
            dims,
            Aux::Image(&result),
            Some(&plane),
            (),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MaskSpec {
        MaskSpec {
            object: "mask.png".into(),
            feather: None,
            invert: None,
            fit: None,
        }
    }

    #[test]
    fn validation() {
        assert!(Mask::validate(&spec()).is_ok());
        assert!(Mask::validate(&MaskSpec {
            feather: Some(0.0),
            ..spec()
        })
        .unwrap()
        .feather
        .is_none());
        for bad in [
            MaskSpec {
                feather: Some(-1.0),
                ..spec()
            },
            MaskSpec {
                feather: Some(65.0),
                ..spec()
            },
            MaskSpec {
                feather: Some(f64::NAN),
                ..spec()
            },
            MaskSpec {
                object: String::new(),
                ..spec()
            },
        ] {
            assert!(Mask::validate(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mix_ends_and_midpoint() {
        let input = RgbaImage::from_pixel(3, 1, image::Rgba([0, 100, 255, 255]));
        let mut result = RgbaImage::from_pixel(3, 1, image::Rgba([255, 200, 0, 255]));
        mix(&input, &mut result, &[0, 255, 128]);
        assert_eq!(result.get_pixel(0, 0).0, [0, 100, 255, 255]);
        assert_eq!(result.get_pixel(1, 0).0, [255, 200, 0, 255]);
        // (0*127 + 255*128 + 127) / 255 = 128; (100*127 + 200*128 + 127) / 255 = 150.
        assert_eq!(result.get_pixel(2, 0).0, [128, 150, 127, 255]);
    }

    #[test]
    fn fit_modes() {
        let grey = GrayImage::from_pixel(4, 2, image::Luma([200]));
        let dims = Dims::new(8, 8);
        assert!(fit(&grey, dims, None, "m").is_err());
        let fill = fit(&grey, dims, Some(MaskFit::Fill), "m").unwrap();
        assert!(fill.iter().all(|&v| v == 200));
        // Contain: an 8x4 band in the middle rows, zero above and below.
        let contain = fit(&grey, dims, Some(MaskFit::Contain), "m").unwrap();
        for y in 0..8 {
            let row = &contain[y * 8..y * 8 + 8];
            let expect = if (2..6).contains(&y) { 200 } else { 0 };
            assert!(row.iter().all(|&v| v == expect), "row {y}: {row:?}");
        }
        let cover = fit(&grey, dims, Some(MaskFit::Cover), "m").unwrap();
        assert!(cover.iter().all(|&v| v == 200));
    }

    #[test]
    fn feather_keeps_flat_planes_and_softens_edges() {
        let dims = Dims::new(16, 4);
        let mut flat = vec![77u8; 64];
        feather(&mut flat, dims, &gaussian_kernel(2.0));
        assert!(flat.iter().all(|&v| v == 77));
        let mut edge: Vec<u8> = (0..64).map(|i| if i % 16 < 8 { 0 } else { 255 }).collect();
        feather(&mut edge, dims, &gaussian_kernel(2.0));
        let row = &edge[..16];
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
        assert!(row[7] > 0 && row[8] < 255, "{row:?}");
        assert_eq!(row[0], 0);
        assert_eq!(row[15], 255);
    }
}
