//! Colour adjustment: exposure, brightness, contrast, saturation, hue, gamma.
//!
//! Applied in that order to gamma-encoded RGB in `0..=1`, clamping after each
//! step (alpha untouched):
//! 1. exposure `e` stops, in linear light: `lin2srgb(srgb2lin(c) * 2^e)`;
//! 2. brightness `b` and contrast `k`: `(c + b - 0.5) * k + 0.5`;
//! 3. saturation `s` then hue `h` degrees, as the W3C filter-effects matrices
//!    (`saturate`, `hueRotate`), combined into one 3x3 matrix;
//! 4. gamma `g`: `c^(1/g)` (above 1 brightens).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_range;
use super::point::{map_block, mat3, PointOp, PointOperation};
use crate::config::Limits;
use crate::error::ParamError;

/// Smallest `brightness`.
pub(crate) const MIN_BRIGHTNESS: f64 = -1.0;
/// Largest `brightness`.
pub(crate) const MAX_BRIGHTNESS: f64 = 1.0;
/// Smallest `contrast`.
pub(crate) const MIN_CONTRAST: f64 = 0.0;
/// Largest `contrast`.
pub(crate) const MAX_CONTRAST: f64 = 4.0;
/// Smallest `saturation` (grey).
pub(crate) const MIN_SATURATION: f64 = 0.0;
/// Largest `saturation`.
pub(crate) const MAX_SATURATION: f64 = 4.0;
/// Smallest `hue`, in degrees.
pub(crate) const MIN_HUE: f64 = -360.0;
/// Largest `hue`, in degrees.
pub(crate) const MAX_HUE: f64 = 360.0;
/// Smallest `gamma`.
pub(crate) const MIN_GAMMA: f64 = 0.1;
/// Largest `gamma`.
pub(crate) const MAX_GAMMA: f64 = 10.0;
/// Smallest `exposure`, in stops.
pub(crate) const MIN_EXPOSURE: f64 = -10.0;
/// Largest `exposure`, in stops.
pub(crate) const MAX_EXPOSURE: f64 = 10.0;

/// Parameters of `adjust`; at least one must be given (a rule the JSON
/// Schema does not express).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjustParams {
    /// Added to each channel, `-1..=1`. Default 0. Give at least one of the
    /// six parameters (not expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_BRIGHTNESS, max = MAX_BRIGHTNESS))]
    pub brightness: Option<f64>,
    /// Scale around mid-grey, `0..=4`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_CONTRAST, max = MAX_CONTRAST))]
    pub contrast: Option<f64>,
    /// `0` is grey, `1` unchanged, up to `4`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_SATURATION, max = MAX_SATURATION))]
    pub saturation: Option<f64>,
    /// Hue rotation in degrees, `-360..=360`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_HUE, max = MAX_HUE))]
    pub hue: Option<f64>,
    /// Gamma, `0.1..=10`; above 1 brightens. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_GAMMA, max = MAX_GAMMA))]
    pub gamma: Option<f64>,
    /// Exposure in stops, `-10..=10`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_EXPOSURE, max = MAX_EXPOSURE))]
    pub exposure: Option<f64>,
}

/// A validated `adjust`, with its matrix precomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjust {
    /// `2^exposure`, or `None` when exposure is 0.
    pub(crate) exposure_gain: Option<f32>,
    /// Brightness offset.
    pub brightness: f32,
    /// Contrast factor.
    pub contrast: f32,
    /// Saturation then hue, row-major; `None` when both are identity.
    pub(crate) matrix: Option<[[f32; 3]; 3]>,
    /// `1/gamma`, or `None` when gamma is 1.
    pub(crate) inv_gamma: Option<f32>,
}

/// The W3C `saturate` matrix.
pub(crate) fn saturation_matrix(s: f64) -> [[f64; 3]; 3] {
    [
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
    ]
}

/// The W3C `hueRotate` matrix for `deg` degrees.
pub(crate) fn hue_matrix(deg: f64) -> [[f64; 3]; 3] {
    let (sin, cos) = deg.to_radians().sin_cos();
    [
        [
            0.213 + cos * 0.787 - sin * 0.213,
            0.715 - cos * 0.715 - sin * 0.715,
            0.072 - cos * 0.072 + sin * 0.928,
        ],
        [
            0.213 - cos * 0.213 + sin * 0.143,
            0.715 + cos * 0.285 + sin * 0.140,
            0.072 - cos * 0.072 - sin * 0.283,
        ],
        [
            0.213 - cos * 0.213 - sin * 0.787,
            0.715 - cos * 0.715 + sin * 0.715,
            0.072 + cos * 0.928 + sin * 0.072,
        ],
    ]
}

fn mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// sRGB decoding (IEC 61966-2-1).
#[inline]
pub fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// sRGB encoding (IEC 61966-2-1).
#[inline]
pub fn linear_to_srgb(c: f32) -> f32 {
    if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

impl PointOperation for Adjust {
    const NAME: &'static str = "adjust";
    const SUMMARY: &'static str =
        "exposure (in linear light), brightness, contrast, saturation, hue and gamma, in that order";
    type Params = AdjustParams;
    const SHADER: &'static str = include_str!("../../shaders/adjust.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "adjust", "brightness": 0.05, "contrast": 1.1, "saturation": 1.2}"#,
        r#"{"op": "adjust", "brightness": 0.2, "contrast": 1.3}"#,
        r#"{"op": "adjust", "saturation": 1.6, "hue": 40}"#,
        r#"{"op": "adjust", "saturation": 0.0}"#,
        r#"{"op": "adjust", "gamma": 2.2}"#,
        r#"{"op": "adjust", "gamma": 0.5, "exposure": 0.7}"#,
        r#"{"op": "adjust", "brightness": -0.3, "contrast": 0.6, "saturation": 1.2, "hue": -75, "gamma": 1.4, "exposure": -0.5}"#,
    ];

    fn validate(p: &AdjustParams, _: &Limits) -> Result<Self, ParamError> {
        if *p == AdjustParams::default() {
            return Err(ParamError::new(
                "",
                "give at least one of brightness, contrast, saturation, hue, gamma, exposure",
            ));
        }
        let brightness = check_range(
            "brightness",
            p.brightness.unwrap_or(0.0),
            MIN_BRIGHTNESS,
            MAX_BRIGHTNESS,
        )?;
        let contrast = check_range(
            "contrast",
            p.contrast.unwrap_or(1.0),
            MIN_CONTRAST,
            MAX_CONTRAST,
        )?;
        let saturation = check_range(
            "saturation",
            p.saturation.unwrap_or(1.0),
            MIN_SATURATION,
            MAX_SATURATION,
        )?;
        let hue = check_range("hue", p.hue.unwrap_or(0.0), MIN_HUE, MAX_HUE)?;
        let gamma = check_range("gamma", p.gamma.unwrap_or(1.0), MIN_GAMMA, MAX_GAMMA)?;
        let exposure = check_range(
            "exposure",
            p.exposure.unwrap_or(0.0),
            MIN_EXPOSURE,
            MAX_EXPOSURE,
        )?;
        let matrix = (saturation != 1.0 || hue != 0.0).then(|| {
            let m = mul(&hue_matrix(hue), &saturation_matrix(saturation));
            m.map(|row| row.map(|v| v as f32))
        });
        Ok(Self {
            exposure_gain: (exposure != 0.0).then(|| 2f64.powf(exposure) as f32),
            brightness: brightness as f32,
            contrast: contrast as f32,
            matrix,
            inv_gamma: (gamma != 1.0).then(|| (1.0 / gamma) as f32),
        })
    }
}

impl PointOp for Adjust {
    fn stage_values(&self) -> Vec<f32> {
        let mut v = vec![
            self.exposure_gain.unwrap_or(0.0),
            self.brightness,
            self.contrast,
            if self.matrix.is_some() { 1.0 } else { 0.0 },
        ];
        v.extend(self.matrix.unwrap_or_default().iter().flatten());
        v.push(self.inv_gamma.unwrap_or(0.0));
        v
    }

    /// One pixel through the same stages as [`PointOp::apply_block`], so
    /// the order of the steps is written once.
    fn apply(&self, px: [f32; 4]) -> [f32; 4] {
        let mut one = [px];
        self.apply_block(&mut one);
        one[0]
    }

    /// Exposure, brightness, contrast and gamma map each channel on its
    /// own; saturation and hue (the matrix) mix them.
    fn per_channel(&self) -> bool {
        self.matrix.is_none()
    }

    fn apply_block(&self, block: &mut [[f32; 4]]) {
        if let Some(gain) = self.exposure_gain {
            map_block(block, |px| exposure(px, gain));
        }
        if self.brightness != 0.0 || self.contrast != 1.0 {
            let (b, k) = (self.brightness, self.contrast);
            map_block(block, |px| brightness_contrast(px, b, k));
        }
        if let Some(m) = &self.matrix {
            map_block(block, |px| matrix(px, m));
        }
        if let Some(g) = self.inv_gamma {
            map_block(block, |px| gamma(px, g));
        }
    }
}

/// Step 1: exposure by `gain` in linear light.
#[inline]
fn exposure([r, g, b, a]: [f32; 4], gain: f32) -> [f32; 4] {
    let f = |v| linear_to_srgb((srgb_to_linear(v) * gain).clamp(0.0, 1.0));
    [f(r), f(g), f(b), a]
}

/// Step 2: brightness `b` and contrast `k`.
#[inline]
fn brightness_contrast([r, g, bl, a]: [f32; 4], b: f32, k: f32) -> [f32; 4] {
    let f = |v: f32| ((v + b - 0.5) * k + 0.5).clamp(0.0, 1.0);
    [f(r), f(g), f(bl), a]
}

/// Step 3: the saturation and hue matrix.
#[inline]
fn matrix(px: [f32; 4], m: &[[f32; 3]; 3]) -> [f32; 4] {
    let [r, g, b, a] = mat3(m, px);
    [r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0), a]
}

/// Step 4: gamma, as `c^(1/g)`.
#[inline]
fn gamma([r, g, b, a]: [f32; 4], inv: f32) -> [f32; 4] {
    [r.powf(inv), g.powf(inv), b.powf(inv), a]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: AdjustParams) -> Result<Adjust, ParamError> {
        Adjust::validate(&p, &Limits::default())
    }

    #[test]
    fn validation() {
        assert!(v(AdjustParams {
            brightness: Some(0.1),
            ..Default::default()
        })
        .is_ok());
        assert!(v(AdjustParams::default()).is_err());
        for bad in [
            AdjustParams {
                brightness: Some(1.5),
                ..Default::default()
            },
            AdjustParams {
                contrast: Some(-0.1),
                ..Default::default()
            },
            AdjustParams {
                saturation: Some(f64::NAN),
                ..Default::default()
            },
            AdjustParams {
                hue: Some(f64::INFINITY),
                ..Default::default()
            },
            AdjustParams {
                gamma: Some(0.0),
                ..Default::default()
            },
            AdjustParams {
                exposure: Some(11.0),
                ..Default::default()
            },
        ] {
            assert!(v(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hue_zero_and_saturation_one_are_identity() {
        let m = mul(&hue_matrix(0.0), &saturation_matrix(1.0));
        for (i, row) in m.iter().enumerate() {
            for (j, x) in row.iter().enumerate() {
                assert!((x - if i == j { 1.0 } else { 0.0 }).abs() < 1e-3, "{m:?}");
            }
        }
    }

    #[test]
    fn srgb_round_trips() {
        for i in 0..=255 {
            let c = i as f32 / 255.0;
            assert!((linear_to_srgb(srgb_to_linear(c)) - c).abs() < 1e-5);
        }
    }
}
