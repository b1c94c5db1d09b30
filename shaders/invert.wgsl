// invert: 1 - c for colour channels, alpha kept; see src/ops/invert.rs.
fn invert_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    return vec4<f32>(1.0 - px.rgb, px.a);
}
