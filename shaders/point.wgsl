// Fused per-pixel ops: one pass applies a run of stages. aux holds the
// stages, 16 words each: word 0 the stage number, words 1..=15 its f32
// values. The stage functions (`<op>_apply(px, s)`, one per point op's
// shader) and `apply_stage`, which calls them by number, are appended from
// the op registry (src/gpu/shaders.rs).

struct PointParams {
    stages: u32,
}

@group(0) @binding(4) var<uniform> p: PointParams;

// Value `i` of stage `s`.
fn stage_f(s: u32, i: u32) -> f32 {
    return bitcast<f32>(aux[s * 16u + 1u + i]);
}

// Row-major 3x3 matrix from stage values `off..off+9`, applied to RGB.
fn stage_mat3(s: u32, off: u32, c: vec3<f32>) -> vec3<f32> {
    return vec3<f32>(
        stage_f(s, off) * c.r + stage_f(s, off + 1u) * c.g + stage_f(s, off + 2u) * c.b,
        stage_f(s, off + 3u) * c.r + stage_f(s, off + 4u) * c.g + stage_f(s, off + 5u) * c.b,
        stage_f(s, off + 6u) * c.r + stage_f(s, off + 7u) * c.g + stage_f(s, off + 8u) * c.b,
    );
}

@compute @workgroup_size(8, 8)
fn point(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let i = dst_index(id);
    var c = unpack_px(src[i]);
    for (var s = 0u; s < p.stages; s++) {
        c = apply_stage(c, s);
    }
    dst[i] = pack_px(c);
}
