//! 3D colour LUTs: colour grading from an Adobe/Resolve `.cube` object.
//!
//! The op names a `.cube` object (of the same image, or under an allowed
//! watermark prefix, like a composite's image); the worker fetches and
//! parses it once per job ([`Cube::parse`]) and binds it to the op before
//! rendering ([`Operation::bind`]). Each channel of a pixel's RGB is mapped
//! to grid coordinates, `(c - min) * (N - 1) / (max - min)` with the scale
//! computed once, clamped to `0..=N-1`, and looked up in the `N x N x N`
//! grid (red varying fastest, as the format stores it) by trilinear or
//! tetrahedral interpolation; alpha is kept. It is a per-pixel op, fused with the
//! others; the GPU stage reads the grid as its table.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::composite::MAX_SOURCE_LEN;
use super::point::{map_block, PointOp, PointOperation};
use super::{OpContext, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// Smallest grid side of a `.cube`.
pub const MIN_SIZE: usize = 2;
/// Largest grid side of a `.cube` (65 is the largest common size).
pub const MAX_SIZE: usize = 65;
/// Largest `.cube` object, in bytes: a 65-point cube in text is about 8 MB.
pub const MAX_CUBE_BYTES: u64 = 16 << 20;

/// How the grid is interpolated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Between the 4 corners of the tetrahedron holding the colour: the
    /// usual choice for colour grading (smoother neutrals).
    #[default]
    Tetrahedral,
    /// Between the 8 corners of the cell.
    Trilinear,
}

/// Parameters of `lut`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LutParams {
    /// The `.cube` object: an object of the same image (`grade.cube`), or
    /// `image/object` under an allowed watermark prefix (a worker setting).
    #[schemars(
        regex(pattern = crate::keys::object_ref_pattern()),
        length(min = 1, max = MAX_SOURCE_LEN),
        extend("not" = crate::keys::foreign_key_refusal())
    )]
    pub object: String,
    /// `tetrahedral` (default) or `trilinear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpolation: Option<Interpolation>,
}

/// A parsed `.cube`: the grid and its input domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Cube {
    /// Grid side `N`.
    pub size: usize,
    /// Input value mapped to the first grid point, per channel.
    pub domain_min: [f32; 3],
    /// Input value mapped to the last grid point, per channel.
    pub domain_max: [f32; 3],
    /// `N^3` RGB triples, red varying fastest, then green, then blue.
    pub table: Vec<f32>,
    /// The same grid points padded to four floats, for the CPU lookup.
    grid: Vec<[f32; 4]>,
    /// `(N - 1) / (domain_max - domain_min)` per channel.
    scale: [f32; 3],
}

impl Cube {
    /// Parse a `.cube` file; `name` is only for messages. Every error is
    /// `invalid_param` and names the line.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Cube, JobError> {
        let err = |line: usize, what: &str| {
            JobError::invalid_param(format!("lut {name}: line {line}: {what}"))
        };
        if bytes.len() as u64 > MAX_CUBE_BYTES {
            return Err(JobError::limit_exceeded(format!(
                "lut {name}: the .cube object is larger than {MAX_CUBE_BYTES} bytes"
            )));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| JobError::invalid_param(format!("lut {name}: not a text .cube file")))?;
        let mut size: Option<usize> = None;
        let mut domain_min = [0f32; 3];
        let mut domain_max = [1f32; 3];
        let mut table: Vec<f32> = Vec::new();
        let mut last = 0;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            last = n;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or_default();
            let three = |words: std::str::SplitWhitespace<'_>| -> Result<[f32; 3], JobError> {
                let v: Vec<&str> = words.collect();
                if v.len() != 3 {
                    return Err(err(n, "expected three numbers"));
                }
                let mut out = [0f32; 3];
                for (o, w) in out.iter_mut().zip(v) {
                    *o = w
                        .parse::<f32>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| err(n, "expected a finite number"))?;
                }
                Ok(out)
            };
            match first {
                "TITLE" => {}
                "LUT_3D_SIZE" => {
                    if size.is_some() || !table.is_empty() {
                        return Err(err(n, "LUT_3D_SIZE must come once, before the table"));
                    }
                    let s = words
                        .next()
                        .and_then(|w| w.parse::<usize>().ok())
                        .filter(|s| (MIN_SIZE..=MAX_SIZE).contains(s))
                        .ok_or_else(|| {
                            err(n, &format!("LUT_3D_SIZE must be {MIN_SIZE}..={MAX_SIZE}"))
                        })?;
                    size = Some(s);
                    table.reserve(s * s * s * 3);
                }
                "LUT_1D_SIZE" => return Err(err(n, "1D LUTs are not supported; use curves")),
                "DOMAIN_MIN" => domain_min = three(words)?,
                "DOMAIN_MAX" => domain_max = three(words)?,
                "LUT_3D_INPUT_RANGE" => {
                    let v: Vec<f32> = words.filter_map(|w| w.parse().ok()).collect();
                    let [lo, hi] = v[..] else {
                        return Err(err(n, "expected two numbers"));
                    };
                    domain_min = [lo; 3];
                    domain_max = [hi; 3];
                }
                w if w.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                    return Err(err(n, "unknown keyword"));
                }
                _ => {
                    let Some(s) = size else {
                        return Err(err(n, "table data before LUT_3D_SIZE"));
                    };
                    if table.len() == s * s * s * 3 {
                        return Err(err(n, &format!("more than {s}^3 table entries")));
                    }
                    let rgb = three(line.split_whitespace())?;
                    table.extend_from_slice(&rgb);
                }
            }
        }
        let Some(s) = size else {
            return Err(err(last.max(1), "no LUT_3D_SIZE"));
        };
        if table.len() != s * s * s * 3 {
            return Err(err(
                last,
                &format!("{} table entries, {s}^3 expected", table.len() / 3),
            ));
        }
        for c in 0..3 {
            if domain_max[c].partial_cmp(&domain_min[c]) != Some(std::cmp::Ordering::Greater) {
                return Err(JobError::invalid_param(format!(
                    "lut {name}: DOMAIN_MAX must be above DOMAIN_MIN"
                )));
            }
        }
        Ok(Cube::new(s, domain_min, domain_max, table))
    }

    /// A cube from its grid side, domain and `N^3` RGB triples.
    pub fn new(size: usize, domain_min: [f32; 3], domain_max: [f32; 3], table: Vec<f32>) -> Self {
        let grid = table
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2], 0.0])
            .collect();
        let top = (size - 1) as f32;
        Cube {
            size,
            domain_min,
            domain_max,
            table,
            grid,
            scale: std::array::from_fn(|c| top / (domain_max[c] - domain_min[c])),
        }
    }

    /// Grid point `(r, g, b)`.
    #[inline]
    fn at(&self, r: usize, g: usize, b: usize) -> [f32; 4] {
        self.grid[(b * self.size + g) * self.size + r]
    }

    /// Look up one colour.
    #[inline]
    pub fn sample(&self, rgb: [f32; 3], mode: Interpolation) -> [f32; 3] {
        let top = (self.size - 1) as f32;
        let mut i = [0usize; 3];
        let mut f = [0f32; 3];
        for c in 0..3 {
            let t = ((rgb[c] - self.domain_min[c]) * self.scale[c]).clamp(0.0, top);
            i[c] = (t as usize).min(self.size - 2);
            f[c] = t - i[c] as f32;
        }
        let [r, g, b] = i;
        let [fr, fg, fb] = f;
        let c = |dr: usize, dg: usize, db: usize| self.at(r + dr, g + dg, b + db);
        let mix = |w: [f32; 4], p: [[f32; 4]; 4]| {
            let mut o = [0f32; 3];
            for (k, v) in o.iter_mut().enumerate() {
                *v = w[0] * p[0][k] + w[1] * p[1][k] + w[2] * p[2][k] + w[3] * p[3][k];
            }
            o
        };
        match mode {
            Interpolation::Tetrahedral => {
                let (c000, c111) = (c(0, 0, 0), c(1, 1, 1));
                if fr > fg {
                    if fg > fb {
                        mix(
                            [1.0 - fr, fr - fg, fg - fb, fb],
                            [c000, c(1, 0, 0), c(1, 1, 0), c111],
                        )
                    } else if fr > fb {
                        mix(
                            [1.0 - fr, fr - fb, fb - fg, fg],
                            [c000, c(1, 0, 0), c(1, 0, 1), c111],
                        )
                    } else {
                        mix(
                            [1.0 - fb, fb - fr, fr - fg, fg],
                            [c000, c(0, 0, 1), c(1, 0, 1), c111],
                        )
                    }
                } else if fb > fg {
                    mix(
                        [1.0 - fb, fb - fg, fg - fr, fr],
                        [c000, c(0, 0, 1), c(0, 1, 1), c111],
                    )
                } else if fb > fr {
                    mix(
                        [1.0 - fg, fg - fb, fb - fr, fr],
                        [c000, c(0, 1, 0), c(0, 1, 1), c111],
                    )
                } else {
                    mix(
                        [1.0 - fg, fg - fr, fr - fb, fb],
                        [c000, c(0, 1, 0), c(1, 1, 0), c111],
                    )
                }
            }
            Interpolation::Trilinear => {
                let lerp = |a: [f32; 4], b: [f32; 4], t: f32| {
                    [
                        a[0] + (b[0] - a[0]) * t,
                        a[1] + (b[1] - a[1]) * t,
                        a[2] + (b[2] - a[2]) * t,
                        0.0,
                    ]
                };
                let x00 = lerp(c(0, 0, 0), c(1, 0, 0), fr);
                let x10 = lerp(c(0, 1, 0), c(1, 1, 0), fr);
                let x01 = lerp(c(0, 0, 1), c(1, 0, 1), fr);
                let x11 = lerp(c(0, 1, 1), c(1, 1, 1), fr);
                let o = lerp(lerp(x00, x10, fg), lerp(x01, x11, fg), fb);
                [o[0], o[1], o[2]]
            }
        }
    }
}

/// A validated `lut`; its cube is bound once fetched.
#[derive(Debug, Clone)]
pub struct Lut {
    /// The `object` string, the key into [`OpContext::luts`].
    pub object: String,
    /// Interpolation.
    pub interpolation: Interpolation,
    /// The parsed cube, once bound.
    pub cube: Option<Arc<Cube>>,
}

impl PointOperation for Lut {
    const NAME: &'static str = "lut";
    const SUMMARY: &'static str =
        "colour grading with a 3D LUT from a `.cube` object, tetrahedral or trilinear";
    type Params = LutParams;
    const SHADER: &'static str = include_str!("../../shaders/lut.wgsl");
    /// The parity test and the bench provide `grade.cube`.
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "lut", "object": "grade.cube"}"#,
        r#"{"op": "lut", "object": "grade.cube", "interpolation": "trilinear"}"#,
    ];
    const PARITY: Tolerance = Tolerance { max: 1, mean: 0.05 };

    fn validate(p: &LutParams, _: &Limits) -> Result<Self, ParamError> {
        if p.object.is_empty() || p.object.len() > MAX_SOURCE_LEN {
            return Err(ParamError::new(
                "object",
                format!("must be 1..={MAX_SOURCE_LEN} characters"),
            ));
        }
        Ok(Self {
            object: p.object.clone(),
            interpolation: p.interpolation.unwrap_or_default(),
            cube: None,
        })
    }

    fn bind(&mut self, ctx: &OpContext) -> Result<(), JobError> {
        let cube = ctx
            .luts
            .get(&self.object)
            .ok_or_else(|| JobError::internal("the lut's .cube object was not fetched"))?;
        self.cube = Some(cube.clone());
        Ok(())
    }
}

impl Lut {
    fn cube(&self) -> &Cube {
        self.cube
            .as_deref()
            .expect("a lut is bound to its cube before it runs")
    }
}

impl PointOp for Lut {
    fn apply(&self, [r, g, b, a]: [f32; 4]) -> [f32; 4] {
        let [r, g, b] = self.cube().sample([r, g, b], self.interpolation);
        [r, g, b, a]
    }

    fn apply_block(&self, block: &mut [[f32; 4]]) {
        let (cube, mode) = (self.cube(), self.interpolation);
        map_block(block, |[r, g, b, a]| {
            let [r, g, b] = cube.sample([r, g, b], mode);
            [r, g, b, a]
        });
    }

    fn stage_values(&self) -> Vec<f32> {
        let c = self.cube();
        let mode = match self.interpolation {
            Interpolation::Tetrahedral => 0.0,
            Interpolation::Trilinear => 1.0,
        };
        let mut v = vec![c.size as f32, mode];
        v.extend_from_slice(&c.domain_min);
        v.extend_from_slice(&c.scale);
        v
    }

    fn stage_table(&self) -> &[f32] {
        &self.cube().table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(n: usize) -> String {
        let mut s = format!("TITLE \"id\"\n# comment\nLUT_3D_SIZE {n}\n");
        for b in 0..n {
            for g in 0..n {
                for r in 0..n {
                    let v = |i: usize| i as f32 / (n - 1) as f32;
                    s.push_str(&format!("{} {} {}\n", v(r), v(g), v(b)));
                }
            }
        }
        s
    }

    #[test]
    fn an_identity_cube_maps_colours_to_themselves() {
        let cube = Cube::parse("id", identity(5).as_bytes()).unwrap();
        for mode in [Interpolation::Tetrahedral, Interpolation::Trilinear] {
            for rgb in [[0.1, 0.5, 0.9], [1.0, 0.0, 0.3], [0.77, 0.77, 0.2]] {
                let out = cube.sample(rgb, mode);
                for c in 0..3 {
                    assert!((out[c] - rgb[c]).abs() < 1e-5, "{mode:?} {rgb:?} {out:?}");
                }
            }
        }
    }

    fn parse_err(text: &str) -> String {
        let e = Cube::parse("t.cube", text.as_bytes()).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_param", "{e}");
        e.message
    }

    #[test]
    fn malformed_cubes_name_the_line() {
        assert!(parse_err("LUT_3D_SIZE 1\n").contains("line 1"));
        assert!(parse_err("LUT_3D_SIZE 66\n").contains("2..=65"));
        assert!(parse_err("0 0 0\n").contains("before LUT_3D_SIZE"));
        assert!(parse_err("LUT_1D_SIZE 16\n").contains("not supported"));
        assert!(parse_err("# x\nLUT_3D_SIZE 2\n0 0 0\n0 0\n").contains("line 4: expected three"));
        assert!(parse_err("LUT_3D_SIZE 2\n0 0 nan\n").contains("line 2: expected a finite"));
        assert!(parse_err("LUT_3D_SIZE 2\n0 0 0\n").contains("1 table entries, 2^3"));
        assert!(parse_err("FOO 1\n").contains("unknown keyword"));
        assert!(parse_err("").contains("no LUT_3D_SIZE"));
        let mut too_many = identity(2);
        too_many.push_str("0 0 0\n");
        assert!(parse_err(&too_many).contains("line 12: more than"));
        let mut bad_domain = String::from("DOMAIN_MIN 1 0 0\nDOMAIN_MAX 0 1 1\n");
        bad_domain.push_str(&identity(2));
        assert!(parse_err(&bad_domain).contains("DOMAIN_MAX"));
        let e = Cube::parse("t.cube", &[0xff, 0xfe, 0x00]).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_param");
        let huge = vec![b'#'; MAX_CUBE_BYTES as usize + 1];
        let e = Cube::parse("t.cube", &huge).unwrap_err();
        assert_eq!(e.code.as_str(), "limit_exceeded");
    }
}
