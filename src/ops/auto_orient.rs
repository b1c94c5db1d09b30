//! Apply the source's EXIF orientation, so that the pixels stand upright and
//! the output (whose metadata is stripped) displays the same way.

use image::metadata::Orientation;
use image::DynamicImage;

use super::{Dims, Frame, NoParams, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep, Recorder};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/auto_orient.wgsl`: source coordinates as an integer affine
    /// map of destination coordinates, `sx = a x + b y + c`, `sy = d x + e y + f`.
    pub(crate) struct RemapUniform {
        /// x coefficient of sx.
        pub a: i32,
        /// y coefficient of sx.
        pub b: i32,
        /// Constant of sx.
        pub c: i32,
        /// x coefficient of sy.
        pub d: i32,
        /// y coefficient of sy.
        pub e: i32,
        /// Constant of sy.
        pub f: i32,
    }
}

/// The remapping that applies an EXIF orientation to a `w`x`h` source.
fn orientation_map(orientation: u8, w: u32, h: u32) -> RemapUniform {
    let (w1, h1) = (w as i32 - 1, h as i32 - 1);
    let [a, b, c, d, e, f] = match orientation {
        2 => [-1, 0, w1, 0, 1, 0],
        3 => [-1, 0, w1, 0, -1, h1],
        4 => [1, 0, 0, 0, -1, h1],
        5 => [0, 1, 0, 1, 0, 0],
        6 => [0, 1, 0, -1, 0, h1],
        7 => [0, -1, w1, -1, 0, h1],
        8 => [0, -1, w1, 1, 0, 0],
        _ => [1, 0, 0, 0, 1, 0],
    };
    RemapUniform { a, b, c, d, e, f }
}

/// Apply EXIF orientation `orientation` (2..=8) to `src` on the GPU; also
/// rotate's quarter turns (6 is 90 degrees clockwise, 3 is 180, 8 is 270).
pub(crate) fn record_orientation(
    rec: &mut Recorder<'_>,
    src: &GpuImage,
    orientation: u8,
) -> Result<GpuImage, GpuError> {
    let (w, h) = (src.width, src.height);
    let dims = if swaps_axes(orientation) {
        Dims::new(h, w)
    } else {
        Dims::new(w, h)
    };
    let params = orientation_map(orientation, w, h);
    rec.kernel("remap", src, dims, Aux::None, params)
}

/// The `auto_orient` op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoOrient;

/// Whether an EXIF orientation swaps width and height (5 to 8 do).
pub(crate) fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

impl Operation for AutoOrient {
    const NAME: &'static str = "auto_orient";
    const C2PA_ACTION: &'static str = "c2pa.orientation";
    const SUMMARY: &'static str =
        "apply the source's EXIF orientation, so that the pixels stand upright";
    type Params = NoParams;
    const SHADER: &'static str = include_str!("../../shaders/auto_orient.wgsl");
    const EXAMPLES: &'static [&'static str] = &[r#"{"op": "auto_orient"}"#];
    const PARITY: Tolerance = Tolerance::EXACT;

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

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let o = step.src.orientation;
        let mut out = if (2..=8).contains(&o) {
            record_orientation(step.rec, step.src, o)?
        } else {
            step.src.clone()
        };
        out.orientation = 1;
        Ok(out)
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![RemapUniform::layout()]
    }
}
