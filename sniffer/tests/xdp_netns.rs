//! The real XDP program on veth pairs inside network namespaces this test creates: a client
//! namespace, a gateway namespace running the sniffer in gateway mode (LAN and WAN
//! interfaces), and a server namespace. Real traffic crosses the gateway (ping, UDP, TCP
//! connections, a `tcpreplay` burst of a shared capture); the flows and counters the sniffer
//! reports must match what was sent, and every frame must be accounted for in the XDP
//! counters.
//!
//! Needs root (namespaces, XDP). Run as another user it fails, unless
//! `MLD_SKIP_PRIVILEGED=1` says to skip it on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::unused_self,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    reason = "test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use mld_test_utils::sh;

fn privileged() -> bool {
    mld_test_utils::privileged("network namespaces, XDP")
}

struct Lab {
    client: String,
    gw: String,
    server: String,
}

impl Lab {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}x{n}", std::process::id());
        let lab = Self {
            client: format!("mldc{id}"),
            gw: format!("mldg{id}"),
            server: format!("mlds{id}"),
        };
        for ns in [&lab.client, &lab.gw, &lab.server] {
            sh(&["ip", "netns", "add", ns]);
            // No IPv6: a fresh interface's router solicitations, MLD reports and duplicate
            // address detection would land in the counts at unpredictable times.
            for conf in ["all", "default"] {
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{conf}.disable_ipv6=1"),
                ]);
            }
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        for (a, a_if, b, b_if, net) in [
            (&lab.client, "eth0", &lab.gw, "lan0", "10.77.1"),
            (&lab.server, "eth0", &lab.gw, "wan0", "10.77.2"),
        ] {
            sh(&[
                "ip", "link", "add", "tmpa", "netns", a, "type", "veth", "peer", "name", "tmpb",
                "netns", b,
            ]);
            sh(&["ip", "-n", a, "link", "set", "tmpa", "name", a_if]);
            sh(&["ip", "-n", b, "link", "set", "tmpb", "name", b_if]);
            sh(&["ip", "-n", a, "addr", "add", &format!("{net}.2/24"), "dev", a_if]);
            sh(&["ip", "-n", b, "addr", "add", &format!("{net}.1/24"), "dev", b_if]);
            sh(&["ip", "-n", a, "link", "set", a_if, "up"]);
            sh(&["ip", "-n", b, "link", "set", b_if, "up"]);
            sh(&["ip", "-n", a, "route", "add", "default", "via", &format!("{net}.1")]);
        }
        sh(&["ip", "netns", "exec", &lab.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.gw, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn scrape(lab: &Lab, port: u16) -> String {
    let out = lab
        .exec(&lab.gw, &["curl", "-sf", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn shared(file: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../shared/data/pcap")
        .join(file)
}

/// The sniffer process; killed if the test fails before stopping it, so that no capture
/// outlives its test.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sniffer(lab: &Lab, dir: &Path, port: u16, mode: &str) -> Running {
    let config = dir.join("sniffer.json");
    let interfaces = r#"[ { "name": "lan0", "role": "lan" }, { "name": "wan0", "role": "wan" } ]"#;
    std::fs::write(
        &config,
        format!(
            r#"{{ "sensor_id": "netns-test",
                "interfaces": {interfaces},
                "capture": "{mode}",
                "metrics": {{ "listen": "127.0.0.1:{port}" }} }}"#
        ),
    )
    .unwrap();
    let child = Running(
        lab.exec(
            &lab.gw,
            &[env!("CARGO_BIN_EXE_sniffer"), "--log-format", "json", "run", "--config"],
        )
        .arg(&config)
        .args(["--no-publish", "--jsonl"])
        .arg(dir.join("flows.jsonl"))
        .stderr(std::fs::File::create(dir.join("sniffer.log")).unwrap())
        .spawn()
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = if mode == "af_packet" {
        "mld_sniffer_afpacket_frames{"
    } else {
        "mld_sniffer_xdp_packets{"
    };
    while !scrape(lab, port).contains(ready) {
        assert!(
            Instant::now() < deadline,
            "sniffer did not come up: {}",
            std::fs::read_to_string(dir.join("sniffer.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn stop(mut running: Running, log: &Path) {
    let child = &mut running.0;
    sh(&["kill", "-INT", &child.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sniffer did not stop within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "sniffer exited with {status}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn flows(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("flows.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| !v["snapshot"].as_bool().unwrap())
        .collect()
}

fn find<'a>(
    flows: &'a [Value],
    src: &str,
    dst: &str,
    proto: u64,
    dport: Option<u64>,
) -> Vec<&'a Value> {
    flows
        .iter()
        .filter(|f| f["src_ip"] == src && f["dst_ip"] == dst && f["proto"] == proto)
        .filter(|f| dport.is_none_or(|p| f["dst_port"] == p))
        .collect()
}

const SERVER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.settimeout(20); s.bind(("10.77.2.2", 8080)); s.listen(16); print("ready", flush=True)
for _ in range(int(sys.argv[1])):
    c, _ = s.accept(); got = 0
    while got < 1000:
        got += len(c.recv(4096))
    c.sendall(b"y" * 2000); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
"#;

const CLIENT: &str = r#"
import socket, sys, time
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("10.77.2.2", 8080)); c.sendall(b"x" * 1000); got = 0
    while True:
        b = c.recv(4096)
        if not b: break
        got += len(b)
    assert got == 2000, got
    c.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(10):
    u.sendto(b"z" * 100, ("10.77.2.2", 9999)); time.sleep(0.01)
"#;

#[test]
fn xdp_gateway_sees_real_traffic_and_accounts_for_every_frame() {
    if !privileged() {
        return;
    }
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let port = 19_190 + u16::try_from(std::process::id() % 500).unwrap();
    let sniffer = start_sniffer(&lab, dir.path(), port, "xdp_native");

    // ping: 5 echo requests and 5 replies through the gateway.
    let ping = lab
        .exec(&lab.client, &["ping", "-c", "5", "-i", "0.2", "-W", "1", "10.77.2.2"])
        .output()
        .unwrap();
    assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));

    // 3 TCP connections (1000 bytes up, 2000 down, FIN both ways) and 10 UDP datagrams.
    exchange(&lab, &lab.server, SERVER, &lab.client, CLIENT, "3");

    // A tcpreplay burst of a shared capture into the LAN side (the gateway sees it on lan0
    // ingress; it has foreign addresses, so nothing answers).
    let pcap = shared("scan/ndpi-synscan.pcap");
    // The counters are published every 100 ms: let the traffic above land in them first, or
    // its last frames (TCP closes, the UDP datagrams) are counted as part of the replay.
    std::thread::sleep(Duration::from_millis(400));
    let before = scrape(&lab, port);
    let replay = |pcap: &Path| {
        let out = lab
            .exec(&lab.client, &["tcpreplay", "-q", "--topspeed", "-i", "eth0"])
            .arg(pcap)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    replay(&pcap);
    // A SQL injection request to port 80 (one of the default web ports): XDP copies the head
    // of its payload, so the web-attack rule sees the request line.
    replay(&shared("webattack/ndpi-sql_injection.pcap"));
    std::thread::sleep(Duration::from_millis(500));
    let after = scrape(&lab, port);
    let lan_recorded =
        |t: &str| metric(t, "mld_sniffer_xdp_packets{iface=\"lan0\",outcome=\"recorded\"}");
    // 2011 frames, all IPv4 (checked against tcpdump in crates/flow's tests); the sniffer may
    // see a few more (neighbour discovery) but never fewer.
    let replayed = lan_recorded(&after) - lan_recorded(&before);
    assert!(
        (2011 + 5..2011 + 5 + 20).contains(&replayed),
        "recorded {replayed} of 2011 + 5 replayed frames"
    );

    // Every frame the program saw is in exactly one outcome; the ring never filled.
    for iface in ["lan0", "wan0"] {
        let get = |o: &str| {
            metric(&after, &format!("mld_sniffer_xdp_packets{{iface=\"{iface}\",outcome=\"{o}\"}}"))
        };
        assert_eq!(get("ring_full"), 0, "{iface}");
        assert_eq!(get("truncated") + get("malformed") + get("unsupported"), 0, "{iface}");
        eprintln!(
            "{iface}: recorded {} not_ip {} bytes {}",
            get("recorded"),
            get("not_ip"),
            get("bytes")
        );
    }
    let recorded = metric(&after, "mld_sniffer_xdp_packets{iface=\"lan0\",outcome=\"recorded\"}")
        + metric(&after, "mld_sniffer_xdp_packets{iface=\"wan0\",outcome=\"recorded\"}");
    stop(sniffer, &dir.path().join("sniffer.log"));
    let done = std::fs::read_to_string(dir.path().join("sniffer.log")).unwrap();
    let flows = flows(dir.path());
    let in_flows: u64 = flows
        .iter()
        .map(|f| {
            f["features"]["total_fwd_packets"].as_u64().unwrap()
                + f["features"]["total_bwd_packets"].as_u64().unwrap()
        })
        .sum();
    // Records that reached userspace after the last scrape are in the flows too.
    assert!(in_flows >= recorded, "flows hold {in_flows} packets, XDP recorded {recorded}\n{done}");

    // ping: one ICMP flow per address pair, initiated by the client, seen on the LAN side:
    // 5 echo requests; 5 replies plus the server's port-unreachable answers to the UDP
    // datagrams (ICMP has no ports, so they share the flow; the kernel rate-limits them).
    let icmp = find(&flows, "10.77.1.2", "10.77.2.2", 1, None);
    assert_eq!(icmp.len(), 1, "{icmp:?}");
    let f = &icmp[0]["features"];
    assert_eq!(f["total_fwd_packets"], 5);
    assert!((5..=15).contains(&f["total_bwd_packets"].as_u64().unwrap()), "{f}");
    assert_eq!(icmp[0]["interface"], "lan0");
    assert_eq!(icmp[0]["capture_mode"], "CAPTURE_MODE_XDP_NATIVE");

    // TCP: three connections, 1000 payload bytes up and 2000 down each, closed by FIN.
    let tcp = find(&flows, "10.77.1.2", "10.77.2.2", 6, Some(8080));
    assert_eq!(tcp.len(), 3, "{tcp:?}");
    for t in &tcp {
        let f = &t["features"];
        assert_eq!(f["total_fwd_bytes"], 1000, "{t}");
        assert_eq!(f["total_bwd_bytes"], 2000, "{t}");
        assert_eq!(f["syn_flag_count"], 2, "SYN and SYN-ACK: {t}");
        assert!(f["fin_flag_count"].as_u64().unwrap() >= 2, "{t}");
        assert_eq!(f["init_win_bytes_fwd"].as_i64().map(|w| w > 0), Some(true));
        assert!(t["end_ns"].as_u64() >= t["start_ns"].as_u64());
        let start_s = t["start_ns"].as_u64().unwrap() / 1_000_000_000;
        let now_s =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(now_s.abs_diff(start_s) < 120, "wall-clock timestamps: {start_s} vs now {now_s}");
    }

    // UDP: one flow, 10 datagrams of 100 bytes, nothing back.
    let udp = find(&flows, "10.77.1.2", "10.77.2.2", 17, Some(9999));
    assert_eq!(udp.len(), 1, "{udp:?}");
    assert_eq!(udp[0]["features"]["total_fwd_packets"], 10);
    assert_eq!(udp[0]["features"]["total_fwd_bytes"], 1000);

    // The replayed SYN scan is flagged for its scanner.
    let scanner = flows.iter().filter(|f| f["src_ip"] == "172.16.0.8").count();
    assert!(scanner > 1900, "{scanner} flows from the replayed scanner");
    assert!(done.contains("scan.ports"), "the fast detector flagged the replayed scan:\n{done}");
    // The replayed SQL injection is flagged for its sender, from the payload head XDP copied.
    let sqli_flows = find(&flows, "192.168.3.109", "192.168.3.107", 6, Some(80));
    assert_eq!(sqli_flows.len(), 1, "{sqli_flows:?}");
    let rules = &sqli_flows[0]["fast"]["rule_ids"];
    assert_eq!(rules, &serde_json::json!(["web.attack"]), "{}", sqli_flows[0]);
    assert!(done.contains("union select"), "the alert names the pattern:\n{done}");
    let _ = std::io::stderr().flush();
}

const REVERSE_LISTENER: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.settimeout(20); s.bind(("10.77.1.2", 7070)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); got = 0
while got < 100:
    got += len(c.recv(4096))
c.sendall(b"r" * 50); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
"#;

const REVERSE_CONNECTOR: &str = r#"
import socket
c = socket.create_connection(("10.77.1.2", 7070)); c.sendall(b"s" * 100); got = 0
while True:
    b = c.recv(4096)
    if not b: break
    got += len(b)
assert got == 50, got
c.close()
"#;

/// Runs `script` in `ns` once it printed "ready", then `peer` in `peer_ns`.
fn exchange(lab: &Lab, ns: &str, script: &str, peer_ns: &str, peer: &str, arg: &str) {
    let mut server =
        lab.exec(ns, &["python3", "-c", script, arg]).stdout(Stdio::piped()).spawn().unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(server.stdout.as_mut().unwrap(), &mut ready).unwrap();
    let client = lab.exec(peer_ns, &["python3", "-c", peer, arg]).output().unwrap();
    assert!(client.status.success(), "{}", String::from_utf8_lossy(&client.stderr));
    assert!(server.wait().unwrap().success());
}

/// The same gateway, both interfaces, in XDP generic mode and with the `AF_PACKET` fallback:
/// ping, UDP and TCP through it, in both directions, become the expected flows, stamped with
/// the mode that captured them. Requests and replies arrive on different interfaces (and,
/// with `AF_PACKET`, in different reader threads), so this checks that records are merged in
/// time order: a reply read first would make the responder the initiator.
#[test]
fn generic_xdp_and_af_packet_capture_the_same_flows() {
    if !privileged() {
        return;
    }
    for (mode, stamped) in
        [("xdp_generic", "CAPTURE_MODE_XDP_GENERIC"), ("af_packet", "CAPTURE_MODE_AF_PACKET")]
    {
        let lab = Lab::new();
        let dir = tempfile::tempdir().unwrap();
        let port = 19_700 + u16::try_from(std::process::id() % 500).unwrap();
        let sniffer = start_sniffer(&lab, dir.path(), port, mode);
        let ping = lab
            .exec(&lab.client, &["ping", "-c", "4", "-i", "0.2", "-W", "1", "10.77.2.2"])
            .output()
            .unwrap();
        assert!(ping.status.success());
        let udp = "import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(7): u.sendto(b'q' * 64, ('10.77.2.2', 5353))";
        assert!(lab.exec(&lab.client, &["python3", "-c", udp]).status().unwrap().success());
        // TCP client -> server (request on lan0) and server -> client (request on wan0).
        exchange(&lab, &lab.server, SERVER, &lab.client, CLIENT, "3");
        exchange(&lab, &lab.client, REVERSE_LISTENER, &lab.server, REVERSE_CONNECTOR, "1");
        std::thread::sleep(Duration::from_millis(300));
        stop(sniffer, &dir.path().join("sniffer.log"));
        let flows = flows(dir.path());
        let icmp = find(&flows, "10.77.1.2", "10.77.2.2", 1, None);
        assert_eq!(icmp.len(), 1, "{mode}: {flows:?}");
        assert_eq!(icmp[0]["features"]["total_fwd_packets"], 4, "{mode}");
        assert_eq!(icmp[0]["capture_mode"], stamped);
        let u = find(&flows, "10.77.1.2", "10.77.2.2", 17, Some(5353));
        assert_eq!(u.len(), 1, "{mode}: {u:?}");
        assert_eq!(u[0]["features"]["total_fwd_bytes"], 7 * 64, "{mode}");
        for (src, dst, dport, n, up, down, iface) in [
            ("10.77.1.2", "10.77.2.2", 8080, 3, 1000, 2000, "lan0"),
            ("10.77.2.2", "10.77.1.2", 7070, 1, 100, 50, "wan0"),
        ] {
            let tcp = find(&flows, src, dst, 6, Some(dport));
            assert_eq!(tcp.len(), n, "{mode} {src} -> {dst}:{dport}: {flows:?}");
            for t in tcp {
                let f = &t["features"];
                assert_eq!(f["total_fwd_bytes"], up, "{mode}: {t}");
                assert_eq!(f["total_bwd_bytes"], down, "{mode}: {t}");
                assert_eq!(f["syn_flag_count"], 2, "{mode}: {t}");
                assert_eq!(t["interface"], iface, "{mode}: {t}");
            }
        }
        let log = std::fs::read_to_string(dir.path().join("sniffer.log")).unwrap();
        assert!(!log.contains("\"level\":\"ERROR\""), "{mode}: {log}");
    }
}
