#!/usr/bin/env bash
# Debian packages the build needs: cmake and nasm build libjpeg-turbo (the
# JPEG codec, from the turbojpeg crate's bundled source, with its SIMD code),
# libheif-dev is the HEIC and AVIF decoder (with libde265 and dav1d),
# pkg-config finds system libraries. Installed only when missing, with
# apt-get, which needs root: run as another user, the script names what is
# missing and stops.
set -euo pipefail
missing=()
for p in pkg-config cmake nasm libheif-dev "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "imgworker needs Debian packages that are not installed: ${missing[*]}. Run this script as root (it installs them with apt-get), or install them first: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  printf '\n== installing %s (apt-get, about a minute; its progress follows)\n' "${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
