// Place the source at (i0.x, i0.y) on a canvas of the destination size
// filled with the colour i0.z (packed); used by pad and resize's contain fit.
@compute @workgroup_size(8, 8)
fn pad(@builtin(global_invocation_id) id: vec3<u32>) {
    let wo = params.dims.z;
    if (id.x >= wo || id.y >= params.dims.w) {
        return;
    }
    let sx = i32(id.x) - params.i0.x;
    let sy = i32(id.y) - params.i0.y;
    var p = bitcast<u32>(params.i0.z);
    if (sx >= 0 && sy >= 0 && u32(sx) < params.dims.x && u32(sy) < params.dims.y) {
        p = src[u32(sy) * params.dims.x + u32(sx)];
    }
    dst[id.y * wo + id.x] = p;
}
