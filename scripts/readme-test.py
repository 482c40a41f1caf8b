#!/usr/bin/env python3
"""The README's commands as a test (`make readme-test`, in `make test`; root).

Every fenced block in the README's "Quick start" and "Operating the daemons" sections is
preceded by a directive that says how it is checked:

    <!-- readme-test: run -->          each command line runs, in order, and must exit 0
    <!-- readme-test: run keep -->     as run; daemons it starts keep running to the end
    <!-- readme-test: transcript -->   `$ command` lines, each followed by its exact output
    <!-- readme-test: usage -->        synopsis lines: every --flag shown is in that --help
    <!-- readme-test: skip REASON -->  not run here, for the reason given (it runs elsewhere)

and, for `run` blocks, optional lines inside the directive about the block's N-th command
line (1-based; comment and blank lines do not count):

    N: exit CODE                       the exit code expected instead of 0
    N: out "TEXT"                      TEXT (a JSON string) appears in its stdout or stderr

A command `<daemon> run --config FILE` without `--pcap` is a daemon: it is started in the
background and must answer `/ready` on its config's `metrics.listen` (or stay up 3 s when it
has none); at the end of its block (or of the run, with `keep`) it gets SIGTERM and must exit
0. A block without a directive fails the test, so a new block cannot slip in unchecked.

The commands run as written, with the shipped configs, in a private mount and network
namespace: `/etc/mldefender`, `/var/lib/mldefender` and `/var/log/mldefender` are bind
mounts of folders under the temporary root (`--root DIR`, default a new temporary folder),
the network has only loopback and one veth pair per interface of config/sniffer.json, and
the working folder holds `config/` (the repository's), `../shared/data` and the example
files the README names (`a.pcap`, `b.pcapng`, `bad.json`). Nothing outside the temporary
root is written, and no traffic leaves the namespace.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared"))
SECTIONS = ("Quick start", "Operating the daemons")
DAEMONS = ("sniffer", "ml-detector", "firewall-agent", "rag-ingester", "etcd-server")
STATE = ("/etc/mldefender", "/var/lib/mldefender", "/var/log/mldefender")
# The example files the README's commands name, as found in the working folder.
EXAMPLES = {
    "a.pcap": os.path.join(SHARED, "data/pcap/scan/ndpi-synscan.pcap"),
    "b.pcapng": os.path.join(SHARED, "data/pcap/scan/ndpi-tcp_scan.pcapng"),
}
# bad.json: the shipped sniffer config with the two errors the README shows.
BAD_JSON_EDITS = {("flow_table", "shards"): 3, ("publish", "bind"): "udp://x"}
TIMEOUT_SECS = 900


class Block:
    def __init__(self, line, kind, args, checks, body):
        self.line, self.kind, self.args, self.checks, self.body = line, kind, args, checks, body


def blocks(readme):
    """The fenced blocks of SECTIONS with their directives; errors for blocks without one."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    out, errors = [], []
    section, i, pending = None, 0, None
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("<!-- readme-test:"):
            start = i
            text = line[len("<!-- readme-test:"):]
            while "-->" not in text:
                i += 1
                text += "\n" + lines[i]
            text = text[: text.index("-->")]
            head, *rest = text.strip().split("\n")
            kind, _, args = head.strip().partition(" ")
            checks = {}
            for r in rest:
                m = re.fullmatch(r"\s*(\d+):\s*(exit|out)\s+(.*?)\s*", r)
                if not m:
                    errors.append(f"README.md:{i + 1}: unreadable check {r.strip()!r}")
                    continue
                checks.setdefault(int(m[1]), []).append((m[2], m[3]))
            pending = (start + 1, kind, args.strip(), checks)
        elif line.startswith("```"):
            body = []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if section not in SECTIONS:
                pass
            elif pending is None:
                errors.append(f"README.md:{i - len(body)}: a block in {section!r} has no readme-test directive")
            else:
                out.append(Block(pending[0], pending[1], pending[2], pending[3], body))
            pending = None
        elif line.strip() and not line.startswith("<!--") and pending is not None and not line.startswith("```"):
            errors.append(f"README.md:{pending[0]}: the directive is not followed by a block")
            pending = None
        i += 1
    return out, errors


def command_lines(body):
    return [l for l in body if l.strip() and not l.lstrip().startswith("#")]


class Runner:
    def __init__(self, bin_dir, work):
        self.bin_dir, self.work = bin_dir, work
        self.env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", NO_COLOR="1")
        self.kept = []
        self.failures = []

    def fail(self, where, what):
        self.failures.append(f"{where}: {what}")
        print(f"  FAILED: {what}", flush=True)

    def daemon_of(self, words):
        """(name, metrics address or None) when `words` starts a daemon."""
        if len(words) < 2 or words[0] not in DAEMONS or "run" not in words or "--pcap" in words:
            return None
        if words[words.index("run") - 1] != words[0]:  # `run` is the program's subcommand
            return None
        listen = None
        if "--config" in words:
            cfg = os.path.join(self.work, words[words.index("--config") + 1])
            try:
                listen = (json.load(open(cfg)).get("metrics") or {}).get("listen")
            except (OSError, ValueError):
                pass
        return words[0], listen

    def start(self, where, line, name, listen):
        log = open(os.path.join(self.work, f"{name}.log"), "ab")
        p = subprocess.Popen(line, shell=True, cwd=self.work, env=self.env, executable="/bin/bash",
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        deadline = time.time() + 60
        settled = time.time() + 3  # without a /ready address: up for 3 s
        while time.time() < deadline:
            if p.poll() is not None:
                self.fail(where, f"{name} exited {p.returncode} at start:\n{self.tail(name)}")
                return None
            if listen is None:
                if time.time() > settled:
                    break
            else:
                try:
                    with urllib.request.urlopen(f"http://{listen}/ready", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
            time.sleep(0.2)
        else:
            self.fail(where, f"{name} not ready on {listen}/ready within 60 s:\n{self.tail(name)}")
            self.stop(where, (name, p))
            return None
        print(f"  ready: {name}" + (f" (/ready on {listen})" if listen else ""), flush=True)
        return (name, p)

    def tail(self, name):
        try:
            return "\n".join(open(os.path.join(self.work, f"{name}.log"), errors="replace").read().splitlines()[-15:])
        except OSError:
            return ""

    def stop(self, where, daemon):
        name, p = daemon
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                self.fail(where, f"{name} did not stop within 30 s of SIGTERM")
                return
        if p.returncode != 0:
            self.fail(where, f"{name} exited {p.returncode} on SIGTERM:\n{self.tail(name)}")
        else:
            print(f"  stopped: {name} (exit 0)", flush=True)

    def run_block(self, b):
        where = f"README.md:{b.line}"
        started = []
        for n, line in enumerate(command_lines(b.body), 1):
            words = shlex.split(line, comments=True)
            print(f"$ {line.strip()}", flush=True)
            d = self.daemon_of(words)
            if d is not None:
                if b.checks.get(n):
                    self.fail(where, f"line {n} starts a daemon; it cannot have checks")
                got = self.start(where, line, *d)
                if got:
                    started.append(got)
                continue
            try:
                r = subprocess.run(line, shell=True, cwd=self.work, env=self.env, executable="/bin/bash",
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_SECS)
                out = (r.stdout + r.stderr).decode(errors="replace")
                code = r.returncode
            except subprocess.TimeoutExpired:
                out, code = "", None
            shown = out if len(out) < 3000 else out[:1500] + "\n  [...]\n" + out[-1500:]
            print("  " + shown.rstrip().replace("\n", "\n  "), flush=True)
            want = 0
            for kind, arg in b.checks.get(n, []):
                if kind == "exit":
                    want = int(arg)
                elif (json.loads(arg) if arg.startswith('"') else arg) not in out:
                    self.fail(where, f"line {n}: output lacks {arg}")
            if code != want:
                self.fail(where, f"line {n}: exit {code}, expected {want}")
            if started:
                time.sleep(2)  # what the daemons of this block do with it (logs flush each second)
        if "keep" in b.args.split():
            self.kept += started
        else:
            for d in reversed(started):
                self.stop(where, d)

    def transcript(self, b):
        where = f"README.md:{b.line}"
        cmd, expected = None, []
        pairs = []
        for line in b.body:
            if line.startswith("$ "):
                if cmd:
                    pairs.append((cmd, expected))
                cmd, expected = line[2:], []
            else:
                expected.append(line)
        if cmd:
            pairs.append((cmd, expected))
        for cmd, expected in pairs:
            print(f"$ {cmd}", flush=True)
            r = subprocess.run(cmd, shell=True, cwd=self.work, env=self.env, executable="/bin/bash",
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_SECS)
            out = (r.stdout + r.stderr).decode(errors="replace").rstrip("\n").split("\n")
            print("  " + "\n  ".join(out), flush=True)
            if [l.rstrip() for l in out] != [l.rstrip() for l in expected]:
                self.fail(where, "the output differs from the README's:\n" + "\n".join(expected))

    def usage(self, b):
        where = f"README.md:{b.line}"
        for line in command_lines(b.body):
            words = line.split("#")[0].split()
            programs = DAEMONS if words[0] == "<daemon>" else (words[0],)
            sub = next((w for w in words[1:] if re.fullmatch(r"[a-z][a-z-]*", w)), None)
            flags = sorted(set(re.findall(r"--[a-z][a-z-]*", line.split("#")[0])))
            for prog in programs:
                r = subprocess.run([prog, sub, "--help"] if sub else [prog, "--help"], env=self.env,
                                   capture_output=True, cwd=self.work)
                helptext = r.stdout.decode()
                missing = [f for f in flags if f not in helptext]
                print(f"{prog} {sub or ''} --help: {', '.join(flags) or 'no flags'}"
                      + (f"; MISSING {missing}" if missing else " documented"), flush=True)
                if r.returncode != 0 or missing:
                    self.fail(where, f"{prog} {sub} --help (exit {r.returncode}) lacks {missing}")


def prepare(root):
    """The private namespace's view: state folders, network, working folder."""
    for path in STATE:
        inner = os.path.join(root, path.lstrip("/"))
        os.makedirs(inner, exist_ok=True)
        subprocess.run(["mount", "--bind", inner, path], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sniffer = json.load(open(os.path.join(REPO, "config/sniffer.json")))
    for i, iface in enumerate(sniffer.get("interfaces", [])):
        peer = f"rt-peer{i}"
        subprocess.run(["ip", "link", "add", iface["name"], "type", "veth", "peer", "name", peer], check=True)
        for dev in (iface["name"], peer):
            subprocess.run(["ip", "link", "set", dev, "up"], check=True)
    work = os.path.join(root, "site")
    os.makedirs(work, exist_ok=True)
    os.symlink(os.path.join(REPO, "config"), os.path.join(work, "config"))
    os.symlink(SHARED, os.path.join(root, "shared"))
    for name, target in EXAMPLES.items():
        os.symlink(target, os.path.join(work, name))
    bad = json.load(open(os.path.join(REPO, "config/sniffer.json")))
    for (section, field), value in BAD_JSON_EDITS.items():
        bad[section][field] = value
    with open(os.path.join(work, "bad.json"), "w") as f:
        json.dump(bad, f, indent=2)
    return work


def inside(args):
    work = prepare(args.root)
    r = Runner(args.bin, work)
    found, errors = blocks(os.path.join(REPO, "README.md"))
    for e in errors:
        r.fail("README.md", e)
    counts, passed, failed = {}, 0, len(r.failures)
    for b in found:
        before = len(r.failures)
        counts[b.kind] = counts.get(b.kind, 0) + 1
        print(f"\n== README.md:{b.line}: {b.kind} {b.args}".rstrip(), flush=True)
        if b.kind in ("run", "transcript", "usage"):
            getattr(r, "run_block" if b.kind == "run" else b.kind)(b)
        elif b.kind == "skip":
            if not b.args:
                r.fail(f"README.md:{b.line}", "skip needs a reason")
            print(f"  not run here: {b.args}", flush=True)
        else:
            r.fail(f"README.md:{b.line}", f"unknown directive {b.kind!r}")
        if b.kind != "skip":
            if len(r.failures) == before:
                passed += 1
            else:
                failed += 1
    before = len(r.failures)
    for d in reversed(r.kept):
        r.stop("end of the README", d)
    print(f"\nreadme-test: {len(found)} blocks ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})")
    for f in r.failures:
        print(f"FAILED {f}")
    failed += len(r.failures) > before
    print(f"readme-test: {passed} passed, {failed} failed")
    return 1 if r.failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--bin", default=None,
                    help="folder of the built binaries (default: $CARGO_TARGET_DIR or target, /debug)")
    ap.add_argument("--root", default=None, help="temporary root for state and the working folder, kept (default: a new temporary folder, removed after unless MLD_README_KEEP=1)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bin is None:
        args.bin = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target"), "debug")
    args.bin = os.path.abspath(args.bin)
    if args.inside:
        sys.exit(inside(args))
    if os.geteuid() != 0:
        sys.exit("readme-test: needs root (a private mount and network namespace)")
    for d in DAEMONS + ("rag",):
        if not os.access(os.path.join(args.bin, d), os.X_OK):
            sys.exit(f"readme-test: {args.bin}/{d} is missing: build first (cargo build --workspace --bins)")
    made_root = args.root is None
    args.root = os.path.abspath(args.root or tempfile.mkdtemp(prefix="mld-readme-"))
    # The mount points must exist on the host; those made here are removed again.
    made = [p for p in STATE if not os.path.exists(p)]
    for p in made:
        os.makedirs(p)
    try:
        code = subprocess.call(["unshare", "--mount", "--net", "--propagation", "private", "--fork",
                                sys.executable, os.path.abspath(__file__), "--inside",
                                "--bin", args.bin, "--root", args.root])
    finally:
        for p in reversed(made):
            try:
                os.rmdir(p)
            except OSError as e:
                print(f"readme-test: left {p}: {e}", file=sys.stderr)
        if made_root and os.environ.get("MLD_README_KEEP") != "1":
            shutil.rmtree(args.root, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
