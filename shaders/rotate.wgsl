// rotate: exact quarter turns and EXIF orientations (remap), and any angle.

// Exact rotations and EXIF orientations (auto_orient) as an integer pixel
// remapping: source (sx, sy) = (a x + b y + c, d x + e y + f) with
// i0 = (a, b, c, d) and i1 = (e, f, _, _).
@compute @workgroup_size(8, 8)
fn remap(@builtin(global_invocation_id) id: vec3<u32>) {
    let wo = params.dims.z;
    if (id.x >= wo || id.y >= params.dims.w) {
        return;
    }
    let x = i32(id.x);
    let y = i32(id.y);
    let sx = params.i0.x * x + params.i0.y * y + params.i0.z;
    let sy = params.i0.w * x + params.i1.x * y + params.i1.y;
    dst[id.y * wo + id.x] = src[u32(sy) * params.dims.x + u32(sx)];
}

// Any-angle rotation; see src/ops/rotate.rs. f0 = (sin, cos), i0.x = the
// background colour, packed. Bilinear in premultiplied alpha; taps outside
// the source read the background.

fn rotate_tap(x: i32, y: i32) -> vec4<f32> {
    let w = i32(params.dims.x);
    let h = i32(params.dims.y);
    if (x < 0 || y < 0 || x >= w || y >= h) {
        return unpack_px(bitcast<u32>(params.i0.x));
    }
    return unpack_px(src[u32(y * w + x)]);
}

@compute @workgroup_size(8, 8)
fn rotate(@builtin(global_invocation_id) id: vec3<u32>) {
    let wo = params.dims.z;
    let ho = params.dims.w;
    if (id.x >= wo || id.y >= ho) {
        return;
    }
    let sin_t = params.f0.x;
    let cos_t = params.f0.y;
    let dx = f32(id.x) + 0.5 - f32(wo) / 2.0;
    let dy = f32(id.y) + 0.5 - f32(ho) / 2.0;
    let sx = dx * cos_t + dy * sin_t + f32(params.dims.x) / 2.0 - 0.5;
    let sy = -dx * sin_t + dy * cos_t + f32(params.dims.y) / 2.0 - 0.5;
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
    dst[id.y * wo + id.x] = pack_px(vec4<f32>(rgb, acc.a));
}
