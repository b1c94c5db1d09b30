#!/usr/bin/env bash
# Debian packages the build needs: cmake and nasm build libjpeg-turbo (the
# JPEG codec, from the turbojpeg crate's bundled source, with its SIMD code),
# libheif-dev is the HEIC and AVIF decoder (with libde265 and dav1d),
# pkg-config finds system libraries. Installed only when missing.
set -euo pipefail
missing=()
for p in pkg-config cmake nasm libheif-dev "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf '\n== installing %s\n' "${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
