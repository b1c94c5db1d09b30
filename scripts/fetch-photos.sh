#!/usr/bin/env bash
# Fetch real photographs, reproducibly, from Debian's mate-backgrounds
# package (GPL-2+; see the package's copyright file, copied beside them) into
# photos/. Nothing large is committed to the repository.
#
#   photos/*.jpg                     the nature photographs (2560x1600 and so on)
#   photos/bench/3840x2160.jpg       camera photograph (Sony DSC-RX100M4) of a
#   photos/bench/1920x1080.jpg       painting, "Elephants", at two sizes: the
#                                    inputs of `imgworker bench`
set -euo pipefail
cd "$(dirname "$0")/.."
dest=photos
# Bump the marker's name when the set of photos changes.
marker="$dest/.complete-2"
[ -f "$marker" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching photographs from Debian's mate-backgrounds package..." >&2
if ! (cd "$work" && apt-get download mate-backgrounds >/dev/null 2>&1); then
  apt-get update -qq >/dev/null
  (cd "$work" && apt-get download mate-backgrounds >/dev/null 2>&1) || {
    echo "could not download mate-backgrounds with apt-get; check the Debian mirror" >&2
    exit 1
  }
fi
dpkg-deb -x "$work"/mate-backgrounds_*.deb "$work/x"
src="$work/x/usr/share/backgrounds/mate"
mkdir -p "$dest/bench"
cp "$src"/nature/*.jpg "$dest/"
cp "$src/abstract/Elephants_3840x2160.jpg" "$dest/bench/3840x2160.jpg"
cp "$src/abstract/Elephants.jpg" "$dest/bench/1920x1080.jpg"
cp "$work"/x/usr/share/doc/mate-backgrounds/copyright "$dest/COPYRIGHT"
touch "$marker"
echo "photos in $dest/: $(ls "$dest" | grep -c jpg) JPEGs, and the benchmark inputs in $dest/bench/" >&2
