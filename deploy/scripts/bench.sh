#!/usr/bin/env bash
# Load benchmarks of the gateway and the services (`just bench [ARGS...]`).
#
# SKELETON: the build step is real; the scenarios are added by the gateway work. The intended shape:
#   1. build in release (below), binaries and examples (load generators live in examples/);
#   2. start the stack from target/release like deploy/scripts/dev.sh does (JSON logs, RUST_LOG=warn
#      so logging does not dominate), wait for every /readyz;
#   3. run each scenario (e.g. register+login, create task, list tasks) for a fixed duration and
#      print requests/s and p50/p99 latency per scenario, one line each;
#   4. stop the stack (SIGTERM, as dev.sh does) whatever happened.
# The machine has 2 cores: run the load generator and the stack there, and compare numbers only
# between runs on the same machine.
set -euo pipefail

cd "$(dirname "$0")/../.."

echo "bench: building release binaries and examples" >&2
cargo build --release --bins --examples

# TODO(gateway): scenarios go here; the arguments ("$@") are reserved for choosing them.
echo "bench: no scenarios yet; they are added by the gateway work (deploy/scripts/bench.sh)" >&2
exit 2
