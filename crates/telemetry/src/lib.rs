//! Observability shared by every daemon: logs, metrics, readiness.
//!
//! - [`init_logging`]: `tracing` to stderr, plain text or one JSON object per line; the level
//!   comes from a flag and may be refined with `RUST_LOG`.
//! - [`component_registry`]: a Prometheus registry per component whose metrics are all named
//!   `mld_<component>_<what>_<unit>[_total]` (no global registry).
//! - [`serve`]: an HTTP endpoint with `GET /metrics` (`OpenMetrics` text) and `GET /ready`
//!   (200 once the daemon says it is ready, 503 before and while draining).
//! - [`RateLimit`]: for warnings that could repeat per message; logs the first, then at most
//!   one per period with the number suppressed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mld_telemetry::TelemetryError> {
//! use std::sync::Arc;
//! use prometheus_client::metrics::counter::Counter;
//!
//! let mut registry = mld_telemetry::component_registry("sniffer");
//! let packets = Counter::<u64>::default();
//! registry.register("packets", "Packets seen", packets.clone()); // mld_sniffer_packets_total
//! let ready = mld_telemetry::Readiness::default();
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let server = mld_telemetry::serve("127.0.0.1:9101".parse().unwrap(), Arc::new(registry), ready.clone(), shutdown).await?;
//! ready.set(true);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod http;
mod logging;
mod ratelimit;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use http::{MetricsServer, serve};
pub use logging::{LogFormat, init_logging};
pub use prometheus_client;
pub use ratelimit::RateLimit;

use prometheus_client::registry::Registry;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}")]
    LogFilter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("logging was already initialised")]
    LoggingInitialised,
    #[error("cannot listen for metrics on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A registry whose metric names all start with `mld_<component>_` (dashes become
/// underscores).
pub fn component_registry(component: &str) -> Registry {
    Registry::with_prefix(format!("mld_{}", component.replace('-', "_")))
}

/// Whether the daemon is ready to do its work; drives `GET /ready`.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Renders a registry in the `OpenMetrics` text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}
