//! Gaussian blur: a true, separable Gaussian with clamp-to-edge borders.
//!
//! Kernel: `w(i) = exp(-i^2 / 2 sigma^2)` for `|i| <= ceil(3 sigma)`, normalised
//! to sum 1. The horizontal pass writes 8-bit values (rounded), the vertical
//! pass reads them; the GPU kernel keeps the same intermediate so both paths
//! round at the same place. Filtering is in premultiplied alpha, so
//! transparent pixels do not bleed their colour.

use image::RgbaImage;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_range, Frame, OpContext, Operation, Shape};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// Largest sigma accepted (radius 192).
pub const MAX_SIGMA: f64 = 64.0;

/// Parameters of `blur`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlurParams {
    /// Standard deviation in pixels, `0.1..=64`.
    pub sigma: f64,
}

/// A validated `blur`.
#[derive(Debug, Clone, PartialEq)]
pub struct Blur {
    /// Normalised weights, `2 * radius + 1` of them, centre in the middle.
    pub kernel: Vec<f32>,
}

/// The normalised Gaussian kernel for `sigma` (computed in f64).
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let w: Vec<f64> = (-radius..=radius)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|v| (v / sum) as f32).collect()
}

/// Validate a sigma parameter named `name`.
pub fn check_sigma(name: &str, sigma: f64) -> Result<f64, ParamError> {
    check_range(name, sigma, 0.1, MAX_SIGMA)
}

impl Operation for Blur {
    const NAME: &'static str = "blur";
    type Params = BlurParams;

    fn validate(p: &BlurParams, _: &Limits) -> Result<Self, ParamError> {
        Ok(Self {
            kernel: gaussian_kernel(check_sigma("sigma", p.sigma)?),
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        Ok(s)
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        Ok(Frame {
            img: gaussian_blur(&frame.img, &self.kernel),
            ..frame
        })
    }
}

#[inline]
fn q255(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5).floor() as u8
}

/// Blur `src` with a separable, normalised kernel.
///
/// Every pixel is premultiplied by its alpha on the way in. On the way out,
/// a pixel whose blurred alpha rounds to 255 is opaque and kept as is, one
/// whose alpha rounds to 0 is transparent black, and others are divided by
/// their alpha. The rule is per pixel, so the GPU kernel applies it without
/// knowing anything about the rest of the image.
pub fn gaussian_blur(src: &RgbaImage, kernel: &[f32]) -> RgbaImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let r = kernel.len() / 2;
    let mut tmp = vec![0u8; w * h * 4];
    // Horizontal: each row padded by clamping, then convolved.
    tmp.par_chunks_mut(w * 4)
        .zip(src.as_raw().par_chunks(w * 4))
        .for_each_init(
            || vec![0f32; (w + 2 * r) * 4],
            |padded, (out, row)| {
                for (i, px) in padded.chunks_exact_mut(4).enumerate() {
                    let sx = i.saturating_sub(r).min(w - 1) * 4;
                    let a = f32::from(row[sx + 3]);
                    let k = a / 255.0;
                    px.copy_from_slice(&[
                        f32::from(row[sx]) * k,
                        f32::from(row[sx + 1]) * k,
                        f32::from(row[sx + 2]) * k,
                        a,
                    ]);
                }
                for (x, o) in out.chunks_exact_mut(4).enumerate() {
                    let mut acc = [0f32; 4];
                    for (t, &wt) in kernel.iter().enumerate() {
                        let p = &padded[(x + t) * 4..(x + t) * 4 + 4];
                        for c in 0..4 {
                            acc[c] += wt * p[c];
                        }
                    }
                    for c in 0..4 {
                        o[c] = q255(acc[c]);
                    }
                }
            },
        );
    // Vertical: accumulate whole rows, clamping row indices at the edges.
    let mut out = RgbaImage::new(w as u32, h as u32);
    out.as_mut()
        .par_chunks_mut(w * 4)
        .enumerate()
        .for_each_init(
            || vec![0f32; w * 4],
            |acc, (y, o)| {
                acc.fill(0.0);
                for (t, &wt) in kernel.iter().enumerate() {
                    let sy = (y + t).saturating_sub(r).min(h - 1);
                    let row = &tmp[sy * w * 4..(sy + 1) * w * 4];
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += wt * f32::from(v);
                    }
                }
                for (px, a) in o.chunks_exact_mut(4).zip(acc.chunks_exact(4)) {
                    px.copy_from_slice(&unpremultiply([a[0], a[1], a[2], a[3]]));
                }
            },
        );
    out
}

/// Turn a blurred premultiplied pixel (channels in `0..=255`) back into
/// straight alpha, as described on [`gaussian_blur`].
#[inline]
pub fn unpremultiply(a: [f32; 4]) -> [u8; 4] {
    match q255(a[3]) {
        255 => [q255(a[0]), q255(a[1]), q255(a[2]), 255],
        0 => [0; 4],
        alpha => {
            let inv = 255.0 / a[3];
            [q255(a[0] * inv), q255(a[1] * inv), q255(a[2] * inv), alpha]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let lim = Limits::default();
        assert!(Blur::validate(&BlurParams { sigma: 1.5 }, &lim).is_ok());
        for bad in [0.0, -1.0, 64.5, f64::NAN, f64::INFINITY] {
            assert!(
                Blur::validate(&BlurParams { sigma: bad }, &lim).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel(2.0);
        assert_eq!(k.len(), 13);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(k[0], k[12]);
    }
}
