#!/usr/bin/env bash
# Installs ML Defender on a gateway as systemd services: the release binaries (the daemons and
# the analyst's `rag` CLI), the shipped
# configs (never overwriting ones already in /etc/mldefender), the units from systemd/, a
# system user `mldefender` and a fresh root secret (0600, owned by that user; never replaced),
# and /etc/sysctl.d/60-mldefender.conf (conntrack does not pick up TCP connections mid-stream:
# what firewall-agent's SYN proxy for a flooded service needs; applied at once).
# Then enables and starts the units, unless told not to. Run as root after
# `cargo build --release --workspace --bins`. Idempotent.
#
#   scripts/install.sh [--iface NAME[:ROLE]]... [--no-start]
#   scripts/install.sh --uninstall [--purge]
#
#   --iface eth1          capture on eth1 as a host sensor (repeat for a gateway:
#                         --iface eth1:lan --iface eth0:wan); replaces the shipped config's
#                         interface list on a fresh install only
#   --no-start            install and enable, do not start
#   --uninstall           stop and disable the units, remove the binaries, units and the
#                         sysctl file; keep /etc/mldefender (configs, root secret) and
#                         /var/lib/mldefender (event store, audit log, etcd data)
#   --purge               with --uninstall: remove those too, and the mldefender user
#
# Upgrading is running it again over an installation: the kept configs are first checked
# with the NEW binaries, and nothing is changed unless every one is valid (a field the new
# version renamed or dropped is named with its file); then binaries and units are replaced,
# systemd reloaded and the daemons restarted (systemd orders them: etcd-server first).
#
# Environment: DESTDIR (install under another root, for packaging and tests; implies
# --no-start and touches neither systemd, users nor sysctl), CARGO_TARGET_DIR (where the
# release binaries are), MLD_BIN_DIR (the binaries' folder itself, e.g. a debug build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${MLD_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
DEST=${DESTDIR:-}
START=1
UNINSTALL=0
PURGE=0
IFACES=()
while [ $# -gt 0 ]; do
  case $1 in
    --iface) IFACES+=("$2"); shift 2 ;;
    --no-start) START=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done
[ -n "$DEST" ] && START=0

log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || [ -n "$DEST" ] || die "run as root: sudo scripts/install.sh"

DAEMONS=(etcd-server sniffer ml-detector firewall-agent rag-ingester)
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge goes with --uninstall"

if [ "$UNINSTALL" = 1 ]; then
  if [ -z "$DEST" ]; then
    systemctl disable --now "${DAEMONS[@]/#/mldefender-}" 2>/dev/null || true
  fi
  for d in "${DAEMONS[@]}"; do
    rm -f "$DEST/usr/local/bin/$d" "$DEST/etc/systemd/system/mldefender-$d.service"
  done
  rm -f "$DEST/usr/local/bin/rag" "$DEST/etc/sysctl.d/60-mldefender.conf"
  [ -n "$DEST" ] || systemctl daemon-reload
  log "removed the binaries, the units and /etc/sysctl.d/60-mldefender.conf"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$DEST/etc/mldefender" "$DEST/var/lib/mldefender" "$DEST/var/log/mldefender"
    if [ -z "$DEST" ] && id mldefender >/dev/null 2>&1; then userdel mldefender; fi
    log "purged /etc/mldefender, /var/lib/mldefender, /var/log/mldefender and the mldefender user"
  else
    log "kept $DEST/etc/mldefender and $DEST/var/lib/mldefender (--purge removes them)"
  fi
  exit 0
fi

for d in "${DAEMONS[@]}" rag; do
  [ -x "$TARGET/$d" ] || die "$TARGET/$d not found: cargo build --release --workspace --bins first"
done

# An upgrade: every kept config must be valid for the new binaries before anything changes.
bad=0
for d in "${DAEMONS[@]}" rag; do
  conf="$DEST/etc/mldefender/$d.json"
  [ -e "$conf" ] || continue
  if ! out=$("$TARGET/$d" validate --config "$conf" 2>&1); then
    printf '[install] %s\n' "$out" >&2
    bad=1
  fi
done
[ "$bad" = 0 ] || die "nothing changed: the kept configs above are not valid for the new version; fix them (see config/*.json and docs/config/*.schema.json) and run again"

# A fresh sniffer config with the --iface list, checked before anything changes.
SNIFFER_CONF=
if [ ! -e "$DEST/etc/mldefender/sniffer.json" ] && [ ${#IFACES[@]} -gt 0 ]; then
  SNIFFER_CONF=$(mktemp)
  trap 'rm -f "$SNIFFER_CONF"' EXIT
  list=$(printf '%s\n' "${IFACES[@]}" | jq -R 'split(":") | {name: .[0], role: (.[1] // "host")}' | jq -s .)
  jq --argjson l "$list" '.interfaces = $l' "$ROOT/config/sniffer.json" >"$SNIFFER_CONF"
  if ! out=$("$TARGET/sniffer" validate --config "$SNIFFER_CONF" 2>&1); then
    printf '%s\n' "$out" | sed "s|$SNIFFER_CONF|sniffer.json with --iface ${IFACES[*]}|g" >&2
    die "nothing changed: the --iface list makes an invalid sniffer config"
  fi
fi

if [ -z "$DEST" ] && ! id mldefender >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/mldefender --no-create-home --shell /usr/sbin/nologin mldefender
  log "created system user mldefender"
fi

install -d -m 0755 "$DEST/usr/local/bin" "$DEST/etc/systemd/system"
install -d -m 0750 "$DEST/etc/mldefender"
for d in "${DAEMONS[@]}"; do
  install -m 0755 "$TARGET/$d" "$DEST/usr/local/bin/$d"
  install -m 0644 "$ROOT/systemd/mldefender-$d.service" "$DEST/etc/systemd/system/"
  conf="$DEST/etc/mldefender/$d.json"
  if [ -e "$conf" ]; then
    log "$conf exists: kept"
  else
    if [ "$d" = sniffer ] && [ -n "$SNIFFER_CONF" ]; then
      install -m 0640 "$SNIFFER_CONF" "$conf"
    else
      install -m 0640 "$ROOT/config/$d.json" "$conf"
    fi
    log "installed $conf"
  fi
  "$DEST/usr/local/bin/$d" validate --config "$conf" >/dev/null || die "$conf is invalid"
done
# The rag CLI: no unit, a config beside the daemons'.
install -m 0755 "$TARGET/rag" "$DEST/usr/local/bin/rag"
if [ -e "$DEST/etc/mldefender/rag.json" ]; then
  log "$DEST/etc/mldefender/rag.json exists: kept"
else
  install -m 0640 "$ROOT/config/rag.json" "$DEST/etc/mldefender/rag.json"
  log "installed $DEST/etc/mldefender/rag.json"
fi
"$DEST/usr/local/bin/rag" validate --config "$DEST/etc/mldefender/rag.json" >/dev/null ||
  die "$DEST/etc/mldefender/rag.json is invalid"

# firewall-agent protects a flooded TCP service with nftables' SYN proxy, which needs conntrack
# to leave connections it did not see start alone (ADR 0012).
install -d -m 0755 "$DEST/etc/sysctl.d"
cat >"$DEST/etc/sysctl.d/60-mldefender.conf" <<'EOF2'
# ML Defender (scripts/install.sh): firewall-agent's SYN proxy for a flooded TCP service needs
# conntrack not to pick up connections mid-stream (ADR 0012). Without it the agent rate-limits
# the service's SYNs instead, and says so in its log.
net.netfilter.nf_conntrack_tcp_loose = 0
EOF2
log "installed $DEST/etc/sysctl.d/60-mldefender.conf"

secret="$DEST/etc/mldefender/root.secret"
if [ ! -e "$secret" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret")
  log "wrote a new root secret $secret (0600)"
fi
if [ -z "$DEST" ]; then
  chown root:mldefender "$DEST/etc/mldefender" "$DEST"/etc/mldefender/*.json
  chown mldefender:mldefender "$secret"
  modprobe nf_conntrack 2>/dev/null || true
  sysctl -q -p /etc/sysctl.d/60-mldefender.conf ||
    log "warning: could not apply /etc/sysctl.d/60-mldefender.conf now (it applies at boot)"
  systemctl daemon-reload
  systemctl enable "${DAEMONS[@]/#/mldefender-}" >/dev/null
  log "enabled ${DAEMONS[*]/#/mldefender-}"
  if [ "$START" = 1 ]; then
    systemctl restart "${DAEMONS[@]/#/mldefender-}"
    # Provision the deployment once etcd-server answers: key epoch 1 unless one is set (safe
    # to run again; the root secret above is kept).
    inited=
    for _ in $(seq 1 50); do
      if out=$(/usr/local/bin/etcd-server init --root-secret "$secret" 2>&1); then inited=1; break; fi
      sleep 0.2
    done
    [ -n "$inited" ] || die "etcd-server init failed: $out (journalctl -u mldefender-etcd-server)"
    printf '%s\n' "$out" | sed 's/^/[install] /'
    log "started; journalctl -u 'mldefender-*' -f to follow, firewall-agent status --config /etc/mldefender/firewall-agent.json for blocks"
  fi
fi
