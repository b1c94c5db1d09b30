//! Crop to a rectangle that must lie inside the image: at `x`/`y`, or placed
//! by `gravity`: the centre, or where the image is most interesting
//! (`attention`, `entropy`: [`super::interest`]). A smart gravity reads the
//! pixels: on the GPU the image is read back first, and the window is found
//! on the host by the same code as on the CPU.

use image::RgbaImage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_rect_inside, interest, Dims, Frame, OpContext, Operation, Shape, Tolerance};
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
pub(crate) const MIN_SIDE: u32 = 1;

/// How a `crop` without `x`/`y` places its rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CropGravity {
    /// Centred.
    Center,
    /// Where edges, saturated colour and skin tones are (libvips-like).
    Attention,
    /// Cut away the edges with the least detail (luma entropy).
    Entropy,
}

impl CropGravity {
    /// Whether the window is chosen from the pixels.
    pub(crate) fn reads_pixels(self) -> bool {
        matches!(self, Self::Attention | Self::Entropy)
    }

    /// The top-left corner of the `w` x `h` window it picks on `img`:
    /// `None` for `center`, which needs no pixels.
    pub fn window(self, img: &RgbaImage, w: u32, h: u32) -> Option<(u32, u32)> {
        match self {
            Self::Center => None,
            Self::Attention => Some(interest::attention(img, w, h)),
            Self::Entropy => Some(interest::entropy_window(img, w, h)),
        }
    }
}

/// The `w` x `h` rectangle of `frame` at `(x, y)` (also `trim`'s result).
pub(crate) fn crop_frame(frame: Frame, x: u32, y: u32, w: u32, h: u32) -> Frame {
    let img = image::imageops::crop_imm(&frame.img, x, y, w, h).to_image();
    Frame { img, ..frame }
}

/// Parameters of `crop`: the rectangle's size, and its top-left corner or a
/// gravity. The rectangle must lie inside the image, which is checked
/// against the image (not expressed in the JSON Schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CropParams {
    /// Left edge; give `x` and `y` together, or `gravity` (not expressed in
    /// the schema); the rectangle must lie inside the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u32::MAX))]
    pub x: Option<u32>,
    /// Top edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u32::MAX))]
    pub y: Option<u32>,
    /// Width, `1..=max_side` (a worker setting, default 65535).
    #[schemars(range(min = MIN_SIDE, max = Limits::default().max_side))]
    pub width: u32,
    /// Height, `1..=max_side` (a worker setting, default 65535).
    #[schemars(range(min = MIN_SIDE, max = Limits::default().max_side))]
    pub height: u32,
    /// Placement without `x`/`y`: `center`, `attention` or `entropy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gravity: Option<CropGravity>,
}

/// Where the rectangle goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropAt {
    /// A fixed top-left corner.
    Corner(u32, u32),
    /// By gravity.
    Gravity(CropGravity),
}

/// A validated `crop`.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    /// Where the rectangle goes.
    pub at: CropAt,
    /// Its size.
    pub dims: Dims,
}

impl Crop {
    /// The top-left corner on `img` (the pixels are read only for a smart
    /// gravity).
    fn corner(&self, img: Option<&RgbaImage>, dims: Dims) -> (u32, u32) {
        let (w, h) = (self.dims.width, self.dims.height);
        match (self.at, img) {
            (CropAt::Corner(x, y), _) => (x, y),
            (CropAt::Gravity(g), Some(img)) => g
                .window(img, w, h)
                .unwrap_or(((dims.width - w) / 2, (dims.height - h) / 2)),
            (CropAt::Gravity(_), None) => ((dims.width - w) / 2, (dims.height - h) / 2),
        }
    }

    /// Whether the corner depends on the pixels.
    fn reads_pixels(&self) -> bool {
        matches!(self.at, CropAt::Gravity(g) if g.reads_pixels())
    }
}

impl Operation for Crop {
    const NAME: &'static str = "crop";
    const C2PA_ACTION: &'static str = "c2pa.cropped";
    const SUMMARY: &'static str =
        "crop to a rectangle inside the image, at x/y or placed by gravity (centre, attention, entropy)";
    type Params = CropParams;
    const SHADER: &'static str = include_str!("../../shaders/crop.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "crop", "x": 16, "y": 16, "width": 200, "height": 100}"#,
        r#"{"op": "crop", "x": 0, "y": 0, "width": 1, "height": 1}"#,
        r#"{"op": "crop", "width": 20, "height": 7, "gravity": "attention"}"#,
        r#"{"op": "crop", "width": 9, "height": 30, "gravity": "entropy"}"#,
        r#"{"op": "crop", "width": 5, "height": 5, "gravity": "center"}"#,
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
        let at = match (p.x, p.y, p.gravity) {
            (Some(x), Some(y), None) => CropAt::Corner(x, y),
            (None, None, Some(g)) => CropAt::Gravity(g),
            (_, _, Some(_)) => {
                return Err(ParamError::new("gravity", "give gravity or x/y, not both"))
            }
            _ => return Err(ParamError::new("x", "give x and y together, or gravity")),
        };
        Ok(Self {
            at,
            dims: Dims::new(p.width, p.height),
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        let (w, h) = (self.dims.width, self.dims.height);
        let (x, y) = match self.at {
            CropAt::Corner(x, y) => (x, y),
            CropAt::Gravity(_) => (0, 0),
        };
        check_rect_inside([x, y, w, h], s.dims)?;
        Ok(Shape {
            dims: self.dims,
            ..s
        })
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        let dims = Dims::new(frame.img.width(), frame.img.height());
        let (x, y) = self.corner(Some(&frame.img), dims);
        Ok(crop_frame(frame, x, y, self.dims.width, self.dims.height))
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let pixels = if self.reads_pixels() {
            Some(step.rec.read_now(step.src)?)
        } else {
            None
        };
        let (x, y) = self.corner(pixels.as_ref(), step.src.dims());
        record_crop(step.rec, step.src, x, y, self.dims)
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![CropUniform::layout()]
    }
}
