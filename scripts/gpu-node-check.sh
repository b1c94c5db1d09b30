#!/usr/bin/env bash
# The one-shot GPU node check: run on the node, from the repository root,
# with the folder scripts/gpu-node-pack.sh made here. Installs nothing and
# needs no network; about 6 minutes on a 16-core GPU node.
#
#   scripts/gpu-node-check.sh PACK REPORT-FOLDER [--quick]
#
# It runs `imgworker devices`, the GPU parity tests on the node's device,
# per-kernel timings at 1920x1080, 3840x2160 and 7680x4320 (kernel time
# from timestamp queries, and effective bandwidth), and `imgworker bench`
# with `--backend gpu` against `--backend cpu` at concurrency 1 and at the
# node's core count, and writes REPORT-FOLDER/report.json and report.md
# (with each step's own output beside them). A step that fails is recorded
# in the report and the others still run; the script exits non-zero when
# any step failed. `--quick` runs the same steps small (the test command
# runs it on lavapipe). The node needs x86-64 Linux with glibc 2.36 or
# newer; the pack carries the other libraries the binaries link.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 PACK REPORT-FOLDER [--quick]" >&2; exit 2; }
pack=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
quick=${3:-}
log() { printf '\n== %s\n' "$*" >&2; }

[ "$(uname -m)" = x86_64 ] || { echo "the pack is for x86-64, this node is $(uname -m)" >&2; exit 2; }
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
case "$glibc" in
  2.3[6-9]* | 2.[4-9]* | [3-9].*) ;;
  *) echo "the pack needs glibc 2.36 or newer; this node has ${glibc:-an unknown libc}" >&2; exit 2 ;;
esac

work="$out/.work"
rm -rf "$work"
mkdir -p "$work/bin" "$work/lib"
for b in imgworker gpu_parity; do
  gzip -dc "$pack/bin/$b.gz" >"$work/bin/$b"
  chmod +x "$work/bin/$b"
done
for l in "$pack"/lib/*.gz; do
  gzip -dc "$l" >"$work/lib/$(basename "$l" .gz)"
done
iw="$work/bin/imgworker"
export NODEVICE_SELECT=1
# The packed libraries go to our binaries only (not to the node's tools).
libpath="$work/lib"

# The Vulkan loader: the node's own, else Debian's from the pack.
has_loader() {
  local n
  n=$({ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true; } | grep -c 'libvulkan\.so\.1 ' || true)
  [ "${n:-0}" -gt 0 ]
}
if ! has_loader; then
  log "no libvulkan.so.1 on this node: using the packed loader"
  for deb in "$pack"/debs/*.deb; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$deb" "$work/loader"
    else
      (mkdir -p "$work/deb" && cd "$work/deb" && ar x "$deb" && mkdir -p "$work/loader" &&
        tar -xf data.tar.* -C "$work/loader")
    fi
  done
  libpath="$libpath:$(dirname "$(find "$work/loader" -name 'libvulkan.so.1' | head -1)")"
fi
# Our binaries, with the packed libraries.
run_iw() { LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$iw" "$@"; }
if LD_LIBRARY_PATH="$libpath" ldd "$iw" | grep 'not found'; then
  echo "imgworker cannot load the libraries above on this node" >&2
  exit 2
fi
# A driver the loader does not find by itself: NVIDIA's ICD, where it is.
adapters=$(run_iw devices --json 2>/dev/null | grep -c '"name"' || true)
if [ -z "${VK_DRIVER_FILES:-}" ] && [ "${adapters:-0}" -eq 0 ]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    if [ -f "$icd" ]; then
      log "the loader found no driver: VK_DRIVER_FILES=$icd"
      export VK_DRIVER_FILES=$icd
      break
    fi
  done
fi

# Each step's exit status, for the report; a failed step does not stop the
# others (a node is lent for minutes, once).
declare -A rc

log "devices"
rc[devices]=0
run_iw devices | tee "$out/devices.txt" || rc[devices]=$?
run_iw devices --json >"$out/devices.json" || { rc[devices]=$?; echo null >"$out/devices.json"; }

log "GPU parity tests on this device"
parity_rc=0
LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  "$work/bin/gpu_parity" --test-threads 1 >"$out/parity.txt" 2>&1 || parity_rc=$?
rc[parity]=$parity_rc
summary=$(grep -E '^test result:' "$out/parity.txt" | tail -1 || true)
passed=$(echo "$summary" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
failed=$(echo "$summary" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
echo "${summary:-the parity tests did not finish (exit $parity_rc)}" >&2

cores=$(nproc)
if [ "$quick" = "--quick" ]; then
  sizes=320x180,640x360
  input="$pack/photos/bench/1920x1080.jpg"
  jobs=thumbnail-256,colour
  rounds=(--iterations 1 --warmup 0)
else
  sizes=1920x1080,3840x2160,7680x4320
  input="$pack/photos/bench/3840x2160.jpg"
  jobs=thumbnail-1920,thumbnail-256,resize-half,blur-5,unsharp,colour,chain,jpeg-recode,composite-mask,lut-33,levels-curves,smartcrop-512
  rounds=(--iterations 3 --warmup 1)
fi

log "GPU kernels alone at $sizes"
rc[kernels]=0
run_iw bench --kernels --kernel-sizes "$sizes" --input "$pack/photos/bench/3840x2160.jpg" \
  "${rounds[@]}" --json "$out/kernels.json" --quiet >"$out/kernels.md" || rc[kernels]=$?
cat "$out/kernels.md"
[ "${rc[kernels]}" -eq 0 ] || echo null >"$out/kernels.json"

for c in 1 "$cores"; do
  for backend in gpu cpu; do
    log "imgworker bench --backend $backend --concurrency $c"
    step="bench-$backend-c$c"
    rc[$step]=0
    run_iw bench --backend "$backend" --concurrency "$c" --mode in-process --quiet \
      --input "$input" --jobs "$jobs" "${rounds[@]}" \
      --json "$out/$step.json" >"$out/$step.txt" 2>&1 || rc[$step]=$?
    cat "$out/$step.txt"
    [ "${rc[$step]}" -eq 0 ] || echo null >"$out/$step.json"
  done
done
failed_steps=""
for step in "${!rc[@]}"; do
  [ "${rc[$step]}" -eq 0 ] || failed_steps="$failed_steps $step"
done

log "report"
{
  printf '{\n  "pack": "%s",\n' "$(tr '\n' ' ' <"$pack/PACK")"
  printf '  "checked_at": "%s",\n  "cores": %s,\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$cores"
  printf '  "devices": %s,\n' "$(cat "$out/devices.json")"
  printf '  "parity": {"passed": %s, "failed": %s, "exit": %s},\n' \
    "${passed:-0}" "${failed:-0}" "$parity_rc"
  printf '  "failed_steps": [%s],\n' "$(for s in $failed_steps; do printf '"%s",' "$s"; done | sed 's/,$//')"
  printf '  "kernels": %s,\n' "$(cat "$out/kernels.json")"
  printf '  "bench": {\n'
  sep=""
  for c in 1 "$cores"; do
    for backend in gpu cpu; do
      printf '%s    "%s-c%s": %s' "$sep" "$backend" "$c" "$(cat "$out/bench-$backend-c$c.json")"
      sep=$',\n'
    done
  done
  printf '\n  }\n}\n'
} >"$out/report.json"
{
  echo "# GPU node check"
  echo
  echo "Pack: $(tr '\n' ' ' <"$pack/PACK"); checked $(date -u +%Y-%m-%dT%H:%M:%SZ) on $cores cores."
  echo
  echo "Failed steps: ${failed_steps:- none}"
  echo
  echo '## Devices'
  echo
  echo '```'
  cat "$out/devices.txt"
  echo '```'
  echo
  echo '## GPU parity tests'
  echo
  echo "${summary:-did not finish (exit $parity_rc)}"
  echo
  echo '## Kernels'
  echo
  cat "$out/kernels.md"
  for c in 1 "$cores"; do
    for backend in gpu cpu; do
      echo
      echo "## imgworker bench --backend $backend --concurrency $c"
      echo
      echo '```'
      cat "$out/bench-$backend-c$c.txt"
      echo '```'
    done
  done
} >"$out/report.md"
rm -rf "$work"
echo "report: $out/report.json and $out/report.md" >&2
if [ -n "$failed_steps" ]; then
  echo "failed steps:$failed_steps" >&2
  exit 1
fi
