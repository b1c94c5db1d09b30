// Resize, reproducing fast_image_resize's 8-bit path exactly (see
// src/ops/resize.rs): premultiply (mul_div_255), a vertical then a horizontal
// pass with the same i16 fixed-point coefficients, then divide by alpha with
// the same reciprocal table; or nearest neighbour from index tables.
//
// Convolution passes read aux as one record per output line:
// [start, size, coefficient 0, ..., coefficient window-1] (i32 as u32).

struct ResizeConvUniform {
    // fixed-point precision: bits shifted out
    shift: u32,
    // coefficients per record
    window: u32,
    // the column (vertical pass) or row (horizontal pass) where the other
    // axis's crop begins
    offset: u32,
}

@group(0) @binding(4) var<uniform> p: ResizeConvUniform;

@compute @workgroup_size(8, 8)
fn premultiply(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let i = dst_index(id);
    let c = channels(src[i]);
    var out = c;
    for (var k = 0; k < 3; k++) {
        let t = c[k] * c.w + 128u;
        out[k] = ((t >> 8u) + t) >> 8u;
    }
    dst[i] = pack_channels(out);
}

@compute @workgroup_size(8, 8)
fn unpremultiply(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let i = dst_index(id);
    let c = channels(src[i]);
    var recip = 0u;
    if (c.w > 0u) {
        recip = ((255u * 512u / c.w) + 1u) >> 1u;
    }
    var out = c;
    for (var k = 0; k < 3; k++) {
        out[k] = min((c[k] * recip + 128u) >> 8u, 255u);
    }
    dst[i] = pack_channels(out);
}

fn conv(acc: vec4<i32>, px: u32, k: i32) -> vec4<i32> {
    return acc + vec4<i32>(channels(px)) * k;
}

fn clip(acc: vec4<i32>) -> u32 {
    let v = clamp(acc >> vec4<u32>(p.shift), vec4<i32>(0), vec4<i32>(255));
    return pack_channels(vec4<u32>(v));
}

@compute @workgroup_size(8, 8)
fn resize_vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let base = id.y * (p.window + 2u);
    let start = aux[base];
    let size = aux[base + 1u];
    let x = id.x + p.offset;
    var acc = vec4<i32>(1 << (p.shift - 1u));
    for (var k = 0u; k < size; k++) {
        acc = conv(acc, src[(start + k) * sizes.src_width + x], bitcast<i32>(aux[base + 2u + k]));
    }
    dst[dst_index(id)] = clip(acc);
}

@compute @workgroup_size(8, 8)
fn resize_horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let base = id.x * (p.window + 2u);
    let start = aux[base];
    let size = aux[base + 1u];
    let row = (id.y + p.offset) * sizes.src_width;
    var acc = vec4<i32>(1 << (p.shift - 1u));
    for (var k = 0u; k < size; k++) {
        acc = conv(acc, src[row + start + k], bitcast<i32>(aux[base + 2u + k]));
    }
    dst[dst_index(id)] = clip(acc);
}

// aux: source column for each output column, then source row for each
// output row.
@compute @workgroup_size(8, 8)
fn resize_nearest(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let sx = aux[id.x];
    let sy = aux[sizes.dst_width + id.y];
    dst[dst_index(id)] = src[sy * sizes.src_width + sx];
}
