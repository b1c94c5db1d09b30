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
use multiversion::multiversion;

use super::point::{LevelPass, PointOp, PointOperation};
use super::{OpContext, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};

/// Smallest grid side of a `.cube`.
pub(crate) const MIN_SIZE: usize = 2;
/// Largest grid side of a `.cube` (65 is the largest common size).
pub(crate) const MAX_SIZE: usize = 65;
/// Largest `.cube` object, in bytes: a 65-point cube in text is about 8 MB.
pub(crate) const MAX_CUBE_BYTES: u64 = 16 << 20;

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
pub(crate) struct LutParams {
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
    pub(crate) domain_min: [f32; 3],
    /// Input value mapped to the last grid point, per channel.
    pub(crate) domain_max: [f32; 3],
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

    /// One channel's place in the grid: the lower grid line's index and
    /// the fraction of the way to the next, for channel `c` of value `v`.
    #[inline(always)]
    fn coordinate(&self, c: usize, v: f32) -> (usize, f32) {
        let top = (self.size - 1) as f32;
        // `max` then `min` rather than `clamp`: a NaN becomes 0.
        let t = ((v - self.domain_min[c]) * self.scale[c]).max(0.0).min(top);
        // The floor as an integer without a saturating cast's branches:
        // below 2^23, adding 2^23 leaves it in the low bits.
        let whole = (t.floor() + 8_388_608.0).to_bits() & 0x7f_ffff;
        let i = (whole as usize).min(self.size - 2);
        (i, t - i as f32)
    }

    /// The grid strides of red, green and blue.
    fn strides(&self) -> [usize; 3] {
        [1, self.size, self.size * self.size]
    }

    /// Tetrahedral interpolation in the cell whose lower corner is grid
    /// point `base`, at fractions `f`: from the lower corner, a step along the axis of the largest
    /// fraction, then along the next, to the upper corner, weighted
    /// `1 - hi`, `hi - mid`, `mid - lo`, `lo`. The steps are chosen by
    /// selects, not branches: the first corner is along the largest
    /// fraction's axis and the second leaves out only the smallest's; where
    /// fractions tie, the step between them has weight 0, so the sums are
    /// those of any order.
    #[inline(always)]
    fn tetrahedral(&self, base: usize, [fr, fg, fb]: [f32; 3]) -> [f32; 3] {
        let n = self.size;
        // Products of flags rather than `if`s: the compiler keeps them
        // free of (unpredictable) branches.
        let (r_top, g_top) = (fr >= fg && fr >= fb, fg >= fb);
        let g_top = !r_top && g_top;
        let b_top = !r_top && !g_top;
        let first = usize::from(r_top) + usize::from(g_top) * n + usize::from(b_top) * n * n;
        let (b_low, g_low) = (fb <= fg && fb <= fr, fg <= fr);
        let g_low = !b_low && g_low;
        let r_low = !b_low && !g_low;
        let last = usize::from(r_low) + usize::from(g_low) * n + usize::from(b_low) * n * n;
        let hi = fr.max(fg).max(fb);
        let lo = fr.min(fg).min(fb);
        let mid = fr.min(fg).max(fr.max(fg).min(fb));
        let all = 1 + n + n * n;
        let (p0, p1) = (self.grid[base], self.grid[base + first]);
        let (p2, p3) = (self.grid[base + all - last], self.grid[base + all]);
        let w = [1.0 - hi, hi - mid, mid - lo, lo];
        std::array::from_fn(|k| w[0] * p0[k] + w[1] * p1[k] + w[2] * p2[k] + w[3] * p3[k])
    }

    /// Trilinear interpolation in the cell whose lower corner is grid point
    /// `base`, at fractions `f`.
    #[inline(always)]
    fn trilinear(&self, base: usize, [fr, fg, fb]: [f32; 3]) -> [f32; 3] {
        let [_, sg, sb] = self.strides();
        let c = |d: usize| self.grid[base + d];
        let lerp = |a: [f32; 4], b: [f32; 4], t: f32| {
            [
                a[0] + (b[0] - a[0]) * t,
                a[1] + (b[1] - a[1]) * t,
                a[2] + (b[2] - a[2]) * t,
                0.0,
            ]
        };
        let x00 = lerp(c(0), c(1), fr);
        let x10 = lerp(c(sg), c(sg + 1), fr);
        let x01 = lerp(c(sb), c(sb + 1), fr);
        let x11 = lerp(c(sg + sb), c(sg + sb + 1), fr);
        let o = lerp(lerp(x00, x10, fg), lerp(x01, x11, fg), fb);
        [o[0], o[1], o[2]]
    }

    /// Interpolate in the cell whose lower corner is grid point `base`.
    #[inline(always)]
    fn interpolate(&self, base: usize, f: [f32; 3], mode: Interpolation) -> [f32; 3] {
        match mode {
            Interpolation::Tetrahedral => self.tetrahedral(base, f),
            Interpolation::Trilinear => self.trilinear(base, f),
        }
    }

    /// Look up one colour.
    #[inline(always)]
    pub fn sample(&self, rgb: [f32; 3], mode: Interpolation) -> [f32; 3] {
        let stride = self.strides();
        let mut base = 0;
        let mut f = [0f32; 3];
        for c in 0..3 {
            let (i, fc) = self.coordinate(c, rgb[c]);
            base += i * stride[c];
            f[c] = fc;
        }
        self.interpolate(base, f, mode)
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
        super::check_object_ref("object", &p.object)?;
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
        sample_block(self.cube(), self.interpolation, block);
    }

    /// Each channel's grid coordinate for each of its 256 possible values,
    /// worked out once: per pixel, three lookups and the interpolation.
    fn level_pass(&self, levels: &[[f32; 4]]) -> Option<LevelPass> {
        let cube = self.cube.clone()?;
        let stride = cube.strides();
        let mut place = Box::new(Places {
            offset: [[0; 256]; 3],
            fraction: [[0.0; 256]; 3],
        });
        for c in 0..3 {
            for (v, level) in levels.iter().enumerate().take(256) {
                let (i, f) = cube.coordinate(c, level[c]);
                place.offset[c][v] = (i * stride[c]) as u32;
                place.fraction[c][v] = f;
            }
        }
        let alpha: [f32; 256] = std::array::from_fn(|v| levels[v][3]);
        let mode = self.interpolation;
        Some(Box::new(move |bytes: &[u8], block: &mut [[f32; 4]]| {
            sample_levels(&cube, mode, &place, &alpha, bytes, block)
        }))
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

/// Each channel's place in the grid for each of its 256 levels: the lower
/// grid point's offset (index times the channel's stride) and the fraction.
struct Places {
    offset: [[u32; 256]; 3],
    fraction: [[f32; 256]; 3],
}

/// Every pixel of `bytes` through the cube into `block`, each channel's
/// grid coordinate read from `place` (alpha's value from `alpha`).
/// Tetrahedral lookups go eight pixels at a time where the CPU has AVX2
/// ([`avx2::tetrahedral`], the same arithmetic in the same order, so the
/// same bits).
fn sample_levels(
    cube: &Cube,
    mode: Interpolation,
    place: &Places,
    alpha: &[f32; 256],
    bytes: &[u8],
    block: &mut [[f32; 4]],
) {
    #[cfg(target_arch = "x86_64")]
    if mode == Interpolation::Tetrahedral && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked above).
        let done = unsafe { avx2::tetrahedral(cube, place, alpha, bytes, block) };
        return sample_levels_scalar(
            cube,
            mode,
            place,
            alpha,
            &bytes[done * 4..],
            &mut block[done..],
        );
    }
    sample_levels_scalar(cube, mode, place, alpha, bytes, block)
}

/// [`sample_levels`] a pixel at a time.
#[multiversion(targets = "simd")]
fn sample_levels_scalar(
    cube: &Cube,
    mode: Interpolation,
    place: &Places,
    alpha: &[f32; 256],
    bytes: &[u8],
    block: &mut [[f32; 4]],
) {
    for (px, b) in block.iter_mut().zip(bytes.chunks_exact(4)) {
        let [r, g, bl] = [0, 1, 2].map(|c| usize::from(b[c]));
        let base = (place.offset[0][r] + place.offset[1][g] + place.offset[2][bl]) as usize;
        let f = [
            place.fraction[0][r],
            place.fraction[1][g],
            place.fraction[2][bl],
        ];
        let [r, g, bl] = cube.interpolate(base, f, mode);
        *px = [r, g, bl, alpha[usize::from(b[3])]];
    }
}

/// The tetrahedral lookup eight pixels at a time: the grid coordinates,
/// the corner choice and the weights in AVX2 lanes, the corners fetched
/// by gathers. Every lane computes exactly what [`Cube::tetrahedral`]
/// computes (the same IEEE operations in the same order, no fused
/// multiply-add), so the results are bit for bit the scalar ones.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Cube, Places};

    /// Map the whole groups of eight pixels of `bytes` into `block`;
    /// returns how many pixels that was (the rest is left to the caller).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn tetrahedral(
        cube: &Cube,
        place: &Places,
        alpha: &[f32; 256],
        bytes: &[u8],
        block: &mut [[f32; 4]],
    ) -> usize {
        let n = cube.size as i32;
        let groups = (bytes.len() / 32).min(block.len() / 8);
        let grid = cube.grid.as_ptr() as *const f32;
        let ones = _mm256_set1_epi32(-1);
        let (v1, vn, vnn) = (
            _mm256_set1_epi32(1),
            _mm256_set1_epi32(n),
            _mm256_set1_epi32(n * n),
        );
        let all = _mm256_set1_epi32(1 + n + n * n);
        let low_byte = _mm256_set1_epi32(0xff);
        for k in 0..groups {
            // SAFETY (all loads and stores below): `k < groups` keeps the
            // 32 bytes and the 8 pixels in bounds; levels index 256-entry
            // tables; grid offsets stay below `size^3` because each
            // channel's lower grid index is at most `size - 2`.
            let px = unsafe { _mm256_loadu_si256(bytes.as_ptr().add(k * 32) as *const __m256i) };
            let level = |shift: i32| match shift {
                0 => _mm256_and_si256(px, low_byte),
                8 => _mm256_and_si256(_mm256_srli_epi32::<8>(px), low_byte),
                16 => _mm256_and_si256(_mm256_srli_epi32::<16>(px), low_byte),
                _ => _mm256_srli_epi32::<24>(px),
            };
            let (r, g, b, a) = (level(0), level(8), level(16), level(24));
            let offset = |c: usize, v| unsafe {
                _mm256_i32gather_epi32::<4>(place.offset[c].as_ptr() as *const i32, v)
            };
            let fraction =
                |c: usize, v| unsafe { _mm256_i32gather_ps::<4>(place.fraction[c].as_ptr(), v) };
            let base = _mm256_add_epi32(_mm256_add_epi32(offset(0, r), offset(1, g)), offset(2, b));
            let (fr, fg, fb) = (fraction(0, r), fraction(1, g), fraction(2, b));
            let alpha = unsafe { _mm256_i32gather_ps::<4>(alpha.as_ptr(), a) };
            let ge = |x, y| _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(x, y));
            // The corner after the lower one: along the largest fraction.
            let r_top = _mm256_and_si256(ge(fr, fg), ge(fr, fb));
            let g_top = _mm256_andnot_si256(r_top, ge(fg, fb));
            let b_top = _mm256_andnot_si256(_mm256_or_si256(r_top, g_top), ones);
            let first = _mm256_or_si256(
                _mm256_or_si256(_mm256_and_si256(r_top, v1), _mm256_and_si256(g_top, vn)),
                _mm256_and_si256(b_top, vnn),
            );
            // The corner before the upper one: leaving out the smallest.
            let b_low = _mm256_and_si256(ge(fg, fb), ge(fr, fb));
            let g_low = _mm256_andnot_si256(b_low, ge(fr, fg));
            let r_low = _mm256_andnot_si256(_mm256_or_si256(b_low, g_low), ones);
            let last = _mm256_or_si256(
                _mm256_or_si256(_mm256_and_si256(r_low, v1), _mm256_and_si256(g_low, vn)),
                _mm256_and_si256(b_low, vnn),
            );
            let hi = _mm256_max_ps(_mm256_max_ps(fr, fg), fb);
            let lo = _mm256_min_ps(_mm256_min_ps(fr, fg), fb);
            let mid = _mm256_max_ps(
                _mm256_min_ps(fr, fg),
                _mm256_min_ps(_mm256_max_ps(fr, fg), fb),
            );
            let w = [
                _mm256_sub_ps(_mm256_set1_ps(1.0), hi),
                _mm256_sub_ps(hi, mid),
                _mm256_sub_ps(mid, lo),
                lo,
            ];
            let top = _mm256_add_epi32(base, all);
            let corners = [
                base,
                _mm256_add_epi32(base, first),
                _mm256_sub_epi32(top, last),
                top,
            ]
            .map(|i| _mm256_slli_epi32::<2>(i));
            let channel = |c: usize| {
                let p = corners.map(|i| unsafe { _mm256_i32gather_ps::<4>(grid.add(c), i) });
                let sum = _mm256_add_ps(_mm256_mul_ps(w[0], p[0]), _mm256_mul_ps(w[1], p[1]));
                let sum = _mm256_add_ps(sum, _mm256_mul_ps(w[2], p[2]));
                _mm256_add_ps(sum, _mm256_mul_ps(w[3], p[3]))
            };
            let (r, g, b) = (channel(0), channel(1), channel(2));
            // Eight lanes each of red, green, blue and alpha to eight RGBA
            // pixels.
            let (rg_lo, rg_hi) = (_mm256_unpacklo_ps(r, g), _mm256_unpackhi_ps(r, g));
            let (ba_lo, ba_hi) = (_mm256_unpacklo_ps(b, alpha), _mm256_unpackhi_ps(b, alpha));
            let p04 = _mm256_shuffle_ps::<0x44>(rg_lo, ba_lo);
            let p15 = _mm256_shuffle_ps::<0xEE>(rg_lo, ba_lo);
            let p26 = _mm256_shuffle_ps::<0x44>(rg_hi, ba_hi);
            let p37 = _mm256_shuffle_ps::<0xEE>(rg_hi, ba_hi);
            unsafe {
                let dst = block.as_mut_ptr().add(k * 8) as *mut f32;
                _mm256_storeu_ps(dst, _mm256_permute2f128_ps::<0x20>(p04, p15));
                _mm256_storeu_ps(dst.add(8), _mm256_permute2f128_ps::<0x20>(p26, p37));
                _mm256_storeu_ps(dst.add(16), _mm256_permute2f128_ps::<0x31>(p04, p15));
                _mm256_storeu_ps(dst.add(24), _mm256_permute2f128_ps::<0x31>(p26, p37));
            }
        }
        groups * 8
    }
}

/// Every pixel of `block` through the cube, compiled for AVX2 and SSE4.2
/// as well and chosen at run time, the lookup inlined into the loop.
#[multiversion(targets = "simd")]
fn sample_block(cube: &Cube, mode: Interpolation, block: &mut [[f32; 4]]) {
    for px in block {
        let [r, g, b] = cube.sample([px[0], px[1], px[2]], mode);
        *px = [r, g, b, px[3]];
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

    /// The pass from bytes (per-level grid coordinates) gives the bytes of
    /// the float pass (each pixel converted, then sampled).
    #[test]
    fn the_level_pass_is_the_float_pass() {
        let n = 7;
        let mut text = format!("LUT_3D_SIZE {n}\n");
        for i in 0..n * n * n {
            let (r, g, b) = (i % n, i / n % n, i / (n * n));
            let v = |x: usize| x as f64 / (n - 1) as f64;
            let o = [v(r).powf(1.3), 0.2 + 0.6 * v(g) * v(b), (v(b) + v(r)) / 2.0];
            text.push_str(&format!("{} {} {}\n", o[0], o[1], o[2]));
        }
        let cube = Arc::new(Cube::parse("t", text.as_bytes()).unwrap());
        // Rows of 253: groups of eight (the AVX2 path where the CPU has
        // it) and remainders (the scalar one).
        let img = image::RgbaImage::from_fn(253, 19, |x, y| {
            image::Rgba([
                x as u8,
                (x * 3 + y * 11) as u8,
                (x * 7 + y) as u8,
                (y * 13) as u8,
            ])
        });
        for mode in [Interpolation::Tetrahedral, Interpolation::Trilinear] {
            let lut = Lut {
                object: "t".into(),
                interpolation: mode,
                cube: Some(cube.clone()),
            };
            let mut fast = img.clone();
            super::super::point::run_fused(&mut fast, &[&lut]);
            let slow: Vec<u8> = img
                .as_raw()
                .chunks_exact(4)
                .flat_map(|p| {
                    let f = p.iter().map(|&v| f32::from(v) / 255.0).collect::<Vec<_>>();
                    let [r, g, b] = cube.sample([f[0], f[1], f[2]], mode);
                    [r, g, b, f[3]].map(super::super::point::quantize)
                })
                .collect();
            assert_eq!(fast.as_raw(), &slow, "{mode:?}");
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
