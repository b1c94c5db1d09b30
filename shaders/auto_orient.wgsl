// auto_orient (and rotate's quarter turns): an integer pixel remapping,
// source (sx, sy) = (a x + b y + c, d x + e y + f) for destination (x, y);
// see src/ops/auto_orient.rs.

struct RemapUniform {
    a: i32,
    b: i32,
    c: i32,
    d: i32,
    e: i32,
    f: i32,
}

@group(0) @binding(4) var<uniform> p: RemapUniform;

@compute @workgroup_size(8, 8)
fn remap(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let x = i32(id.x);
    let y = i32(id.y);
    let sx = p.a * x + p.b * y + p.c;
    let sy = p.d * x + p.e * y + p.f;
    dst[dst_index(id)] = src[u32(sy) * sizes.src_width + u32(sx)];
}
