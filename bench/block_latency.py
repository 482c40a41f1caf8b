#!/usr/bin/env python3
"""Block latency in the lab: from an attack's packets to the nft element being in the kernel.

Run by bench/block-latency.sh once the lab is up (it sets the namespace names). Each run uses
a fresh attacker address (203.0.113.100 upwards) that sends one SYN to each of PORTS distinct
server ports as fast as it can (a port scan). The sniffer's scan.ports rule fires at 50
distinct ports (score 0.6) and its score reaches the agent's block threshold 0.8 at 75; the
flows of that scan are closed by the server's RSTs, scored by ml-detector and the source is
blocked by firewall-agent. `nft monitor` in the gateway reports the element; the time it is
read is compared with the times the sender took just before each SYN, on the same clock
(CLOCK_REALTIME, shared by all namespaces).

Reported per run: from the first SYN, from the SYN that makes the scan reach the block
threshold (the 75th distinct port), and from the last SYN.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

SENDER = r"""
import json, socket, sys, time
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
socks, times = [], []
for port in range(1, n + 1):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((src, 0))
    times.append(time.time_ns())
    try:
        s.connect((dst, 1000 + port))
    except BlockingIOError:
        pass
    socks.append(s)
print(json.dumps(times))
time.sleep(0.5)
"""


def main():
    gw, attacker = os.environ["LAB_GW"], os.environ["LAB_ATTACKER"]
    server = os.environ.get("LAB_SERVER_IP", "10.88.0.10")
    runs = int(os.environ.get("RUNS", "99"))
    if not 1 <= runs <= 99:
        sys.exit(f"RUNS={runs}: the attacker namespace has 100 addresses, one for the warm-up")
    ports = int(os.environ.get("PORTS", "100"))
    crossing = int(os.environ.get("CROSSING", "75"))

    seen = {}
    cond = threading.Condition()
    monitor = subprocess.Popen(
        ["ip", "netns", "exec", gw, "nft", "monitor", "new", "elements"],
        stdout=subprocess.PIPE, text=True, bufsize=1)

    def read():
        for line in monitor.stdout:
            now = time.time_ns()
            if "block4" not in line:
                continue
            with cond:
                for addr in re.findall(r"\d+\.\d+\.\d+\.\d+", line):
                    seen.setdefault(addr, now)
                cond.notify_all()

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.5)

    rows, missed = [], []
    # Run 0 warms up the pipeline (first flows, first nft transaction) and is not counted.
    for i in range(runs + 1):
        src = f"203.0.113.{100 + i}"
        out = subprocess.run(
            ["ip", "netns", "exec", attacker, sys.executable, "-c", SENDER, src, server, str(ports)],
            capture_output=True, text=True, check=True)
        times = json.loads(out.stdout)
        with cond:
            cond.wait_for(lambda: src in seen, timeout=5)
            at = seen.get(src)
        if at is None:
            missed.append(src)
            continue
        if i == 0:
            print(f"  warm-up: {src} blocked {(at - times[crossing - 1]) / 1e6:.1f} ms after the "
                  f"threshold-crossing SYN (not counted)", file=sys.stderr)
            continue
        rows.append(((at - times[0]) / 1e6, (at - times[crossing - 1]) / 1e6,
                     (at - times[-1]) / 1e6, (times[-1] - times[0]) / 1e6))
        print(f"  run {i:3}/{runs}: {src} blocked {rows[-1][1]:6.1f} ms after the "
              f"threshold-crossing SYN", file=sys.stderr)
        time.sleep(0.2)
    monitor.terminate()

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]

    print()
    print(f"Block latency: {len(rows)} runs of a {ports}-port SYN scan, each from a new source "
          f"({len(missed)} not blocked within 5 s{': ' + ' '.join(missed) if missed else ''})")
    print()
    print(f"| from | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |")
    print(f"|---|---:|---:|---:|---:|")
    names = ["first SYN of the scan", f"SYN #{crossing} (the scan reaches the block score 0.8)",
             "last SYN of the scan"]
    for k, name in enumerate(names):
        xs = [r[k] for r in rows]
        print(f"| {name} | {pct(xs, 50):.1f} | {pct(xs, 90):.1f} | {pct(xs, 99):.1f} | "
              f"{max(xs):.1f} |")
    burst = [r[3] for r in rows]
    print()
    print(f"The scan itself took {statistics.median(burst):.1f} ms (median) to send.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
