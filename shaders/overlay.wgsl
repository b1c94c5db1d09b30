// Overlay with opacity and a blend mode; see src/ops/overlay.rs.
// aux is the overlay image; i0 = (x, y, width, height) of the overlay on the
// base, i1.x the blend (0 normal, 1 multiply, 2 screen), f0.x the opacity.
@compute @workgroup_size(8, 8)
fn overlay(@builtin(global_invocation_id) id: vec3<u32>) {
    let w = params.dims.x;
    if (id.x >= w || id.y >= params.dims.y) {
        return;
    }
    let i = id.y * w + id.x;
    let tx = i32(id.x) - params.i0.x;
    let ty = i32(id.y) - params.i0.y;
    if (tx < 0 || ty < 0 || tx >= params.i0.z || ty >= params.i0.w) {
        dst[i] = src[i];
        return;
    }
    var s = unpack_px(aux[u32(ty * params.i0.z + tx)]);
    s.a = s.a * params.f0.x;
    let b = unpack_px(src[i]);
    let ao = s.a + b.a * (1.0 - s.a);
    if (ao <= 0.0) {
        dst[i] = 0u;
        return;
    }
    var mixed = s.rgb;
    if (params.i1.x == 1) {
        mixed = s.rgb * b.rgb;
    } else if (params.i1.x == 2) {
        mixed = s.rgb + b.rgb - s.rgb * b.rgb;
    }
    let c = (s.a * (1.0 - b.a) * s.rgb + s.a * b.a * mixed + (1.0 - s.a) * b.a * b.rgb) / ao;
    dst[i] = pack_px(vec4<f32>(c, ao));
}
