//! Trim: remove borders of one colour, like libvips' `find_trim`.
//!
//! The background is `background`, or else the top-left pixel. A pixel is
//! background when none of its four channels differs from the background's
//! by more than `threshold` (a fraction of full scale, in whole levels:
//! `round(threshold * 255)`). The result is the smallest rectangle holding
//! every other pixel; an image that is background throughout is an
//! `invalid_param` error, never an empty image.
//!
//! The size of the result depends on the pixels, so the planner treats the
//! input size as an upper bound (trim only shrinks) and the ops after it are
//! checked again against the trimmed size when the job runs ([`super::run_chain`]).
//! On the GPU the image is read back at this point, the rectangle found on
//! the host by the same code as on the CPU, and cut out by the crop kernel.

use image::RgbaImage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::color::Color;
use super::crop::{crop_frame, record_crop};
use super::{check_range, Dims, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{GpuImage, GpuStep};
use crate::gpu::GpuError;

/// Default `threshold`: 10 levels, libvips' default.
pub(crate) const DEFAULT_THRESHOLD: f64 = 10.0 / 255.0;

/// Parameters of `trim`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrimParams {
    /// Largest difference of a channel from the background that still
    /// counts as background, `0..=1` of full scale. Default 10/255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub threshold: Option<f64>,
    /// The border colour. Default: the top-left pixel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Color>,
}

/// A validated `trim`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trim {
    /// Largest background difference, in levels.
    pub threshold: u8,
    /// The border colour, or `None` for the top-left pixel.
    pub background: Option<Color>,
}

/// The rectangle `(x, y, width, height)` of `img` that holds every pixel
/// differing from the background by more than `threshold` levels, or
/// `None` when there is no such pixel.
pub(crate) fn find_trim(
    img: &RgbaImage,
    background: Option<Color>,
    threshold: u8,
) -> Option<[u32; 4]> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let bg = background.map_or(img.get_pixel(0, 0).0, |c| c.0);
    let is_bg = |p: &[u8]| p.iter().zip(bg).all(|(&a, b)| a.abs_diff(b) <= threshold);
    let row = w as usize * 4;
    let raw = img.as_raw();
    let row_has = |y: u32| {
        raw[y as usize * row..(y as usize + 1) * row]
            .chunks_exact(4)
            .any(|p| !is_bg(p))
    };
    let top = (0..h).find(|&y| row_has(y))?;
    let bottom = (top..h).rev().find(|&y| row_has(y))?;
    let col_has = |x: u32| (top..=bottom).any(|y| !is_bg(&img.get_pixel(x, y).0));
    let left = (0..w).find(|&x| col_has(x))?;
    let right = (left..w).rev().find(|&x| col_has(x))?;
    Some([left, top, right - left + 1, bottom - top + 1])
}

impl Trim {
    /// The rectangle to keep, or the error for an all-background image.
    fn rect(&self, img: &RgbaImage) -> Result<[u32; 4], JobError> {
        find_trim(img, self.background, self.threshold).ok_or_else(|| {
            JobError::invalid_param(
                "trim: the whole image is within the threshold of the background",
            )
        })
    }
}

impl Operation for Trim {
    const NAME: &'static str = "trim";
    const C2PA_ACTION: &'static str = "c2pa.cropped";
    const SUMMARY: &'static str =
        "remove borders of one colour (the top-left pixel or `background`) within a threshold";
    type Params = TrimParams;
    const SHADER: &'static str = include_str!("../../shaders/trim.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "trim"}"#,
        r##"{"op": "trim", "threshold": 0.3, "background": "#808080"}"##,
    ];
    const PARITY: Tolerance = Tolerance::EXACT;
    const SIZE_FROM_CONTENT: bool = true;

    fn validate(p: &TrimParams, _: &Limits) -> Result<Self, ParamError> {
        let t = check_range(
            "threshold",
            p.threshold.unwrap_or(DEFAULT_THRESHOLD),
            0.0,
            1.0,
        )?;
        Ok(Self {
            threshold: (t * 255.0).round() as u8,
            background: p.background,
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        // An upper bound: the trimmed size is known once the pixels are.
        Ok(s)
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        let [x, y, w, h] = self.rect(&frame.img)?;
        Ok(crop_frame(frame, x, y, w, h))
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let pixels = step.rec.read_now(step.src)?;
        let [x, y, w, h] = self.rect(&pixels).map_err(GpuError::Job)?;
        record_crop(step.rec, step.src, x, y, Dims::new(w, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn finds_the_content_rectangle() {
        let mut img = RgbaImage::from_pixel(10, 8, Rgba([255, 255, 255, 255]));
        img.put_pixel(3, 2, Rgba([0, 0, 0, 255]));
        img.put_pixel(6, 5, Rgba([250, 250, 250, 255]));
        assert_eq!(find_trim(&img, None, 10), Some([3, 2, 1, 1]));
        assert_eq!(find_trim(&img, None, 0), Some([3, 2, 4, 4]));
        let white = RgbaImage::from_pixel(4, 4, Rgba([255; 4]));
        assert_eq!(find_trim(&white, None, 0), None);
        assert_eq!(
            find_trim(&white, Some(Color([0, 0, 0, 255])), 0),
            Some([0, 0, 4, 4])
        );
    }

    #[test]
    fn validation() {
        let lim = Limits::default();
        assert_eq!(
            Trim::validate(&TrimParams::default(), &lim)
                .unwrap()
                .threshold,
            10
        );
        for bad in [-0.1, 1.1, f64::NAN] {
            let p = TrimParams {
                threshold: Some(bad),
                ..Default::default()
            };
            assert!(Trim::validate(&p, &lim).is_err());
        }
    }
}
