// flip: mirror left-right (AXIS_HORIZONTAL) or top-bottom (AXIS_VERTICAL);
// see src/ops/flip.rs.

struct FlipUniform {
    axis: u32,
}

@group(0) @binding(4) var<uniform> p: FlipUniform;

@compute @workgroup_size(8, 8)
fn flip(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let w = sizes.src_width;
    var sx = id.x;
    var sy = id.y;
    if (p.axis == AXIS_HORIZONTAL) {
        sx = w - 1u - id.x;
    } else {
        sy = sizes.src_height - 1u - id.y;
    }
    dst[dst_index(id)] = src[sy * w + sx];
}
