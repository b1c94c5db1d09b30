//! Mirror the image horizontally (left-right) or vertically (top-bottom).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Frame, OpContext, Operation, Shape};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// The mirror axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Left-right mirror.
    Horizontal,
    /// Top-bottom mirror.
    Vertical,
}

/// Parameters of `flip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlipParams {
    /// Which way to mirror.
    pub axis: Axis,
}

/// A validated `flip`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flip {
    /// The mirror axis.
    pub axis: Axis,
}

impl Operation for Flip {
    const NAME: &'static str = "flip";
    type Params = FlipParams;

    fn validate(p: &FlipParams, _: &Limits) -> Result<Self, ParamError> {
        Ok(Self { axis: p.axis })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        Ok(s)
    }

    fn run_cpu(&self, mut frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        match self.axis {
            Axis::Horizontal => image::imageops::flip_horizontal_in_place(&mut frame.img),
            Axis::Vertical => image::imageops::flip_vertical_in_place(&mut frame.img),
        }
        Ok(frame)
    }
}
