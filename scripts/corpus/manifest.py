#!/usr/bin/env python3
"""Writes MANIFEST.json for a corpus built by build.sh: when, where (kernel, Debian), the
tools' package versions (dpkg-query), the seed, the script's git commit, and per scenario
its outcome (labelled, failed, or unlabelled because the tool produced no usable traffic)."""
import argparse
import datetime
import json
import os
import platform
import subprocess

PACKAGES = [
    "nmap", "masscan", "hping3", "hydra", "medusa", "ncrack", "slowhttptest", "iodine", "dns2tcp",
    "smbclient", "samba", "python3-impacket", "sqlmap", "wfuzz", "unbound", "vsftpd", "tshark",
    "tcpdump", "nginx-light", "openssh-server", "openssh-client", "curl", "wget", "rsync", "git",
    "openssl", "bind9-dnsutils", "iproute2", "ethtool", "wireshark-common", "python3",
]


def sh(*cmd, cwd=None):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--scenarios", required=True)
    p.add_argument("--elapsed", type=int, required=True)
    p.add_argument("--previous", help="MANIFEST.json of the corpus this run updates (--only)")
    p.add_argument("--classes", default="", help="the classes this run rebuilt (with --previous)")
    a = p.parse_args()
    versions = {}
    for pkg in PACKAGES:
        v = sh("dpkg-query", "-W", "-f=${Version}", pkg)
        versions[pkg] = v or None
    scen = []
    if os.path.exists(a.scenarios):
        with open(a.scenarios) as f:
            scen = [json.loads(line) for line in f if line.strip()]
    history = []
    if a.previous:
        prev = json.load(open(a.previous))
        rebuilt = set(a.classes.split(","))
        scen = [s for s in prev.get("scenarios", []) if s.get("class") not in rebuilt] + scen
        history = prev.get("history", []) + [{k: prev.get(k) for k in ("created", "elapsed_seconds", "script_commit")}]
    commit = sh("git", "-C", a.root, "rev-parse", "HEAD") or None
    dirty = bool(sh("git", "-C", a.root, "status", "--porcelain", "--", "scripts/corpus"))
    os_release = {}
    try:
        for line in open("/etc/os-release"):
            k, _, v = line.strip().partition("=")
            os_release[k] = v.strip('"')
    except OSError:
        pass
    m = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": a.mode,
        "seed": a.seed,
        "elapsed_seconds": a.elapsed,
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "script_commit": commit,
        "script_dirty": dirty,
        "tool_versions": versions,
        "capture": "tcpdump on the gateway's int0 (servers) and int1 (lan, minus packets to the servers' "
                   "subnet), merged with mergecap; IPv4 only; snaplen 0 unless the row's params say otherwise",
        "labels": "LABELS.tsv: start/end are UTC epoch seconds; attacker_hosts are addresses or CIDRs whose "
                  "packets in [start, end] are the attack ('*' = every packet of the capture, '-' = benign row)",
        "scenarios": scen,
        "history": history,
        "unlabelled": [s["name"] for s in scen if s.get("status") == "unlabelled"],
        "failed": [s["name"] for s in scen if s.get("status") == "failed"],
    }
    with open(os.path.join(a.out, "MANIFEST.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
