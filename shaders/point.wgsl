// Fused per-pixel ops: one pass applies a run of adjust, grayscale, invert
// and sepia stages. aux holds the stages, 16 words each: word 0 is the kind
// (1 adjust, 2 grayscale, 3 invert, 4 sepia), words 1..=15 its f32 values.
// params.i0.x is the number of stages.

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
    let w = params.dims.x;
    if (id.x >= w || id.y >= params.dims.y) {
        return;
    }
    let i = id.y * w + id.x;
    var c = unpack_px(src[i]);
    let n = u32(params.i0.x);
    for (var s = 0u; s < n; s++) {
        switch aux[s * 16u] {
            case 1u: { c = adjust_apply(c, s); }
            case 2u: { c = grayscale_apply(c); }
            case 3u: { c = invert_apply(c); }
            case 4u: { c = sepia_apply(c, s); }
            default: {}
        }
    }
    dst[i] = pack_px(c);
}
