// Separable Gaussian blur; see src/ops/blur.rs (sharpen runs it too). aux
// holds the kernel weights (f32 bits). The horizontal pass premultiplies and
// writes 8-bit values; the vertical pass divides by alpha per pixel.

struct BlurUniform {
    // the kernel has 2 * radius + 1 weights
    radius: i32,
}

@group(0) @binding(4) var<uniform> p: BlurUniform;

fn weight(t: i32) -> f32 {
    return bitcast<f32>(aux[u32(t)]);
}

@compute @workgroup_size(8, 8)
fn blur_horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let w = i32(sizes.src_width);
    let r = p.radius;
    let row = i32(id.y) * w;
    var acc = vec4<f32>(0.0);
    for (var t = 0; t <= 2 * r; t++) {
        let sx = clamp(i32(id.x) + t - r, 0, w - 1);
        let c = vec4<f32>(channels(src[row + sx]));
        let k = c.a / 255.0;
        acc += weight(t) * vec4<f32>(c.rgb * k, c.a);
    }
    dst[dst_index(id)] = q255v(acc);
}

@compute @workgroup_size(8, 8)
fn blur_vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let w = sizes.src_width;
    let h = i32(sizes.src_height);
    let r = p.radius;
    var acc = vec4<f32>(0.0);
    for (var t = 0; t <= 2 * r; t++) {
        let sy = clamp(i32(id.y) + t - r, 0, h - 1);
        acc += weight(t) * vec4<f32>(channels(src[u32(sy) * w + id.x]));
    }
    let alpha = q255(acc.a);
    var out = 0u;
    if (alpha == 255u) {
        out = q255v(vec4<f32>(acc.rgb, 255.0));
    } else if (alpha > 0u) {
        let inv = 255.0 / acc.a;
        out = q255v(vec4<f32>(acc.rgb * inv, f32(alpha)));
    }
    dst[dst_index(id)] = out;
}
