// Composite with opacity and a blend mode; see src/ops/composite.rs, and
// src/ops/blend.rs for the formulas (W3C Compositing and Blending Level 1),
// written here in the same order. aux is the pasted image, placed at
// (x, y) on the base (src).

struct CompositeUniform {
    x: i32,
    y: i32,
    width: i32,
    height: i32,
    // a BLEND_* constant
    blend: u32,
    opacity: f32,
}

@group(0) @binding(4) var<uniform> p: CompositeUniform;

fn hard_light(s: f32, b: f32) -> f32 {
    if (s <= 0.5) {
        return b * (2.0 * s);
    }
    let s2 = 2.0 * s - 1.0;
    return b + s2 - b * s2;
}

fn soft_light(s: f32, b: f32) -> f32 {
    if (s <= 0.5) {
        return b - (1.0 - 2.0 * s) * b * (1.0 - b);
    }
    var d = sqrt(b);
    if (b <= 0.25) {
        d = ((16.0 * b - 12.0) * b + 4.0) * b;
    }
    return b + (2.0 * s - 1.0) * (d - b);
}

fn color_dodge(s: f32, b: f32) -> f32 {
    if (b == 0.0) {
        return 0.0;
    }
    if (s >= 1.0) {
        return 1.0;
    }
    return min(b / (1.0 - s), 1.0);
}

fn color_burn(s: f32, b: f32) -> f32 {
    if (b >= 1.0) {
        return 1.0;
    }
    if (s <= 0.0) {
        return 0.0;
    }
    return 1.0 - min((1.0 - b) / s, 1.0);
}

fn lum(c: vec3<f32>) -> f32 {
    return 0.3 * c.r + 0.59 * c.g + 0.11 * c.b;
}

fn clip_color(c0: vec3<f32>) -> vec3<f32> {
    var c = c0;
    let l = lum(c);
    let n = min(min(c.r, c.g), c.b);
    let x = max(max(c.r, c.g), c.b);
    if (n < 0.0 && l - n > 0.0) {
        c = l + (c - l) * l / (l - n);
    }
    if (x > 1.0 && x - l > 0.0) {
        c = l + (c - l) * (1.0 - l) / (x - l);
    }
    return c;
}

fn set_lum(c: vec3<f32>, l: f32) -> vec3<f32> {
    let d = l - lum(c);
    return clip_color(c + d);
}

fn sat(c: vec3<f32>) -> f32 {
    return max(max(c.r, c.g), c.b) - min(min(c.r, c.g), c.b);
}

fn set_sat(c: vec3<f32>, s: f32) -> vec3<f32> {
    let n = min(min(c.r, c.g), c.b);
    let x = max(max(c.r, c.g), c.b);
    if (x > n) {
        return (c - n) * s / (x - n);
    }
    return vec3<f32>(0.0);
}

// The blend function B(Cb, Cs) of a mode.
fn mix_colors(mode: u32, cs: vec3<f32>, cb: vec3<f32>) -> vec3<f32> {
    switch mode {
        case BLEND_MULTIPLY: { return cs * cb; }
        case BLEND_SCREEN: { return cs + cb - cs * cb; }
        case BLEND_OVERLAY: {
            return vec3<f32>(hard_light(cb.r, cs.r), hard_light(cb.g, cs.g), hard_light(cb.b, cs.b));
        }
        case BLEND_DARKEN: { return min(cs, cb); }
        case BLEND_LIGHTEN: { return max(cs, cb); }
        case BLEND_COLOR_DODGE: {
            return vec3<f32>(color_dodge(cs.r, cb.r), color_dodge(cs.g, cb.g), color_dodge(cs.b, cb.b));
        }
        case BLEND_COLOR_BURN: {
            return vec3<f32>(color_burn(cs.r, cb.r), color_burn(cs.g, cb.g), color_burn(cs.b, cb.b));
        }
        case BLEND_HARD_LIGHT: {
            return vec3<f32>(hard_light(cs.r, cb.r), hard_light(cs.g, cb.g), hard_light(cs.b, cb.b));
        }
        case BLEND_SOFT_LIGHT: {
            return vec3<f32>(soft_light(cs.r, cb.r), soft_light(cs.g, cb.g), soft_light(cs.b, cb.b));
        }
        case BLEND_DIFFERENCE: { return abs(cb - cs); }
        case BLEND_EXCLUSION: { return cb + cs - 2.0 * cb * cs; }
        case BLEND_HUE: { return set_lum(set_sat(cs, sat(cb)), lum(cb)); }
        case BLEND_SATURATION: { return set_lum(set_sat(cb, sat(cs)), lum(cb)); }
        case BLEND_COLOR: { return set_lum(cs, lum(cb)); }
        case BLEND_LUMINOSITY: { return set_lum(cb, lum(cs)); }
        default: { return cs; }
    }
}

// The Porter-Duff factors (Fa, Fb) of an operator, and whether it is one.
fn factors(mode: u32, sa: f32, ba: f32) -> vec3<f32> {
    switch mode {
        case BLEND_SRC_OVER: { return vec3<f32>(1.0, 1.0 - sa, 1.0); }
        case BLEND_SRC_IN: { return vec3<f32>(ba, 0.0, 1.0); }
        case BLEND_SRC_OUT: { return vec3<f32>(1.0 - ba, 0.0, 1.0); }
        case BLEND_SRC_ATOP: { return vec3<f32>(ba, 1.0 - sa, 1.0); }
        case BLEND_DST_OVER: { return vec3<f32>(1.0 - ba, 1.0, 1.0); }
        case BLEND_DST_IN: { return vec3<f32>(0.0, sa, 1.0); }
        case BLEND_DST_OUT: { return vec3<f32>(0.0, 1.0 - sa, 1.0); }
        case BLEND_DST_ATOP: { return vec3<f32>(1.0 - ba, sa, 1.0); }
        case BLEND_XOR: { return vec3<f32>(1.0 - ba, 1.0 - sa, 1.0); }
        default: { return vec3<f32>(0.0); }
    }
}

// Composite the source pixel s (alpha already scaled) onto the backdrop b.
fn composite_px(mode: u32, s: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let f = factors(mode, s.a, b.a);
    if (f.z != 0.0) {
        let ao = s.a * f.x + b.a * f.y;
        if (ao <= 0.0) {
            return vec4<f32>(0.0);
        }
        return vec4<f32>((s.a * f.x * s.rgb + b.a * f.y * b.rgb) / ao, ao);
    }
    let ao = s.a + b.a * (1.0 - s.a);
    if (ao <= 0.0) {
        return vec4<f32>(0.0);
    }
    let mixed = mix_colors(mode, s.rgb, b.rgb);
    let c = (s.a * (1.0 - b.a) * s.rgb + s.a * b.a * mixed + (1.0 - s.a) * b.a * b.rgb) / ao;
    return vec4<f32>(c, ao);
}

@compute @workgroup_size(8, 8)
fn composite(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let i = dst_index(id);
    let tx = i32(id.x) - p.x;
    let ty = i32(id.y) - p.y;
    if (tx < 0 || ty < 0 || tx >= p.width || ty >= p.height) {
        dst[i] = src[i];
        return;
    }
    var s = unpack_px(aux[u32(ty * p.width + tx)]);
    s.a = s.a * p.opacity;
    dst[i] = pack_px(composite_px(p.blend, s, unpack_px(src[i])));
}
