// Shared by every kernel: bindings, parameters and pixel packing.
// Pixels are RGBA8 packed in a u32, red in the low byte (the byte order of
// an RGBA8 buffer on a little-endian host).

// Keep in sync with `Params` in src/gpu/kernels.rs.
struct Params {
    // source width, source height, destination width, destination height
    dims: vec4<u32>,
    i0: vec4<i32>,
    i1: vec4<i32>,
    f0: vec4<f32>,
    f1: vec4<f32>,
    f2: vec4<f32>,
    f3: vec4<f32>,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> aux: array<u32>;

fn channels(p: u32) -> vec4<u32> {
    return vec4<u32>(p & 255u, (p >> 8u) & 255u, (p >> 16u) & 255u, p >> 24u);
}

fn pack_channels(c: vec4<u32>) -> u32 {
    return c.x | (c.y << 8u) | (c.z << 16u) | (c.w << 24u);
}

// Channels as floats in 0..=1.
fn unpack_px(p: u32) -> vec4<f32> {
    return vec4<f32>(channels(p)) / 255.0;
}

// Round half up to 0..=255, as the CPU code does.
fn q255(v: f32) -> u32 {
    return u32(floor(clamp(v, 0.0, 255.0) + 0.5));
}

fn q255v(v: vec4<f32>) -> u32 {
    return pack_channels(vec4<u32>(q255(v.x), q255(v.y), q255(v.z), q255(v.w)));
}

// Floats in 0..=1 back to a packed pixel.
fn pack_px(c: vec4<f32>) -> u32 {
    return q255v(c * 255.0);
}
