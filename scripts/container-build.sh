#!/usr/bin/env bash
# The container image's full multi-stage build (deploy/Dockerfile: imgworker
# compiled in the build stage, then the runtime stage), as a deployment's
# build makes it, with podman on this machine (scripts/container.sh keeps
# podman's state under target/podman). Slow: a cold release build of
# imgworker inside the container, about 19 minutes on 2 cores, so it is not
# part of the test command, whose container tests build the runtime stage
# around the binary the tests' build made (tests/container.rs).
#
#   scripts/container-build.sh [TAG]     default localhost/imgworker:latest
#
# There is no registry here, so the two FROM images are made locally: the
# Debian base (`scripts/container.sh base`, debootstrap) and a Rust build
# image on it (build-essential and the stable toolchain from rustup, the
# layout of the public rust:1-bookworm, with the host's CA roots). The image is then started once
# (`imgworker --version`, `imgworker devices`) to show that it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/imgworker:latest}
log() { printf '\n== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }
pm() { scripts/container.sh podman "$@"; }

log "the Debian base image"
scripts/container.sh base

if ! pm image exists localhost/rust:1-bookworm; then
  log "the Rust build image localhost/rust:1-bookworm (apt-get and rustup, a few minutes)"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM localhost/debian:bookworm-slim
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends build-essential ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
# The host's CA roots: a TLS-inspecting proxy the host trusts (for
# static.rust-lang.org and crates.io) is trusted in the build too.
COPY host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN curl -sSf -o /rustup-init https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init \
    && chmod +x /rustup-init \
    && /rustup-init -y --no-modify-path --profile minimal --default-toolchain stable \
    && rm /rustup-init
DOCKERFILE
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-certificates.crt"
  pm build --format docker --pull=never --network host -t localhost/rust:1-bookworm "$ctx"
fi

log "building $tag from deploy/Dockerfile, both stages (a cold release build: about 19 minutes on 2 cores)"
pm build --format docker --pull=never --network host \
  --build-arg BINARY_STAGE=build \
  --build-arg BUILD_IMAGE=localhost/rust:1-bookworm \
  --build-arg RUNTIME_IMAGE=localhost/debian:bookworm-slim \
  -f deploy/Dockerfile -t "$tag" .

log "running it once"
# No health check for these one-shot runs: podman's health check timers
# need systemd, and `imgworker health` needs a running worker.
pm run --rm --no-healthcheck --read-only --read-only-tmpfs=false "$tag" --version
pm run --rm --no-healthcheck --read-only --read-only-tmpfs=false "$tag" devices
pm images "$tag"
log "built $tag"
