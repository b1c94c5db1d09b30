"""One standard job of `imgworker bench`, in-process, with a Python image
library: Pillow (or Pillow-SIMD, the same API) or pyvips.

Usage: python peer.py LIB SPEC INPUT OUTPUT WARMUP
  LIB     pillow | pyvips
  SPEC    the job as JSON, written by imgworker (src/bench/peers.rs)
  WARMUP  untimed runs first

Each run reads the input file, does the job and writes the output file, the
same work as imgworker's in-process run (decode, ops, encode). Prints one JSON
line: {"ms": <the timed run's milliseconds>, "version": "<library version>"}.
"""

import json
import os
import sys
import time


def beside(src, name):
    """A job's other input, in the source's folder."""
    return os.path.join(os.path.dirname(src), name)


def read_cube(path):
    """A .cube file's size and table (red fastest), as Color3DLUT takes it."""
    size, table = 0, []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0].startswith("#") or parts[0] == "TITLE":
                continue
            if parts[0] == "LUT_3D_SIZE":
                size = int(parts[1])
            elif parts[0][0].isdigit() or parts[0][0] in "-.":
                table.extend(float(v) for v in parts[:3])
    return size, table


def pillow_job(spec, src, out):
    from PIL import Image, ImageEnhance, ImageFilter

    job = spec["job"]
    im = Image.open(src)
    if job == "thumbnail":
        # Pillow's own thumbnail: JPEG draft (DCT scaling) down to twice the
        # target, then the filter.
        im.thumbnail((spec["width"], 1 << 20), Image.LANCZOS)
    elif job == "resize-half":
        im = im.resize((im.width // 2, im.height // 2), Image.LANCZOS)
    elif job == "blur":
        im = im.filter(ImageFilter.GaussianBlur(spec["sigma"]))
    elif job == "unsharp":
        im = im.filter(ImageFilter.UnsharpMask(radius=1, percent=100, threshold=0))
    elif job == "colour":
        c, b = spec["contrast"], spec["brightness"] * 255
        lut = [max(0, min(255, round((v - 128) * c + 128 + b))) for v in range(256)]
        im = im.point(lut * 3)
        im = ImageEnhance.Color(im).enhance(spec["saturation"])
    elif job == "composite-mask":
        from PIL import Image as I

        base = im.convert("RGB")
        pasted = base.copy()
        pasted.paste(I.open(beside(src, "patch.png")), (spec["x"], spec["y"]))
        im = I.composite(pasted, base, I.open(beside(src, "mask.png")))
    elif job == "lut":
        size, table = read_cube(beside(src, "grade.cube"))
        im = im.filter(ImageFilter.Color3DLUT(size, table))
    elif job == "maplut":
        table = Image.open(beside(src, "levels-curves.png")).convert("RGB")
        r, g, b = table.split()
        im = im.point(list(r.getdata()) + list(g.getdata()) + list(b.getdata()))
    elif job == "chain":
        x, y, w, h = spec["crop"]
        im = im.crop((x, y, x + w, y + h)).transpose(Image.ROTATE_270)
        width = spec["width"]
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        im = im.filter(ImageFilter.UnsharpMask(radius=1, percent=60, threshold=0))
        im = im.convert("L")
    fmt = spec["format"]
    if fmt == "jpg":
        im.save(out, "JPEG", quality=spec["quality"])
    elif fmt == "webp" and spec.get("lossless"):
        im.save(out, "WEBP", lossless=True)
    elif fmt == "webp":
        im.save(out, "WEBP", quality=spec["quality"])
    else:
        im.save(out, "PNG", compress_level=6)


def pyvips_job(spec, src, out):
    import pyvips

    job = spec["job"]
    if spec["format"] == "png":
        target = f"{out}[compression=6,strip]"
    elif spec.get("lossless"):
        target = f"{out}[lossless,strip]"
    else:
        target = f"{out}[Q={spec['quality']},strip]"
    if job == "thumbnail":
        pyvips.Image.thumbnail(src, spec["width"]).write_to_file(target)
        return
    if job == "smartcrop":
        w = spec["width"]
        pyvips.Image.thumbnail(src, w, height=w, crop="attention").write_to_file(target)
        return
    im = pyvips.Image.new_from_file(src, access="sequential")
    if job == "resize-half":
        im = im.resize(0.5, kernel="lanczos3")
    elif job == "blur":
        im = im.gaussblur(spec["sigma"])
    elif job == "unsharp":
        im = (im + (im - im.gaussblur(1))).cast("uchar")
    elif job == "colour":
        c, b = spec["contrast"], spec["brightness"] * 255
        im = im.linear(c, b + 128 * (1 - c), uchar=True)
        im = im.colourspace("lch").linear([1, spec["saturation"], 1], [0, 0, 0])
        im = im.colourspace("srgb")
    elif job == "composite-mask":
        im = pyvips.Image.new_from_file(src)
        patch = pyvips.Image.new_from_file(beside(src, "patch.png"))
        mask = pyvips.Image.new_from_file(beside(src, "mask.png"))
        # composite2 adds an alpha band; the blend needs the base's bands.
        pasted = im.composite2(patch, "over", x=spec["x"], y=spec["y"])
        pasted = pasted.extract_band(0, n=im.bands)
        im = mask.ifthenelse(pasted, im, blend=True)
    elif job == "maplut":
        im = im.maplut(pyvips.Image.new_from_file(beside(src, "levels-curves.png")))
    elif job == "chain":
        im = pyvips.Image.new_from_file(src)
        x, y, w, h = spec["crop"]
        im = im.crop(x, y, w, h).rot90()
        im = im.resize(spec["width"] / im.width)
        im = im.sharpen(sigma=1).colourspace("b-w")
    im.write_to_file(target)


def main():
    lib, spec, src, out, warmup = sys.argv[1:6]
    spec = json.loads(spec)
    if lib == "pyvips":
        import pyvips

        # No operation cache: it would hand the timed run the warm-up's
        # decoded image, where every other tool decodes again.
        pyvips.cache_set_max(0)
        run, version = pyvips_job, pyvips.__version__
    else:
        import PIL

        run, version = pillow_job, PIL.__version__
    for _ in range(int(warmup)):
        run(spec, src, out)
    t = time.perf_counter()
    run(spec, src, out)
    ms = (time.perf_counter() - t) * 1e3
    print(json.dumps({"ms": ms, "version": version}))


if __name__ == "__main__":
    main()
