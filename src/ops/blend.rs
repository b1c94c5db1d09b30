//! Blend modes and compositing operators: W3C Compositing and Blending
//! Level 1, on straight-alpha colours in `0..=1`.
//!
//! A blend mode `B(Cb, Cs)` mixes the source colour `Cs` with the backdrop
//! `Cb` where both are present, then composites source-over:
//! `as' = as`, `ao = as + ab (1 - as)`,
//! `Co = (as (1 - ab) Cs + as ab B + (1 - as) ab Cb) / ao`.
//! A Porter-Duff operator composites the plain source (`B = Cs`) with the
//! operator's factors `Fa`, `Fb`: `ao = as Fa + ab Fb`,
//! `Co = (as Fa Cs + ab Fb Cb) / ao` (`src_over` equals `normal`).
//! A transparent result (`ao = 0`) is `0, 0, 0, 0`.
//!
//! The separable modes apply per channel (spec section 10.1); `hue`,
//! `saturation`, `color` and `luminosity` work on the whole colour with
//! `Lum = 0.3 R + 0.59 G + 0.11 B` (section 10.2). The shader
//! (`shaders/overlay.wgsl`) has the same formulas in the same order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::gpu::uniform::GpuEnum;

/// A blend mode or compositing operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Blend {
    /// Source over, `B = Cs`.
    #[default]
    Normal,
    /// Darkens: `Cs * Cb`.
    Multiply,
    /// Lightens: `Cs + Cb - Cs * Cb`.
    Screen,
    /// `hard_light` with source and backdrop swapped.
    Overlay,
    /// The darker of each channel.
    Darken,
    /// The lighter of each channel.
    Lighten,
    /// Brightens the backdrop towards the source: `Cb / (1 - Cs)`.
    ColorDodge,
    /// Darkens the backdrop towards the source: `1 - (1 - Cb) / Cs`.
    ColorBurn,
    /// Multiply or screen, by the source.
    HardLight,
    /// A softer `hard_light`.
    SoftLight,
    /// `|Cb - Cs|`.
    Difference,
    /// `Cb + Cs - 2 Cb Cs`.
    Exclusion,
    /// The source's hue with the backdrop's saturation and luminosity.
    Hue,
    /// The source's saturation with the backdrop's hue and luminosity.
    Saturation,
    /// The source's hue and saturation with the backdrop's luminosity.
    Color,
    /// The source's luminosity with the backdrop's hue and saturation.
    Luminosity,
    /// Porter-Duff source over (the same as `normal`).
    SrcOver,
    /// The source where the backdrop is.
    SrcIn,
    /// The source where the backdrop is not.
    SrcOut,
    /// The source over the backdrop, only where the backdrop is.
    SrcAtop,
    /// The backdrop over the source.
    DstOver,
    /// The backdrop where the source is.
    DstIn,
    /// The backdrop where the source is not.
    DstOut,
    /// The backdrop over the source, only where the source is.
    DstAtop,
    /// Each where the other is not.
    Xor,
}

impl Blend {
    /// The Porter-Duff factors `(Fa, Fb)` of an operator; `None` for a
    /// blend mode (source-over with its mix).
    #[inline]
    pub fn factors(self, sa: f32, ba: f32) -> Option<(f32, f32)> {
        Some(match self {
            Blend::SrcOver => (1.0, 1.0 - sa),
            Blend::SrcIn => (ba, 0.0),
            Blend::SrcOut => (1.0 - ba, 0.0),
            Blend::SrcAtop => (ba, 1.0 - sa),
            Blend::DstOver => (1.0 - ba, 1.0),
            Blend::DstIn => (0.0, sa),
            Blend::DstOut => (0.0, 1.0 - sa),
            Blend::DstAtop => (1.0 - ba, sa),
            Blend::Xor => (1.0 - ba, 1.0 - sa),
            _ => return None,
        })
    }

    /// The blend function `B(Cb, Cs)` of a mode on RGB.
    #[inline]
    pub fn mix(self, cs: [f32; 3], cb: [f32; 3]) -> [f32; 3] {
        let sep = |f: fn(f32, f32) -> f32| [f(cs[0], cb[0]), f(cs[1], cb[1]), f(cs[2], cb[2])];
        match self {
            Blend::Multiply => sep(|s, b| s * b),
            Blend::Screen => sep(|s, b| s + b - s * b),
            Blend::Overlay => sep(|s, b| hard_light(b, s)),
            Blend::Darken => sep(f32::min),
            Blend::Lighten => sep(f32::max),
            Blend::ColorDodge => sep(|s, b| {
                if b == 0.0 {
                    0.0
                } else if s >= 1.0 {
                    1.0
                } else {
                    (b / (1.0 - s)).min(1.0)
                }
            }),
            Blend::ColorBurn => sep(|s, b| {
                if b >= 1.0 {
                    1.0
                } else if s <= 0.0 {
                    0.0
                } else {
                    1.0 - ((1.0 - b) / s).min(1.0)
                }
            }),
            Blend::HardLight => sep(hard_light),
            Blend::SoftLight => sep(soft_light),
            Blend::Difference => sep(|s, b| (b - s).abs()),
            Blend::Exclusion => sep(|s, b| b + s - 2.0 * b * s),
            Blend::Hue => set_lum(set_sat(cs, sat(cb)), lum(cb)),
            Blend::Saturation => set_lum(set_sat(cb, sat(cs)), lum(cb)),
            Blend::Color => set_lum(cs, lum(cb)),
            Blend::Luminosity => set_lum(cb, lum(cs)),
            _ => cs,
        }
    }
}

/// `hard-light(Cb, Cs)`: multiply below source 0.5, screen above.
#[inline]
fn hard_light(s: f32, b: f32) -> f32 {
    if s <= 0.5 {
        b * (2.0 * s)
    } else {
        let s2 = 2.0 * s - 1.0;
        b + s2 - b * s2
    }
}

/// `soft-light(Cb, Cs)`.
#[inline]
fn soft_light(s: f32, b: f32) -> f32 {
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
}

/// Luminosity of the non-separable modes.
#[inline]
fn lum(c: [f32; 3]) -> f32 {
    0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]
}

/// Bring a colour with luminosity `l` back into `0..=1` along its hue.
#[inline]
fn clip_color(c: [f32; 3]) -> [f32; 3] {
    let l = lum(c);
    let n = c[0].min(c[1]).min(c[2]);
    let x = c[0].max(c[1]).max(c[2]);
    let mut c = c;
    if n < 0.0 && l - n > 0.0 {
        c = c.map(|v| l + (v - l) * l / (l - n));
    }
    if x > 1.0 && x - l > 0.0 {
        c = c.map(|v| l + (v - l) * (1.0 - l) / (x - l));
    }
    c
}

/// The colour shifted to luminosity `l`.
#[inline]
fn set_lum(c: [f32; 3], l: f32) -> [f32; 3] {
    let d = l - lum(c);
    clip_color(c.map(|v| v + d))
}

/// Saturation: the spread of the channels.
#[inline]
fn sat(c: [f32; 3]) -> f32 {
    c[0].max(c[1]).max(c[2]) - c[0].min(c[1]).min(c[2])
}

/// The colour's channels spread to saturation `s`, the smallest at 0.
#[inline]
fn set_sat(c: [f32; 3], s: f32) -> [f32; 3] {
    let n = c[0].min(c[1]).min(c[2]);
    let x = c[0].max(c[1]).max(c[2]);
    if x > n {
        c.map(|v| (v - n) * s / (x - n))
    } else {
        [0.0; 3]
    }
}

/// Composite one straight-alpha source pixel `s` (its alpha already scaled
/// by any opacity) onto the backdrop pixel `b`.
#[inline]
pub fn composite(blend: Blend, s: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    let (sa, ba) = (s[3], b[3]);
    let cs = [s[0], s[1], s[2]];
    let cb = [b[0], b[1], b[2]];
    if let Some((fa, fb)) = blend.factors(sa, ba) {
        let ao = sa * fa + ba * fb;
        if ao <= 0.0 {
            return [0.0; 4];
        }
        let c = |i: usize| (sa * fa * cs[i] + ba * fb * cb[i]) / ao;
        return [c(0), c(1), c(2), ao];
    }
    let ao = sa + ba * (1.0 - sa);
    if ao <= 0.0 {
        return [0.0; 4];
    }
    let mixed = blend.mix(cs, cb);
    let c =
        |i: usize| (sa * (1.0 - ba) * cs[i] + sa * ba * mixed[i] + (1.0 - sa) * ba * cb[i]) / ao;
    [c(0), c(1), c(2), ao]
}

impl GpuEnum for Blend {
    const PREFIX: &'static str = "BLEND";
    const ALL: &'static [Self] = &[
        Self::Normal,
        Self::Multiply,
        Self::Screen,
        Self::Overlay,
        Self::Darken,
        Self::Lighten,
        Self::ColorDodge,
        Self::ColorBurn,
        Self::HardLight,
        Self::SoftLight,
        Self::Difference,
        Self::Exclusion,
        Self::Hue,
        Self::Saturation,
        Self::Color,
        Self::Luminosity,
        Self::SrcOver,
        Self::SrcIn,
        Self::SrcOut,
        Self::SrcAtop,
        Self::DstOver,
        Self::DstIn,
        Self::DstOut,
        Self::DstAtop,
        Self::Xor,
    ];

    fn code(self) -> u32 {
        self as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_is_listed_once_with_its_own_code() {
        for (i, b) in Blend::ALL.iter().enumerate() {
            assert_eq!(b.code() as usize, i, "{b:?}");
        }
        assert_eq!(Blend::ALL.len(), 25);
    }

    #[test]
    fn src_over_is_normal() {
        let s = [0.2, 0.7, 0.4, 0.6];
        let b = [0.9, 0.1, 0.5, 0.8];
        let n = composite(Blend::Normal, s, b);
        let o = composite(Blend::SrcOver, s, b);
        for i in 0..4 {
            assert!((n[i] - o[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn non_separable_results_stay_in_range() {
        let colours = [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 1.0],
            [0.5, 0.5, 0.5],
            [0.9, 0.95, 0.1],
        ];
        for mode in [
            Blend::Hue,
            Blend::Saturation,
            Blend::Color,
            Blend::Luminosity,
        ] {
            for s in colours {
                for b in colours {
                    for v in mode.mix(s, b) {
                        assert!(
                            (-1e-6..=1.0 + 1e-6).contains(&v),
                            "{mode:?} {s:?} {b:?}: {v}"
                        );
                    }
                }
            }
        }
    }
}
