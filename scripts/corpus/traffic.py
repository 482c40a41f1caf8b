#!/usr/bin/env python3
"""Traffic generators for the labelled corpus (python3 stdlib only). Every mode is bounded
(count or duration) and seeded, so a run repeats the same requests at the same offsets.

  server  --bind IP --port P [--cert C --key K]
          HTTP(S) server: GET /b/<id> answers a beacon (small task list, every 7th a ~40 KB
          "module"), POST /r/<id> and POST /upload take a body and discard it, anything else
          a small page. The C2 server, the exfiltration sink and the outside update server.
  beacon  --url URL --interval S --jitter F --duration D --seed N [--tls]
          C2 implant: one new connection per check-in, interval*(1±jitter); every 4th
          check-in posts a small result.
  upload  --url URL --bytes N [--rate BPS] [--seed N]
          POST of N pseudo-random bytes, at most BPS bytes/s (slow exfiltration).
  browse  --base URL --pages N --count C --rate R [--seed N] [--src IP ...]
          C requests of pages under URL (one connection each), R per second, from the
          given source addresses in turn (benign users; many flows).
  dns     --server IP --names FILE|--dga KIND --count C --rate R [--seed N] [--src IP ...]
          C queries (A), R per second, one socket (source port) per query: names from the
          file in turn (a busy resolver), or generated (DGA: KIND 'hex' = md5-of-date style
          labels under .com/.net/.org/.info, 'words' = dictionary-pair names).
"""
import argparse
import hashlib
import http.client
import http.server
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse


def now():
    return time.monotonic()


# ------------------------------------------------------------------------------------- server
class C2Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    beacons = 0
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/b/"):
            with C2Handler.lock:
                C2Handler.beacons += 1
                n = C2Handler.beacons
            if n % 7 == 0:
                body = random.Random(n).randbytes(40_000)
                self.reply(200, body, "application/octet-stream")
            else:
                self.reply(200, b'{"tasks":[],"sleep":%d}' % (n % 5))
        else:
            body = b'{"version":"2.4.1","url":"/pkg/agent-2.4.1.deb","sha256":"' + hashlib.sha256(self.path.encode()).hexdigest().encode() + b'"}'
            self.reply(200, body)

    do_HEAD = do_GET

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        left = n
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
        self.reply(200, b'{"ok":true,"received":%d}' % (n - left))


def cmd_server(a):
    srv = http.server.ThreadingHTTPServer((a.bind, a.port), C2Handler)
    srv.daemon_threads = True
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


# ---------------------------------------------------------------------------- http clients
def connect(url, timeout=10, src=None):
    u = urllib.parse.urlsplit(url)
    src_addr = (src, 0) if src else None
    if u.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout, context=ctx, source_address=src_addr)
    else:
        c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout, source_address=src_addr)
    return c, u


def request(url, method="GET", body=None, headers=None, src=None):
    c, u = connect(url, src=src)
    try:
        c.request(method, u.path + (("?" + u.query) if u.query else ""), body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, len(data)
    finally:
        c.close()


def cmd_beacon(a):
    rng = random.Random(a.seed)
    bot = "%08x" % rng.getrandbits(32)
    t0 = now()
    n = ok = 0
    ua = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36", "Cookie": "sid=" + bot}
    while now() - t0 < a.duration:
        n += 1
        try:
            if n % 4 == 0:
                request(f"{a.url}/r/{bot}", "POST", rng.randbytes(rng.randint(64, 400)), ua)
            else:
                request(f"{a.url}/b/{bot}", "GET", None, ua)
            ok += 1
        except OSError as e:
            print(f"beacon {n}: {e}", file=sys.stderr)
        sleep = a.interval * (1 + rng.uniform(-a.jitter, a.jitter))
        if now() - t0 + sleep >= a.duration:
            break
        time.sleep(sleep)
    print(f"beacon: {ok}/{n} check-ins")
    return 0 if ok else 1


def cmd_upload(a):
    rng = random.Random(a.seed)
    c, u = connect(a.url, timeout=30)
    c.putrequest("POST", u.path or "/")
    c.putheader("Content-Type", "application/octet-stream")
    c.putheader("Content-Length", str(a.bytes))
    c.endheaders()
    block = rng.randbytes(1 << 16)
    sent, t0 = 0, now()
    while sent < a.bytes:
        k = min(len(block), a.bytes - sent)
        if a.rate:
            k = min(k, max(1, a.rate // 10))
        c.send(block[:k])
        sent += k
        if a.rate:
            ahead = sent / a.rate - (now() - t0)
            if ahead > 0:
                time.sleep(ahead)
    r = c.getresponse()
    r.read()
    c.close()
    print(f"upload: {sent} bytes in {now() - t0:.1f} s, status {r.status}")
    return 0 if r.status == 200 else 1


def paced(count, rate):
    t0 = now()
    for i in range(count):
        due = t0 + i / rate
        d = due - now()
        if d > 0:
            time.sleep(d)
        yield i


def cmd_browse(a):
    rng = random.Random(a.seed)
    srcs = a.src or [None]
    ok = 0
    for i in paced(a.count, a.rate):
        p = rng.randrange(a.pages)
        url = f"{a.base}/page{p:03d}.html" if p else f"{a.base}/"
        try:
            st, _ = request(url, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}, src=srcs[i % len(srcs)])
            ok += st == 200
        except OSError as e:
            print(f"browse {url}: {e}", file=sys.stderr)
    print(f"browse: {ok}/{a.count} pages")
    return 0 if ok >= a.count * 0.9 else 1


# ------------------------------------------------------------------------------------- dns
def dns_query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.strip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


WORDS = ("cloud secure mail portal update micro data sync online net smart home web fast link "
         "shop bank pay auth login service center global media green blue star").split()


def dga_names(kind, rng, count):
    tlds = ["com", "net", "org", "info", "biz"]
    for i in range(count):
        if kind == "hex":
            seed = f"{rng.getrandbits(32)}-{i}".encode()
            label = hashlib.md5(seed).hexdigest()[: rng.randint(12, 24)]
            yield f"{label}.{tlds[i % len(tlds)]}"
        else:
            yield f"{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.randint(0, 99)}.{rng.choice(tlds)}"


def cmd_dns(a):
    rng = random.Random(a.seed)
    if a.names:
        names = [n.strip() for n in open(a.names) if n.strip()]
        gen = (names[i % len(names)] for i in range(a.count))
    else:
        gen = dga_names(a.dga, rng, a.count)
    srcs = a.src or [None]
    rcodes = {}
    for i, name in zip(paced(a.count, a.rate), gen):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if srcs[i % len(srcs)]:
                s.bind((srcs[i % len(srcs)], 0))
            s.settimeout(1.0)
            qid = rng.getrandbits(16)
            s.sendto(dns_query(name, qid), (a.server, 53))
            try:
                resp = s.recv(2048)
                rc = resp[3] & 0x0F
            except socket.timeout:
                rc = "timeout"
            rcodes[rc] = rcodes.get(rc, 0) + 1
        finally:
            s.close()
    names = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
    print("dns: " + ", ".join(f"{names.get(k, k)} {v}" for k, v in sorted(rcodes.items(), key=str)))
    return 0 if sum(v for k, v in rcodes.items() if k != "timeout") >= a.count * 0.9 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--cert")
    s.add_argument("--key")
    s = sub.add_parser("beacon")
    s.add_argument("--url", required=True)
    s.add_argument("--interval", type=float, required=True)
    s.add_argument("--jitter", type=float, default=0.2)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("upload")
    s.add_argument("--url", required=True)
    s.add_argument("--bytes", type=int, required=True)
    s.add_argument("--rate", type=int, default=0)
    s.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("browse")
    s.add_argument("--base", required=True)
    s.add_argument("--pages", type=int, default=100)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--src", nargs="*")
    s = sub.add_parser("dns")
    s.add_argument("--server", required=True)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--names")
    g.add_argument("--dga", choices=["hex", "words"])
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--src", nargs="*")
    a = p.parse_args()
    return {"server": cmd_server, "beacon": cmd_beacon, "upload": cmd_upload,
            "browse": cmd_browse, "dns": cmd_dns}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
