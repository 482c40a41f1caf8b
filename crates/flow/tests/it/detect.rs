//! The engine over the shared labelled captures: attack captures raise the matching fast rule
//! for the right host; benign captures stay quiet within a stated rate; flow accounting adds
//! up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mld_config::daemons::sniffer::{BehaviourConfig, FastDetectorConfig};
use mld_flow::capture::CaptureReader;
use mld_flow::engine::{Engine, EngineConfig, Output, SourceInfo};
use mld_flow::packet::parse;
use mld_flow::record::PacketRecord;
use mld_proto::{CaptureMode, InterfaceRole};

use crate::{captures, shared_data};

const S: u64 = 1_000_000_000;

/// The thresholds these tests use: the shipped defaults except packet rates, which the
/// shared DDoS captures (sampled, 150-1,600 packets/s) never reach at the default 5,000/s.
pub(crate) fn test_config() -> EngineConfig {
    EngineConfig {
        sensor_id: "test".into(),
        capacity: 65_536,
        shards: 16,
        idle_ns: 60 * S,
        active_ns: 120 * S,
        window_ns: 30 * S,
        max_hosts: 65_536,
        internal_nets: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect(),
        rules: FastDetectorConfig {
            flood_packets_per_sec: 1_000,
            flood_victim_packets_per_sec: 1_000,
            flood_victim_min_sources: 20,
            ..FastDetectorConfig::default()
        },
        behaviours: BehaviourConfig::default(),
        cooldown_ns: 300 * S,
    }
}

/// An engine over one test source.
fn test_engine(cfg: EngineConfig) -> Engine {
    Engine::new(
        cfg,
        vec![SourceInfo {
            interface: "test".into(),
            role: InterfaceRole::Unspecified,
            mode: CaptureMode::Pcap,
        }],
    )
}

#[derive(Debug, Default)]
pub(crate) struct Run {
    pub packets: u64,
    pub flows: Vec<mld_proto::FlowEvent>,
    pub alerts: BTreeSet<(String, &'static str)>,
}

pub(crate) fn run(path: &Path, cfg: EngineConfig) -> Run {
    let source = SourceInfo {
        interface: "pcap".into(),
        role: InterfaceRole::Unspecified,
        mode: CaptureMode::Pcap,
    };
    let mut engine = Engine::new(cfg, vec![source]);
    let mut r = Run::default();
    let mut sink = |o: Output| match o {
        Output::Flow(ev) => r.flows.push(*ev),
        Output::Alert(a) => {
            r.alerts.insert((a.host.to_string(), a.rule));
        }
    };
    let mut packets = 0;
    for frame in CaptureReader::open(path).unwrap() {
        let Ok(frame) = frame else { break };
        if let Ok(p) = parse(frame.link, &frame.data) {
            packets += 1;
            engine.process(&PacketRecord::from_packet(frame.ts_ns, &p, &frame.data, 0), &mut sink);
        }
    }
    engine.flush(&mut sink);
    let c = engine.counters().clone();
    assert_eq!(engine.active_flows(), 0);
    assert_eq!(c.packets, packets);
    let finished = r.flows.iter().filter(|f| !f.snapshot).count() as u64;
    assert_eq!(
        finished,
        c.flows_created,
        "{}: every flow created is exported once",
        path.display()
    );
    assert_eq!(c.flows_exported(), c.flows_created);
    let accounted: u64 = r
        .flows
        .iter()
        .filter(|f| !f.snapshot)
        .map(|f| f.features.as_ref().map_or(0, |x| x.total_fwd_packets + x.total_bwd_packets))
        .sum();
    assert_eq!(
        accounted,
        packets,
        "{}: every packet is in exactly one finished flow",
        path.display()
    );
    r.packets = packets;
    r
}

#[test]
fn attack_captures_raise_the_matching_rule_for_the_right_host() {
    let cases = [
        ("scan/ndpi-synscan.pcap", "172.16.0.8", "scan.ports"),
        ("bruteforce/slips-ssh-bruteforce.pcap", "147.32.80.40", "bruteforce"),
        // dnscat2 straight to its server: names outside the public DNS tree, counted per
        // server.
        ("botnet/ndpi-dns_exfiltration.pcap", "192.168.220.56", "dns.tunnel"),
        ("webattack/ndpi-WebattackRCE.pcap", "127.0.0.1", "web.attack"),
        ("webattack/ndpi-WebattackSQLinj.pcap", "172.16.0.1", "web.attack"),
        ("webattack/ndpi-sql_injection.pcap", "192.168.3.109", "web.attack"),
        ("webattack/ndpi-xss.pcap", "192.168.3.109", "web.attack"),
        ("botnet/slips-test7-malicious.pcap", "192.168.2.16", "scan.hosts"),
        // Tinba's DGA: names of 12 letters, as low in entropy as benign names, but none exists.
        ("botnet/ustc-Tinba.pcap", "10.0.2.108", "dns.dga"),
        // DDoS captures are one-way traffic into victim 10.10.10.10 (10.10.10.1 for BACnet)
        // from spoofed sources or reflectors: the rule flags the victim, and every flow into
        // it carries the rule, so the sources of those flows are the hosts to act on.
        ("ddos/stopddos-pkt.TCP.synflood.spoofed.pcap", "10.10.10.10", "flood.victim"),
        ("ddos/stopddos-pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", "10.10.10.10", "flood.victim"),
        ("ddos/stopddos-amp.TCP.reflection.SYNACK.pcap", "10.10.10.10", "flood.victim"),
        ("ddos/stopddos-amp.UDP.isakmp.pcap", "10.10.10.10", "flood.victim"),
        ("ddos/stopddos-amp.UDP.snmp.src161.pcapng", "10.10.10.10", "flood.victim"),
        ("ddos/stopddos-amp.UDP.bacnet.IOT.37810.pcapng", "10.10.10.1", "flood.victim"),
    ];
    for (file, host, rule) in cases {
        let r = run(&shared_data().join(file), test_config());
        assert!(
            r.alerts.contains(&(host.to_owned(), rule)),
            "{file}: expected {rule} for {host}, got {:?}",
            r.alerts
        );
        // Once per host and episode: never an alert per packet or per flow.
        assert!(r.alerts.len() <= 3, "{file}: {:?}", r.alerts);
        // The flows of the flagged episode carry it.
        let flagged = r
            .flows
            .iter()
            .filter(|f| f.fast.as_ref().is_some_and(|x| x.rule_ids.iter().any(|id| id == rule)))
            .count();
        assert!(flagged > 0, "{file}: no flow carries {rule}");
        let flood = rule == "flood.victim";
        if flood {
            let victim_flows = r
                .flows
                .iter()
                .filter(|f| {
                    let k = f.key.as_ref().unwrap();
                    [k.a.as_ref().unwrap(), k.b.as_ref().unwrap()]
                        .iter()
                        .any(|e| mld_proto::ip_from_bytes(&e.ip).unwrap().to_string() == host)
                })
                .count();
            eprintln!("{file}: {flagged} of {victim_flows} flows into the victim carry {rule}");
        }
    }
}

/// Attack captures the fast rules do not flag at these thresholds, and why; the ML detector
/// (issue #4) is measured on them. This test fails when one starts being flagged, so that
/// the list stays true.
#[test]
fn documented_misses_stay_documented() {
    let misses = [
        ("scan/ndpi-tcp_scan.pcapng", "7 probes: below any scan threshold"),
        (
            "scan/slips-test12-icmp-portscan.pcap",
            "an ICMP sweep of 18 hosts: below scan.hosts = 30",
        ),
        ("scan/slips-test8-arp-scan.pcap", "ARP is not IP: the sniffer counts it as not_ip"),
        (
            "webattack/ndpi-log4j-webapp-exploit.pcap",
            "the JNDI lookup is in a POST body, past the 248 captured bytes",
        ),
        (
            "ddos/stopddos-amp.TCP.syn.optionallyACK.optionallysamePort.pcapng",
            "896 packets over 818 s: a sample, not a rate",
        ),
        (
            "botnet/slips-test-cc-capture-2.pcap",
            "117 NXDOMAIN answers, all Spamhaus DNSBL lookups under one registered domain (a spam \
             bot checking its addresses, not a DGA); the traffic forest flags 6 of its flows",
        ),
    ];
    for (file, why) in misses {
        let r = run(&shared_data().join(file), test_config());
        assert!(
            r.alerts.is_empty(),
            "{file} ({why}) now raises {:?}: move it to the detected list",
            r.alerts
        );
    }
}

#[test]
fn benign_captures_stay_quiet() {
    let benign: Vec<_> =
        captures().into_iter().filter(|p| p.to_string_lossy().contains("/benign/")).collect();
    assert!(benign.len() > 500);
    let mut noisy = BTreeMap::new();
    let (mut flows, mut flagged) = (0usize, 0usize);
    for path in &benign {
        let r = run(path, test_config());
        flows += r.flows.len();
        flagged +=
            r.flows.iter().filter(|f| f.fast.as_ref().is_some_and(|x| x.score > 0.0)).count();
        if !r.alerts.is_empty() {
            noisy.insert(path.file_name().unwrap().to_string_lossy().into_owned(), r.alerts);
        }
    }
    eprintln!("benign: {} of {} files raised alerts: {noisy:?}", noisy.len(), benign.len());
    eprintln!("benign: {flagged} of {flows} flows carry a fast score");
    // Stated rate: at most 0.6 % of benign capture files raise any fast alert at these
    // thresholds (3 of 505 when this was written, each a real attack in a file the nDPI corpus
    // files as a protocol sample: an iodine tunnel and nDPI's bad-DNS sample (`dns.tunnel`),
    // and an SMBv1 Trans2 SESSION_SETUP, the DoublePulsar probe (`smb.ms17_010`); P2P and
    // calling apps reaching 30 external peers that answer no longer count as sweeps, and UDP
    // keepalives of SIP and Discord are not beacons).
    assert!(noisy.len() * 1000 <= benign.len() * 6, "{noisy:?}");
}

/// A SYN scan of 120 ports, one per millisecond: the first alert at 50 ports exports the
/// flow at hand early (score 0.6), and so does every new tenth the episode's score reaches
/// (0.7 … 1.0 at 100 ports), each snapshot carrying that score, so that a block threshold is
/// acted on when the scan reaches it, not when its flows end. Nothing more after 1.0.
/// A SYN from one scanner to `port` of one host, 1 ms after the one to `port - 1`.
fn scan_syn(port: u16) -> PacketRecord<'static> {
    PacketRecord {
        ts_ns: 1_700_000_000 * S + u64::from(port) * 1_000_000,
        src: "198.51.100.9".parse().unwrap(),
        dst: "10.0.0.5".parse().unwrap(),
        proto: 6,
        src_port: 40_000,
        dst_port: port,
        ip_len: 44,
        ip_header_len: 20,
        l4_header_len: 24,
        payload_len: 0,
        tcp_flags: 0x02,
        tcp_window: 1024,
        payload_head: &[],
        source: 0,
    }
}

#[test]
fn a_climbing_scan_is_exported_early_at_each_new_tenth_of_its_score() {
    let mut engine = test_engine(test_config());
    let mut snapshots = Vec::new();
    let mut finished = 0;
    let mut sink = |o: Output| {
        if let Output::Flow(ev) = o {
            if ev.snapshot {
                let key = ev.key.as_ref().unwrap();
                let port = key.a.as_ref().unwrap().port.min(key.b.as_ref().unwrap().port);
                snapshots.push((port, ev.fast.as_ref().unwrap().score));
            } else {
                finished += 1;
            }
        }
    };
    for port in 1..=120u16 {
        let rec = scan_syn(port);
        engine.process(&rec, &mut sink);
    }
    engine.flush(&mut sink);
    let ports: Vec<u32> = snapshots.iter().map(|s| s.0).collect();
    // scan.ports scores 0.6 + 0.4 × (ports / 50 − 1): 0.7 from 62.5 ports, 0.8 from 75, 0.9
    // from 87.5, 1.0 from 100.
    assert_eq!(ports, [50, 63, 75, 88, 100], "{snapshots:?}");
    for ((_, got), tenth) in snapshots.iter().zip([0.6, 0.7, 0.8, 0.9, 1.0]) {
        assert!(*got >= tenth - 1e-9 && *got < tenth + 0.1, "{snapshots:?}");
    }
    assert_eq!(finished, 120, "every flow still ends once");
}

#[test]
fn a_policy_set_while_running_applies_from_the_next_packet_and_keeps_the_host_context() {
    let mut quiet = test_config();
    quiet.rules.scan_distinct_ports = 1_000;
    let mut engine = test_engine(quiet.clone());
    let mut alerts: Vec<(u16, &'static str)> = Vec::new();
    for port in 1..=80u16 {
        if port == 61 {
            let rules = FastDetectorConfig { scan_distinct_ports: 50, ..quiet.rules.clone() };
            engine.set_policy(rules, quiet.cooldown_ns, quiet.internal_nets.clone());
        }
        let rec = scan_syn(port);
        engine.process(&rec, &mut |o| {
            if let Output::Alert(a) = o {
                alerts.push((port, a.rule));
            }
        });
    }
    // The 60 ports seen before the change count: the rule fires on the first packet after it.
    assert_eq!(alerts, [(61, "scan.ports")]);
}

/// How the destinations of [`sweep`] reply to its SYN.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reply {
    SynAck,
    Rst,
    Nothing,
}

/// One host sends a SYN to port 7000 of 40 hosts `{net}.1` … `{net}.40`, 50 ms apart; each
/// replies 10 ms later as `reply` says. Returns the rules alerted, with the host count at
/// which each fired.
fn sweep(net: &str, reply: Reply) -> Vec<(u32, &'static str)> {
    let mut engine = test_engine(test_config());
    let me: std::net::IpAddr = "192.168.1.50".parse().unwrap();
    let mut alerts = Vec::new();
    for i in 1..=40u32 {
        let peer: std::net::IpAddr = format!("{net}.{i}").parse().unwrap();
        let ts_ns = 1_700_000_000 * S + u64::from(i) * 50_000_000;
        let syn = PacketRecord {
            ts_ns,
            src: me,
            dst: peer,
            proto: 6,
            src_port: 40_000,
            dst_port: 7000,
            ip_len: 60,
            ip_header_len: 20,
            l4_header_len: 40,
            payload_len: 0,
            tcp_flags: 0x02,
            tcp_window: 64_240,
            payload_head: &[],
            source: 0,
        };
        let back = PacketRecord {
            ts_ns: ts_ns + 10_000_000,
            src: peer,
            dst: me,
            src_port: 7000,
            dst_port: 40_000,
            tcp_flags: if reply == Reply::Rst { 0x14 } else { 0x12 },
            ..syn
        };
        let mut sink = |o: Output| {
            if let Output::Alert(a) = o {
                alerts.push((i, a.rule));
            }
        };
        engine.process(&syn, &mut sink);
        if reply != Reply::Nothing {
            engine.process(&back, &mut sink);
        }
    }
    alerts
}

/// scan.hosts counts internal destinations and external ones that have not answered: a
/// peer-to-peer client reaching 40 external peers that answer is not a sweep; the same
/// contacts unanswered, refused, or to internal hosts are.
#[test]
fn a_host_sweep_counts_internal_hosts_and_external_hosts_that_do_not_answer() {
    assert_eq!(sweep("198.51.100", Reply::SynAck), []);
    assert_eq!(sweep("198.51.100", Reply::Nothing), [(30, "scan.hosts")]);
    assert_eq!(sweep("198.51.100", Reply::Rst), [(30, "scan.hosts")]);
    assert_eq!(sweep("192.168.7", Reply::SynAck), [(30, "scan.hosts")]);
}
