//! Apply the source's EXIF orientation, so that the pixels stand upright and
//! the output (whose metadata is stripped) displays the same way.

use image::metadata::Orientation;
use image::DynamicImage;

use super::{Dims, Frame, NoParams, OpContext, Operation, Shape};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// The `auto_orient` op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoOrient;

/// Whether an EXIF orientation swaps width and height (5 to 8 do).
pub fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

impl Operation for AutoOrient {
    const NAME: &'static str = "auto_orient";
    type Params = NoParams;

    fn validate(_: &NoParams, _: &Limits) -> Result<Self, ParamError> {
        Ok(Self)
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        let dims = if swaps_axes(s.orientation) {
            Dims::new(s.dims.height, s.dims.width)
        } else {
            s.dims
        };
        Ok(Shape {
            dims,
            orientation: 1,
        })
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        let Some(o) = Orientation::from_exif(frame.orientation).filter(|_| frame.orientation != 1)
        else {
            return Ok(Frame {
                orientation: 1,
                ..frame
            });
        };
        let mut img = DynamicImage::ImageRgba8(frame.img);
        img.apply_orientation(o);
        Ok(Frame {
            img: img.into_rgba8(),
            orientation: 1,
        })
    }
}
