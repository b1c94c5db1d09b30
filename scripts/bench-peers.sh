#!/usr/bin/env bash
# The in-process peers of `imgworker bench --compare`, each in a virtualenv
# under target/bench-peers (ignored by git):
#   pillow/       Pillow (PyPI's wheel) and pyvips (on the system's libvips)
#   pillow-simd/  Pillow-SIMD, built from source with AVX2 where the CPU has
#                 it (it needs the JPEG, zlib and WebP headers)
# Pillow-SIMD is optional: where it does not build, the bench runs without it
# and says so. Run again to retry; a finished venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
root=target/bench-peers
log() { printf '\n== %s\n' "$*" >&2; }

scripts/build-deps.sh libvips-tools imagemagick libvips42 libjpeg-dev zlib1g-dev libwebp-dev python3-venv

mkvenv() {
  [ -x "$1/bin/python" ] || python3 -m venv "$1"
  "$1/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
}

if ! "$root/pillow/bin/python" -c 'import PIL, pyvips' >/dev/null 2>&1; then
  log "installing Pillow and pyvips into $root/pillow"
  mkvenv "$root/pillow"
  "$root/pillow/bin/pip" install --progress-bar off "Pillow==11.*" "pyvips==3.*"
fi

if ! "$root/pillow-simd/bin/python" -c 'import PIL' >/dev/null 2>&1; then
  log "building Pillow-SIMD into $root/pillow-simd (a few minutes)"
  mkvenv "$root/pillow-simd"
  cc="cc"
  grep -qw avx2 /proc/cpuinfo && cc="cc -mavx2"
  if ! CC="$cc" "$root/pillow-simd/bin/pip" install --progress-bar off --no-binary :all: "pillow-simd==9.*" >&2; then
    echo "Pillow-SIMD did not build; imgworker bench --compare runs without it" >&2
    rm -rf "$root/pillow-simd"
  fi
fi
