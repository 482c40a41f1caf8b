#!/usr/bin/env bash
# firewall-agent block benchmarks (root), printed as tables:
#  1. Latency in the lab (scripts/lab.sh, release binaries): a SYN scan from a new source per
#     run crosses the real gateway; time from its packets to the nft element being present
#     (`nft monitor`), p50/p90/p99 over RUNS runs (99 by default, after a warm-up run) (bench/block_latency.py).
#  2. Throughput: firewall-agent alone in a namespace under a storm of Detections, each from a
#     new source, published as fast as the bus takes them: elements/s into the kernel's set
#     (criterion-less bench `block_throughput`, firewall-agent/benches).
#
#   bench/block.sh              # RUNS=99 latency runs (after one warm-up), 20,000-detection storm
#   RUNS=50 STORM=50000 bench/block.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/block.sh needs root (namespaces, XDP, nftables)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$(pwd)/target}"
cargo build --release --workspace --locked --bins --quiet
export MLD_LAB_BIN="$target/release" MLD_LAB_PREFIX=mldbench MLD_LAB_DIR=/tmp/mld-bench
trap 'scripts/lab.sh down >/dev/null 2>&1 || true' EXIT
scripts/lab.sh up
LAB_GW=mldbench-gw LAB_ATTACKER=mldbench-attacker RUNS="${RUNS:-99}" python3 bench/block_latency.py
scripts/lab.sh down
STORM="${STORM:-20000}" cargo bench --locked --workspace --bench block_throughput -- --storm "${STORM:-20000}"
