#!/usr/bin/env bash
# scripts/install.sh under DESTDIR, as a test (make install-test, in make test): a fresh
# install, an upgrade refused without any change while a kept config is invalid for the new
# binaries, an upgrade that keeps the operator's config, --uninstall keeping configs and data,
# --uninstall --purge removing them. Uses the debug binaries (MLD_BIN_DIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MLD_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}
DEST=$(mktemp -d)
trap 'rm -rf "$DEST" "$DEST.log"' EXIT
export DESTDIR=$DEST MLD_BIN_DIR=$BIN
fail() { printf '[install-test] FAIL %s\n' "$*" >&2; exit 1; }
ok() { printf '[install-test] ok   %s\n' "$*"; }
run() { "$ROOT/scripts/install.sh" "$@" >"$DEST.log" 2>&1; }

# An --iface list that makes an invalid sniffer config is refused before anything is written.
if run --iface wan0:wan; then fail "an install with a wan interface and no lan one went ahead"; fi
grep -q 'lan' "$DEST.log" || { cat "$DEST.log" >&2; fail "the refusal does not say what the interface list lacks"; }
[ -z "$(find "$DEST" -mindepth 1 -print -quit)" ] || fail "a refused install left files: $(find "$DEST" -mindepth 1 | head -3)"
ok "install refused, nothing written: $(grep -m1 'lan' "$DEST.log" | cut -c1-120)"

run || { cat "$DEST.log" >&2; fail "fresh install"; }
for f in usr/local/bin/sniffer usr/local/bin/rag etc/systemd/system/mldefender-firewall-agent.service \
         etc/mldefender/firewall-agent.json etc/mldefender/root.secret etc/sysctl.d/60-mldefender.conf; do
  [ -e "$DEST/$f" ] || fail "fresh install: $f missing"
done
grep -qx 'net.netfilter.nf_conntrack_tcp_loose = 0' "$DEST/etc/sysctl.d/60-mldefender.conf" ||
  fail "the sysctl file does not turn conntrack's mid-stream pickup off"
[ "$(stat -c %a "$DEST/etc/mldefender/root.secret")" = 600 ] || fail "root secret not 0600"
ok "fresh install: binaries, units, configs, root secret (0600), sysctl file"

# The operator's change survives an upgrade; an invalid kept config stops it before any change.
conf=$DEST/etc/mldefender/firewall-agent.json
secret=$(cat "$DEST/etc/mldefender/root.secret")
jq '.block.duration_secs = 900' "$conf" >"$conf.new" && mv "$conf.new" "$conf"
jq '.no_such_field = 1' "$conf" >"$DEST/bad.json" && cp "$conf" "$DEST/good.json" && cp "$DEST/bad.json" "$conf"
echo marker >"$DEST/usr/local/bin/sniffer"
if run; then fail "an upgrade over an invalid config went ahead"; fi
grep -q 'no_such_field' "$DEST.log" && grep -q 'firewall-agent.json' "$DEST.log" ||
  { cat "$DEST.log" >&2; fail "the refusal does not name the file and the field"; }
[ "$(cat "$DEST/usr/local/bin/sniffer")" = marker ] || fail "a refused upgrade replaced a binary"
ok "upgrade refused, nothing changed: $(grep -m1 'no_such_field' "$DEST.log" | cut -c1-140)"
cp "$DEST/good.json" "$conf"
run || { cat "$DEST.log" >&2; fail "upgrade"; }
cmp -s "$BIN/sniffer" "$DEST/usr/local/bin/sniffer" || fail "upgrade did not replace the binaries"
[ "$(jq .block.duration_secs "$conf")" = 900 ] || fail "upgrade lost the operator's config"
[ "$(cat "$DEST/etc/mldefender/root.secret")" = "$secret" ] || fail "upgrade replaced the root secret"
ok "upgrade: binaries replaced, the operator's config and the root secret kept"

mkdir -p "$DEST/var/lib/mldefender/firewall-agent" && echo '{}' >"$DEST/var/lib/mldefender/firewall-agent/audit.jsonl"
run --uninstall || { cat "$DEST.log" >&2; fail "uninstall"; }
for f in usr/local/bin/sniffer usr/local/bin/rag etc/systemd/system/mldefender-sniffer.service etc/sysctl.d/60-mldefender.conf; do
  [ ! -e "$DEST/$f" ] || fail "uninstall left $f"
done
[ -e "$conf" ] && [ -e "$DEST/var/lib/mldefender/firewall-agent/audit.jsonl" ] || fail "uninstall removed configs or data"
ok "uninstall: binaries, units and sysctl file gone; configs and data kept"
run --uninstall --purge || { cat "$DEST.log" >&2; fail "purge"; }
[ ! -e "$DEST/etc/mldefender" ] && [ ! -e "$DEST/var/lib/mldefender" ] || fail "purge left configs or data"
ok "uninstall --purge: configs and data gone"
if run --purge; then fail "--purge without --uninstall was accepted"; fi
ok "--purge alone refused"
rm -f "$DEST.log"
