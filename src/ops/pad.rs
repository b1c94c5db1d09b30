//! Pad: grow the canvas by a border of a solid colour on each side.

use image::RgbaImage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::color::Color;
use super::{Dims, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep, Recorder};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/pad.wgsl`: where the source goes on the canvas.
    pub(crate) struct PadUniform {
        /// Left edge of the source on the canvas.
        pub x: i32,
        /// Top edge of the source on the canvas.
        pub y: i32,
        /// The canvas colour, packed.
        pub background: u32,
    }
}

/// [`place_on_canvas`] on the GPU.
pub(crate) fn record_place_on_canvas(
    rec: &mut Recorder<'_>,
    src: &GpuImage,
    dims: Dims,
    x: u32,
    y: u32,
    bg: Color,
) -> Result<GpuImage, GpuError> {
    let params = PadUniform {
        x: x as i32,
        y: y as i32,
        background: bg.packed(),
    };
    rec.kernel("pad", src, dims, Aux::None, params)
}

/// Parameters of `pad`; sides default to 0, colour to transparent. Each
/// side is `0..=max_side` (a worker setting, default 65535).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PadParams {
    /// Rows added above, `0..=max_side` (a worker setting, default 65535).
    #[serde(default)]
    #[schemars(range(max = Limits::default().max_side))]
    pub top: u32,
    /// Columns added on the right, `0..=max_side`.
    #[serde(default)]
    #[schemars(range(max = Limits::default().max_side))]
    pub right: u32,
    /// Rows added below, `0..=max_side`.
    #[serde(default)]
    #[schemars(range(max = Limits::default().max_side))]
    pub bottom: u32,
    /// Columns added on the left, `0..=max_side`.
    #[serde(default)]
    #[schemars(range(max = Limits::default().max_side))]
    pub left: u32,
    /// Border colour. Default `#00000000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
}

/// A validated `pad`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pad {
    /// Sides and colour.
    pub p: PadParams,
    /// The border colour.
    pub color: Color,
}

/// Place `img` at (`x`, `y`) on a new canvas of `dims` filled with `bg`.
pub(crate) fn place_on_canvas(img: &RgbaImage, dims: Dims, x: u32, y: u32, bg: Color) -> RgbaImage {
    let mut out = RgbaImage::from_pixel(dims.width, dims.height, bg.rgba());
    let row = img.width() as usize * 4;
    let out_row = dims.width as usize * 4;
    for (r, src) in img.as_raw().chunks_exact(row.max(1)).enumerate() {
        let start = (y as usize + r) * out_row + x as usize * 4;
        out.as_mut()[start..start + row].copy_from_slice(src);
    }
    out
}

impl Operation for Pad {
    const NAME: &'static str = "pad";
    const SUMMARY: &'static str = "grow the canvas by a border of a solid colour on each side";
    type Params = PadParams;
    const SHADER: &'static str = include_str!("../../shaders/pad.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r##"{"op": "pad", "top": 8, "right": 8, "bottom": 8, "left": 8, "color": "#ffffff"}"##,
        r##"{"op": "pad", "top": 2, "right": 3, "bottom": 0, "left": 1, "color": "#ff000080"}"##,
        r#"{"op": "pad", "top": 0, "right": 0, "bottom": 5, "left": 0}"#,
    ];
    const PARITY: Tolerance = Tolerance::EXACT;

    fn validate(p: &PadParams, lim: &Limits) -> Result<Self, ParamError> {
        for (name, v) in [
            ("top", p.top),
            ("right", p.right),
            ("bottom", p.bottom),
            ("left", p.left),
        ] {
            if v > lim.max_side {
                return Err(ParamError::range(name, &format!("0..={}", lim.max_side)));
            }
        }
        Ok(Self {
            p: p.clone(),
            color: p.color.unwrap_or(Color::TRANSPARENT),
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        let p = &self.p;
        let w = u64::from(s.dims.width) + u64::from(p.left) + u64::from(p.right);
        let h = u64::from(s.dims.height) + u64::from(p.top) + u64::from(p.bottom);
        let too_big = || ParamError::new("", format!("padded size {w}x{h} is too large"));
        Ok(Shape {
            dims: Dims::new(
                w.try_into().map_err(|_| too_big())?,
                h.try_into().map_err(|_| too_big())?,
            ),
            ..s
        })
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        let dims = self.plan(frame.shape())?.dims;
        let img = place_on_canvas(&frame.img, dims, self.p.left, self.p.top, self.color);
        Ok(Frame { img, ..frame })
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let dims = self
            .plan(step.src.shape())
            .map_err(|e| GpuError::Plan(e.to_string()))?
            .dims;
        record_place_on_canvas(
            step.rec,
            step.src,
            dims,
            self.p.left,
            self.p.top,
            self.color,
        )
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![PadUniform::layout()]
    }
}
