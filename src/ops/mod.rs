//! The image operations of the job contract.
//!
//! One op is defined once, in `src/ops/<name>.rs`: its parameters (the serde
//! struct a job carries), its validation, its effect on image dimensions (the
//! planner), its CPU implementation and its GPU recording, plus its compute
//! shader `shaders/<name>.wgsl`, and one line in [`registry!`] below. The
//! op's name is the same everywhere: the job's `"op"` tag, the module, the
//! shader, the tracing span field, the bench id and the docs' op table.
//! Everything that lists ops (the shader modules, the parity and reference
//! tests, the per-op benches, the op table) reads [`OPS`].
//!
//! Ops that change each pixel independently of its neighbours implement
//! [`point::PointOperation`] instead of [`Operation`]: runs of them are fused into a
//! single pass over the image on both backends ([`point`]).

pub mod adjust;
pub mod auto_orient;
pub mod blend;
pub mod blur;
pub mod color;
pub mod composite;
pub mod crop;
pub mod curves;
pub mod flip;
pub mod grayscale;
pub mod interest;
pub mod invert;
pub mod levels;
pub mod linear;
pub mod lut;
pub mod mask;
pub mod pad;
pub mod pixelate;
pub mod point;
pub mod resize;
pub mod rotate;
pub mod sepia;
pub mod sharpen;
mod spec;
mod table;
pub mod tone;
pub mod trim;

use std::collections::HashMap;
use std::sync::Arc;

use image::RgbaImage;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{GpuImage, GpuStep};
use crate::gpu::uniform::UniformLayout;
use crate::gpu::GpuError;

pub(crate) use point::PointOp;
pub(crate) use spec::canonical_name;
pub use spec::OpSpec;
pub use table::markdown_table;

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

/// What ops may need beyond the image itself: decoded overlay images and
/// parsed LUTs, keyed by the string the op names them by, and the job's
/// deadline.
#[derive(Debug, Default, Clone)]
pub struct OpContext {
    /// Decoded overlay images by their `source` string.
    pub overlays: HashMap<String, Arc<RgbaImage>>,
    /// Parsed `.cube` LUTs by their `object` string.
    pub luts: HashMap<String, Arc<lut::Cube>>,
    /// Decoded masks (8-bit planes) by their `object` string.
    pub masks: mask::MaskImages,
    /// When the job must be done; checked between ops.
    pub deadline: Option<std::time::Instant>,
}

impl OpContext {
    /// `limit_exceeded` once the deadline has passed.
    pub(crate) fn check_deadline(&self) -> Result<(), JobError> {
        match self.deadline {
            Some(d) if std::time::Instant::now() > d => {
                Err(JobError::limit_exceeded("job exceeded its deadline"))
            }
            _ => Ok(()),
        }
    }
}

/// How far the GPU's output may be from the CPU's for an op: the largest
/// difference of one channel, and the mean over all channels, in levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Largest difference of one channel.
    pub max: u8,
    /// Mean difference over every channel.
    pub mean: f64,
}

impl Tolerance {
    /// Integer or table arithmetic reproduced exactly.
    pub const EXACT: Tolerance = Tolerance { max: 0, mean: 0.0 };
    /// Float arithmetic whose rounding may differ (GPU `pow`, FMA): at most
    /// 2 levels, well under one on average.
    pub const FLOAT: Tolerance = Tolerance { max: 2, mean: 0.05 };
}

/// One image operation: parameters, validation, planning, CPU code and GPU
/// recording.
pub(crate) trait Operation: Sized + std::fmt::Debug + Clone + Send + Sync + 'static {
    /// The op's name: the job's `"op"` tag, its module and its shader.
    const NAME: &'static str;
    /// What the op does, one line for the op table.
    const SUMMARY: &'static str;
    /// The parameters as a job carries them.
    type Params: DeserializeOwned + Serialize + JsonSchema + std::fmt::Debug + Clone + PartialEq;
    /// Its compute shader, `shaders/<NAME>.wgsl`.
    const SHADER: &'static str;
    /// Example ops as a job carries them (JSON, `"op"` included): the cases
    /// the GPU parity test and the per-op bench run. At least one.
    const EXAMPLES: &'static [&'static str];
    /// How close the GPU's output is to the CPU's.
    const PARITY: Tolerance;
    /// Whether this is a per-pixel op, fused with its neighbours.
    const POINT: bool = false;
    /// Other names a job may give the op by (`overlay` for `composite`).
    const ALIASES: &'static [&'static str] = &[];
    /// Whether the output size depends on the pixels (`trim`): then
    /// [`Operation::plan`] gives an upper bound, and the ops after it are
    /// planned again against the real size when the job runs.
    const SIZE_FROM_CONTENT: bool = false;
    /// The C2PA action a version's Content Credentials record the op as
    /// ([`crate::content_credentials`]): `c2pa.edited` unless a more
    /// specific one of the C2PA specification's fits.
    const C2PA_ACTION: &'static str = "c2pa.edited";

    /// Check every parameter; the only way to build the op.
    fn validate(p: &Self::Params, lim: &Limits) -> Result<Self, ParamError>;

    /// The shape after this op, checking what depends on the image size.
    fn plan(&self, input: Shape) -> Result<Shape, ParamError>;

    /// Run on the CPU.
    fn run_cpu(&self, frame: Frame, inputs: &OpContext) -> Result<Frame, JobError>;

    /// Record the op's dispatches on the GPU, from `step.src` into a new
    /// device image.
    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError>;

    /// Take what the op reads beyond its parameters from the job's fetched
    /// inputs (a `lut`'s parsed cube), before it runs.
    fn bind(&mut self, _ctx: &OpContext) -> Result<(), JobError> {
        Ok(())
    }

    /// The per-pixel form of the op, when it has one (enables fusion).
    fn as_point(&self) -> Option<&dyn PointOp> {
        None
    }

    /// The layouts of the uniform structs its shader declares.
    fn uniforms() -> Vec<UniformLayout> {
        Vec::new()
    }

    /// WGSL constants its shader uses, generated from Rust enums.
    fn wgsl_consts() -> String {
        String::new()
    }
}

/// What the registry knows of an op without an instance of it.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    /// The op's name.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Other names a job may give it by.
    pub aliases: &'static [&'static str],
    /// Its shader source.
    pub shader: &'static str,
    /// Example ops (JSON).
    pub examples: &'static [&'static str],
    /// GPU/CPU tolerance.
    pub parity: Tolerance,
    /// Whether it is a per-pixel op.
    pub point: bool,
    /// The C2PA action it is recorded as.
    pub c2pa_action: &'static str,
    /// Its uniform structs' layouts.
    pub uniforms: fn() -> Vec<UniformLayout>,
    /// Its generated WGSL constants.
    pub(crate) wgsl_consts: fn() -> String,
    /// The JSON Schema of its parameters.
    pub(crate) params_schema: fn() -> schemars::Schema,
}

/// Parameters of ops that take none; unknown fields are still rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoParams {}

macro_rules! registry {
    ($($variant:ident => $module:ident :: $ty:ident),* $(,)?) => {
        /// An op's name and parameters as a job carries them: the `"op"` tag
        /// and the op's own fields ([`OpSpec`] adds the optional mask).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "op", rename_all = "snake_case")]
        pub(crate) enum OpParams {
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
            /// An op limited by a mask ([`mask`]).
            Masked(Box<mask::Masked>),
        }

        /// Every op name this worker knows, in registry order.
        pub const OP_NAMES: &[&str] = &[$(<$module::$ty as Operation>::NAME),*];

        /// Every op, in registry order.
        pub const OPS: &[OpInfo] = &[$(OpInfo {
            name: <$module::$ty as Operation>::NAME,
            summary: <$module::$ty as Operation>::SUMMARY,
            aliases: <$module::$ty as Operation>::ALIASES,
            shader: <$module::$ty as Operation>::SHADER,
            examples: <$module::$ty as Operation>::EXAMPLES,
            parity: <$module::$ty as Operation>::PARITY,
            point: <$module::$ty as Operation>::POINT,
            c2pa_action: <$module::$ty as Operation>::C2PA_ACTION,
            uniforms: <$module::$ty as Operation>::uniforms,
            wgsl_consts: <$module::$ty as Operation>::wgsl_consts,
            params_schema: || schemars::schema_for!(<$module::$ty as Operation>::Params),
        }),*];

        impl OpParams {
            /// The op's name.
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$module::$ty as Operation>::NAME,)* }
            }

            /// The C2PA action the op is recorded as.
            pub fn c2pa_action(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$module::$ty as Operation>::C2PA_ACTION,)* }
            }

            /// Validate the parameters into a runnable op.
            pub fn validate(&self, lim: &Limits) -> Result<Op, ParamError> {
                match self { $(Self::$variant(p) => <$module::$ty as Operation>::validate(p, lim).map(Op::$variant),)* }
            }
        }

        impl Op {
            /// The op's name.
            pub fn name(&self) -> &'static str {
                match self { $(Self::$variant(_) => <$module::$ty as Operation>::NAME,)* Self::Masked(m) => m.op.name() }
            }

            /// The shape after this op.
            pub fn plan(&self, input: Shape) -> Result<Shape, ParamError> {
                match self { $(Self::$variant(op) => op.plan(input),)* Self::Masked(m) => m.plan(input) }
            }

            /// Run on the CPU.
            pub fn run_cpu(&self, frame: Frame, inputs: &OpContext) -> Result<Frame, JobError> {
                match self { $(Self::$variant(op) => op.run_cpu(frame, inputs),)* Self::Masked(m) => m.run_cpu(frame, inputs) }
            }

            /// Bind what the op reads from the job's fetched inputs.
            pub fn bind(&mut self, ctx: &OpContext) -> Result<(), JobError> {
                match self { $(Self::$variant(op) => Operation::bind(op, ctx),)* Self::Masked(m) => m.op.bind(ctx) }
            }

            /// Whether the output size depends on the pixels.
            pub(crate) fn size_from_content(&self) -> bool {
                match self { $(Self::$variant(_) => <$module::$ty as Operation>::SIZE_FROM_CONTENT,)* Self::Masked(_) => false }
            }

            /// The per-pixel form, when the op has one.
            pub(crate) fn as_point(&self) -> Option<&dyn PointOp> {
                match self { $(Self::$variant(op) => op.as_point(),)* Self::Masked(_) => None }
            }

            /// Record on the GPU.
            pub(crate) fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
                match self { $(Self::$variant(op) => op.record_gpu(step),)* Self::Masked(m) => m.record_gpu(step) }
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
    Levels => levels::Levels,
    Curves => curves::Curves,
    Lut => lut::Lut,
    Blur => blur::Blur,
    Sharpen => sharpen::Sharpen,
    Pad => pad::Pad,
    Composite => composite::Composite,
    Pixelate => pixelate::Pixelate,
    Trim => trim::Trim,
}

impl Op {
    /// The op itself, without the mask it may carry.
    pub fn unmasked(&self) -> &Op {
        match self {
            Op::Masked(m) => &m.op,
            op => op,
        }
    }

    /// The op's mask, when it carries one.
    pub fn mask(&self) -> Option<&mask::Mask> {
        match self {
            Op::Masked(m) => Some(&m.mask),
            _ => None,
        }
    }
}

/// Whether every pixel of `img` has alpha 255.
pub(crate) fn is_opaque(img: &RgbaImage) -> bool {
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

/// Check the length of a string naming another object (a composite's
/// `source`, a lut's `object`, a mask's `object`): `1..=MAX_SOURCE_LEN`.
/// Its grammar is checked with the keys when the job is validated.
pub(crate) fn check_object_ref(name: &str, value: &str) -> Result<(), ParamError> {
    let max = composite::MAX_SOURCE_LEN;
    if value.is_empty() || value.len() > max {
        return Err(ParamError::new(
            name,
            format!("must be 1..={max} characters"),
        ));
    }
    Ok(())
}

/// Check that the `width` x `height` rectangle at `(x, y)` lies inside an
/// image of `dims`.
pub(crate) fn check_rect_inside(
    [x, y, width, height]: [u32; 4],
    dims: Dims,
) -> Result<(), ParamError> {
    let fits = |o: u32, len: u32, max: u32| u64::from(o) + u64::from(len) <= u64::from(max);
    if fits(x, width, dims.width) && fits(y, height, dims.height) {
        return Ok(());
    }
    Err(ParamError::new(
        "",
        format!(
            "rectangle {width}x{height} at ({x}, {y}) is outside the {}x{} image",
            dims.width, dims.height
        ),
    ))
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

/// Where a chain of ops runs: the CPU on frames, or the GPU recorder on
/// device images. [`run_chain`] drives either the same way.
pub(crate) trait ChainTarget {
    /// The image the ops pass along.
    type Image;
    /// What a failing op returns.
    type Error: From<JobError>;
    /// `cpu` or `gpu`, for the op spans.
    const BACKEND: &'static str;

    /// The image's shape.
    fn shape(img: &Self::Image) -> Shape;

    /// Run one op that is not fused.
    fn op(&mut self, op: &Op, img: Self::Image) -> Result<Self::Image, Self::Error>;

    /// Run a run of per-pixel ops (each `as_point()` is `Some`) in one pass.
    fn point_run(&mut self, ops: &[Op], img: Self::Image) -> Result<Self::Image, Self::Error>;
}

/// Run a chain of ops, fusing runs of per-pixel ops into one pass and
/// checking the deadline before each step.
pub(crate) fn run_chain<T: ChainTarget>(
    target: &mut T,
    mut img: T::Image,
    ops: &[Op],
    ctx: &OpContext,
) -> Result<T::Image, T::Error> {
    let mut i = 0;
    // Once an op's size came from the pixels, the planner's sizes were upper
    // bounds: each later op is planned again against the real size.
    let mut replan = false;
    while i < ops.len() {
        ctx.check_deadline()?;
        let n = ops[i..]
            .iter()
            .take_while(|op| op.as_point().is_some())
            .count();
        if n == 0 {
            let _span =
                tracing::debug_span!("op", op = ops[i].name(), backend = T::BACKEND).entered();
            if replan {
                ops[i].plan(T::shape(&img)).map_err(|e| {
                    JobError::invalid_param(format!(
                        "{} after a content-sized op: {e}",
                        ops[i].name()
                    ))
                })?;
            }
            img = target.op(&ops[i], img)?;
            replan |= ops[i].size_from_content();
            i += 1;
        } else {
            let run = &ops[i..i + n];
            let names: Vec<&str> = run.iter().map(Op::name).collect();
            let _span =
                tracing::debug_span!("op", op = %names.join("+"), backend = T::BACKEND).entered();
            img = target.point_run(run, img)?;
            i += n;
        }
    }
    Ok(img)
}

/// The CPU as a [`ChainTarget`].
struct Cpu<'a>(&'a OpContext);

impl ChainTarget for Cpu<'_> {
    type Image = Frame;
    type Error = JobError;
    const BACKEND: &'static str = "cpu";

    fn shape(frame: &Frame) -> Shape {
        frame.shape()
    }

    fn op(&mut self, op: &Op, frame: Frame) -> Result<Frame, JobError> {
        op.run_cpu(frame, self.0)
    }

    fn point_run(&mut self, ops: &[Op], mut frame: Frame) -> Result<Frame, JobError> {
        let run: Vec<&dyn PointOp> = ops.iter().filter_map(Op::as_point).collect();
        point::run_fused(&mut frame.img, &run);
        Ok(frame)
    }
}

/// Run a chain of ops on the CPU, fusing runs of per-pixel ops into one pass.
pub fn run_chain_cpu(frame: Frame, ops: &[Op], inputs: &OpContext) -> Result<Frame, JobError> {
    run_chain(&mut Cpu(inputs), frame, ops, inputs)
}
