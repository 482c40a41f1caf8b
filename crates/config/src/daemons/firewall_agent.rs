//! `firewall-agent`: blocking policy, allowlist, caps and nftables behaviour.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    EtcdConfig, MetricsConfig, PublishConfig, SubscribeConfig, TransportConfig, ValidEtcd,
    ValidMetrics, ValidPublish, ValidSubscribe, ValidTransport, parse_nets,
};
use crate::{DaemonConfig, FieldError, Validator};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirewallAgentConfig {
    #[serde(default = "default_subscribe")]
    pub subscribe: SubscribeConfig,
    /// Where the agent publishes what it did (`FirewallAction`s on `control.v1`, ADR 0003).
    #[serde(default = "default_publish")]
    pub publish: PublishConfig,
    /// Decide and audit, but change nothing in nftables.
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub block: BlockConfig,
    /// Detectors whose detections are logged but never blocked
    /// (`ddos`, `ransomware`, `traffic`, `internal`, `fast`).
    #[serde(default = "default_monitor_only")]
    pub monitor_only: Vec<String>,
    /// Networks never blocked, in CIDR form; the host's own and gateway addresses are added at
    /// start.
    #[serde(default = "default_allowlist")]
    pub allowlist: Vec<String>,
    /// The protected networks, in CIDR form. An address in them is blocked only on a
    /// Detection whose own flow proves the address took part (a TCP connection with payload
    /// both ways): a scan or flood forged with an inside host's address never gets it blocked.
    #[serde(default = "default_internal_nets")]
    pub internal_nets: Vec<String>,
    #[serde(default)]
    pub caps: CapsConfig,
    /// Which rules call for another response than blocking the Detection's source.
    #[serde(default)]
    pub response: ResponseConfig,
    /// Detections arriving within this window are applied in one nftables transaction.
    #[serde(default = "default_batch_window")]
    pub batch_window_ms: u64,
    /// What happens to table `inet mldefender` when the agent stops.
    #[serde(default)]
    pub on_exit: OnExit,
    /// Also allowlist this host's own addresses and its default gateways, read at start.
    #[serde(default = "default_true")]
    pub allowlist_local_addresses: bool,
    /// Where the append-only audit log (`audit.jsonl`, rotated) is kept; blocks are rebuilt
    /// from it at start.
    #[serde(default = "default_audit_dir")]
    pub audit_dir: PathBuf,
    /// The `nft` program.
    #[serde(default = "default_nft")]
    pub nft: PathBuf,
    #[serde(default = "default_metrics")]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub etcd: EtcdConfig,
    #[serde(default)]
    pub transport: TransportConfig,
}

impl Default for FirewallAgentConfig {
    fn default() -> Self {
        Self {
            subscribe: default_subscribe(),
            publish: default_publish(),
            dry_run: false,
            block: BlockConfig::default(),
            monitor_only: default_monitor_only(),
            allowlist: default_allowlist(),
            internal_nets: default_internal_nets(),
            caps: CapsConfig::default(),
            response: ResponseConfig::default(),
            batch_window_ms: default_batch_window(),
            on_exit: OnExit::default(),
            allowlist_local_addresses: true,
            audit_dir: default_audit_dir(),
            nft: default_nft(),
            metrics: default_metrics(),
            etcd: EtcdConfig::default(),
            transport: TransportConfig::default(),
        }
    }
}

fn default_subscribe() -> SubscribeConfig {
    SubscribeConfig::to(5572)
}

fn default_metrics() -> MetricsConfig {
    MetricsConfig::on(9103)
}

fn default_publish() -> PublishConfig {
    PublishConfig::on(5573)
}

const fn default_true() -> bool {
    true
}

fn default_audit_dir() -> PathBuf {
    PathBuf::from("/var/lib/mldefender/firewall-agent")
}

fn default_nft() -> PathBuf {
    PathBuf::from("/usr/sbin/nft")
}

fn default_monitor_only() -> Vec<String> {
    vec!["traffic".into()]
}

fn default_internal_nets() -> Vec<String> {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"]
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn default_allowlist() -> Vec<String> {
    vec!["127.0.0.0/8".into(), "::1/128".into()]
}

fn default_batch_window() -> u64 {
    5
}

/// The detectors a policy can name.
pub const DETECTORS: [&str; 5] = ["ddos", "ransomware", "traffic", "internal", "fast"];

/// When and for how long to block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BlockConfig {
    /// Lowest verdict that blocks: `suspicious` or `malicious`.
    pub min_verdict: MinVerdict,
    /// Lowest final score that blocks.
    pub min_score: f64,
    /// First block of an address.
    pub duration_secs: u64,
    /// Each repeat offence multiplies the duration by this...
    pub repeat_multiplier: f64,
    /// ...up to this.
    pub max_duration_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MinVerdict {
    Suspicious,
    Malicious,
}

impl Default for BlockConfig {
    fn default() -> Self {
        Self {
            min_verdict: MinVerdict::Malicious,
            min_score: 0.8,
            duration_secs: 600,
            repeat_multiplier: 2.0,
            max_duration_secs: 86_400,
        }
    }
}

/// Limits that keep a spoofed flood from exhausting the sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CapsConfig {
    /// New blocks per minute; further detections are audited as rate-capped.
    pub max_new_blocks_per_minute: u32,
    /// Elements per block set (IPv4 and IPv6 each).
    pub max_set_elements: u32,
}

impl Default for CapsConfig {
    fn default() -> Self {
        Self { max_new_blocks_per_minute: 120, max_set_elements: 65_536 }
    }
}

/// The response that fits the attack (see the README's "What a forger can cause").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Victim-side rules: the flow's responder is a service under a flood whose sources may be
    /// forged. The service (address, protocol, port) is protected for `protect_secs` instead of
    /// blocking the source; the source is blocked too only when another rule, or a flow that
    /// proves the source, says so.
    pub protect_rules: Vec<String>,
    /// How a protected TCP service is shielded: `synproxy` (the gateway answers the SYNs with
    /// cookies and only completed handshakes reach the server; needs
    /// `net.netfilter.nf_conntrack_tcp_loose=0`, else the agent falls back to `limit` and says
    /// so) or `limit` (new connections over `limit_packets_per_sec` are dropped).
    pub tcp: TcpProtection,
    /// Packets per second let through to a protected UDP or ICMP service (and to a TCP one
    /// with `tcp: limit`); the excess is dropped.
    pub limit_packets_per_sec: u32,
    /// How long a protection lasts; a Detection while it is in force does not extend it.
    pub protect_secs: u64,
    /// Services protected at once at most; further ones are audited as capped.
    pub max_protected_services: u32,
    /// Rules that find an inside host talking to an outside server (beacons, tunnels,
    /// uploads): the outside server (the flow's responder) is blocked, never a resolver or
    /// any other address in `internal_nets`.
    pub destination_rules: Vec<String>,
    /// Also block (quarantine) the inside host of a destination rule's Detection, when its
    /// flow proves the host took part (TCP payload both ways).
    pub quarantine_internal: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TcpProtection {
    #[default]
    Synproxy,
    Limit,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            protect_rules: vec!["flood.victim".into(), "flood.half_open".into()],
            tcp: TcpProtection::Synproxy,
            limit_packets_per_sec: 1_000,
            protect_secs: 600,
            max_protected_services: 256,
            destination_rules: vec!["beacon".into(), "dns.tunnel".into(), "exfil.upload".into()],
            quarantine_internal: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnExit {
    /// Leave the table and its blocks in place (they still expire by their timeouts).
    #[default]
    Keep,
    /// Delete the table.
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FirewallAgent {
    pub subscribe: ValidSubscribe,
    pub publish: ValidPublish,
    pub dry_run: bool,
    pub min_verdict: MinVerdict,
    pub min_score: f64,
    pub block_duration: Duration,
    pub repeat_multiplier: f64,
    pub max_block_duration: Duration,
    pub monitor_only: Vec<String>,
    pub allowlist: Vec<IpNet>,
    pub internal_nets: Vec<IpNet>,
    pub max_new_blocks_per_minute: u32,
    pub max_set_elements: u32,
    pub response: ValidResponse,
    pub batch_window: Duration,
    pub on_exit: OnExit,
    pub allowlist_local_addresses: bool,
    pub audit_dir: PathBuf,
    pub nft: PathBuf,
    pub metrics: ValidMetrics,
    pub etcd: ValidEtcd,
    pub transport: ValidTransport,
}

/// A validated [`ResponseConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidResponse {
    pub protect_rules: Vec<String>,
    pub tcp: TcpProtection,
    pub limit_packets_per_sec: u32,
    pub protect: Duration,
    pub max_protected_services: u32,
    pub destination_rules: Vec<String>,
    pub quarantine_internal: bool,
}

impl ResponseConfig {
    fn validate(&self, v: &mut Validator) -> Option<ValidResponse> {
        let limit =
            v.range("response.limit_packets_per_sec", self.limit_packets_per_sec, 1, 10_000_000);
        let secs = v.range("response.protect_secs", self.protect_secs, 1, 30 * 86_400);
        let max =
            v.range("response.max_protected_services", self.max_protected_services, 1, 65_536);
        for (field, rules) in
            [("protect_rules", &self.protect_rules), ("destination_rules", &self.destination_rules)]
        {
            for (i, r) in rules.iter().enumerate() {
                v.check(
                    !r.is_empty()
                        && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                    &format!("response.{field}[{i}]"),
                    format!("{r:?}"),
                    "expected a rule id such as flood.half_open (lower case, dots, underscores)",
                );
            }
        }
        for (i, r) in self.destination_rules.iter().enumerate() {
            v.check(
                !self.protect_rules.contains(r),
                &format!("response.destination_rules[{i}]"),
                format!("{r:?}"),
                "is also in protect_rules: a rule has one response",
            );
        }
        Some(ValidResponse {
            protect_rules: self.protect_rules.clone(),
            tcp: self.tcp,
            limit_packets_per_sec: limit?,
            protect: Duration::from_secs(secs?),
            max_protected_services: max?,
            destination_rules: self.destination_rules.clone(),
            quarantine_internal: self.quarantine_internal,
        })
    }
}

impl DaemonConfig for FirewallAgentConfig {
    const COMPONENT: &'static str = "firewall-agent";
    type Valid = FirewallAgent;

    /// The block policy, the allowlist, the per-minute cap, the batch window and `on_exit`
    /// (firewall-agent's `control()`).
    const LIVE_FIELDS: &'static [&'static str] = &[
        "block",
        "monitor_only",
        "allowlist",
        "internal_nets",
        "caps.max_new_blocks_per_minute",
        "response.protect_rules",
        "response.protect_secs",
        "response.max_protected_services",
        "response.destination_rules",
        "response.quarantine_internal",
        "batch_window_ms",
        "on_exit",
    ];

    fn validate(&self) -> Result<FirewallAgent, Vec<FieldError>> {
        let mut v = Validator::new();
        let subscribe = self.subscribe.validate(&mut v, "subscribe");
        let publish = self.publish.validate(&mut v, "publish");
        let b = &self.block;
        let min_score = v.range("block.min_score", b.min_score, 0.0, 1.0);
        let duration = v.range("block.duration_secs", b.duration_secs, 1, 30 * 86_400);
        let mult = v.range("block.repeat_multiplier", b.repeat_multiplier, 1.0, 100.0);
        let max = v.range("block.max_duration_secs", b.max_duration_secs, 1, 365 * 86_400);
        if let (Some(d), Some(m)) = (duration, max) {
            v.check(d <= m, "block.duration_secs", d, "must not exceed max_duration_secs");
        }
        for (i, d) in self.monitor_only.iter().enumerate() {
            v.check(
                DETECTORS.contains(&d.as_str()),
                &format!("monitor_only[{i}]"),
                format!("{d:?}"),
                "expected one of ddos, ransomware, traffic, internal, fast",
            );
        }
        let allowlist = parse_nets(&mut v, "allowlist", &self.allowlist);
        let internal_nets = parse_nets(&mut v, "internal_nets", &self.internal_nets);
        let c = &self.caps;
        let rate =
            v.range("caps.max_new_blocks_per_minute", c.max_new_blocks_per_minute, 1, 1_000_000);
        let size = v.range("caps.max_set_elements", c.max_set_elements, 1, 16_777_216);
        let response = self.response.validate(&mut v);
        let batch = v.range("batch_window_ms", self.batch_window_ms, 0, 1_000);
        for (field, path) in [("audit_dir", &self.audit_dir), ("nft", &self.nft)] {
            v.check(
                !path.as_os_str().is_empty(),
                field,
                format!("{:?}", path.display().to_string()),
                "must name a path",
            );
        }
        let metrics = self.metrics.validate(&mut v, "metrics");
        let etcd = self.etcd.validate(&mut v, "etcd");
        let transport = self.transport.validate(&mut v, "transport");
        v.finish(|| {
            Some(FirewallAgent {
                subscribe: subscribe?,
                publish: publish?,
                dry_run: self.dry_run,
                min_verdict: b.min_verdict,
                min_score: min_score?,
                block_duration: Duration::from_secs(duration?),
                repeat_multiplier: mult?,
                max_block_duration: Duration::from_secs(max?),
                monitor_only: self.monitor_only.clone(),
                allowlist: allowlist.into_iter().collect::<Option<_>>()?,
                internal_nets: internal_nets.into_iter().collect::<Option<_>>()?,
                max_new_blocks_per_minute: rate?,
                max_set_elements: size?,
                response: response?,
                batch_window: Duration::from_millis(batch?),
                on_exit: self.on_exit,
                allowlist_local_addresses: self.allowlist_local_addresses,
                audit_dir: self.audit_dir.clone(),
                nft: self.nft.clone(),
                metrics: metrics?,
                etcd: etcd?,
                transport: transport?,
            })
        })
    }
}
