//! Where the interesting part of an image is: the smart-crop window search
//! behind `crop`'s `gravity: attention` and `entropy`.
//!
//! Both work on a shrunk copy (box-averaged by a whole factor `k` so that
//! the longer side is at most [`ANALYSIS_SIDE`]), then scale the chosen
//! window back, so the cost is independent of the image size.
//!
//! - **attention** (after libvips' `attention`): every pixel of the shrunk
//!   copy scores its edge strength (the absolute Laplacian of Rec. 709
//!   luma, times 2), its saturation above 0.25, and 0.5 when its colour is
//!   a skin tone (normalised red in `0.36..=0.465` and green in
//!   `0.28..=0.363`, luma in `0.2..=0.9`). The window of the crop's size
//!   with the highest total score wins (summed-area table, every position);
//!   of equal ones the one nearest the centre.
//! - **entropy** (after libvips' `entropy`): the side strip (1/16 of the
//!   copy, at least one pixel) whose 8-bit luma histogram has the lower
//!   entropy is cut away, left or right, until the width fits, then top or
//!   bottom until the height does.
//!
//! Both backends call this on the same pixels (the GPU reads the image back
//! first), so they choose the same window.

use image::RgbaImage;

/// Longest side of the analysed copy.
pub(crate) const ANALYSIS_SIDE: u32 = 256;

/// The shrunk copy as premultiplied RGB in `0..=1`, and its factor.
struct Small {
    w: usize,
    h: usize,
    k: u32,
    rgb: Vec<[f32; 3]>,
}

fn shrink(img: &RgbaImage) -> Small {
    let (w, h) = img.dimensions();
    let k = w.max(h).div_ceil(ANALYSIS_SIDE).max(1);
    let (sw, sh) = ((w / k).max(1) as usize, (h / k).max(1) as usize);
    let mut rgb = vec![[0f32; 3]; sw * sh];
    for (sy, row) in rgb.chunks_mut(sw).enumerate() {
        for (sx, px) in row.iter_mut().enumerate() {
            let mut acc = [0f32; 3];
            let mut n = 0f32;
            for y in (sy as u32 * k)..((sy as u32 + 1) * k).min(h) {
                for x in (sx as u32 * k)..((sx as u32 + 1) * k).min(w) {
                    let p = img.get_pixel(x, y).0;
                    let a = f32::from(p[3]) / 255.0;
                    for c in 0..3 {
                        acc[c] += f32::from(p[c]) / 255.0 * a;
                    }
                    n += 1.0;
                }
            }
            *px = acc.map(|v| v / n.max(1.0));
        }
    }
    Small {
        w: sw,
        h: sh,
        k,
        rgb,
    }
}

fn luma([r, g, b]: [f32; 3]) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// Per-pixel attention scores of the shrunk copy.
fn attention_scores(s: &Small) -> Vec<f64> {
    let y: Vec<f32> = s.rgb.iter().map(|&p| luma(p)).collect();
    let at = |x: isize, yy: isize| {
        let x = x.clamp(0, s.w as isize - 1) as usize;
        let yy = yy.clamp(0, s.h as isize - 1) as usize;
        y[yy * s.w + x]
    };
    let mut out = Vec::with_capacity(s.w * s.h);
    for j in 0..s.h as isize {
        for i in 0..s.w as isize {
            let c = at(i, j);
            let edge = (4.0 * c - at(i - 1, j) - at(i + 1, j) - at(i, j - 1) - at(i, j + 1)).abs();
            let [r, g, b] = s.rgb[j as usize * s.w + i as usize];
            let sat = r.max(g).max(b) - r.min(g).min(b);
            let sum = r + g + b;
            let skin = if sum > 0.0 {
                let (nr, ng) = (r / sum, g / sum);
                (0.36..=0.465).contains(&nr)
                    && (0.28..=0.363).contains(&ng)
                    && (0.2..=0.9).contains(&c)
            } else {
                false
            };
            let score = 2.0 * edge + (sat - 0.25).max(0.0) + if skin { 0.5 } else { 0.0 };
            out.push(f64::from(score));
        }
    }
    out
}

/// The top-left corner of the `cw` x `ch` window of `img` with the most
/// attention.
pub fn attention(img: &RgbaImage, cw: u32, ch: u32) -> (u32, u32) {
    let s = shrink(img);
    let scores = attention_scores(&s);
    // Summed-area table, one row and column of zeros in front.
    let (w, h) = (s.w, s.h);
    let mut sat = vec![0f64; (w + 1) * (h + 1)];
    for j in 0..h {
        let mut row = 0.0;
        for i in 0..w {
            row += scores[j * w + i];
            sat[(j + 1) * (w + 1) + i + 1] = sat[j * (w + 1) + i + 1] + row;
        }
    }
    let tw = ((cw as f64 / s.k as f64).round() as usize).clamp(1, w);
    let th = ((ch as f64 / s.k as f64).round() as usize).clamp(1, h);
    let sum = |x: usize, y: usize| {
        sat[(y + th) * (w + 1) + x + tw] - sat[y * (w + 1) + x + tw] - sat[(y + th) * (w + 1) + x]
            + sat[y * (w + 1) + x]
    };
    let (cx, cy) = ((w - tw) as f64 / 2.0, (h - th) as f64 / 2.0);
    let mut best = (f64::NEG_INFINITY, f64::INFINITY, 0usize, 0usize);
    for y in 0..=h - th {
        for x in 0..=w - tw {
            let v = sum(x, y);
            let d = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
            if v > best.0 + 1e-9 || ((v - best.0).abs() <= 1e-9 && d < best.1) {
                best = (v, d, x, y);
            }
        }
    }
    place(img, cw, ch, s.k, best.2, best.3)
}

/// Shannon entropy of the 8-bit luma histogram of a region of the copy.
fn entropy(lum: &[u8], w: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> f64 {
    let mut hist = [0u32; 256];
    for y in y0..y1 {
        for &v in &lum[y * w + x0..y * w + x1] {
            hist[v as usize] += 1;
        }
    }
    let n: u32 = hist.iter().sum();
    if n == 0 {
        return 0.0;
    }
    hist.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / f64::from(n);
            -p * p.log2()
        })
        .sum()
}

/// The top-left corner of the `cw` x `ch` window of `img` left once the
/// lowest-entropy edges are cut away.
pub(crate) fn entropy_window(img: &RgbaImage, cw: u32, ch: u32) -> (u32, u32) {
    let s = shrink(img);
    let lum: Vec<u8> = s
        .rgb
        .iter()
        .map(|&p| (luma(p).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let tw = ((cw as f64 / s.k as f64).round() as usize).clamp(1, s.w);
    let th = ((ch as f64 / s.k as f64).round() as usize).clamp(1, s.h);
    let (mut x0, mut x1, mut y0, mut y1) = (0, s.w, 0, s.h);
    let strip_w = (s.w / 16).max(1);
    while x1 - x0 > tw {
        let n = strip_w.min(x1 - x0 - tw);
        let left = entropy(&lum, s.w, x0, y0, x0 + n, y1);
        let right = entropy(&lum, s.w, x1 - n, y0, x1, y1);
        if left < right {
            x0 += n;
        } else {
            x1 -= n;
        }
    }
    let strip_h = (s.h / 16).max(1);
    while y1 - y0 > th {
        let n = strip_h.min(y1 - y0 - th);
        let top = entropy(&lum, s.w, x0, y0, x1, y0 + n);
        let bottom = entropy(&lum, s.w, x0, y1 - n, x1, y1);
        if top < bottom {
            y0 += n;
        } else {
            y1 -= n;
        }
    }
    place(img, cw, ch, s.k, x0, y0)
}

/// A window found at `(x, y)` in the copy, in the full image and inside it.
fn place(img: &RgbaImage, cw: u32, ch: u32, k: u32, x: usize, y: usize) -> (u32, u32) {
    let (w, h) = img.dimensions();
    ((x as u32 * k).min(w - cw), (y as u32 * k).min(h - ch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// A grey field with one busy, saturated square.
    fn subject_at(w: u32, h: u32, sx: u32, sy: u32, side: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            if (sx..sx + side).contains(&x) && (sy..sy + side).contains(&y) {
                let v = ((x * 37 + y * 91) % 7) as u8 * 30;
                Rgba([220, v, 255 - v, 255])
            } else {
                Rgba([120, 120, 120, 255])
            }
        })
    }

    #[test]
    fn both_find_a_single_subject() {
        for (w, h, sx, sy) in [(300, 200, 240, 150), (300, 200, 5, 10), (900, 600, 400, 60)] {
            let img = subject_at(w, h, sx, sy, 40);
            for (name, (x, y)) in [
                ("attention", attention(&img, 100, 100)),
                ("entropy", entropy_window(&img, 100, 100)),
            ] {
                assert!(
                    x <= sx && x + 100 >= sx + 40 && y <= sy && y + 100 >= sy + 40,
                    "{name}: window ({x}, {y}) misses the subject at ({sx}, {sy}) on {w}x{h}"
                );
            }
        }
    }

    #[test]
    fn a_flat_image_gives_the_centre() {
        let img = RgbaImage::from_pixel(50, 30, Rgba([9, 9, 9, 255]));
        assert_eq!(attention(&img, 10, 10), (20, 10));
        assert_eq!(attention(&img, 50, 30), (0, 0));
    }
}
