#!/usr/bin/env bash
# A/B of two sniffer builds' offline engine (flows + features + host context + rules and
# behaviours, no output) over every shared capture, on one core, interleaved runs, so both
# see the same machine: prints frames per CPU second (user + system time of the process, which
# a busy or shared machine disturbs far less than wall time) per run, and B's throughput as a
# ratio of A's.
#
#   bench/sniffer-ab.sh A_BIN B_BIN [B_CONFIG]
#   e.g. build an older commit into another target dir, then
#   bench/sniffer-ab.sh /var/tmp/old/release/sniffer target/release/sniffer
set -euo pipefail
cd "$(dirname "$0")/.."
a="$1" b="$2"
REPEAT="${REPEAT:-3}" ROUNDS="${ROUNDS:-3}"
data="$(pwd)/../shared/data/pcap"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo '{ "sensor_id": "bench", "metrics": { "listen": null } }' >"$work/a.json"
cp "${3:-$work/a.json}" "$work/b.json"
mapfile -t files < <(find "$data" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)
list=()
for _ in $(seq "$REPEAT"); do list+=("${files[@]}"); done
run() { # bin config -> frames per CPU second
  local frames cpu
  /usr/bin/time -f "%U %S" -o "$work/time" taskset -c 0 "$1" --log-format json run --config "$2" --no-publish --pcap "${list[@]}" 2>"$work/log"
  frames=$(grep -o '"frames":[0-9]*' "$work/log" | tail -1 | cut -d: -f2)
  cpu=$(awk '{print $1 + $2}' "$work/time")
  python3 -c "import sys; print(f'{int(sys.argv[1]) / float(sys.argv[2]):.0f}')" "$frames" "$cpu"
}
echo "| round | A frames/CPU s | B frames/CPU s | B / A |"
echo "|---|---|---|---|"
ra=() rb=()
for r in $(seq "$ROUNDS"); do
  fa=$(run "$a" "$work/a.json"); fb=$(run "$b" "$work/b.json")
  ra+=("$fa"); rb+=("$fb")
  python3 -c "import sys; a,b=int(sys.argv[1]),int(sys.argv[2]); print(f'| {sys.argv[3]} | {a:,} | {b:,} | {b/a:.3f} |')" "$fa" "$fb" "$r"
done
python3 -c "
import sys, statistics as s
a=[int(x) for x in sys.argv[1].split()]; b=[int(x) for x in sys.argv[2].split()]
print(f'| median | {s.median(a):,.0f} | {s.median(b):,.0f} | {s.median(b)/s.median(a):.3f} |')" "${ra[*]}" "${rb[*]}"
