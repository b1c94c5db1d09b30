#!/usr/bin/env bash
# The one test command: installs and starts what the tests need when it is
# missing, then runs every check (formatting, lints, the whole test suite).
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust $(grep -m1 rust-version Cargo.toml | cut -d'"' -f2) or newer with rustup (https://rustup.rs)" >&2
  exit 1
fi

# Debian packages the build and the tests need: the GPU tests run on Mesa's
# lavapipe (a software Vulkan driver) where no GPU is present.
apt_packages=(pkg-config libvulkan1 mesa-vulkan-drivers)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Mesa's device_select layer prints Wayland errors on a headless machine;
# imgworker picks its adapter itself (the binary sets this too).
export NODEVICE_SELECT=1

log "Vulkan adapters"
cargo run --quiet -- devices

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

log "cargo test"
cargo test --all-targets --no-fail-fast
