//! Sepia tone: the W3C filter-effects `sepia(strength)` matrix.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_range;
use super::point::{mat3, PointOp, PointOperation};
use crate::config::Limits;
use crate::error::ParamError;

/// Smallest `strength` of a `sepia` (unchanged).
pub(crate) const MIN_STRENGTH: f64 = 0.0;
/// Largest `strength` of a `sepia` (full sepia).
pub(crate) const MAX_STRENGTH: f64 = 1.0;

/// Parameters of `sepia`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SepiaParams {
    /// `0` unchanged to `1` full sepia. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_STRENGTH, max = MAX_STRENGTH))]
    pub strength: Option<f64>,
}

/// A validated `sepia` with its matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Sepia {
    /// Row-major RGB matrix.
    pub(crate) matrix: [[f32; 3]; 3],
}

/// The W3C sepia matrix for a strength in `0..=1`.
pub(crate) fn sepia_matrix(s: f64) -> [[f64; 3]; 3] {
    let t = 1.0 - s;
    [
        [0.393 + 0.607 * t, 0.769 - 0.769 * t, 0.189 - 0.189 * t],
        [0.349 - 0.349 * t, 0.686 + 0.314 * t, 0.168 - 0.168 * t],
        [0.272 - 0.272 * t, 0.534 - 0.534 * t, 0.131 + 0.869 * t],
    ]
}

impl PointOperation for Sepia {
    const NAME: &'static str = "sepia";
    const SUMMARY: &'static str = "sepia tone: the W3C filter-effects `sepia(strength)` matrix";
    type Params = SepiaParams;
    const SHADER: &'static str = include_str!("../../shaders/sepia.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "sepia", "strength": 0.8}"#,
        r#"{"op": "sepia"}"#,
        r#"{"op": "sepia", "strength": 0.4}"#,
    ];

    fn validate(p: &SepiaParams, _: &Limits) -> Result<Self, ParamError> {
        let s = check_range(
            "strength",
            p.strength.unwrap_or(1.0),
            MIN_STRENGTH,
            MAX_STRENGTH,
        )?;
        Ok(Self {
            matrix: sepia_matrix(s).map(|r| r.map(|v| v as f32)),
        })
    }
}

impl PointOp for Sepia {
    fn stage_values(&self) -> Vec<f32> {
        self.matrix.as_flattened().to_vec()
    }

    fn apply(&self, px: [f32; 4]) -> [f32; 4] {
        mat3(&self.matrix, px)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let lim = Limits::default();
        assert!(Sepia::validate(&SepiaParams { strength: None }, &lim).is_ok());
        assert!(Sepia::validate(
            &SepiaParams {
                strength: Some(0.5)
            },
            &lim
        )
        .is_ok());
        for bad in [-0.1, 1.1, f64::NAN] {
            assert!(Sepia::validate(
                &SepiaParams {
                    strength: Some(bad)
                },
                &lim
            )
            .is_err());
        }
    }
}
