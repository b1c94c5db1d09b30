// crop: copy the rectangle at (i0.x, i0.y) of the source.
@compute @workgroup_size(8, 8)
fn crop(@builtin(global_invocation_id) id: vec3<u32>) {
    let wo = params.dims.z;
    if (id.x >= wo || id.y >= params.dims.w) {
        return;
    }
    let sx = id.x + u32(params.i0.x);
    let sy = id.y + u32(params.i0.y);
    dst[id.y * wo + id.x] = src[sy * params.dims.x + sx];
}
