//! `ml-detector`: scores `FlowEvent`s with four compiled-in RandomForests (ddos, ransomware,
//! traffic, internal) and the fast detector's result (DESIGN §4.3, §5.3).
//!
//! - [`forests`]: the generated forests (`make train`; model cards in `docs/models/`).
//! - [`scoring`]: per-detector scores, `ml_score`, `final_score = max(fast, ml)`, authoritative
//!   source, divergence, verdict, top contributing features.
//! - [`detection`]: a `FlowEvent` in, a `Detection` out.
//! - [`daemon`]: `ml-detector run`: flow.v1 in, sealed Detections on detection.v1 out, and
//!   [`outputs`] on disk: the JSONL event log ([`record`], `docs/EVENT_SCHEMA.md`), Suricata
//!   EVE-JSON ([`eve`]) and sealed alert [`artifacts`], rotated by `mld_logfile`.
//! - [`offline`]: `ml-detector analyze --pcap FILE... --out FILE` and
//!   `ml-detector evaluate --data DIR`, in-process with the sniffer's flow engine.
//! - [`corpus`]: `ml-detector evaluate --corpus DIR`, the cross-corpus table on traffic of
//!   real tools (`make corpus`) that nothing was tuned on.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod corpus;
pub mod daemon;
pub mod detection;
pub mod eve;
pub mod forests;
pub mod offline;
pub mod outputs;
pub use mld_events as record;
pub mod scoring;
pub mod shed;

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::ml_detector::MlDetectorConfig as Config;

/// The binary's name.
pub const NAME: &str = "ml-detector";

/// One line for `--help`.
pub const ABOUT: &str = "Scores flows from flow.v1 with four embedded RandomForests and the fast detector, publishes sealed Detections on detection.v1 and writes the event log, EVE-JSON and sealed alert artifacts. Also: `ml-detector analyze --help` (score capture files offline), `ml-detector evaluate --help` (measure on the labelled captures), `ml-detector artifact --help` (open sealed artifacts).";
