//! `ml-detector`: scores `FlowEvents` with four embedded `RandomForests` and publishes Detections on detection.v1.
//!
//! What it will do (issue #4): four embedded `RandomForests` (ddos, ransomware, traffic, internal), the dual score against the fast detector, the JSONL event log and EVE-JSON output, and offline `analyze`/`evaluate`.
//!
//! What it does today: `ml-detector validate --config FILE` checks a config against
//! [`Config`] and reports every problem at once (exit 0 when valid, 64 when not). The binary
//! has no `run` command yet, so it never pretends to work.
#![forbid(unsafe_code)]

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::ml_detector::MlDetectorConfig as Config;

/// The binary's name.
pub const NAME: &str = "ml-detector";

/// One line for `--help`.
pub const ABOUT: &str = "Scores FlowEvents with four embedded RandomForests and publishes Detections on detection.v1 (this build: config validation only; the daemon arrives with issue #4)";
