//! A synthetic traffic generator: packet records for explicit attack models and for benign
//! sessions whose sizes are drawn from the benign captures, run through the sniffer's own flow
//! engine, so that synthetic flows get their features from the same code as real ones.
//!
//! Every model instance uses fresh addresses (internal 10.0.0.0/8, external from 45.0.0.0);
//! a flow's label is the family of the attacker (or `DDoS` victim) it involves.

#![allow(
    clippy::too_many_arguments,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "generator arithmetic on small counts, ports and sizes"
)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use mld_flow::engine::{Engine, EngineConfig, Output, SourceInfo};
use mld_flow::record::PacketRecord;
use mld_forest::rng::Rng;
use mld_proto::{CaptureMode, FlowEvent, InterfaceRole};

use crate::labels::Family;

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const MSS: u32 = 1448;

/// A benign flow's shape, taken from a benign capture.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub proto: u8,
    pub dst_port: u16,
    pub fwd_bytes: u32,
    pub bwd_bytes: u32,
    pub exchanges: u32,
    pub duration_ns: u64,
}

impl Shape {
    /// The shape of a real flow (TCP or UDP), if it has one.
    pub fn of(ev: &FlowEvent) -> Option<Self> {
        let f = ev.features.as_ref()?;
        let key = ev.key.as_ref()?;
        let proto = u8::try_from(key.ip_proto).ok().filter(|p| *p == 6 || *p == 17)?;
        let (_, responder) = mld_flow::key::oriented(Some(key));
        Some(Self {
            proto,
            dst_port: responder.map_or(0, |e| u16::try_from(e.port).unwrap_or(0)),
            fwd_bytes: u32::try_from(f.total_fwd_bytes.min(4 << 20)).unwrap_or(0),
            bwd_bytes: u32::try_from(f.total_bwd_bytes.min(4 << 20)).unwrap_or(0),
            exchanges: u32::try_from(f.total_fwd_packets.clamp(1, 64)).unwrap_or(1),
            duration_ns: (f.flow_duration_us.min(600_000_000.0) * 1000.0) as u64,
        })
    }
}

struct Rec {
    ts: u64,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    payload: u16,
    flags: u8,
    head: Vec<u8>,
}

/// Builds one scenario's packets, then runs them through a fresh engine.
struct Scene<'a> {
    rng: &'a mut Rng,
    recs: Vec<Rec>,
    labels: HashMap<IpAddr, Family>,
    hosts: &'a mut u32,
}

impl<'a> Scene<'a> {
    fn new(rng: &'a mut Rng, hosts: &'a mut u32) -> Self {
        Self { rng, recs: Vec::new(), labels: HashMap::new(), hosts }
    }

    fn internal(&mut self) -> IpAddr {
        *self.hosts += 1;
        let n = *self.hosts;
        IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8 | 1))
    }

    fn external(&mut self) -> IpAddr {
        *self.hosts += 1;
        let n = *self.hosts;
        IpAddr::V4(Ipv4Addr::new(
            45 + (n >> 24) as u8 % 150,
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8 | 1,
        ))
    }

    fn port(&mut self) -> u16 {
        #[allow(clippy::cast_possible_truncation, reason = "below 28,000")]
        let p = 32_768 + self.rng.below(28_000) as u16;
        p
    }

    fn jitter(&mut self, ns: u64) -> u64 {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let j = (ns as f64 * (0.5 + self.rng.unit())) as u64;
        j.max(1)
    }

    fn push(
        &mut self,
        ts: u64,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
        payload: u32,
        flags: u8,
    ) {
        let payload = u16::try_from(payload).unwrap_or(u16::MAX);
        self.recs.push(Rec { ts, src, dst, proto, sport, dport, payload, flags, head: Vec::new() });
    }

    /// A TCP connection from `c` to `s:sp`: handshake (or a refused SYN), then for each
    /// exchange `up` bytes from the client and `down` from the server, then FIN or RST.
    /// Returns the time it ended.
    fn tcp(
        &mut self,
        t: u64,
        c: IpAddr,
        s: IpAddr,
        sp: u16,
        exchanges: &[(u32, u32)],
        rtt: u64,
        open: bool,
        rst_close: bool,
    ) -> u64 {
        let cp = self.port();
        let mut t = t;
        self.push(t, c, s, 6, cp, sp, 0, SYN);
        t += self.jitter(rtt / 2);
        if !open {
            self.push(t, s, c, 6, sp, cp, 0, RST | ACK);
            return t;
        }
        self.push(t, s, c, 6, sp, cp, 0, SYN | ACK);
        t += self.jitter(rtt / 2);
        self.push(t, c, s, 6, cp, sp, 0, ACK);
        for &(up, down) in exchanges {
            for (from, to, fp, tp, bytes) in [(c, s, cp, sp, up), (s, c, sp, cp, down)] {
                let mut left = bytes;
                while left > 0 {
                    let seg = left.min(MSS);
                    left -= seg;
                    t += self.jitter(50_000);
                    self.push(t, from, to, 6, fp, tp, seg, PSH | ACK);
                }
                if bytes > 0 {
                    t += self.jitter(rtt / 2);
                    self.push(t, to, from, 6, tp, fp, 0, ACK);
                }
            }
            t += self.jitter(rtt);
        }
        if rst_close {
            self.push(t, c, s, 6, cp, sp, 0, RST | ACK);
        } else {
            self.push(t, c, s, 6, cp, sp, 0, FIN | ACK);
            t += self.jitter(rtt / 2);
            self.push(t, s, c, 6, sp, cp, 0, FIN | ACK);
            t += self.jitter(rtt / 2);
            self.push(t, c, s, 6, cp, sp, 0, ACK);
        }
        t
    }

    fn udp(
        &mut self,
        t: u64,
        c: IpAddr,
        cp: u16,
        s: IpAddr,
        sp: u16,
        up: u32,
        down: Option<(u64, u32)>,
    ) {
        self.push(t, c, s, 17, cp, sp, up, 0);
        if let Some((after, bytes)) = down {
            self.push(t + after, s, c, 17, sp, cp, bytes, 0);
        }
    }

    fn dns(&mut self, t: u64, c: IpAddr, resolver: IpAddr, name: &str, answered: bool) {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(u8::try_from(label.len()).unwrap_or(63));
            q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let cp = self.port();
        let len = u32::try_from(q.len()).unwrap_or(0);
        let mut r = Rec {
            ts: t,
            src: c,
            dst: resolver,
            proto: 17,
            sport: cp,
            dport: 53,
            payload: u16::try_from(len).unwrap_or(0),
            flags: 0,
            head: Vec::new(),
        };
        r.head = q;
        self.recs.push(r);
        if answered {
            let after = self.jitter(20 * MS);
            self.push(t + after, resolver, c, 17, 53, cp, len + 16, 0);
        }
    }

    fn name(&mut self, random: bool, len: usize) -> String {
        const WORDS: [&str; 12] = [
            "mail", "www", "cdn", "api", "login", "static", "news", "shop", "img", "docs", "cloud",
            "portal",
        ];
        const TLDS: [&str; 4] = ["com", "net", "org", "de"];
        if random {
            let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
            let label: String =
                (0..len).map(|_| char::from(alphabet[self.rng.below(alphabet.len())])).collect();
            format!("{label}.t{}.example.net", self.rng.below(100))
        } else {
            format!(
                "{}.{}{}.{}",
                WORDS[self.rng.below(WORDS.len())],
                WORDS[self.rng.below(WORDS.len())],
                self.rng.below(100),
                TLDS[self.rng.below(TLDS.len())]
            )
        }
    }

    /// Runs the packets through an engine and labels the flows.
    fn flows(mut self, cfg: &EngineConfig) -> Vec<(FlowEvent, Family)> {
        self.recs.sort_by_key(|r| r.ts);
        let source = SourceInfo {
            interface: "synthetic".into(),
            role: InterfaceRole::Unspecified,
            mode: CaptureMode::Pcap,
        };
        let mut engine = Engine::new(cfg.clone(), vec![source]);
        let mut flows = Vec::new();
        let mut sink = |o: Output| {
            if let Output::Flow(ev) = o
                && !ev.snapshot
            {
                flows.push(*ev);
            }
        };
        for r in &self.recs {
            let (ip_header, l4) = (20u16, if r.proto == 6 { 20u16 } else { 8 });
            let rec = PacketRecord {
                ts_ns: r.ts,
                src: r.src,
                dst: r.dst,
                proto: r.proto,
                src_port: r.sport,
                dst_port: r.dport,
                ip_len: ip_header + l4 + r.payload,
                ip_header_len: ip_header,
                l4_header_len: l4,
                payload_len: r.payload,
                tcp_flags: r.flags,
                tcp_window: if r.proto == 6 { 64_240 } else { 0 },
                payload_head: &r.head,
                source: 0,
            };
            engine.process(&rec, &mut sink);
        }
        engine.flush(&mut sink);
        let labels = self.labels;
        flows
            .into_iter()
            .map(|ev| {
                let v = mld_flow::json::flow_event(&ev);
                let family = [v.src_ip, v.dst_ip]
                    .into_iter()
                    .flatten()
                    .find_map(|ip| labels.get(&ip).copied())
                    .unwrap_or(Family::Benign);
                (ev, family)
            })
            .collect()
    }
}

/// How many instances of each model one run generates.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub benign_sessions: usize,
    pub attacks: usize,
}

impl Default for Counts {
    fn default() -> Self {
        Self { benign_sessions: 30, attacks: 12 }
    }
}

/// Synthetic flows with their families. `shapes` (from benign captures) parameterise the
/// benign sessions; with none, benign web sessions of typical sizes are used.
#[allow(clippy::too_many_lines, reason = "one block per model")]
pub fn generate(
    seed: u64,
    counts: Counts,
    shapes: &[Shape],
    cfg: &EngineConfig,
) -> Vec<(FlowEvent, Family)> {
    let mut rng = Rng::new(seed);
    let mut hosts = 0u32;
    let mut out = Vec::new();
    let t0 = 1_700_000_000 * S;
    for i in 0..counts.attacks.max(counts.benign_sessions) {
        #[allow(clippy::cast_possible_truncation)]
        let base = t0 + (i as u64) * 3600 * S;
        let mut scenes = Vec::new();
        if i < counts.benign_sessions {
            // Benign: an office network's clients, sessions shaped like real benign flows,
            // DNS lookups, and file-server SMB sessions (the look-alike of ransomware).
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let resolver = sc.internal();
            let fileserver = sc.internal();
            for _ in 0..8 {
                let client = sc.internal();
                let mut t = base + sc.rng.below(60) as u64 * S;
                for _ in 0..6 {
                    let shape = if shapes.is_empty() {
                        Shape {
                            proto: 6,
                            dst_port: 443,
                            fwd_bytes: 2_000,
                            bwd_bytes: 60_000,
                            exchanges: 4,
                            duration_ns: 2 * S,
                        }
                    } else {
                        shapes[sc.rng.below(shapes.len())]
                    };
                    let server = sc.external();
                    let name = sc.name(false, 0);
                    sc.dns(t, client, resolver, &name, true);
                    t += 30 * MS;
                    if shape.proto == 17 {
                        let cp = sc.port();
                        for k in 0..shape.exchanges.min(20) {
                            let at = t + u64::from(k)
                                * sc.jitter(shape.duration_ns / u64::from(shape.exchanges) + MS);
                            let up = (shape.fwd_bytes / shape.exchanges).clamp(20, 1400);
                            let down = (shape.bwd_bytes / shape.exchanges).min(1400);
                            sc.udp(
                                at,
                                client,
                                cp,
                                server,
                                shape.dst_port,
                                up,
                                (down > 0).then_some((5 * MS, down)),
                            );
                        }
                    } else {
                        let n = shape.exchanges.clamp(1, 12);
                        let ex: Vec<(u32, u32)> =
                            (0..n).map(|_| (shape.fwd_bytes / n, shape.bwd_bytes / n)).collect();
                        let rtt = sc.jitter(40 * MS);
                        t = sc.tcp(t, client, server, shape.dst_port, &ex, rtt, true, false);
                    }
                    t += sc.jitter(5 * S);
                }
                // A file-server session: mostly reads, some writes, one server.
                let ex: Vec<(u32, u32)> = (0..sc.rng.below(30) + 5)
                    .map(|_| if sc.rng.below(4) == 0 { (65_536, 200) } else { (300, 65_536) })
                    .collect();
                let rtt = sc.jitter(MS);
                sc.tcp(t, client, fileserver, 445, &ex, rtt, true, false);
            }
            scenes.push(sc.flows(cfg));
        }
        if i < counts.attacks {
            // DDoS: a spoofed SYN flood, and UDP reflection.
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let victim = sc.internal();
            sc.labels.insert(victim, Family::Ddos);
            let port = [80, 443, 22, 53][sc.rng.below(4)];
            for k in 0..400u64 {
                let src = sc.external();
                let sp = sc.port();
                let t = base + k * sc.jitter(2 * MS);
                sc.push(t, src, victim, 6, sp, port, 0, SYN);
                if sc.rng.below(2) == 0 {
                    sc.push(t + MS, victim, src, 6, port, sp, 0, SYN | ACK);
                }
            }
            for _ in 0..60 {
                let reflector = sc.external();
                let sp = [53, 123, 161, 1900, 11211, 389][sc.rng.below(6)];
                let dp = sc.port();
                for k in 0..=(sc.rng.below(8) as u64) {
                    let t = base + 2 * S + k * sc.jitter(3 * MS);
                    let len = 400 + sc.rng.below(1000) as u32;
                    sc.udp(t, reflector, sp, victim, dp, len, None);
                }
            }
            scenes.push(sc.flows(cfg));

            // Scan: SYNs to many ports of a few targets; most refused.
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let scanner = sc.internal();
            sc.labels.insert(scanner, Family::Scan);
            let mut t = base;
            for _ in 0..=sc.rng.below(3) {
                let target = sc.internal();
                for p in 1..(200 + sc.rng.below(800) as u16) {
                    let open = matches!(p, 22 | 80 | 443 | 445);
                    let rtt = sc.jitter(MS);
                    sc.tcp(t, scanner, target, p, &[], rtt, open, true);
                    t += sc.jitter(2 * MS);
                }
            }
            scenes.push(sc.flows(cfg));

            // Brute force: many short authenticated sessions to one service.
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let attacker = sc.external();
            sc.labels.insert(attacker, Family::Bruteforce);
            let server = sc.internal();
            let port = [22, 21, 3389, 23][sc.rng.below(4)];
            let mut t = base;
            for _ in 0..(30 + sc.rng.below(50)) {
                let ex: Vec<(u32, u32)> = (0..(4 + sc.rng.below(8)))
                    .map(|_| (60 + sc.rng.below(600) as u32, 60 + sc.rng.below(900) as u32))
                    .collect();
                let rtt = sc.jitter(30 * MS);
                let rst = sc.rng.below(3) == 0;
                t = sc.tcp(t, attacker, server, port, &ex, rtt, true, rst);
                t += sc.jitter(300 * MS);
            }
            scenes.push(sc.flows(cfg));

            // Botnet: C2 beacons at a steady period, and DNS tunnelling.
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let bot = sc.internal();
            sc.labels.insert(bot, Family::Botnet);
            let c2 = sc.external();
            let period = (20 + sc.rng.below(60)) as u64 * S;
            let port = [443, 8080, 4444, 80][sc.rng.below(4)];
            for k in 0..20 {
                let rtt = sc.jitter(80 * MS);
                let up = 100 + sc.rng.below(300) as u32;
                let at = base + k * period + sc.jitter(S);
                sc.tcp(at, bot, c2, port, &[(up, 200)], rtt, true, false);
            }
            let tunneller = sc.internal();
            sc.labels.insert(tunneller, Family::Botnet);
            let resolver = sc.internal();
            for k in 0..(100 + sc.rng.below(200) as u64) {
                let len = 30 + sc.rng.below(30);
                let name = sc.name(true, len);
                let t = base + k * sc.jitter(200 * MS);
                sc.dns(t, tunneller, resolver, &name, true);
            }
            scenes.push(sc.flows(cfg));

            // Web attacks: many requests with payloads to one web server, several refused.
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let attacker = sc.external();
            sc.labels.insert(attacker, Family::Webattack);
            let web = sc.internal();
            let mut t = base;
            for _ in 0..(20 + sc.rng.below(40)) {
                let ex = [(300 + sc.rng.below(2000) as u32, 200 + sc.rng.below(3000) as u32)];
                let rtt = sc.jitter(20 * MS);
                let port = [80, 8080, 443][sc.rng.below(3)];
                t = sc.tcp(t, attacker, web, port, &ex, rtt, true, false);
                t += sc.jitter(100 * MS);
            }
            scenes.push(sc.flows(cfg));

            // Ransomware: one host reads and rewrites files on many SMB servers, fast.
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let infected = sc.internal();
            sc.labels.insert(infected, Family::Ransomware);
            let mut t = base;
            for _ in 0..(4 + sc.rng.below(16)) {
                let server = sc.internal();
                let files = 10 + sc.rng.below(40);
                let ex: Vec<(u32, u32)> = (0..files)
                    .flat_map(|_| {
                        let size = 16_384 * (2 + sc.rng.below(6) as u32);
                        [(300, size), (size + 512, 200)]
                    })
                    .collect();
                let rtt = sc.jitter(MS / 2);
                t = sc.tcp(t, infected, server, 445, &ex, rtt, true, false);
                t += sc.jitter(50 * MS);
            }
            scenes.push(sc.flows(cfg));

            // Lateral movement: one host tries admin services on many internal hosts.
            let mut sc = Scene::new(&mut rng, &mut hosts);
            let mover = sc.internal();
            sc.labels.insert(mover, Family::Lateral);
            let mut t = base;
            for _ in 0..(5 + sc.rng.below(15)) {
                let target = sc.internal();
                for port in [445, 135, 5985, 389, 88] {
                    if sc.rng.below(3) == 0 {
                        continue;
                    }
                    let ex: Vec<(u32, u32)> = (0..(2 + sc.rng.below(10)))
                        .map(|_| (100 + sc.rng.below(1500) as u32, 100 + sc.rng.below(2500) as u32))
                        .collect();
                    let open = sc.rng.below(4) != 0;
                    let rtt = sc.jitter(MS);
                    t = sc.tcp(t, mover, target, port, &ex, rtt, open, false);
                    t += sc.jitter(200 * MS);
                }
            }
            scenes.push(sc.flows(cfg));
        }
        out.extend(scenes.into_iter().flatten());
    }
    out
}
