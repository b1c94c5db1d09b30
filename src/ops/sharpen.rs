//! Unsharp mask: `out = orig + amount * (orig - blur(orig, sigma))` per colour
//! channel, left unchanged where `|orig - blur|` is below `threshold` (a
//! fraction of full scale). The blur is `blur`'s Gaussian; alpha is kept.

use multiversion::multiversion;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::blur::{check_sigma, gaussian_kernel, record_blur, separable};
use super::point::round_u8;
use super::{check_range, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/sharpen.wgsl`: the mask step.
    pub(crate) struct SharpenUniform {
        /// Strength.
        pub amount: f32,
        /// Smallest difference sharpened, in levels.
        pub threshold: f32,
    }
}

/// Smallest `amount` of a `sharpen`.
pub(crate) const MIN_AMOUNT: f64 = 0.0;
/// Largest `amount` of a `sharpen`.
pub(crate) const MAX_AMOUNT: f64 = 10.0;
/// Smallest `threshold` of a `sharpen`.
pub(crate) const MIN_THRESHOLD: f64 = 0.0;
/// Largest `threshold` of a `sharpen` (full scale).
pub(crate) const MAX_THRESHOLD: f64 = 1.0;

/// Parameters of `sharpen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SharpenParams {
    /// Blur radius as a Gaussian sigma, `0.1..=64`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = super::blur::MIN_SIGMA, max = super::blur::MAX_SIGMA))]
    pub sigma: Option<f64>,
    /// Strength, `0..=10`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_AMOUNT, max = MAX_AMOUNT))]
    pub amount: Option<f64>,
    /// Smallest difference sharpened, fraction of full scale `0..=1`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_THRESHOLD, max = MAX_THRESHOLD))]
    pub threshold: Option<f64>,
}

/// A validated `sharpen`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sharpen {
    /// The Gaussian kernel.
    pub kernel: Vec<f32>,
    /// Strength.
    pub amount: f32,
    /// Threshold in 8-bit levels.
    pub threshold: f32,
}

impl Operation for Sharpen {
    const NAME: &'static str = "sharpen";
    const C2PA_ACTION: &'static str = "c2pa.filtered";
    const SUMMARY: &'static str = "unsharp mask: the original plus `amount` times its difference from a Gaussian blur, where that difference is at least `threshold`";
    type Params = SharpenParams;
    const SHADER: &'static str = include_str!("../../shaders/sharpen.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "sharpen", "sigma": 1.0, "amount": 1.0}"#,
        r#"{"op": "sharpen"}"#,
        r#"{"op": "sharpen", "sigma": 2.0, "amount": 1.5, "threshold": 0.05}"#,
    ];
    const PARITY: Tolerance = Tolerance::FLOAT;

    fn validate(p: &SharpenParams, _: &Limits) -> Result<Self, ParamError> {
        let sigma = check_sigma("sigma", p.sigma.unwrap_or(1.0))?;
        let amount = check_range("amount", p.amount.unwrap_or(1.0), MIN_AMOUNT, MAX_AMOUNT)?;
        let threshold = check_range(
            "threshold",
            p.threshold.unwrap_or(0.0),
            MIN_THRESHOLD,
            MAX_THRESHOLD,
        )?;
        Ok(Self {
            kernel: gaussian_kernel(sigma),
            amount: amount as f32,
            threshold: (threshold * 255.0) as f32,
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        Ok(s)
    }

    fn run_cpu(&self, mut frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        // The mask is applied row by row as the blurred rows come, so the
        // blurred image never exists whole.
        separable(&mut frame.img, &self.kernel, |orig, blurred| {
            mask(orig, blurred, self.amount, self.threshold)
        });
        Ok(frame)
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let blurred = record_blur(step.rec, step.src, &self.kernel)?;
        let params = SharpenUniform {
            amount: self.amount,
            threshold: self.threshold,
        };
        step.rec.kernel(
            "sharpen",
            step.src,
            step.src.dims(),
            Aux::Image(&blurred),
            params,
        )
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![SharpenUniform::layout()]
    }
}

/// `out = orig + amount * (orig - blurred)` on the colour channels of RGBA8
/// pixels, where the difference is at least `threshold` levels.
#[multiversion(targets = "simd")]
fn mask(orig: &mut [u8], blurred: &[u8], amount: f32, threshold: f32) {
    // Four pixels at a time, without branches, so that it vectorises: every
    // channel is computed, and a mask keeps alpha and the channels below
    // the threshold as they were.
    const COLOUR: [u8; 16] = [
        255, 255, 255, 0, 255, 255, 255, 0, 255, 255, 255, 0, 255, 255, 255, 0,
    ];
    let one = |o: u8, b: u8, colour: u8| {
        let d = f32::from(o) - f32::from(b);
        let s = round_u8(f32::from(o) + amount * d);
        let m = colour & u8::from(d.abs() >= threshold).wrapping_neg();
        (s & m) | (o & !m)
    };
    let mut o16 = orig.chunks_exact_mut(16);
    let mut b16 = blurred.chunks_exact(16);
    for (o, b) in (&mut o16).zip(&mut b16) {
        let o: &mut [u8; 16] = o.try_into().expect("16 bytes");
        let b: &[u8; 16] = b.try_into().expect("16 bytes");
        for i in 0..16 {
            o[i] = one(o[i], b[i], COLOUR[i]);
        }
    }
    for (i, (o, &b)) in o16
        .into_remainder()
        .iter_mut()
        .zip(b16.remainder())
        .enumerate()
    {
        *o = one(*o, b, COLOUR[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let lim = Limits::default();
        let p = |s, a, t| SharpenParams {
            sigma: s,
            amount: a,
            threshold: t,
        };
        assert!(Sharpen::validate(&p(None, None, None), &lim).is_ok());
        assert!(Sharpen::validate(&p(Some(1.0), Some(0.6), Some(0.02)), &lim).is_ok());
        assert!(Sharpen::validate(&p(Some(0.0), None, None), &lim).is_err());
        assert!(Sharpen::validate(&p(None, Some(11.0), None), &lim).is_err());
        assert!(Sharpen::validate(&p(None, None, Some(f64::NAN)), &lim).is_err());
    }
}
