#!/usr/bin/env bash
# The one test command: installs and starts what the tests need when it is
# missing, then runs every check (formatting, lints, the whole test suite).
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's line starts with the time since the script started.
log() { printf '\n== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

log "imgworker's tests: on a fresh 2-core machine, a first run with nothing built builds for 18 to 20 minutes before the first test and takes 24 to 26 minutes in all (less right after scripts/example.sh, whose dependencies it reuses); later runs take about 6 minutes (docs/build-timings.md)"

# What this script starts it stops when it ends, and only that: a RabbitMQ
# or S3 test server that was already running is left alone.
started_moto=""
started_rabbitmq=""
started_cluster=""
cleanup() {
  if [ -n "$started_cluster" ]; then
    # A start still booting (the script stopped early) is ended first.
    kill "${cluster_boot:-}" "${base_boot:-}" 2>/dev/null || true
    scripts/rabbitmq-cluster.sh stop || true
    echo "stopped the three-node RabbitMQ cluster this script started on 127.0.0.1:5681-5683" >&2
  fi
  if [ -n "$started_moto" ]; then
    kill "$started_moto" 2>/dev/null || true
    echo "stopped the S3 test server this script started on 127.0.0.1:9000" >&2
  fi
  if [ -n "$started_rabbitmq" ]; then
    rabbitmqctl stop >/dev/null 2>&1 || true
    echo "stopped the RabbitMQ node this script started on 127.0.0.1:5672" >&2
  fi
}
trap cleanup EXIT

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust $(grep -m1 rust-version Cargo.toml | cut -d'"' -f2) or newer with rustup (https://rustup.rs)" >&2
  exit 1
fi

# Debian packages the build and the tests need (scripts/build-deps.sh has
# the build's own): the GPU tests run on Mesa's lavapipe (a software Vulkan
# driver) where no GPU is present; the TLS tests make certificates with
# openssl and create a bucket with curl; the privacy tests watch the worker's
# file writes with strace; the benchmark test runs libvips and ImageMagick
# beside imgworker; the HEIF tests make 10-bit HEIC and AVIF sources with
# heif-enc (libheif-examples), a writer independent of imgworker; the JPEG
# XL tests make their sources with cjxl (libjxl-tools, libjxl's own encoder);
# the colour tests convert with lcms2's tificc (liblcms2-utils), an
# implementation independent of imgworker's, and read colord's Adobe RGB
# profile (colord-data). The container tests build and run the image with
# podman (runc as its runtime, catatonit for the pods of `podman kube
# play`) on a Debian base made with debootstrap (scripts/container.sh).
scripts/build-deps.sh libvulkan1 mesa-vulkan-drivers openssl curl strace libvips-tools imagemagick \
  libheif-examples libjxl-tools liblcms2-utils colord-data podman runc catatonit debootstrap

# RabbitMQ on 127.0.0.1:5672 (guest/guest) for the queue tests. The tests
# make their own vhosts. `rabbitmq-diagnostics ping` answers before the AMQP
# port accepts connections, so wait for the port itself.
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  scripts/build-deps.sh rabbitmq-server
fi
if ! port_open; then
  log "starting RabbitMQ (up to two minutes)"
  # Marked as ours only when this start succeeded: a node that was already
  # starting is not stopped at the end.
  if rabbitmq-server -detached; then started_rabbitmq=1; fi
  for _ in $(seq 1 120); do port_open && break; sleep 1; done
  port_open || { echo "RabbitMQ did not open 127.0.0.1:5672" >&2; exit 1; }
fi

# Python tools the tests run, in a virtualenv under target/ (ignored by git):
# moto's S3 server (on 127.0.0.1:9000 for the storage tests, and over HTTPS
# on a port of their own for the TLS tests) and kubernetes-validate (the
# Kubernetes manifests' schema check) and jsonschema (the job schema's
# boundary test checks the schema with it, as a Python producer would), and
# c2pa-python (the Content Credentials tests' independent C2PA reader).
venv=target/test-venv
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/kubernetes-validate" ] ||
  ! "$venv/bin/python" -c 'import jsonschema, c2pa' 2>/dev/null; then
  log "installing moto, kubernetes-validate, jsonschema and c2pa-python into $venv"
  python3 -m venv "$venv" 2>/dev/null || {
    scripts/build-deps.sh python3-venv
    python3 -m venv "$venv"
  }
  "$venv/bin/pip" install --progress-bar off "moto[server]==5.*" "kubernetes-validate==1.*" "jsonschema==4.*" \
    "c2pa-python==0.38.*"
fi
# KEDA's published schema, packaged for Node.js (@kubernetes-models/keda),
# for the ScaledObjects' check (tests/deploy.rs), under target/ as well.
keda=target/keda-validate
if [ ! -d "$keda/node_modules/@kubernetes-models/keda" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    scripts/build-deps.sh nodejs npm
  fi
  log "installing KEDA's schema package (@kubernetes-models/keda) into $keda with npm"
  mkdir -p "$keda"
  npm install --prefix "$keda" --no-audit --no-fund --loglevel=error \
    "@kubernetes-models/keda@0.4.2" "yaml@2"
fi

s3_open() { (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null; }
if ! s3_open; then
  log "starting moto_server on 127.0.0.1:9000"
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p 9000 >/dev/null 2>&1 &
  started_moto=$!
  for _ in $(seq 1 60); do s3_open && break; sleep 0.5; done
  s3_open || { echo "the S3 test server did not open 127.0.0.1:9000" >&2; exit 1; }
fi

# Real photographs for the benchmark test (Debian's mate-backgrounds), and
# its in-process peers (pyvips, Pillow, Pillow-SIMD in target/bench-peers).
scripts/fetch-photos.sh
scripts/bench-peers.sh

# Mesa's device_select layer prints Wayland errors on a headless machine;
# imgworker picks its adapter itself (the binary sets this too).
export NODEVICE_SELECT=1

# Every cargo command builds the release profile (the one the example
# command builds, so its compiled dependencies are reused) with the same
# features (the default ones and the tests' fault injection, `test-hooks`),
# so the crate and its dependencies are compiled once, with one feature set.
features=(--release --features test-hooks)

# Clippy's lints run inside that build: clippy-driver wraps rustc for this
# crate's own targets (RUSTC_WORKSPACE_WRAPPER, the mechanism `cargo clippy`
# uses) with warnings denied (CLIPPY_ARGS, in cargo-clippy's format), so the
# tests' build is the lint pass as well and the dependencies are not
# checked a second time; a lint or a compiler warning fails the build.
if ! command -v clippy-driver >/dev/null 2>&1; then
  echo "clippy is not installed: rustup component add clippy" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER=$(command -v clippy-driver)
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

# The failover test's three-node cluster (scripts/rabbitmq-cluster.sh), on
# ports of its own beside the node on 5672: it boots while the tests build.
log "starting a three-node RabbitMQ cluster on 127.0.0.1:5681-5683 in the background (its log: target/rabbitmq-cluster.log)"
mkdir -p target
started_cluster=1
scripts/rabbitmq-cluster.sh start >target/rabbitmq-cluster.log 2>&1 &
cluster_boot=$!

# The container tests' Debian base image (debootstrap, about a minute; kept
# in target/podman once made), made while the tests build as well.
log "making the container tests' Debian base image in the background, unless target/podman has it (its log: target/container-base.log)"
scripts/container.sh base >target/container-base.log 2>&1 &
base_boot=$!

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo test: building the tests and the binary, with clippy's lints (warnings denied)"
cargo test --all-targets "${features[@]}" --no-run

log "Vulkan adapters"
cargo run "${features[@]}" -- devices

log "waiting for the RabbitMQ cluster"
if ! wait "$cluster_boot"; then
  cat target/rabbitmq-cluster.log >&2
  echo "the three-node RabbitMQ cluster did not start (above)" >&2
  exit 1
fi

log "waiting for the container base image"
if ! wait "$base_boot"; then
  cat target/container-base.log >&2
  echo "the container base image could not be made (above)" >&2
  exit 1
fi

log "cargo test"
cargo test --all-targets "${features[@]}" --no-fail-fast

# The one-shot GPU node check (BENCHMARKS.md), end to end on this machine's
# Vulkan device: pack what the tests just built (no release build), run the
# check small, and check its report.
log "the GPU node pack and check, on this machine's Vulkan device"
IMGWORKER_PACK_PROFILE=test scripts/gpu-node-pack.sh target/gpu-node-test
scripts/gpu-node-check.sh target/gpu-node-test target/gpu-node-report --quick
"$venv/bin/python" - <<'PY'
import json
r = json.load(open("target/gpu-node-report/report.json"))
assert r["failed_steps"] == [], r["failed_steps"]
assert r["parity"]["failed"] == 0 and r["parity"]["passed"] >= 20, r["parity"]
assert r["devices"]["adapters"], "no Vulkan adapter in the report"
rows = r["kernels"]["rows"]
ops = {x["op"] for x in rows}
assert len(ops) >= 15 and "resize_linear" in ops and len(rows) == 2 * len(ops), sorted(ops)
assert all(x["kernel_ms"] is not None and x["kernel_ms"] > 0 for x in rows), "a kernel without a time"
for run in ("gpu-c1", "cpu-c1"):
    cells = r["bench"][run]["results"]
    assert cells and all(c["median_ms"] > 0 for c in cells), run
assert r["bench"]["gpu-c1"]["backend"] == "gpu", r["bench"]["gpu-c1"]["backend"]
print("the GPU node check's report is well formed and its parity tests passed")
PY
# Again as on a node without a Vulkan loader of its own (an ldconfig that
# lists nothing): the check must unpack the packed loader and still pass.
fake=$(mktemp -d)
printf '#!/bin/sh\nexit 0\n' >"$fake/ldconfig"
chmod +x "$fake/ldconfig"
PATH="$fake:$PATH" scripts/gpu-node-check.sh target/gpu-node-test target/gpu-node-report-loader --quick \
  2>&1 | tee target/gpu-node-report-loader.log | grep -c 'using the packed loader' >/dev/null
rm -rf "$fake"
log "every check passed"
