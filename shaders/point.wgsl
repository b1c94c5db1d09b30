// Fused per-pixel ops: one pass applies a run of stages. aux holds the
// stage records, 16 words each: word 0 the stage number, words 1..=14 its
// f32 values, word 15 where its table starts in aux (for ops with a table);
// the tables follow the records. The stage functions (`<op>_apply(px, s)`,
// one per point op's shader) and `apply_stage`, which calls them by number,
// are appended from the op registry (src/gpu/shaders.rs).

struct PointParams {
    stages: u32,
}

@group(0) @binding(4) var<uniform> p: PointParams;

// Value `i` of stage `s`.
fn stage_f(s: u32, i: u32) -> f32 {
    return bitcast<f32>(aux[s * 16u + 1u + i]);
}

// Entry `i` of stage `s`'s table.
fn stage_table(s: u32, i: u32) -> f32 {
    return bitcast<f32>(aux[aux[s * 16u + 15u] + i]);
}

// One channel through stage `s`'s 256-entry tone table, interpolated
// linearly between entries as src/ops/tone.rs does.
fn tone_lookup(s: u32, c: f32) -> f32 {
    let t = clamp(c, 0.0, 1.0) * 255.0;
    let i = min(u32(t), 254u);
    let f = t - f32(i);
    let a = stage_table(s, i);
    let b = stage_table(s, i + 1u);
    return a + (b - a) * f;
}

// A tone stage (levels, curves): stage value 0 is the channel, 3 for RGB.
fn tone_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    var c = px;
    let ch = u32(stage_f(s, 0u));
    if (ch == 3u) {
        c = vec4<f32>(tone_lookup(s, c.r), tone_lookup(s, c.g), tone_lookup(s, c.b), c.a);
    } else {
        c[ch] = tone_lookup(s, c[ch]);
    }
    return c;
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
