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

use super::point::round_u8;
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

    fn run_cpu(&self, mut frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        // The source is not needed once the horizontal pass has read it, so
        // the vertical pass writes over it: two frames in memory, not three.
        let tmp = horizontal(&frame.img, &self.kernel);
        let w = frame.img.width() as usize;
        vertical(&tmp, w, &self.kernel, frame.img.as_mut(), |dst, blurred| {
            dst.copy_from_slice(blurred)
        });
        Ok(frame)
    }
}

// How both passes work:
//
// Every pixel is premultiplied by its alpha on the way in. On the way out,
// a pixel whose blurred alpha rounds to 255 is opaque and kept as is, one
// whose alpha rounds to 0 is transparent black, and others are divided by
// their alpha. The rule is per pixel, so the GPU kernel applies it without
// knowing anything about the rest of the image.
//
// Each output sample is `sum_t kernel[t] * input[t]`, added up in tap order
// in `f32`; the loops are blocked so that the compiler vectorises them
// (`convolve`) without changing that order, so the result is the same on
// every CPU.

/// The horizontal pass: every row premultiplied, padded by clamping,
/// convolved and rounded to 8 bits.
pub(crate) fn horizontal(src: &RgbaImage, kernel: &[f32]) -> Vec<u8> {
    let w = src.width() as usize;
    let r = kernel.len() / 2;
    let mut tmp = vec![0u8; src.as_raw().len()];
    if w == 0 {
        return tmp;
    }
    tmp.par_chunks_mut(w * 4)
        .zip(src.as_raw().par_chunks(w * 4))
        .for_each_init(
            || (vec![0f32; (w + 2 * r) * 4], vec![0f32; w * 4]),
            |(padded, acc), (out, row)| {
                premultiply_padded(row, r, padded);
                convolve::f32_taps(acc, padded, kernel, 4);
                convolve::quantise(out, acc);
            },
        );
    tmp
}

/// The vertical pass over `tmp` (rows of `w` pixels), clamping row indices
/// at the edges and dividing by alpha again. Each blurred row is handed to
/// `finish` with the matching row of `dst`, which is written in parallel
/// and may be the image the horizontal pass read.
pub(crate) fn vertical<F>(tmp: &[u8], w: usize, kernel: &[f32], dst: &mut [u8], finish: F)
where
    F: Fn(&mut [u8], &[u8]) + Sync,
{
    if w == 0 {
        return;
    }
    let h = tmp.len() / (w * 4);
    let r = kernel.len() / 2;
    dst.par_chunks_mut(w * 4).enumerate().for_each_init(
        || {
            let rows: Vec<&[u8]> = Vec::with_capacity(kernel.len());
            (vec![0f32; w * 4], vec![0u8; w * 4], rows)
        },
        |(acc, o, rows), (y, d)| {
            rows.clear();
            rows.extend((0..kernel.len()).map(|t| {
                let sy = (y + t).saturating_sub(r).min(h - 1);
                &tmp[sy * w * 4..(sy + 1) * w * 4]
            }));
            convolve::u8_rows(acc, rows, kernel);
            convolve::quantise(o, acc);
            // `quantise` already wrote what an opaque pixel gets; only the
            // others need dividing by their alpha.
            for (px, a) in o.chunks_exact_mut(4).zip(acc.chunks_exact(4)) {
                if px[3] != 255 {
                    px.copy_from_slice(&unpremultiply([a[0], a[1], a[2], a[3]]));
                }
            }
            finish(d, o);
        },
    );
}

/// Write `row` as `f32`, premultiplied by alpha, with `r` copies of its edge
/// pixels on either side, into `padded` (`(width + 2r) * 4` values).
fn premultiply_padded(row: &[u8], r: usize, padded: &mut [f32]) {
    let w = row.len() / 4;
    for (i, px) in padded.chunks_exact_mut(4).enumerate() {
        let sx = i.saturating_sub(r).min(w - 1) * 4;
        let p = &row[sx..sx + 4];
        px.copy_from_slice(&[p[0], p[1], p[2], p[3]].map(f32::from));
        if p[3] != 255 {
            let k = f32::from(p[3]) / 255.0;
            for c in &mut px[..3] {
                *c *= k;
            }
        }
    }
}

/// The blur's inner loops, compiled for several instruction sets and chosen
/// at run time (AVX2 where the CPU has it). The blocks keep 32
/// accumulators in registers across all taps.
pub(crate) mod convolve {
    use super::round_u8;
    use multiversion::multiversion;

    const BLOCK: usize = 32;

    /// `dst[i] = sum_t kernel[t] * src[i + t * step]`, summed in tap order.
    #[multiversion(targets = "simd")]
    pub fn f32_taps(dst: &mut [f32], src: &[f32], kernel: &[f32], step: usize) {
        let n = dst.len();
        assert!(src.len() + step >= n + kernel.len() * step);
        let mut x = 0;
        while x + BLOCK <= n {
            let mut a = [0f32; BLOCK];
            for (t, &k) in kernel.iter().enumerate() {
                let s = &src[x + t * step..x + t * step + BLOCK];
                for i in 0..BLOCK {
                    a[i] += k * s[i];
                }
            }
            dst[x..x + BLOCK].copy_from_slice(&a);
            x += BLOCK;
        }
        for (i, d) in dst.iter_mut().enumerate().skip(x) {
            let mut a = 0f32;
            for (t, &k) in kernel.iter().enumerate() {
                a += k * src[i + t * step];
            }
            *d = a;
        }
    }

    /// `dst[i] = sum_t kernel[t] * rows[t][i]`, summed in tap order.
    #[multiversion(targets = "simd")]
    pub fn u8_rows(dst: &mut [f32], rows: &[&[u8]], kernel: &[f32]) {
        let n = dst.len();
        assert!(rows.len() == kernel.len() && rows.iter().all(|r| r.len() >= n));
        let mut x = 0;
        while x + BLOCK <= n {
            let mut a = [0f32; BLOCK];
            for (row, &k) in rows.iter().zip(kernel) {
                let s = &row[x..x + BLOCK];
                for i in 0..BLOCK {
                    a[i] += k * f32::from(s[i]);
                }
            }
            dst[x..x + BLOCK].copy_from_slice(&a);
            x += BLOCK;
        }
        for (i, d) in dst.iter_mut().enumerate().skip(x) {
            let mut a = 0f32;
            for (row, &k) in rows.iter().zip(kernel) {
                a += k * f32::from(row[i]);
            }
            *d = a;
        }
    }

    /// Round each value in `0..=255` half up to 8 bits, clamping.
    #[multiversion(targets = "simd")]
    pub fn quantise(dst: &mut [u8], src: &[f32]) {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = round_u8(v);
        }
    }
}

/// Turn a blurred premultiplied pixel (channels in `0..=255`) back into
/// straight alpha, as described above `horizontal`.
#[inline]
pub fn unpremultiply(a: [f32; 4]) -> [u8; 4] {
    match round_u8(a[3]) {
        255 => [round_u8(a[0]), round_u8(a[1]), round_u8(a[2]), 255],
        0 => [0; 4],
        alpha => {
            let inv = 255.0 / a[3];
            [
                round_u8(a[0] * inv),
                round_u8(a[1] * inv),
                round_u8(a[2] * inv),
                alpha,
            ]
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
