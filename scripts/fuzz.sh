#!/usr/bin/env bash
# Runs each named cargo-fuzz target for SECS seconds (libFuzzer, no sanitizer, release build),
# with a corpus kept outside the checkout and seeded from the shared captures. A crash leaves
# its input under fuzz/artifacts/<target>/ and fails the run.
#
#   scripts/fuzz.sh SECS TARGET...
#   scripts/fuzz.sh 300 packet capture envelope
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="$1"; shift
root="${CARGO_TARGET_DIR:-$(pwd)/../target}"
export CARGO_TARGET_DIR="$root/fuzz"
corpus="$root/fuzz-corpus"
shared="$(pwd)/../../shared/data/pcap"
declare -A max_len=([packet]=2048 [capture]=65536 [envelope]=4096 [apps]=512)
cargo fuzz build --sanitizer none --release --debug-assertions
for target in "$@"; do
  mkdir -p "$corpus/$target"
  seeds=()
  if [ "$target" = capture ] && [ -d "$shared" ]; then
    mkdir -p "$corpus/capture-seeds"
    # Small shared captures, pcap and pcapng, as starting points (read, never modified).
    mapfile -t small < <(find "$shared" -type f -size -64k \( -name '*.pcap' -o -name '*.pcapng' \) | sort)
    for f in "${small[@]:0:60}"; do ln -sf "$f" "$corpus/capture-seeds/$(basename "$f")"; done
    seeds=("$corpus/capture-seeds")
  fi
  echo "fuzzing $target for ${secs}s (corpus $corpus/$target)"
  log="$corpus/$target.log"
  status=0
  cargo fuzz run --sanitizer none --release --debug-assertions "$target" "$corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$secs" -max_len="${max_len[$target]:-4096}" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' "$log" | sed 's/^/  /'
  if [ "$status" != 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $target failed (exit $status); the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
