//! Curves: a tone curve through control points, for the colour channels
//! together or one of them.
//!
//! The curve is the monotone cubic (Fritsch–Carlson) interpolation of the
//! points: it passes through every point, never overshoots between them
//! (a rising run of points gives a rising curve), and is flat beyond the
//! first and last point. It is sampled into a tone table ([`super::tone`])
//! and fused with the other per-pixel ops. Per-channel curves are several
//! `curves` ops, one per channel, fused into the same pass.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::point::PointOperation;
use super::tone::{Channel, ToneOp, ToneTable};
use crate::config::Limits;
use crate::error::ParamError;

/// Fewest control points of a curve.
pub(crate) const MIN_POINTS: usize = 2;
/// Most control points of a curve.
pub(crate) const MAX_POINTS: usize = 16;

/// A control point: input and output level, each `0..=1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct CurvePoint(
    /// Input level.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub f64,
    /// Output level.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub f64,
);

/// Parameters of `curves`. The points' inputs must rise strictly (a rule
/// the JSON Schema does not express).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CurvesParams {
    /// The channels changed: `rgb` (default), `red`, `green` or `blue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Control points `[input, output]`, 2 to 16, inputs rising.
    #[schemars(length(min = MIN_POINTS, max = MAX_POINTS))]
    pub points: Vec<CurvePoint>,
}

/// A validated `curves`, as its tone table.
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    /// The sampled curve.
    pub(crate) tone: ToneTable,
}

/// A monotone cubic through points with strictly rising `x`.
#[derive(Debug, Clone)]
pub(crate) struct MonotoneCubic {
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// The tangent at each point.
    ms: Vec<f64>,
}

impl MonotoneCubic {
    /// Fritsch–Carlson tangents: the mean of the neighbouring secants (zero
    /// at a local extremum), scaled down where they would overshoot.
    pub fn new(points: &[(f64, f64)]) -> Self {
        let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
        let n = xs.len();
        let d: Vec<f64> = (0..n - 1)
            .map(|k| (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]))
            .collect();
        let mut ms = vec![0.0; n];
        ms[0] = d[0];
        ms[n - 1] = d[n - 2];
        for k in 1..n - 1 {
            ms[k] = if d[k - 1] * d[k] > 0.0 {
                (d[k - 1] + d[k]) / 2.0
            } else {
                0.0
            };
        }
        for k in 0..n - 1 {
            if d[k] == 0.0 {
                ms[k] = 0.0;
                ms[k + 1] = 0.0;
                continue;
            }
            let (a, b) = (ms[k] / d[k], ms[k + 1] / d[k]);
            let h = a.hypot(b);
            if h > 3.0 {
                ms[k] = 3.0 / h * a * d[k];
                ms[k + 1] = 3.0 / h * b * d[k];
            }
        }
        Self { xs, ys, ms }
    }

    /// The curve at `x`: cubic Hermite between the neighbouring points,
    /// the end values beyond them.
    pub(crate) fn eval(&self, x: f64) -> f64 {
        let n = self.xs.len();
        if x <= self.xs[0] {
            return self.ys[0];
        }
        if x >= self.xs[n - 1] {
            return self.ys[n - 1];
        }
        let k = self.xs.partition_point(|&xk| xk <= x) - 1;
        let h = self.xs[k + 1] - self.xs[k];
        let t = (x - self.xs[k]) / h;
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * self.ys[k]
            + (t3 - 2.0 * t2 + t) * h * self.ms[k]
            + (-2.0 * t3 + 3.0 * t2) * self.ys[k + 1]
            + (t3 - t2) * h * self.ms[k + 1]
    }
}

impl PointOperation for Curves {
    const NAME: &'static str = "curves";
    const SUMMARY: &'static str =
        "a monotone cubic tone curve through 2 to 16 control points, for RGB or one channel";
    type Params = CurvesParams;
    const SHADER: &'static str = include_str!("../../shaders/curves.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "curves", "points": [[0, 0], [0.25, 0.18], [0.75, 0.85], [1, 1]]}"#,
        r#"{"op": "curves", "channel": "green", "points": [[0, 0.1], [0.5, 0.4], [1, 0.9]]}"#,
        r#"{"op": "curves", "channel": "red", "points": [[0.1, 1], [0.9, 0]]}"#,
    ];

    fn validate(p: &CurvesParams, _: &Limits) -> Result<Self, ParamError> {
        if !(MIN_POINTS..=MAX_POINTS).contains(&p.points.len()) {
            return Err(ParamError::new(
                "points",
                format!("must hold {MIN_POINTS}..={MAX_POINTS} points"),
            ));
        }
        for (i, &CurvePoint(x, y)) in p.points.iter().enumerate() {
            for v in [x, y] {
                if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                    return Err(ParamError::range(&format!("points[{i}]"), "0..=1"));
                }
            }
            if i > 0 && x <= p.points[i - 1].0 {
                return Err(ParamError::new(
                    &format!("points[{i}]"),
                    "inputs must rise from one point to the next",
                ));
            }
        }
        let points: Vec<(f64, f64)> = p.points.iter().map(|p| (p.0, p.1)).collect();
        let curve = MonotoneCubic::new(&points);
        Ok(Self {
            tone: ToneTable::sample(p.channel.unwrap_or_default(), |x| curve.eval(x)),
        })
    }
}

impl ToneOp for Curves {
    fn tone(&self) -> &ToneTable {
        &self.tone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(points: &[(f64, f64)]) -> Result<Curves, ParamError> {
        let p = CurvesParams {
            channel: None,
            points: points.iter().map(|&(x, y)| CurvePoint(x, y)).collect(),
        };
        Curves::validate(&p, &Limits::default())
    }

    #[test]
    fn validation() {
        assert!(v(&[(0.0, 0.0), (1.0, 1.0)]).is_ok());
        assert_eq!(v(&[(0.0, 0.0)]).unwrap_err().param, "points");
        let many: Vec<_> = (0..17).map(|i| (i as f64 / 16.0, 0.5)).collect();
        assert_eq!(v(&many).unwrap_err().param, "points");
        assert_eq!(v(&[(0.5, 0.0), (0.5, 1.0)]).unwrap_err().param, "points[1]");
        assert_eq!(v(&[(0.0, 0.0), (1.1, 1.0)]).unwrap_err().param, "points[1]");
        assert!(v(&[(f64::NAN, 0.0), (1.0, 1.0)]).is_err());
    }

    #[test]
    fn passes_through_points_without_overshoot() {
        let pts = [(0.0, 0.0), (0.3, 0.6), (0.35, 0.62), (1.0, 1.0)];
        let c = MonotoneCubic::new(&pts);
        for (x, y) in pts {
            assert!((c.eval(x) - y).abs() < 1e-12);
        }
        let mut last = 0.0;
        for i in 0..=1000 {
            let y = c.eval(i as f64 / 1000.0);
            assert!(y >= last - 1e-12, "falls at {i}");
            last = y;
        }
    }
}
