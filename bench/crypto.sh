#!/usr/bin/env bash
# Seal + open of one envelope per payload size, for the portable build and an x86-64-v3 build
# (AVX2), measured in one run and printed as one table with the ratio.
#
#   bench/crypto.sh            # full criterion run (about 2 minutes)
#   QUICK=1 bench/crypto.sh    # shorter measurement, noisier
#
# Each build has its own target directory so that the two RUSTFLAGS do not rebuild each
# other. Numbers are criterion's mean estimate per seal+open; see
# crypto-transport/benches/seal_open.rs for what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
if [ "${QUICK:-0}" = 1 ]; then args=(--warm-up-time 1 --measurement-time 2); else args=(--warm-up-time 2 --measurement-time 5); fi

run() { # name rustflags
  local dir="$target/bench-$1"
  echo "building and running the $1 build (RUSTFLAGS='$2')" >&2
  CARGO_TARGET_DIR="$dir" RUSTFLAGS="$2" \
    cargo bench --quiet -p mld-crypto-transport --bench seal_open -- "${args[@]}" >"$dir.log" 2>&1 \
    || { cat "$dir.log" >&2; exit 1; }
}
run portable '--cfg poly1305_backend="soft"'
run x86-64-v3 '-C target-cpu=x86-64-v3 --cfg poly1305_backend="soft"'

python3 - "$target" <<'PY'
import json, pathlib, sys
target = pathlib.Path(sys.argv[1])
def mean_ns(build, group, size):
    p = target / f"bench-{build}" / "criterion" / group / str(size) / "new" / "estimates.json"
    return json.loads(p.read_text())["mean"]["point_estimate"]
print(f"{'group':<24} {'payload':>8} {'portable':>12} {'x86-64-v3':>12} {'v3 speed-up':>12} {'portable MB/s':>14}")
for group in ["seal_open", "seal_open_compressible"]:
    for size in [64, 512, 1400, 16384]:
        a, b = mean_ns("portable", group, size), mean_ns("x86-64-v3", group, size)
        print(f"{group:<24} {size:>7}B {a/1000:>10.2f}µs {b/1000:>10.2f}µs {a/b:>11.2f}x {size/a*1000:>14.0f}")
PY
