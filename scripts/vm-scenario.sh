#!/usr/bin/env bash
# The lab scenario from the client VM of the Vagrantfile against the defender VM: benign web
# and ssh traffic from 192.168.56.20, then a port scan from .21 (nmap), a SYN flood from .22
# (hping3) and an ssh brute force from .23 (hydra); then shows which sources still reach the
# defender's web server. scripts/lab.sh runs the same on one machine in network namespaces.
#
#   vagrant ssh client -c /vagrant/scripts/vm-scenario.sh
set -euo pipefail
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
TARGET=${1:-192.168.56.10}
IFACE=$(ip -o -4 addr show | awk '$4 ~ /^192\.168\.56\.20\// { print $2 }')
[ -n "$IFACE" ] || { echo "no 192.168.56.20 address here: run this in the client VM" >&2; exit 1; }
log() { printf '[vm] %s\n' "$*"; }
reaches() { curl -sf --max-time 2 --interface "$1" -o /dev/null "http://$TARGET/"; }

log "benign: 20 pages and 3 ssh attempts from 192.168.56.20"
for _ in $(seq 20); do curl -sf --max-time 3 -o /dev/null "http://$TARGET/" || true; sleep 0.1; done
for _ in 1 2 3; do ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=3 "nobody@$TARGET" true 2>/dev/null || true; done
log "port scan: nmap -sS ports 1-1000 from 192.168.56.21"
nmap -sS -Pn -n -T4 --max-retries 0 -e "$IFACE" -S 192.168.56.21 -p 1-1000 "$TARGET" >/dev/null 2>&1 || true
log "SYN flood: hping3, 20000 SYNs to port 80 from 192.168.56.22"
hping3 -q -S -p 80 -a 192.168.56.22 -i u20 -c 20000 "$TARGET" >/dev/null 2>&1 || true
log "ssh brute force: hydra, 32 parallel logins for 15 s from 192.168.56.23"
ip route replace "$TARGET/32" dev "$IFACE" src 192.168.56.23
seq -f 'guess%g' 1 200 >/tmp/vm-passwords.txt
(cd /tmp && timeout 15 hydra -l root -P /tmp/vm-passwords.txt -t 32 -I -q "ssh://$TARGET" >/dev/null 2>&1) || true
ip route del "$TARGET/32" dev "$IFACE" src 192.168.56.23
sleep 2
for a in 192.168.56.20 192.168.56.21 192.168.56.22 192.168.56.23; do
  if reaches "$a"; then log "$a reaches the web server"; else log "$a is blocked"; fi
done
log "on the defender: sudo firewall-agent status --config /etc/mldefender/firewall-agent.json"
