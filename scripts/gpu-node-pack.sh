#!/usr/bin/env bash
# Prepare the one-shot GPU node check (scripts/gpu-node-check.sh, see
# BENCHMARKS.md "How to measure on a GPU node"): build the imgworker binary
# and the GPU parity tests' binary, strip and gzip them, and put them with
# the benchmark photos and Debian's Vulkan loader package into one folder
# (git-ignored, under 60 MiB) to copy, with this repository's scripts, to a
# GPU node that has no network.
#
#   scripts/gpu-node-pack.sh [FOLDER]                       release build
#   IMGWORKER_PACK_PROFILE=test scripts/gpu-node-pack.sh FOLDER
#
# The second form packs the build the test command has already made (the
# test profile, with the tests' features), so the test command checks the
# pack without a release build of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/gpu-node}
profile=${IMGWORKER_PACK_PROFILE:-release}
limit=$((60 * 1024 * 1024))
log() { printf '\n== %s\n' "$*" >&2; }

case "$profile" in
  release) flags=(--release) ;;
  test) flags=(--features test-hooks) ;;
  *) echo "IMGWORKER_PACK_PROFILE is release or test, not $profile" >&2; exit 2 ;;
esac

scripts/build-deps.sh binutils gzip
scripts/fetch-photos.sh

log "building imgworker and the GPU parity tests ($profile profile; a cold release build takes about 25 minutes on 2 cores)"
cargo build "${flags[@]}" --bin imgworker
bin=$(cargo build "${flags[@]}" --bin imgworker --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\/imgworker\)".*/\1/p' | tail -1)
parity=$(cargo test "${flags[@]}" --no-run --test gpu_parity --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\/gpu_parity-[0-9a-f]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] && [ -x "$parity" ] || { echo "could not find the built binaries ($bin, $parity)" >&2; exit 1; }

log "packing into $out"
rm -rf "$out"
mkdir -p "$out/bin" "$out/photos/bench" "$out/debs"
strip -o "$out/bin/imgworker" "$bin"
strip -o "$out/bin/gpu_parity" "$parity"
gzip -9 "$out/bin/imgworker" "$out/bin/gpu_parity"
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
