//! Tone curves as tables: what `levels` and `curves` share.
//!
//! A tone op maps one colour channel (or all three) through a function of
//! `0..=1` that is sampled once, at validation, into [`TABLE_SIZE`] entries
//! at `k / 255`. A pixel's channel `c` is looked up with linear
//! interpolation between the two nearest entries, so an 8-bit input (the
//! first op of a fused run) gets the float64 function's value exactly, and a
//! value between grid points (after another fused op) a close one. The GPU
//! stage reads the same table from the stage's aux words (`tone_apply` in
//! `shaders/point.wgsl`) with the same arithmetic.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::point::{map_block, PointOp};

/// Entries of a tone table: one per 8-bit level.
pub(crate) const TABLE_SIZE: usize = 256;

/// Which colour channels a tone op changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Channel {
    /// Red, green and blue alike.
    #[default]
    Rgb,
    /// Red only.
    Red,
    /// Green only.
    Green,
    /// Blue only.
    Blue,
}

impl Channel {
    /// The stage value the shader reads: the channel's index, 3 for all.
    fn code(self) -> f32 {
        match self {
            Channel::Red => 0.0,
            Channel::Green => 1.0,
            Channel::Blue => 2.0,
            Channel::Rgb => 3.0,
        }
    }
}

/// A channel's tone function, sampled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToneTable {
    /// The channel(s) it maps.
    pub channel: Channel,
    /// The function at `k / 255`, `k` in `0..TABLE_SIZE`, in `0..=1`.
    pub table: Vec<f32>,
}

impl ToneTable {
    /// Sample `f` (defined on `0..=1`; its values are clamped to `0..=1`).
    pub fn sample(channel: Channel, f: impl Fn(f64) -> f64) -> Self {
        let table = (0..TABLE_SIZE)
            .map(|k| f(k as f64 / (TABLE_SIZE - 1) as f64).clamp(0.0, 1.0) as f32)
            .collect();
        Self { channel, table }
    }

    /// One channel value through the table.
    #[inline]
    pub fn lookup(&self, c: f32) -> f32 {
        let t = c.clamp(0.0, 1.0) * (TABLE_SIZE - 1) as f32;
        let i = (t as usize).min(TABLE_SIZE - 2);
        let f = t - i as f32;
        let (a, b) = (self.table[i], self.table[i + 1]);
        a + (b - a) * f
    }

    /// One pixel through the table; alpha is kept.
    #[inline]
    pub fn apply(&self, mut px: [f32; 4]) -> [f32; 4] {
        match self.channel {
            Channel::Rgb => {
                for c in &mut px[..3] {
                    *c = self.lookup(*c);
                }
            }
            one => {
                let i = one.code() as usize;
                px[i] = self.lookup(px[i]);
            }
        }
        px
    }
}

/// A per-pixel op that is one tone table (`levels`, `curves`); its
/// [`PointOp`] is the table's.
pub(crate) trait ToneOp: Send + Sync {
    /// The op's table.
    fn tone(&self) -> &ToneTable;
}

impl<T: ToneOp> PointOp for T {
    fn apply(&self, px: [f32; 4]) -> [f32; 4] {
        self.tone().apply(px)
    }

    fn apply_block(&self, block: &mut [[f32; 4]]) {
        let tone = self.tone();
        map_block(block, |px| tone.apply(px));
    }

    fn stage_values(&self) -> Vec<f32> {
        vec![self.tone().channel.code()]
    }

    fn stage_table(&self) -> &[f32] {
        &self.tone().table
    }

    fn per_channel(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_are_exact_and_between_them_linear() {
        let t = ToneTable::sample(Channel::Rgb, |x| x * x);
        for k in 0..TABLE_SIZE {
            let x = k as f32 / 255.0;
            assert!((t.lookup(x) - (k as f32 / 255.0).powi(2)).abs() < 1e-6);
        }
        let mid = (t.table[10] + t.table[11]) / 2.0;
        assert!((t.lookup(10.5 / 255.0) - mid).abs() < 1e-6);
        assert_eq!(t.lookup(-1.0), t.table[0]);
        assert_eq!(t.lookup(2.0), t.table[255]);
    }

    #[test]
    fn one_channel_leaves_the_others() {
        let t = ToneTable::sample(Channel::Green, |x| 1.0 - x);
        assert_eq!(t.apply([0.2, 0.2, 0.2, 0.5])[0], 0.2);
        assert!((t.apply([0.2, 0.2, 0.2, 0.5])[1] - 0.8).abs() < 1e-6);
        assert_eq!(t.apply([0.2, 0.2, 0.2, 0.5])[3], 0.5);
    }
}
