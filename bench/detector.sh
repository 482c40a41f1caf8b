#!/usr/bin/env bash
# ml-detector soak: memory over a long run, and detections/s over the real bus.
#
# The release sniffer reads every shared capture (--pcap, each a capture of its own) and publishes sealed
# FlowEvents on flow.v1, again and again for SOAK_SECS; `ml-detector run` (pinned to core 1)
# scores them, publishes sealed Detections on detection.v1 and writes events.jsonl, eve.json
# and sealed alert artifacts (alerts.mld), each rotating at 16 MiB and keeping 3 files. Every SAMPLE_SECS the table
# shows the detector's resident memory and its counters (from /metrics).
#
#   bench/detector.sh                    # 10 minutes
#   SOAK_SECS=3600 bench/detector.sh     # an hour
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
SOAK_SECS="${SOAK_SECS:-600}"
SAMPLE_SECS="${SAMPLE_SECS:-30}"
# Flow events the detector may hold queued (its subscriber) and the sniffer (its publisher).
HWM="${HWM:-100000}"
data="$root/../shared/data/pcap"
cargo build --release --quiet --workspace --bins
work="$(mktemp -d)"
dpid=""
trap '[ -n "$dpid" ] && kill "$dpid" 2>/dev/null; rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import os, sys
work = sys.argv[1]
fd = os.open(f"{work}/root.secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, os.urandom(32).hex().encode() + b"\n"); os.close(fd)
PY
flow=25571; det=25572; metrics=29102
cat >"$work/sniffer.json" <<JSON
{ "sensor_id": "soak", "publish": { "bind": "tcp://127.0.0.1:$flow", "send_hwm": $HWM }, "metrics": { "listen": null },
  "transport": { "root_secret_file": "$work/root.secret" } }
JSON
cat >"$work/detector.json" <<JSON
{ "subscribe": { "connect": ["tcp://127.0.0.1:$flow"], "recv_hwm": $HWM }, "publish": { "bind": "tcp://127.0.0.1:$det" },
  "metrics": { "listen": "127.0.0.1:$metrics" },
  "event_log": { "dir": "$work/logs", "rotate_max_bytes": 16777216, "retain_files": 3 },
  "transport": { "root_secret_file": "$work/root.secret" } }
JSON
mapfile -t files < <(find "$data" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)

taskset -c 1 "$target/release/ml-detector" --log-format json run --config "$work/detector.json" 2>"$work/detector.log" &
dpid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$metrics/metrics" >/dev/null 2>&1 && break; sleep 0.1; done
metric() { curl -sf "127.0.0.1:$metrics/metrics" | awk -v k="$1" 'index($0, k) == 1 { s += $NF } END { printf "%d", s }'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$dpid/status"; }

(
  end=$((SECONDS + SOAK_SECS))
  while [ "$SECONDS" -lt "$end" ]; do
    taskset -c 0 "$target/release/sniffer" --log-format json run --config "$work/sniffer.json" \
      --wait-for-subscriber 5 --pcap "${files[@]}" 2>>"$work/sniffer.log"
  done
) &
feeder=$!

echo
echo "ml-detector soak: ${#files[@]} shared captures replayed through the sniffer for ${SOAK_SECS} s; detector on core 1"
echo "| t (s) | flow events in | detections out | lost on flow.v1 | events.jsonl lines | rotations | artifacts | RSS (MiB) |"
echo "|-------|----------------|----------------|-----------------|--------------------|-----------|-----------|-----------|"
t0=$SECONDS
samples=()
while kill -0 "$feeder" 2>/dev/null; do
  sleep "$SAMPLE_SECS"
  r=$(rss)
  samples+=("$((SECONDS - t0)) $r")
  printf '| %5d | %14d | %14d | %15d | %18d | %9d | %9d | %9.1f |\n' \
    "$((SECONDS - t0))" \
    "$(metric 'mld_ml_detector_bus_received_messages_total')" \
    "$(metric 'mld_ml_detector_detections_total')" \
    "$(metric 'mld_ml_detector_bus_lost_messages_total')" \
    "$(metric 'mld_ml_detector_log_records_total{log="events"}')" \
    "$(metric 'mld_ml_detector_log_rotations_total')" \
    "$(metric 'mld_ml_detector_log_records_total{log="alerts"}')" \
    "$(echo "$r / 1024" | bc -l)"
done
wait "$feeder" || true
total=$(metric 'mld_ml_detector_detections_total')
kill -TERM "$dpid"; wait "$dpid" || true; dpid=""
printf '%s\n' "${samples[@]}" | python3 -c '
import sys
s = [tuple(map(int, l.split())) for l in sys.stdin if l.strip()]
if len(s) >= 3:
    first = s[len(s) // 10]
    last = s[-1]
    hours = (last[0] - first[0]) / 3600
    slope = (last[1] - first[1]) / 1024 / hours if hours > 0 else 0.0
    print(f"\nRSS from t={first[0]} s to t={last[0]} s: {first[1]/1024:.1f} -> {last[1]/1024:.1f} MiB ({slope:+.1f} MiB/h)")
'
echo "detections: $total in ${SOAK_SECS} s ($(echo "$total / $SOAK_SECS" | bc) per second; detector on core 1, sniffer on core 0)"
echo "disk: $(du -sh "$work/logs" | cut -f1) in $(find "$work/logs" -maxdepth 1 -type f | wc -l) log files (retention keeps 3 rotated per log)"
