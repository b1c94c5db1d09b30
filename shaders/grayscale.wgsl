// grayscale: Rec. 709 luma of gamma-encoded RGB; see src/ops/grayscale.rs.
fn grayscale_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    let l = 0.2126 * px.r + 0.7152 * px.g + 0.0722 * px.b;
    return vec4<f32>(l, l, l, px.a);
}
