#!/usr/bin/env bash
# The whole pipeline's memory under the replay soak (#23 goal 2): etcd-server, the sniffer
# (replaying every shared capture again and again, publishing on flow.v1), ml-detector (all
# outputs on) and firewall-agent (`dry_run`: it decides, audits and publishes, nft is never
# run), all registered with the etcd-server and heartbeating, on loopback ports of their own.
# Every SAMPLE_SECS it prints each daemon's RSS (the sniffer is restarted after each pass over
# the captures; its column is the running pass's) and the sum, then the growth per hour of
# the three long-lived daemons from the first sample after WARM_SECS to the last.
#
#   bench/soak.sh                                    # 10 minutes, one row a minute
#   SOAK_SECS=3600 bench/soak.sh                     # the hour goal 2 asks for
#   HWM=10000 SOAK_SECS=300 SAMPLE_SECS=30 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
SOAK_SECS="${SOAK_SECS:-600}"
SAMPLE_SECS="${SAMPLE_SECS:-60}"
WARM_SECS="${WARM_SECS:-60}"
HWM="${HWM:-100000}"
data="$root/../shared/data/pcap"
cargo build --release --quiet --workspace --bins
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd=$(port); flow=$(port); det=$(port); ctl=$(port)
secret="$work/root.secret"
cat >"$work/etcd.json" <<JSON
{ "listen": "127.0.0.1:$etcd", "tls": null, "min_lease_ttl_secs": 2, "metrics": { "listen": null } }
JSON
common() { # daemon name -> etcd and transport sections
  cat <<JSON
"etcd": { "endpoints": ["http://127.0.0.1:$etcd"], "lease_ttl_secs": 10, "connect_timeout_ms": 2000,
          "cache_file": "$work/$1-active.json" },
"transport": { "root_secret_file": "$secret", "key_epoch": 1 }
JSON
}
cat >"$work/sniffer.json" <<JSON
{ "sensor_id": "soak", "publish": { "bind": "tcp://127.0.0.1:$flow", "send_hwm": $HWM },
  "metrics": { "listen": null }, $(common sniffer) }
JSON
cat >"$work/detector.json" <<JSON
{ "subscribe": { "connect": ["tcp://127.0.0.1:$flow"], "recv_hwm": $HWM },
  "publish": { "bind": "tcp://127.0.0.1:$det", "send_hwm": $HWM }, "metrics": { "listen": null },
  "event_log": { "dir": "$work/logs", "rotate_max_bytes": 16777216, "retain_files": 3 },
  $(common ml-detector) }
JSON
printf '#!/bin/sh\nexit 1\n' >"$work/nft" && chmod +x "$work/nft"
cat >"$work/firewall.json" <<JSON
{ "subscribe": { "connect": ["tcp://127.0.0.1:$det"], "recv_hwm": $HWM },
  "publish": { "bind": "tcp://127.0.0.1:$ctl", "send_hwm": $HWM }, "dry_run": true,
  "audit_dir": "$work/audit", "nft": "$work/nft", "metrics": { "listen": null },
  $(common firewall-agent) }
JSON
log() { echo "$work/$1.log"; }
"$target/release/etcd-server" --log-format json run --config "$work/etcd.json" \
  --data-dir "$work/etcd" 2>"$(log etcd)" &
pids+=($!); etcd_pid=$!
for _ in $(seq 100); do
  "$target/release/etcd-server" init --endpoint "http://127.0.0.1:$etcd" --root-secret "$secret" \
    >/dev/null 2>>"$(log init)" && break
  sleep 0.1
done
taskset -c 1 "$target/release/ml-detector" --log-format json run --config "$work/detector.json" \
  2>"$(log detector)" &
pids+=($!); det_pid=$!
"$target/release/firewall-agent" --log-format json run --config "$work/firewall.json" \
  2>"$(log firewall)" &
pids+=($!); fw_pid=$!
mapfile -t files < <(find "$data" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)
(
  end=$((SECONDS + SOAK_SECS))
  while [ "$SECONDS" -lt "$end" ]; do
    # A pass takes a few seconds, the detector far longer: the next pass waits for its
    # subscriber (the detector's queue may be full), and one that fails is retried.
    taskset -c 0 "$target/release/sniffer" --log-format json run --config "$work/sniffer.json" \
      --wait-for-subscriber 60 --pcap "${files[@]}" 2>>"$(log sniffer)" || sleep 1
  done
) &
feeder=$!
pids+=("$feeder")
rss() { # pid -> MiB (0 when not running)
  awk '/VmRSS/ { printf "%.1f", $2 / 1024; found = 1 } END { if (!found) printf "0" }' \
    "/proc/$1/status" 2>/dev/null || printf '0'
}
echo
echo "pipeline soak: ${#files[@]} shared captures replayed for ${SOAK_SECS} s; high-water marks $HWM"
echo "| t (s) | etcd-server MiB | sniffer MiB | ml-detector MiB | firewall-agent MiB | sum MiB |"
echo "|------:|------:|------:|------:|------:|------:|"
start=$SECONDS
first=""; last=""
while kill -0 "$feeder" 2>/dev/null; do
  sleep "$SAMPLE_SECS"
  t=$((SECONDS - start))
  sn_pid=$(pgrep -f "release/sniffer --log-format json run --config $work/sniffer.json" | head -1 || true)
  e=$(rss "$etcd_pid"); s=$( [ -n "$sn_pid" ] && rss "$sn_pid" || echo 0 ); d=$(rss "$det_pid"); f=$(rss "$fw_pid")
  sum=$(python3 -c "print(f'{sum(map(float, [\"$e\", \"$s\", \"$d\", \"$f\"])):.1f}')")
  printf '| %5d | %6s | %6s | %6s | %6s | %6s |\n' "$t" "$e" "$s" "$d" "$f" "$sum"
  if [ "$t" -ge "$WARM_SECS" ]; then
    row="$t $e $d $f"
    [ -z "$first" ] && first="$row"
    last="$row"
  fi
done
echo
if [ -n "$first" ] && [ "$first" != "$last" ]; then
  python3 - "$first" "$last" <<'PY'
import sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
hours = (b[0] - a[0]) / 3600
for name, i in [("etcd-server", 1), ("ml-detector", 2), ("firewall-agent", 3)]:
    print(f"{name}: {a[i]:.1f} -> {b[i]:.1f} MiB from t={a[0]:.0f} s to t={b[0]:.0f} s ({(b[i] - a[i]) / hours:+.1f} MiB/h)")
PY
fi
for n in etcd detector firewall sniffer; do
  echo "$n: $(grep -c '"level":"ERROR"' "$(log $n)" || true) errors logged"
done
grep -o '"lost":[0-9]*' "$(log detector)" | tail -1 | sed 's/^/ml-detector flow.v1 /' || true
