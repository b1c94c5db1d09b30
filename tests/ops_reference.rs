//! Every op against an independent reference: float64 re-implementations of
//! the documented formulas (resampling included) and exact index mappings
//! for geometric ops, on edge sizes (1x1, odd widths, very wide and very
//! tall images). That resize equals a direct fast_image_resize call is a
//! unit test of `src/ops/resize.rs`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{diff, test_image, EDGE_SIZES};
use image::{Rgba, RgbaImage};
use imgworker::config::Limits;
use imgworker::ops::{Frame, Op, OpContext, OpSpec};
use serde_json::json;

fn op(v: serde_json::Value) -> Op {
    serde_json::from_value::<OpSpec>(v)
        .unwrap()
        .validate(&Limits::default())
        .unwrap()
}

fn apply(o: &Op, img: &RgbaImage) -> RgbaImage {
    apply_ctx(o, img, 1, &OpContext::default())
}

fn apply_ctx(o: &Op, img: &RgbaImage, orientation: u8, ctx: &OpContext) -> RgbaImage {
    o.run_cpu(
        Frame {
            img: img.clone(),
            orientation,
        },
        ctx,
    )
    .unwrap()
    .img
}

fn q(v: f64) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5).floor() as u8
}

fn f(v: u8) -> f64 {
    f64::from(v) / 255.0
}

/// Apply a float64 per-pixel function.
fn reference_point(img: &RgbaImage, func: impl Fn([f64; 4]) -> [f64; 4]) -> RgbaImage {
    RgbaImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0.map(f);
        Rgba(func(p).map(q))
    })
}

fn assert_close(name: &str, got: &RgbaImage, want: &RgbaImage, max_tol: u8, mean_tol: f64) {
    let (max, mean) = diff(got, want);
    assert!(
        max <= max_tol && mean <= mean_tol,
        "{name}: max diff {max} (tolerance {max_tol}), mean {mean:.4} (tolerance {mean_tol})"
    );
}

fn each_size(mut check: impl FnMut(&RgbaImage, (u32, u32))) {
    for (i, &(w, h)) in EDGE_SIZES.iter().enumerate() {
        check(&test_image(w, h, i as u32 + 1, false), (w, h));
        check(&test_image(w, h, i as u32 + 100, true), (w, h));
    }
}

#[test]
fn grayscale_is_rec709_luma() {
    let o = op(json!({"op": "grayscale"}));
    each_size(|img, _| {
        let want = reference_point(img, |[r, g, b, a]| {
            let l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
            [l, l, l, a]
        });
        assert_close("grayscale", &apply(&o, img), &want, 1, 0.01);
    });
    // Known value: pure red is 0.2126 * 255 = 54.2 -> 54.
    let red = RgbaImage::from_pixel(1, 1, Rgba([255, 0, 0, 255]));
    assert_eq!(apply(&o, &red).get_pixel(0, 0).0, [54, 54, 54, 255]);
}

#[test]
fn invert_is_exact() {
    let o = op(json!({"op": "invert"}));
    each_size(|img, _| {
        let got = apply(&o, img);
        for (a, b) in got.pixels().zip(img.pixels()) {
            assert_eq!(a.0, [255 - b[0], 255 - b[1], 255 - b[2], b[3]]);
        }
    });
}

#[test]
fn sepia_matches_w3c_matrix() {
    for s in [1.0, 0.5, 0.0] {
        let o = op(json!({"op": "sepia", "strength": s}));
        let t = 1.0 - s;
        each_size(|img, _| {
            let want = reference_point(img, |[r, g, b, a]| {
                [
                    (0.393 + 0.607 * t) * r + (0.769 - 0.769 * t) * g + (0.189 - 0.189 * t) * b,
                    (0.349 - 0.349 * t) * r + (0.686 + 0.314 * t) * g + (0.168 - 0.168 * t) * b,
                    (0.272 - 0.272 * t) * r + (0.534 - 0.534 * t) * g + (0.131 + 0.869 * t) * b,
                    a,
                ]
            });
            assert_close("sepia", &apply(&o, img), &want, 1, 0.01);
        });
    }
    // Known value: white under full sepia saturates red and green, blue 0.937.
    let white = RgbaImage::from_pixel(1, 1, Rgba([255, 255, 255, 255]));
    assert_eq!(
        apply(&op(json!({"op": "sepia"})), &white).get_pixel(0, 0).0,
        [255, 255, 239, 255]
    );
}

fn srgb_to_linear(c: f64) -> f64 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f64) -> f64 {
    if c <= 0.0031308 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

fn reference_adjust(
    b: f64,
    k: f64,
    s: f64,
    h: f64,
    g: f64,
    e: f64,
) -> impl Fn([f64; 4]) -> [f64; 4] {
    move |[r0, g0, b0, a]| {
        let mut c = [r0, g0, b0];
        c = c.map(|v| linear_to_srgb((srgb_to_linear(v) * 2f64.powf(e)).clamp(0.0, 1.0)));
        c = c.map(|v| ((v + b - 0.5) * k + 0.5).clamp(0.0, 1.0));
        // saturate (W3C), then hueRotate (W3C).
        let sat = [
            [
                0.2126 + 0.7874 * s,
                0.7152 - 0.7152 * s,
                0.0722 - 0.0722 * s,
            ],
            [
                0.2126 - 0.2126 * s,
                0.7152 + 0.2848 * s,
                0.0722 - 0.0722 * s,
            ],
            [
                0.2126 - 0.2126 * s,
                0.7152 - 0.7152 * s,
                0.0722 + 0.9278 * s,
            ],
        ];
        let (sn, cs) = h.to_radians().sin_cos();
        let hue = [
            [
                0.213 + cs * 0.787 - sn * 0.213,
                0.715 - cs * 0.715 - sn * 0.715,
                0.072 - cs * 0.072 + sn * 0.928,
            ],
            [
                0.213 - cs * 0.213 + sn * 0.143,
                0.715 + cs * 0.285 + sn * 0.140,
                0.072 - cs * 0.072 - sn * 0.283,
            ],
            [
                0.213 - cs * 0.213 - sn * 0.787,
                0.715 - cs * 0.715 + sn * 0.715,
                0.072 + cs * 0.928 + sn * 0.072,
            ],
        ];
        let mulv = |m: &[[f64; 3]; 3], v: [f64; 3]| {
            [0, 1, 2].map(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
        };
        c = mulv(&hue, mulv(&sat, c)).map(|v| v.clamp(0.0, 1.0));
        c = c.map(|v| v.powf(1.0 / g));
        [c[0], c[1], c[2], a]
    }
}

#[test]
fn adjust_matches_float64_reference() {
    let cases = [
        (0.05, 1.1, 1.2, 0.0, 1.0, 0.0),
        (-0.2, 0.7, 0.0, 0.0, 1.0, 0.0),
        (0.0, 1.0, 1.0, 120.0, 1.0, 0.0),
        (0.0, 1.0, 1.0, 0.0, 2.2, 0.0),
        (0.0, 1.0, 1.0, 0.0, 1.0, 1.5),
        (0.1, 1.3, 1.5, -45.0, 0.8, -0.7),
    ];
    for (b, k, s, h, g, e) in cases {
        let o = op(
            json!({"op": "adjust", "brightness": b, "contrast": k, "saturation": s, "hue": h, "gamma": g, "exposure": e}),
        );
        let reference = reference_adjust(b, k, s, h, g, e);
        each_size(|img, _| {
            assert_close(
                "adjust",
                &apply(&o, img),
                &reference_point(img, &reference),
                1,
                0.05,
            )
        });
    }
    // Known values: +0.5 brightness lifts mid-grey 128 to 255; contrast 0 gives 128.
    let grey = RgbaImage::from_pixel(1, 1, Rgba([128, 128, 128, 255]));
    assert_eq!(
        apply(&op(json!({"op": "adjust", "brightness": 0.5})), &grey)
            .get_pixel(0, 0)
            .0,
        [255, 255, 255, 255]
    );
    let px = RgbaImage::from_pixel(1, 1, Rgba([10, 200, 90, 255]));
    assert_eq!(
        apply(&op(json!({"op": "adjust", "contrast": 0.0})), &px)
            .get_pixel(0, 0)
            .0,
        [128, 128, 128, 255]
    );
    // One stop of exposure doubles linear light: sRGB 100 (linear 0.1274) -> 0.2549 -> sRGB 0.5419 = 138.2.
    let p = RgbaImage::from_pixel(1, 1, Rgba([100, 100, 100, 255]));
    assert_eq!(
        apply(&op(json!({"op": "adjust", "exposure": 1.0})), &p)
            .get_pixel(0, 0)
            .0,
        [138, 138, 138, 255]
    );
}

/// Levels in float64, straight from the documented formula.
fn reference_levels(c: f64, black: f64, white: f64, gamma: f64, ob: f64, ow: f64) -> f64 {
    let v = ((c - black) / (white - black))
        .clamp(0.0, 1.0)
        .powf(1.0 / gamma);
    ob + v * (ow - ob)
}

#[test]
fn levels_matches_float64_formula() {
    let cases = [
        (
            json!({"op": "levels", "black": 0.1, "white": 0.9, "gamma": 1.3}),
            3,
            (0.1, 0.9, 1.3, 0.0, 1.0),
        ),
        (
            json!({"op": "levels", "channel": "red", "gamma": 0.4}),
            0,
            (0.0, 1.0, 0.4, 0.0, 1.0),
        ),
        (
            json!({"op": "levels", "channel": "blue", "output_black": 0.9, "output_white": 0.2}),
            2,
            (0.0, 1.0, 1.0, 0.9, 0.2),
        ),
        (
            json!({"op": "levels", "channel": "green", "black": 0.5, "white": 0.51, "gamma": 9.5}),
            1,
            (0.5, 0.51, 9.5, 0.0, 1.0),
        ),
    ];
    for (spec, channel, (black, white, gamma, ob, ow)) in cases {
        let o = op(spec.clone());
        each_size(|img, _| {
            let want = reference_point(img, |mut px| {
                for (i, c) in px.iter_mut().enumerate().take(3) {
                    if channel == 3 || channel == i {
                        *c = reference_levels(*c, black, white, gamma, ob, ow);
                    }
                }
                px
            });
            assert_close(&spec.to_string(), &apply(&o, img), &want, 1, 0.01);
        });
    }
    // Known values: the black point and below is 0, the white point and
    // above 255, halfway between them 128.
    let o = op(json!({"op": "levels", "black": 0.2, "white": 0.6}));
    let img = RgbaImage::from_fn(4, 1, |x, _| {
        let v = [51, 153, 200, 102][x as usize];
        Rgba([v, v, v, 255])
    });
    let got = apply(&o, &img);
    assert_eq!(got.get_pixel(0, 0).0, [0, 0, 0, 255]);
    assert_eq!(got.get_pixel(1, 0).0, [255, 255, 255, 255]);
    assert_eq!(got.get_pixel(2, 0).0, [255, 255, 255, 255]);
    assert_eq!(got.get_pixel(3, 0).0, [128, 128, 128, 255]);
}

/// A monotone cubic in float64, written from the Fritsch–Carlson paper's
/// steps independently of the op's code: secants, averaged tangents, the
/// alpha/beta circle limit, and the Hermite basis in its expanded form.
fn reference_curve(points: &[(f64, f64)], x: f64) -> f64 {
    let n = points.len();
    if x <= points[0].0 {
        return points[0].1;
    }
    if x >= points[n - 1].0 {
        return points[n - 1].1;
    }
    let delta: Vec<f64> = points
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0))
        .collect();
    let mut m: Vec<f64> = (0..n)
        .map(|k| match k {
            0 => delta[0],
            k if k == n - 1 => delta[n - 2],
            k if delta[k - 1].signum() != delta[k].signum()
                || delta[k - 1] == 0.0
                || delta[k] == 0.0 =>
            {
                0.0
            }
            k => 0.5 * (delta[k - 1] + delta[k]),
        })
        .collect();
    for k in 0..n - 1 {
        if delta[k] == 0.0 {
            m[k] = 0.0;
            m[k + 1] = 0.0;
        } else {
            let alpha = m[k] / delta[k];
            let beta = m[k + 1] / delta[k];
            let s = alpha * alpha + beta * beta;
            if s > 9.0 {
                let tau = 3.0 / s.sqrt();
                m[k] = tau * alpha * delta[k];
                m[k + 1] = tau * beta * delta[k];
            }
        }
    }
    let k = (0..n - 1).find(|&k| x < points[k + 1].0).unwrap();
    let (x0, y0, x1, y1) = (points[k].0, points[k].1, points[k + 1].0, points[k + 1].1);
    let h = x1 - x0;
    let t = (x - x0) / h;
    let h00 = (1.0 + 2.0 * t) * (1.0 - t).powi(2);
    let h10 = t * (1.0 - t).powi(2);
    let h01 = t * t * (3.0 - 2.0 * t);
    let h11 = t * t * (t - 1.0);
    h00 * y0 + h10 * h * m[k] + h01 * y1 + h11 * h * m[k + 1]
}

#[test]
fn curves_match_float64_monotone_cubic() {
    let cases: [(&str, &[(f64, f64)]); 4] = [
        ("rgb", &[(0.0, 0.0), (0.25, 0.18), (0.75, 0.85), (1.0, 1.0)]),
        ("green", &[(0.0, 0.1), (0.5, 0.4), (1.0, 0.9)]),
        ("red", &[(0.1, 1.0), (0.9, 0.0)]),
        (
            "blue",
            &[(0.0, 0.0), (0.2, 0.7), (0.22, 0.71), (0.6, 0.2), (1.0, 1.0)],
        ),
    ];
    for (channel, points) in cases {
        let spec = json!({"op": "curves", "channel": channel, "points": points.iter().map(|p| [p.0, p.1]).collect::<Vec<_>>()});
        let o = op(spec.clone());
        let idx = ["red", "green", "blue"].iter().position(|c| *c == channel);
        each_size(|img, _| {
            let want = reference_point(img, |mut px| {
                for (i, c) in px.iter_mut().enumerate().take(3) {
                    if idx.is_none_or(|j| j == i) {
                        *c = reference_curve(points, *c);
                    }
                }
                px
            });
            assert_close(&spec.to_string(), &apply(&o, img), &want, 1, 0.01);
        });
    }
}

/// Pixelate in float64: each block's premultiplied mean, laid from the
/// rectangle's corner, the source untouched outside it.
fn reference_pixelate(img: &RgbaImage, size: u32, r: (u32, u32, u32, u32)) -> RgbaImage {
    let (rx, ry, rw, rh) = r;
    let mut out = img.clone();
    for by in (ry..ry + rh).step_by(size as usize) {
        for bx in (rx..rx + rw).step_by(size as usize) {
            let (x1, y1) = ((bx + size).min(rx + rw), (by + size).min(ry + rh));
            let (mut a, mut c, mut n) = (0.0, [0.0f64; 3], 0.0);
            for y in by..y1 {
                for x in bx..x1 {
                    let p = img.get_pixel(x, y).0.map(f64::from);
                    a += p[3];
                    for i in 0..3 {
                        c[i] += p[i] * p[3];
                    }
                    n += 1.0;
                }
            }
            let px = if a == 0.0 {
                [0u8; 4]
            } else {
                let r = |v: f64| (v + 0.5).floor() as u8;
                [r(c[0] / a), r(c[1] / a), r(c[2] / a), r(a / n)]
            };
            for y in by..y1 {
                for x in bx..x1 {
                    out.put_pixel(x, y, Rgba(px));
                }
            }
        }
    }
    out
}

#[test]
fn pixelate_matches_float64_block_means() {
    each_size(|img, (w, h)| {
        for size in [2, 3, 16] {
            let o = op(json!({"op": "pixelate", "size": size}));
            let want = reference_pixelate(img, size, (0, 0, w, h));
            assert_close(&format!("pixelate {size}"), &apply(&o, img), &want, 1, 0.01);
        }
        if w >= 3 && h >= 3 {
            let r = (1, 1, w - 2, h - 2);
            let o = op(
                json!({"op": "pixelate", "size": 4, "x": r.0, "y": r.1, "width": r.2, "height": r.3}),
            );
            let got = apply(&o, img);
            assert_close(
                "pixelate rect",
                &got,
                &reference_pixelate(img, 4, r),
                1,
                0.01,
            );
            // Outside the rectangle nothing changes.
            assert_eq!(got.get_pixel(0, 0), img.get_pixel(0, 0));
            assert_eq!(got.get_pixel(w - 1, h - 1), img.get_pixel(w - 1, h - 1));
        }
    });
    // A transparent pixel lends no colour to its block.
    let img = RgbaImage::from_fn(2, 1, |x, _| {
        if x == 0 {
            Rgba([255, 0, 0, 0])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let got = apply(&op(json!({"op": "pixelate", "size": 2})), &img);
    assert_eq!(got.get_pixel(0, 0).0, [0, 0, 255, 128]);
}

/// The bounding box of the pixels farther than `t` levels from `bg` in any
/// channel, by a scan of every pixel.
fn reference_trim_box(img: &RgbaImage, bg: [u8; 4], t: u8) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if (0..4).any(|i| (i32::from(p[i]) - i32::from(bg[i])).abs() > i32::from(t)) {
            b = Some(match b {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    b.map(|(x0, y0, x1, y1)| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

#[test]
fn trim_keeps_the_bounding_box_of_the_content() {
    let border = [250, 250, 245, 255];
    for (i, &(w, h)) in EDGE_SIZES.iter().enumerate() {
        let content = test_image(w, h, i as u32 + 40, i % 2 == 0);
        // The content on a border 3 left, 1 above, 5 right and 2 below, with
        // a few pixels just within the threshold sprinkled on the border.
        let mut img = RgbaImage::from_pixel(w + 8, h + 3, Rgba(border));
        image::imageops::overlay(&mut img, &content, 3, 1);
        img.put_pixel(0, h + 2, Rgba([255, 255, 250, 255]));
        for (spec, bg, t) in [
            (json!({"op": "trim"}), border, 10u8),
            (json!({"op": "trim", "threshold": 0.0}), border, 0),
            (
                json!({"op": "trim", "background": "#000000", "threshold": 0.5}),
                [0, 0, 0, 255],
                128,
            ),
        ] {
            let want = reference_trim_box(&img, bg, t);
            let o = op(spec.clone());
            let got = o.run_cpu(
                Frame {
                    img: img.clone(),
                    orientation: 1,
                },
                &OpContext::default(),
            );
            match want {
                None => assert_eq!(got.unwrap_err().code.as_str(), "invalid_param", "{spec}"),
                Some((x, y, bw, bh)) => {
                    let got = got.unwrap().img;
                    let want = image::imageops::crop_imm(&img, x, y, bw, bh).to_image();
                    assert_eq!(got.dimensions(), want.dimensions(), "{spec} on {w}x{h}");
                    assert!(got == want, "{spec} on {w}x{h}");
                }
            }
        }
    }
}

/// A 3D LUT lookup in float64 on the grid `grid(r, g, b)`: trilinear as the
/// weighted sum of the cell's 8 corners; tetrahedral as the walk from the
/// cell's low corner to its high one, one axis at a time in decreasing
/// order of the fractional position (Kasson et al.), not the six-case
/// table the op uses.
fn reference_lut(
    n: usize,
    grid: &dyn Fn(usize, usize, usize) -> [f64; 3],
    rgb: [f64; 3],
    tetra: bool,
) -> [f64; 3] {
    let top = (n - 1) as f64;
    let mut i = [0usize; 3];
    let mut f = [0f64; 3];
    for c in 0..3 {
        let t = rgb[c].clamp(0.0, 1.0) * top;
        i[c] = (t.floor() as usize).min(n - 2);
        f[c] = t - i[c] as f64;
    }
    let at = |d: [usize; 3]| grid(i[0] + d[0], i[1] + d[1], i[2] + d[2]);
    let mut out = [0.0; 3];
    if tetra {
        let mut axes = [0usize, 1, 2];
        axes.sort_by(|&a, &b| f[b].partial_cmp(&f[a]).unwrap());
        let mut corner = [0usize; 3];
        let mut weights = vec![(1.0 - f[axes[0]], corner)];
        for k in 0..3 {
            corner[axes[k]] = 1;
            let next = if k < 2 { f[axes[k + 1]] } else { 0.0 };
            weights.push((f[axes[k]] - next, corner));
        }
        for (w, d) in weights {
            let v = at(d);
            for c in 0..3 {
                out[c] += w * v[c];
            }
        }
    } else {
        for d in 0..8usize {
            let d = [d & 1, (d >> 1) & 1, (d >> 2) & 1];
            let w: f64 = (0..3)
                .map(|c| if d[c] == 1 { f[c] } else { 1.0 - f[c] })
                .product();
            let v = at(d);
            for c in 0..3 {
                out[c] += w * v[c];
            }
        }
    }
    out
}

#[test]
fn lut_matches_float64_interpolation() {
    for (n, mode) in [
        (9, "tetrahedral"),
        (9, "trilinear"),
        (2, "tetrahedral"),
        (17, "trilinear"),
    ] {
        let mut o = op(json!({"op": "lut", "object": "grade.cube", "interpolation": mode}));
        let ctx = OpContext {
            luts: HashMap::from([("grade.cube".to_string(), Arc::new(common::grade_cube(n)))]),
            ..Default::default()
        };
        o.bind(&ctx).unwrap();
        // The grid as the text holds it: six decimals.
        let v = |i: usize| i as f64 / (n - 1) as f64;
        let grid = |r: usize, g: usize, b: usize| {
            common::grade(v(r), v(g), v(b)).map(|x| (x * 1e6).round() / 1e6)
        };
        each_size(|img, _| {
            let want = reference_point(img, |[r, g, b, a]| {
                let [r, g, b] = reference_lut(n, &grid, [r, g, b], mode == "tetrahedral");
                [r, g, b, a]
            });
            assert_close(&format!("lut {n} {mode}"), &apply(&o, img), &want, 1, 0.02);
        });
    }
    // On grid points the LUT returns the grid exactly (within rounding).
    let mut o = op(json!({"op": "lut", "object": "grade.cube"}));
    let ctx = OpContext {
        luts: HashMap::from([("grade.cube".to_string(), Arc::new(common::grade_cube(2)))]),
        ..Default::default()
    };
    o.bind(&ctx).unwrap();
    let img = RgbaImage::from_pixel(1, 1, Rgba([255, 0, 255, 200]));
    let want =
        common::grade(1.0, 0.0, 1.0).map(|x| (x.clamp(0.0, 1.0) * 255.0 + 0.5).floor() as u8);
    assert_eq!(
        apply(&o, &img).get_pixel(0, 0).0,
        [want[0], want[1], want[2], 200]
    );
}

/// A grey field with one busy, saturated square of `side` at `(sx, sy)`.
fn one_subject(w: u32, h: u32, sx: u32, sy: u32, side: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        if (sx..sx + side).contains(&x) && (sy..sy + side).contains(&y) {
            let v = ((x * 37 + y * 91) % 7) as u8 * 30;
            Rgba([230, v, 255 - v, 255])
        } else {
            Rgba([110, 112, 115, 255])
        }
    })
}

/// The offset of `part` inside `whole`, by exact pixel comparison.
fn find_inside(whole: &RgbaImage, part: &RgbaImage) -> Option<(u32, u32)> {
    let (pw, ph) = part.dimensions();
    for y in 0..=whole.height() - ph {
        for x in 0..=whole.width() - pw {
            if (0..ph)
                .all(|j| (0..pw).all(|i| whole.get_pixel(x + i, y + j) == part.get_pixel(i, j)))
            {
                return Some((x, y));
            }
        }
    }
    None
}

#[test]
fn crop_by_attention_and_entropy_keeps_a_single_subject() {
    for (w, h, sx, sy, side, cw, ch) in [
        (320, 200, 250, 140, 40, 100, 100),
        (320, 200, 8, 12, 30, 90, 60),
        (1200, 700, 700, 80, 120, 300, 300),
        (200, 600, 60, 500, 50, 120, 150),
    ] {
        let img = one_subject(w, h, sx, sy, side);
        for gravity in ["attention", "entropy"] {
            let o = op(json!({"op": "crop", "width": cw, "height": ch, "gravity": gravity}));
            let got = apply(&o, &img);
            assert_eq!(got.dimensions(), (cw, ch));
            // Where the crop came from: the subject must lie inside it.
            let (x, y) = find_inside(&img, &got).expect("the crop is a part of the image");
            assert!(
                x <= sx && x + cw >= sx + side && y <= sy && y + ch >= sy + side,
                "{gravity}: window ({x}, {y}) {cw}x{ch} misses the subject at ({sx}, {sy}) on {w}x{h}"
            );
        }
    }
    // The centre gravity is plain arithmetic.
    let img = test_image(33, 21, 3, false);
    let got = apply(
        &op(json!({"op": "crop", "width": 10, "height": 5, "gravity": "center"})),
        &img,
    );
    assert!(got == image::imageops::crop_imm(&img, 11, 8, 10, 5).to_image());
}

#[test]
fn resize_cover_by_attention_and_entropy_keeps_a_single_subject() {
    let (sx, sy, side) = (520, 200, 60);
    let img = one_subject(640, 300, sx, sy, side);
    let centred = apply(
        &op(json!({"op": "resize", "width": 100, "height": 100, "fit": "cover"})),
        &img,
    );
    for gravity in ["attention", "entropy"] {
        let o = op(
            json!({"op": "resize", "width": 100, "height": 100, "fit": "cover", "gravity": gravity}),
        );
        let Op::Resize(r) = &o else { unreachable!() };
        let [x, y, w, h] = r.geometry_on(&img).src_box;
        assert!(
            x <= f64::from(sx)
                && x + w >= f64::from(sx + side)
                && y <= f64::from(sy)
                && y + h >= f64::from(sy + side),
            "{gravity}: box ({x}, {y}) {w}x{h} misses the subject"
        );
        let got = apply(&o, &img);
        assert_eq!(got.dimensions(), (100, 100));
        assert!(got != centred, "{gravity}: the same as the centred cover");
    }
}

/// On real photographs, the attention window against libvips'
/// `smartcrop --interesting attention` on the same pixels: the overlap
/// (intersection over union) of the two windows, reported per photo.
#[test]
fn crop_by_attention_overlaps_libvips_smartcrop_on_photos() {
    let dir = tempfile::tempdir().unwrap();
    let photos = [
        "Aqua",
        "Blinds",
        "Dune",
        "FreshFlower",
        "Garden",
        "GreenMeadow",
        "LadyBird",
        "RainDrops",
        "Storm",
    ];
    let mut ious = Vec::new();
    for name in photos {
        let path = format!("{}/photos/{name}.jpg", env!("CARGO_MANIFEST_DIR"));
        let photo = image::open(&path)
            .unwrap_or_else(|e| {
                panic!("{path}: {e}: run scripts/fetch-photos.sh (scripts/test.sh does)")
            })
            .into_rgba8();
        let img = image::imageops::resize(
            &photo,
            480,
            480 * photo.height() / photo.width(),
            image::imageops::FilterType::Triangle,
        );
        let (w, h) = img.dimensions();
        let (cw, ch) = (w * 2 / 5, h * 3 / 5);
        let input = dir.path().join(format!("{name}.png"));
        let output = dir.path().join(format!("{name}-vips.png"));
        img.save(&input).unwrap();
        let status = std::process::Command::new("vips")
            .args([
                "smartcrop",
                input.to_str().unwrap(),
                output.to_str().unwrap(),
            ])
            .args([
                cw.to_string(),
                ch.to_string(),
                "--interesting".into(),
                "attention".into(),
            ])
            .status()
            .expect("vips (libvips-tools) is installed by scripts/test.sh");
        assert!(status.success());
        let theirs = image::open(&output).unwrap().into_rgba8();
        let (vx, vy) = find_inside(&img, &theirs).expect("vips' crop is a part of the image");
        let ours = apply(
            &op(json!({"op": "crop", "width": cw, "height": ch, "gravity": "attention"})),
            &img,
        );
        let (x, y) = find_inside(&img, &ours).unwrap();
        let ix = (x + cw).min(vx + cw).saturating_sub(x.max(vx));
        let iy = (y + ch).min(vy + ch).saturating_sub(y.max(vy));
        let inter = f64::from(ix * iy);
        let iou = inter / (2.0 * f64::from(cw * ch) - inter);
        println!("{name}: imgworker ({x}, {y}), libvips ({vx}, {vy}), overlap {iou:.2}");
        ious.push(iou);
    }
    let mean = ious.iter().sum::<f64>() / ious.len() as f64;
    println!("mean overlap with libvips smartcrop attention: {mean:.2}");
    assert!(
        mean >= MIN_MEAN_OVERLAP,
        "mean overlap {mean:.2} below {MIN_MEAN_OVERLAP}"
    );
}

/// The least mean overlap with libvips' attention windows the test accepts:
/// a guard against regressions, not agreement. The two differ by design
/// (imgworker takes the window with the most interest in total; libvips
/// centres the window on the peak of its blurred interest map): the mean
/// on the nine photos was 0.37 when this was written.
const MIN_MEAN_OVERLAP: f64 = 0.25;

#[test]
fn crop_copies_the_rectangle() {
    each_size(|img, (w, h)| {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (x0, y0) = (w - cw, h / 3);
        let ch = ch.min(h - y0);
        let got = apply(
            &op(json!({"op": "crop", "x": x0, "y": y0, "width": cw, "height": ch})),
            img,
        );
        assert_eq!(got.dimensions(), (cw, ch));
        for (x, y, p) in got.enumerate_pixels() {
            assert_eq!(p, img.get_pixel(x0 + x, y0 + y));
        }
    });
}

#[test]
fn flip_mirrors_exactly() {
    each_size(|img, (w, h)| {
        let hz = apply(&op(json!({"op": "flip", "axis": "horizontal"})), img);
        let vt = apply(&op(json!({"op": "flip", "axis": "vertical"})), img);
        for (x, y, p) in img.enumerate_pixels() {
            assert_eq!(hz.get_pixel(w - 1 - x, y), p);
            assert_eq!(vt.get_pixel(x, h - 1 - y), p);
        }
    });
}

#[test]
fn rotate_by_quarter_turns_maps_pixels() {
    each_size(|img, (w, h)| {
        let r90 = apply(&op(json!({"op": "rotate", "degrees": 90})), img);
        let r180 = apply(&op(json!({"op": "rotate", "degrees": 180})), img);
        let r270 = apply(&op(json!({"op": "rotate", "degrees": -90})), img);
        assert_eq!(r90.dimensions(), (h, w));
        assert_eq!(r270.dimensions(), (h, w));
        for (x, y, p) in img.enumerate_pixels() {
            assert_eq!(r90.get_pixel(h - 1 - y, x), p, "90");
            assert_eq!(r180.get_pixel(w - 1 - x, h - 1 - y), p, "180");
            assert_eq!(r270.get_pixel(y, w - 1 - x), p, "270");
        }
    });
}

/// Reference any-angle rotation: inverse mapping, bilinear in premultiplied
/// alpha, background outside, in float64.
fn reference_rotate(img: &RgbaImage, deg: f64, bg: [u8; 4], out: (u32, u32)) -> RgbaImage {
    let (s, c) = deg.to_radians().sin_cos();
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let tap = |x: i64, y: i64| -> [f64; 4] {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            bg.map(f)
        } else {
            img.get_pixel(x as u32, y as u32).0.map(f)
        }
    };
    RgbaImage::from_fn(out.0, out.1, |x, y| {
        let dx = f64::from(x) + 0.5 - f64::from(out.0) / 2.0;
        let dy = f64::from(y) + 0.5 - f64::from(out.1) / 2.0;
        let sx = dx * c + dy * s + w / 2.0 - 0.5;
        let sy = -dx * s + dy * c + h / 2.0 - 0.5;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let mut acc = [0.0; 4];
        for (tx, ty, wt) in [
            (x0, y0, (1.0 - fx) * (1.0 - fy)),
            (x0 + 1.0, y0, fx * (1.0 - fy)),
            (x0, y0 + 1.0, (1.0 - fx) * fy),
            (x0 + 1.0, y0 + 1.0, fx * fy),
        ] {
            let p = tap(tx as i64, ty as i64);
            for ch in 0..3 {
                acc[ch] += wt * p[3] * p[ch];
            }
            acc[3] += wt * p[3];
        }
        let a = acc[3];
        let rgb = if a > 0.0 {
            [acc[0] / a, acc[1] / a, acc[2] / a]
        } else {
            [0.0; 3]
        };
        Rgba([q(rgb[0]), q(rgb[1]), q(rgb[2]), q(a)])
    })
}

#[test]
fn rotate_by_any_angle_matches_reference() {
    for (deg, bg) in [
        (30.0, [255, 255, 255, 255]),
        (-17.5, [0, 0, 0, 0]),
        (135.0, [10, 20, 30, 255]),
    ] {
        let hex = format!("#{:02x}{:02x}{:02x}{:02x}", bg[0], bg[1], bg[2], bg[3]);
        let o = op(json!({"op": "rotate", "degrees": deg, "background": hex}));
        each_size(|img, _| {
            let got = apply(&o, img);
            let want = reference_rotate(img, deg, bg, got.dimensions());
            assert_close("rotate", &got, &want, 2, 0.05);
        });
    }
    // The canvas holds the whole rotated image: 100x50 at 30 degrees.
    let got = apply(
        &op(json!({"op": "rotate", "degrees": 30, "background": "#000"})),
        &test_image(100, 50, 1, false),
    );
    assert_eq!(got.dimensions(), (112, 94));
}

#[test]
fn auto_orient_applies_each_exif_orientation() {
    let o = op(json!({"op": "auto_orient"}));
    each_size(|img, (w, h)| {
        for orientation in 1..=8u8 {
            let got = apply_ctx(&o, img, orientation, &OpContext::default());
            let swapped = orientation >= 5;
            assert_eq!(
                got.dimensions(),
                if swapped { (h, w) } else { (w, h) },
                "orientation {orientation}"
            );
            for (x, y, p) in got.enumerate_pixels() {
                let (sx, sy) = match orientation {
                    1 => (x, y),
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (y, h - 1 - x),
                    7 => (w - 1 - y, h - 1 - x),
                    _ => (w - 1 - y, x),
                };
                assert_eq!(
                    p,
                    img.get_pixel(sx, sy),
                    "orientation {orientation} at ({x}, {y})"
                );
            }
        }
    });
}

#[test]
fn pad_places_image_on_colour() {
    each_size(|img, (w, h)| {
        let got = apply(
            &op(
                json!({"op": "pad", "top": 2, "right": 3, "bottom": 0, "left": 1, "color": "#ff000080"}),
            ),
            img,
        );
        assert_eq!(got.dimensions(), (w + 4, h + 2));
        for (x, y, p) in got.enumerate_pixels() {
            let inside = x >= 1 && x < 1 + w && y >= 2;
            let want = if inside {
                *img.get_pixel(x - 1, y - 2)
            } else {
                Rgba([255, 0, 0, 128])
            };
            assert_eq!(*p, want, "({x}, {y})");
        }
    });
}

/// A resampling filter by its documented definition.
fn reference_filter(name: &str) -> (fn(f64) -> f64, f64) {
    fn bilinear(x: f64) -> f64 {
        (1.0 - x.abs()).max(0.0)
    }
    fn catmull_rom(x: f64) -> f64 {
        let x = x.abs();
        if x < 1.0 {
            1.5 * x * x * x - 2.5 * x * x + 1.0
        } else if x < 2.0 {
            -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0
        } else {
            0.0
        }
    }
    fn lanczos3(x: f64) -> f64 {
        let sinc = |v: f64| {
            if v == 0.0 {
                1.0
            } else {
                (v * std::f64::consts::PI).sin() / (v * std::f64::consts::PI)
            }
        };
        if x.abs() < 3.0 {
            sinc(x) * sinc(x / 3.0)
        } else {
            0.0
        }
    }
    match name {
        "bilinear" => (bilinear, 1.0),
        "bicubic" => (catmull_rom, 2.0),
        _ => (lanczos3, 3.0),
    }
}

/// Float64 weights resampling `in0..in1` of an axis of `len` samples to
/// `out` samples: the filter centred on each output sample's centre,
/// stretched by the scale when shrinking, normalised over the taps that
/// fall inside the image.
fn reference_weights(name: &str, len: u32, in0: f64, in1: f64, out: u32) -> Vec<Vec<(usize, f64)>> {
    let (filter, support) = reference_filter(name);
    let scale = (in1 - in0) / f64::from(out);
    let stretch = scale.max(1.0);
    (0..out)
        .map(|i| {
            let centre = in0 + (f64::from(i) + 0.5) * scale;
            let lo = (centre - support * stretch).floor().max(0.0) as usize;
            let hi = ((centre + support * stretch).ceil() as usize).min(len as usize);
            let taps: Vec<(usize, f64)> = (lo..hi)
                .map(|j| (j, filter((j as f64 + 0.5 - centre) / stretch)))
                .collect();
            let sum: f64 = taps.iter().map(|t| t.1).sum();
            taps.into_iter().map(|(j, w)| (j, w / sum)).collect()
        })
        .collect()
}

/// A float64 linear-light resize of the box `[left, top, width, height]`
/// of `img` to `out`: sRGB decoded by its formula, alpha premultiplied,
/// filtered horizontally then vertically, divided by alpha (a pixel whose
/// alpha rounds to 0 is transparent black) and encoded.
fn reference_linear_resize(
    img: &RgbaImage,
    name: &str,
    bx: [f64; 4],
    out: (u32, u32),
) -> RgbaImage {
    let (w, h) = img.dimensions();
    let lin: Vec<[f64; 4]> = img
        .pixels()
        .map(|p| {
            let a = f(p[3]);
            let c = |k: usize| srgb_to_linear(f(p[k])) * a;
            [c(0), c(1), c(2), a]
        })
        .collect();
    let hw = reference_weights(name, w, bx[0], bx[0] + bx[2], out.0);
    let vw = reference_weights(name, h, bx[1], bx[1] + bx[3], out.1);
    let mut mid = vec![[0.0; 4]; (out.0 * h) as usize];
    for y in 0..h as usize {
        for (x, taps) in hw.iter().enumerate() {
            let m = &mut mid[y * out.0 as usize + x];
            for &(j, wt) in taps {
                let src = lin[y * w as usize + j];
                m.iter_mut().zip(src).for_each(|(m, s)| *m += s * wt);
            }
        }
    }
    RgbaImage::from_fn(out.0, out.1, |x, y| {
        let mut acc = [0.0; 4];
        for &(j, wt) in &vw[y as usize] {
            let src = mid[j * out.0 as usize + x as usize];
            acc.iter_mut().zip(src).for_each(|(a, s)| *a += s * wt);
        }
        let a = acc[3].clamp(0.0, 1.0);
        if q(a) == 0 {
            return Rgba([0; 4]);
        }
        let c = |k: usize| q(linear_to_srgb((acc[k] / a).clamp(0.0, 1.0)));
        Rgba([c(0), c(1), c(2), q(a)])
    })
}

/// `"linear": true` against a float64 linear-light resize, shrinking,
/// enlarging and cropping (`cover`), with and without alpha.
#[test]
fn linear_resize_matches_float64_linear_light() {
    each_size(|img, (w, h)| {
        for name in ["bilinear", "bicubic", "lanczos3"] {
            for (tw, th) in [(w.div_ceil(3), h.div_ceil(2)), (w * 2 + 1, h + 3)] {
                let got = apply(
                    &op(
                        json!({"op": "resize", "width": tw, "height": th, "fit": "fill",
                               "filter": name, "linear": true}),
                    ),
                    img,
                );
                let box_ = [0.0, 0.0, f64::from(w), f64::from(h)];
                let want = reference_linear_resize(img, name, box_, (tw, th));
                assert_close(
                    &format!("linear {name} {w}x{h} -> {tw}x{th}"),
                    &got,
                    &want,
                    1,
                    0.02,
                );
            }
            // `cover` to a square: the centred box, at a fractional offset.
            let side = (w.min(h) / 2).max(1);
            let got = apply(
                &op(
                    json!({"op": "resize", "width": side, "height": side, "fit": "cover",
                           "filter": name, "linear": true}),
                ),
                img,
            );
            let s = (f64::from(side) / f64::from(w)).max(f64::from(side) / f64::from(h));
            let (cw, ch) = (
                (f64::from(side) / s).min(f64::from(w)),
                (f64::from(side) / s).min(f64::from(h)),
            );
            let box_ = [(f64::from(w) - cw) / 2.0, (f64::from(h) - ch) / 2.0, cw, ch];
            let want = reference_linear_resize(img, name, box_, (side, side));
            assert_close(
                &format!("linear cover {name} {w}x{h} -> {side}"),
                &got,
                &want,
                1,
                0.02,
            );
        }
    });
}

/// What linear light is for: one-pixel black and white stripes shrunk 4x
/// average to half the light (sRGB level 188), where resampling the
/// encoded values gives level 128, a visibly darker grey.
#[test]
fn linear_resize_keeps_the_light_of_fine_detail() {
    let stripes = RgbaImage::from_fn(64, 64, |x, _| {
        let v = if x % 2 == 0 { 0 } else { 255 };
        Rgba([v, v, v, 255])
    });
    let half_light = q(linear_to_srgb(0.5));
    assert_eq!(half_light, 188);
    for filter in ["bilinear", "bicubic", "mitchell", "lanczos3"] {
        let shrink = |linear: bool| {
            apply(
                &op(json!({"op": "resize", "width": 16, "filter": filter, "linear": linear})),
                &stripes,
            )
        };
        let (lin, enc) = (shrink(true), shrink(false));
        // The middle, away from the edges' renormalised weights.
        for x in 3..13 {
            let (l, e) = (lin.get_pixel(x, 8)[0], enc.get_pixel(x, 8)[0]);
            assert!(l.abs_diff(half_light) <= 3, "{filter} linear at {x}: {l}");
            assert!(e.abs_diff(128) <= 3, "{filter} encoded at {x}: {e}");
        }
    }
}

#[test]
fn resize_fits_give_the_documented_sizes() {
    let img = test_image(400, 300, 3, false);
    let size = |v: serde_json::Value| apply(&op(v), &img).dimensions();
    assert_eq!(size(json!({"op": "resize", "width": 200})), (200, 150));
    assert_eq!(size(json!({"op": "resize", "height": 30})), (40, 30));
    assert_eq!(
        size(json!({"op": "resize", "width": 100, "height": 100})),
        (100, 75)
    );
    assert_eq!(
        size(json!({"op": "resize", "width": 100, "height": 100, "fit": "cover"})),
        (100, 100)
    );
    assert_eq!(
        size(json!({"op": "resize", "width": 100, "height": 100, "fit": "fill"})),
        (100, 100)
    );
    let contain = apply(
        &op(
            json!({"op": "resize", "width": 100, "height": 100, "fit": "contain", "background": "#00ff00"}),
        ),
        &img,
    );
    assert_eq!(contain.dimensions(), (100, 100));
    // Letterbox bands of 12 rows above and 13 below hold the background.
    assert_eq!(contain.get_pixel(50, 0).0, [0, 255, 0, 255]);
    assert_eq!(contain.get_pixel(50, 99).0, [0, 255, 0, 255]);
    // A constant image stays constant whatever the filter.
    let flat = RgbaImage::from_pixel(37, 23, Rgba([40, 90, 200, 255]));
    for filter in ["nearest", "bilinear", "bicubic", "mitchell", "lanczos3"] {
        let out = apply(
            &op(json!({"op": "resize", "width": 11, "filter": filter})),
            &flat,
        );
        assert!(out.pixels().all(|p| p.0 == [40, 90, 200, 255]), "{filter}");
    }
}

/// The float64 Gaussian of `sigma`: radius `ceil(3 sigma)`, normalised.
fn reference_gaussian(sigma: f64) -> (i64, Vec<f64>) {
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    (r, k.iter().map(|v| v / sum).collect())
}

/// Float64 Gaussian blur, clamp-to-edge, no intermediate rounding.
fn reference_blur(img: &RgbaImage, sigma: f64) -> Vec<[f64; 4]> {
    let (r, k) = reference_gaussian(sigma);
    let (w, h) = (img.width() as i64, img.height() as i64);
    let px = |x: i64, y: i64| {
        img.get_pixel(x.clamp(0, w - 1) as u32, y.clamp(0, h - 1) as u32)
            .0
            .map(f64::from)
    };
    let mut tmp = vec![[0.0; 4]; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0; 4];
            for (t, kv) in k.iter().enumerate() {
                let p = px(x + t as i64 - r, y);
                for c in 0..4 {
                    acc[c] += kv * p[c];
                }
            }
            tmp[(y * w + x) as usize] = acc;
        }
    }
    let mut out = vec![[0.0; 4]; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0; 4];
            for (t, kv) in k.iter().enumerate() {
                let sy = (y + t as i64 - r).clamp(0, h - 1);
                let p = tmp[(sy * w + x) as usize];
                for c in 0..4 {
                    acc[c] += kv * p[c];
                }
            }
            out[(y * w + x) as usize] = acc;
        }
    }
    out
}

fn to_image(w: u32, h: u32, v: &[[f64; 4]]) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba(v[(y * w + x) as usize].map(|c| (c.clamp(0.0, 255.0) + 0.5).floor() as u8))
    })
}

#[test]
fn blur_matches_float64_gaussian() {
    for sigma in [0.5, 1.5, 5.0] {
        let o = op(json!({"op": "blur", "sigma": sigma}));
        for (i, &(w, h)) in EDGE_SIZES.iter().enumerate() {
            let img = test_image(w, h, i as u32, false);
            let want = to_image(w, h, &reference_blur(&img, sigma));
            assert_close("blur", &apply(&o, &img), &want, 1, 0.3);
        }
    }
}

#[test]
fn blur_does_not_bleed_colour_from_transparent_pixels() {
    // Left half transparent red, right half opaque blue: premultiplied
    // filtering keeps red out of the blue.
    let img = RgbaImage::from_fn(40, 10, |x, _| {
        if x < 20 {
            Rgba([255, 0, 0, 0])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let got = apply(&op(json!({"op": "blur", "sigma": 3.0})), &img);
    for p in got.pixels().filter(|p| p[3] > 0) {
        assert!(p[0] <= 1, "red bled into {p:?}");
    }
}

#[test]
fn sharpen_matches_float64_unsharp_mask() {
    for (sigma, amount, threshold) in [(1.0, 0.6, 0.0), (2.0, 1.5, 0.0), (1.0, 1.0, 0.05)] {
        let o =
            op(json!({"op": "sharpen", "sigma": sigma, "amount": amount, "threshold": threshold}));
        for (i, &(w, h)) in EDGE_SIZES.iter().enumerate() {
            let img = test_image(w, h, i as u32 + 7, false);
            let blurred = reference_blur(&img, sigma);
            let want = RgbaImage::from_fn(w, h, |x, y| {
                let o = img.get_pixel(x, y).0;
                let b = blurred[(y * w + x) as usize];
                let mut p = o;
                for c in 0..3 {
                    let d = f64::from(o[c]) - b[c].clamp(0.0, 255.0);
                    if d.abs() >= threshold * 255.0 {
                        p[c] =
                            ((f64::from(o[c]) + amount * d).clamp(0.0, 255.0) + 0.5).floor() as u8;
                    }
                }
                Rgba(p)
            });
            // The threshold compares against a blur rounded to 8 bits, so
            // pixels right at the threshold may go either way.
            let (max_tol, mean_tol) = if threshold > 0.0 {
                (40, 0.5)
            } else {
                ((amount + 1.0).ceil() as u8, 0.5)
            };
            assert_close("sharpen", &apply(&o, &img), &want, max_tol, mean_tol);
        }
    }
    // Threshold 1 leaves every pixel as it was; amount 0 too.
    let img = test_image(33, 17, 5, true);
    assert_eq!(
        apply(&op(json!({"op": "sharpen", "threshold": 1.0})), &img),
        img
    );
    assert_eq!(
        apply(&op(json!({"op": "sharpen", "amount": 0.0})), &img),
        img
    );
}

/// Every blend mode and Porter-Duff operator of W3C Compositing and
/// Blending Level 1, in float64, written from the specification's
/// formulas (sections 9.1, 10.1 and 10.2).
const BLEND_MODES: [&str; 25] = [
    "normal",
    "multiply",
    "screen",
    "overlay",
    "darken",
    "lighten",
    "color_dodge",
    "color_burn",
    "hard_light",
    "soft_light",
    "difference",
    "exclusion",
    "hue",
    "saturation",
    "color",
    "luminosity",
    "src_over",
    "src_in",
    "src_out",
    "src_atop",
    "dst_over",
    "dst_in",
    "dst_out",
    "dst_atop",
    "xor",
];

fn spec_lum(c: [f64; 3]) -> f64 {
    0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]
}

fn spec_clip_color(c: [f64; 3]) -> [f64; 3] {
    let l = spec_lum(c);
    let n = c.iter().cloned().fold(f64::INFINITY, f64::min);
    let x = c.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut c = c;
    if n < 0.0 {
        c = c.map(|v| l + (v - l) * l / (l - n));
    }
    if x > 1.0 {
        c = c.map(|v| l + (v - l) * (1.0 - l) / (x - l));
    }
    c
}

fn spec_set_lum(c: [f64; 3], l: f64) -> [f64; 3] {
    let d = l - spec_lum(c);
    spec_clip_color(c.map(|v| v + d))
}

fn spec_sat(c: [f64; 3]) -> f64 {
    c.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - c.iter().cloned().fold(f64::INFINITY, f64::min)
}

/// SetSat as the specification writes it: the largest channel becomes `s`,
/// the middle one scaled, the smallest 0.
fn spec_set_sat(c: [f64; 3], s: f64) -> [f64; 3] {
    let mut idx = [0usize, 1, 2];
    idx.sort_by(|&a, &b| c[a].partial_cmp(&c[b]).unwrap());
    let (min, mid, max) = (idx[0], idx[1], idx[2]);
    let mut out = [0.0; 3];
    if c[max] > c[min] {
        out[mid] = (c[mid] - c[min]) * s / (c[max] - c[min]);
        out[max] = s;
    }
    out
}

fn spec_hard_light(cb: f64, cs: f64) -> f64 {
    if cs <= 0.5 {
        cb * 2.0 * cs
    } else {
        let s = 2.0 * cs - 1.0;
        cb + s - cb * s
    }
}

fn spec_blend(mode: &str, cb: [f64; 3], cs: [f64; 3]) -> [f64; 3] {
    let sep = |f: &dyn Fn(f64, f64) -> f64| [f(cb[0], cs[0]), f(cb[1], cs[1]), f(cb[2], cs[2])];
    match mode {
        "multiply" => sep(&|b, s| b * s),
        "screen" => sep(&|b, s| b + s - b * s),
        "overlay" => sep(&|b, s| spec_hard_light(s, b)),
        "darken" => sep(&f64::min),
        "lighten" => sep(&f64::max),
        "color_dodge" => sep(&|b, s| {
            if b == 0.0 {
                0.0
            } else if s == 1.0 {
                1.0
            } else {
                (b / (1.0 - s)).min(1.0)
            }
        }),
        "color_burn" => sep(&|b, s| {
            if b == 1.0 {
                1.0
            } else if s == 0.0 {
                0.0
            } else {
                1.0 - ((1.0 - b) / s).min(1.0)
            }
        }),
        "hard_light" => sep(&spec_hard_light),
        "soft_light" => sep(&|b, s| {
            if s <= 0.5 {
                b - (1.0 - 2.0 * s) * b * (1.0 - b)
            } else {
                let d = if b <= 0.25 {
                    ((16.0 * b - 12.0) * b + 4.0) * b
                } else {
                    b.sqrt()
                };
                b + (2.0 * s - 1.0) * (d - b)
            }
        }),
        "difference" => sep(&|b, s| (b - s).abs()),
        "exclusion" => sep(&|b, s| b + s - 2.0 * b * s),
        "hue" => spec_set_lum(spec_set_sat(cs, spec_sat(cb)), spec_lum(cb)),
        "saturation" => spec_set_lum(spec_set_sat(cb, spec_sat(cs)), spec_lum(cb)),
        "color" => spec_set_lum(cs, spec_lum(cb)),
        "luminosity" => spec_set_lum(cb, spec_lum(cs)),
        _ => cs,
    }
}

fn reference_composite(mode: &str, s: [f64; 4], b: [f64; 4]) -> [f64; 4] {
    let (sa, ba) = (s[3], b[3]);
    let cs = [s[0], s[1], s[2]];
    let cb = [b[0], b[1], b[2]];
    // Porter-Duff factors (Fa, Fb); the blend modes are source-over.
    let (fa, fb) = match mode {
        "src_in" => (ba, 0.0),
        "src_out" => (1.0 - ba, 0.0),
        "src_atop" => (ba, 1.0 - sa),
        "dst_over" => (1.0 - ba, 1.0),
        "dst_in" => (0.0, sa),
        "dst_out" => (0.0, 1.0 - sa),
        "dst_atop" => (1.0 - ba, sa),
        "xor" => (1.0 - ba, 1.0 - sa),
        _ => (1.0, 1.0 - sa),
    };
    let ao = sa * fa + ba * fb;
    if ao == 0.0 {
        return [0.0; 4];
    }
    // Cs' = (1 - ab) Cs + ab B(Cb, Cs); the operators composite Cs itself.
    let mixed = spec_blend(mode, cb, cs);
    let mut out = [0.0, 0.0, 0.0, ao];
    for c in 0..3 {
        let cs_mixed = (1.0 - ba) * cs[c] + ba * mixed[c];
        out[c] = (sa * fa * cs_mixed + ba * fb * cb[c]) / ao;
    }
    out
}

#[test]
fn composite_matches_w3c_compositing_in_every_mode() {
    for mode in BLEND_MODES {
        for &(w, h) in EDGE_SIZES {
            let base = test_image(w, h, 11, true);
            let top = test_image(w.div_ceil(2), h.div_ceil(2), 12, true);
            let ctx = OpContext {
                overlays: HashMap::from([("logo.png".to_string(), Arc::new(top.clone()))]),
                ..Default::default()
            };
            let (x0, y0) = (w as i64 / 3, -1);
            let o = op(
                json!({"op": "overlay", "source": "logo.png", "x": x0, "y": y0, "opacity": 0.7, "blend": mode}),
            );
            let got = apply_ctx(&o, &base, 1, &ctx);
            let want = RgbaImage::from_fn(w, h, |x, y| {
                let b = base.get_pixel(x, y).0;
                let (tx, ty) = (x as i64 - x0, y as i64 - y0);
                if tx < 0 || ty < 0 || tx >= top.width() as i64 || ty >= top.height() as i64 {
                    return Rgba(b);
                }
                let mut s = top.get_pixel(tx as u32, ty as u32).0.map(f);
                s[3] *= 0.7;
                Rgba(reference_composite(mode, s, b.map(f)).map(q))
            });
            assert_close(mode, &got, &want, 1, 0.02);
        }
    }
}

#[test]
fn composite_gravity_places_an_opaque_image_exactly() {
    let base = RgbaImage::from_pixel(10, 8, Rgba([0, 0, 0, 255]));
    let top = RgbaImage::from_pixel(4, 2, Rgba([200, 100, 50, 255]));
    let mut ctx = OpContext::default();
    ctx.overlays.insert("w.png".into(), Arc::new(top));
    for (gravity, (x0, y0)) in [
        ("north_west", (0, 0)),
        ("south_east", (6, 6)),
        ("center", (3, 3)),
        ("east", (6, 3)),
    ] {
        let got = apply_ctx(
            &op(json!({"op": "overlay", "source": "w.png", "gravity": gravity})),
            &base,
            1,
            &ctx,
        );
        for (x, y, p) in got.enumerate_pixels() {
            let inside = x >= x0 && x < x0 + 4 && y >= y0 && y < y0 + 2;
            assert_eq!(
                p.0,
                if inside {
                    [200, 100, 50, 255]
                } else {
                    [0, 0, 0, 255]
                },
                "{gravity} ({x}, {y})"
            );
        }
    }
}

/// Float64 separable Gaussian of an 8-bit plane, clamp-to-edge, each pass
/// rounded to whole levels (as `ops::mask` documents feathering).
fn reference_feather(m: &[u8], w: usize, h: usize, sigma: f64) -> Vec<u8> {
    let (r, k) = reference_gaussian(sigma);
    let pass = |src: &[u8], along_x: bool| -> Vec<u8> {
        let mut out = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (j, wk) in k.iter().enumerate() {
                    let d = j as i64 - r;
                    let (sx, sy) = if along_x {
                        ((x as i64 + d).clamp(0, w as i64 - 1) as usize, y)
                    } else {
                        (x, (y as i64 + d).clamp(0, h as i64 - 1) as usize)
                    };
                    acc += wk * f64::from(src[sy * w + sx]);
                }
                out[y * w + x] = (acc + 0.5).floor().clamp(0.0, 255.0) as u8;
            }
        }
        out
    };
    pass(&pass(m, true), false)
}

#[test]
fn mask_feathers_inverts_and_blends_as_float64_says() {
    for &(w, h) in EDGE_SIZES {
        let img = test_image(w, h, 21, true);
        let plane = common::soft_mask(w, h);
        let mut ctx = OpContext::default();
        ctx.masks.insert("m.png".into(), Arc::new(plane.clone()));
        for (feather, invert) in [(0.0, false), (2.5, false), (1.0, true)] {
            let masked = op(
                json!({"op": "invert", "mask": {"object": "m.png", "feather": feather, "invert": invert}}),
            );
            let got = apply_ctx(&masked, &img, 1, &ctx);
            let mut m = if feather > 0.0 {
                reference_feather(plane.as_raw(), w as usize, h as usize, feather)
            } else {
                plane.as_raw().clone()
            };
            if invert {
                m.iter_mut().for_each(|v| *v = 255 - *v);
            }
            let want = RgbaImage::from_fn(w, h, |x, y| {
                let p = img.get_pixel(x, y).0;
                let inv = [255 - p[0], 255 - p[1], 255 - p[2], p[3]];
                let a = f64::from(m[(y * w + x) as usize]) / 255.0;
                Rgba(std::array::from_fn(|c| {
                    (f64::from(p[c]) * (1.0 - a) + f64::from(inv[c]) * a)
                        .round()
                        .clamp(0.0, 255.0) as u8
                }))
            });
            // Feathering in f32 may land a weight one level off the float64
            // one at a rounding edge; that moves a channel by at most 1.
            assert_close(
                &format!("mask {w}x{h} feather {feather} invert {invert}"),
                &got,
                &want,
                1,
                0.05,
            );
        }
    }
}

#[test]
fn mask_fit_places_the_plane_as_each_mode_says() {
    // A 4x2 mask whose left half is 255 and right half 0, on an 8x8 image.
    let plane = image::GrayImage::from_fn(4, 2, |x, _| image::Luma([if x < 2 { 255 } else { 0 }]));
    let mut ctx = OpContext::default();
    ctx.masks.insert("m.png".into(), Arc::new(plane));
    let black = RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 255]));
    let run = |fit: &str| {
        apply_ctx(
            &op(json!({"op": "invert", "mask": {"object": "m.png", "fit": fit}})),
            &black,
            1,
            &ctx,
        )
    };
    let level = |img: &RgbaImage, x: u32, y: u32| img.get_pixel(x, y).0[0];
    // fill: the left columns are inverted to white on every row, the right ones untouched.
    let fill = run("fill");
    for y in 0..8 {
        assert_eq!(level(&fill, 0, y), 255, "fill row {y}");
        assert_eq!(level(&fill, 7, y), 0, "fill row {y}");
    }
    // contain: an 8x4 band in rows 2..6; rows outside it are unmasked.
    let contain = run("contain");
    assert_eq!(level(&contain, 0, 3), 255);
    assert_eq!(level(&contain, 0, 0), 0);
    assert_eq!(level(&contain, 0, 7), 0);
    // cover: the middle 2x2 of the mask covers the image: left half white.
    let cover = run("cover");
    assert_eq!(level(&cover, 0, 0), 255);
    assert_eq!(level(&cover, 7, 7), 0);
    // Without a fit, another size is refused with a message that says how.
    let err = op(json!({"op": "invert", "mask": {"object": "m.png"}}))
        .run_cpu(
            Frame {
                img: black.clone(),
                orientation: 1,
            },
            &ctx,
        )
        .unwrap_err();
    assert!(err.message.contains("fit"), "{}", err.message);
}
