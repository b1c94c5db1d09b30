// Overlay with opacity and a blend mode; see src/ops/overlay.rs. aux is the
// overlay image, placed at (x, y) on the base (src).

struct OverlayUniform {
    x: i32,
    y: i32,
    width: i32,
    height: i32,
    // a BLEND_* constant
    blend: u32,
    opacity: f32,
}

@group(0) @binding(4) var<uniform> p: OverlayUniform;

@compute @workgroup_size(8, 8)
fn overlay(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let i = dst_index(id);
    let tx = i32(id.x) - p.x;
    let ty = i32(id.y) - p.y;
    if (tx < 0 || ty < 0 || tx >= p.width || ty >= p.height) {
        dst[i] = src[i];
        return;
    }
    var s = unpack_px(aux[u32(ty * p.width + tx)]);
    s.a = s.a * p.opacity;
    let b = unpack_px(src[i]);
    let ao = s.a + b.a * (1.0 - s.a);
    if (ao <= 0.0) {
        dst[i] = 0u;
        return;
    }
    var mixed = s.rgb;
    if (p.blend == BLEND_MULTIPLY) {
        mixed = s.rgb * b.rgb;
    } else if (p.blend == BLEND_SCREEN) {
        mixed = s.rgb + b.rgb - s.rgb * b.rgb;
    }
    let c = (s.a * (1.0 - b.a) * s.rgb + s.a * b.a * mixed + (1.0 - s.a) * b.a * b.rgb) / ao;
    dst[i] = pack_px(vec4<f32>(c, ao));
}
