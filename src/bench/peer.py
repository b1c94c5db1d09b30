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
import sys
import time


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
    elif fmt == "webp":
        im.save(out, "WEBP", quality=spec["quality"])
    else:
        im.save(out, "PNG", compress_level=6)


def pyvips_job(spec, src, out):
    import pyvips

    job = spec["job"]
    if spec["format"] == "png":
        target = f"{out}[compression=6,strip]"
    else:
        target = f"{out}[Q={spec['quality']},strip]"
    if job == "thumbnail":
        pyvips.Image.thumbnail(src, spec["width"]).write_to_file(target)
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
