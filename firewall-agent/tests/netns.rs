//! The agent against a real nftables, with real packets: a server namespace running
//! `firewall-agent run` and a client namespace whose addresses the test names in sealed
//! Detections published on a real ZeroMQ socket (`ipc://`, reachable from inside the
//! namespace). Checked: a blocked source can no longer ping the server while the others still
//! can; allowlisted, own, monitor-only sources are skipped and audited; expiry and escalation
//! for a repeat offender; the per-minute cap; `status`; the table removed on exit and rebuilt
//! from the audit log on restart.
//!
//! Needs root (namespaces, nftables); as another user it fails unless `MLD_SKIP_PRIVILEGED=1`.
#![allow(clippy::unwrap_used, clippy::too_many_lines, clippy::print_stderr, reason = "test")]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_bus::{Publisher, PublisherOptions, Subscriber, SubscriberOptions, Topic};
use mld_crypto_transport::{KeyRing, RootSecret};
use mld_proto::{
    Detection, DetectorScores, Direction, Endpoint, FirewallAction, FirewallActionKind, FlowEvent,
    FlowKey, ScoreSource, Verdict,
};
use mld_test_utils::sh;
use serde_json::Value;

struct Lab {
    server: String,
    client: String,
}

impl Lab {
    /// Two namespaces named after the process and `tag` (tests run in parallel).
    fn new(tag: char) -> Self {
        let id = std::process::id();
        let lab = Self { server: format!("mldfw{id}{tag}s"), client: format!("mldfw{id}{tag}c") };
        for ns in [&lab.server, &lab.client] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip",
            "link",
            "add",
            "mldfwa",
            "netns",
            &lab.server,
            "type",
            "veth",
            "peer",
            "name",
            "mldfwb",
            "netns",
            &lab.client,
        ]);
        sh(&["ip", "-n", &lab.server, "addr", "add", "10.77.0.1/24", "dev", "mldfwa"]);
        for a in ["10.77.0.2/24", "10.77.0.3/24", "10.77.0.4/24"] {
            sh(&["ip", "-n", &lab.client, "addr", "add", a, "dev", "mldfwb"]);
        }
        sh(&["ip", "-n", &lab.server, "link", "set", "mldfwa", "up"]);
        sh(&["ip", "-n", &lab.client, "link", "set", "mldfwb", "up"]);
        lab
    }

    /// Whether a ping from `src` (a client address) reaches the server.
    fn reaches(&self, src: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client,
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                "-I",
                src,
                "10.77.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// The addresses in the server's block4 set.
    fn blocked(&self) -> Vec<IpAddr> {
        self.set("block4").iter().filter_map(|e| e.parse().ok()).collect()
    }

    fn has_table(&self) -> bool {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.server, "nft", "list", "tables"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("inet mldefender")
    }

    /// `firewall-agent status --json` in the server namespace, one value per line.
    fn status(&self, config: &Path) -> Vec<Value> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.server, env!("CARGO_BIN_EXE_firewall-agent")])
            .args(["status", "--json", "--config"])
            .arg(config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn agent(&self, config: &Path) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server,
                env!("CARGO_BIN_EXE_firewall-agent"),
                "run",
                "--config",
            ])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A Detection of an SSH session `src` opened to the server, with payload both ways (proof
/// that `src`, an inside address, took part).
fn detection(id: &str, src: [u8; 4], scores: DetectorScores) -> Detection {
    let mut d = forged(id, src, scores);
    if let Some(f) = d.flow.as_mut() {
        f.features = Some(mld_proto::FlowFeatures {
            total_fwd_bytes: 2_100,
            total_bwd_bytes: 2_900,
            ..mld_proto::FlowFeatures::default()
        });
    }
    d
}

/// The same without payload: what SYNs forged with `src` would make.
fn forged(id: &str, src: [u8; 4], scores: DetectorScores) -> Detection {
    let ml = scores.ddos.max(scores.ransomware).max(scores.traffic).max(scores.internal);
    Detection {
        detection_id: id.to_owned(),
        flow: Some(FlowEvent {
            key: Some(FlowKey {
                a: Some(Endpoint { ip: vec![10, 77, 0, 1], port: 22 }),
                b: Some(Endpoint { ip: src.to_vec(), port: 40_000 }),
                ip_proto: 6,
                initiator: Direction::BToA.into(),
            }),
            ..FlowEvent::default()
        }),
        scores: Some(scores),
        ml_score: ml,
        final_score: ml,
        authoritative_source: ScoreSource::Ml.into(),
        verdict: Verdict::Malicious.into(),
        ..Detection::default()
    }
}

fn send(p: &mut Publisher, d: &Detection) {
    assert_eq!(p.publish(d).unwrap(), mld_bus::Publish::Sent);
}

fn ddos() -> DetectorScores {
    DetectorScores { ddos: 0.95, ..DetectorScores::default() }
}

fn audit(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn actions(dir: &Path, addr: &str) -> Vec<String> {
    audit(dir)
        .iter()
        .filter(|r| r["addr"] == addr)
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    mld_test_utils::wait_until(Duration::from_secs(secs), what, &mut f);
}

fn stop(child: &mut Child) -> String {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "firewall-agent: {status}\n{err}");
    err
}

/// The shipped config with the test's sockets (`detections.ipc` in, `control.ipc` out), audit
/// folder, secret and no metrics, changed by `tweak`; returns its path, the two endpoints and
/// the audit folder.
fn write_config(dir: &Path, tweak: impl FnOnce(&mut Value)) -> (PathBuf, String, String, PathBuf) {
    let secret = dir.join("root.secret");
    RootSecret::from_bytes([5; 32]).write_new(&secret).unwrap();
    let endpoint = format!("ipc://{}", dir.join("detections.ipc").display());
    let control = format!("ipc://{}", dir.join("control.ipc").display());
    let audit_dir: PathBuf = dir.join("audit");
    let config = dir.join("firewall-agent.json");
    let text = std::fs::read_to_string(
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
            .join("../config/firewall-agent.json"),
    )
    .unwrap();
    let mut c: Value = serde_json::from_str(&text).unwrap();
    c["subscribe"]["connect"] = serde_json::json!([endpoint]);
    c["publish"]["bind"] = control.clone().into();
    c["on_exit"] = "remove".into();
    c["audit_dir"] = audit_dir.display().to_string().into();
    c["metrics"]["listen"] = Value::Null;
    // The kept config goes to the test's folder, not the shipped /var/lib path.
    c["etcd"]["cache_file"] = dir.join("active-config.json").display().to_string().into();
    c["transport"]["root_secret_file"] = secret.display().to_string().into();
    tweak(&mut c);
    std::fs::write(&config, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    (config, endpoint, control, audit_dir)
}

/// The test's end of the bus: a publisher of Detections on `endpoint` and a subscriber to the
/// agent's `control.v1` at `control`.
fn bus(endpoint: &str, control: String) -> (zmq::Context, Publisher, Subscriber<FirewallAction>) {
    let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([5; 32]), 1));
    let mut registry = mld_telemetry::component_registry("test");
    let ctx = zmq::Context::new();
    let publisher =
        Publisher::bind(&ctx, Arc::clone(&ring), &PublisherOptions::new(endpoint), &mut registry)
            .unwrap();
    let sub = Subscriber::<FirewallAction>::connect(
        &ctx,
        ring,
        &SubscriberOptions::new([control]),
        &mut registry,
    )
    .unwrap();
    (ctx, publisher, sub)
}

/// Waits for the agent to subscribe, then for `control.v1`'s subscriber to join (a moment after
/// the agent binds): probes with a loopback source (skipped, and published as such) until one
/// arrives; drains what the probes caused.
fn probe(publisher: &mut Publisher, actions_sub: &mut Subscriber<FirewallAction>) {
    assert!(
        publisher.wait_for_subscriber(Topic::Detection, Duration::from_secs(20)).unwrap(),
        "the agent never subscribed"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        send(publisher, &detection("probe", [127, 0, 0, 9], ddos()));
        if actions_sub.recv(Duration::from_millis(200)).unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no FirewallAction arrived on control.v1");
    }
    while actions_sub.recv(Duration::from_millis(100)).unwrap().is_some() {}
}

#[test]
fn blocks_with_real_nftables_and_real_packets() {
    if !mld_test_utils::privileged("network namespaces, nftables") {
        return;
    }
    let lab = Lab::new('b');
    let dir = tempfile::tempdir().unwrap();
    let (config, endpoint, control, audit_dir) = write_config(dir.path(), |c| {
        c["block"]["duration_secs"] = 4.into();
        c["block"]["max_duration_secs"] = 20.into();
        c["caps"]["max_new_blocks_per_minute"] = 5.into();
        c["allowlist"] = serde_json::json!(["127.0.0.0/8", "::1/128", "10.77.0.4/32"]);
    });

    let (_ctx, mut publisher, mut actions_sub) = bus(&endpoint, control);
    for src in ["10.77.0.2", "10.77.0.3", "10.77.0.4"] {
        assert!(lab.reaches(src), "{src} cannot reach the server before any block");
    }
    let mut agent = lab.agent(&config);
    assert!(
        publisher.wait_for_subscriber(Topic::Detection, Duration::from_secs(20)).unwrap(),
        "the agent never subscribed"
    );
    assert!(lab.has_table() && lab.blocked().is_empty());
    probe(&mut publisher, &mut actions_sub);

    // A malicious source is blocked within milliseconds; its neighbour is not.
    let t0 = Instant::now();
    send(&mut publisher, &detection("d-2", [10, 77, 0, 2], ddos()));
    wait("10.77.0.2 in block4", 5, || lab.blocked().contains(&"10.77.0.2".parse().unwrap()));
    eprintln!("detection published -> element in the set: {:?}", t0.elapsed());
    assert!(!lab.reaches("10.77.0.2"), "a blocked source still reaches the server");
    assert!(lab.reaches("10.77.0.3"));

    // Allowlisted, the server's own address, monitor-only: skipped and audited.
    send(&mut publisher, &detection("d-4", [10, 77, 0, 4], ddos()));
    send(&mut publisher, &detection("d-1", [10, 77, 0, 1], ddos()));
    let traffic = DetectorScores { traffic: 0.99, ..DetectorScores::default() };
    send(&mut publisher, &detection("d-3", [10, 77, 0, 3], traffic));
    wait("three skips audited", 5, || {
        actions(&audit_dir, "10.77.0.4") == ["skip_allowlisted"]
            && actions(&audit_dir, "10.77.0.1") == ["skip_allowlisted"]
            && actions(&audit_dir, "10.77.0.3") == ["monitor_only"]
    });
    assert!(lab.reaches("10.77.0.4") && lab.reaches("10.77.0.3"));
    // A SYN flood forged with the inside address 10.77.0.3: no proof, not blocked (audited
    // with the next synced batch, checked below).
    send(&mut publisher, &forged("d-3f", [10, 77, 0, 3], ddos()));
    let skipped: [IpAddr; 3] = ["10.77.0.1", "10.77.0.3", "10.77.0.4"].map(|a| a.parse().unwrap());
    assert!(lab.blocked().iter().all(|a| !skipped.contains(a)), "{:?}", lab.blocked());

    // The 4 s block ends: nftables drops the element, the agent audits the expiry, the source
    // reaches the server again; its second offence is blocked twice as long.
    wait("10.77.0.2 expired", 10, || actions(&audit_dir, "10.77.0.2") == ["block", "expire"]);
    assert!(!lab.blocked().contains(&"10.77.0.2".parse().unwrap()));
    assert!(lab.reaches("10.77.0.2"));
    send(&mut publisher, &detection("d-2b", [10, 77, 0, 2], ddos()));
    wait("10.77.0.2 blocked again", 5, || lab.blocked().contains(&"10.77.0.2".parse().unwrap()));
    let second = audit(&audit_dir).into_iter().find(|r| r["detection_id"] == "d-2b").unwrap();
    assert_eq!(actions(&audit_dir, "10.77.0.3"), ["monitor_only", "skip_forgeable"]);
    assert!(lab.reaches("10.77.0.3"), "a forged inside address was blocked");
    assert_eq!((second["action"].as_str(), second["offence"].as_u64()), (Some("block"), Some(2)));
    assert!((second["duration_secs"].as_f64().unwrap() - 8.0).abs() < 1e-9, "{second}");

    // The cap: 5 new blocks a minute, two used; six more sources make 3 blocks and 3 cap hits.
    for i in 1..=6u8 {
        send(&mut publisher, &detection(&format!("d-cap{i}"), [203, 0, 113, i], ddos()));
    }
    wait("cap hits audited", 5, || {
        audit(&audit_dir).iter().filter(|r| r["action"] == "rate_capped").count() == 3
    });
    assert_eq!(lab.blocked().len(), 4, "{:?}", lab.blocked());

    // What the agent did also went out on control.v1, sealed.
    let mut seen: Vec<FirewallAction> = Vec::new();
    while let Some(r) = actions_sub.recv(Duration::from_millis(300)).unwrap() {
        seen.push(r.message);
    }
    let of = |ip: [u8; 4], kind: FirewallActionKind| {
        seen.iter().filter(|a| a.address == ip && a.kind() == kind).count()
    };
    assert_eq!(of([10, 77, 0, 2], FirewallActionKind::Block), 2, "{seen:?}");
    assert_eq!(of([10, 77, 0, 2], FirewallActionKind::Expired), 1);
    assert_eq!(of([10, 77, 0, 4], FirewallActionKind::SkippedAllowlisted), 1);
    assert_eq!(of([10, 77, 0, 1], FirewallActionKind::SkippedAllowlisted), 1);
    assert_eq!(seen.iter().filter(|a| a.kind() == FirewallActionKind::RateCapped).count(), 3);
    let first = seen.iter().find(|a| a.detection_id == "d-2").unwrap();
    assert!(first.until_ns > first.at_ns && first.reason.contains("by ddos"), "{first:?}");
    assert_eq!(actions_sub.stats().lost, 0);

    // status lists the blocks in force, each in the kernel's set.
    let listed = lab.status(&config);
    assert_eq!(listed.len(), lab.blocked().len());
    assert!(
        listed
            .iter()
            .all(|b| b["in_kernel"] == true && b["reason"].as_str().unwrap().contains("by ddos"))
    );

    // on_exit remove: the table goes; a restart rebuilds it with the blocks still in force.
    let log = stop(&mut agent);
    assert!(!lab.has_table(), "{log}");
    assert!(audit(&audit_dir).iter().any(|r| r["action"] == "table_removed"));
    let mut agent = lab.agent(&config);
    wait("table rebuilt", 10, || lab.has_table());
    let rebuilt = lab.blocked();
    let in_force: Vec<IpAddr> =
        listed.iter().map(|b| b["addr"].as_str().unwrap().parse().unwrap()).collect();
    assert!(rebuilt.iter().all(|a| in_force.contains(a)), "{rebuilt:?} vs {in_force:?}");
    assert!(
        rebuilt.contains(&"10.77.0.2".parse().unwrap()),
        "the 8 s block is still in force: {rebuilt:?}"
    );
    stop(&mut agent);
}

impl Lab {
    /// The elements of one of the server's sets, as nft writes them (`10.0.0.1 . udp . 53`).
    fn set(&self, name: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.server, "nft", "-j", "list", "set", "inet", "mldefender"])
            .arg(name)
            .output()
            .unwrap();
        if !out.status.success() {
            return Vec::new();
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), ToOwned::to_owned);
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["set"]["elem"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                let val = &e["elem"]["val"];
                val["concat"].as_array().map_or_else(
                    || text(val),
                    |parts| parts.iter().map(text).collect::<Vec<_>>().join(" . "),
                )
            })
            .collect()
    }

    /// Whether an HTTP GET from the client's `src` to the server's port 8080 is answered.
    fn fetches(&self, src: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.client, "curl", "-sf", "--max-time", "3", "-o"])
            .arg("/dev/null")
            .args(["--interface", src, "http://10.77.0.1:8080/"])
            .status()
            .unwrap()
            .success()
    }

    /// The SYN proxy's valid cookies so far in the server namespace (all CPUs).
    fn synproxy_cookies(&self) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.server, "cat", "/proc/net/stat/synproxy"])
            .output()
            .unwrap();
        // Header line, then one line of hex counters per CPU: entries syn_received
        // cookie_invalid cookie_valid cookie_retrans conn_reopened.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| {
                l.split_whitespace().nth(3).and_then(|h| u64::from_str_radix(h, 16).ok())
            })
            .sum()
    }
}

/// A Detection of a flow from `src` to the server's `port` over `proto` on which `rules` fired.
fn fired(id: &str, src: [u8; 4], dst: [u8; 4], proto: u32, port: u32, rules: &[&str]) -> Detection {
    let mut d = forged(id, src, ddos());
    let f = d.flow.as_mut().unwrap();
    let k = f.key.as_mut().unwrap();
    k.ip_proto = proto;
    k.a = Some(Endpoint { ip: dst.to_vec(), port });
    f.fast = Some(mld_proto::FastDetection {
        score: 0.95,
        rule_ids: rules.iter().map(|&r| r.to_owned()).collect(),
        ..mld_proto::FastDetection::default()
    });
    d.final_score = 0.95;
    d.authoritative_source = ScoreSource::Fast.into();
    d
}

#[test]
fn protects_a_flooded_service_and_blocks_a_beacons_server() {
    if !mld_test_utils::privileged("network namespaces, nftables") {
        return;
    }
    let lab = Lab::new('p');
    // The SYN proxy needs conntrack not to pick up connections mid-stream.
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.server,
        "sysctl",
        "-qw",
        "net.netfilter.nf_conntrack_tcp_loose=0",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (config, endpoint, control, audit_dir) = write_config(dir.path(), |c| {
        c["response"]["protect_secs"] = 30.into();
    });
    let mut web = Command::new("ip")
        .args(["netns", "exec", &lab.server, "python3", "-m", "http.server", "8080", "--bind"])
        .arg("10.77.0.1")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait("the web server answers", 10, || lab.fetches("10.77.0.2"));
    let (_ctx, mut publisher, mut actions_sub) = bus(&endpoint, control);
    let mut agent = lab.agent(&config);
    probe(&mut publisher, &mut actions_sub);

    // A SYN flood, a UDP flood and an ICMP flood on the server from forged outside sources:
    // the victim-side rules fire on each flow. The three services are protected; no source is
    // blocked.
    for i in 1..=50u8 {
        send(
            &mut publisher,
            &fired(
                &format!("s{i}"),
                [198, 18, 0, i],
                [10, 77, 0, 1],
                6,
                8080,
                &["flood.half_open"],
            ),
        );
        send(
            &mut publisher,
            &fired(&format!("u{i}"), [198, 18, 1, i], [10, 77, 0, 1], 17, 53, &["flood.half_open"]),
        );
        send(
            &mut publisher,
            &fired(&format!("i{i}"), [198, 18, 2, i], [10, 77, 0, 1], 1, 0, &["flood.victim"]),
        );
    }
    // A SYN flood spread over the ports of another inside address: evidence about the address.
    let mut spread = fired("a1", [198, 18, 3, 1], [10, 77, 0, 9], 6, 31_337, &["flood.half_open"]);
    spread.flow.as_mut().unwrap().fast.as_mut().unwrap().victim_all_ports = true;
    send(&mut publisher, &spread);
    wait("four services protected", 5, || {
        lab.set("syn4") == ["10.77.0.1 . 8080"]
            && lab.set("guard4") == ["10.77.0.1 . udp . 53"]
            && lab.set("guardproto4") == ["10.77.0.1 . icmp"]
            && lab.set("synaddr4") == ["10.77.0.9"]
    });
    assert!(lab.blocked().is_empty(), "a forged source was blocked: {:?}", lab.blocked());
    let records = audit(&audit_dir);
    let count = |action: &str| records.iter().filter(|r| r["action"] == action).count();
    assert_eq!((count("protect"), count("block")), (4, 0));
    let syn = records.iter().find(|r| r["action"] == "protect" && r["proto"] == 6).unwrap();
    assert_eq!(
        (syn["port"].as_u64(), syn["shield"].as_str()),
        (Some(8080), Some("synproxy")),
        "{syn}"
    );

    // A legitimate client still gets its pages, through the SYN proxy (its cookies count), and
    // its pings through the ICMP limit.
    let cookies = lab.synproxy_cookies();
    for _ in 0..3 {
        assert!(lab.fetches("10.77.0.2"), "the protected web server does not answer");
    }
    assert!(
        lab.synproxy_cookies() >= cookies + 3,
        "the handshakes did not go through the SYN proxy"
    );
    assert!(lab.reaches("10.77.0.2"));

    // An inside host's TLS check-ins to an outside server: the server is blocked (both ways),
    // the inside host is not quarantined (the shipped policy); a tunnel through an inside
    // resolver blocks nothing (audited with the beacon's batch, which syncs the log).
    let mut beacon = fired("b1", [10, 77, 0, 3], [203, 0, 113, 50], 6, 443, &["beacon"]);
    beacon.flow.as_mut().unwrap().features = Some(mld_proto::FlowFeatures {
        total_fwd_bytes: 700,
        total_bwd_bytes: 4_000,
        ..mld_proto::FlowFeatures::default()
    });
    send(&mut publisher, &fired("t1", [10, 77, 0, 3], [10, 77, 0, 1], 17, 53, &["dns.tunnel"]));
    send(&mut publisher, &beacon);
    wait("the beacon's server blocked", 5, || {
        lab.blocked() == ["203.0.113.50".parse::<IpAddr>().unwrap()]
    });
    wait("the resolver skipped", 5, || {
        actions(&audit_dir, "10.77.0.1").contains(&"skip_inside_destination".to_owned())
    });
    assert!(lab.reaches("10.77.0.3"), "the inside host was quarantined");

    // Published on control.v1 with the service; listed by status, each in the kernel.
    let mut seen: Vec<FirewallAction> = Vec::new();
    while let Some(r) = actions_sub.recv(Duration::from_millis(300)).unwrap() {
        seen.push(r.message);
    }
    let mut protected: Vec<(u32, u32)> = seen
        .iter()
        .filter(|a| a.kind() == FirewallActionKind::Protect)
        .map(|a| (a.ip_proto, a.port))
        .collect();
    protected.sort_unstable();
    assert_eq!(protected, [(1, 0), (6, 0), (6, 8080), (17, 53)], "{seen:?}");
    let listed: Vec<Value> =
        lab.status(&config).into_iter().filter(|v| v["kind"] == "protection").collect();
    let mut shields: Vec<String> =
        listed.iter().map(|p| format!("{} {}", p["service"], p["in_kernel"])).collect();
    shields.sort();
    assert_eq!(
        shields,
        [
            r#""icmp/10.77.0.1" "limit""#,
            r#""tcp/10.77.0.1:8080" "synproxy""#,
            r#""tcp/10.77.0.9:*" "synproxy""#,
            r#""udp/10.77.0.1:53" "limit""#
        ]
    );

    // A restart rebuilds the protections from the audit log.
    stop(&mut agent);
    let mut agent = lab.agent(&config);
    wait("protections rebuilt", 10, || {
        lab.set("syn4") == ["10.77.0.1 . 8080"] && lab.set("guard4").len() == 1
    });
    assert!(lab.fetches("10.77.0.2"));
    stop(&mut agent);
    let _ = web.kill();
    let _ = web.wait();
}
