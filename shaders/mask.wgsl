// A masked op's blend with its input (src/ops/mask.rs): `src` is the op's
// input, `aux` its result, `mask` one 8-bit weight per pixel, four to a
// word, first pixel in the low byte. Integer arithmetic, as on the CPU:
// out = (in * (255 - m) + result * m + 127) / 255 per channel.

@group(0) @binding(5) var<storage, read> mask: array<u32>;

@compute @workgroup_size(8, 8)
fn mask_mix(@builtin(global_invocation_id) id: vec3<u32>) {
    if outside(id) {
        return;
    }
    let i = dst_index(id);
    let m = vec4<u32>((mask[i / 4u] >> ((i % 4u) * 8u)) & 255u);
    let input = channels(src[i]);
    let result = channels(aux[i]);
    dst[i] = pack_channels((input * (255u - m) + result * m + 127u) / 255u);
}
