//! Levels: input black and white points, a midtone gamma and an output
//! range, for the colour channels together or one of them.
//!
//! `v = clamp((c - black) / (white - black), 0, 1) ^ (1 / gamma)`, then
//! `output_black + v * (output_white - output_black)`; a gamma above 1
//! brightens the midtones, as in image editors. Applied through a tone
//! table ([`super::tone`]), fused with the other per-pixel ops. Per-channel
//! levels are several `levels` ops, one per channel, fused into the same
//! pass.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_range;
use super::point::PointOperation;
use super::tone::{Channel, ToneOp, ToneTable};
use crate::config::Limits;
use crate::error::ParamError;

/// Smallest `gamma` of `levels`.
pub(crate) const MIN_GAMMA: f64 = 0.1;
/// Largest `gamma` of `levels`.
pub(crate) const MAX_GAMMA: f64 = 10.0;

/// Parameters of `levels`. At least one besides `channel` must be given,
/// and `black` must be below `white` (rules the JSON Schema does not
/// express).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LevelsParams {
    /// The channels changed: `rgb` (default), `red`, `green` or `blue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Input black point, `0` up to (not including) `1`: this and below
    /// become `output_black`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0), extend("exclusiveMaximum" = 1.0))]
    pub black: Option<f64>,
    /// Input white point, above `0` up to `1`: this and above become
    /// `output_white`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub white: Option<f64>,
    /// Midtone gamma, `0.1..=10`; above 1 brightens. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_GAMMA, max = MAX_GAMMA))]
    pub gamma: Option<f64>,
    /// Output level of black, `0..=1`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub output_black: Option<f64>,
    /// Output level of white, `0..=1` (below `output_black` inverts).
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub output_white: Option<f64>,
}

/// A validated `levels`, as its tone table.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    /// The sampled levels function.
    pub(crate) tone: ToneTable,
}

/// The levels function in float64, the one the table samples.
pub fn levels(c: f64, black: f64, white: f64, gamma: f64, out_black: f64, out_white: f64) -> f64 {
    let v = ((c - black) / (white - black))
        .clamp(0.0, 1.0)
        .powf(1.0 / gamma);
    out_black + v * (out_white - out_black)
}

impl PointOperation for Levels {
    const NAME: &'static str = "levels";
    const SUMMARY: &'static str =
        "input black and white points, midtone gamma and output range, for RGB or one channel";
    type Params = LevelsParams;
    const SHADER: &'static str = include_str!("../../shaders/levels.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "levels", "black": 0.1, "white": 0.9, "gamma": 1.3}"#,
        r#"{"op": "levels", "channel": "red", "gamma": 0.7, "output_black": 0.05}"#,
        r#"{"op": "levels", "channel": "blue", "black": 0.2, "output_white": 0.8}"#,
    ];

    fn validate(p: &LevelsParams, _: &Limits) -> Result<Self, ParamError> {
        let unit = |name: &str, v: Option<f64>, default: f64| {
            check_range(name, v.unwrap_or(default), 0.0, 1.0)
        };
        let black = unit("black", p.black, 0.0)?;
        let white = unit("white", p.white, 1.0)?;
        if black == 1.0 {
            return Err(ParamError::range("black", "0..1 (1 excluded)"));
        }
        if white == 0.0 {
            return Err(ParamError::range("white", "0..=1 (0 excluded)"));
        }
        let gamma = check_range("gamma", p.gamma.unwrap_or(1.0), MIN_GAMMA, MAX_GAMMA)?;
        let out_black = unit("output_black", p.output_black, 0.0)?;
        let out_white = unit("output_white", p.output_white, 1.0)?;
        if black >= white {
            return Err(ParamError::new("white", "must be above black"));
        }
        let given = [p.black, p.white, p.gamma, p.output_black, p.output_white];
        if given.iter().all(Option::is_none) {
            return Err(ParamError::new(
                "levels",
                "give at least one of black, white, gamma, output_black, output_white",
            ));
        }
        let channel = p.channel.unwrap_or_default();
        Ok(Self {
            tone: ToneTable::sample(channel, |c| {
                levels(c, black, white, gamma, out_black, out_white)
            }),
        })
    }
}

impl ToneOp for Levels {
    fn tone(&self) -> &ToneTable {
        &self.tone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::PointOp;

    fn v(p: LevelsParams) -> Result<Levels, ParamError> {
        Levels::validate(&p, &Limits::default())
    }

    #[test]
    fn validation() {
        assert!(v(LevelsParams {
            gamma: Some(1.2),
            ..Default::default()
        })
        .is_ok());
        assert_eq!(v(LevelsParams::default()).unwrap_err().param, "levels");
        let crossed = LevelsParams {
            black: Some(0.6),
            white: Some(0.4),
            ..Default::default()
        };
        assert_eq!(v(crossed).unwrap_err().param, "white");
        for bad in [-0.01, 1.01, f64::NAN] {
            assert!(v(LevelsParams {
                black: Some(bad),
                ..Default::default()
            })
            .is_err());
        }
        for bad in [0.09, 10.1, f64::INFINITY] {
            assert!(v(LevelsParams {
                gamma: Some(bad),
                ..Default::default()
            })
            .is_err());
        }
    }

    #[test]
    fn black_and_white_points_stretch() {
        let l = v(LevelsParams {
            black: Some(0.2),
            white: Some(0.6),
            ..Default::default()
        })
        .unwrap();
        let px = l.apply([0.1, 0.4, 0.7, 1.0]);
        assert_eq!(px[0], 0.0);
        assert!((px[1] - 0.5).abs() < 1e-3);
        assert_eq!(px[2], 1.0);
    }
}
