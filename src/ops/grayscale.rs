//! Grayscale: every channel becomes the Rec. 709 luma of gamma-encoded RGB.

use super::point::{luma, PointOp};
use super::{Frame, NoParams, OpContext, Operation, Shape};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// The `grayscale` op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grayscale;

impl Operation for Grayscale {
    const NAME: &'static str = "grayscale";
    type Params = NoParams;

    fn validate(_: &NoParams, _: &Limits) -> Result<Self, ParamError> {
        Ok(Self)
    }

    fn plan(&self, input: Shape) -> Result<Shape, ParamError> {
        Ok(input)
    }

    fn run_cpu(&self, mut frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        super::point::run_fused(&mut frame.img, &[self]);
        Ok(frame)
    }

    fn as_point(&self) -> Option<&dyn PointOp> {
        Some(self)
    }
}

impl PointOp for Grayscale {
    fn stage(&self) -> [u32; 16] {
        super::point::stage(2, &[])
    }

    fn apply(&self, [r, g, b, a]: [f32; 4]) -> [f32; 4] {
        let l = luma(r, g, b);
        [l, l, l, a]
    }
}
