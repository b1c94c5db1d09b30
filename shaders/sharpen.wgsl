// Unsharp mask, the step after the Gaussian blur (blur.wgsl): src is the
// original, aux the blurred image; f0 = (amount, threshold in levels).
@compute @workgroup_size(8, 8)
fn sharpen(@builtin(global_invocation_id) id: vec3<u32>) {
    let w = params.dims.x;
    if (id.x >= w || id.y >= params.dims.y) {
        return;
    }
    let i = id.y * w + id.x;
    let o = channels(src[i]);
    let b = channels(aux[i]);
    var out = o;
    for (var c = 0; c < 3; c++) {
        let d = f32(o[c]) - f32(b[c]);
        if (abs(d) >= params.f0.y) {
            out[c] = q255(f32(o[c]) + params.f0.x * d);
        }
    }
    dst[i] = pack_channels(out);
}
