// Shared by every kernel: bindings, the image sizes, pixel packing and the
// bounds check. Pixels are RGBA8 packed in a u32, red in the low byte (the
// byte order of an RGBA8 buffer on a little-endian host).
//
// A kernel with parameters of its own declares them as a struct named after
// it at binding 4 (`@group(0) @binding(4) var<uniform> p: CropParams;`),
// mirrored in Rust by a `gpu_uniform!` struct of the same name.

// Source and destination sizes (src/gpu/uniform.rs, `Sizes`).
struct Sizes {
    src_width: u32,
    src_height: u32,
    dst_width: u32,
    dst_height: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> sizes: Sizes;
@group(0) @binding(3) var<storage, read> aux: array<u32>;
// Binding 5, a second auxiliary buffer, is declared by the kernels that read
// it (shaders/mask.wgsl); the others have a placeholder bound there.

// Whether the invocation `id` lies outside the destination image; every
// kernel returns at once when it does (8x8 workgroups overhang the edges).
fn outside(id: vec3<u32>) -> bool {
    return id.x >= sizes.dst_width || id.y >= sizes.dst_height;
}

// The destination index of the invocation `id`.
fn dst_index(id: vec3<u32>) -> u32 {
    return id.y * sizes.dst_width + id.x;
}

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
