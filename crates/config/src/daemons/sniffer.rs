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
    #[serde(default)]
    pub behaviours: BehaviourConfig,
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

/// Behaviours (DESIGN §5.2): long-window detections, each with its own state. A behaviour's
/// hit scores 0.6 (SUSPICIOUS) at its threshold and 1.0 at twice it (MALICIOUS from 1.5x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourConfig {
    /// Entries (hosts, pairs, services, domains) each behaviour keeps at most; the least
    /// recently active one makes room and is counted in `/metrics`
    /// (`mld_sniffer_behaviour_evictions_total`).
    pub max_entries: u32,
    pub login: LoginConfig,
    pub web_scan: WebScanConfig,
    pub dns: DnsBehaviourConfig,
    pub probe: ProbeConfig,
    pub half_open: HalfOpenConfig,
    pub slow_http: SlowHttpConfig,
    pub beacon: BeaconConfig,
    pub exfil: ExfilConfig,
    pub smb: SmbConfig,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        Self {
            max_entries: 65_536,
            login: LoginConfig::default(),
            web_scan: WebScanConfig::default(),
            dns: DnsBehaviourConfig::default(),
            probe: ProbeConfig::default(),
            half_open: HalfOpenConfig::default(),
            slow_http: SlowHttpConfig::default(),
            beacon: BeaconConfig::default(),
            exfil: ExfilConfig::default(),
            smb: SmbConfig::default(),
        }
    }
}

/// `login.failures` and `login.sessions`: password guessing, however slow, per source and
/// login service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub enabled: bool,
    /// Evidence is counted over this window.
    pub window_secs: u64,
    /// `login.failures`: failed logins the server said so in clear text (FTP 530, HTTP 401 or
    /// 407, SMTP 535, POP3 -ERR, IMAP NO, telnet "Login incorrect").
    pub failures: u32,
    /// Ports whose server replies are read for failures (XDP copies their payload heads).
    pub reply_ports: Vec<u16>,
    /// `login.sessions`: short sessions to an encrypted login service (SSH, RDP, ...): the
    /// handshake completed and both sides sent data, yet the session lasted less than
    /// `short_session_secs` and moved less than `short_session_bytes`. A successful
    /// interactive session or transfer does not count.
    pub short_sessions: u32,
    pub short_session_secs: u64,
    pub short_session_bytes: u64,
    /// Ports of encrypted login services watched by `login.sessions`.
    pub session_ports: Vec<u16>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 1_800,
            failures: 10,
            reply_ports: vec![21, 23, 25, 80, 110, 143, 587, 8000, 8008, 8080, 8888],
            short_sessions: 8,
            short_session_secs: 30,
            short_session_bytes: 20_000,
            session_ports: vec![22, 3389, 5900, 993, 995, 465, 1433, 3306, 5432, 902],
        }
    }
}

/// `web.scan`: one client drawing error responses (404, 403, 400, 405, 414) from one web
/// server: directory and file enumeration, fuzzing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebScanConfig {
    pub enabled: bool,
    pub window_secs: u64,
    /// Error responses within the window...
    pub errors: u32,
    /// ...that are at least this share of the client's responses from that server.
    pub min_error_share: f64,
}

impl Default for WebScanConfig {
    fn default() -> Self {
        Self { enabled: true, window_secs: 120, errors: 40, min_error_share: 0.5 }
    }
}

/// `dns.dga` and `dns.tunnel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DnsBehaviourConfig {
    pub enabled: bool,
    pub window_secs: u64,
    /// `dns.dga`: distinct registered domains (public-suffix aware) one host asked for that
    /// do not exist (NXDOMAIN).
    pub nxdomain_domains: u32,
    /// `dns.tunnel`: queries under one registered domain that carry data: distinct names
    /// whose longest label has at least `data_label_chars` characters or bytes that are not
    /// printable, or of type TXT, NULL, ANY or PRIVATE.
    pub tunnel_queries: u32,
    pub data_label_chars: u32,
    /// A host answering DNS queries of at least this many clients is a resolver: its own
    /// (forwarded) queries are not counted against it, the clients behind it are.
    pub resolver_min_clients: u32,
}

impl Default for DnsBehaviourConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 600,
            nxdomain_domains: 10,
            tunnel_queries: 50,
            data_label_chars: 24,
            resolver_min_clients: 3,
        }
    }
}

/// `scan.probe`: failed or aborted attempts (refused, unanswered, or dropped by the prober
/// right after the answer) on distinct internal services (address, protocol, port) by one
/// source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    pub enabled: bool,
    pub window_secs: u64,
    pub services: u32,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self { enabled: true, window_secs: 600, services: 20 }
    }
}

/// `flood.half_open`: the packets a service receives and leaves unanswered per second,
/// against the service's own learned rate (an exponential average of calm seconds) and an
/// absolute floor: half-open TCP handshakes, UDP datagrams without a reply, ICMP echo
/// requests. Spoofed and distributed floods are judged at the victim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HalfOpenConfig {
    pub enabled: bool,
    pub syn_per_sec: u32,
    pub udp_per_sec: u32,
    pub icmp_per_sec: u32,
    /// The threshold is at least this many times the learned rate.
    pub baseline_factor: f64,
    /// Weight of each calm second in the learned rate.
    pub baseline_alpha: f64,
    /// A flood from at least this many distinct sources (over a minute) is a verdict about
    /// the victim (`flood.half_open`: its service is protected, spoofed sources are never the
    /// conclusion); from fewer, the sources are named (`flood.few_sources`) and blocked.
    pub min_sources: u32,
}

impl Default for HalfOpenConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            syn_per_sec: 200,
            udp_per_sec: 1_000,
            icmp_per_sec: 500,
            baseline_factor: 4.0,
            baseline_alpha: 0.05,
            min_sources: 8,
        }
    }
}

/// `http.slow`: one client holding many long-lived, nearly silent connections to one web
/// server (slowloris, slow POST, slow read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SlowHttpConfig {
    pub enabled: bool,
    /// Connections open at once, each older than `min_age_secs`...
    pub connections: u32,
    pub min_age_secs: u64,
    /// ...over which the server sent at most this many payload bytes per connection and
    /// second.
    pub max_bytes_per_conn_sec: u32,
    /// Web ports watched.
    pub ports: Vec<u16>,
}

impl Default for SlowHttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            connections: 40,
            min_age_secs: 10,
            max_bytes_per_conn_sec: 2_000,
            ports: vec![80, 443, 8000, 8008, 8080, 8443, 8888],
        }
    }
}

/// `beacon`: an internal host connecting to one external service at regular intervals
/// (command-and-control).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BeaconConfig {
    pub enabled: bool,
    /// Regular connections (starts less than a second apart count once)...
    pub connections: u32,
    /// ...whose intervals vary by at most this coefficient of variation (standard deviation
    /// over mean; uniform jitter of ±50 % gives 0.29)...
    pub max_interval_cv: f64,
    /// ...at a mean interval of at least this many seconds.
    pub min_interval_secs: u64,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        Self { enabled: true, connections: 6, max_interval_cv: 0.35, min_interval_secs: 2 }
    }
}

/// `exfil.upload`: an internal host sending a large volume to one external address while
/// receiving little back (summed over the flows that ended within the window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExfilConfig {
    pub enabled: bool,
    pub window_secs: u64,
    /// Megabytes (10^6 bytes) of L4 payload sent...
    pub upload_mb: u32,
    /// ...at least this many times what came back.
    pub min_ratio: f64,
}

impl Default for ExfilConfig {
    fn default() -> Self {
        Self { enabled: true, window_secs: 3_600, upload_mb: 100, min_ratio: 10.0 }
    }
}

/// `smb.*`: SMB and DCE-RPC lateral movement, from SMB1/SMB2 headers, NTLMSSP and DCE-RPC
/// binds and requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SmbConfig {
    pub enabled: bool,
    /// Account names (case-insensitive, without domain) that are administrators.
    pub admin_accounts: Vec<String>,
    /// `smb.admin_spread`: distinct servers one host logged on to as an administrator or
    /// reached an administrative share of, within `spread_window_secs`.
    pub spread_servers: u32,
    pub spread_window_secs: u64,
    /// `smb.netlogon`: Netlogon authentication calls from one host within a minute
    /// (Zerologon tries thousands).
    pub netlogon_auths: u32,
}

impl Default for SmbConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            admin_accounts: vec!["administrator".into(), "admin".into(), "root".into()],
            spread_servers: 2,
            spread_window_secs: 3_600,
            netlogon_auths: 20,
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
    pub behaviours: BehaviourConfig,
    pub cooldown: Duration,
    pub publish: ValidPublish,
    pub metrics: ValidMetrics,
    pub etcd: ValidEtcd,
    pub transport: ValidTransport,
}

fn validate_ports(v: &mut Validator, field: &str, ports: &[u16]) {
    for (i, port) in ports.iter().enumerate() {
        v.check(*port != 0, &format!("{field}[{i}]"), port, "must be 1-65535");
    }
}

fn validate_behaviours(v: &mut Validator, cfg: &BehaviourConfig, web_ports: &[u16]) {
    v.range("behaviours.max_entries", cfg.max_entries, 16, 16_777_216);
    let login = &cfg.login;
    v.range("behaviours.login.window_secs", login.window_secs, 10, 86_400);
    v.range("behaviours.login.failures", login.failures, 2, 1_000_000);
    v.range("behaviours.login.short_sessions", login.short_sessions, 2, 1_000_000);
    v.range("behaviours.login.short_session_secs", login.short_session_secs, 1, 3_600);
    v.range("behaviours.login.short_session_bytes", login.short_session_bytes, 100, 100_000_000);
    validate_ports(v, "behaviours.login.reply_ports", &login.reply_ports);
    validate_ports(v, "behaviours.login.session_ports", &login.session_ports);
    let web = &cfg.web_scan;
    v.range("behaviours.web_scan.window_secs", web.window_secs, 1, 86_400);
    v.range("behaviours.web_scan.errors", web.errors, 2, 1_000_000);
    v.range("behaviours.web_scan.min_error_share", web.min_error_share, 0.0, 1.0);
    let dns = &cfg.dns;
    v.range("behaviours.dns.window_secs", dns.window_secs, 10, 86_400);
    v.range("behaviours.dns.nxdomain_domains", dns.nxdomain_domains, 2, 1_000_000);
    v.range("behaviours.dns.tunnel_queries", dns.tunnel_queries, 2, 1_000_000);
    v.range("behaviours.dns.data_label_chars", dns.data_label_chars, 8, 63);
    v.range("behaviours.dns.resolver_min_clients", dns.resolver_min_clients, 2, 1_000_000);
    v.range("behaviours.probe.window_secs", cfg.probe.window_secs, 10, 86_400);
    v.range("behaviours.probe.services", cfg.probe.services, 2, 1_000_000);
    let half = &cfg.half_open;
    v.range("behaviours.half_open.syn_per_sec", half.syn_per_sec, 10, 100_000_000);
    v.range("behaviours.half_open.udp_per_sec", half.udp_per_sec, 10, 100_000_000);
    v.range("behaviours.half_open.icmp_per_sec", half.icmp_per_sec, 10, 100_000_000);
    v.range("behaviours.half_open.baseline_factor", half.baseline_factor, 1.0, 1_000.0);
    v.range("behaviours.half_open.baseline_alpha", half.baseline_alpha, 0.0001, 1.0);
    v.range("behaviours.half_open.min_sources", half.min_sources, 1, 1_000_000);
    let slow = &cfg.slow_http;
    v.range("behaviours.slow_http.connections", slow.connections, 2, 1_000_000);
    v.range("behaviours.slow_http.min_age_secs", slow.min_age_secs, 1, 3_600);
    validate_ports(v, "behaviours.slow_http.ports", &slow.ports);
    let beacon = &cfg.beacon;
    v.range("behaviours.beacon.connections", beacon.connections, 3, 32);
    v.range("behaviours.beacon.max_interval_cv", beacon.max_interval_cv, 0.0, 2.0);
    v.range("behaviours.beacon.min_interval_secs", beacon.min_interval_secs, 1, 86_400);
    v.range("behaviours.exfil.window_secs", cfg.exfil.window_secs, 10, 86_400);
    v.range("behaviours.exfil.upload_mb", cfg.exfil.upload_mb, 1, 1_000_000);
    v.range("behaviours.exfil.min_ratio", cfg.exfil.min_ratio, 1.0, 1_000_000.0);
    v.range("behaviours.smb.netlogon_auths", cfg.smb.netlogon_auths, 2, 1_000_000);
    v.range("behaviours.smb.spread_servers", cfg.smb.spread_servers, 2, 1_024);
    v.range("behaviours.smb.spread_window_secs", cfg.smb.spread_window_secs, 10, 86_400);
    // The XDP program copies payload heads of TCP packets from and to these ports.
    let mut heads: Vec<u16> = web_ports.to_vec();
    heads.extend(&cfg.login.reply_ports);
    heads.extend(BEHAVIOUR_HEAD_PORTS);
    heads.sort_unstable();
    heads.dedup();
    v.check(
        heads.len() <= MAX_WEB_PORTS,
        "behaviours.login.reply_ports",
        heads.len(),
        &format!("with fast_detector.web_ports and the SMB/DCE-RPC ports, at most {MAX_WEB_PORTS} ports whose payload heads are read (the XDP program's port map)"),
    );
}

/// TCP ports whose payload heads the behaviours always read: SMB, `NetBIOS`, DCE-RPC.
pub const BEHAVIOUR_HEAD_PORTS: [u16; 3] = [445, 139, 135];

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
        validate_behaviours(&mut v, &self.behaviours, &fd.web_ports);

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
                behaviours: self.behaviours.clone(),
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
