//! `etcd-server`: the embedded etcd v3 API subset.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{MetricsConfig, ValidMetrics};
use crate::{DaemonConfig, FieldError, Validator};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdServerConfig {
    /// gRPC client address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// TLS for clients; `null` serves plain gRPC (loopback only is advised).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Shortest lease TTL granted; shorter requests are raised to it.
    #[serde(default = "default_min_ttl")]
    pub min_lease_ttl_secs: u64,
    /// How often watches created with `progress_notify` get an empty response carrying the
    /// revision they are synced to (etcd's default: 10 minutes).
    #[serde(default = "default_progress")]
    pub watch_progress_notify_interval_ms: u64,
    #[serde(default = "default_metrics")]
    pub metrics: MetricsConfig,
}

impl Default for EtcdServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls: None,
            min_lease_ttl_secs: default_min_ttl(),
            watch_progress_notify_interval_ms: default_progress(),
            metrics: default_metrics(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:2379".into()
}

fn default_min_ttl() -> u64 {
    2
}

fn default_progress() -> u64 {
    600_000
}

fn default_metrics() -> MetricsConfig {
    MetricsConfig::on(9105)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert_file: String,
    /// PEM private key of the server.
    pub key_file: String,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    #[serde(default)]
    pub client_ca_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdServer {
    pub listen: SocketAddr,
    pub tls: Option<ValidTls>,
    pub min_lease_ttl: Duration,
    pub watch_progress_notify_interval: Duration,
    pub metrics: ValidMetrics,
}

impl DaemonConfig for EtcdServerConfig {
    const COMPONENT: &'static str = "etcd-server";
    type Valid = EtcdServer;

    /// etcd-server takes no config from etcd: every field is read at start.
    const LIVE_FIELDS: &'static [&'static str] = &[];

    fn validate(&self) -> Result<EtcdServer, Vec<FieldError>> {
        let mut v = Validator::new();
        let listen =
            v.parse::<SocketAddr>("listen", &self.listen, "host:port such as 127.0.0.1:2379");
        let tls = self.tls.as_ref().map(|t| {
            for (field, value) in [("tls.cert_file", &t.cert_file), ("tls.key_file", &t.key_file)] {
                v.check(!value.is_empty(), field, "\"\"", "must name a PEM file");
            }
            ValidTls {
                cert_file: t.cert_file.clone().into(),
                key_file: t.key_file.clone().into(),
                client_ca_file: t.client_ca_file.clone().map(Into::into),
            }
        });
        let ttl = v.range("min_lease_ttl_secs", self.min_lease_ttl_secs, 1, 3_600);
        let progress = v.range(
            "watch_progress_notify_interval_ms",
            self.watch_progress_notify_interval_ms,
            100,
            86_400_000,
        );
        let metrics = self.metrics.validate(&mut v, "metrics");
        v.finish(|| {
            Some(EtcdServer {
                listen: listen?,
                tls,
                min_lease_ttl: Duration::from_secs(ttl?),
                watch_progress_notify_interval: Duration::from_millis(progress?),
                metrics: metrics?,
            })
        })
    }
}
