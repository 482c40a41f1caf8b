//! Daemon configuration: JSON files parsed, validated and turned into typed configs.
//!
//! Design (after Vector's config compiler): every daemon config is a raw serde struct with
//! `deny_unknown_fields` and documented defaults ([`DaemonConfig`]); [`load`] parses it (a
//! syntax or type error names the file, line, column and field path), then
//! [`DaemonConfig::validate`] checks every field and returns *all* problems at once, each naming
//! the field and the offending value, or a typed `Valid` config (socket addresses, durations,
//! networks). Only the typed form is handed to code that touches the OS.
//!
//! All daemon configs live here, not in the daemons, because more than one program needs
//! them: the daemon itself, `rag config set` (validates before writing to etcd), and
//! `cargo xtask schemas` (JSON Schema per daemon in `docs/config/`). [`COMPONENTS`] lists them.
//!
//! What a daemon does is configured here; how the process runs (file paths of secrets and
//! logs, log format) is given by command-line flags.
//!
//! ```
//! use mld_config::{DaemonConfig, daemons::sniffer::SnifferConfig};
//! use std::path::Path;
//!
//! let text = r#"{ "sensor_id": "gw-1", "interfaces": [{ "name": "eth0", "role": "host" }] }"#;
//! let valid = mld_config::parse_str::<SnifferConfig>(text, Path::new("inline.json"))?;
//! assert_eq!(valid.sensor_id, "gw-1");
//! assert_eq!(valid.metrics.listen.map(|a| a.port()), Some(9101));
//!
//! let err = mld_config::parse_str::<SnifferConfig>(r#"{ "sensor_id": "" , "interfaces": [] , "flow_table": { "capacity": 0 } }"#, Path::new("bad.json"))
//!     .unwrap_err();
//! assert!(err.to_string().contains("flow_table.capacity"));
//! # Ok::<(), mld_config::ConfigError>(())
//! ```
#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod common;
pub mod daemons;
mod error;
mod validate;

pub use error::{ConfigError, FieldError};
pub use validate::Validator;

/// A daemon's raw config as written in its JSON file.
pub trait DaemonConfig: DeserializeOwned + Serialize + JsonSchema + Send + Sync + 'static {
    /// Component name, as used in etcd keys and file names (`config/<name>.json`).
    const COMPONENT: &'static str;

    /// The validated, typed form.
    type Valid: Send + Sync + 'static;

    /// The fields the daemon applies while running, as dotted paths into the JSON file; a
    /// path names the field and everything under it (`verdict` covers
    /// `verdict.malicious_score`). A change to any other field takes effect only at restart,
    /// and the control plane refuses it. Empty: nothing changes while running (a program that
    /// reads its file at start and takes no config from etcd).
    const LIVE_FIELDS: &'static [&'static str];

    /// Checks every field; returns all problems at once or the typed config.
    fn validate(&self) -> Result<Self::Valid, Vec<FieldError>>;
}

/// Reads, parses and validates the config file at `path`.
pub fn load<C: DaemonConfig>(path: &Path) -> Result<C::Valid, ConfigError> {
    load_with_raw::<C>(path).map(|(_, valid)| valid)
}

/// As [`load`], also returning the parsed raw config (what the control plane publishes).
pub fn load_with_raw<C: DaemonConfig>(path: &Path) -> Result<(C, C::Valid), ConfigError> {
    let text = fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let raw = parse_raw::<C>(&text, path)?;
    let valid =
        raw.validate().map_err(|errors| ConfigError::Invalid { path: path.to_owned(), errors })?;
    Ok((raw, valid))
}

/// Parses and validates config text; `origin` names it in errors.
pub fn parse_str<C: DaemonConfig>(text: &str, origin: &Path) -> Result<C::Valid, ConfigError> {
    let raw = parse_raw::<C>(text, origin)?;
    raw.validate().map_err(|errors| ConfigError::Invalid { path: origin.to_owned(), errors })
}

/// Parses and validates a config given as parsed JSON (`origin` names it in errors, which
/// carry the field path but no line or column: the text is not the user's). Returns the raw
/// config too.
pub fn parse_value<C: DaemonConfig>(
    value: &serde_json::Value,
    origin: &Path,
) -> Result<(C, C::Valid), ConfigError> {
    let raw: C = serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Value {
        path: origin.to_owned(),
        field: e.path().to_string(),
        error: e.into_inner(),
    })?;
    let valid = raw
        .validate()
        .map_err(|errors| ConfigError::Invalid { path: origin.to_owned(), errors })?;
    Ok((raw, valid))
}

/// A raw config as JSON with every default filled in: the form in which two configs with the
/// same meaning compare equal, and in which changes are listed field by field.
pub fn canonical<C: DaemonConfig>(raw: &C) -> serde_json::Value {
    serde_json::to_value(raw).expect("a config serializes to JSON")
}

/// Parses config text without validating it.
pub fn parse_raw<C: DaemonConfig>(text: &str, origin: &Path) -> Result<C, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: C = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let error = e.into_inner();
        ConfigError::Parse {
            path: origin.to_owned(),
            line: error.line(),
            column: error.column(),
            field,
            error,
        }
    })?;
    de.end().map_err(|error| ConfigError::Parse {
        path: origin.to_owned(),
        line: error.line(),
        column: error.column(),
        field: ".".to_owned(),
        error,
    })?;
    Ok(raw)
}

/// The JSON Schema of a daemon config, pretty-printed with a trailing newline.
pub fn schema_json<C: DaemonConfig>() -> String {
    let schema = schemars::schema_for!(C);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes to JSON");
    text.push('\n');
    text
}

/// One daemon's config, type-erased, for tools that handle every daemon by name.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub name: &'static str,
    /// Its JSON Schema text.
    pub schema: fn() -> String,
    /// Parses and validates config text, discarding the typed result.
    pub check: fn(&str, &Path) -> Result<(), ConfigError>,
    /// Parses and validates a config given as JSON; its [`canonical`] form.
    pub canonical: fn(&serde_json::Value, &Path) -> Result<serde_json::Value, ConfigError>,
    /// [`DaemonConfig::LIVE_FIELDS`].
    pub live_fields: &'static [&'static str],
}

impl Component {
    const fn of<C: DaemonConfig>() -> Self {
        Self {
            name: C::COMPONENT,
            schema: schema_json::<C>,
            check: |text, origin| parse_str::<C>(text, origin).map(drop),
            canonical: |value, origin| {
                parse_value::<C>(value, origin).map(|(raw, _)| canonical(&raw))
            },
            live_fields: C::LIVE_FIELDS,
        }
    }

    /// Finds a component by name.
    pub fn named(name: &str) -> Option<Self> {
        COMPONENTS.iter().copied().find(|c| c.name == name)
    }
}

/// Every daemon config, in pipeline order.
pub const COMPONENTS: [Component; 6] = [
    Component::of::<daemons::sniffer::SnifferConfig>(),
    Component::of::<daemons::ml_detector::MlDetectorConfig>(),
    Component::of::<daemons::firewall_agent::FirewallAgentConfig>(),
    Component::of::<daemons::rag_ingester::RagIngesterConfig>(),
    Component::of::<daemons::rag::RagConfig>(),
    Component::of::<daemons::etcd_server::EtcdServerConfig>(),
];
