// levels: a tone table (see src/ops/levels.rs and `tone_apply` in
// shaders/point.wgsl). Stage value 0: the channel, 3 for RGB.
fn levels_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    return tone_apply(px, s);
}
