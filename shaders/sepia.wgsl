// sepia: the W3C sepia matrix (stage values 0..=8, row-major); see src/ops/sepia.rs.
fn sepia_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    return vec4<f32>(stage_mat3(s, 0u, px.rgb), px.a);
}
