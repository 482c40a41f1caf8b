#!/usr/bin/env python3
"""Validates a corpus built by scripts/corpus/build.sh.

  check.py DIR [--tolerance SECONDS] [--stats]

Checks: LABELS.tsv has the expected columns and well-formed rows (class, split, times,
addresses); every row's pcap exists, is non-empty and readable; every class has train and
test rows (a smoke corpus, MANIFEST mode "smoke", only warns); per packet: every packet
involving an attacker address (or CIDR) of a row lies inside that row's [start, end] window
(± tolerance), and the row's pcap does hold attack packets; no benign row's pcap has a
packet involving any attacker address inside any attack row's window. --stats prints
packets and flows (bidirectional 5-tuples; ICMP per address pair) per class and split.
Reads pcap with the standard library (classic pcap, Ethernet or Linux cooked). Exit 1 on
any error."""
import argparse
import ipaddress
import json
import os
import struct
import sys
from collections import defaultdict

COLUMNS = ["path", "class", "tool", "params", "attacker_hosts", "victim_hosts", "start", "end", "split"]


def packets(path):
    """Yields (ts, src, dst, proto, sport, dport) for IPv4 packets."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            raise ValueError("no pcap header")
        magic = struct.unpack("<I", hdr[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            raise ValueError(f"not a classic pcap (magic {magic:#x}; pcapng?)")
        nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
        linktype = struct.unpack(endian + "I", hdr[20:24])[0]
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, _ = rec.unpack(h)
            data = f.read(incl)
            ts = sec + frac / (1e9 if nano else 1e6)
            if linktype == 1:
                off, etype = 14, data[12:14]
                if etype == b"\x81\x00":
                    off, etype = 18, data[16:18]
            elif linktype == 113:
                off, etype = 16, data[14:16]
            elif linktype == 101:
                off, etype = 0, b"\x08\x00"
            else:
                raise ValueError(f"link type {linktype} not supported")
            if etype != b"\x08\x00" or len(data) < off + 20:
                continue
            ip = data[off:]
            ihl = (ip[0] & 15) * 4
            proto = ip[9]
            src, dst = ip[12:16], ip[16:20]
            sport = dport = 0
            frag = struct.unpack(">H", ip[6:8])[0] & 0x1FFF
            if proto in (6, 17) and frag == 0 and len(ip) >= ihl + 4:
                sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
            yield ts, src, dst, proto, sport, dport


def parse_hosts(field):
    """'-' -> [], '*' -> [0.0.0.0/0]; else comma list of addresses, CIDRs or a.b.c.d-e ranges."""
    if field == "-":
        return []
    if field == "*":
        return [ipaddress.ip_network("0.0.0.0/0")]
    nets = []
    for part in field.split(","):
        part = part.strip()
        if "-" in part.rsplit(".", 1)[-1]:
            base, rng = part.rsplit(".", 1)
            lo, hi = rng.split("-")
            for i in range(int(lo), int(hi) + 1):
                nets.append(ipaddress.ip_network(f"{base}.{i}/32"))
        else:
            nets.append(ipaddress.ip_network(part, strict=False))
    return nets


class Matcher:
    def __init__(self, nets):
        self.exact = {n.network_address.packed for n in nets if n.prefixlen == 32}
        self.nets = [(int(n.network_address), int(n.netmask)) for n in nets if n.prefixlen < 32]

    def __call__(self, a):
        if a in self.exact:
            return True
        if self.nets:
            v = int.from_bytes(a, "big")
            return any(v & m == n for n, m in self.nets)
        return False

    def __bool__(self):
        return bool(self.exact or self.nets)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--tolerance", type=float, default=1.0)
    ap.add_argument("--stats", action="store_true")
    a = ap.parse_args()
    errors, warnings = [], []
    err = errors.append
    mode = "full"
    try:
        mode = json.load(open(os.path.join(a.dir, "MANIFEST.json"))).get("mode", "full")
    except (OSError, ValueError) as e:
        err(f"MANIFEST.json: {e}")
    try:
        lines = open(os.path.join(a.dir, "LABELS.tsv")).read().splitlines()
    except OSError as e:
        print(f"error: {e}")
        return 1
    if not lines or lines[0].split("\t") != COLUMNS:
        err(f"LABELS.tsv header is not {COLUMNS}")
    rows = []
    for n, line in enumerate(lines[1:], 2):
        f = line.split("\t")
        if len(f) != len(COLUMNS):
            err(f"LABELS.tsv:{n}: {len(f)} columns, expected {len(COLUMNS)}")
            continue
        r = dict(zip(COLUMNS, f))
        where = f"LABELS.tsv:{n} ({r['path']})"
        try:
            r["t0"], r["t1"] = float(r["start"]), float(r["end"])
            if not (1e9 < r["t0"] < r["t1"]):
                err(f"{where}: start/end not increasing epoch seconds")
        except ValueError:
            err(f"{where}: start/end not numbers")
            continue
        if r["split"] not in ("train", "test"):
            err(f"{where}: split {r['split']!r}")
        if not r["path"].startswith(f"pcap/{r['class']}/"):
            err(f"{where}: path not under pcap/{r['class']}/")
        if any(not r[c] for c in COLUMNS):
            err(f"{where}: empty field")
        try:
            r["att"] = Matcher(parse_hosts(r["attacker_hosts"]))
            parse_hosts(r["victim_hosts"])
        except ValueError as e:
            err(f"{where}: hosts: {e}")
            continue
        benign = r["class"] == "benign"
        if benign != (r["attacker_hosts"] == "-"):
            err(f"{where}: benign rows (only) have attacker_hosts '-'")
        p = os.path.join(a.dir, r["path"])
        if not os.path.isfile(p) or os.path.getsize(p) <= 24:
            err(f"{where}: pcap missing or empty")
            continue
        r["file"] = p
        rows.append(r)
    paths = [r["path"] for r in rows]
    if len(set(paths)) != len(paths):
        err("LABELS.tsv: a path appears twice")

    splits = defaultdict(set)
    for r in rows:
        splits[r["class"]].add(r["split"])
    for c, s in sorted(splits.items()):
        if s != {"train", "test"}:
            (warnings if mode == "smoke" else errors).append(f"class {c}: only {sorted(s)} rows")

    attack = [r for r in rows if r["class"] != "benign"]
    all_att = Matcher([n for r in attack for n in parse_hosts(r["attacker_hosts"]) if n.prefixlen > 0])
    windows = [(r["t0"] - a.tolerance, r["t1"] + a.tolerance) for r in attack]
    stats = defaultdict(lambda: [0, set(), 0])  # class/split -> packets, flows, pcaps
    tol = a.tolerance
    for r in rows:
        benign = r["class"] == "benign"
        inside = outside = total = 0
        first_out = None
        flows = set()
        try:
            for ts, src, dst, proto, sp, dp in packets(r["file"]):
                total += 1
                if benign:
                    if all_att and (all_att(src) or all_att(dst)) and any(lo <= ts <= hi for lo, hi in windows):
                        outside += 1
                        first_out = first_out or (ts, src, dst)
                    flows.add((proto,) + tuple(sorted([(src, sp), (dst, dp)])))
                    continue
                if r["att"](src) or r["att"](dst):
                    if r["t0"] - tol <= ts <= r["t1"] + tol:
                        inside += 1
                        flows.add((proto,) + tuple(sorted([(src, sp), (dst, dp)])))
                    else:
                        outside += 1
                        first_out = first_out or (ts, src, dst)
        except (OSError, ValueError, struct.error, IndexError) as e:
            err(f"{r['path']}: unreadable: {e}")
            continue
        ip = lambda b: ".".join(map(str, b))  # noqa: E731
        if benign and outside:
            ts, s, d = first_out
            err(f"{r['path']}: benign capture has {outside} packets of attacker addresses in attack windows (first {ts:.3f} {ip(s)} > {ip(d)})")
        elif not benign:
            if outside:
                ts, s, d = first_out
                err(f"{r['path']}: {outside} packets of the attacker outside [{r['start']}, {r['end']}] (first {ts:.3f} {ip(s)} > {ip(d)})")
            if inside == 0:
                err(f"{r['path']}: no packet of the attacker hosts in the window")
        st = stats[(r["class"], r["split"])]
        st[0] += total if benign else inside
        st[1] |= {(r["path"],) + f for f in flows}
        st[2] += 1
    for w in warnings:
        print(f"warning: {w}")
    for e in errors:
        print(f"error: {e}")
    if a.stats or not errors:
        print(f"{'class':12} {'split':6} {'pcaps':>5} {'packets':>9} {'flows':>8}   (attack rows: attacker packets/flows only)")
        tot = defaultdict(lambda: [0, 0])
        for (c, s), (pk, fl, n) in sorted(stats.items()):
            print(f"{c:12} {s:6} {n:5d} {pk:9d} {len(fl):8d}")
            k = "benign" if c == "benign" else "attack"
            tot[k][0] += pk
            tot[k][1] += len(fl)
        for k, (pk, fl) in sorted(tot.items()):
            print(f"{'total ' + k:19} {pk:9d} {fl:8d}")
        if mode != "smoke" and tot["benign"][1] < tot["attack"][1]:
            print(f"warning: fewer benign flows ({tot['benign'][1]}) than attack flows ({tot['attack'][1]})")
    print(f"{len(rows)} rows, {len(errors)} errors, {len(warnings)} warnings: {'OK' if not errors else 'FAILED'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
