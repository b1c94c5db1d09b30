// rotate by any angle; see src/ops/rotate.rs (quarter turns use
// auto_orient.wgsl's remap). Bilinear in premultiplied alpha; taps outside
// the source read the background.

struct RotateUniform {
    sin: f32,
    cos: f32,
    // packed pixel
    background: u32,
}

@group(0) @binding(4) var<uniform> p: RotateUniform;

fn rotate_tap(x: i32, y: i32) -> vec4<f32> {
    let w = i32(sizes.src_width);
    let h = i32(sizes.src_height);
    if (x < 0 || y < 0 || x >= w || y >= h) {
        return unpack_px(p.background);
    }
    return unpack_px(src[u32(y * w + x)]);
}

@compute @workgroup_size(8, 8)
fn rotate(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let wo = sizes.dst_width;
    let ho = sizes.dst_height;
    let sin_t = p.sin;
    let cos_t = p.cos;
    let dx = f32(id.x) + 0.5 - f32(wo) / 2.0;
    let dy = f32(id.y) + 0.5 - f32(ho) / 2.0;
    let sx = dx * cos_t + dy * sin_t + f32(sizes.src_width) / 2.0 - 0.5;
    let sy = -dx * sin_t + dy * cos_t + f32(sizes.src_height) / 2.0 - 0.5;
    let x0 = floor(sx);
    let y0 = floor(sy);
    let fx = sx - x0;
    let fy = sy - y0;
    let ix = i32(x0);
    let iy = i32(y0);
    var acc = vec4<f32>(0.0);
    let taps = array<vec3<f32>, 4>(
        vec3<f32>(0.0, 0.0, (1.0 - fx) * (1.0 - fy)),
        vec3<f32>(1.0, 0.0, fx * (1.0 - fy)),
        vec3<f32>(0.0, 1.0, (1.0 - fx) * fy),
        vec3<f32>(1.0, 1.0, fx * fy),
    );
    for (var t = 0; t < 4; t++) {
        let c = rotate_tap(ix + i32(taps[t].x), iy + i32(taps[t].y));
        let wa = taps[t].z * c.a;
        acc += vec4<f32>(wa * c.rgb, wa);
    }
    var rgb = vec3<f32>(0.0);
    if (acc.a > 0.0) {
        rgb = acc.rgb / acc.a;
    }
    dst[dst_index(id)] = pack_px(vec4<f32>(rgb, acc.a));
}
