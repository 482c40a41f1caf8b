#!/usr/bin/env bash
# The system lab (#24): ML Defender installed by scripts/install.sh on a Debian 12 gateway that
# boots with systemd as PID 1 (a systemd-nspawn container), started only by its units, with an
# inside client and an outside attacker as containers of the same image.
#
#   client   10.77.0.10 ── lan0 ┐                      ┌ wan0 ── attacker 203.0.113.66
#   (nspawn, own netns)         └─ gateway (nspawn -b) ┘         (nspawn, own netns)
#                                  systemd, the five mldefender-* units, nftables, XDP
#
# Each machine has its own network namespace, made by this script and joined by nspawn
# (--network-namespace-path); the veth pairs run between those namespaces only: no host bridge,
# no address on the host, nothing leaves the lab.
#
# Usage: scripts/system-lab.sh [run|image|down]
#   run     (default) build the image if needed, boot the gateway, install, then check:
#           start order and readiness (etcd-server first, every daemon registered), an nmap
#           scan from the attacker blocked while the client is not, kill -9 of each daemon
#           restarted by systemd and registered again with the block still in force,
#           structured logs in journald, `systemd-analyze security` of every unit, an
#           upgrade (install.sh again: configs kept, daemons restarted), a reboot of the whole
#           gateway (units back, etcd data, key epoch and the block restored), and
#           --uninstall (units gone, data kept); then take it all down (also on failure)
#   image   only build the cached image
#   down    stop the containers and remove the namespaces (after an interrupted run)
#
# Environment:
#   MLD_SYSLAB_CACHE  where the image (a directory made by mmdebstrap) and the gateway's
#                     root are kept (default /var/cache/mldefender/system-lab)
#   MLD_SYSLAB_BIN    the release binaries (default $CARGO_TARGET_DIR/release or target/release)
#   MLD_MODELS        the models rag-ingester needs (default /opt/mldefender/models, from
#                     `make setup`), bound read-only into the gateway
#   MLD_SYSLAB_KEEP=1 leave the lab up after `run` (take it down with `down`)
# Needs root, mmdebstrap and systemd-container (make setup installs both).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MLD_SYSLAB_CACHE:-/var/cache/mldefender/system-lab}
BIN=${MLD_SYSLAB_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
MODELS=${MLD_MODELS:-/opt/mldefender/models}
P=mldsys
GW=$P-gw CLIENT=$P-client ATTACKER=$P-attacker
CLIENT_IP=10.77.0.10 ATTACKER_IP=203.0.113.66
# The image: what the gateway needs at run time (the binaries' shared libraries, nftables,
# iproute2, jq for install.sh) and the client's and attacker's tools.
PACKAGES=systemd,systemd-sysv,dbus,iproute2,iputils-ping,nftables,procps,jq,libpcap0.8,libzmq5,libopenblas0,libgomp1,curl,hping3,nmap,ca-certificates
DAEMONS=(etcd-server sniffer ml-detector firewall-agent rag-ingester)
T0=$(date +%s)

log() { printf '[system-lab %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf '[system-lab] FAIL %s\n' "$*" >&2; exit 1; }
ok() { log "ok   $*"; }

image() {
  if [ -f "$CACHE/base/.mld-packages" ] && [ "$(cat "$CACHE/base/.mld-packages")" = "$PACKAGES" ]; then
    return 0
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap not found (make setup installs it)"
  log "building the Debian 12 image in $CACHE/base (mmdebstrap, about a minute)"
  mkdir -p "$CACHE"
  rm -rf "$CACHE/base" "$CACHE/base.tmp"
  mmdebstrap --quiet --variant=minbase --include="$PACKAGES" bookworm "$CACHE/base.tmp" ||
    die "mmdebstrap failed"
  echo "$PACKAGES" >"$CACHE/base.tmp/.mld-packages"
  mv "$CACHE/base.tmp" "$CACHE/base"
}

# ------------------------------------------------------------------ network and containers
net_up() {
  ip netns add "$GW"
  ip netns add "$CLIENT"
  ip netns add "$ATTACKER"
  ip link add lan0 netns "$GW" type veth peer name eth0 netns "$CLIENT"
  ip link add wan0 netns "$GW" type veth peer name eth0 netns "$ATTACKER"
  ip -n "$GW" addr add 10.77.0.1/24 dev lan0
  ip -n "$GW" addr add 203.0.113.1/24 dev wan0
  ip -n "$CLIENT" addr add "$CLIENT_IP/24" dev eth0
  ip -n "$ATTACKER" addr add "$ATTACKER_IP/24" dev eth0
  local ns
  for ns in "$GW" "$CLIENT" "$ATTACKER"; do
    ip -n "$ns" link set lo up
  done
  ip -n "$GW" link set lan0 up
  ip -n "$GW" link set wan0 up
  ip -n "$CLIENT" link set eth0 up
  ip -n "$ATTACKER" link set eth0 up
  ip -n "$CLIENT" route add default via 10.77.0.1
  ip -n "$ATTACKER" route add default via 203.0.113.1
  ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1
}

# The gateway's root: a fresh copy of the image (kept across the reboot within one run).
gw_root() {
  rm -rf "$CACHE/gw"
  cp -a --reflink=auto "$CACHE/base" "$CACHE/gw"
  echo gateway >"$CACHE/gw/etc/hostname"
  mkdir -p "$CACHE/gw/opt/mldefender-src/bin"
  cp -a "$ROOT/config" "$ROOT/systemd" "$ROOT/scripts" "$CACHE/gw/opt/mldefender-src/"
}

# Boots the gateway (systemd as PID 1) in its namespace, with the capabilities its units use.
gw_boot() {
  local binds=(--bind-ro="$BIN:/opt/mldefender-src/bin")
  [ -d "$MODELS" ] && binds+=(--bind-ro="$MODELS")
  setsid systemd-nspawn --quiet --boot --directory="$CACHE/gw" --machine="$GW" --register=no --keep-unit \
    --network-namespace-path="/run/netns/$GW" \
    --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN --system-call-filter='bpf perf_event_open' \
    "${binds[@]}" </dev/null >>"$CACHE/gw.console" 2>&1 &
  echo $! >"$CACHE/gw.pid"
  local i state=
  for i in $(seq 1 600); do
    LEADER=$(pgrep -P "$(cat "$CACHE/gw.pid")" 2>/dev/null | head -1 || true)
    if [ -n "$LEADER" ] && [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" = systemd ]; then
      state=$(nsenter -t "$LEADER" -a -- systemctl is-system-running 2>&1 || true)
      case $state in
        running|degraded) return 0 ;;
      esac
    fi
    kill -0 "$(cat "$CACHE/gw.pid")" 2>/dev/null || die "the gateway container exited (console: $CACHE/gw.console)"
    sleep 0.1
  done
  die "the gateway did not boot within 60 s: systemctl is-system-running says '$state' (console: $CACHE/gw.console)"
}

# A command in the gateway, with a clean environment as an operator's root shell there has.
gw() {
  nsenter -t "$LEADER" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    MLD_BIN_DIR=/opt/mldefender-src/bin "$@"
}

# One command on the client or the attacker: a container of the image, its root a throwaway
# overlay, in that machine's namespace.
on() {
  local ns=$1; shift
  systemd-nspawn --quiet --directory="$CACHE/base" --volatile=overlay --register=no --keep-unit \
    --machine="$ns" --network-namespace-path="/run/netns/$ns" --as-pid2 "$@" 2>>"$CACHE/machines.log"
}

gw_stop() {
  local pid
  pid=$(cat "$CACHE/gw.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
  gw_stop
  local ns
  for ns in "$GW" "$CLIENT" "$ATTACKER"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

# ------------------------------------------------------------------ what is checked
unit_prop() { gw systemctl show -p "$2" --value "mldefender-$1.service"; }

etcdctl_gw() {
  ip netns exec "$GW" env ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 "$@" 2>/dev/null
}

components() {
  etcdctl_gw get --prefix /mldefender/v1/components/ --print-value-only | jq -r .component | sort -u
}

wait_registered() {
  local secs=$1 i
  for i in $(seq 1 $((secs * 5))); do
    # Every daemon but etcd-server itself.
    [ "$(components | grep -c .)" -ge $((${#DAEMONS[@]} - 1)) ] && return 0
    sleep 0.2
  done
  return 1
}

wait_active() {
  local secs=$1 i d all
  for i in $(seq 1 $((secs * 5))); do
    all=1
    for d in "${DAEMONS[@]}"; do
      [ "$(unit_prop "$d" ActiveState)" = active ] || all=0
    done
    [ "$all" = 1 ] && return 0
    sleep 0.2
  done
  for d in "${DAEMONS[@]}"; do
    log "     mldefender-$d: $(unit_prop "$d" ActiveState) ($(unit_prop "$d" Result))"
  done
  return 1
}

etcd_get() { etcdctl_gw get "$1" --print-value-only || true; }

blocked() {
  ip netns exec "$GW" nft -j list set inet mldefender block4 2>/dev/null |
    jq -r '.nftables[] | select(.set) | .set.elem // [] | .[] | if type == "object" then .elem.val else . end'
}

wait_blocked() {
  local addr=$1 secs=$2 i
  for i in $(seq 1 $((secs * 5))); do
    blocked | grep -qx "$addr" && return 0
    sleep 0.2
  done
  return 1
}

check_started() {
  wait_active 60 || die "not every unit is active 60 s after install (journalctl -u 'mldefender-*' in the gateway)"
  local d t first=etcd-server t0
  t0=$(unit_prop etcd-server ActiveEnterTimestampMonotonic)
  for d in "${DAEMONS[@]}"; do
    t=$(unit_prop "$d" ActiveEnterTimestampMonotonic)
    [ "$d" = "$first" ] || [ "$t" -ge "$t0" ] || die "mldefender-$d became active before etcd-server"
  done
  wait_registered 30 || die "registered after 30 s: $(components | tr '\n' ' ')"
  ok "$1: the five units active, etcd-server first; registered: $(components | tr '\n' ' ')"
}

cmd_run() {
  [ "$(id -u)" -eq 0 ] || die "run as root"
  command -v systemd-nspawn >/dev/null || die "systemd-nspawn not found (make setup installs systemd-container)"
  command -v etcdctl >/dev/null || die "etcdctl not found (make setup installs etcd-client)"
  for b in "${DAEMONS[@]}" rag; do
    [ -x "$BIN/$b" ] || die "$BIN/$b not found: cargo build --release --workspace --bins first"
  done
  if ip netns list | grep -q "^$GW\b"; then die "the system lab is already up (scripts/system-lab.sh down first)"; fi
  image
  [ "${MLD_SYSLAB_KEEP:-0}" = 1 ] || trap cmd_down EXIT
  : >"$CACHE/gw.console"
  : >"$CACHE/machines.log"
  net_up
  gw_root
  gw_boot
  ok "gateway booted: systemd $(gw systemctl --version | head -1 | cut -d' ' -f2) as PID 1 in its own namespace"

  # Install as an operator would, then nothing but the units starts the suite.
  gw /opt/mldefender-src/scripts/install.sh --iface lan0:lan --iface wan0:wan \
    >"$CACHE/install.log" 2>&1 || { cat "$CACHE/install.log" >&2; die "install.sh failed"; }
  check_started "install"

  # The client's ordinary traffic, then the attacker's scan.
  on "$CLIENT" ping -c 3 -i 0.2 -q 10.77.0.1 >/dev/null || die "the client cannot reach the gateway"
  on "$ATTACKER" nmap -n -sS -Pn -T4 -p 1-1000 --max-retries 0 "$CLIENT_IP" >/dev/null 2>&1 || true
  wait_blocked "$ATTACKER_IP" 20 || die "the attacker $ATTACKER_IP was not blocked 20 s after its scan"
  blocked | grep -qx "$CLIENT_IP" && die "the client $CLIENT_IP was blocked"
  if on "$ATTACKER" ping -c 2 -W 1 -q "$CLIENT_IP" >/dev/null 2>&1; then
    die "the attacker still reaches the client through the gateway"
  fi
  on "$CLIENT" ping -c 2 -W 1 -q 10.77.0.1 >/dev/null || die "the client lost the gateway"
  ok "nmap from $ATTACKER_IP: blocked in the gateway's nftables, its packets dropped; the client not blocked"

  # kill -9 of each daemon: systemd restarts it, it registers again, the block stays.
  local d pid n0 n1
  for d in "${DAEMONS[@]}"; do
    pid=$(unit_prop "$d" MainPID)
    n0=$(unit_prop "$d" NRestarts)
    gw kill -9 "$pid"
    local i
    for i in $(seq 1 100); do
      n1=$(unit_prop "$d" NRestarts)
      [ "$n1" -gt "$n0" ] && [ "$(unit_prop "$d" ActiveState)" = active ] && break
      sleep 0.1
    done
    [ "$n1" -gt "$n0" ] || die "mldefender-$d was not restarted after kill -9 (NRestarts $n0 -> $n1)"
  done
  wait_active 30 || die "not every unit active after the kills"
  wait_registered 30 || die "not every daemon registered again after the kills: $(components | tr '\n' ' ')"
  wait_blocked "$ATTACKER_IP" 5 || die "the block of $ATTACKER_IP was lost after firewall-agent's restart"
  ok "kill -9 of each daemon: restarted by systemd, registered again, the block still in force"

  # journald has each daemon's structured (JSON) log lines.
  local lines
  for d in "${DAEMONS[@]}"; do
    lines=$(gw journalctl -q -u "mldefender-$d" -o cat --no-pager | grep '^{' || true)
    [ -n "$lines" ] || die "no JSON log line of mldefender-$d in journald"
    jq -e -s 'all(.[]; .level and .message and .timestamp)' <<<"$lines" >/dev/null ||
      die "a log line of mldefender-$d in journald lacks level, message or timestamp"
  done
  ok "journald: every unit's log lines are JSON objects with a level"

  log "systemd-analyze security (exposure, 0 best - 10 worst):"
  for d in "${DAEMONS[@]}"; do
    log "     mldefender-$d: $(gw systemd-analyze security "mldefender-$d.service" 2>/dev/null | tail -1 | sed 's/.*exposure level for [^:]*: //')"
  done

  # Upgrade: install.sh again over the installation keeps the operator's config.
  local conf=/etc/mldefender/firewall-agent.json
  gw sh -c "jq '.block.duration_secs = 900' $conf > $conf.new && mv $conf.new $conf && chown root:mldefender $conf && chmod 0640 $conf"
  local before
  before=$(unit_prop sniffer ExecMainStartTimestampMonotonic)
  gw /opt/mldefender-src/scripts/install.sh >"$CACHE/upgrade.log" 2>&1 || { cat "$CACHE/upgrade.log" >&2; die "upgrade failed"; }
  [ "$(unit_prop sniffer ExecMainStartTimestampMonotonic)" != "$before" ] || die "the upgrade did not restart the daemons"
  [ "$(gw jq .block.duration_secs $conf)" = 900 ] || die "the upgrade lost the operator's config"
  check_started "upgrade (install.sh again): the operator's config kept, daemons restarted"

  # A config committed to etcd (ml-detector's active config, a live field changed).
  gw sh -c "etcd-server config get ml-detector > /tmp/md.json && jq '.verdict.malicious_score = 0.85' /tmp/md.json > /tmp/md2.json && etcd-server config put ml-detector /tmp/md2.json" \
    >"$CACHE/config.log" 2>&1 || { cat "$CACHE/config.log" >&2; die "could not change ml-detector's active config in etcd"; }
  local audit=/var/lib/mldefender/firewall-agent/audit.jsonl audit_lines
  audit_lines=$(wc -l <"$CACHE/gw$audit")
  gw grep -q "$ATTACKER_IP" "$audit" || die "the audit log has no record of the block of $ATTACKER_IP"

  # A reboot of the whole gateway: the kernel's state goes with it (the lab's namespace
  # outlives the container, so its nftables and XDP programs are removed by hand, as a real
  # reboot would), and the units alone bring the suite and its state back.
  local epoch
  epoch=$(etcd_get /mldefender/v1/keys/epoch)
  [ -n "$epoch" ] || die "the key epoch is not set in etcd after install (etcd-server init)"
  gw systemctl reboot || true
  local old
  old=$(cat "$CACHE/gw.pid")
  for i in $(seq 1 300); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$old" 2>/dev/null && die "the gateway did not go down for its reboot"
  ip netns exec "$GW" nft flush ruleset
  ip -n "$GW" link set dev lan0 xdp off
  ip -n "$GW" link set dev wan0 xdp off
  gw_boot
  check_started "reboot"
  [ "$(etcd_get /mldefender/v1/keys/epoch)" = "$epoch" ] || die "the key epoch changed over the reboot"
  [ "$(gw etcd-server config get ml-detector | jq .verdict.malicious_score)" = 0.85 ] ||
    die "ml-detector's active config in etcd was lost over the reboot"
  wait_blocked "$ATTACKER_IP" 10 || die "the block of $ATTACKER_IP (600 s) was not restored after the reboot"
  [ "$(gw jq .block.duration_secs $conf)" = 900 ] || die "the config file changed over the reboot"
  [ "$(wc -l <"$CACHE/gw$audit")" -ge "$audit_lines" ] || die "audit records were lost over the reboot"
  gw ip link show lan0 | grep -q xdp || die "no XDP program on lan0 after the reboot"
  ok "reboot (nftables and XDP state gone): units started by systemd alone, the block restored into a fresh ruleset, key epoch $epoch, the active config in etcd and $audit_lines audit records kept, XDP attached again"

  # Uninstall keeps configs and data.
  gw /opt/mldefender-src/scripts/install.sh --uninstall >"$CACHE/uninstall.log" 2>&1 || { cat "$CACHE/uninstall.log" >&2; die "uninstall failed"; }
  for d in "${DAEMONS[@]}"; do
    [ "$(unit_prop "$d" LoadState)" = not-found ] || die "mldefender-$d still loaded after --uninstall"
  done
  gw test -e /etc/mldefender/root.secret || die "--uninstall removed the root secret"
  gw test -d /var/lib/mldefender/etcd-server || die "--uninstall removed etcd-server's data"
  ok "uninstall: units gone and stopped, configs and data kept"
  log "passed in $(($(date +%s) - T0)) s"
}

case ${1:-run} in
  run) cmd_run ;;
  image) [ "$(id -u)" -eq 0 ] || die "run as root"; image ;;
  down) cmd_down ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command $1 (see --help)" ;;
esac
