#!/usr/bin/env bash
# Byte-for-byte comparison of two imgworker binaries' outputs: a fixed set of
# jobs (every op and its variants, several chains, every output format) run
# on the CPU and on the GPU backend (a real GPU, or Mesa's lavapipe) with
# each binary; the sha256 of every version written must be the same.
#
#   scripts/compare-outputs.sh BEFORE_BINARY AFTER_BINARY
#
# Build BEFORE_BINARY from the commit to compare against, e.g.:
#   git worktree add ../imgworker-before <commit>
#   (cd ../imgworker-before && cargo build --release) && cp ../imgworker-before/target/release/imgworker before
# Manifests are not compared (they carry times and worker names); every
# image version is. Prints one line per output and exits 1 on any
# difference, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 2 ] && [ -x "$1" ] && [ -x "$2" ] || {
  echo "usage: $0 BEFORE_BINARY AFTER_BINARY (two imgworker executables)" >&2
  exit 2
}
before=$(realpath "$1")
after=$(realpath "$2")
scripts/fetch-photos.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/src/cmp/img"
mkdir -p "$src" "$work/jobs"
cp photos/LadyBird.jpg "$src/photo.jpg"

job() { # job NAME OPS_JSON [SOURCE]
  local name=$1 ops=$2 source=${3:-photo.jpg}
  cat >"$work/jobs/$name.json" <<EOF
{"schema": 1, "id": "cmp-$name", "type": "edit", "image": "cmp/img",
 "source": "$source", "ops": $ops,
 "outputs": [
   {"version": "$name-jpeg", "format": "jpeg", "quality": 90},
   {"version": "$name-png", "format": "png"},
   {"version": "$name-webp", "format": "webp", "quality": 75},
   {"version": "$name-webpll", "format": "webp", "lossless": true,
    "ops": [{"op": "resize", "width": 160}]},
   {"version": "$name-avif", "format": "avif", "quality": 60,
    "ops": [{"op": "resize", "width": 96}]}
 ]}
EOF
}

# Sources with alpha and with an EXIF orientation, made by BEFORE_BINARY
# itself (the same bytes for both runs).
cat >"$work/jobs/_sources.json" <<'EOF'
{"schema": 1, "id": "cmp-sources", "type": "edit", "image": "cmp/img",
 "source": "photo.jpg", "ops": [{"op": "resize", "width": 480}],
 "outputs": [
   {"version": "alpha", "format": "png",
    "ops": [{"op": "rotate", "degrees": 27, "background": "#00000000"}]},
   {"version": "wm", "format": "png",
    "ops": [{"op": "resize", "width": 120}, {"op": "adjust", "saturation": 0},
            {"op": "rotate", "degrees": 45, "background": "#ff000040"}]}
 ]}
EOF
"$before" run "$work/jobs/_sources.json" --storage "$work/src" --backend cpu >/dev/null 2>&1
mv "$src/alpha.png" "$src/alpha-src.png"
mv "$src/wm.png" "$src/wm-src.png"
rm -f "$src"/*.json
if command -v convert >/dev/null 2>&1; then
  convert "$src/photo.jpg" -resize 400x -orient right-top "$src/rotated.jpg"
else
  echo "ImageMagick's convert is missing: the EXIF orientation cases are skipped" >&2
fi

small='{"op": "resize", "width": 320}'
job auto-orient '[{"op": "auto_orient"}, {"op": "resize", "width": 300}]'
[ -f "$src/rotated.jpg" ] && job auto-orient-exif '[{"op": "auto_orient"}]' rotated.jpg
for fit in inside contain cover fill; do
  bg=""
  [ "$fit" = contain ] && bg=', "background": "#33669980"'
  for filter in nearest bilinear bicubic mitchell lanczos3; do
    job "resize-$fit-$filter" "[{\"op\": \"resize\", \"width\": 301, \"height\": 203, \"fit\": \"$fit\", \"filter\": \"$filter\"$bg}]"
  done
done
job resize-up "[$small, {\"op\": \"resize\", \"width\": 517}]"
job crop "[{\"op\": \"crop\", \"x\": 101, \"y\": 57, \"width\": 333, \"height\": 211}, $small]"
for deg in 90 180 270 33 -12; do
  job "rotate-$deg" "[$small, {\"op\": \"rotate\", \"degrees\": $deg, \"background\": \"#10203040\"}]"
done
job flip-h "[$small, {\"op\": \"flip\", \"axis\": \"horizontal\"}]"
job flip-v "[$small, {\"op\": \"flip\", \"axis\": \"vertical\"}]"
job adjust "[$small, {\"op\": \"adjust\", \"brightness\": 0.1, \"contrast\": 1.3, \"saturation\": 1.4, \"hue\": 25, \"gamma\": 1.8, \"exposure\": 0.5}]"
job adjust-dark "[$small, {\"op\": \"adjust\", \"exposure\": -1.5, \"gamma\": 0.6}]"
job grayscale "[$small, {\"op\": \"grayscale\"}]"
job invert "[$small, {\"op\": \"invert\"}]"
job sepia "[$small, {\"op\": \"sepia\", \"strength\": 0.7}]"
job blur "[$small, {\"op\": \"blur\", \"sigma\": 3.5}]"
job sharpen "[$small, {\"op\": \"sharpen\", \"sigma\": 1.2, \"amount\": 1.5, \"threshold\": 0.02}]"
job pad "[$small, {\"op\": \"pad\", \"top\": 5, \"right\": 17, \"bottom\": 9, \"left\": 2, \"color\": \"#abcdef80\"}]"
for blend in normal multiply screen; do
  job "overlay-$blend" "[$small, {\"op\": \"overlay\", \"source\": \"wm-src.png\", \"gravity\": \"south_east\", \"opacity\": 0.7, \"blend\": \"$blend\"}]"
done
job overlay-at "[$small, {\"op\": \"overlay\", \"source\": \"wm-src.png\", \"x\": -20, \"y\": 30}]"
# Chains: fused point ops, geometry between them, alpha sources.
job chain-point "[$small, {\"op\": \"adjust\", \"contrast\": 1.2}, {\"op\": \"sepia\"}, {\"op\": \"invert\"}, {\"op\": \"grayscale\"}]"
job chain-mixed "[{\"op\": \"auto_orient\"}, {\"op\": \"crop\", \"x\": 280, \"y\": 100, \"width\": 2000, \"height\": 1400}, {\"op\": \"resize\", \"width\": 500, \"fit\": \"cover\", \"height\": 400}, {\"op\": \"adjust\", \"brightness\": 0.03}, {\"op\": \"sharpen\", \"sigma\": 1.0, \"amount\": 0.6}, {\"op\": \"rotate\", \"degrees\": 10, \"background\": \"#ffffff\"}, {\"op\": \"pad\", \"top\": 4, \"right\": 4, \"bottom\": 4, \"left\": 4}]"
job chain-alpha '[{"op": "blur", "sigma": 1.5}, {"op": "resize", "width": 200, "filter": "mitchell"}, {"op": "overlay", "source": "wm-src.png", "blend": "screen"}, {"op": "adjust", "saturation": 0.5}]' alpha-src.png
job alpha-rotate '[{"op": "rotate", "degrees": 200, "background": "#ffffff00"}, {"op": "flip", "axis": "vertical"}]' alpha-src.png
cp examples/edit.json "$work/jobs/example.json"
sed -i 's#"demo/ladybird"#"cmp/img"#; s#"original.jpg"#"photo.jpg"#' "$work/jobs/example.json"

# Run every job with both binaries on both backends.
run_all() { # BINARY BACKEND OUT
  local bin=$1 backend=$2 out=$3
  cp -r "$work/src" "$out"
  for j in "$work"/jobs/[!_]*.json; do
    if ! "$bin" run "$j" --storage "$out" --backend "$backend" >"$out.last" 2>&1; then
      echo "$(basename "$j") failed with $bin --backend $backend:" >&2
      tail -3 "$out.last" >&2
      exit 1
    fi
    # The result says where the pixels were processed: a job that fell back
    # to the CPU would compare the CPU path twice.
    if ! tail -1 "$out.last" | grep -q "\"backend\":\"$backend\""; then
      echo "$(basename "$j") did not run on the $backend backend with $bin:" >&2
      tail -1 "$out.last" >&2
      exit 1
    fi
  done
}
status=0
total=0
for backend in cpu gpu; do
  echo "== backend $backend" >&2
  run_all "$before" "$backend" "$work/before-$backend"
  run_all "$after" "$backend" "$work/after-$backend"
  for f in "$work/before-$backend/cmp/img/"*-*.{jpg,png,webp,avif}; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    case "$name" in alpha-src.png | wm-src.png) continue ;; esac
    total=$((total + 1))
    a=$(sha256sum <"$f" | cut -d' ' -f1)
    b=$(sha256sum <"$work/after-$backend/cmp/img/$name" 2>/dev/null | cut -d' ' -f1 || true)
    if [ "$a" = "$b" ]; then
      echo "same     $backend $name ${a:0:16}"
    else
      echo "DIFFERS  $backend $name ${a:0:16} ${b:0:16}"
      status=1
    fi
  done
done
if [ $status -eq 0 ]; then
  echo "all $total outputs byte-identical" >&2
else
  echo "some of the $total outputs differ" >&2
fi
exit $status
