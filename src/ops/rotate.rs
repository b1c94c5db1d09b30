//! Rotate clockwise: multiples of 90 degrees exactly; any other angle onto a
//! canvas grown to hold the whole rotated image, filled with `background`.
//!
//! Any-angle sampling: each output pixel centre is mapped back into the
//! source by the inverse rotation about the two canvases' centres and sampled
//! bilinearly in premultiplied alpha; taps outside the source read the
//! background colour.

use image::RgbaImage;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::auto_orient::record_orientation;
use super::color::Color;
use super::{check_range, Dims, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/rotate.wgsl`: the any-angle rotation.
    pub(crate) struct RotateUniform {
        /// Sine of the clockwise angle.
        pub sin: f32,
        /// Its cosine.
        pub(crate) cos: f32,
        /// The canvas colour, packed.
        pub background: u32,
    }
}

/// Smallest `degrees` of a `rotate`.
pub(crate) const MIN_DEGREES: f64 = -360.0;
/// Largest `degrees` of a `rotate`.
pub(crate) const MAX_DEGREES: f64 = 360.0;

/// Parameters of `rotate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateParams {
    /// Clockwise angle in degrees, `-360..=360`.
    #[schemars(range(min = MIN_DEGREES, max = MAX_DEGREES))]
    pub degrees: f64,
    /// Canvas colour; required unless the angle is a multiple of 90 (not
    /// expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Color>,
}

/// A validated `rotate`.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotate {
    /// Exactly 0, 90, 180 or 270 degrees clockwise.
    Exact(u16),
    /// Any other angle.
    Any {
        /// Clockwise angle in radians.
        radians: f64,
        /// Canvas colour.
        background: Color,
    },
}

/// The canvas that holds a `w`x`h` image rotated by `radians`.
pub(crate) fn rotated_dims(w: u32, h: u32, radians: f64) -> Dims {
    let (s, c) = radians.sin_cos();
    let (w, h) = (f64::from(w), f64::from(h));
    let side = |v: f64| (v - 1e-6).ceil().max(1.0) as u32;
    Dims::new(
        side(w * c.abs() + h * s.abs()),
        side(w * s.abs() + h * c.abs()),
    )
}

impl Operation for Rotate {
    const NAME: &'static str = "rotate";
    const C2PA_ACTION: &'static str = "c2pa.orientation";
    const SUMMARY: &'static str = "rotate clockwise: multiples of 90 degrees exactly, any other angle onto a canvas grown to hold the image";
    type Params = RotateParams;
    const SHADER: &'static str = include_str!("../../shaders/rotate.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "rotate", "degrees": 90}"#,
        r#"{"op": "rotate", "degrees": 180}"#,
        r#"{"op": "rotate", "degrees": 270}"#,
        r#"{"op": "rotate", "degrees": 0}"#,
        r##"{"op": "rotate", "degrees": 10, "background": "#20408080"}"##,
        r##"{"op": "rotate", "degrees": -45, "background": "#20408080"}"##,
        r##"{"op": "rotate", "degrees": 123.4, "background": "#20408080"}"##,
    ];
    // Any angle samples bilinearly in float arithmetic.
    const PARITY: Tolerance = Tolerance::FLOAT;

    fn validate(p: &RotateParams, _: &Limits) -> Result<Self, ParamError> {
        let deg = check_range("degrees", p.degrees, MIN_DEGREES, MAX_DEGREES)?;
        if deg % 90.0 == 0.0 {
            return Ok(Self::Exact(deg.rem_euclid(360.0) as u16));
        }
        let background = p.background.ok_or_else(|| {
            ParamError::new(
                "background",
                "is required when degrees is not a multiple of 90",
            )
        })?;
        Ok(Self::Any {
            radians: deg.to_radians(),
            background,
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        let d = s.dims;
        let dims = match self {
            Self::Exact(90 | 270) => Dims::new(d.height, d.width),
            Self::Exact(_) => d,
            Self::Any { radians, .. } => rotated_dims(d.width, d.height, *radians),
        };
        Ok(Shape { dims, ..s })
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        use image::imageops;
        let img = match self {
            Self::Exact(90) => imageops::rotate90(&frame.img),
            Self::Exact(180) => imageops::rotate180(&frame.img),
            Self::Exact(270) => imageops::rotate270(&frame.img),
            Self::Exact(_) => return Ok(frame),
            Self::Any {
                radians,
                background,
            } => {
                let dims = self.plan(frame.shape())?.dims;
                rotate_any(&frame.img, dims, *radians, *background)
            }
        };
        Ok(Frame { img, ..frame })
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        match self {
            Self::Exact(90) => record_orientation(step.rec, step.src, 6),
            Self::Exact(180) => record_orientation(step.rec, step.src, 3),
            Self::Exact(270) => record_orientation(step.rec, step.src, 8),
            Self::Exact(_) => Ok(step.src.clone()),
            Self::Any {
                radians,
                background,
            } => {
                let dims = self
                    .plan(step.src.shape())
                    .map_err(|e| GpuError::Plan(e.to_string()))?
                    .dims;
                let params = RotateUniform {
                    sin: radians.sin() as f32,
                    cos: radians.cos() as f32,
                    background: background.packed(),
                };
                step.rec.kernel("rotate", step.src, dims, Aux::None, params)
            }
        }
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![RotateUniform::layout()]
    }
}

fn rotate_any(src: &RgbaImage, dims: Dims, radians: f64, bg: Color) -> RgbaImage {
    let (sin, cos) = (radians.sin() as f32, radians.cos() as f32);
    let (sw, sh) = (src.width() as i64, src.height() as i64);
    let (scx, scy) = (sw as f32 / 2.0, sh as f32 / 2.0);
    let (dcx, dcy) = (dims.width as f32 / 2.0, dims.height as f32 / 2.0);
    let bgf = bg.0.map(|v| f32::from(v) / 255.0);
    let raw = src.as_raw();
    let tap = |x: i64, y: i64| -> [f32; 4] {
        if x < 0 || y < 0 || x >= sw || y >= sh {
            bgf
        } else {
            let i = ((y * sw + x) * 4) as usize;
            [raw[i], raw[i + 1], raw[i + 2], raw[i + 3]].map(|v| f32::from(v) / 255.0)
        }
    };
    let mut out = RgbaImage::new(dims.width, dims.height);
    let row = dims.width as usize * 4;
    out.as_mut()
        .par_chunks_mut(row)
        .enumerate()
        .for_each(|(y, line)| {
            let dy = y as f32 + 0.5 - dcy;
            for (x, px) in line.chunks_exact_mut(4).enumerate() {
                let dx = x as f32 + 0.5 - dcx;
                // Inverse of a clockwise rotation (y axis pointing down).
                let sx = dx * cos + dy * sin + scx - 0.5;
                let sy = -dx * sin + dy * cos + scy - 0.5;
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let (x0, y0) = (x0 as i64, y0 as i64);
                let mut acc = [0f32; 4];
                for (tx, ty, w) in [
                    (x0, y0, (1.0 - fx) * (1.0 - fy)),
                    (x0 + 1, y0, fx * (1.0 - fy)),
                    (x0, y0 + 1, (1.0 - fx) * fy),
                    (x0 + 1, y0 + 1, fx * fy),
                ] {
                    let c = tap(tx, ty);
                    let wa = w * c[3];
                    acc[0] += wa * c[0];
                    acc[1] += wa * c[1];
                    acc[2] += wa * c[2];
                    acc[3] += wa;
                }
                let a = acc[3];
                let rgb = if a > 0.0 {
                    [acc[0] / a, acc[1] / a, acc[2] / a]
                } else {
                    [0.0; 3]
                };
                px.copy_from_slice(&[
                    super::point::quantize(rgb[0]),
                    super::point::quantize(rgb[1]),
                    super::point::quantize(rgb[2]),
                    super::point::quantize(a),
                ]);
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let lim = Limits::default();
        let p = |d, bg| RotateParams {
            degrees: d,
            background: bg,
        };
        assert_eq!(
            Rotate::validate(&p(90.0, None), &lim).unwrap(),
            Rotate::Exact(90)
        );
        assert_eq!(
            Rotate::validate(&p(-90.0, None), &lim).unwrap(),
            Rotate::Exact(270)
        );
        assert_eq!(
            Rotate::validate(&p(360.0, None), &lim).unwrap(),
            Rotate::Exact(0)
        );
        assert!(Rotate::validate(&p(45.0, None), &lim).is_err());
        assert!(Rotate::validate(&p(45.0, Some(Color::TRANSPARENT)), &lim).is_ok());
        assert!(Rotate::validate(&p(f64::NAN, None), &lim).is_err());
        assert!(Rotate::validate(&p(400.0, None), &lim).is_err());
    }

    #[test]
    fn canvas_grows_to_hold_the_image() {
        assert_eq!(
            rotated_dims(100, 50, 90f64.to_radians()),
            Dims::new(50, 100)
        );
        assert_eq!(
            rotated_dims(100, 100, 45f64.to_radians()),
            Dims::new(142, 142)
        );
    }
}
