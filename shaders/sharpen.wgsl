// Unsharp mask, the step after the Gaussian blur (blur.wgsl's kernels): src
// is the original, aux the blurred image; see src/ops/sharpen.rs.

struct SharpenUniform {
    amount: f32,
    // in levels
    threshold: f32,
}

@group(0) @binding(4) var<uniform> p: SharpenUniform;

@compute @workgroup_size(8, 8)
fn sharpen(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let i = dst_index(id);
    let o = channels(src[i]);
    let b = channels(aux[i]);
    var out = o;
    for (var c = 0; c < 3; c++) {
        let d = f32(o[c]) - f32(b[c]);
        if (abs(d) >= p.threshold) {
            out[c] = q255(f32(o[c]) + p.amount * d);
        }
    }
    dst[i] = pack_channels(out);
}
