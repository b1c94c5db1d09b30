// adjust: see src/ops/adjust.rs. Stage values: 0 exposure gain (0 = off),
// 1 brightness, 2 contrast, 3 matrix present (1/0), 4..=12 saturation-hue
// matrix (row-major), 13 1/gamma (0 = off).

fn srgb_to_linear(c: f32) -> f32 {
    if (c <= 0.04045) {
        return c / 12.92;
    }
    return pow((c + 0.055) / 1.055, 2.4);
}

fn linear_to_srgb(c: f32) -> f32 {
    if (c <= 0.0031308) {
        return c * 12.92;
    }
    return 1.055 * pow(c, 1.0 / 2.4) - 0.055;
}

fn adjust_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    var c = px.rgb;
    let gain = stage_f(s, 0u);
    if (gain != 0.0) {
        c = vec3<f32>(
            linear_to_srgb(clamp(srgb_to_linear(c.r) * gain, 0.0, 1.0)),
            linear_to_srgb(clamp(srgb_to_linear(c.g) * gain, 0.0, 1.0)),
            linear_to_srgb(clamp(srgb_to_linear(c.b) * gain, 0.0, 1.0)),
        );
    }
    let b = stage_f(s, 1u);
    let k = stage_f(s, 2u);
    if (b != 0.0 || k != 1.0) {
        c = clamp((c + b - 0.5) * k + 0.5, vec3<f32>(0.0), vec3<f32>(1.0));
    }
    if (stage_f(s, 3u) != 0.0) {
        c = clamp(stage_mat3(s, 4u, c), vec3<f32>(0.0), vec3<f32>(1.0));
    }
    let g = stage_f(s, 13u);
    if (g != 0.0) {
        c = pow(c, vec3<f32>(g));
    }
    return vec4<f32>(c, px.a);
}
