//! Behaviours (DESIGN §5.2): detections that need more than one packet or one flow and more
//! than the fast rules' short window — slow brute force, slow HTTP denial of service, DNS tunnels and DGA,
//! beacons, half-open floods, SMB lateral movement.
//!
//! Each behaviour is its own module behind [`Behaviour`]: the engine hands it packets, ended
//! flows and clock ticks, and it keeps its own long-window state in bounded maps
//! ([`state::Bounded`]) whose size is set in config and whose evictions are counted. What a
//! behaviour concludes it reports as [`Evidence`] about a host: the engine adds it to that
//! host's episode like a fast rule's hit, so that it is reported once, raises the score of the
//! host's flows and names its counts and windows in the flow's reasons.
//!
//! A hit scores 0.6 (SUSPICIOUS) at its threshold and 1.0 at twice it; MALICIOUS (0.8) takes
//! one and a half times the threshold, so every behaviour's evidence has to keep accumulating
//! past the point where it is first reported before a host is blocked for it.

use std::net::IpAddr;

use ipnet::IpNet;
use mld_config::daemons::sniffer::BehaviourConfig;

use crate::fast::Hit;
use crate::record::PacketRecord;

pub mod auth;
pub mod beacon;
pub mod dnsbehave;
pub mod exfil;
pub mod halfopen;
pub mod level;
pub mod probe;
pub mod slowhttp;
pub mod smb;
pub mod state;
pub mod webscan;

/// Which side of its flows a host's evidence marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The host did it: the flows it opens carry the evidence.
    Actor,
    /// The host is on the far end: the flows opened towards it carry the evidence (the
    /// service under a flood; a beacon's or tunnel's external server).
    Target,
}

/// What a behaviour concluded about one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub host: IpAddr,
    pub role: Role,
    pub hit: Hit,
}

/// One packet, placed in its flow.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub rec: &'a PacketRecord<'a>,
    /// The packet goes from the flow's initiator to its responder.
    pub forward: bool,
    /// The packet opened the flow.
    pub new_flow: bool,
    /// TCP: the packet completed the flow's handshake (the initiator's first ACK after the
    /// responder's SYN+ACK).
    pub handshake_done: bool,
    pub initiator: IpAddr,
    pub responder: IpAddr,
    /// The responder's port (the service).
    pub service_port: u16,
}

/// A flow that ended, as the behaviours see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEnd {
    pub initiator: IpAddr,
    pub responder: IpAddr,
    pub initiator_port: u16,
    pub service_port: u16,
    pub proto: u8,
    pub start_ns: u64,
    pub end_ns: u64,
    pub bwd_packets: u64,
    /// L4 payload bytes from the initiator / from the responder.
    pub fwd_bytes: u64,
    pub bwd_bytes: u64,
    /// TCP: the initiator opened with a SYN, and the responder answered with SYN+ACK.
    pub syn: bool,
    pub syn_ack: bool,
}

/// The behaviours by name, in the order of the `BehaviourLevels` fields (model inputs).
pub const KINDS: [&str; 9] =
    ["login", "web_scan", "dns", "probe", "half_open", "slow_http", "beacon", "exfil", "smb"];

/// How long a measured level stands, seconds of packet time.
pub const LEVEL_HOLD_SECS: u64 = 600;

/// Levels above this are kept at it (a flood's counts reach thousands of thresholds).
pub const LEVEL_MAX: f32 = 100.0;

/// Where one check of a behaviour put a host: `value / threshold` (1.0 fires the rule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    pub host: IpAddr,
    pub role: Role,
    /// Index into [`KINDS`].
    pub kind: usize,
    pub level: f32,
}

/// What a behaviour may look at and where its evidence goes.
#[derive(Debug)]
pub struct Cx<'a> {
    pub now_ns: u64,
    pub internal_nets: &'a [IpNet],
    pub out: &'a mut Vec<Evidence>,
    /// Index into [`KINDS`] of the behaviour at work.
    pub kind: usize,
    pub measures: &'a mut Vec<Measure>,
}

impl Cx<'_> {
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal_nets.iter().any(|n| n.contains(&ip))
    }

    /// Records how far `host` has come towards a threshold, whether or not it is reached.
    #[allow(clippy::cast_possible_truncation, reason = "levels are f32 model inputs")]
    pub fn measure(&mut self, host: IpAddr, role: Role, value: f64, threshold: f64) {
        if threshold <= 0.0 || value <= 0.0 {
            return;
        }
        let level = ((value / threshold) as f32).min(LEVEL_MAX);
        self.measures.push(Measure { host, role, kind: self.kind, level });
    }

    /// Reports a hit (and its level).
    pub fn report(&mut self, host: IpAddr, role: Role, hit: Option<Hit>) {
        if let Some(hit) = hit {
            self.measure(host, role, hit.value, hit.threshold);
            self.out.push(Evidence { host, role, hit });
        }
    }
}

/// How full a behaviour's state is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateStats {
    pub entries: u64,
    pub capacity: u64,
    pub evicted: u64,
}

impl StateStats {
    #[must_use]
    pub fn plus(self, o: Self) -> Self {
        Self {
            entries: self.entries + o.entries,
            capacity: self.capacity + o.capacity,
            evicted: self.evicted + o.evicted,
        }
    }
}

/// One detection behaviour. Every hook has an empty default; a behaviour implements those it
/// needs and returns quickly from packets that are not its business.
pub trait Behaviour: std::fmt::Debug + Send {
    /// Stable name, one of [`KINDS`], used in metrics (`behaviour` label).
    fn name(&self) -> &'static str;
    /// Every packet, after the flow table has accounted it.
    fn on_packet(&mut self, _p: &Packet<'_>, _cx: &mut Cx<'_>) {}
    /// A flow ended, before its event is built (so that its event carries what it concluded).
    fn on_flow_end(&mut self, _f: &FlowEnd, _cx: &mut Cx<'_>) {}
    /// About four times a second of packet time.
    fn on_tick(&mut self, _cx: &mut Cx<'_>) {}
    fn state(&self) -> StateStats;
    /// TCP service ports whose payload heads this behaviour reads (both directions).
    fn head_ports(&self) -> Vec<u16> {
        Vec::new()
    }
}

/// The enabled behaviours of a config, in a fixed order.
pub fn from_config(c: &BehaviourConfig, web_ports: &[u16]) -> Vec<Box<dyn Behaviour>> {
    let cap = c.max_entries as usize;
    let mut v: Vec<Box<dyn Behaviour>> = Vec::new();
    if c.login.enabled {
        v.push(Box::new(auth::LoginFailures::new(&c.login, cap)));
    }
    if c.web_scan.enabled {
        v.push(Box::new(webscan::WebScan::new(&c.web_scan, web_ports, cap)));
    }
    if c.dns.enabled {
        v.push(Box::new(dnsbehave::DnsAbuse::new(&c.dns, cap)));
    }
    if c.probe.enabled {
        v.push(Box::new(probe::Probe::new(&c.probe, cap)));
    }
    if c.half_open.enabled {
        v.push(Box::new(halfopen::HalfOpen::new(&c.half_open, cap)));
    }
    if c.slow_http.enabled {
        v.push(Box::new(slowhttp::SlowHttp::new(&c.slow_http, cap)));
    }
    if c.beacon.enabled {
        v.push(Box::new(beacon::Beacon::new(&c.beacon, cap)));
    }
    if c.exfil.enabled {
        v.push(Box::new(exfil::Exfil::new(&c.exfil, cap)));
    }
    if c.smb.enabled {
        v.push(Box::new(smb::Lateral::new(&c.smb, cap)));
    }
    v
}

/// Each behaviour's index in [`KINDS`].
///
/// # Panics
/// When a behaviour's name is not in [`KINDS`] (a new behaviour needs its level field).
pub fn kinds(behaviours: &[Box<dyn Behaviour>]) -> Vec<usize> {
    behaviours
        .iter()
        .map(|b| {
            KINDS
                .iter()
                .position(|k| *k == b.name())
                .unwrap_or_else(|| panic!("behaviour {} has no field in BehaviourLevels", b.name()))
        })
        .collect()
}

/// A unicast address a host can hold a conversation with: not broadcast, multicast, loopback,
/// link-local or unspecified (an announcement to 255.255.255.255 every minute is not a
/// beacon, and a multicast group is not a server).
pub fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local())
        }
        IpAddr::V6(v6) => {
            !(v6.is_multicast()
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unicast_link_local())
        }
    }
}

/// Rules whose target is a victim (a flooded service): the flows towards it carry them only
/// when the flow did not prove its initiator real (a completed TCP handshake), so that the
/// service's legitimate TCP clients are not scored as its attackers.
/// The other target-side rules (a beacon's, tunnel's or upload's server) mark every flow
/// towards the server.
pub const VICTIM_RULES: [&str; 2] = [crate::fast::rule::FLOOD_VICTIM, halfopen::RULE];

pub const SEC: u64 = 1_000_000_000;
