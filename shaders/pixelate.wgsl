// pixelate: see src/ops/pixelate.rs. Two passes: `pixelate_blocks` writes
// one pixel per block (its premultiplied average, in integers), then
// `pixelate` spreads each block's pixel over the block (aux is the block
// image) and copies the source outside the rectangle.

struct PixelateUniform {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    size: u32,
}

@group(0) @binding(4) var<uniform> p: PixelateUniform;

// round(num / den) as the CPU code does it.
fn div_round(num: u32, den: u32) -> u32 {
    return (num + den / 2u) / den;
}

@compute @workgroup_size(8, 8)
fn pixelate_blocks(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let x0 = p.x + id.x * p.size;
    let y0 = p.y + id.y * p.size;
    let w = min(p.size, p.x + p.width - x0);
    let h = min(p.size, p.y + p.height - y0);
    var a = 0u;
    var c = vec3<u32>(0u);
    for (var y = y0; y < y0 + h; y++) {
        for (var x = x0; x < x0 + w; x++) {
            let px = channels(src[y * sizes.src_width + x]);
            a += px.w;
            c += px.xyz * px.w;
        }
    }
    if (a == 0u) {
        dst[dst_index(id)] = 0u;
        return;
    }
    let alpha = div_round(a, w * h);
    dst[dst_index(id)] = pack_channels(
        vec4<u32>(div_round(c.x, a), div_round(c.y, a), div_round(c.z, a), alpha),
    );
}

@compute @workgroup_size(8, 8)
fn pixelate(@builtin(global_invocation_id) id: vec3<u32>) {
    if (outside(id)) {
        return;
    }
    let i = dst_index(id);
    if (id.x < p.x || id.y < p.y || id.x >= p.x + p.width || id.y >= p.y + p.height) {
        dst[i] = src[i];
        return;
    }
    let blocks_wide = (p.width + p.size - 1u) / p.size;
    let bx = (id.x - p.x) / p.size;
    let by = (id.y - p.y) / p.size;
    dst[i] = aux[by * blocks_wide + bx];
}
