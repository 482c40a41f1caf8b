//! `sniffer`: capture, flows, host context and the fast detector.

use std::collections::HashSet;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    EtcdConfig, MetricsConfig, PublishConfig, TransportConfig, ValidEtcd, ValidMetrics,
    ValidPublish, ValidTransport, check_id, parse_nets,
};
use crate::{DaemonConfig, FieldError, Validator};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnifferConfig {
    /// Identifies this sensor in events (1-64 of `A-Z a-z 0-9 . _ -`).
    pub sensor_id: String,
    /// Interfaces to capture on: one `host` interface, or `lan` and `wan` interfaces for a
    /// gateway. May be empty when only reading pcap files.
    #[serde(default)]
    pub interfaces: Vec<InterfaceConfig>,
    /// How to attach: `auto` tries XDP native, then XDP generic, then `AF_PACKET`.
    #[serde(default)]
    pub capture: CaptureMode,
    #[serde(default)]
    pub flow_table: FlowTableConfig,
    #[serde(default)]
    pub host_context: HostContextConfig,
    #[serde(default)]
    pub fast_detector: FastDetectorConfig,
    #[serde(default = "default_publish")]
    pub publish: PublishConfig,
    #[serde(default = "default_metrics")]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub etcd: EtcdConfig,
    #[serde(default)]
    pub transport: TransportConfig,
}

fn default_publish() -> PublishConfig {
    PublishConfig::on(5571)
}

fn default_metrics() -> MetricsConfig {
    MetricsConfig::on(9101)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Kernel interface name, e.g. `eth0`.
    pub name: String,
    pub role: InterfaceRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterfaceRole {
    /// Host mode: traffic to and from this machine.
    Host,
    /// Gateway mode: the protected inside network.
    Lan,
    /// Gateway mode: the outside network.
    Wan,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    #[default]
    Auto,
    XdpNative,
    XdpGeneric,
    AfPacket,
}

/// The flow table: fixed capacity, sharded, evictions counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FlowTableConfig {
    /// Flows tracked at once; when full, the oldest flow of a shard is exported early.
    pub capacity: u32,
    /// Number of shards (power of two).
    pub shards: u32,
    /// A flow with no packet for this long ends.
    pub idle_timeout_secs: u64,
    /// A flow older than this is exported and restarted (`CICFlowMeter`'s flow timeout).
    pub active_timeout_secs: u64,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        Self { capacity: 262_144, shards: 16, idle_timeout_secs: 60, active_timeout_secs: 120 }
    }
}

/// Per-source-host context windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HostContextConfig {
    /// Length of the sliding window.
    pub window_secs: u64,
    /// Hosts tracked at once; the least recently seen is forgotten beyond that.
    pub max_hosts: u32,
    /// The site's own networks (CIDR): destinations outside them count as external.
    pub internal_nets: Vec<String>,
}

/// Private, shared, loopback and link-local ranges: a site's networks unless configured.
pub fn default_internal_nets() -> Vec<String> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for HostContextConfig {
    fn default() -> Self {
        Self { window_secs: 30, max_hosts: 65_536, internal_nets: default_internal_nets() }
    }
}

/// Distinct destinations, ports and sources are counted exactly up to this many per host and
/// window; thresholds above it could never be reached.
pub const MAX_DISTINCT: u32 = 1_024;

/// Most ports in `fast_detector.web_ports` (the size of the XDP program's port map).
pub const MAX_WEB_PORTS: usize = 64;

/// Thresholds of the per-host rules, all within one host-context window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FastDetectorConfig {
    /// `scan.ports`: distinct destination ports probed by one host.
    pub scan_distinct_ports: u32,
    /// `scan.hosts`: distinct destination hosts probed by one host: internal ones, and
    /// external ones that have not answered (a packet back that is not a RST).
    pub scan_distinct_hosts: u32,
    /// `smb.spread`: distinct SMB/NetBIOS (445/139) destinations.
    pub smb_distinct_hosts: u32,
    /// `dns.entropy`: mean query-name entropy in bits per character...
    pub dns_entropy_bits: f64,
    /// `dns.length`: mean query-name length in characters (DNS tunnels pack their data into
    /// names near the 253-character limit; a name longer than the captured payload head counts
    /// up to the cut)...
    pub dns_name_length: u32,
    /// ...either over at least this many queries.
    pub dns_min_queries: u32,
    /// `flood.source`: packets one host sends within one second.
    pub flood_packets_per_sec: u32,
    /// `flood.victim`: packets one host receives within one second...
    pub flood_victim_packets_per_sec: u32,
    /// ...from at least this many distinct sources within the window.
    pub flood_victim_min_sources: u32,
    /// `bruteforce`: connections from one host to one login service (address and port), each
    /// within a window of the previous one.
    pub bruteforce_conns: u32,
    /// Ports of login services watched by `bruteforce` (empty: every port). 902 is the
    /// `VMware` authentication daemon.
    pub bruteforce_ports: Vec<u16>,
    /// `web.attack`: HTTP requests whose head carries an obvious attack pattern (SQL
    /// injection, cross-site scripting, path traversal, command or code injection, a JNDI
    /// lookup) sent by one host within the window...
    pub web_attack_requests: u32,
    /// ...to these TCP ports (requests to other ports are not looked at; XDP copies the head
    /// of TCP payloads only to these ports).
    pub web_ports: Vec<u16>,
    /// After a host triggers a rule, it is not reported again for this long.
    pub cooldown_secs: u64,
}

impl Default for FastDetectorConfig {
    fn default() -> Self {
        Self {
            scan_distinct_ports: 50,
            scan_distinct_hosts: 30,
            smb_distinct_hosts: 10,
            dns_entropy_bits: 4.0,
            dns_name_length: 100,
            dns_min_queries: 20,
            flood_packets_per_sec: 5_000,
            flood_victim_packets_per_sec: 5_000,
            flood_victim_min_sources: 50,
            bruteforce_conns: 20,
            bruteforce_ports: vec![
                21, 22, 23, 25, 110, 143, 389, 445, 465, 587, 902, 993, 995, 1433, 3306, 3389,
                5432, 5900,
            ],
            web_attack_requests: 1,
            web_ports: vec![80, 8000, 8008, 8080, 8888],
            cooldown_secs: 300,
        }
    }
}

/// The validated sniffer config.
#[derive(Debug, Clone, PartialEq)]
pub struct Sniffer {
    pub sensor_id: String,
    pub interfaces: Vec<InterfaceConfig>,
    pub capture: CaptureMode,
    pub flow_capacity: u32,
    pub flow_shards: u32,
    pub idle_timeout: Duration,
    pub active_timeout: Duration,
    pub context_window: Duration,
    pub max_hosts: u32,
    pub internal_nets: Vec<ipnet::IpNet>,
    pub fast_detector: FastDetectorConfig,
    pub cooldown: Duration,
    pub publish: ValidPublish,
    pub metrics: ValidMetrics,
    pub etcd: ValidEtcd,
    pub transport: ValidTransport,
}

impl DaemonConfig for SnifferConfig {
    const COMPONENT: &'static str = "sniffer";
    type Valid = Sniffer;

    /// The fast detector's thresholds and cool-down, and the internal networks (sniffer's
    /// `control()`).
    const LIVE_FIELDS: &'static [&'static str] = &["fast_detector", "host_context.internal_nets"];

    fn validate(&self) -> Result<Sniffer, Vec<FieldError>> {
        let mut v = Validator::new();
        let sensor_id = check_id(&mut v, "sensor_id", &self.sensor_id);
        validate_interfaces(&mut v, &self.interfaces);

        let ft = &self.flow_table;
        let capacity = v.range("flow_table.capacity", ft.capacity, 1_024, 64 * 1_048_576);
        let shards = v.range("flow_table.shards", ft.shards, 1, 1_024);
        if let Some(s) = shards {
            v.check(s.is_power_of_two(), "flow_table.shards", s, "must be a power of two");
        }
        let idle = v.range("flow_table.idle_timeout_secs", ft.idle_timeout_secs, 1, 3_600);
        let active = v.range("flow_table.active_timeout_secs", ft.active_timeout_secs, 1, 86_400);
        if let (Some(i), Some(a)) = (idle, active) {
            v.check(
                i <= a,
                "flow_table.idle_timeout_secs",
                i,
                "must not exceed active_timeout_secs",
            );
        }
        let window = v.range("host_context.window_secs", self.host_context.window_secs, 1, 3_600);
        let max_hosts =
            v.range("host_context.max_hosts", self.host_context.max_hosts, 16, 16_777_216);

        let internal_nets =
            parse_nets(&mut v, "host_context.internal_nets", &self.host_context.internal_nets);

        let fd = &self.fast_detector;
        v.range("fast_detector.scan_distinct_ports", fd.scan_distinct_ports, 2, MAX_DISTINCT);
        v.range("fast_detector.scan_distinct_hosts", fd.scan_distinct_hosts, 2, MAX_DISTINCT);
        v.range("fast_detector.smb_distinct_hosts", fd.smb_distinct_hosts, 2, MAX_DISTINCT);
        v.range("fast_detector.dns_entropy_bits", fd.dns_entropy_bits, 0.5, 8.0);
        v.range("fast_detector.dns_name_length", fd.dns_name_length, 4, 253);
        v.range("fast_detector.dns_min_queries", fd.dns_min_queries, 1, 1_000_000);
        v.range("fast_detector.flood_packets_per_sec", fd.flood_packets_per_sec, 10, 100_000_000);
        v.range(
            "fast_detector.flood_victim_packets_per_sec",
            fd.flood_victim_packets_per_sec,
            10,
            100_000_000,
        );
        v.range(
            "fast_detector.flood_victim_min_sources",
            fd.flood_victim_min_sources,
            1,
            MAX_DISTINCT,
        );
        v.range("fast_detector.bruteforce_conns", fd.bruteforce_conns, 2, 1_000_000);
        for (i, port) in fd.bruteforce_ports.iter().enumerate() {
            v.check(
                *port != 0,
                &format!("fast_detector.bruteforce_ports[{i}]"),
                port,
                "must be 1-65535",
            );
        }
        v.range("fast_detector.web_attack_requests", fd.web_attack_requests, 1, 1_000_000);
        v.check(
            fd.web_ports.len() <= MAX_WEB_PORTS,
            "fast_detector.web_ports",
            fd.web_ports.len(),
            &format!("at most {MAX_WEB_PORTS} ports (the XDP program's port map)"),
        );
        for (i, port) in fd.web_ports.iter().enumerate() {
            v.check(*port != 0, &format!("fast_detector.web_ports[{i}]"), port, "must be 1-65535");
        }
        let cooldown = v.range("fast_detector.cooldown_secs", fd.cooldown_secs, 1, 86_400);

        let publish = self.publish.validate(&mut v, "publish");
        let metrics = self.metrics.validate(&mut v, "metrics");
        let etcd = self.etcd.validate(&mut v, "etcd");
        let transport = self.transport.validate(&mut v, "transport");
        v.finish(|| {
            Some(Sniffer {
                sensor_id: sensor_id?,
                interfaces: self.interfaces.clone(),
                capture: self.capture,
                flow_capacity: capacity?,
                flow_shards: shards?,
                idle_timeout: Duration::from_secs(idle?),
                active_timeout: Duration::from_secs(active?),
                context_window: Duration::from_secs(window?),
                max_hosts: max_hosts?,
                internal_nets: internal_nets.into_iter().collect::<Option<_>>()?,
                fast_detector: fd.clone(),
                cooldown: Duration::from_secs(cooldown?),
                publish: publish?,
                metrics: metrics?,
                etcd: etcd?,
                transport: transport?,
            })
        })
    }
}

fn validate_interfaces(v: &mut Validator, interfaces: &[InterfaceConfig]) {
    let mut names = HashSet::new();
    for (i, iface) in interfaces.iter().enumerate() {
        let field = format!("interfaces[{i}].name");
        let n = &iface.name;
        let ok = (1..=15).contains(&n.len())
            && !n.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
        if v.check(
            ok,
            &field,
            format!("{n:?}"),
            "must be a kernel interface name (1-15 characters, no '/', ':' or spaces)",
        ) {
            v.check(names.insert(n.clone()), &field, format!("{n:?}"), "is listed twice");
        }
    }
    let roles: Vec<_> = interfaces.iter().map(|i| i.role).collect();
    let has = |r| roles.contains(&r);
    let gateway = has(InterfaceRole::Lan) && has(InterfaceRole::Wan);
    if roles.is_empty() {
        // pcap-only use
    } else if has(InterfaceRole::Host) {
        if roles.len() > 1 {
            v.error(
                "interfaces",
                format!("{roles:?}"),
                "host mode takes exactly one interface; a gateway uses lan and wan",
            );
        }
    } else if !gateway {
        v.error(
            "interfaces",
            format!("{roles:?}"),
            "gateway mode needs at least one lan and one wan interface",
        );
    }
}
