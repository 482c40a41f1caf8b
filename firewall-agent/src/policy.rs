//! What to do about a Detection: the block policy from the config, the allowlist, the caps, and
//! the agent's memory of what is blocked, what is protected and who offended before. Pure
//! logic, no I/O: the daemon applies the outcomes to nftables and the audit log.
//!
//! The response follows the rules that fired on the Detection's flow (`response` in the
//! config): a victim-side rule (a flood whose sources may be forged) protects the flooded
//! service instead of blocking the source; a destination rule (an inside host beaconing,
//! tunnelling or uploading to an outside server) blocks the outside server; anything else
//! blocks the source. An inside address is blocked only on a flow that proves it took part.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use mld_config::daemons::firewall_agent::{FirewallAgent, MinVerdict, TcpProtection};
use mld_proto::{Detection, DetectorScores, ScoreSource, Verdict, ip_from_bytes};

const MINUTE_NS: u64 = 60_000_000_000;

/// The block policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub min_verdict: MinVerdict,
    pub min_score: f64,
    pub duration: Duration,
    pub repeat_multiplier: f64,
    pub max_duration: Duration,
    pub monitor_only: Vec<String>,
    /// Configured nets plus, when enabled, the host's own and gateway addresses.
    pub allowlist: Vec<IpNet>,
    /// The protected networks: their addresses are blocked only on proof (see [`proven`]).
    pub internal: Vec<IpNet>,
    pub max_new_blocks_per_minute: u32,
    pub max_set_elements: u32,
    /// Rules whose flows are towards a service under a flood: protect it.
    pub protect_rules: Vec<String>,
    pub protect_duration: Duration,
    pub max_protected_services: u32,
    /// Rules whose flows are towards an outside server an inside host should not talk to.
    pub destination_rules: Vec<String>,
    pub quarantine_internal: bool,
}

impl Rules {
    /// The rules of a validated config, with `local` addresses allowlisted too.
    pub fn new(c: &FirewallAgent, local: &[IpAddr]) -> Self {
        let mut allowlist = c.allowlist.clone();
        allowlist.extend(local.iter().map(|&a| IpNet::from(a)));
        Self {
            min_verdict: c.min_verdict,
            min_score: c.min_score,
            duration: c.block_duration,
            repeat_multiplier: c.repeat_multiplier,
            max_duration: c.max_block_duration,
            monitor_only: c.monitor_only.clone(),
            allowlist,
            internal: c.internal_nets.clone(),
            max_new_blocks_per_minute: c.max_new_blocks_per_minute,
            max_set_elements: c.max_set_elements,
            protect_rules: c.response.protect_rules.clone(),
            protect_duration: c.response.protect,
            max_protected_services: c.response.max_protected_services,
            destination_rules: c.response.destination_rules.clone(),
            quarantine_internal: c.response.quarantine_internal,
        }
    }

    fn internal(&self, addr: IpAddr) -> bool {
        self.internal.iter().any(|n| n.contains(&addr))
    }

    /// Block duration for the `offence`-th block (1 = first): escalated, capped.
    pub fn duration_for(&self, offence: u32) -> Duration {
        let factor =
            self.repeat_multiplier.powi(i32::try_from(offence.max(1) - 1).unwrap_or(i32::MAX));
        let secs = self.duration.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max_duration.as_secs_f64() {
            self.max_duration
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

/// What the agent decided about one Detection.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Below the verdict or score threshold: nothing to do (counted, not audited).
    BelowThreshold,
    /// The Detection names no usable source address.
    NoAddress,
    /// The deciding detector is monitor-only.
    MonitorOnly { addr: IpAddr, detector: String },
    /// The address is allowlisted.
    Allowlisted { addr: IpAddr, net: IpNet },
    /// Loopback, multicast, broadcast, unspecified or link-local: never blocked.
    Special { addr: IpAddr, kind: &'static str },
    /// An inside address on evidence a forger could have produced: not blocked.
    Forgeable { addr: IpAddr },
    /// An outside source on one flow's evidence alone (the forests, no rule over its own
    /// flows) that does not prove the address: not blocked, counted (not audited: a spoofed
    /// flood makes one per forged address).
    Unproven { addr: IpAddr },
    /// Blocked already, until `until_ns`.
    AlreadyBlocked { addr: IpAddr, until_ns: u64 },
    /// Over the new-blocks-per-minute cap.
    RateCapped { addr: IpAddr },
    /// The block set is at its size cap.
    SetFull { addr: IpAddr },
    /// Block it.
    Block(Block),
    /// The source of victim-side evidence only, which a forger can produce with any address:
    /// the service is protected instead.
    SourceSpared { addr: IpAddr },
    /// A destination rule's server is inside (a resolver, a server of ours): never blocked.
    InsideDestination { addr: IpAddr },
    /// Protect the service.
    Protect(Protection),
    /// Protected already, until `until_ns`.
    AlreadyProtected { service: Service, until_ns: u64 },
    /// `response.max_protected_services` services are protected already.
    ProtectCapped { service: Service },
}

/// A service: address, IP protocol and port (0 for protocols without ports, and for all the
/// address's ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Service {
    pub addr: IpAddr,
    pub proto: u8,
    pub port: u16,
}

impl Service {
    /// `tcp`, `udp`, `icmp`, `icmpv6` or the protocol number.
    pub fn proto_name(&self) -> String {
        match self.proto {
            6 => "tcp".into(),
            17 => "udp".into(),
            1 => "icmp".into(),
            58 => "icmpv6".into(),
            p => p.to_string(),
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = match self.addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        match (self.proto, self.port) {
            (6 | 17, 0) => write!(f, "{}/{addr}:*", self.proto_name()),
            (6 | 17, port) => write!(f, "{}/{addr}:{port}", self.proto_name()),
            _ => write!(f, "{}/{addr}", self.proto_name()),
        }
    }
}

/// How a service is shielded in nftables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shield {
    /// TCP through the gateway's SYN proxy.
    Synproxy,
    /// Packets over the per-service rate dropped.
    Limit,
}

impl Shield {
    /// The shield for a service of protocol `proto` under the configured TCP protection, when
    /// the SYN proxy can work (`synproxy_ok`: conntrack does not pick up connections mid-way).
    pub fn for_proto(proto: u8, tcp: TcpProtection, synproxy_ok: bool) -> Self {
        if proto == 6 && tcp == TcpProtection::Synproxy && synproxy_ok {
            Self::Synproxy
        } else {
            Self::Limit
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synproxy => "synproxy",
            Self::Limit => "limit",
        }
    }
}

/// A service protection decided or in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Protection {
    pub service: Service,
    pub until_ns: u64,
    pub duration: Duration,
    pub detection_id: String,
    pub reason: String,
}

/// A block decided or in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub addr: IpAddr,
    pub until_ns: u64,
    pub duration: Duration,
    /// 1 for a first block, 2 for the second...
    pub offence: u32,
    pub detector: String,
    pub detection_id: String,
    pub reason: String,
}

/// The Detection's source: the flow's initiator.
pub fn source(d: &Detection) -> Option<IpAddr> {
    let flow = d.flow.as_ref()?;
    let (src, _) = mld_flow::key::oriented(flow.key.as_ref());
    src.and_then(|e| ip_from_bytes(&e.ip))
}

/// The service the Detection's flow went to: the responder's address, the protocol, and the
/// responder's port for TCP and UDP (0 otherwise).
pub fn service(d: &Detection) -> Option<Service> {
    let flow = d.flow.as_ref()?;
    let key = flow.key.as_ref()?;
    let (_, dst) = mld_flow::key::oriented(Some(key));
    let dst = dst?;
    let proto = u8::try_from(key.ip_proto).ok()?;
    let port = if matches!(proto, 6 | 17) { u16::try_from(dst.port).ok()? } else { 0 };
    Some(Service { addr: ip_from_bytes(&dst.ip)?, proto, port })
}

/// The service under attack named by the victim-side evidence on `d`'s flow: the flow's
/// service, or all the responder's ports of that protocol (port 0) when the evidence is about
/// the whole address.
fn victim(d: &Detection) -> Option<Service> {
    let mut svc = service(d)?;
    let fast = d.flow.as_ref().and_then(|f| f.fast.as_ref());
    if fast.is_some_and(|f| f.victim_all_ports) {
        svc.port = 0;
    }
    Some(svc)
}

/// The fast rules that fired on the Detection's flow.
fn fired(d: &Detection) -> &[String] {
    d.flow.as_ref().and_then(|f| f.fast.as_ref()).map_or(&[], |f| f.rule_ids.as_slice())
}

/// Whether the Detection's own flow proves that its initiator holds its address: a TCP
/// connection over which both sides sent payload. A forged source never sees the replies, so
/// it can open nothing past a SYN (scans, SYN floods) or send datagrams (UDP floods, DNS).
pub fn proven(d: &Detection) -> bool {
    let Some(flow) = d.flow.as_ref() else { return false };
    let tcp = flow.key.as_ref().is_some_and(|k| k.ip_proto == 6);
    tcp && flow.features.as_ref().is_some_and(|f| f.total_fwd_bytes > 0 && f.total_bwd_bytes > 0)
}

/// The detector that set the final score: `fast`, or the forest with the highest score.
pub fn decider(d: &Detection) -> &'static str {
    if d.authoritative_source() == ScoreSource::Fast {
        return "fast";
    }
    DetectorScores::NAMES[d.scores.unwrap_or_default().top()]
}

/// When something lasting `duration` from `now_ns` ends.
fn until(now_ns: u64, duration: Duration) -> u64 {
    now_ns.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

/// Which end of the Detection's flow an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The initiator, blocked.
    Source,
    /// The responder, an outside server, blocked.
    Destination,
    /// The responder's service, protected.
    Victim,
}

/// Why: the verdict, the scores and the rules, and which end of the flow the action is about
/// when it is not the source.
fn explain(d: &Detection, side: Side) -> String {
    let s = d.scores.unwrap_or_default();
    let fast = d.flow.as_ref().and_then(|f| f.fast.as_ref());
    let rules_fired = fast.map(|f| f.rule_ids.join(",")).unwrap_or_default();
    let of = match side {
        Side::Source => "",
        Side::Destination => "server of the flow: ",
        Side::Victim => {
            "service under attack (sources may be forged: none blocked on this evidence): "
        }
    };
    format!(
        "{of}{} final {:.2} by {} (ddos {:.2}, ransomware {:.2}, traffic {:.2}, internal {:.2}, fast {:.2}{}{})",
        d.verdict().as_str_name(),
        d.final_score,
        decider(d),
        s.ddos,
        s.ransomware,
        s.traffic,
        s.internal,
        fast.map_or(0.0, |f| f.score),
        if rules_fired.is_empty() { "" } else { ": " },
        rules_fired,
    )
}

/// Why an address must never be blocked, if it must not.
pub fn special(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) if a.is_loopback() => Some("loopback"),
        IpAddr::V4(a) if a.is_unspecified() => Some("unspecified"),
        IpAddr::V4(a) if a.is_multicast() => Some("multicast"),
        IpAddr::V4(a) if a.is_broadcast() => Some("broadcast"),
        IpAddr::V4(a) if a.is_link_local() => Some("link-local"),
        IpAddr::V6(a) if a.is_loopback() => Some("loopback"),
        IpAddr::V6(a) if a.is_unspecified() => Some("unspecified"),
        IpAddr::V6(a) if a.is_multicast() => Some("multicast"),
        IpAddr::V6(a) if a.is_unicast_link_local() => Some("link-local"),
        _ => None,
    }
}

/// Blocks in force, offence counts and the recent-blocks window.
#[derive(Debug, Default, Clone)]
pub struct State {
    active: HashMap<IpAddr, Block>,
    protected: HashMap<Service, Protection>,
    /// Blocks so far per address, and when the last one ends (forgotten a `max_duration`
    /// after that).
    offences: HashMap<IpAddr, (u32, u64)>,
    /// When each block of the last minute was decided.
    recent: VecDeque<u64>,
}

impl State {
    /// Blocks in force.
    pub fn active(&self) -> impl Iterator<Item = &Block> {
        self.active.values()
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// Protections in force.
    pub fn protected(&self) -> impl Iterator<Item = &Protection> {
        self.protected.values()
    }

    /// Restores a protection from the audit log (at start), if it has not ended.
    pub fn restore_protection(&mut self, p: Protection, now_ns: u64) {
        if p.until_ns > now_ns {
            self.protected.insert(p.service, p);
        }
    }

    /// Forgets a protection that was never applied.
    pub fn undo_protection(&mut self, s: &Service) {
        self.protected.remove(s);
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Restores a block from the audit log (at start): in force if it has not ended.
    pub fn restore(&mut self, b: Block, now_ns: u64) {
        let e = self.offences.entry(b.addr).or_insert((0, 0));
        e.0 = e.0.max(b.offence);
        e.1 = e.1.max(b.until_ns);
        if b.until_ns > now_ns {
            self.active.insert(b.addr, b);
        }
    }

    /// Forgets a block that was never applied (nftables refused it).
    pub fn undo(&mut self, addr: IpAddr) {
        self.active.remove(&addr);
        if let Some(e) = self.offences.get_mut(&addr) {
            e.0 = e.0.saturating_sub(1);
        }
    }

    /// Decides about `d` at `now_ns`: one outcome per response the rules that fired call for
    /// (protect the service, block the outside destination, block the source). `Block` and
    /// `Protect` outcomes are recorded as in force.
    pub fn consider(&mut self, rules: &Rules, d: &Detection, now_ns: u64) -> Vec<Outcome> {
        let verdict_ok = match rules.min_verdict {
            MinVerdict::Suspicious => {
                matches!(d.verdict(), Verdict::Suspicious | Verdict::Malicious)
            }
            MinVerdict::Malicious => d.verdict() == Verdict::Malicious,
        };
        if !verdict_ok || d.final_score < rules.min_score {
            return vec![Outcome::BelowThreshold];
        }
        let Some(addr) = source(d) else { return vec![Outcome::NoAddress] };
        let detector = decider(d);
        if rules.monitor_only.iter().any(|m| m == detector) {
            return vec![Outcome::MonitorOnly { addr, detector: detector.to_owned() }];
        }
        let fired = fired(d);
        let protect = fired.iter().any(|r| rules.protect_rules.contains(r));
        let destination = fired.iter().any(|r| rules.destination_rules.contains(r));
        let other = fired
            .iter()
            .any(|r| !rules.protect_rules.contains(r) && !rules.destination_rules.contains(r));
        let mut out = Vec::new();
        if protect {
            out.push(self.protect(rules, d, now_ns));
        }
        if destination && let Some(svc) = service(d) {
            out.push(if rules.internal(svc.addr) {
                Outcome::InsideDestination { addr: svc.addr }
            } else {
                self.block(rules, d, svc.addr, Side::Destination, now_ns)
            });
        }
        // The source too, unless the only evidence is about the service (forgeable) or about
        // where an inside host went (its quarantine is a policy choice). A source is blocked
        // on a rule over its own flows (`other`), or on a flow that proves its address: a
        // forest's verdict on one SYN or datagram names whatever address a forger wrote.
        let source_too = other
            || (!protect && !destination)
            || (protect && proven(d))
            || (destination && rules.quarantine_internal);
        if source_too {
            if !other && !proven(d) && !rules.internal(addr) && special(addr).is_none() {
                out.push(Outcome::Unproven { addr });
            } else {
                out.push(self.block(rules, d, addr, Side::Source, now_ns));
            }
        } else if protect && !destination {
            out.push(Outcome::SourceSpared { addr });
        }
        out
    }

    /// Protects the service of `d`'s flow, within the cap.
    fn protect(&mut self, rules: &Rules, d: &Detection, now_ns: u64) -> Outcome {
        let Some(service) = victim(d) else { return Outcome::NoAddress };
        if let Some(kind) = special(service.addr) {
            return Outcome::Special { addr: service.addr, kind };
        }
        if let Some(p) = self.protected.get(&service) {
            return Outcome::AlreadyProtected { service, until_ns: p.until_ns };
        }
        if self.protected.len() >= rules.max_protected_services as usize {
            return Outcome::ProtectCapped { service };
        }
        let duration = rules.protect_duration;
        let until_ns = until(now_ns, duration);
        let p = Protection {
            service,
            until_ns,
            duration,
            detection_id: d.detection_id.clone(),
            reason: explain(d, Side::Victim),
        };
        self.protected.insert(service, p.clone());
        Outcome::Protect(p)
    }

    /// Blocks `addr`, the flow's source or destination (`side`), within the caps.
    fn block(
        &mut self,
        rules: &Rules,
        d: &Detection,
        addr: IpAddr,
        side: Side,
        now_ns: u64,
    ) -> Outcome {
        if let Some(kind) = special(addr) {
            return Outcome::Special { addr, kind };
        }
        if let Some(net) = rules.allowlist.iter().find(|n| n.contains(&addr)) {
            return Outcome::Allowlisted { addr, net: *net };
        }
        if rules.internal(addr) && !proven(d) {
            return Outcome::Forgeable { addr };
        }
        if let Some(b) = self.active.get(&addr) {
            return Outcome::AlreadyBlocked { addr, until_ns: b.until_ns };
        }
        while self.recent.front().is_some_and(|&t| t + MINUTE_NS <= now_ns) {
            self.recent.pop_front();
        }
        if self.recent.len() >= rules.max_new_blocks_per_minute as usize {
            return Outcome::RateCapped { addr };
        }
        if self.active.len() >= rules.max_set_elements as usize {
            return Outcome::SetFull { addr };
        }
        let offence = self.offences.get(&addr).map_or(0, |o| o.0) + 1;
        let duration = rules.duration_for(offence);
        let until_ns = until(now_ns, duration);
        self.offences.insert(addr, (offence, until_ns));
        self.recent.push_back(now_ns);
        let b = Block {
            addr,
            until_ns,
            duration,
            offence,
            detector: decider(d).to_owned(),
            detection_id: d.detection_id.clone(),
            reason: explain(d, side),
        };
        self.active.insert(addr, b.clone());
        Outcome::Block(b)
    }

    /// Removes and returns the protections that have ended by `now_ns`.
    pub fn expire_protections(&mut self, now_ns: u64) -> Vec<Protection> {
        let ended: Vec<Service> =
            self.protected.values().filter(|p| p.until_ns <= now_ns).map(|p| p.service).collect();
        ended.iter().filter_map(|s| self.protected.remove(s)).collect()
    }

    /// Removes and returns the blocks that have ended by `now_ns`; forgets offences that ended
    /// more than `rules.max_duration` ago.
    pub fn expire(&mut self, rules: &Rules, now_ns: u64) -> Vec<Block> {
        let ended: Vec<IpAddr> =
            self.active.values().filter(|b| b.until_ns <= now_ns).map(|b| b.addr).collect();
        let out = ended.iter().filter_map(|a| self.active.remove(a)).collect();
        let keep = u64::try_from(rules.max_duration.as_nanos()).unwrap_or(u64::MAX);
        self.offences.retain(|_, (_, until)| until.saturating_add(keep) > now_ns);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use mld_proto::{Endpoint, FastDetection, FlowEvent, FlowKey};

    fn rules() -> Rules {
        Rules {
            min_verdict: MinVerdict::Malicious,
            min_score: 0.8,
            duration: Duration::from_mins(10),
            repeat_multiplier: 2.0,
            max_duration: Duration::from_mins(50),
            monitor_only: vec!["traffic".into()],
            allowlist: vec!["192.168.1.0/24".parse().unwrap()],
            internal: vec!["10.0.0.0/8".parse().unwrap(), "192.168.0.0/16".parse().unwrap()],
            max_new_blocks_per_minute: 3,
            max_set_elements: 4,
            protect_rules: vec!["flood.half_open".into(), "flood.victim".into()],
            protect_duration: Duration::from_mins(10),
            max_protected_services: 2,
            destination_rules: vec!["beacon".into(), "dns.tunnel".into()],
            quarantine_internal: false,
        }
    }

    impl State {
        /// `consider` for a Detection that calls for one response.
        fn consider1(&mut self, r: &Rules, d: &Detection, now_ns: u64) -> Outcome {
            let mut v = self.consider(r, d, now_ns);
            assert_eq!(v.len(), 1, "{v:?}");
            v.remove(0)
        }

        fn consider1_first(&mut self, r: &Rules, d: &Detection, now_ns: u64) -> Outcome {
            self.consider(r, d, now_ns).remove(0)
        }
    }

    fn det(src: [u8; 4], verdict: Verdict, scores: DetectorScores, fast: f64) -> Detection {
        let ml = scores.ddos.max(scores.ransomware).max(scores.traffic).max(scores.internal);
        Detection {
            detection_id: format!("d-{src:?}"),
            flow: Some(FlowEvent {
                key: Some(FlowKey {
                    // The initiator is b: the source must follow the initiator, not the order.
                    a: Some(Endpoint { ip: vec![10, 0, 0, 1], port: 80 }),
                    b: Some(Endpoint { ip: src.to_vec(), port: 40_000 }),
                    ip_proto: 6,
                    initiator: mld_proto::Direction::BToA.into(),
                }),
                fast: Some(FastDetection {
                    score: fast,
                    rule_ids: vec!["scan.ports".into()],
                    ..FastDetection::default()
                }),
                ..FlowEvent::default()
            }),
            scores: Some(scores),
            ml_score: ml,
            final_score: ml.max(fast),
            authoritative_source: if ml > fast { ScoreSource::Ml } else { ScoreSource::Fast }
                .into(),
            verdict: verdict.into(),
            ..Detection::default()
        }
    }

    fn ddos(score: f64) -> DetectorScores {
        DetectorScores { ddos: score, ..DetectorScores::default() }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn an_inside_address_is_blocked_only_on_a_flow_that_proves_it() {
        let (r, mut st) = (rules(), State::default());
        let m = Verdict::Malicious;
        // A forged SYN scan or flood bearing an inside client's address: SYNs, nothing back.
        let forged = det([10, 0, 0, 7], m, ddos(0.95), 0.95);
        assert_eq!(
            st.consider1(&r, &forged, 0),
            Outcome::Forgeable { addr: "10.0.0.7".parse().unwrap() }
        );
        let mut udp = det([10, 0, 0, 7], m, ddos(0.95), 0.95);
        let flow = udp.flow.as_mut().unwrap();
        flow.key.as_mut().unwrap().ip_proto = 17;
        flow.features = Some(mld_proto::FlowFeatures {
            total_fwd_bytes: 900,
            total_bwd_bytes: 900,
            ..mld_proto::FlowFeatures::default()
        });
        assert!(
            matches!(st.consider1(&r, &udp, 0), Outcome::Forgeable { .. }),
            "replies to a forged UDP source go to the real host: no proof"
        );
        // The same host guessing passwords over a connection that carried data both ways.
        let mut real = det([10, 0, 0, 7], m, ddos(0.1), 0.95);
        real.flow.as_mut().unwrap().features = Some(mld_proto::FlowFeatures {
            total_fwd_bytes: 120,
            total_bwd_bytes: 60,
            ..mld_proto::FlowFeatures::default()
        });
        assert!(
            matches!(st.consider1(&r, &real, 0), Outcome::Block(ref b) if b.addr.to_string() == "10.0.0.7")
        );
        // Outside addresses are blocked on any evidence, within the caps.
        assert!(matches!(
            st.consider1(&r, &det([203, 0, 113, 9], m, ddos(0.95), 0.95), 0),
            Outcome::Block(_)
        ));
    }

    /// `det` with the flow going to `dst`:`port` over `proto`, these rules fired, and payload
    /// both ways when `proven`.
    fn flow(
        src: [u8; 4],
        dst: [u8; 4],
        proto: u32,
        port: u32,
        rules_fired: &[&str],
        proven: bool,
    ) -> Detection {
        let mut d = det(src, Verdict::Malicious, ddos(0.9), 0.9);
        let f = d.flow.as_mut().unwrap();
        let k = f.key.as_mut().unwrap();
        k.ip_proto = proto;
        k.a = Some(Endpoint { ip: dst.to_vec(), port });
        f.fast.as_mut().unwrap().rule_ids = rules_fired.iter().map(|&r| r.to_owned()).collect();
        if proven {
            f.features = Some(mld_proto::FlowFeatures {
                total_fwd_bytes: 500,
                total_bwd_bytes: 800,
                ..mld_proto::FlowFeatures::default()
            });
        }
        d
    }

    #[test]
    fn a_flood_from_forged_sources_protects_the_service_and_blocks_no_source() {
        let (r, mut st) = (rules(), State::default());
        let dns = Service { addr: "10.0.0.1".parse().unwrap(), proto: 17, port: 53 };
        // Thousands of sources, one datagram each: the victim-side rule fires on each flow.
        let first = st.consider(
            &r,
            &flow([198, 18, 0, 1], [10, 0, 0, 1], 17, 53, &["flood.half_open"], false),
            S,
        );
        let Outcome::Protect(p) = &first[0] else { panic!("{first:?}") };
        assert_eq!((p.service, p.until_ns), (dns, S + 600 * S));
        assert_eq!(p.service.to_string(), "udp/10.0.0.1:53");
        assert!(
            p.reason.starts_with("service under attack (sources may be forged"),
            "{}",
            p.reason
        );
        assert_eq!(first[1], Outcome::SourceSpared { addr: "198.18.0.1".parse().unwrap() });
        for i in 2..200u8 {
            let o = st.consider(
                &r,
                &flow([198, 18, 0, i], [10, 0, 0, 1], 17, 53, &["flood.half_open"], false),
                2 * S,
            );
            assert_eq!(
                o,
                [
                    Outcome::AlreadyProtected { service: dns, until_ns: 601 * S },
                    Outcome::SourceSpared { addr: IpAddr::from([198, 18, 0, i]) }
                ]
            );
        }
        // The flood's first flows, before the victim-side rule fired: the forests alone on one
        // SYN name whatever address the forger wrote. Not blocked; the same verdict on a flow
        // with payload both ways is.
        let early = flow([198, 18, 9, 9], [10, 0, 0, 1], 6, 80, &[], false);
        assert_eq!(
            st.consider1(&r, &early, 2 * S),
            Outcome::Unproven { addr: "198.18.9.9".parse().unwrap() }
        );
        assert!(st.is_empty(), "no forged source blocked");
        let web = flow([198, 18, 9, 10], [10, 0, 0, 1], 6, 80, &[], true);
        assert!(matches!(st.consider1(&r, &web, 2 * S), Outcome::Block(_)));
        st.undo("198.18.9.10".parse().unwrap());
        // One source flooding on its own is blocked as well (its own rate fired too).
        let o = st.consider(
            &r,
            &flow(
                [203, 0, 113, 67],
                [10, 0, 0, 1],
                6,
                80,
                &["flood.source", "flood.half_open"],
                false,
            ),
            3 * S,
        );
        assert!(
            matches!(&o[..], [Outcome::Protect(p), Outcome::Block(b)]
            if p.service.to_string() == "tcp/10.0.0.1:80" && b.addr.to_string() == "203.0.113.67"),
            "{o:?}"
        );
        // An ICMP flood: the service has no port. A third service is over the cap.
        let o = st.consider1_first(
            &r,
            &flow([198, 18, 1, 1], [10, 0, 0, 2], 1, 0, &["flood.victim"], false),
            4 * S,
        );
        assert_eq!(
            o,
            Outcome::ProtectCapped {
                service: Service { addr: "10.0.0.2".parse().unwrap(), proto: 1, port: 0 }
            }
        );
        // Protections end on time.
        assert_eq!(st.expire_protections(600 * S).len(), 0);
        let ended = st.expire_protections(603 * S);
        assert_eq!(ended.len(), 2);
        assert_eq!(st.protected().count(), 0);
    }

    #[test]
    fn a_beacon_or_tunnel_blocks_the_outside_server_never_the_resolver() {
        let (mut r, mut st) = (rules(), State::default());
        // An inside host's TLS check-ins to an outside server: the server is blocked, the
        // inside host (proven: payload both ways) is not quarantined by default.
        let beacon = flow([10, 0, 0, 7], [203, 0, 113, 50], 6, 443, &["beacon"], true);
        let o = st.consider1(&r, &beacon, S);
        let Outcome::Block(b) = o else { panic!("{o:?}") };
        assert_eq!(b.addr.to_string(), "203.0.113.50");
        assert!(b.reason.starts_with("server of the flow: VERDICT_MALICIOUS"), "{}", b.reason);
        // A tunnel through the site's resolver: the resolver is inside, never blocked.
        let tunnel = flow([10, 0, 0, 8], [10, 0, 0, 53], 17, 53, &["dns.tunnel"], false);
        assert_eq!(
            st.consider1(&r, &tunnel, S),
            Outcome::InsideDestination { addr: "10.0.0.53".parse().unwrap() }
        );
        // With quarantine on, a proven inside host is blocked too; an unproven one is not.
        r.quarantine_internal = true;
        let beacon2 = flow([10, 0, 0, 9], [203, 0, 113, 51], 6, 443, &["beacon"], true);
        let o = st.consider(&r, &beacon2, 2 * S);
        assert!(
            matches!(&o[..], [Outcome::Block(a), Outcome::Block(b)]
            if a.addr.to_string() == "203.0.113.51" && b.addr.to_string() == "10.0.0.9"),
            "{o:?}"
        );
        let o = st.consider(&r, &tunnel, 2 * S);
        assert_eq!(
            o,
            [
                Outcome::InsideDestination { addr: "10.0.0.53".parse().unwrap() },
                Outcome::Forgeable { addr: "10.0.0.8".parse().unwrap() }
            ]
        );
    }

    #[test]
    fn thresholds_allowlist_special_and_monitor_only_come_before_blocking() {
        let (r, mut st) = (rules(), State::default());
        let m = Verdict::Malicious;
        assert_eq!(
            st.consider1(&r, &det([203, 0, 113, 1], Verdict::Suspicious, ddos(0.9), 0.0), 0),
            Outcome::BelowThreshold
        );
        assert_eq!(
            st.consider1(&r, &det([203, 0, 113, 1], m, ddos(0.7), 0.0), 0),
            Outcome::BelowThreshold
        );
        let traffic = DetectorScores { traffic: 0.95, ..DetectorScores::default() };
        assert!(
            matches!(st.consider1(&r, &det([203, 0, 113, 1], m, traffic, 0.0), 0), Outcome::MonitorOnly { ref detector, .. } if detector == "traffic")
        );
        assert!(matches!(
            st.consider1(&r, &det([192, 168, 1, 7], m, ddos(0.9), 0.0), 0),
            Outcome::Allowlisted { .. }
        ));
        for (ip, kind) in [
            ([127, 0, 0, 1], "loopback"),
            ([224, 0, 0, 5], "multicast"),
            ([255, 255, 255, 255], "broadcast"),
            ([0, 0, 0, 0], "unspecified"),
        ] {
            assert_eq!(
                st.consider1(&r, &det(ip, m, ddos(0.9), 0.0), 0),
                Outcome::Special { addr: IpAddr::from(ip), kind }
            );
        }
        assert!(st.is_empty());
        let Outcome::Block(b) = st.consider1(&r, &det([203, 0, 113, 1], m, ddos(0.9), 0.0), 5 * S)
        else {
            panic!()
        };
        assert_eq!(
            (b.addr, b.offence, b.duration, b.until_ns),
            ("203.0.113.1".parse().unwrap(), 1, Duration::from_mins(10), 605 * S)
        );
        assert_eq!(b.detector, "ddos");
        assert!(b.reason.contains("VERDICT_MALICIOUS final 0.90 by ddos"), "{}", b.reason);
        assert!(
            matches!(st.consider1(&r, &det([203, 0, 113, 1], m, ddos(0.9), 0.0), 6 * S), Outcome::AlreadyBlocked { until_ns, .. } if until_ns == 605 * S)
        );
        // A fast decision is filed under `fast`.
        let Outcome::Block(b) = st.consider1(&r, &det([203, 0, 113, 2], m, ddos(0.1), 0.95), 6 * S)
        else {
            panic!()
        };
        assert_eq!(b.detector, "fast");
        assert!(b.reason.ends_with(": scan.ports)"), "{}", b.reason);
    }

    #[test]
    fn repeat_offenders_get_longer_blocks_up_to_the_cap() {
        let (r, mut st) = (rules(), State::default());
        let mut now = 0;
        let mut durations = Vec::new();
        for _ in 0..4 {
            let Outcome::Block(b) =
                st.consider1(&r, &det([198, 51, 100, 9], Verdict::Malicious, ddos(0.99), 0.0), now)
            else {
                panic!()
            };
            durations.push(b.duration.as_secs());
            now = b.until_ns;
            assert_eq!(st.expire(&r, now).len(), 1);
            now += MINUTE_NS;
        }
        assert_eq!(durations, [600, 1200, 2400, 3000]);
        // Forgotten a max_duration after the last block ended: a first offence again.
        st.expire(&r, now + 3001 * S);
        let Outcome::Block(b) = st.consider1(
            &r,
            &det([198, 51, 100, 9], Verdict::Malicious, ddos(0.99), 0.0),
            now + 3001 * S,
        ) else {
            panic!()
        };
        assert_eq!(b.offence, 1);
    }

    #[test]
    fn caps_on_new_blocks_per_minute_and_on_set_size() {
        let (r, mut st) = (rules(), State::default());
        let m = Verdict::Malicious;
        let outcomes: Vec<Outcome> = (1..=5u8)
            .map(|i| st.consider1(&r, &det([203, 0, 113, i], m, ddos(0.9), 0.0), S))
            .collect();
        assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::Block(_))).count(), 3);
        assert!(
            matches!(outcomes[3], Outcome::RateCapped { .. })
                && matches!(outcomes[4], Outcome::RateCapped { .. })
        );
        // A minute later the window has room again, but the set holds at most 4.
        let later = S + MINUTE_NS;
        assert!(matches!(
            st.consider1(&r, &det([203, 0, 113, 4], m, ddos(0.9), 0.0), later),
            Outcome::Block(_)
        ));
        assert!(matches!(
            st.consider1(&r, &det([203, 0, 113, 5], m, ddos(0.9), 0.0), later),
            Outcome::SetFull { .. }
        ));
        // Restored blocks count; ended ones do not come back.
        let mut fresh = State::default();
        let b = |ip: [u8; 4], until_ns| Block {
            addr: IpAddr::from(ip),
            until_ns,
            duration: Duration::from_mins(10),
            offence: 2,
            detector: "ddos".into(),
            detection_id: "x".into(),
            reason: String::new(),
        };
        fresh.restore(b([203, 0, 113, 7], 10 * S), 5 * S);
        fresh.restore(b([203, 0, 113, 8], 4 * S), 5 * S);
        assert_eq!(fresh.len(), 1);
        let Outcome::Block(again) =
            fresh.consider1(&r, &det([203, 0, 113, 8], m, ddos(0.9), 0.0), 5 * S)
        else {
            panic!()
        };
        assert_eq!(again.offence, 3, "offences survive a restart");
    }
}
