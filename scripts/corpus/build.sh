#!/usr/bin/env bash
# Builds a labelled packet-capture corpus by running real attack tools against real services,
# all inside network namespaces this script creates (nothing reaches the host's interfaces).
#
#   attacker 198.18.0.0/16 ──ext0┐                       ┌int0── victim 10.66.0.10-14
#     (scenario addresses         │                       │   nginx :80 (basic auth, /app),
#      198.18.1.x, flood pool     ├── gateway (gw) ───────┤   sshd, vsftpd, unbound :53
#      198.18.10.1-50, C2/tunnel  │   tcpdump on int0     │   (tunnel zones delegated to
#      servers 198.18.0.5x-9x)    │   and int1            │   198.18.0.53/.54), samba :445
#   client   198.19.0.0/16 ──ext1┘                       └int1── lan 10.66.1.0/24
#     (benign users .10-.29,                                   workstations: benign .10-.29,
#      outside server .80)                                     compromised .100-.140
#
# Every scenario is captured on the gateway's inside interfaces (int0 whole, int1 without
# the packets to the servers' subnet, which int0 already has), merged into one pcap per
# scenario, and labelled with its window [start, end] and its hosts.
#
# Usage: scripts/corpus/build.sh [--smoke] [--out DIR] [--only CLASS...] [--keep]
#   --smoke   one short scenario per class (about 2-3 minutes)
#   --out     output folder (default $MLD_CORPUS_DIR or /var/tmp/mld-corpus); its pcap/,
#             LABELS.tsv and MANIFEST.json are replaced
#   --only    only these classes: scan flood bruteforce slowdos dns c2 lateral webattack
#             exfil benign; on an existing corpus of the same mode only their rows and
#             pcaps are replaced (the other classes are kept)
#   --keep    keep the work folder (configs, service logs, tool output) after the run
# Environment: MLD_CORPUS_PREFIX namespace prefix (default mldc); MLD_CORPUS_MATCH only the
#   scenarios whose name matches this (bash) regular expression
# Exit status: 0 when every scenario ran and was labelled, 1 otherwise (the summary says which).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${MLD_CORPUS_DIR:-/var/tmp/mld-corpus}
MODE=full
ONLY=()
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) MODE=smoke ;;
    --out) OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --keep) KEEP=1 ;;
    --only) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do ONLY+=("$1"); shift; done; continue ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
CLASSES=(scan flood bruteforce slowdos dns c2 lateral webattack exfil benign)
for c in "${ONLY[@]}"; do
  [[ " ${CLASSES[*]} " == *" $c "* ]] || { echo "unknown class: $c (one of: ${CLASSES[*]})" >&2; exit 2; }
done
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

P=${MLD_CORPUS_PREFIX:-mldc}
GW=$P-gw ATT=$P-attacker CLI=$P-client VIC=$P-victim LAN=$P-lan
WORK=$OUT/work
PY=/usr/bin/python3
SEED=2126   # the corpus seed: every seeded tool and generator derives from it

VIC_IP=10.66.0.10
VIC_IPS=(10.66.0.10 10.66.0.11 10.66.0.12 10.66.0.13 10.66.0.14)
OUTSIDE_SRV=198.19.0.80      # benign outside server (updates, CDN objects)
IODINE_NS=198.18.0.53 DNS2TCP_NS=198.18.0.54
C2_HTTP=198.18.0.80 C2_TLS=198.18.0.81 SINK=198.18.0.90 SINK2=198.18.0.91

T0=$(date +%s)
log() { printf '[corpus %4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf '[corpus] error: %s\n' "$*" >&2; exit 1; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
now() { date +%s.%N | cut -c1-17; }

[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, raw sockets, tcpdump)"
for t in ip ethtool tcpdump mergecap tshark nginx /usr/sbin/sshd vsftpd unbound smbd pdbedit smbclient \
         nmap masscan hping3 nping hydra medusa ncrack slowhttptest iodine iodined dns2tcpc dns2tcpd \
         sqlmap wfuzz curl wget rsync git openssl ssh-keygen timeout; do
  command -v "$t" >/dev/null || die "missing tool: $t (run: sudo scripts/setup.sh)"
done
[ -x "$PY" ] || die "$PY not found"
for ns in "$GW" "$ATT" "$CLI" "$VIC" "$LAN"; do
  ! ip netns list | grep -qw "$ns" || die "namespace $ns exists (another corpus run? remove with: ip netns del $ns)"
done

# ------------------------------------------------------------------------------- cleanup
cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM   # (a service signalling its process group must not stop the cleanup)
  set +e
  local ns pid
  for ns in "$ATT" "$CLI" "$LAN" "$VIC" "$GW"; do
    ip netns list 2>/dev/null | grep -qw "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      [ -n "${CORPUS_DEBUG:-}" ] && echo "cleanup: $ns $pid $(tr '\0' ' ' </proc/$pid/cmdline)" >&2
      kill -TERM "$pid" 2>/dev/null
    done
  done
  sleep 0.5
  for ns in "$ATT" "$CLI" "$LAN" "$VIC" "$GW"; do
    ip netns list 2>/dev/null | grep -qw "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  [ "$KEEP" = 1 ] || rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------------------ topology
make_topology() {
  local ns
  for ns in "$GW" "$ATT" "$CLI" "$VIC" "$LAN"; do
    ip netns add "$ns"
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  local link
  # ns  gw-interface  host-address  gw-address
  for link in "$ATT ext0 198.18.0.10/16 198.18.0.1/16" "$CLI ext1 198.19.0.10/16 198.19.0.1/16" \
              "$VIC int0 $VIC_IP/24 10.66.0.1/24" "$LAN int1 10.66.1.10/24 10.66.1.1/24"; do
    set -- $link
    ip link add tmpa netns "$1" type veth peer name tmpb netns "$GW"
    ip -n "$1" link set tmpa name eth0
    ip -n "$GW" link set tmpb name "$2"
    ip -n "$1" addr add "$3" dev eth0
    ip -n "$GW" addr add "$4" dev "$2"
    ip -n "$1" link set eth0 up
    ip -n "$GW" link set "$2" up
    ip -n "$1" route add default via "${4%/*}"
    # No segmentation/checksum offload: the captures hold wire-sized packets (at most the MTU)
    # with real checksums, not 64 KB GSO/TSO super-packets.
    in_ns "$1" ethtool -K eth0 tx off tso off gso off gro off >/dev/null 2>&1
    in_ns "$GW" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1
  done
  local i
  for i in $(seq 11 29) 80; do ip -n "$CLI" addr add "198.19.0.$i/16" dev eth0; done
  for i in 53 54 80 81 90 91; do ip -n "$ATT" addr add "198.18.0.$i/16" dev eth0; done
  for i in $(seq 1 60); do ip -n "$ATT" addr add "198.18.1.$i/16" dev eth0; done
  for i in $(seq 1 50); do ip -n "$ATT" addr add "198.18.10.$i/16" dev eth0; done
  for i in "${VIC_IPS[@]:1}"; do ip -n "$VIC" addr add "$i/24" dev eth0; done
  for i in $(seq 11 29) $(seq 100 140); do ip -n "$LAN" addr add "10.66.1.$i/24" dev eth0; done
  in_ns "$GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  for i in ext0 ext1 int0 int1; do in_ns "$GW" sysctl -qw "net.ipv4.conf.$i.rp_filter=0"; done
  # Anything not in the lab (a spoofed random source's answer) is dropped at the gateway.
  ip -n "$GW" route add blackhole default
  # The victim gives up on half-open connections after one SYN-ACK retry (~3 s), so a SYN
  # flood's aftermath stays inside its window; answers to spoofed sources are not retried long.
  in_ns "$VIC" sysctl -qw net.ipv4.tcp_synack_retries=1
  # Resolvers inside the namespaces only: ip netns exec binds /etc/netns/NS/* over /etc/*.
  # The attacker's own lookups (a daemon resolving its name) would be unlabelled traffic: it
  # gets a resolver on its loopback where nothing listens.
  for ns in "$ATT" "$CLI" "$LAN" "$VIC"; do
    mkdir -p "/etc/netns/$ns"
    if [ "$ns" = "$ATT" ]; then echo "nameserver 127.0.0.1"; else echo "nameserver $VIC_IP"; fi \
      >"/etc/netns/$ns/resolv.conf"
  done
}

# set_src NS ADDR: new connections from NS leave from ADDR (tools that cannot bind a source).
set_src() {
  local gw
  case $1 in
    "$ATT") gw=198.18.0.1 ;; "$CLI") gw=198.19.0.1 ;; "$LAN") gw=10.66.1.1 ;; *) die "set_src $1" ;;
  esac
  ip -n "$1" route replace default via "$gw" dev eth0 src "$2"
}

# ------------------------------------------------------------------------------ services
# Users of the victim (a passwd/shadow/group only the victim namespace sees).
VUSERS="alice:2001 bob:2002 admin:2003 git:2004 backupsvc:2005 administrator:2006"
start_services() {
  mkdir -p "$WORK"/{www,nginx,home,keys,samba,unbound,logs,ftp-empty,tls,wordlists} /run/sshd
  chmod 755 "$WORK" "$WORK/home"
  local v=/etc/netns/$VIC u name uid hash
  cp /etc/passwd "$v/passwd"; cp /etc/shadow "$v/shadow"; cp /etc/group "$v/group"
  for u in $VUSERS; do
    name=${u%%:*} uid=${u#*:}
    ! grep -q "^$name:" /etc/passwd || die "user $name exists on this machine: rename it in VUSERS"
    hash=$(openssl passwd -6 -salt corpus2126 "Corp-$name-2126!")
    echo "$name:x:$uid:$uid::$WORK/home/$name:/bin/bash" >>"$v/passwd"
    echo "$name:$hash:20000:0:99999:7:::" >>"$v/shadow"
    echo "$name:x:$uid:" >>"$v/group"
    mkdir -p "$WORK/home/$name"; chown "$uid:$uid" "$WORK/home/$name"
  done

  # --- web: static site (pages linking each other), a big file, basic auth, the app
  local i
  for i in $(seq 0 199); do
    {
      printf '<html><head><title>page %03d</title></head><body><h1>Intranet page %d</h1>\n' "$i" "$i"
      printf '<a href="page%03d.html">next</a> <a href="page%03d.html">other</a> <a href="/">home</a>\n' \
        $(( (i + 1) % 200 )) $(( (i * 7 + 3) % 200 ))
      head -c $(( 2000 + (i * 997) % 30000 )) /dev/zero | tr '\0' 'x' | fold -w 80
      printf '</body></html>\n'
    } >"$WORK/www/page$(printf %03d "$i").html"
  done
  cp "$WORK/www/page000.html" "$WORK/www/index.html"
  echo '{"status":"ok","load":0.42}' >"$WORK/www/status.json"
  mkdir -p "$WORK/www/secret" "$WORK/www/files"
  echo 'internal admin page' >"$WORK/www/secret/index.html"
  printf 'admin:%s\n' "$(openssl passwd -apr1 -salt corpus26 'Adm1n-2126!')" >"$WORK/htpasswd"
  cat >"$WORK/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log $WORK/logs/nginx-access.log;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  client_max_body_size 50m;
  server {
    listen 80 default_server;
    root $WORK/www;
    location /secret/ { auth_basic "admin area"; auth_basic_user_file $WORK/htpasswd; }
    location /app { proxy_pass http://127.0.0.1:8081; proxy_set_header Host \$host; }
    location = /status { default_type application/json; alias $WORK/www/status.json; }
  }
}
CONF
  in_ns "$VIC" nginx -c "$WORK/nginx.conf"
  in_ns "$VIC" "$PY" "$HERE/webapp.py" 127.0.0.1 8081 >"$WORK/logs/webapp.log" 2>&1 &

  # --- ssh: password and key logins, git over ssh, rsync backup
  ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh_host_ed25519_key" -C corpus-host
  ssh-keygen -q -t ed25519 -N '' -f "$WORK/admin_key" -C admin@corpus
  for u in admin git backupsvc alice; do cp "$WORK/admin_key.pub" "$WORK/keys/$u"; done
  chmod 644 "$WORK"/keys/*
  cat >"$WORK/sshd_config" <<CONF
ListenAddress $VIC_IP
HostKey $WORK/ssh_host_ed25519_key
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/keys/%u
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 64:30:128
MaxAuthTries 6
LogLevel INFO
Subsystem sftp internal-sftp
CONF
  in_ns "$VIC" /usr/sbin/sshd -f "$WORK/sshd_config" -E "$WORK/logs/sshd.log"
  mkdir -p "$WORK/repos"
  git init -q --bare "$WORK/repos/project.git"
  local tmp; tmp=$(mktemp -d)
  ( cd "$tmp" && git init -q && for i in $(seq 1 30); do head -c 20000 /dev/urandom | base64 >"src$i.txt"; done \
    && git add . && git -c user.name=dev -c user.email=dev@lab.example commit -qm "initial import" \
    && git push -q "$WORK/repos/project.git" HEAD:refs/heads/main )
  rm -rf "$tmp"
  chown -R 2004:2004 "$WORK/repos"
  mkdir -p "$WORK/home/backupsvc/incoming"; chown -R 2005:2005 "$WORK/home/backupsvc"

  # --- ftp
  chmod 755 "$WORK/ftp-empty"
  cat >"$WORK/vsftpd.conf" <<CONF
listen=YES
listen_address=$VIC_IP
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
pam_service_name=vsftpd
secure_chroot_dir=$WORK/ftp-empty
seccomp_sandbox=NO
xferlog_enable=YES
vsftpd_log_file=$WORK/logs/vsftpd.log
max_per_ip=16
max_clients=64
pasv_min_port=30000
pasv_max_port=30100
CONF
  in_ns "$VIC" setsid vsftpd "$WORK/vsftpd.conf" >"$WORK/logs/vsftpd.out" 2>&1 &

  # --- dns: the site's resolver; lab names answered locally, two tunnel zones delegated
  # outside, everything else NXDOMAIN (the lab has no internet).
  {
    echo "server:"
    echo "  local-zone: \"lab.example.\" static"
    echo "  local-data: \"www.lab.example. 300 IN A $VIC_IP\""
    echo "  local-data: \"files.lab.example. 300 IN A $VIC_IP\""
    echo "  local-data: \"git.lab.example. 300 IN A $VIC_IP\""
    for i in 11 12 13 14; do echo "  local-data: \"fs$i.lab.example. 300 IN A 10.66.0.$i\""; done
    echo "  local-zone: \"vendor.example.\" static"
    echo "  local-data: \"updates.vendor.example. 300 IN A $OUTSIDE_SRV\""
    echo "  local-zone: \"cdn-provider.example.\" static"
    # a busy resolver: many legitimate names (long CDN-like ones included) that resolve
    "$PY" - "$OUTSIDE_SRV" "$WORK/names.txt" <<'PYN'
import hashlib, random, sys
srv, out = sys.argv[1], sys.argv[2]
rng = random.Random(2126)
names = []
for i in range(400):
    h = hashlib.sha1(f"obj{i}".encode()).hexdigest()
    names.append(f"e{h[:6]}-{i % 17}.a{h[6:10]}.edge-{rng.choice(['fra','ams','lon','par'])}{i % 9}.cdn-provider.example")
for svc in "www mail portal intranet wiki jira ci docs api auth sso vpn crm erp hr".split():
    for j in range(20):
        names.append(f"{svc}{j}.lab.example")
for n in names:
    print(f'  local-data: "{n}. 300 IN A {srv if "cdn" in n else "10.66.0.10"}"')
rng.shuffle(names)
open(out, "w").write("\n".join(names) + "\n")
PYN
  } >"$WORK/unbound-local.conf"
  cat >"$WORK/unbound.conf" <<CONF
server:
  interface: $VIC_IP
  port: 53
  do-ip6: no
  access-control: 10.66.0.0/16 allow
  access-control: 198.18.0.0/15 allow
  chroot: ""
  username: ""
  directory: "$WORK/unbound"
  pidfile: "$WORK/unbound.pid"
  logfile: "$WORK/logs/unbound.log"
  use-syslog: no
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  qname-minimisation: no
  # no root: the only recursion is into the delegated tunnel zone (root hints point at
  # localhost, which unbound never queries), so no packet goes to a real root server
  root-hints: "$WORK/root.hints"
  prefetch: no
  ratelimit: 0
  local-zone: "." static
  local-zone: "t.evil.test." transparent
  include: "$WORK/unbound-local.conf"
stub-zone:
  name: "t.evil.test"
  stub-addr: $IODINE_NS
remote-control:
  control-enable: no
CONF
  printf '.  3600000 NS  a.root.lab.\na.root.lab.  3600000 A 127.0.0.1\n' >"$WORK/root.hints"
  in_ns "$VIC" setsid unbound -d -c "$WORK/unbound.conf" >"$WORK/logs/unbound.out" 2>&1 &

  # --- smb: one smbd on all five victim addresses; a public share and admin shares
  local s=$WORK/samba
  mkdir -p "$s"/{private,lock,state,cache,run,ncalrpc,public,admin,c,logs}
  chmod 777 "$s/public"
  for i in $(seq 1 20); do head -c $(( 10000 + i * 5000 )) /dev/urandom >"$s/public/report-$i.pdf"; done
  cat >"$s/smb.conf" <<CONF
[global]
  workgroup = CORP
  netbios name = FILESRV
  server role = standalone server
  security = user
  passdb backend = tdbsam:$s/private/passdb.tdb
  private dir = $s/private
  lock directory = $s/lock
  state directory = $s/state
  cache directory = $s/cache
  pid directory = $s/run
  ncalrpc dir = $s/ncalrpc
  log file = $s/logs/log.%m
  log level = 1
  interfaces = ${VIC_IPS[*]}
  bind interfaces only = yes
  disable netbios = yes
  smb ports = 445 139
  server min protocol = NT1
  ntlm auth = yes
  load printers = no
  printcap name = /dev/null
  disable spoolss = yes
  usershare path =
[public]
  path = $s/public
  read only = no
  valid users = alice bob administrator
  force user = root
[ADMIN\$]
  path = $s/admin
  read only = no
  valid users = administrator
  force user = root
[C\$]
  path = $s/c
  read only = no
  valid users = administrator
  force user = root
CONF
  for u in alice bob administrator; do
    printf '%s\n%s\n' "Corp-$u-2126!" "Corp-$u-2126!" | in_ns "$VIC" pdbedit -s "$s/smb.conf" -a -u "$u" -t >/dev/null
  done
  in_ns "$VIC" setsid smbd -s "$s/smb.conf" -F --no-process-group >"$WORK/logs/smbd.out" 2>&1 &

  # --- outside: the vendor's update server / CDN (benign), port 80
  in_ns "$CLI" "$PY" "$HERE/traffic.py" server --bind "$OUTSIDE_SRV" --port 80 >"$WORK/logs/outside.log" 2>&1 &

  # --- wordlists (fixed, generated): users, passwords, web paths
  printf '%s\n' root admin alice bob test user oracle postgres ftp www-data guest support deploy \
    >"$WORK/wordlists/users.txt"
  {
    printf '%s\n' 123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon \
      123123 baseball abc123 football monkey letmein 696969 shadow master 666666 qwertyuiop \
      123321 mustang 1234567890 michael 654321 superman 1qaz2wsx 7777777 121212 000000 qazwsx \
      123qwe killer trustno1 jordan jennifer zxcvbnm asdfgh hunter buster soccer harley batman \
      andrew tigger sunshine iloveyou 2000 charlie robert thomas hockey ranger daniel starwars
    for i in $(seq 1 140); do printf 'Summer%d!\nWinter%d\nCompany%d\n' $((2000 + i)) "$i" "$i"; done
  } >"$WORK/wordlists/passwords.txt"
  {
    printf '%s\n' admin login wp-admin backup backups old test dev api v1 v2 config .git .env \
      server-status phpmyadmin uploads images js css secret private tmp cgi-bin app shop search \
      item status robots.txt sitemap.xml index.php index.html readme.txt
    for i in $(seq 1 460); do printf 'dir%03d\nfile%03d.bak\n' "$i" "$i"; done
  } >"$WORK/wordlists/web.txt"
  # big files: the legitimate download and the backup
  head -c $(( BIGFILE_MB * 1048576 )) /dev/zero | openssl enc -aes-128-ctr -pass pass:corpus -nosalt -pbkdf2 \
    >"$WORK/www/files/release.iso" 2>/dev/null
  cp "$WORK/www/files/release.iso" "$WORK/backup.tar"

  # --- wait for every service to answer
  local ok=0 port
  for i in $(seq 1 50); do
    ok=1
    for port in 80 22 21 445; do
      in_ns "$LAN" timeout 1 bash -c "exec 3<>/dev/tcp/$VIC_IP/$port" 2>/dev/null || ok=0
    done
    in_ns "$LAN" timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/1" 2>/dev/null || true
    [ $ok = 1 ] && in_ns "$LAN" dig +short +time=1 +tries=1 "@$VIC_IP" www.lab.example | grep -q . || ok=0
    [ $ok = 1 ] && break
    sleep 0.2
  done
  [ $ok = 1 ] || die "services did not come up (logs in $WORK/logs; rerun with --keep)"
}

# ---------------------------------------------------------------------------- the runner
ROWS=0 FAILED=() UNLABELLED=() SCEN_N=0 SCEN_DONE=0
SCAN_ONLY=0

# cap_start NAME SNAPLEN / cap_stop: tcpdump on the gateway's inside interfaces.
cap_start() {
  CAP=$WORK/cap
  rm -f "$CAP".*
  ip netns exec "$GW" tcpdump -i int0 -n -s "$2" -B 65536 -U -Z root -w "$CAP.int0.pcap" ip 2>"$CAP.int0.err" &
  CAP_PIDS=($!)
  ip netns exec "$GW" tcpdump -i int1 -n -s "$2" -B 65536 -U -Z root -w "$CAP.int1.pcap" "ip and not net 10.66.0.0/24" 2>"$CAP.int1.err" &
  CAP_PIDS+=($!)
  local i
  for i in $(seq 1 100); do
    grep -q listening "$CAP.int0.err" 2>/dev/null && grep -q listening "$CAP.int1.err" 2>/dev/null && return 0
    sleep 0.05
  done
  die "tcpdump did not start: $(cat "$CAP".*.err)"
}
cap_stop() { # DEST
  sleep 0.3
  kill -TERM "${CAP_PIDS[@]}" 2>/dev/null || true
  wait "${CAP_PIDS[@]}" 2>/dev/null || true
  mkdir -p "$(dirname "$1")"
  mergecap -F pcap -w "$1" "$CAP.int0.pcap" "$CAP.int1.pcap"
  CAP_DROPS=$(awk '/dropped by kernel/ { s += $1 } END { print s + 0 }' "$CAP".*.err)
}

# scenario NAME CLASS SPLIT TOOL PARAMS ATTACKERS VICTIMS FUNC [ARGS...]
# ATTACKERS: comma-separated addresses (or CIDRs) whose traffic in the window is the attack
# ("-" for benign rows, whose hosts are in VICTIMS). FUNC runs the traffic; exit 0 = labelled,
# 3 = the tool produced no usable traffic (recorded in MANIFEST, not labelled), else failed.
scenario() {
  local name=$1 class=$2 split=$3 tool=$4 params=$5 att=$6 vic=$7 fn=$8; shift 8
  if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" $class "* ]]; then return 0; fi
  if [ -n "${MLD_CORPUS_MATCH:-}" ] && ! [[ $name =~ $MLD_CORPUS_MATCH ]]; then return 0; fi
  if [ "$SCAN_ONLY" = 1 ]; then SCEN_N=$((SCEN_N + 1)); return 0; fi
  SCEN_DONE=$((SCEN_DONE + 1))
  local rel="pcap/$class/$name.pcap" t_start t_end rc t1
  log "($SCEN_DONE/$SCEN_N) $class/$name: $tool $params"
  SNAPLEN=${SNAPLEN:-0}
  cap_start "$name" "$SNAPLEN"
  SCEN_LOG=$WORK/logs/scenario-$name.log
  : >"$WORK/scenario.pids"
  t1=$(date +%s.%N)
  t_start=$(now)
  set +e
  ( "$fn" "$@" ) >"$SCEN_LOG" 2>&1
  rc=$?
  set -e
  stop_bg
  sleep "${DRAIN:-1.5}"      # the last answers, FINs and retransmissions of the scenario
  t_end=$(now)
  cap_stop "$OUT/$rel"
  local secs pkts
  secs=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  pkts=$(tcpdump -r "$OUT/$rel" -n 2>/dev/null | wc -l)
  local status=ok
  if [ $rc -eq 0 ] && [ "$pkts" -gt 0 ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rel" "$class" "$tool" "$params" "$att" "$vic" \
      "$t_start" "$t_end" "$split" >>"$OUT/LABELS.tsv"
    ROWS=$((ROWS + 1))
  elif [ $rc -eq 3 ]; then
    status=unlabelled; UNLABELLED+=("$class/$name")
    rm -f "$OUT/$rel"
  else
    status=failed; FAILED+=("$class/$name (exit $rc, log: $SCEN_LOG)")
    mv -f "$OUT/$rel" "$WORK/logs/failed-$name.pcap"     # for a look (kept with --keep)
  fi
  log "    $status in ${secs}s: $pkts packets, $CAP_DROPS dropped by tcpdump$( [ $status = ok ] || printf ' -- %s' "$(tail -3 "$SCEN_LOG" | tr '\n' ' ' | cut -c1-300)")"
  "$PY" -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
    name "$name" class "$class" split "$split" tool "$tool" params "$params" status "$status" \
    exit "$rc" seconds "$secs" packets "$pkts" tcpdump_dropped "$CAP_DROPS" \
    note "$( [ $status = ok ] && cat "$WORK/note" 2>/dev/null || tail -5 "$SCEN_LOG" | tr '\n' ' ' | cut -c1-500)" \
    >>"$WORK/scenarios.jsonl"
  rm -f "$WORK/note"
}

# bg NS CMD...: a background process for the current scenario (stopped when it ends).
bg() { local ns=$1; shift; ip netns exec "$ns" setsid "$@" >>"$SCEN_LOG.bg" 2>&1 & BG_PID=$!; echo $! >>"$WORK/scenario.pids"; }
stop_bg() {
  local pid
  for pid in $(cat "$WORK/scenario.pids" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $(cat "$WORK/scenario.pids" 2>/dev/null); do
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  : >"$WORK/scenario.pids"
}
# run SECS NS CMD...: a tool bounded in time; running into the bound is not a failure.
run() {
  local secs=$1 ns=$2; shift 2
  local rc=0
  timeout -k 5 "$secs" ip netns exec "$ns" "$@" || rc=$?
  [ $rc -eq 124 ] && { echo "(stopped at the ${secs}s bound)"; return 0; }
  return $rc
}
note() { printf '%s' "$*" >"$WORK/note"; }
wait_port() { # NS ADDR PORT
  local i
  for i in $(seq 1 50); do
    ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on $2:$3"; return 1
}

# shellcheck source=scenarios.sh
. "$HERE/scenarios.sh"

# ------------------------------------------------------------------------------- main
BIGFILE_MB=200
[ "$MODE" = smoke ] && BIGFILE_MB=20
SCAN_ONLY=1; "plan_$MODE"; SCAN_ONLY=0
[ "$SCEN_N" -gt 0 ] || die "no scenario selected"
case $OUT in "$ROOT"|"$ROOT"/*) git -C "$ROOT" check-ignore -q "$OUT" || die "$OUT is inside the checkout and not ignored" ;; esac
mkdir -p "$OUT"
rm -rf "$WORK"
mkdir -p "$WORK"
HEADER=$(printf 'path\tclass\ttool\tparams\tattacker_hosts\tvictim_hosts\tstart\tend\tsplit')
PREVIOUS=()
if [ ${#ONLY[@]} -gt 0 ] && [ "$(head -1 "$OUT/LABELS.tsv" 2>/dev/null)" = "$HEADER" ] &&
   [ "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["mode"])' "$OUT/MANIFEST.json" 2>/dev/null)" = "$MODE" ]; then
  # --only on an existing corpus of the same mode: replace those classes, keep the others
  mv "$OUT/MANIFEST.json" "$WORK/previous-manifest.json"
  PREVIOUS=(--previous "$WORK/previous-manifest.json" --classes "$(IFS=,; echo "${ONLY[*]}")")
  awk -F'\t' -v only=" ${ONLY[*]} " 'NR == 1 || index(only, " " $2 " ") == 0' "$OUT/LABELS.tsv" >"$WORK/labels.kept"
  mv "$WORK/labels.kept" "$OUT/LABELS.tsv"
  for c in "${ONLY[@]}"; do rm -rf "${OUT:?}/pcap/$c"; done
  log "keeping the other classes' $(( $(wc -l <"$OUT/LABELS.tsv") - 1 )) rows of $OUT"
else
  rm -rf "$OUT/pcap" "$OUT/LABELS.tsv" "$OUT/MANIFEST.json"
  echo "$HEADER" >"$OUT/LABELS.tsv"
fi
mkdir -p "$OUT/pcap"
log "corpus ($MODE, $SCEN_N scenarios) into $OUT"
make_topology
start_services
log "namespaces and services up"
"plan_$MODE"

"$PY" "$HERE/manifest.py" --out "$OUT" --mode "$MODE" --seed "$SEED" --root "$ROOT" \
  --scenarios "$WORK/scenarios.jsonl" --elapsed "$(( $(date +%s) - T0 ))" "${PREVIOUS[@]}" || FAILED+=("manifest")
log "done in $(( $(date +%s) - T0 ))s: $ROWS labelled scenarios in $OUT/LABELS.tsv"
[ ${#UNLABELLED[@]} -eq 0 ] || log "not labelled (the tool produced no usable traffic): ${UNLABELLED[*]}"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "FAILED: ${#FAILED[@]} scenario(s):"
  printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
