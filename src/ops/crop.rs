//! Crop to a rectangle that must lie inside the image.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_rect_inside, Dims, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep, Recorder};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/crop.wgsl`: the rectangle's top-left corner.
    pub struct CropUniform {
        /// Left edge.
        pub x: u32,
        /// Top edge.
        pub y: u32,
    }
}

/// Copy the `dims` rectangle at `(x, y)` of `src` on the GPU (also resize's
/// same-size case).
pub(crate) fn record_crop(
    rec: &mut Recorder<'_>,
    src: &GpuImage,
    x: u32,
    y: u32,
    dims: Dims,
) -> Result<GpuImage, GpuError> {
    rec.kernel("crop", src, dims, Aux::None, CropUniform { x, y })
}

/// Smallest width or height a `crop` or a `resize` asks for.
pub const MIN_SIDE: u32 = 1;

/// Parameters of `crop`: the rectangle's top-left corner and size. The
/// rectangle must lie inside the image, which is checked against the image
/// (not expressed in the JSON Schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CropParams {
    /// Left edge; the rectangle must lie inside the image (not expressed in
    /// the schema).
    #[schemars(range(max = u32::MAX))]
    pub x: u32,
    /// Top edge.
    #[schemars(range(max = u32::MAX))]
    pub y: u32,
    /// Width, `1..=max_side` (a worker setting, default 65535).
    #[schemars(range(min = MIN_SIDE, max = Limits::default().max_side))]
    pub width: u32,
    /// Height, `1..=max_side` (a worker setting, default 65535).
    #[schemars(range(min = MIN_SIDE, max = Limits::default().max_side))]
    pub height: u32,
}

/// A validated `crop`.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop(pub CropParams);

impl Operation for Crop {
    const NAME: &'static str = "crop";
    const SUMMARY: &'static str = "crop to a rectangle that must lie inside the image";
    type Params = CropParams;
    const SHADER: &'static str = include_str!("../../shaders/crop.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "crop", "x": 16, "y": 16, "width": 200, "height": 100}"#,
        r#"{"op": "crop", "x": 0, "y": 0, "width": 1, "height": 1}"#,
    ];
    const PARITY: Tolerance = Tolerance::EXACT;

    fn validate(p: &CropParams, lim: &Limits) -> Result<Self, ParamError> {
        let side = format!("{MIN_SIDE}..={}", lim.max_side);
        if p.width < MIN_SIDE || p.width > lim.max_side {
            return Err(ParamError::range("width", &side));
        }
        if p.height < MIN_SIDE || p.height > lim.max_side {
            return Err(ParamError::range("height", &side));
        }
        Ok(Self(p.clone()))
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        let p = &self.0;
        check_rect_inside([p.x, p.y, p.width, p.height], s.dims)?;
        Ok(Shape {
            dims: Dims::new(p.width, p.height),
            ..s
        })
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        let p = &self.0;
        let img = image::imageops::crop_imm(&frame.img, p.x, p.y, p.width, p.height).to_image();
        Ok(Frame { img, ..frame })
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let p = &self.0;
        record_crop(step.rec, step.src, p.x, p.y, Dims::new(p.width, p.height))
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![CropUniform::layout()]
    }
}
