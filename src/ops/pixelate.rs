//! Pixelate: replace each square block of pixels by its average, over the
//! whole image or a rectangle of it (redacting a face, a plate, a name).
//!
//! Blocks of `size` x `size` are laid from the rectangle's top-left corner;
//! those at its right and bottom edges may be narrower. A block's average
//! is taken in premultiplied alpha, so transparent pixels lend no colour:
//! `alpha = round(sum a / n)`, `c = round(sum c a / sum a)` (0 where the
//! block is fully transparent), in integers on both backends, so they
//! agree exactly.

use image::RgbaImage;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{check_rect_inside, Dims, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

/// Smallest block side.
pub(crate) const MIN_SIZE: u32 = 2;
/// Largest block side: 256 x 256 pixels' sums of `c * a` still fit a `u32`,
/// the shader's widest integer.
pub(crate) const MAX_SIZE: u32 = 256;

crate::gpu_uniform! {
    /// `shaders/pixelate.wgsl`: the rectangle and the block grid.
    pub(crate) struct PixelateUniform {
        /// Left edge of the rectangle.
        pub x: u32,
        /// Top edge of the rectangle.
        pub y: u32,
        /// Width of the rectangle.
        pub width: u32,
        /// Height of the rectangle.
        pub height: u32,
        /// Block side.
        pub size: u32,
    }
}

/// Parameters of `pixelate`. The rectangle is `x`, `y`, `width` and
/// `height` together or none of them (the whole image), and must lie inside
/// the image (rules the JSON Schema does not express).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PixelateParams {
    /// Block side in pixels, `2..=256`.
    #[schemars(range(min = MIN_SIZE, max = MAX_SIZE))]
    pub size: u32,
    /// Left edge of the rectangle; give all four of `x`, `y`, `width` and
    /// `height` or none (not expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u32::MAX))]
    pub x: Option<u32>,
    /// Top edge of the rectangle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = u32::MAX))]
    pub y: Option<u32>,
    /// Width of the rectangle, `1..=max_side` (a worker setting, default
    /// 65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = Limits::default().max_side))]
    pub width: Option<u32>,
    /// Height of the rectangle, `1..=max_side`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = Limits::default().max_side))]
    pub height: Option<u32>,
}

/// A rectangle of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// A validated `pixelate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixelate {
    /// Block side.
    pub size: u32,
    /// The rectangle, or `None` for the whole image.
    pub rect: Option<Rect>,
}

impl Pixelate {
    /// The rectangle on an image of `dims`.
    fn rect_on(&self, dims: Dims) -> Rect {
        self.rect.unwrap_or(Rect {
            x: 0,
            y: 0,
            width: dims.width,
            height: dims.height,
        })
    }
}

impl Operation for Pixelate {
    const NAME: &'static str = "pixelate";
    const C2PA_ACTION: &'static str = "c2pa.filtered";
    const SUMMARY: &'static str =
        "replace square blocks by their average, over the image or a rectangle (redaction)";
    type Params = PixelateParams;
    const SHADER: &'static str = include_str!("../../shaders/pixelate.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "pixelate", "size": 16}"#,
        r#"{"op": "pixelate", "size": 3, "x": 2, "y": 1, "width": 7, "height": 5}"#,
        r#"{"op": "pixelate", "size": 256}"#,
        r#"{"op": "pixelate", "size": 4, "mask": {"object": "mask.png", "fit": "cover", "invert": true}}"#,
    ];
    const PARITY: Tolerance = Tolerance::EXACT;

    fn validate(p: &PixelateParams, lim: &Limits) -> Result<Self, ParamError> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&p.size) {
            return Err(ParamError::range(
                "size",
                &format!("{MIN_SIZE}..={MAX_SIZE}"),
            ));
        }
        let rect = match (p.x, p.y, p.width, p.height) {
            (None, None, None, None) => None,
            (Some(x), Some(y), Some(width), Some(height)) => {
                let side = format!("1..={}", lim.max_side);
                if width == 0 || width > lim.max_side {
                    return Err(ParamError::range("width", &side));
                }
                if height == 0 || height > lim.max_side {
                    return Err(ParamError::range("height", &side));
                }
                Some(Rect {
                    x,
                    y,
                    width,
                    height,
                })
            }
            _ => {
                return Err(ParamError::new(
                    "x",
                    "give x, y, width and height together, or none of them",
                ))
            }
        };
        Ok(Self { size: p.size, rect })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        if let Some(r) = self.rect {
            check_rect_inside([r.x, r.y, r.width, r.height], s.dims)?;
        }
        Ok(s)
    }

    fn run_cpu(&self, mut frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        let dims = Dims::new(frame.img.width(), frame.img.height());
        pixelate(&mut frame.img, self.rect_on(dims), self.size);
        Ok(frame)
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let r = self.rect_on(step.src.dims());
        let params = PixelateUniform {
            x: r.x,
            y: r.y,
            width: r.width,
            height: r.height,
            size: self.size,
        };
        let grid = Dims::new(r.width.div_ceil(self.size), r.height.div_ceil(self.size));
        let blocks = step
            .rec
            .kernel("pixelate_blocks", step.src, grid, Aux::None, params)?;
        step.rec.kernel(
            "pixelate",
            step.src,
            step.src.dims(),
            Aux::Image(&blocks),
            params,
        )
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![PixelateUniform::layout()]
    }
}

/// The premultiplied average of the `w` x `h` block at `(x, y)`.
fn block_average(img: &RgbaImage, x: u32, y: u32, w: u32, h: u32) -> [u8; 4] {
    let raw = img.as_raw();
    let stride = img.width() as usize * 4;
    let (mut a, mut c) = (0u32, [0u32; 3]);
    for row in y..y + h {
        let start = row as usize * stride + x as usize * 4;
        for px in raw[start..start + w as usize * 4].chunks_exact(4) {
            let pa = u32::from(px[3]);
            a += pa;
            for i in 0..3 {
                c[i] += u32::from(px[i]) * pa;
            }
        }
    }
    let n = w * h;
    let div = |num: u32, den: u32| ((num + den / 2) / den) as u8;
    let alpha = div(a, n);
    if a == 0 {
        return [0, 0, 0, 0];
    }
    [div(c[0], a), div(c[1], a), div(c[2], a), alpha]
}

/// Pixelate the rectangle `r` of `img` in blocks of `size`.
fn pixelate(img: &mut RgbaImage, r: Rect, size: u32) {
    let (bw, bh) = (r.width.div_ceil(size), r.height.div_ceil(size));
    let averages: Vec<[u8; 4]> = (0..bh)
        .into_par_iter()
        .flat_map_iter(|by| {
            let img = &*img;
            (0..bw).map(move |bx| {
                let (x, y) = (r.x + bx * size, r.y + by * size);
                let w = size.min(r.x + r.width - x);
                let h = size.min(r.y + r.height - y);
                block_average(img, x, y, w, h)
            })
        })
        .collect();
    let stride = img.width() as usize * 4;
    img.as_mut()
        .par_chunks_mut(stride)
        .enumerate()
        .skip(r.y as usize)
        .take(r.height as usize)
        .for_each(|(y, line)| {
            let by = (y as u32 - r.y) / size;
            for x in r.x..r.x + r.width {
                let bx = (x - r.x) / size;
                let i = x as usize * 4;
                line[i..i + 4].copy_from_slice(&averages[(by * bw + bx) as usize]);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(size: u32) -> PixelateParams {
        PixelateParams {
            size,
            x: None,
            y: None,
            width: None,
            height: None,
        }
    }

    #[test]
    fn validation() {
        let lim = Limits::default();
        assert!(Pixelate::validate(&p(2), &lim).is_ok());
        assert!(Pixelate::validate(&p(256), &lim).is_ok());
        for bad in [0, 1, 257] {
            assert_eq!(Pixelate::validate(&p(bad), &lim).unwrap_err().param, "size");
        }
        let partial = PixelateParams { x: Some(1), ..p(4) };
        assert_eq!(Pixelate::validate(&partial, &lim).unwrap_err().param, "x");
        let rect = PixelateParams {
            x: Some(5),
            y: Some(5),
            width: Some(10),
            height: Some(10),
            ..p(4)
        };
        let op = Pixelate::validate(&rect, &lim).unwrap();
        let shape = |w, h| Shape {
            dims: Dims::new(w, h),
            orientation: 1,
        };
        assert!(op.plan(shape(15, 15)).is_ok());
        assert!(op.plan(shape(14, 15)).is_err());
    }

    #[test]
    fn the_largest_block_of_opaque_white_does_not_overflow() {
        let mut img = RgbaImage::from_pixel(256, 256, image::Rgba([255; 4]));
        pixelate(
            &mut img,
            Rect {
                x: 0,
                y: 0,
                width: 256,
                height: 256,
            },
            256,
        );
        assert!(img.pixels().all(|p| p.0 == [255; 4]));
    }
}
