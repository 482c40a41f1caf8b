//! `ml-detector`: the four forests, scoring, the event log and EVE output.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    EtcdConfig, MetricsConfig, PublishConfig, SubscribeConfig, TransportConfig, ValidEtcd,
    ValidMetrics, ValidPublish, ValidSubscribe, ValidTransport, parse_nets,
};
use crate::daemons::sniffer::default_internal_nets;
use crate::{DaemonConfig, FieldError, Validator};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MlDetectorConfig {
    #[serde(default = "default_subscribe")]
    pub subscribe: SubscribeConfig,
    #[serde(default = "default_publish")]
    pub publish: PublishConfig,
    #[serde(default)]
    pub verdict: VerdictConfig,
    /// The site's own networks (CIDR), as the sniffer's `host_context.internal_nets`: the
    /// `internal` (lateral movement) forest scores only flows with both ends inside them.
    #[serde(default = "default_internal_nets")]
    pub internal_nets: Vec<String>,
    #[serde(default)]
    pub event_log: EventLogConfig,
    #[serde(default = "default_metrics")]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub etcd: EtcdConfig,
    #[serde(default)]
    pub transport: TransportConfig,
}

impl Default for MlDetectorConfig {
    fn default() -> Self {
        Self {
            subscribe: default_subscribe(),
            publish: default_publish(),
            verdict: VerdictConfig::default(),
            internal_nets: default_internal_nets(),
            event_log: EventLogConfig::default(),
            metrics: default_metrics(),
            etcd: EtcdConfig::default(),
            transport: TransportConfig::default(),
        }
    }
}

fn default_subscribe() -> SubscribeConfig {
    SubscribeConfig::to(5571)
}

fn default_publish() -> PublishConfig {
    PublishConfig::on(5572)
}

fn default_metrics() -> MetricsConfig {
    MetricsConfig::on(9102)
}

/// Verdict thresholds on the final score (max of fast and ML scores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictConfig {
    /// At or above: SUSPICIOUS.
    pub suspicious_score: f64,
    /// At or above: MALICIOUS.
    pub malicious_score: f64,
}

impl Default for VerdictConfig {
    fn default() -> Self {
        Self { suspicious_score: 0.5, malicious_score: 0.8 }
    }
}

/// The JSONL event log (`events.jsonl`, one line per Detection, `docs/EVENT_SCHEMA.md`),
/// Suricata EVE-JSON (`eve.json`: `alert` and `flow` records) and sealed alert artifacts
/// (`alerts.mld`), all under `dir`, each rotated and retained by the same settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EventLogConfig {
    /// The directory the logs and artifacts are written to (created if missing).
    pub dir: PathBuf,
    /// Write `eve.json` (Suricata EVE-JSON `alert` and `flow` records).
    pub eve: bool,
    /// Append a sealed artifact (the whole Detection, `artifact` channel) to `alerts.mld` per
    /// SUSPICIOUS or MALICIOUS detection.
    pub artifacts: bool,
    /// Rotate when the current file reaches this size.
    pub rotate_max_bytes: u64,
    /// Rotate when the current file is this old.
    pub rotate_max_age_secs: u64,
    /// Rotated files kept; older ones are deleted.
    pub retain_files: u32,
    /// `every_line` fsyncs after each line; `interval` every `flush_interval_ms`.
    pub flush: FlushPolicy,
    pub flush_interval_ms: u64,
    /// Overload: once this many flow events in a row were already queued when the daemon
    /// asked for the next (it has fallen behind), the events.jsonl and EVE records of BENIGN
    /// detections are shed (counted in `mld_ml_detector_log_shed_records_total`) until the
    /// queue is empty again. Every flow is still scored and published; SUSPICIOUS and
    /// MALICIOUS records are never shed. 0: never shed.
    pub shed_benign_after: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlushPolicy {
    EveryLine,
    Interval,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/log/mldefender/ml-detector"),
            eve: true,
            artifacts: true,
            rotate_max_bytes: 100 * 1024 * 1024,
            rotate_max_age_secs: 86_400,
            retain_files: 14,
            flush: FlushPolicy::Interval,
            flush_interval_ms: 1_000,
            shed_benign_after: 2_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MlDetector {
    pub subscribe: ValidSubscribe,
    pub publish: ValidPublish,
    pub suspicious_score: f64,
    pub malicious_score: f64,
    pub internal_nets: Vec<ipnet::IpNet>,
    pub event_log: ValidEventLog,
    pub metrics: ValidMetrics,
    pub etcd: ValidEtcd,
    pub transport: ValidTransport,
}

/// The validated event-log settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEventLog {
    pub dir: PathBuf,
    pub eve: bool,
    pub artifacts: bool,
    pub rotate_max_bytes: u64,
    pub rotate_max_age: Duration,
    pub retain_files: u32,
    pub flush: FlushPolicy,
    pub flush_interval: Duration,
    pub shed_benign_after: u32,
}

impl DaemonConfig for MlDetectorConfig {
    const COMPONENT: &'static str = "ml-detector";
    type Valid = MlDetector;

    /// Verdict thresholds and internal networks (ml-detector's `control()`).
    const LIVE_FIELDS: &'static [&'static str] = &["verdict", "internal_nets"];

    fn validate(&self) -> Result<MlDetector, Vec<FieldError>> {
        let mut v = Validator::new();
        let subscribe = self.subscribe.validate(&mut v, "subscribe");
        let publish = self.publish.validate(&mut v, "publish");
        let s = v.range("verdict.suspicious_score", self.verdict.suspicious_score, 0.0, 1.0);
        let m = v.range("verdict.malicious_score", self.verdict.malicious_score, 0.0, 1.0);
        if let (Some(s), Some(m)) = (s, m) {
            v.check(s < m, "verdict.suspicious_score", s, "must be below malicious_score");
        }
        let internal_nets = parse_nets(&mut v, "internal_nets", &self.internal_nets);
        let log = &self.event_log;
        let bytes = v.range("event_log.rotate_max_bytes", log.rotate_max_bytes, 1_048_576, 1 << 40);
        let age =
            v.range("event_log.rotate_max_age_secs", log.rotate_max_age_secs, 60, 30 * 86_400);
        let retain = v.range("event_log.retain_files", log.retain_files, 1, 10_000);
        let interval = v.range("event_log.flush_interval_ms", log.flush_interval_ms, 1, 60_000);
        v.check(
            !log.dir.as_os_str().is_empty(),
            "event_log.dir",
            format!("{:?}", log.dir.display().to_string()),
            "must name a directory",
        );
        let metrics = self.metrics.validate(&mut v, "metrics");
        let etcd = self.etcd.validate(&mut v, "etcd");
        let transport = self.transport.validate(&mut v, "transport");
        v.finish(|| {
            Some(MlDetector {
                subscribe: subscribe?,
                publish: publish?,
                suspicious_score: s?,
                malicious_score: m?,
                internal_nets: internal_nets.into_iter().collect::<Option<_>>()?,
                event_log: ValidEventLog {
                    dir: log.dir.clone(),
                    eve: log.eve,
                    artifacts: log.artifacts,
                    rotate_max_bytes: bytes?,
                    rotate_max_age: Duration::from_secs(age?),
                    retain_files: retain?,
                    flush: log.flush,
                    flush_interval: Duration::from_millis(interval?),
                    shed_benign_after: log.shed_benign_after,
                },
                metrics: metrics?,
                etcd: etcd?,
                transport: transport?,
            })
        })
    }
}
