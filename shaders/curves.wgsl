// curves: a monotone cubic sampled into a tone table (see src/ops/curves.rs
// and `tone_apply` in shaders/point.wgsl). Stage value 0: the channel, 3 for RGB.
fn curves_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    return tone_apply(px, s);
}
