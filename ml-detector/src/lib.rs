//! `ml-detector`: scores `FlowEvent`s with four compiled-in RandomForests (ddos, ransomware,
//! traffic, internal) and the fast detector's result (DESIGN §4.3, §5.3).
//!
//! - [`forests`]: the generated forests (`make train`; model cards in `docs/models/`).
//! - [`scoring`]: per-detector scores, `ml_score`, `final_score = max(fast, ml)`, authoritative
//!   source, divergence, verdict, top contributing features.
//! - [`offline`]: `ml-detector analyze --pcap FILE... --out FILE` and
//!   `ml-detector evaluate --data DIR`, in-process with the sniffer's flow engine.
//!
//! The bus daemon (`run`: flow.v1 in, detection.v1 out, event log, EVE-JSON) is not built yet;
//! `ml-detector validate --config FILE` checks a config.
#![forbid(unsafe_code)]

pub mod forests;
pub mod offline;
pub mod scoring;

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::ml_detector::MlDetectorConfig as Config;

/// The binary's name.
pub const NAME: &str = "ml-detector";

/// One line for `--help`.
pub const ABOUT: &str = "Scores flows with four embedded RandomForests and the fast detector. Offline: `ml-detector analyze --help`, `ml-detector evaluate --help`. (This build: the bus daemon is not built yet; `validate` checks a config.)";
