// flip: mirror left-right (i0.x = 0, horizontal axis) or top-bottom (1).
@compute @workgroup_size(8, 8)
fn flip(@builtin(global_invocation_id) id: vec3<u32>) {
    let w = params.dims.x;
    let h = params.dims.y;
    if (id.x >= w || id.y >= h) {
        return;
    }
    var sx = id.x;
    var sy = id.y;
    if (params.i0.x == 0) {
        sx = w - 1u - id.x;
    } else {
        sy = h - 1u - id.y;
    }
    dst[id.y * w + id.x] = src[sy * w + sx];
}
