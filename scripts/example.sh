#!/usr/bin/env bash
# Run the example job (examples/edit.json) on the embedded default: a local
# folder as storage (examples/storage), no broker, the GPU if one is usable
# and the CPU otherwise. Extra arguments go to `imgworker run`.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '\n== imgworker example: a first run on a fresh 2-core machine installs packages and builds the optimised binary for about 11 minutes (measured: docs/build-timings.md; apt and cargo show their progress); later runs start in seconds\n' >&2
scripts/build-deps.sh
scripts/fetch-photos.sh
mkdir -p examples/storage/demo/ladybird
cp photos/LadyBird.jpg examples/storage/demo/ladybird/original.jpg
# The example has no signing certificate, so its build leaves out Content
# Credentials (c2pa's crates, about 4 minutes of a cold build); every crate
# it does build is built as the test command builds it, which reuses them.
printf '\n== building imgworker (the release profile, which the test command reuses; without Content Credentials, which the example does not use), then running examples/edit.json\n' >&2
cargo run --release --no-default-features --features bench -- run examples/edit.json --storage examples/storage "$@"
echo "versions and manifests written to examples/storage/demo/ladybird/:" >&2
ls -l examples/storage/demo/ladybird >&2
