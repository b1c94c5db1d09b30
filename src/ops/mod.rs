//! The image operations of the job contract.
//!
//! One op is defined once, in `src/ops/<name>.rs`: its parameters (the serde
//! struct a job carries), its validation, its effect on image dimensions (the
//! planner), and its CPU implementation. The op's name is the same everywhere:
//! the job's `"op"` tag, the module, the tracing span field and the bench id.
//!
//! Ops that change each pixel independently of its neighbours (adjust,
//! grayscale, invert, sepia) also implement [`PointOp`]; runs of them are fused
//! into a single pass over the image ([`point::run_fused`]).

pub mod adjust;
pub mod auto_orient;
pub mod blur;
pub mod color;
pub mod crop;
pub mod flip;
pub mod grayscale;
pub mod invert;
pub mod overlay;
pub mod pad;
pub mod point;
pub mod resize;
pub mod rotate;
pub mod sepia;
pub mod sharpen;

use std::collections::HashMap;
use std::sync::Arc;

use image::RgbaImage;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::config::Limits;
use crate::error::{JobError, ParamError};

pub use point::PointOp;

/// Width and height of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Dims {
    /// Build from width and height.
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    /// Pixel count.
    pub fn pixels(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// What the planner knows of the image at one point of the chain: its size and
/// the EXIF orientation still to be applied (1 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Current dimensions.
    pub dims: Dims,
    /// EXIF orientation (1..=8) not yet applied by `auto_orient`.
    pub orientation: u8,
}

/// An image on its way through the chain.
#[derive(Debug, Clone)]
pub struct Frame {
    /// RGBA8 pixels, straight (not premultiplied) alpha.
    pub img: RgbaImage,
    /// EXIF orientation (1..=8) not yet applied.
    pub orientation: u8,
}

impl Frame {
    /// The frame's shape, as the planner sees it.
    pub fn shape(&self) -> Shape {
        Shape {
            dims: Dims::new(self.img.width(), self.img.height()),
            orientation: self.orientation,
        }
    }
}

/// What ops may need beyond the image itself: decoded overlay images, keyed by
/// the `source` string of the overlay op, and the job's deadline.
#[derive(Debug, Default, Clone)]
pub struct OpContext {
    /// Decoded overlay images by their `source` string.
    pub overlays: HashMap<String, Arc<RgbaImage>>,
    /// When the job must be done; checked between ops.
    pub deadline: Option<std::time::Instant>,
}

impl OpContext {
    /// `limit_exceeded` once the deadline has passed.
    pub fn check_deadline(&self) -> Result<(), JobError> {
        match self.deadline {
            Some(d) if std::time::Instant::now() > d => {
                Err(JobError::limit_exceeded("job exceeded its deadline"))
            }
            _ => Ok(()),
        }
    }
}

/// One image operation: parameters, validation, planning and CPU code.
pub trait Operation: Sized + std::fmt::Debug + Clone + Send + Sync + 'static {
    /// The op's name: the job's `"op"` tag, its module and its shader.
    const NAME: &'static str;
    /// The parameters as a job carries them.
    type Params: DeserializeOwned + Serialize + JsonSchema + std::fmt::Debug + Clone + PartialEq;

    /// Check every parameter; the only way to build the op.
    fn validate(p: &Self::Params, lim: &Limits) -> Result<Self, ParamError>;

    /// The shape after this op, checking what depends on the image size.
    fn plan(&self, input: Shape) -> Result<Shape, ParamError>;

    /// Run on the CPU.
    fn run_cpu(&self, frame: Frame, inputs: &OpContext) -> Result<Frame, JobError>;

    /// The per-pixel form of the op, when it has one (enables fusion).
    fn as_point(&self) -> Option<&dyn PointOp> {
        None
    }
}

/// Parameters of ops that take none; unknown fields are still rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

macro_rules! registry {
    ($($variant:ident => $module:ident :: $ty:ident),* $(,)?) => {
        /// An op as a job carries it: the `"op"` tag and its parameters.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "op", rename_all = "snake_case")]
        pub enum OpSpec {
            $(
                #[doc = concat!("See `ops::", stringify!($module), "`.")]
                $variant(<$module::$ty as Operation>::Params),
            )*
        }

        /// A validated op, ready to plan and run.
        #[derive(Debug, Clone)]
        pub enum Op {
            $(
                #[doc = concat!("See `ops::", stringify!($module), "`.")]
                $variant($module::$ty),
            )*
        }

        /// Every op name this worker knows, in registry order.
        pub const OP_NAMES: &[&str] = &[$(<$module::$ty as Operation>::NAME),*];

        impl OpSpec {
            /// The op's name.
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$module::$ty as Operation>::NAME,)* }
            }

            /// Validate the parameters into a runnable op.
            pub fn validate(&self, lim: &Limits) -> Result<Op, ParamError> {
                match self { $(Self::$variant(p) => <$module::$ty>::validate(p, lim).map(Op::$variant),)* }
            }
        }

        impl Op {
            /// The op's name.
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$module::$ty as Operation>::NAME,)* }
            }

            /// The shape after this op.
            pub fn plan(&self, input: Shape) -> Result<Shape, ParamError> {
                match self { $(Self::$variant(op) => op.plan(input),)* }
            }

            /// Run on the CPU.
            pub fn run_cpu(&self, frame: Frame, inputs: &OpContext) -> Result<Frame, JobError> {
                match self { $(Self::$variant(op) => op.run_cpu(frame, inputs),)* }
            }

            /// The per-pixel form, when the op has one.
            pub fn as_point(&self) -> Option<&dyn PointOp> {
                match self { $(Self::$variant(op) => op.as_point(),)* }
            }
        }
    };
}

registry! {
    AutoOrient => auto_orient::AutoOrient,
    Resize => resize::Resize,
    Crop => crop::Crop,
    Rotate => rotate::Rotate,
    Flip => flip::Flip,
    Adjust => adjust::Adjust,
    Grayscale => grayscale::Grayscale,
    Invert => invert::Invert,
    Sepia => sepia::Sepia,
    Blur => blur::Blur,
    Sharpen => sharpen::Sharpen,
    Pad => pad::Pad,
    Overlay => overlay::Overlay,
}

/// Whether every pixel of `img` has alpha 255.
pub fn is_opaque(img: &RgbaImage) -> bool {
    img.as_raw().chunks_exact(4).all(|p| p[3] == 255)
}

/// Check a float parameter is finite and inside `lo..=hi`.
pub(crate) fn check_range(name: &str, v: f64, lo: f64, hi: f64) -> Result<f64, ParamError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ParamError::range(name, &format!("{lo}..={hi}")))
    }
}

/// Check a size against the limits: each side in `1..=max_side`, the whole
/// at most `max_output_pixels`.
pub(crate) fn check_dims(d: Dims, lim: &Limits) -> Result<(), JobError> {
    if d.width == 0 || d.height == 0 {
        return Err(JobError::invalid_param(format!(
            "the image would be empty ({}x{})",
            d.width, d.height
        )));
    }
    if d.width > lim.max_side || d.height > lim.max_side || d.pixels() > lim.max_output_pixels {
        return Err(JobError::limit_exceeded(format!(
            "an image of {}x{} exceeds the limit ({} pixels, {} per side)",
            d.width, d.height, lim.max_output_pixels, lim.max_side
        )));
    }
    Ok(())
}

/// Run a chain of ops on the CPU, fusing runs of per-pixel ops into one pass.
pub fn run_chain_cpu(mut frame: Frame, ops: &[Op], inputs: &OpContext) -> Result<Frame, JobError> {
    let mut i = 0;
    while i < ops.len() {
        inputs.check_deadline()?;
        let run: Vec<&dyn PointOp> = ops[i..].iter().map_while(|op| op.as_point()).collect();
        if run.is_empty() {
            let _span = tracing::debug_span!("op", op = ops[i].name(), backend = "cpu").entered();
            frame = ops[i].run_cpu(frame, inputs)?;
            i += 1;
        } else {
            let names: Vec<&str> = ops[i..i + run.len()].iter().map(Op::name).collect();
            let _span =
                tracing::debug_span!("op", op = %names.join("+"), backend = "cpu").entered();
            point::run_fused(&mut frame.img, &run);
            i += run.len();
        }
    }
    Ok(frame)
}
