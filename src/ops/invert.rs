//! Invert: every colour channel `c` becomes `1 - c`; alpha is kept.

use super::point::{PointOp, PointOperation};
use super::NoParams;
use crate::config::Limits;
use crate::error::ParamError;

/// The `invert` op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Invert;

impl PointOperation for Invert {
    const NAME: &'static str = "invert";
    const SUMMARY: &'static str = "every colour channel `c` becomes `1 - c`; alpha is kept";
    type Params = NoParams;
    const SHADER: &'static str = include_str!("../../shaders/invert.wgsl");
    const EXAMPLES: &'static [&'static str] = &[r#"{"op": "invert"}"#];

    fn validate(_: &NoParams, _: &Limits) -> Result<Self, ParamError> {
        Ok(Self)
    }
}

impl PointOp for Invert {
    fn stage_values(&self) -> Vec<f32> {
        Vec::new()
    }

    fn apply(&self, [r, g, b, a]: [f32; 4]) -> [f32; 4] {
        [1.0 - r, 1.0 - g, 1.0 - b, a]
    }

    fn per_channel(&self) -> bool {
        true
    }
}
