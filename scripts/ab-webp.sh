#!/usr/bin/env bash
# Alternating A/B of the whole-process JPEG-to-WebP q80 job: two imgworker
# binaries (say, builds of two commits) against `vips` and `convert`, one
# after the other in every round, so that a noisy machine's drift hits all
# four alike. Prints each tool's wall times, median and peak RSS (GNU time).
#
#   scripts/ab-webp.sh OLD_BINARY NEW_BINARY [ROUNDS] [PHOTO]
#
# The photo defaults to the bench input (scripts/fetch-photos.sh); storage
# is a fresh folder in /dev/shm, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
old=$(realpath "$1")
new=$(realpath "$2")
rounds=${3:-5}
photo=$(realpath "${4:-photos/bench/3840x2160.jpg}")
for b in "$old" "$new"; do [ -x "$b" ] || { echo "$b is not an executable" >&2; exit 2; }; done
[ -f "$photo" ] || { echo "$photo is missing: run scripts/fetch-photos.sh" >&2; exit 2; }
for t in vips convert /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "$t is missing: run scripts/bench-peers.sh (and apt-get install time)" >&2; exit 2; }
done

work=$(mktemp -d /dev/shm/imgworker-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/store/ab/photo"
cp "$photo" "$work/store/ab/photo/original.jpg"
src="$work/store/ab/photo/original.jpg"
cat > "$work/job.json" <<'EOF'
{"schema": 1, "id": "ab-webp", "type": "edit", "image": "ab/photo", "source": "original.jpg",
 "ops": [], "outputs": [{"version": "out", "format": "webp", "quality": 80}]}
EOF

timed() { # NAME COMMAND...: one line "NAME SECONDS KB"
  local name=$1; shift
  /usr/bin/time -f "$name %e %M" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  tail -1 "$work/err"
}
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds" >&2
  timed old "$old" run --storage "$work/store" --backend cpu "$work/job.json"
  timed new "$new" run --storage "$work/store" --backend cpu "$work/job.json"
  timed vips vips copy "$src" "$work/v.webp[Q=80,strip]"
  timed convert convert "$src" -strip -quality 80 "$work/c.webp"
done > "$work/times"

python3 - "$work/times" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, secs, kb = line.split()
    runs.setdefault(name, []).append((float(secs), int(kb)))
for name, v in runs.items():
    secs = [s for s, _ in v]
    print(f"{name:8} median {statistics.median(secs):.2f} s  peak {max(k for _, k in v) / 1024:.0f} MiB  rounds {secs}")
EOF
