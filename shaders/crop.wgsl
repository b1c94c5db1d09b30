// crop: copy the rectangle at (x, y) of the source; see src/ops/crop.rs.

struct CropUniform {
    x: u32,
    y: u32,
}

@group(0) @binding(4) var<uniform> p: CropUniform;

@compute @workgroup_size(8, 8)
fn crop(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    dst[dst_index(id)] = src[(id.y + p.y) * sizes.src_width + id.x + p.x];
}
