#!/usr/bin/env bash
# Sniffer throughput, printed as tables:
#  1. pcap -> flows + CIC features + host context + fast rules -> JSON lines, on one core
#     (taskset), over every shared capture (560 files read as one capture), REPEAT times;
#     and the same run without JSON output, to show what serialising costs, and without the
#     behaviours (every one disabled), to show what they cost.
#  2. Live XDP (native, veth) in a gateway namespace, with tcpreplay --topspeed from a client
#     namespace looping a shared capture: packets/s the program recorded, ring-full drops,
#     and every frame accounted for (sent = recorded + not_ip + other outcomes); sniffer RSS
#     sampled every second over the run.
#
#   bench/sniffer.sh                 # needs root for part 2
#   REPEAT=3 LIVE_SECS=60 bench/sniffer.sh
#   SKIP_LIVE=1 bench/sniffer.sh     # the pcap tables only
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
REPEAT="${REPEAT:-3}"
LIVE_SECS="${LIVE_SECS:-20}"
data="$root/../shared/data/pcap"
cargo build --release --quiet -p mld-sniffer
bin="$target/release/sniffer"
work="$(mktemp -d)"
trap 'rm -rf "$work"; for n in mldbc mldbg; do ip netns del $n 2>/dev/null || true; done' EXIT

mapfile -t files < <(find "$data" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)
list=()
for _ in $(seq "$REPEAT"); do list+=("${files[@]}"); done
echo '{ "sensor_id": "bench", "metrics": { "listen": null } }' >"$work/offline.json"
off='{ "enabled": false }'
cat >"$work/no-behaviours.json" <<JSON
{ "sensor_id": "bench", "metrics": { "listen": null },
  "behaviours": { "login": $off, "web_scan": $off, "dns": $off, "probe": $off, "half_open": $off,
                  "slow_http": $off, "beacon": $off, "exfil": $off, "smb": $off } }
JSON

offline() { # label config extra-args...
  local label="$1" config="$2"; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  taskset -c 0 "$bin" --log-format json run --config "$config" --no-publish --pcap "${list[@]}" "$@" 2>"$work/$label.log"
  t1=$(date +%s.%N)
  local frames flows
  frames=$(grep -o '"frames":[0-9]*' "$work/$label.log" | tail -1 | cut -d: -f2)
  flows=$(grep -o '"flows":[0-9]*' "$work/$label.log" | tail -1 | cut -d: -f2)
  python3 -c "import sys; f,fl,s=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]); print(f'| {sys.argv[4]:<34} | {f:>10,} | {fl:>9,} | {s:7.2f} | {f/s:>12,.0f} |')" "$frames" "$flows" "$(echo "$t1 - $t0" | bc)" "$label"
}
echo
echo "pcap mode, one core, ${#files[@]} shared captures x $REPEAT (wall time includes process start and reading the files)"
echo "| run                                | frames     | flows     | secs    | frames/s     |"
echo "|------------------------------------|------------|-----------|---------|--------------|"
offline "flows+features+JSONL" "$work/offline.json" --jsonl "$work/out.jsonl"
offline "flows+features (no output)" "$work/offline.json"
# The behaviours' cost (issue #22): the same engine with every behaviour disabled, same run.
offline "no behaviours (no output)" "$work/no-behaviours.json"
if [ "${SKIP_LIVE:-0}" = 1 ]; then exit 0; fi

if [ "$(id -u)" != 0 ]; then echo "live XDP part needs root; skipped"; exit 0; fi
ip netns add mldbc; ip netns add mldbg
ip link add tmpa netns mldbc type veth peer name tmpb netns mldbg
ip -n mldbc link set tmpa name eth0; ip -n mldbg link set tmpb name lan0
ip -n mldbc link set eth0 up; ip -n mldbg link set lan0 up; ip -n mldbg link set lo up
cat >"$work/live.json" <<JSON
{ "sensor_id": "bench", "interfaces": [ { "name": "lan0", "role": "host" } ], "capture": "xdp_native",
  "metrics": { "listen": "127.0.0.1:19099" } }
JSON
ip netns exec mldbg taskset -c 1 "$bin" --log-format json run --config "$work/live.json" --no-publish 2>"$work/live.log" &
spid=$!
for _ in $(seq 50); do ip netns exec mldbg curl -sf 127.0.0.1:19099/metrics 2>/dev/null | grep -q xdp_packets && break; sleep 0.2; done
scrape() { ip netns exec mldbg curl -sf 127.0.0.1:19099/metrics; }
metric() { scrape | awk -v k="$1" 'index($0, k) == 1 { s += $NF } END { printf "%d", s }'; }
pcap="$data/ddos/stopddos-pkt.TCP.synflood.spoofed.pcap"
rss=()
t0=$(date +%s.%N)
ip netns exec mldbc taskset -c 0 tcpreplay -q --topspeed --duration="$LIVE_SECS" --loop=0 -i eth0 "$pcap" >"$work/replay.log" 2>&1 &
rpid=$!
while kill -0 "$rpid" 2>/dev/null; do
  rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$(pgrep -f "run --config $work/live.json" | head -1)/status")")
  sleep 1
done
t1=$(date +%s.%N)
sleep 1
sent=$(grep -o 'Actual: [0-9]* packets' "$work/replay.log" | awk '{print $2}')
rec=$(metric 'mld_sniffer_xdp_packets{iface="lan0",outcome="recorded"}')
full=$(metric 'mld_sniffer_xdp_packets{iface="lan0",outcome="ring_full"}')
notip=$(metric 'mld_sniffer_xdp_packets{iface="lan0",outcome="not_ip"}')
other=$(( $(metric 'mld_sniffer_xdp_packets{iface="lan0",outcome="truncated"}') + $(metric 'mld_sniffer_xdp_packets{iface="lan0",outcome="malformed"}') + $(metric 'mld_sniffer_xdp_packets{iface="lan0",outcome="unsupported"}') ))
acc=$(metric 'mld_sniffer_packets_total')
kill -INT "$spid"; wait "$spid" || true
secs=$(echo "$t1 - $t0" | bc)
echo
echo "live XDP native on veth, tcpreplay --topspeed of $(basename "$pcap") for ${LIVE_SECS}s (generator and sniffer pinned to different cores)"
echo "| sent by tcpreplay | recorded by XDP | ring full | not IP | other | in flows (userspace) | unaccounted | secs | recorded pkt/s |"
echo "|---|---|---|---|---|---|---|---|---|"
python3 -c "
import sys
sent, rec, full, notip, other, acc, secs = map(float, sys.argv[1:8])
unacc = sent - rec - full - notip - other
print(f'| {sent:,.0f} | {rec:,.0f} | {full:,.0f} | {notip:,.0f} | {other:,.0f} | {acc:,.0f} | {unacc:,.0f} | {secs:.1f} | {rec/secs:,.0f} |')
" "$sent" "$rec" "$full" "$notip" "$other" "$acc" "$secs"
echo
echo "sniffer RSS (MiB), sampled once a second over ${#rss[@]} s, at each tenth of the run:"
python3 -c "
import sys
r = [int(x) / 1024 for x in sys.argv[1:]]
n = len(r)
at = [max(0, round(n * k / 10) - 1) for k in range(1, 11)]
print('| ' + ' | '.join(f'{(i + 1)} s' for i in at) + ' |')
print('|' + '---|' * len(at))
print('| ' + ' | '.join(f'{r[i]:.0f}' for i in at) + ' |')
" "${rss[@]}"
