// pad (and resize's contain fit): place the source at (x, y) on a canvas of
// the destination size filled with `background`; see src/ops/pad.rs.

struct PadUniform {
    x: i32,
    y: i32,
    // packed pixel
    background: u32,
}

@group(0) @binding(4) var<uniform> p: PadUniform;

@compute @workgroup_size(8, 8)
fn pad(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let sx = i32(id.x) - p.x;
    let sy = i32(id.y) - p.y;
    var px = p.background;
    if (sx >= 0 && sy >= 0 && u32(sx) < sizes.src_width && u32(sy) < sizes.src_height) {
        px = src[u32(sy) * sizes.src_width + u32(sx)];
    }
    dst[dst_index(id)] = px;
}
