#!/usr/bin/env bash
# Fetch real photographs, reproducibly, from Debian's mate-backgrounds
# package (GPL-2+, photos by Charles Barbin and others; see the package's
# copyright file) into photos/. Nothing large is committed to the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=photos
marker="$dest/.complete"
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
mkdir -p "$dest"
cp "$work"/x/usr/share/backgrounds/mate/nature/*.jpg "$dest/"
cp "$work"/x/usr/share/doc/mate-backgrounds/copyright "$dest/COPYRIGHT"
touch "$marker"
echo "photos in $dest/: $(ls "$dest" | grep -c jpg) JPEGs" >&2
