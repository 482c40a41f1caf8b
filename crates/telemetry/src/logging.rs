use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use crate::TelemetryError;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(Self::Plain),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?}: expected plain or json")),
        }
    }
}

/// Installs the global `tracing` subscriber. `level` is a filter such as `info` or
/// `info,mld_bus=debug`; a non-empty `RUST_LOG` takes precedence.
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => env,
        _ => level.to_owned(),
    };
    let env_filter = EnvFilter::builder()
        .parse(&filter)
        .map_err(|source| TelemetryError::LogFilter { filter: filter.clone(), source })?;
    let builder =
        tracing_subscriber::fmt().with_env_filter(env_filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    result.map_err(|_| TelemetryError::LoggingInitialised)
}
