#!/usr/bin/env bash
# Peers in the same run (#23): the project's offline analyzer and nfstream (statistical
# features, the closest installable peer: flows + CICFlowMeter-like statistics from pcap) on the
# same captures, each pinned to one core, one process for all the files. Prints wall time,
# packets/s and peak RSS of each and the ratios, as a Markdown table.
#
#   bench/peers.sh                    # the 20 largest shared captures
#   FILES=20 bench/peers.sh           # the N largest
#   CAPTURES="a.pcap b.pcap" bench/peers.sh
#
# nfstream comes from PyPI (nfstream==$NFSTREAM_VERSION, default 6.6.0) into a venv the script
# makes once (PEERS_VENV, default /var/cache/mldefender/peers-venv: outside the checkout).
# `ml-detector analyze` runs with its JSON output on (one line per flow, to /dev/null), so it
# does more than nfstream here: flows, CIC features, host context, fast rules and behaviours,
# and the four forests' scores per flow.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${PEERS_VENV:-/var/cache/mldefender/peers-venv}"
version="${NFSTREAM_VERSION:-6.6.0}"
data="$root/../shared/data/pcap"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import nfstream" 2>/dev/null; then
  echo "peers: installing nfstream==$version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "nfstream==$version"
fi
have=$("$venv/bin/python" -c "import nfstream; print(nfstream.__version__)")
cargo build --release --quiet --locked -p mld-ml-detector
bin="$target/release/ml-detector"

if [ -n "${CAPTURES:-}" ]; then
  read -r -a files <<<"$CAPTURES"
else
  mapfile -t files < <(find "$data" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) \
    -printf '%s %p\n' | sort -rn | head -n "${FILES:-20}" | cut -d' ' -f2-)
fi
[ "${#files[@]}" -gt 0 ] || { echo "peers: no captures" >&2; exit 1; }
bytes=$(du -cb "${files[@]}" | tail -1 | cut -f1)

cat >"$work/nfs.py" <<'PY'
import sys
from nfstream import NFStreamer
flows = packets = 0
for path in sys.argv[1:]:
    # One meter process (pinned with its parent by taskset), statistics on, no DPI: what
    # nfstream offers closest to the analyzer's flow features.
    for f in NFStreamer(source=path, statistical_analysis=True, n_dissections=0, n_meters=1):
        flows += 1
        packets += f.bidirectional_packets
print(flows, packets)
PY

measure() { # label command... -> "secs peak_kib" in $work/label.time, stdout in $work/label.out
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o "$work/$label.time" taskset -c 0 "$@" >"$work/$label.out" 2>"$work/$label.err" ||
    { cat "$work/$label.err" >&2; echo "peers: $label failed" >&2; exit 1; }
}

args=()
for f in "${files[@]}"; do args+=(--pcap "$f"); done
measure ours "$bin" analyze "${args[@]}" --out -
ours_flows=$(grep -c . "$work/ours.out" || true)
ours_packets=$(jq -s '[.[] | .features.total_fwd_packets + .features.total_bwd_packets] | add // 0' "$work/ours.out")
measure nfstream "$venv/bin/python" "$work/nfs.py" "${files[@]}"
# Its last line (nfstream prints warnings to stdout, e.g. that one core means no meter process).
read -r nfs_flows nfs_packets < <(tail -n 1 "$work/nfstream.out")

read -r ours_s ours_kib <"$work/ours.time"
read -r nfs_s nfs_kib <"$work/nfstream.time"
python3 - "$ours_s" "$ours_kib" "$ours_flows" "$ours_packets" "$nfs_s" "$nfs_kib" "$nfs_flows" "$nfs_packets" \
  "${#files[@]}" "$bytes" "$have" <<'PY'
import sys
os_, ok, of, op, ns, nk, nf, np_, n, b, ver = sys.argv[1:]
os_, ns = float(os_), float(ns)
ok, nk, of, op, nf, np_ = (int(x) for x in (ok, nk, of, op, nf, np_))
print(f"{n} captures, {int(b) / 1e6:.1f} MB, one core each (taskset -c 0), one process for all files")
print()
print("| tool | flows | packets | wall s | packets/s | peak RSS MiB |")
print("|---|---|---|---|---|---|")
print(f"| ml-detector analyze (JSON out) | {of:,} | {op:,} | {os_:.2f} | {op / os_:,.0f} | {ok / 1024:.1f} |")
print(f"| nfstream {ver} (statistics, no DPI) | {nf:,} | {np_:,} | {ns:.2f} | {np_ / ns:,.0f} | {nk / 1024:.1f} |")
print()
print(f"ml-detector: {ns / os_:.1f}x nfstream's speed, {nk / max(ok, 1):.1f}x less peak memory.")
PY
