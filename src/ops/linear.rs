//! Linear light for resampling (`"linear": true` on `resize`): the sRGB
//! transfer function as two tables that the CPU path and the GPU kernels
//! share, so that both backends decode and encode identically.
//!
//! - Decoding: the 256 sRGB levels as linear-light `f32` values, computed
//!   in `f64`.
//! - Encoding: the 255 linear-light thresholds between neighbouring levels
//!   (the linear value of `k + 0.5` levels): a value's level is the number
//!   of thresholds at or below it, which is the correctly rounded level
//!   whatever the precision of the value.
//!
//! Pixels are carried as premultiplied linear RGBA in `f32`. On the way
//! out, a pixel whose alpha rounds to 0 is transparent black; the others
//! are divided by their alpha.

use std::sync::OnceLock;

use image::RgbaImage;
use rayon::prelude::*;

/// The sRGB decoding function (IEC 61966-2-1), `0..=1` to linear light.
pub fn srgb_to_linear(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// The sRGB encoding function, linear light to `0..=1`.
pub fn linear_to_srgb(v: f64) -> f64 {
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// Each 8-bit sRGB level in linear light.
pub(crate) fn decode_table() -> &'static [f32; 256] {
    static TABLE: OnceLock<[f32; 256]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|k| srgb_to_linear(k as f64 / 255.0) as f32))
}

/// The linear-light value halfway (in sRGB) between level `k` and `k + 1`,
/// for `k` in `0..255`, rounded up to the next `f32` so that a value at or
/// above a threshold in `f32` is at or above it in exact arithmetic.
pub(crate) fn encode_thresholds() -> &'static [f32; 255] {
    static TABLE: OnceLock<[f32; 255]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|k| {
            let exact = srgb_to_linear((k as f64 + 0.5) / 255.0);
            let t = exact as f32;
            if f64::from(t) < exact {
                t.next_up()
            } else {
                t
            }
        })
    })
}

/// The 8-bit sRGB level of a linear-light value, correctly rounded
/// (clamped to `0..=255`).
fn encode(v: f32, thresholds: &[f32; 255]) -> u8 {
    thresholds.partition_point(|&t| t <= v) as u8
}

/// An RGBA8 sRGB image as premultiplied linear-light RGBA `f32`.
pub(crate) fn to_linear(img: &RgbaImage) -> Vec<f32> {
    let table = decode_table();
    let mut out = vec![0f32; img.as_raw().len()];
    let row = img.width() as usize * 4;
    out.par_chunks_mut(row.max(4))
        .zip(img.as_raw().par_chunks(row.max(4)))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                let a = f32::from(s[3]) / 255.0;
                d[0] = table[usize::from(s[0])] * a;
                d[1] = table[usize::from(s[1])] * a;
                d[2] = table[usize::from(s[2])] * a;
                d[3] = a;
            }
        });
    out
}

/// Premultiplied linear-light RGBA `f32` back to an RGBA8 sRGB image of
/// `width` x `height`.
pub(crate) fn from_linear(px: &[f32], width: u32, height: u32) -> RgbaImage {
    let thresholds = encode_thresholds();
    let mut out = vec![0u8; px.len()];
    let row = width as usize * 4;
    out.par_chunks_mut(row.max(4))
        .zip(px.par_chunks(row.max(4)))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                let a = s[3].clamp(0.0, 1.0);
                let a8 = (a * 255.0 + 0.5).floor() as u8;
                if a8 == 0 {
                    d.fill(0);
                    continue;
                }
                for (dc, &sc) in d.iter_mut().zip(&s[..3]) {
                    *dc = encode((sc / a).clamp(0.0, 1.0), thresholds);
                }
                d[3] = a8;
            }
        });
    RgbaImage::from_raw(width, height, out).expect("a buffer of the image's size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_survives_the_round_trip() {
        let img = RgbaImage::from_fn(256, 4, |x, y| {
            image::Rgba([
                x as u8,
                255 - x as u8,
                (x * 7) as u8,
                [255, 200, 17, 1][y as usize],
            ])
        });
        let back = from_linear(&to_linear(&img), 256, 4);
        for (x, y, p) in back.enumerate_pixels() {
            let want = img.get_pixel(x, y);
            // Full alpha keeps every level; lower alpha divides back what it
            // multiplied, within one level.
            let tol = if y == 0 { 0 } else { 1 };
            for k in 0..4 {
                assert!(p[k].abs_diff(want[k]) <= tol, "{x},{y}: {p:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn encoding_rounds_like_float64() {
        let t = encode_thresholds();
        for i in 0..=20_000 {
            let v = i as f64 / 20_000.0;
            let want = (linear_to_srgb(v) * 255.0).round() as u8;
            let got = encode(v as f32, t);
            // A value within f32 precision of a threshold may go either way.
            assert!(got.abs_diff(want) <= 1, "{v}: {got} vs {want}");
            if want != got {
                let k = usize::from(want.min(got));
                assert!((f64::from(t[k]) - v).abs() < 1e-6, "{v}");
            }
        }
        assert_eq!(encode(-0.5, t), 0);
        assert_eq!(encode(7.0, t), 255);
    }

    #[test]
    fn transparent_pixels_come_out_transparent_black() {
        let px = [0.3, 0.2, 0.1, 0.001, 0.0, 0.0, 0.0, 0.0];
        let img = from_linear(&px, 2, 1);
        assert_eq!(img.as_raw(), &[0u8; 8]);
    }
}
