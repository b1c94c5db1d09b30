//! Gaussian blur: a true, separable Gaussian with clamp-to-edge borders.
//!
//! Kernel: `w(i) = exp(-i^2 / 2 sigma^2)` for `|i| <= ceil(3 sigma)`, normalised
//! to sum 1. The horizontal pass rounds its results to whole 8-bit levels
//! and the vertical pass sums those; the GPU kernel keeps the same
//! intermediate so both paths round at the same place. Filtering is in premultiplied alpha, so
//! transparent pixels do not bleed their colour.

use image::RgbaImage;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::point::round_u8;
use super::{check_range, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep, Recorder};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/blur.wgsl`.
    pub(crate) struct BlurUniform {
        /// The kernel has `2 * radius + 1` weights.
        pub radius: i32,
    }
}

/// The separable Gaussian with normalised weights `kernel` on the GPU: a
/// horizontal then a vertical pass (also sharpen's first step).
pub(crate) fn record_blur(
    rec: &mut Recorder<'_>,
    src: &GpuImage,
    kernel: &[f32],
) -> Result<GpuImage, GpuError> {
    let weights: Vec<u32> = kernel.iter().map(|w| w.to_bits()).collect();
    let params = BlurUniform {
        radius: (kernel.len() / 2) as i32,
    };
    let tmp = rec.kernel(
        "blur_horizontal",
        src,
        src.dims(),
        Aux::Words(&weights),
        params,
    )?;
    rec.kernel(
        "blur_vertical",
        &tmp,
        src.dims(),
        Aux::Words(&weights),
        params,
    )
}

/// Smallest sigma accepted (`blur`, `sharpen`).
pub(crate) const MIN_SIGMA: f64 = 0.1;
/// Largest sigma accepted (radius 192).
pub(crate) const MAX_SIGMA: f64 = 64.0;

/// Parameters of `blur`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlurParams {
    /// Standard deviation in pixels, `0.1..=64`.
    #[schemars(range(min = MIN_SIGMA, max = MAX_SIGMA))]
    pub sigma: f64,
}

/// A validated `blur`.
#[derive(Debug, Clone, PartialEq)]
pub struct Blur {
    /// Normalised weights, `2 * radius + 1` of them, centre in the middle.
    pub kernel: Vec<f32>,
}

/// The normalised Gaussian kernel for `sigma` (computed in f64).
pub(crate) fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let w: Vec<f64> = (-radius..=radius)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|v| (v / sum) as f32).collect()
}

/// Validate a sigma parameter named `name`.
pub(crate) fn check_sigma(name: &str, sigma: f64) -> Result<f64, ParamError> {
    check_range(name, sigma, MIN_SIGMA, MAX_SIGMA)
}

impl Operation for Blur {
    const NAME: &'static str = "blur";
    const C2PA_ACTION: &'static str = "c2pa.filtered";
    const SUMMARY: &'static str =
        "separable Gaussian blur in premultiplied alpha, the kernel computed in float64";
    type Params = BlurParams;
    const SHADER: &'static str = include_str!("../../shaders/blur.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "blur", "sigma": 5.0}"#,
        r#"{"op": "blur", "sigma": 3.0}"#,
        r#"{"op": "blur", "sigma": 0.8}"#,
        r#"{"op": "blur", "sigma": 12.0}"#,
    ];
    const PARITY: Tolerance = Tolerance::FLOAT;

    fn validate(p: &BlurParams, _: &Limits) -> Result<Self, ParamError> {
        Ok(Self {
            kernel: gaussian_kernel(check_sigma("sigma", p.sigma)?),
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        Ok(s)
    }

    fn run_cpu(&self, mut frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        separable(&mut frame.img, &self.kernel, |dst, blurred| {
            dst.copy_from_slice(blurred)
        });
        Ok(frame)
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        record_blur(step.rec, step.src, &self.kernel)
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![BlurUniform::layout()]
    }
}

// How it works
//
// Every pixel is premultiplied by its alpha on the way in. On the way out,
// a pixel whose blurred alpha rounds to 255 is opaque and kept as is, one
// whose alpha rounds to 0 is transparent black, and others are divided by
// their alpha. The rule is per pixel, so the GPU kernel applies it without
// knowing anything about the rest of the image.
//
// The horizontal pass rounds each sample to a whole 8-bit level (the GPU
// keeps the same intermediate), and the vertical pass sums `2r + 1` of
// those rows. Each output sample is `sum_t kernel[t] * input[t]`, added up
// in tap order in `f32`; the loops are blocked so that the compiler
// vectorises them (`convolve`) without changing that order, so the result
// is the same on every CPU.
//
// The image is cut into bands of rows, blurred in parallel. A band keeps
// only the last `2r + 1` horizontally blurred rows, in a ring (as `f32`,
// already rounded), and writes each output row over its source row: by the
// time row `y` is written, every source row the band still needs is below
// it. The rows just outside a band, which its neighbours overwrite, are
// copied first (its halo). So the image is blurred in place, with no
// second frame, and the rows being summed stay in cache. An opaque image
// is blurred on its three colour channels only.

/// Rows of a band's neighbours that the band reads: `top` holds the source
/// rows `top_from..a`, `bottom` the rows `b..b + bottom.len() / stride`.
struct Halo {
    top_from: usize,
    top: Vec<u8>,
    bottom: Vec<u8>,
}

/// Blur `img` in place with the normalised `kernel` (both directions).
/// `finish(row, blurred)` gets each source row with its blurred version
/// (straight alpha) and writes the output row into `row`; rows are
/// finished in parallel, and each exactly once.
pub(crate) fn separable<F>(img: &mut RgbaImage, kernel: &[f32], finish: F)
where
    F: Fn(&mut [u8], &[u8]) + Sync,
{
    let h = img.height() as usize;
    let r = kernel.len() / 2;
    // Enough bands to keep every thread busy, each tall enough that its
    // halo and ring start-up (2r rows) stay small beside it.
    let want = 2 * rayon::current_num_threads();
    let bands = want.min(h / (4 * r).max(32)).max(1);
    separable_in_bands(img, kernel, bands, finish);
}

/// [`separable`] with the number of bands given.
fn separable_in_bands<F>(img: &mut RgbaImage, kernel: &[f32], bands: usize, finish: F)
where
    F: Fn(&mut [u8], &[u8]) + Sync,
{
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return;
    }
    let r = kernel.len() / 2;
    let stride = w * 4;
    let band_rows = h.div_ceil(bands.clamp(1, h));
    let channels = if super::is_opaque(img) { 3 } else { 4 };
    let src = img.as_raw();
    let halos: Vec<Halo> = (0..h.div_ceil(band_rows))
        .map(|k| {
            let (a, b) = (k * band_rows, ((k + 1) * band_rows).min(h));
            let top_from = a.saturating_sub(r);
            Halo {
                top_from,
                top: src[top_from * stride..a * stride].to_vec(),
                bottom: src[b * stride..(b + r).min(h) * stride].to_vec(),
            }
        })
        .collect();
    img.par_chunks_mut(band_rows * stride)
        .zip(halos.par_iter())
        .enumerate()
        .for_each(|(k, (band, halo))| {
            let band = Band {
                rows: band,
                a: k * band_rows,
                h,
                stride,
                halo,
            };
            blur_band(band, kernel, channels, &finish);
        });
}

/// One band of rows `a..a + rows.len() / stride` of an image `h` rows tall.
struct Band<'a> {
    rows: &'a mut [u8],
    a: usize,
    h: usize,
    stride: usize,
    halo: &'a Halo,
}

impl Band<'_> {
    /// Source row `v`, clamped to the image: from the band itself (rows not
    /// yet written) or from its halo.
    fn source(&self, v: isize) -> &[u8] {
        let s = v.clamp(0, self.h as isize - 1) as usize;
        let b = self.a + self.rows.len() / self.stride;
        let (buf, i) = if s < self.a {
            (&self.halo.top[..], s - self.halo.top_from)
        } else if s >= b {
            (&self.halo.bottom[..], s - b)
        } else {
            (&*self.rows, s - self.a)
        };
        &buf[i * self.stride..(i + 1) * self.stride]
    }
}

/// Blur one band in place, top to bottom, through a ring of `2r + 1`
/// horizontally blurred rows of `channels` channels each.
fn blur_band<F>(band: Band, kernel: &[f32], channels: usize, finish: &F)
where
    F: Fn(&mut [u8], &[u8]) + Sync,
{
    let w = band.stride / 4;
    let r = kernel.len() / 2;
    let n = w * channels;
    let ring_len = kernel.len();
    let mut ring = vec![0f32; ring_len * n];
    let mut padded = vec![0f32; (w + 2 * r) * channels];
    let mut acc = vec![0f32; n];
    let mut out = vec![0u8; band.stride];
    let a = band.a as isize;
    let base = a - r as isize;
    let slot = |v: isize| (v - base) as usize % ring_len;
    let mut fill = |band: &Band, ring: &mut [f32], v: isize| {
        let dst = &mut ring[slot(v) * n..(slot(v) + 1) * n];
        premultiply_padded(band.source(v), r, channels, &mut padded);
        convolve::f32_taps(dst, &padded, kernel, channels);
        convolve::round_whole(dst);
    };
    for v in base..a + r as isize {
        fill(&band, &mut ring, v);
    }
    let rows_in_band = band.rows.len() / band.stride;
    for (i, y) in (a..a + rows_in_band as isize).enumerate() {
        fill(&band, &mut ring, y + r as isize);
        let rows: Vec<&[f32]> = (y - r as isize..=y + r as isize)
            .map(|v| &ring[slot(v) * n..(slot(v) + 1) * n])
            .collect();
        convolve::f32_rows(&mut acc, &rows, kernel);
        if channels == 3 {
            convolve::quantise_rgb(&mut out, &acc);
        } else {
            convolve::quantise(&mut out, &acc);
            // `quantise` already wrote what an opaque pixel gets; only the
            // others need dividing by their alpha.
            for (px, a) in out.chunks_exact_mut(4).zip(acc.chunks_exact(4)) {
                if px[3] != 255 {
                    px.copy_from_slice(&unpremultiply([a[0], a[1], a[2], a[3]]));
                }
            }
        }
        let stride = band.stride;
        finish(&mut band.rows[i * stride..(i + 1) * stride], &out);
    }
}

/// Write the RGBA8 `row` as `f32` with `r` copies of its edge pixels on
/// either side into `padded` (`(width + 2r) * channels` values): all four
/// channels premultiplied by alpha, or (`channels == 3`, opaque rows) the
/// three colour channels as they are.
fn premultiply_padded(row: &[u8], r: usize, channels: usize, padded: &mut [f32]) {
    let (w, c) = (row.len() / 4, channels);
    let (left, rest) = padded.split_at_mut(r * c);
    let (inner, right) = rest.split_at_mut(w * c);
    if c == 3 {
        convolve::rgb_f32(inner, row);
    } else {
        convolve::premultiplied_f32(inner, row);
    }
    for px in left.chunks_exact_mut(c) {
        px.copy_from_slice(&inner[..c]);
    }
    for px in right.chunks_exact_mut(c) {
        px.copy_from_slice(&inner[(w - 1) * c..]);
    }
}

/// The blur's inner loops, compiled for several instruction sets and chosen
/// at run time (AVX2 where the CPU has it). The blocks keep 32
/// accumulators in registers across all taps.
pub(crate) mod convolve {
    use super::round_u8;
    use multiversion::multiversion;

    const BLOCK: usize = 32;

    /// `dst[i] = sum_t kernel[t] * src[i + t * step]`, summed in tap order
    /// (the taps as rows of [`f32_rows`]).
    pub(crate) fn f32_taps(dst: &mut [f32], src: &[f32], kernel: &[f32], step: usize) {
        let n = dst.len();
        assert!(src.len() + step >= n + kernel.len() * step);
        let rows: Vec<&[f32]> = (0..kernel.len()).map(|t| &src[t * step..]).collect();
        f32_rows(dst, &rows, kernel);
    }

    /// `dst[i] = sum_t kernel[t] * rows[t][i]`, summed in tap order.
    #[multiversion(targets = "simd")]
    pub(crate) fn f32_rows(dst: &mut [f32], rows: &[&[f32]], kernel: &[f32]) {
        let n = dst.len();
        assert!(rows.len() == kernel.len() && rows.iter().all(|r| r.len() >= n));
        let mut x = 0;
        while x + BLOCK <= n {
            let mut a = [0f32; BLOCK];
            for (row, &k) in rows.iter().zip(kernel) {
                let s = &row[x..x + BLOCK];
                for i in 0..BLOCK {
                    a[i] += k * s[i];
                }
            }
            dst[x..x + BLOCK].copy_from_slice(&a);
            x += BLOCK;
        }
        for (i, d) in dst.iter_mut().enumerate().skip(x) {
            let mut a = 0f32;
            for (row, &k) in rows.iter().zip(kernel) {
                a += k * row[i];
            }
            *d = a;
        }
    }

    /// RGBA8 pixels as `f32`, each colour channel multiplied by alpha / 255
    /// (by exactly 1 where alpha is 255).
    #[multiversion(targets = "simd")]
    pub(crate) fn premultiplied_f32(dst: &mut [f32], src: &[u8]) {
        for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            let k = f32::from(s[3]) / 255.0;
            d.copy_from_slice(&[
                f32::from(s[0]) * k,
                f32::from(s[1]) * k,
                f32::from(s[2]) * k,
                f32::from(s[3]),
            ]);
        }
    }

    /// The colour channels of RGBA8 pixels as `f32`, alpha dropped.
    #[multiversion(targets = "simd")]
    pub(crate) fn rgb_f32(dst: &mut [f32], src: &[u8]) {
        for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
            d.copy_from_slice(&[f32::from(s[0]), f32::from(s[1]), f32::from(s[2])]);
        }
    }

    /// Round each value to the 8-bit level [`quantise`] would give it,
    /// keeping it as `f32` (every level is exact in `f32`).
    #[multiversion(targets = "simd")]
    pub(crate) fn round_whole(v: &mut [f32]) {
        for x in v {
            *x = f32::from(round_u8(*x));
        }
    }

    /// [`quantise`] for RGB values, written out as opaque RGBA8.
    #[multiversion(targets = "simd")]
    pub(crate) fn quantise_rgb(dst: &mut [u8], src: &[f32]) {
        for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
            d.copy_from_slice(&[round_u8(s[0]), round_u8(s[1]), round_u8(s[2]), 255]);
        }
    }

    /// Round each value in `0..=255` half up to 8 bits, clamping.
    #[multiversion(targets = "simd")]
    pub(crate) fn quantise(dst: &mut [u8], src: &[f32]) {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = round_u8(v);
        }
    }
}

/// Turn a blurred premultiplied pixel (channels in `0..=255`) back into
/// straight alpha, as described in "How it works" above.
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

    /// The two passes written plainly over whole frames: the same
    /// arithmetic in the same order, with none of the bands, ring, halos
    /// or three-channel shortcut.
    fn plain_blur(img: &RgbaImage, kernel: &[f32]) -> Vec<u8> {
        let (w, h) = (img.width() as isize, img.height() as isize);
        let r = (kernel.len() / 2) as isize;
        let pre = |x: isize, y: isize| {
            let p = img.get_pixel(x.clamp(0, w - 1) as u32, y as u32).0;
            let k = if p[3] == 255 {
                1.0
            } else {
                f32::from(p[3]) / 255.0
            };
            [0, 1, 2, 3].map(|c| {
                let v = f32::from(p[c]);
                if c < 3 {
                    v * k
                } else {
                    v
                }
            })
        };
        let mut tmp = vec![[0f32; 4]; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let mut a = [0f32; 4];
                for (t, &k) in kernel.iter().enumerate() {
                    let p = pre(x + t as isize - r, y);
                    for c in 0..4 {
                        a[c] += k * p[c];
                    }
                }
                tmp[(y * w + x) as usize] = a.map(|v| f32::from(round_u8(v)));
            }
        }
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let mut a = [0f32; 4];
                for (t, &k) in kernel.iter().enumerate() {
                    let sy = (y + t as isize - r).clamp(0, h - 1);
                    let p = tmp[(sy * w + x) as usize];
                    for c in 0..4 {
                        a[c] += k * p[c];
                    }
                }
                out.extend(unpremultiply(a));
            }
        }
        out
    }

    fn sample(w: u32, h: u32, opaque: bool) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let v = x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ (x * y);
            let a = if opaque { 255 } else { (v >> 3) as u8 | 1 };
            image::Rgba([v as u8, (v >> 8) as u8, (x * 9 + y * 5) as u8, a])
        })
    }

    #[test]
    fn bands_ring_and_halos_match_the_plain_two_passes() {
        for (w, h) in [(1, 1), (37, 53), (64, 9), (3, 40)] {
            for opaque in [true, false] {
                let img = sample(w, h, opaque);
                for sigma in [0.7, 3.0, 8.0] {
                    let kernel = gaussian_kernel(sigma);
                    let want = plain_blur(&img, &kernel);
                    // One band, bands taller and shorter than the radius,
                    // and one band per row.
                    for bands in [1, 2, 3, 7, h as usize] {
                        let mut got = img.clone();
                        separable_in_bands(&mut got, &kernel, bands, |d, b| d.copy_from_slice(b));
                        assert!(
                            got.as_raw() == &want,
                            "{w}x{h} opaque {opaque} sigma {sigma} in {bands} bands"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn finish_sees_each_source_row_once() {
        let img = sample(29, 31, false);
        let kernel = gaussian_kernel(4.0);
        let blurred = plain_blur(&img, &kernel);
        let mut got = img.clone();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        separable_in_bands(&mut got, &kernel, 5, |d, b| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Output: the source row's bytes XOR the blurred ones, so both
            // must be the right rows for the result to match.
            for (d, b) in d.iter_mut().zip(b) {
                *d ^= b;
            }
        });
        assert_eq!(calls.into_inner(), 31);
        let want: Vec<u8> = img
            .as_raw()
            .iter()
            .zip(&blurred)
            .map(|(s, b)| s ^ b)
            .collect();
        assert!(got.as_raw() == &want);
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel(2.0);
        assert_eq!(k.len(), 13);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(k[0], k[12]);
    }
}
