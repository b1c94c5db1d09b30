//! Grayscale: every channel becomes the Rec. 709 luma of gamma-encoded RGB.

use super::point::{luma, PointOp, PointOperation};
use super::NoParams;
use crate::config::Limits;
use crate::error::ParamError;

/// The `grayscale` op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grayscale;

impl PointOperation for Grayscale {
    const NAME: &'static str = "grayscale";
    const SUMMARY: &'static str = "every channel becomes the Rec. 709 luma of gamma-encoded RGB";
    type Params = NoParams;
    const SHADER: &'static str = include_str!("../../shaders/grayscale.wgsl");
    const EXAMPLES: &'static [&'static str] = &[r#"{"op": "grayscale"}"#];

    fn validate(_: &NoParams, _: &Limits) -> Result<Self, ParamError> {
        Ok(Self)
    }
}

impl PointOp for Grayscale {
    fn stage_values(&self) -> Vec<f32> {
        Vec::new()
    }

    fn apply(&self, [r, g, b, a]: [f32; 4]) -> [f32; 4] {
        let l = luma(r, g, b);
        [l, l, l, a]
    }
}
