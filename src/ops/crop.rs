//! Crop to a rectangle that must lie inside the image.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Dims, Frame, OpContext, Operation, Shape};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// Parameters of `crop`: the rectangle's top-left corner and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CropParams {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width, at least 1.
    pub width: u32,
    /// Height, at least 1.
    pub height: u32,
}

/// A validated `crop`.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop(pub CropParams);

impl Operation for Crop {
    const NAME: &'static str = "crop";
    type Params = CropParams;

    fn validate(p: &CropParams, lim: &Limits) -> Result<Self, ParamError> {
        let side = format!("1..={}", lim.max_side);
        if p.width == 0 || p.width > lim.max_side {
            return Err(ParamError::range("width", &side));
        }
        if p.height == 0 || p.height > lim.max_side {
            return Err(ParamError::range("height", &side));
        }
        Ok(Self(p.clone()))
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        let p = &self.0;
        let fits = |o: u32, len: u32, max: u32| u64::from(o) + u64::from(len) <= u64::from(max);
        if !fits(p.x, p.width, s.dims.width) || !fits(p.y, p.height, s.dims.height) {
            return Err(ParamError::new(
                "",
                format!(
                    "rectangle {}x{} at ({}, {}) is outside the {}x{} image",
                    p.width, p.height, p.x, p.y, s.dims.width, s.dims.height
                ),
            ));
        }
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
}
