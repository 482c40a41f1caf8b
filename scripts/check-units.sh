#!/usr/bin/env bash
# Checks that the capabilities granted in systemd/*.service are what each daemon needs, no more
# and no less: each daemon runs as an unprivileged user (nobody) inside a fresh network
# namespace with exactly the unit's AmbientCapabilities (via setpriv, as systemd would grant
# them) and must come up and do its privileged work; with any one of them taken away, that work
# must fail. Run by `make e2e` (root).
#
#   sniffer         XDP attached on a veth (capture xdp_native) and AF_PACKET (capture af_packet)
#   firewall-agent  table inet mldefender created in the namespace's nftables
#   ml-detector     serves its metrics with no capability at all
#   etcd-server     answers etcdctl with no capability at all, its store in a nobody-owned dir
#   rag-ingester    opens its store and vector indices (embedding model from /opt) with none
#
# Environment: MLD_LAB_BIN (default target/release), as scripts/lab.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MLD_LAB_BIN:-$ROOT/target/release}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
NS=mldunits$$
WORK=$(mktemp -d)
FAILED=0
trap 'ip netns del "$NS" 2>/dev/null || true; rm -rf "$WORK"' EXIT

log() { printf '[units] %s\n' "$*"; }
pass() { printf '[units] ok    %s\n' "$*"; }
fail() { printf '[units] FAIL  %s\n' "$*"; FAILED=1; }

[ "$(id -u)" -eq 0 ] || { log "needs root (namespaces, setpriv)"; exit 1; }
USER_ID=$(id -u nobody) GROUP_ID=$(id -g nobody)

caps_of() { # unit -> "+bpf,+perfmon,..." (setpriv's form), empty for none
  sed -n 's/^AmbientCapabilities=//p' "$ROOT/systemd/$1" | tr ' ' '\n' | grep . |
    sed 's/^CAP_//' | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd, || true
}

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up
chmod 755 "$WORK"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/root.secret"
chmod 600 "$WORK/root.secret"
mkdir -p "$WORK/audit" "$WORK/events"
chown "$USER_ID:$GROUP_ID" "$WORK/root.secret" "$WORK/audit" "$WORK/events"

# run NAME CAPS CONFIG READY-COMMAND...: starts NAME as nobody with CAPS in the namespace
# (with RUN_ARGS after the config), waits up to 5 s for READY-COMMAND to succeed; returns its
# status; stops the daemon.
RUN_ARGS=()
run() {
  local name=$1 caps=$2 config=$3; shift 3
  local set="-all${caps:+,$caps}" ok=1 i
  ip netns exec "$NS" setpriv --reuid="$USER_ID" --regid="$GROUP_ID" --clear-groups \
    --inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" \
    "$BIN/$name" --log-format json run --config "$config" "${RUN_ARGS[@]}" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  for i in $(seq 1 50); do
    if "$@" >/dev/null 2>&1; then ok=0; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  ip netns exec "$NS" nft delete table inet mldefender 2>/dev/null || true
  return "$ok"
}

# why NAME: the first error NAME logged.
why() { jq -r 'select(.level == "ERROR") | .error' "$WORK/$1.log" 2>/dev/null | head -1 | cut -c1-110; }

# expect NAME UNIT CONFIG WHAT NEEDED READY-COMMAND...: works with the unit's capabilities, and
# fails without each one of NEEDED (the unit's capabilities this config exercises).
expect() {
  local name=$1 unit=$2 config=$3 what=$4 needed=$5; shift 5
  local caps c without
  caps=$(caps_of "$unit")
  if run "$name" "$caps" "$config" "$@"; then
    pass "$name with ${caps:-no capabilities}: $what"
  else
    fail "$name with ${caps:-no capabilities}: $what did not happen ($(why "$name"))"
  fi
  for c in ${needed//,/ }; do
    without=$(tr ',' '\n' <<<"$caps" | grep -vx -- "$c" | paste -sd, || true)
    if run "$name" "$without" "$config" "$@"; then
      fail "$name without ${c#+}: $what still happened, so the unit grants more than it needs"
    else
      pass "$name without ${c#+}: refused ($(why "$name"))"
    fi
  done
}

sniffer_config() { # capture mode
  cat >"$WORK/sniffer-$1.json" <<EOF
{ "sensor_id": "units", "interfaces": [ { "name": "v0", "role": "host" } ], "capture": "$1",
  "publish": { "bind": "tcp://127.0.0.1:25571" }, "metrics": { "listen": "127.0.0.1:29101" },
  "transport": { "root_secret_file": "$WORK/root.secret" } }
EOF
}
sniffer_config xdp_native
sniffer_config af_packet
# The page is read whole first: `curl | grep -q` under pipefail fails when grep stops early.
metrics_have() {
  local page
  page=$(ip netns exec "$NS" curl -sf "http://127.0.0.1:$1/metrics") && grep -qF "$2" <<<"$page"
}
xdp_ready() { metrics_have 29101 'mld_sniffer_xdp_packets{iface="v0",outcome="recorded"}'; }
afp_ready() { metrics_have 29101 'mld_sniffer_afpacket_frames{iface="v0",outcome="frames"}'; }
# XDP needs bpf, perfmon and net_admin; the AF_PACKET fallback needs net_raw.
expect sniffer mldefender-sniffer.service "$WORK/sniffer-xdp_native.json" \
  "XDP program attached" "+bpf,+perfmon,+net_admin" xdp_ready
expect sniffer mldefender-sniffer.service "$WORK/sniffer-af_packet.json" \
  "capturing with AF_PACKET" "+net_raw" afp_ready

jq --arg w "$WORK" '.transport.root_secret_file = $w + "/root.secret" | .audit_dir = $w + "/audit" |
    .subscribe.connect = ["tcp://127.0.0.1:25572"] | .publish.bind = "tcp://127.0.0.1:25573" |
    .etcd.endpoints = [] | .metrics.listen = "127.0.0.1:29103"' "$ROOT/config/firewall-agent.json" >"$WORK/firewall-agent.json"
table_ready() { ip netns exec "$NS" nft list table inet mldefender; }
expect firewall-agent mldefender-firewall-agent.service "$WORK/firewall-agent.json" \
  "table inet mldefender created" "$(caps_of mldefender-firewall-agent.service)" table_ready

jq --arg w "$WORK" '.transport.root_secret_file = $w + "/root.secret" | .event_log.dir = $w + "/events" |
    .subscribe.connect = ["tcp://127.0.0.1:25571"] | .publish.bind = "tcp://127.0.0.1:25572" |
    .etcd.endpoints = [] | .metrics.listen = "127.0.0.1:29102"' "$ROOT/config/ml-detector.json" >"$WORK/ml-detector.json"
detector_ready() { metrics_have 29102 mld_ml_detector_detections_total; }
expect ml-detector mldefender-ml-detector.service "$WORK/ml-detector.json" "running" "" detector_ready

mkdir -p "$WORK/etcd"
chown "$USER_ID:$GROUP_ID" "$WORK/etcd"
jq '.listen = "127.0.0.1:23790" | .metrics.listen = "127.0.0.1:29105"' \
  "$ROOT/config/etcd-server.json" >"$WORK/etcd-server.json"
etcd_ready() {
  ip netns exec "$NS" env ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23790 put units/check ok &&
    [ "$(ip netns exec "$NS" env ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:23790 get --print-value-only units/check)" = ok ]
}
RUN_ARGS=(--data-dir "$WORK/etcd")
expect etcd-server mldefender-etcd-server.service "$WORK/etcd-server.json" \
  "serving etcdctl (put, get)" "" etcd_ready
RUN_ARGS=()

mkdir -p "$WORK/rag"
chown "$USER_ID:$GROUP_ID" "$WORK/rag"
jq --arg w "$WORK" '.transport.root_secret_file = $w + "/root.secret" | .store_path = $w + "/rag/events.db" |
    .subscribe.connect = ["tcp://127.0.0.1:25572"] | .etcd.endpoints = [] | del(.etcd.cache_file) |
    .metrics.listen = "127.0.0.1:29104"' "$ROOT/config/rag-ingester.json" >"$WORK/rag-ingester.json"
ingester_ready() { metrics_have 29104 'mld_rag_ingester_indexed_vectors{index="text"}'; }
expect rag-ingester mldefender-rag-ingester.service "$WORK/rag-ingester.json" \
  "store and indices open" "" ingester_ready

[ "$FAILED" = 0 ] && log "the units' capabilities are each needed and together sufficient"
exit "$FAILED"
