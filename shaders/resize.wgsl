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
    // linear-light passes only: 1 where the source is the f32 intermediate
    // (else sRGB RGBA8, decoded on the way in)
    src_linear: u32,
    // linear-light passes only: 1 where the output is the f32 intermediate
    // (else sRGB RGBA8, encoded on the way out)
    dst_linear: u32,
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

// Linear-light resampling (`"linear": true`), as src/ops/linear.rs and
// `resize_linear` do it on the CPU. aux holds the decoding table (256
// words: each sRGB level's linear value), the encoding thresholds (255
// words and a pad: the linear value halfway to the next level), then one
// record per output line: [start, size, weight 0, ..., weight window-1]
// (f32 bits). Between two passes the image is premultiplied linear RGBA as
// four f32 words per pixel; a pass that is the only one reads and writes
// sRGB RGBA8.

// The first word of output line `line`'s record.
fn linear_record(line: u32) -> u32 {
    return 512u + line * (p.window + 2u);
}

// Source pixel `i` as premultiplied linear light.
fn linear_load(i: u32) -> vec4<f32> {
    if (p.src_linear == 1u) {
        let j = i * 4u;
        return vec4<f32>(
            bitcast<f32>(src[j]),
            bitcast<f32>(src[j + 1u]),
            bitcast<f32>(src[j + 2u]),
            bitcast<f32>(src[j + 3u]),
        );
    }
    let c = channels(src[i]);
    let a = f32(c.w) / 255.0;
    return vec4<f32>(
        bitcast<f32>(aux[c.x]) * a,
        bitcast<f32>(aux[c.y]) * a,
        bitcast<f32>(aux[c.z]) * a,
        a,
    );
}

// The sRGB level of a linear value: how many of the 255 thresholds
// (aux[256..511], ascending) are at or below it, by binary search.
fn encode_level(v: f32) -> u32 {
    var lo = 0u;
    for (var step = 128u; step > 0u; step >>= 1u) {
        if (bitcast<f32>(aux[256u + lo + step - 1u]) <= v) {
            lo += step;
        }
    }
    return lo;
}

// Write a filtered pixel: as it is to the intermediate, or un-premultiplied
// and encoded to sRGB RGBA8, where a pixel whose alpha rounds to 0 is
// transparent black.
fn linear_store(id: vec3<u32>, acc: vec4<f32>) {
    let i = dst_index(id);
    if (p.dst_linear == 1u) {
        dst[i * 4u] = bitcast<u32>(acc.x);
        dst[i * 4u + 1u] = bitcast<u32>(acc.y);
        dst[i * 4u + 2u] = bitcast<u32>(acc.z);
        dst[i * 4u + 3u] = bitcast<u32>(acc.w);
        return;
    }
    let a = clamp(acc.w, 0.0, 1.0);
    let a8 = u32(floor(a * 255.0 + 0.5));
    if (a8 == 0u) {
        dst[i] = 0u;
        return;
    }
    dst[i] = pack_channels(vec4<u32>(
        encode_level(clamp(acc.x / a, 0.0, 1.0)),
        encode_level(clamp(acc.y / a, 0.0, 1.0)),
        encode_level(clamp(acc.z / a, 0.0, 1.0)),
        a8,
    ));
}

// Horizontal pass; the source row is the output row plus `offset`.
@compute @workgroup_size(8, 8)
fn resize_linear_horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let base = linear_record(id.x);
    let start = aux[base];
    let size = aux[base + 1u];
    let row = (id.y + p.offset) * sizes.src_width;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < size; k++) {
        acc += linear_load(row + start + k) * bitcast<f32>(aux[base + 2u + k]);
    }
    linear_store(id, acc);
}

// Vertical pass; the source column is the output column plus `offset`.
@compute @workgroup_size(8, 8)
fn resize_linear_vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let base = linear_record(id.y);
    let start = aux[base];
    let size = aux[base + 1u];
    let x = id.x + p.offset;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < size; k++) {
        acc += linear_load((start + k) * sizes.src_width + x) * bitcast<f32>(aux[base + 2u + k]);
    }
    linear_store(id, acc);
}
