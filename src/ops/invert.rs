//! Invert: every colour channel `c` becomes `1 - c`; alpha is kept.

use super::point::PointOp;
use super::{Frame, NoParams, OpContext, Operation, Shape};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// The `invert` op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Invert;

impl Operation for Invert {
    const NAME: &'static str = "invert";
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

impl PointOp for Invert {
    fn stage(&self) -> [u32; 16] {
        super::point::stage(3, &[])
    }

    fn apply(&self, [r, g, b, a]: [f32; 4]) -> [f32; 4] {
        [1.0 - r, 1.0 - g, 1.0 - b, a]
    }
}
