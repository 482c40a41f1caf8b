//! Behaviours through the engine on hand-built packets: each fires on its attack and stays
//! quiet on its look-alike, and a million spoofed sources leave state capped, evictions
//! counted and a legitimate host tracked.

use std::net::IpAddr;

use mld_config::daemons::sniffer::{BehaviourConfig, FastDetectorConfig};
use mld_flow::engine::{Engine, EngineConfig, Output, SourceInfo};
use mld_flow::key::oriented;
use mld_flow::packet::{proto, tcp_flags};
use mld_flow::record::PacketRecord;
use mld_proto::{CaptureMode, FlowEvent, InterfaceRole, ip_from_bytes};

const S: u64 = 1_000_000_000;

fn config() -> EngineConfig {
    EngineConfig {
        sensor_id: "behaviours".into(),
        capacity: 65_536,
        shards: 16,
        idle_ns: 60 * S,
        active_ns: 120 * S,
        window_ns: 30 * S,
        max_hosts: 65_536,
        internal_nets: vec!["10.0.0.0/8".parse().unwrap()],
        rules: FastDetectorConfig::default(),
        behaviours: BehaviourConfig::default(),
        cooldown_ns: 300 * S,
    }
}

struct Lab {
    engine: Engine,
    flows: Vec<FlowEvent>,
}

impl Lab {
    fn new(cfg: EngineConfig) -> Self {
        let source = SourceInfo {
            interface: "test".into(),
            role: InterfaceRole::Unspecified,
            mode: CaptureMode::Pcap,
        };
        Self { engine: Engine::new(cfg, vec![source]), flows: Vec::new() }
    }

    #[allow(clippy::too_many_arguments, reason = "one packet's header fields")]
    fn send(
        &mut self,
        t: u64,
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        p: u8,
        flags: u8,
        payload: &[u8],
    ) {
        let rec = PacketRecord {
            ts_ns: t,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: p,
            src_port: sport,
            dst_port: dport,
            ip_len: u16::try_from(40 + payload.len()).unwrap(),
            ip_header_len: 20,
            l4_header_len: 20,
            payload_len: u16::try_from(payload.len()).unwrap(),
            tcp_flags: flags,
            tcp_window: 512,
            payload_head: payload,
            source: 0,
        };
        self.send_rec(&rec);
    }

    fn send_rec(&mut self, rec: &PacketRecord<'_>) {
        let flows = &mut self.flows;
        self.engine.process(rec, &mut |o| {
            if let Output::Flow(f) = o {
                flows.push(*f);
            }
        });
    }

    /// A TCP connection with a request and a reply, closed by FINs.
    fn session(&mut self, t: u64, client: &str, cport: u16, server: &str, port: u16, reply: &[u8]) {
        const SYN: u8 = tcp_flags::SYN;
        const ACK: u8 = tcp_flags::ACK;
        const FIN: u8 = tcp_flags::FIN | tcp_flags::ACK;
        let ms = 1_000_000;
        self.send(t, client, cport, server, port, proto::TCP, SYN, &[]);
        self.send(t + ms, server, port, client, cport, proto::TCP, SYN | ACK, &[]);
        self.send(t + 2 * ms, client, cport, server, port, proto::TCP, ACK, &[]);
        self.send(t + 3 * ms, client, cport, server, port, proto::TCP, ACK, b"USER x\r\n");
        self.send(t + 4 * ms, server, port, client, cport, proto::TCP, ACK, reply);
        self.send(t + 5 * ms, client, cport, server, port, proto::TCP, FIN, &[]);
        self.send(t + 6 * ms, server, port, client, cport, proto::TCP, FIN, &[]);
    }

    fn finish(mut self) -> (Engine, Vec<FlowEvent>) {
        let flows = &mut self.flows;
        self.engine.flush(&mut |o| {
            if let Output::Flow(f) = o {
                flows.push(*f);
            }
        });
        (self.engine, self.flows)
    }
}

/// Whether `ip` is at either end of flow `f`.
fn touches(f: &FlowEvent, ip: IpAddr) -> bool {
    let k = f.key.as_ref().unwrap();
    [k.a.as_ref(), k.b.as_ref()].into_iter().flatten().any(|e| ip_from_bytes(&e.ip) == Some(ip))
}

/// The best fast score of the flows with `host` at either end carrying `rule`.
fn score(flows: &[FlowEvent], host: &str, rule: &str) -> f64 {
    let ip: IpAddr = host.parse().unwrap();
    flows
        .iter()
        .filter(|f| touches(f, ip))
        .filter_map(|f| f.fast.as_ref())
        .filter(|d| d.rule_ids.iter().any(|r| r == rule))
        .map(|d| d.score)
        .fold(0.0, f64::max)
}

#[test]
fn slow_ftp_guessing_reaches_malicious_one_attempt_a_minute() {
    let mut lab = Lab::new(config());
    for i in 0..16u16 {
        lab.session(
            u64::from(i) * 60 * S,
            "203.0.113.9",
            40_000 + i,
            "10.0.0.5",
            21,
            b"530 Login incorrect.\r\n",
        );
    }
    let (_, flows) = lab.finish();
    assert!(score(&flows, "203.0.113.9", "login.failures") >= 0.8, "15 failures in 15 min");
    // Below the threshold the level climbs with each failure (a model input): the first
    // flows carry a fraction of it, later ones all of it and more; no other behaviour moves.
    let levels: Vec<f32> = flows
        .iter()
        .filter(|f| !f.snapshot)
        .map(|f| f.source_levels.unwrap_or_default().login)
        .collect();
    assert_eq!(levels.len(), 16);
    assert!(levels[0] > 0.0 && levels[0] < 0.2, "{levels:?}");
    assert!(levels.windows(2).all(|w| w[1] >= w[0]), "{levels:?}");
    assert!(levels[15] >= 1.0, "{levels:?}");
    assert!(flows.iter().all(|f| {
        let l = f.source_levels.unwrap_or_default();
        l.beacon == 0.0 && l.smb == 0.0 && l.dns == 0.0
    }));

    // A user who logs in, eight times: nothing.
    let mut lab = Lab::new(config());
    for i in 0..8u16 {
        lab.session(
            u64::from(i) * 60 * S,
            "10.0.0.7",
            40_000 + i,
            "10.0.0.5",
            21,
            b"230 Login successful.\r\n",
        );
    }
    let (_, flows) = lab.finish();
    assert!(score(&flows, "10.0.0.7", "login.failures") == 0.0);
}

#[test]
fn a_jittered_beacon_fires_and_an_irregular_client_does_not() {
    let mut lab = Lab::new(config());
    // Every 30 s with up to ±6 s of jitter (a fixed pattern), 12 check-ins.
    let jitter: [i64; 12] = [0, 4, -3, 5, -5, 2, -1, 3, -6, 2, 1, -4];
    for (i, j) in (0u16..).zip(jitter) {
        let t = (u64::from(i) * 30 + 100) * S;
        let t = t.saturating_add_signed(j * 1_000_000_000);
        lab.session(t, "10.0.0.8", 50_000 + i, "198.51.100.7", 443, b"\x17\x03\x03");
    }
    // The same host browsing another site at irregular times.
    for (i, t) in (0u16..).zip([3, 4, 50, 51, 52, 200, 290, 291, 400, 401, 402, 403]) {
        lab.session(t * S, "10.0.0.8", 51_000 + i, "198.51.100.20", 443, b"\x17\x03\x03");
    }
    let (_, flows) = lab.finish();
    assert!(score(&flows, "198.51.100.7", "beacon") >= 0.8, "12 regular check-ins");
    let irregular = flows.iter().any(|f| {
        f.fast.as_ref().is_some_and(|d| d.reasons.iter().any(|r| r.contains("198.51.100.20")))
    });
    assert!(!irregular, "irregular browsing is no beacon");
}

/// A DNS response (QR set) for `name` with `rcode`.
fn dns_response(name: &str, rcode: u8) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(u8::try_from(label.len()).unwrap());
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

#[test]
fn nxdomain_for_many_domains_is_dga_and_a_busy_resolver_is_not_blamed() {
    let mut lab = Lab::new(config());
    // Three clients make the resolver a resolver; one of them asks for 16 missing domains.
    for (i, c) in ["10.0.0.21", "10.0.0.22", "10.0.0.23"].iter().enumerate() {
        let t = i as u64 * S;
        lab.send(t, c, 5000, "10.0.0.53", 53, proto::UDP, 0, &dns_response("example.com", 0)[..12]);
        lab.send(t + 1, "10.0.0.53", 53, c, 5000, proto::UDP, 0, &dns_response("example.com", 0));
    }
    for i in 0..16u16 {
        let t = (10 + u64::from(i)) * S;
        let name = format!("qzx{i}vbn.com");
        lab.send(t, "10.0.0.21", 6000 + i, "10.0.0.53", 53, proto::UDP, 0, &[0; 12]);
        lab.send(
            t + 1,
            "10.0.0.53",
            53,
            "10.0.0.21",
            6000 + i,
            proto::UDP,
            0,
            &dns_response(&name, 3),
        );
        // The resolver forwards and draws the same NXDOMAIN from upstream.
        lab.send(t + 2, "10.0.0.53", 7000 + i, "198.51.100.53", 53, proto::UDP, 0, &[0; 12]);
        lab.send(
            t + 3,
            "198.51.100.53",
            53,
            "10.0.0.53",
            7000 + i,
            proto::UDP,
            0,
            &dns_response(&name, 3),
        );
    }
    let (_, flows) = lab.finish();
    let dga = |host: &str| {
        let ip: IpAddr = host.parse().unwrap();
        flows
            .iter()
            .filter(|f| f.fast.as_ref().is_some_and(|d| d.rule_ids.iter().any(|r| r == "dns.dga")))
            .filter_map(|f| ip_from_bytes(&oriented(f.key.as_ref()).0?.ip))
            .any(|i| i == ip)
    };
    assert!(dga("10.0.0.21"), "the client that asked");
    assert!(!dga("10.0.0.53"), "never the resolver");
}

#[test]
#[allow(clippy::cast_possible_truncation, reason = "address bytes")]
fn a_million_spoofed_sources_cap_the_state_and_the_victim_is_found() {
    let mut cfg = config();
    cfg.capacity = 65_536;
    cfg.max_hosts = 16_384;
    cfg.behaviours.max_entries = 4_096;
    let mut lab = Lab::new(cfg);
    let mut x: u32 = 0x9e37_79b9;
    let mut legit_sessions = 0;
    for i in 0..1_000_000u64 {
        // xorshift: spoofed sources all over the address space (outside 10/8).
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let src = IpAddr::from((x | 0x8000_0000).to_be_bytes());
        let t = 1_000 * S + i * 2_000; // 500,000 SYN/s for 2 s
        let rec = PacketRecord {
            ts_ns: t,
            src,
            dst: "10.0.0.5".parse().unwrap(),
            proto: proto::TCP,
            src_port: (x >> 16) as u16,
            dst_port: 80,
            ip_len: 40,
            ip_header_len: 20,
            l4_header_len: 20,
            payload_len: 0,
            tcp_flags: tcp_flags::SYN,
            tcp_window: 512,
            payload_head: &[],
            source: 0,
        };
        lab.send_rec(&rec);
        if i % 100_000 == 0 {
            let port = 30_000 + u16::try_from(i / 100_000).unwrap();
            lab.session(t + 1_000, "10.0.0.9", port, "10.0.0.5", 80, b"HTTP/1.1 200 OK\r\n");
            legit_sessions += 1;
        }
    }
    let (engine, flows) = lab.finish();
    let c = engine.counters();
    assert!(engine.hosts() <= 16_384, "hosts capped: {}", engine.hosts());
    assert!(c.hosts_evicted > 900_000, "evictions counted: {}", c.hosts_evicted);
    assert!(c.flows_evicted > 0, "the flow table made room: {c:?}");
    for (name, s) in engine.behaviour_state() {
        assert!(s.entries <= s.capacity, "{name}: {s:?}");
    }
    let victim = score(&flows, "10.0.0.5", "flood.half_open");
    assert!(victim >= 0.8, "the victim's service is found: {victim}");
    // The legitimate client's sessions were all tracked to their end, with its context.
    let ip: IpAddr = "10.0.0.9".parse().unwrap();
    let legit: Vec<&FlowEvent> = flows.iter().filter(|f| touches(f, ip) && !f.snapshot).collect();
    assert_eq!(legit.len(), legit_sessions, "every legitimate session ends as one flow");
    assert!(legit.iter().all(|f| f.source_context.is_some()), "its host context is kept");
    // Spoofed sources are never the conclusion: no spoofed address carries an actor rule.
    let actor_rules = flows
        .iter()
        .filter_map(|f| f.fast.as_ref())
        .flat_map(|d| d.rule_ids.iter())
        .filter(|r| r.as_str() != "flood.half_open" && r.as_str() != "flood.victim")
        .count();
    assert_eq!(actor_rules, 0, "only victim-side verdicts");
}

/// The initiator of flow `f`.
fn initiator(f: &FlowEvent) -> Option<IpAddr> {
    let (src, _) = oriented(f.key.as_ref());
    src.and_then(|e| ip_from_bytes(&e.ip))
}

#[test]
fn a_flood_from_one_source_names_it_and_one_from_many_over_ports_names_the_victims_address() {
    // 400 SYN/s for 3 s from one address to one web server: below flood.source (5,000/s),
    // above half_open's floor (200/s). Attributable: the source is named, not the victim.
    let mut lab = Lab::new(config());
    for i in 0..1_200u64 {
        let port = 20_000 + u16::try_from(i).unwrap();
        lab.send(
            100 * S + i * 2_500_000,
            "203.0.113.7",
            port,
            "10.0.0.5",
            80,
            proto::TCP,
            tcp_flags::SYN,
            &[],
        );
    }
    let (_, flows) = lab.finish();
    let src: IpAddr = "203.0.113.7".parse().unwrap();
    let named: Vec<&FlowEvent> = flows
        .iter()
        .filter(|f| {
            f.fast.as_ref().is_some_and(|d| d.rule_ids.iter().any(|r| r == "flood.few_sources"))
        })
        .collect();
    assert!(!named.is_empty(), "the source is named");
    assert!(named.iter().all(|f| initiator(f) == Some(src)));
    assert!(named.iter().any(|f| f.fast.as_ref().unwrap().score >= 0.8), "enough to block it");
    assert!(score(&flows, "10.0.0.5", "flood.half_open") < f64::EPSILON, "no victim-side verdict");

    // 600 SYN/s for 3 s from random sources to random ports: no one port reaches the floor,
    // the address does. Victim-side, about the whole address.
    let mut lab = Lab::new(config());
    let mut x = 0x1234_5678_9abc_def0_u64;
    for i in 0..1_800u64 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let src =
            IpAddr::from((u32::try_from(x >> 32).unwrap() | 0x8000_0000).to_be_bytes()).to_string();
        let dport = 1 + u16::try_from((x >> 40) % 10_000).unwrap();
        lab.send(
            100 * S + i * 1_666_666,
            &src,
            40_000,
            "10.0.0.5",
            dport,
            proto::TCP,
            tcp_flags::SYN,
            &[],
        );
    }
    let (_, flows) = lab.finish();
    let victim: Vec<&mld_proto::FastDetection> = flows
        .iter()
        .filter_map(|f| f.fast.as_ref())
        .filter(|d| d.rule_ids.iter().any(|r| r == "flood.half_open"))
        .collect();
    assert!(!victim.is_empty(), "the victim is found");
    assert!(victim.iter().all(|d| d.victim_all_ports), "about its whole address");
    assert!(score(&flows, "10.0.0.5", "flood.few_sources") < f64::EPSILON);
}

#[test]
fn a_servers_late_syn_acks_to_forged_sources_are_not_its_scan() {
    // A server retransmits SYN-ACKs to 300 forged sources after their SYNs' flows ended:
    // each is a new flow whose first packet is a reply. The server scanned nobody.
    let mut lab = Lab::new(config());
    for i in 0..300u32 {
        let dst = IpAddr::from((0x5000_0000_u32 + i * 7_919).to_be_bytes()).to_string();
        let port = 1_500 + u16::try_from(i).unwrap();
        let t = 100 * S + u64::from(i) * 3_000_000;
        lab.send(t, "10.0.0.5", 80, &dst, port, proto::TCP, tcp_flags::SYN | tcp_flags::ACK, &[]);
    }
    let (_, flows) = lab.finish();
    let server: IpAddr = "10.0.0.5".parse().unwrap();
    let rules: Vec<&String> = flows
        .iter()
        .filter(|f| initiator(f) == Some(server))
        .filter_map(|f| f.fast.as_ref())
        .flat_map(|d| d.rule_ids.iter())
        .collect();
    assert!(rules.is_empty(), "{rules:?}");
}
