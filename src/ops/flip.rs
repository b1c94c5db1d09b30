//! Mirror the image horizontally (left-right) or vertically (top-bottom).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep};
use crate::gpu::uniform::{GpuEnum, Uniform, UniformLayout};
use crate::gpu::GpuError;

/// The mirror axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Left-right mirror.
    Horizontal,
    /// Top-bottom mirror.
    Vertical,
}

impl GpuEnum for Axis {
    const PREFIX: &'static str = "AXIS";
    const ALL: &'static [Self] = &[Self::Horizontal, Self::Vertical];

    fn code(self) -> u32 {
        self as u32
    }
}

crate::gpu_uniform! {
    /// `shaders/flip.wgsl`.
    pub(crate) struct FlipUniform {
        /// An [`Axis`] constant.
        pub axis: u32,
    }
}

/// Parameters of `flip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlipParams {
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
    const C2PA_ACTION: &'static str = "c2pa.orientation";
    const SUMMARY: &'static str = "mirror the image left-right or top-bottom";
    type Params = FlipParams;
    const SHADER: &'static str = include_str!("../../shaders/flip.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "flip", "axis": "horizontal"}"#,
        r#"{"op": "flip", "axis": "vertical"}"#,
    ];
    const PARITY: Tolerance = Tolerance::EXACT;

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

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let params = FlipUniform {
            axis: self.axis.code(),
        };
        step.rec
            .kernel("flip", step.src, step.src.dims(), Aux::None, params)
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![FlipUniform::layout()]
    }

    fn wgsl_consts() -> String {
        Axis::wgsl_consts()
    }
}
