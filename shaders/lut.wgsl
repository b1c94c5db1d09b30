// lut: a 3D colour LUT; see src/ops/lut.rs, whose interpolation this follows
// step for step. Stage values: 0 the grid side N, 1 the interpolation
// (0 tetrahedral, 1 trilinear), 2..=4 the domain minimum, 5..=7 the scale
// (N - 1) / (maximum - minimum). The table holds N^3 RGB triples, red
// varying fastest.

fn lut_at(s: u32, n: u32, r: u32, g: u32, b: u32) -> vec3<f32> {
    let i = ((b * n + g) * n + r) * 3u;
    return vec3<f32>(stage_table(s, i), stage_table(s, i + 1u), stage_table(s, i + 2u));
}

fn lut_apply(px: vec4<f32>, s: u32) -> vec4<f32> {
    let n = u32(stage_f(s, 0u));
    let top = f32(n - 1u);
    let dmin = vec3<f32>(stage_f(s, 2u), stage_f(s, 3u), stage_f(s, 4u));
    let scale = vec3<f32>(stage_f(s, 5u), stage_f(s, 6u), stage_f(s, 7u));
    let t = clamp((px.rgb - dmin) * scale, vec3<f32>(0.0), vec3<f32>(top));
    let i = min(vec3<u32>(t), vec3<u32>(n - 2u));
    let f = t - vec3<f32>(i);
    let r = i.x;
    let g = i.y;
    let b = i.z;
    let fr = f.x;
    let fg = f.y;
    let fb = f.z;
    var out: vec3<f32>;
    if (stage_f(s, 1u) == 0.0) {
        let c000 = lut_at(s, n, r, g, b);
        let c111 = lut_at(s, n, r + 1u, g + 1u, b + 1u);
        if (fr > fg) {
            if (fg > fb) {
                out = (1.0 - fr) * c000 + (fr - fg) * lut_at(s, n, r + 1u, g, b)
                    + (fg - fb) * lut_at(s, n, r + 1u, g + 1u, b) + fb * c111;
            } else if (fr > fb) {
                out = (1.0 - fr) * c000 + (fr - fb) * lut_at(s, n, r + 1u, g, b)
                    + (fb - fg) * lut_at(s, n, r + 1u, g, b + 1u) + fg * c111;
            } else {
                out = (1.0 - fb) * c000 + (fb - fr) * lut_at(s, n, r, g, b + 1u)
                    + (fr - fg) * lut_at(s, n, r + 1u, g, b + 1u) + fg * c111;
            }
        } else if (fb > fg) {
            out = (1.0 - fb) * c000 + (fb - fg) * lut_at(s, n, r, g, b + 1u)
                + (fg - fr) * lut_at(s, n, r, g + 1u, b + 1u) + fr * c111;
        } else if (fb > fr) {
            out = (1.0 - fg) * c000 + (fg - fb) * lut_at(s, n, r, g + 1u, b)
                + (fb - fr) * lut_at(s, n, r, g + 1u, b + 1u) + fr * c111;
        } else {
            out = (1.0 - fg) * c000 + (fg - fr) * lut_at(s, n, r, g + 1u, b)
                + (fr - fb) * lut_at(s, n, r + 1u, g + 1u, b) + fb * c111;
        }
    } else {
        let x00 = mix(lut_at(s, n, r, g, b), lut_at(s, n, r + 1u, g, b), fr);
        let x10 = mix(lut_at(s, n, r, g + 1u, b), lut_at(s, n, r + 1u, g + 1u, b), fr);
        let x01 = mix(lut_at(s, n, r, g, b + 1u), lut_at(s, n, r + 1u, g, b + 1u), fr);
        let x11 = mix(lut_at(s, n, r, g + 1u, b + 1u), lut_at(s, n, r + 1u, g + 1u, b + 1u), fr);
        out = mix(mix(x00, x10, fg), mix(x01, x11, fg), fb);
    }
    return vec4<f32>(out, px.a);
}
