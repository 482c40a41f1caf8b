use std::fmt::{self, Write};
use std::io;
use std::path::PathBuf;

/// One invalid field: where it is, what it holds and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path, e.g. `publish.send_hwm` or `interfaces[1].name`.
    pub field: String,
    /// The offending value, as JSON-ish text.
    pub value: String,
    /// What is wrong, lowercase, e.g. "must be between 1 and 10000000".
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.field, self.value, self.message)
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    // `error` is not a `#[source]`: its text is part of the message, and a chain printed with
    // `{:#}` would repeat it.
    #[error("{path}:{line}:{column}: invalid config at `{field}`: {error}")]
    Parse { path: PathBuf, field: String, line: usize, column: usize, error: serde_json::Error },
    /// A config given as parsed JSON (a file edited by a command): no line or column.
    #[error("{path}: invalid config at `{field}`: {error}")]
    Value { path: PathBuf, field: String, error: serde_json::Error },
    #[error("{path}: invalid config, {}:{}", plural(errors.len()), list(errors))]
    Invalid { path: PathBuf, errors: Vec<FieldError> },
}

fn plural(n: usize) -> String {
    if n == 1 { "1 error".to_owned() } else { format!("{n} errors") }
}

fn list(errors: &[FieldError]) -> String {
    errors.iter().fold(String::new(), |mut out, e| {
        let _ = write!(out, "\n  {e}");
        out
    })
}
