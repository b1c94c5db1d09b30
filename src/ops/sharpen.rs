//! Unsharp mask: `out = orig + amount * (orig - blur(orig, sigma))` per colour
//! channel, left unchanged where `|orig - blur|` is below `threshold` (a
//! fraction of full scale). The blur is `blur`'s Gaussian; alpha is kept.

use multiversion::multiversion;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::blur::{check_sigma, gaussian_kernel, horizontal, vertical};
use super::point::round_u8;
use super::{check_range, Frame, OpContext, Operation, Shape};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// Parameters of `sharpen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharpenParams {
    /// Blur radius as a Gaussian sigma, `0.1..=64`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    /// Strength, `0..=10`. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// Smallest difference sharpened, fraction of full scale `0..=1`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    type Params = SharpenParams;

    fn validate(p: &SharpenParams, _: &Limits) -> Result<Self, ParamError> {
        let sigma = check_sigma("sigma", p.sigma.unwrap_or(1.0))?;
        let amount = check_range("amount", p.amount.unwrap_or(1.0), 0.0, 10.0)?;
        let threshold = check_range("threshold", p.threshold.unwrap_or(0.0), 0.0, 1.0)?;
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
        // The mask is applied row by row as the vertical pass produces the
        // blurred rows, so the blurred image never exists whole.
        let tmp = horizontal(&frame.img, &self.kernel);
        let w = frame.img.width() as usize;
        vertical(
            &tmp,
            w,
            &self.kernel,
            frame.img.as_mut(),
            |orig, blurred| mask(orig, blurred, self.amount, self.threshold),
        );
        Ok(frame)
    }
}

/// `out = orig + amount * (orig - blurred)` on the colour channels of RGBA8
/// pixels, where the difference is at least `threshold` levels.
#[multiversion(targets = "simd")]
fn mask(orig: &mut [u8], blurred: &[u8], amount: f32, threshold: f32) {
    for (op, bp) in orig.chunks_exact_mut(4).zip(blurred.chunks_exact(4)) {
        for c in 0..3 {
            let d = f32::from(op[c]) - f32::from(bp[c]);
            if d.abs() >= threshold {
                op[c] = round_u8(f32::from(op[c]) + amount * d);
            }
        }
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
