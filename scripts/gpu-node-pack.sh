#!/usr/bin/env bash
# Prepare the one-shot GPU node check (scripts/gpu-node-check.sh, see
# BENCHMARKS.md "How to measure on a GPU node"): build the imgworker binary
# and the GPU parity tests' binary (with the tests' fault-injection hooks,
# so that every parity test runs), strip and gzip them, and put them with
# the shared libraries they link that a bare node may lack (libheif and its
# codecs), the benchmark photos and Debian's Vulkan loader package into one
# folder (git-ignored, under 60 MiB) to copy, with this repository's
# scripts, to a GPU node that has no network. The node needs an x86-64
# Linux with glibc 2.36 or newer (Debian 12's).
#
#   scripts/gpu-node-pack.sh [FOLDER]                       release build
#   IMGWORKER_PACK_PROFILE=test scripts/gpu-node-pack.sh FOLDER
#
# The second form packs the build the test command has already made (the
# release profile with the tests' features, the binary included), so the
# test command checks the pack without building imgworker a second time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/gpu-node}
profile=${IMGWORKER_PACK_PROFILE:-release}
limit=$((60 * 1024 * 1024))
log() { printf '\n== %s\n' "$*" >&2; }

# The binary is built as users build it; the parity tests with the hooks.
case "$profile" in
  release) flags=(--release) tflags=(--release --features test-hooks) ;;
  test) flags=(--release --features test-hooks) tflags=(--release --features test-hooks) ;;
  *) echo "IMGWORKER_PACK_PROFILE is release or test, not $profile" >&2; exit 2 ;;
esac

scripts/build-deps.sh binutils gzip
scripts/fetch-photos.sh

log "building imgworker and the GPU parity tests (release profile$([ "$profile" = test ] && echo ", with the tests' hooks"); a cold build takes about 14 minutes on 2 cores, the parity tests with the hooks a few more)"
# Built first with cargo's progress and errors shown; then asked again,
# already built, only for the paths.
cargo build "${flags[@]}" --bin imgworker
cargo test "${tflags[@]}" --no-run --test gpu_parity
bin=$(cargo build "${flags[@]}" --bin imgworker --message-format=json |
  sed -n 's/.*"executable":"\([^"]*\/imgworker\)".*/\1/p' | tail -1)
parity=$(cargo test "${tflags[@]}" --no-run --test gpu_parity --message-format=json |
  sed -n 's/.*"executable":"\([^"]*\/gpu_parity-[0-9a-f]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] && [ -x "$parity" ] || { echo "could not find the built binaries ($bin, $parity)" >&2; exit 1; }

if [ -e "$out" ] && [ ! -f "$out/PACK" ]; then
  echo "$out exists and is not a pack: refusing to replace it" >&2
  exit 2
fi
log "packing into $out"
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/photos/bench" "$out/debs"
strip -o "$out/bin/imgworker" "$bin"
strip -o "$out/bin/gpu_parity" "$parity"
gzip -9 "$out/bin/imgworker" "$out/bin/gpu_parity"
# The shared libraries the binaries link, but for glibc's own (the node's
# glibc must be this one's or newer).
ldd "$bin" "$parity" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libpthread|libdl|librt|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r lib; do
    gzip -9c "$lib" >"$out/lib/$(basename "$lib").gz"
  done
cp photos/bench/1920x1080.jpg photos/bench/3840x2160.jpg "$out/photos/bench/"
# The Vulkan loader, for a node that has the NVIDIA driver's ICD but no
# libvulkan.so.1 (the check unpacks it only then).
(cd "$out/debs" && apt-get download libvulkan1 >/dev/null 2>&1) || {
  apt-get update -qq >/dev/null && (cd "$out/debs" && apt-get download libvulkan1 >/dev/null)
}
{
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "profile $profile"
  echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$out/PACK"

bytes=$(du -sb "$out" | cut -f1)
echo "$out: $((bytes / 1024 / 1024)) MiB ($bytes bytes); copy it to the node and run scripts/gpu-node-check.sh $out REPORT-FOLDER there" >&2
if [ "$bytes" -ge "$limit" ]; then
  echo "the pack is over 60 MiB" >&2
  exit 1
fi
