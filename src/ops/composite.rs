//! Composite another image (a model's patch, a watermark, a sticker) onto
//! this one, with an opacity and a blend mode, placed by gravity or at
//! `x`/`y` (top-left corner, may be negative; whatever falls outside the
//! base is clipped). Pixels of the base outside the pasted image are left as
//! they are, whatever the mode. The pasted image's own alpha is honoured,
//! and like any op a `composite` may carry a `mask` ([`super::mask`]): a
//! generative-fill patch goes back through the model's soft mask.
//!
//! `overlay` is the same op under its older name (`"op": "overlay"` is read
//! as `composite`).
//!
//! Compositing is W3C Compositing and Blending level 1: one of its sixteen
//! blend modes (source-over with a blend function) or one of the Porter-Duff
//! operators, as [`super::blend`] defines them, on straight-alpha colours
//! in `0..=1` with the pasted image's alpha scaled by `opacity`.

use image::RgbaImage;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::point::quantize;
use super::{check_range, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep};
use crate::gpu::uniform::{GpuEnum, Uniform, UniformLayout};

pub use super::blend::{composite, Blend};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/composite.wgsl`.
    pub(crate) struct CompositeUniform {
        /// Left edge of the pasted image on the base.
        pub x: i32,
        /// Top edge of the pasted image on the base.
        pub y: i32,
        /// Composite width.
        pub width: i32,
        /// Composite height.
        pub height: i32,
        /// A [`Blend`] constant.
        pub blend: u32,
        /// Opacity, `0..=1`.
        pub opacity: f32,
    }
}

/// Where the pasted image sits on the base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Gravity {
    /// Centred.
    #[default]
    Center,
    /// Top edge, centred horizontally.
    North,
    /// Bottom edge, centred horizontally.
    South,
    /// Right edge, centred vertically.
    East,
    /// Left edge, centred vertically.
    West,
    /// Top-right corner.
    NorthEast,
    /// Top-left corner.
    NorthWest,
    /// Bottom-right corner.
    SouthEast,
    /// Bottom-left corner.
    SouthWest,
}

/// Longest `source` of a `composite`, in bytes.
pub(crate) const MAX_SOURCE_LEN: usize = 512;
/// Smallest `opacity` of a `composite`.
pub(crate) const MIN_OPACITY: f64 = 0.0;
/// Largest `opacity` of a `composite`.
pub(crate) const MAX_OPACITY: f64 = 1.0;

/// Parameters of `composite`. Placement is `gravity` or `x` and `y` together,
/// a rule the JSON Schema does not express.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompositeParams {
    /// An object of the same image (`logo.png`), or `image/object` under an
    /// allowed watermark prefix (`watermarks/acme/logo.png`). The prefixes
    /// are a worker setting (`watermark_prefixes`, none by default), which
    /// the schema cannot state: it gives the grammar of both forms.
    #[schemars(
        regex(pattern = crate::keys::object_ref_pattern()),
        length(min = 1, max = MAX_SOURCE_LEN),
        extend("not" = crate::keys::foreign_key_refusal())
    )]
    pub source: String,
    /// Placement; default `center`. Not with `x`/`y` (not expressed in the
    /// schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gravity: Option<Gravity>,
    /// Left edge of the pasted image on the base, `-max_side..=max_side` (a
    /// worker setting, default 65535); give `x` and `y` together (not
    /// expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(
        min = -i64::from(Limits::default().max_side),
        max = Limits::default().max_side
    ))]
    pub x: Option<i32>,
    /// Top edge of the pasted image on the base, `-max_side..=max_side` (a
    /// worker setting, default 65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(
        min = -i64::from(Limits::default().max_side),
        max = Limits::default().max_side
    ))]
    pub y: Option<i32>,
    /// `0..=1`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_OPACITY, max = MAX_OPACITY))]
    pub opacity: Option<f64>,
    /// Blend mode or compositing operator (W3C Compositing and Blending
    /// Level 1). Default `normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blend: Option<Blend>,
}

/// How the pasted image is placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Placement {
    /// By gravity.
    Gravity(Gravity),
    /// At a fixed top-left corner.
    At(i64, i64),
}

/// A validated `composite`.
#[derive(Debug, Clone, PartialEq)]
pub struct Composite {
    /// The `source` string, the key into [`OpContext::overlays`].
    pub source: String,
    /// Placement.
    pub(crate) placement: Placement,
    /// Opacity.
    pub opacity: f32,
    /// Blend mode.
    pub blend: Blend,
}

impl Composite {
    /// Top-left corner of an image of `ow`x`oh` on a base of `bw`x`bh`.
    pub fn position(&self, bw: u32, bh: u32, ow: u32, oh: u32) -> (i64, i64) {
        let (dx, dy) = (i64::from(bw) - i64::from(ow), i64::from(bh) - i64::from(oh));
        let (cx, cy) = (dx.div_euclid(2), dy.div_euclid(2));
        match self.placement {
            Placement::At(x, y) => (x, y),
            Placement::Gravity(g) => match g {
                Gravity::Center => (cx, cy),
                Gravity::North => (cx, 0),
                Gravity::South => (cx, dy),
                Gravity::East => (dx, cy),
                Gravity::West => (0, cy),
                Gravity::NorthEast => (dx, 0),
                Gravity::NorthWest => (0, 0),
                Gravity::SouthEast => (dx, dy),
                Gravity::SouthWest => (0, dy),
            },
        }
    }
}

impl Operation for Composite {
    const NAME: &'static str = "composite";
    const SUMMARY: &'static str = "paste another image (a model's patch, a watermark) through its alpha at x/y or a gravity, with an opacity and any W3C Compositing and Blending Level 1 blend mode or Porter-Duff operator";
    const ALIASES: &'static [&'static str] = &["overlay"];
    type Params = CompositeParams;
    const SHADER: &'static str = include_str!("../../shaders/composite.wgsl");
    /// The parity test and the bench provide `logo.png`.
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "composite", "source": "logo.png", "gravity": "south_east", "opacity": 0.5}"#,
        r#"{"op": "composite", "source": "logo.png", "x": 2, "y": 1, "opacity": 0.7, "blend": "multiply"}"#,
        r#"{"op": "composite", "source": "logo.png", "x": -5, "y": -3, "blend": "screen"}"#,
        r#"{"op": "composite", "source": "logo.png", "gravity": "center", "opacity": 0.3, "blend": "screen"}"#,
        r#"{"op": "composite", "source": "logo.png", "gravity": "north_west", "blend": "multiply"}"#,
        r#"{"op": "composite", "source": "logo.png", "x": 1, "y": 0, "opacity": 0.8, "blend": "soft_light"}"#,
        r#"{"op": "composite", "source": "logo.png", "gravity": "south", "blend": "luminosity"}"#,
        r#"{"op": "composite", "source": "logo.png", "x": -2, "y": 2, "opacity": 0.9, "blend": "dst_atop"}"#,
        r#"{"op": "composite", "source": "logo.png", "x": 1, "y": 1, "blend": "overlay", "mask": {"object": "mask.png", "fit": "fill", "feather": 1.5}}"#,
        r#"{"op": "overlay", "source": "logo.png", "gravity": "north", "mask": {"object": "mask.png", "fit": "contain"}}"#,
    ];
    const PARITY: Tolerance = Tolerance::FLOAT;

    fn validate(p: &CompositeParams, lim: &Limits) -> Result<Self, ParamError> {
        super::check_object_ref("source", &p.source)?;
        let max = i64::from(lim.max_side);
        let placement = match (p.gravity, p.x, p.y) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ParamError::new("gravity", "give gravity or x/y, not both"))
            }
            (g, None, None) => Placement::Gravity(g.unwrap_or_default()),
            (None, Some(x), Some(y)) => {
                for (name, v) in [("x", x), ("y", y)] {
                    if !(-max..=max).contains(&i64::from(v)) {
                        return Err(ParamError::range(name, &format!("-{max}..={max}")));
                    }
                }
                Placement::At(x.into(), y.into())
            }
            _ => return Err(ParamError::new("x", "give x and y together")),
        };
        Ok(Self {
            source: p.source.clone(),
            placement,
            opacity: check_range(
                "opacity",
                p.opacity.unwrap_or(1.0),
                MIN_OPACITY,
                MAX_OPACITY,
            )? as f32,
            blend: p.blend.unwrap_or_default(),
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        Ok(s)
    }

    fn run_cpu(&self, mut frame: Frame, inputs: &OpContext) -> Result<Frame, JobError> {
        let top = inputs
            .overlays
            .get(&self.source)
            .ok_or_else(|| JobError::internal("overlay image was not fetched"))?;
        composite_onto(&mut frame.img, top, self);
        Ok(frame)
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let top = step.inputs.overlay(&self.source)?;
        let (x, y) = self.position(step.src.width, step.src.height, top.width, top.height);
        let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let params = CompositeUniform {
            x: clamp(x),
            y: clamp(y),
            width: top.width as i32,
            height: top.height as i32,
            blend: self.blend.code(),
            opacity: self.opacity,
        };
        step.rec.kernel(
            "composite",
            step.src,
            step.src.dims(),
            Aux::Image(top),
            params,
        )
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![CompositeUniform::layout()]
    }

    fn wgsl_consts() -> String {
        Blend::wgsl_consts()
    }
}

fn composite_onto(base: &mut RgbaImage, top: &RgbaImage, op: &Composite) {
    let (bw, bh) = (base.width() as i64, base.height() as i64);
    let (ow, oh) = (top.width() as i64, top.height() as i64);
    let (px, py) = op.position(base.width(), base.height(), top.width(), top.height());
    let (x0, x1) = (px.max(0), (px + ow).min(bw));
    let (y0, y1) = (py.max(0), (py + oh).min(bh));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let top_raw = top.as_raw();
    let row = bw as usize * 4;
    base.as_mut()
        .par_chunks_mut(row)
        .enumerate()
        .for_each(|(y, line)| {
            let y = y as i64;
            if y < y0 || y >= y1 {
                return;
            }
            for x in x0..x1 {
                let bi = x as usize * 4;
                let ti = (((y - py) * ow + (x - px)) * 4) as usize;
                let f = |v: u8| f32::from(v) / 255.0;
                let mut s = [
                    f(top_raw[ti]),
                    f(top_raw[ti + 1]),
                    f(top_raw[ti + 2]),
                    f(top_raw[ti + 3]),
                ];
                s[3] *= op.opacity;
                let b = [
                    f(line[bi]),
                    f(line[bi + 1]),
                    f(line[bi + 2]),
                    f(line[bi + 3]),
                ];
                let o = composite(op.blend, s, b);
                line[bi..bi + 4].copy_from_slice(&o.map(quantize));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> CompositeParams {
        CompositeParams {
            source: "logo.png".into(),
            gravity: None,
            x: None,
            y: None,
            opacity: None,
            blend: None,
        }
    }

    #[test]
    fn validation() {
        let lim = Limits::default();
        assert!(Composite::validate(&p(), &lim).is_ok());
        assert!(Composite::validate(
            &CompositeParams {
                x: Some(1),
                y: Some(2),
                ..p()
            },
            &lim
        )
        .is_ok());
        for bad in [
            CompositeParams { x: Some(1), ..p() },
            CompositeParams {
                gravity: Some(Gravity::North),
                x: Some(1),
                y: Some(1),
                ..p()
            },
            CompositeParams {
                opacity: Some(1.5),
                ..p()
            },
            CompositeParams {
                opacity: Some(f64::NAN),
                ..p()
            },
            CompositeParams {
                source: String::new(),
                ..p()
            },
            CompositeParams {
                x: Some(i32::MAX),
                y: Some(0),
                ..p()
            },
        ] {
            assert!(Composite::validate(&bad, &lim).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gravity_positions() {
        let mut o = Composite::validate(&p(), &Limits::default()).unwrap();
        assert_eq!(o.position(100, 50, 10, 10), (45, 20));
        o.placement = Placement::Gravity(Gravity::SouthEast);
        assert_eq!(o.position(100, 50, 10, 10), (90, 40));
        o.placement = Placement::Gravity(Gravity::Center);
        assert_eq!(o.position(10, 10, 15, 15), (-3, -3));
    }
}
