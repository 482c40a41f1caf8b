//! The JSONL event log's line: a `Detection` flattened into the versioned schema of
//! `docs/EVENT_SCHEMA.md` (the "`RAGLogger`"). `ml-detector analyze` writes the same lines, with the
//! capture file added.

use std::collections::BTreeMap;

use mld_flow::json::{FlowEventJson, flow_event};
use mld_proto::{Detection, DetectorScores};
use serde::Serialize;

pub use mld_logfile::time::{compact_timestamp, timestamp, unix_ns};

/// The schema version written in every line (`schema_version`). Bump it when a field changes
/// meaning or goes away; adding a field is not a new version.
pub const SCHEMA_VERSION: u32 = 1;

/// One contributing feature.
#[derive(Debug, Serialize)]
pub struct TopFeature<'a> {
    pub detector: &'a str,
    pub feature: &'a str,
    pub value: f64,
    pub weight: f64,
}

/// One line of the event log.
#[derive(Debug, Serialize)]
pub struct EventLine<'a> {
    pub schema_version: u32,
    pub detection_id: &'a str,
    /// Unix seconds.
    pub detected_at: f64,
    /// The capture file (`analyze` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a str>,
    pub verdict: &'static str,
    pub final_score: f64,
    pub authoritative: &'static str,
    pub fast_score: f64,
    pub fast_rules: &'a [String],
    pub ml_score: f64,
    /// Per-detector forest scores (`ddos`, `ransomware`, `traffic`, `internal`).
    pub ml_scores: DetectorScores,
    pub divergence: f64,
    pub model_versions: BTreeMap<&'a str, &'a str>,
    pub top_features: Vec<TopFeature<'a>>,
    /// The flow event, as the sniffer's `--jsonl` writes it.
    #[serde(flatten)]
    pub flow: Option<FlowEventJson<'a>>,
}

/// Unix ns to Unix seconds.
#[allow(clippy::cast_precision_loss, reason = "µs precision is what JSON consumers get")]
pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The event-log form of `d`.
pub fn event_line<'a>(d: &'a Detection, file: Option<&'a str>) -> EventLine<'a> {
    let flow = d.flow.as_ref();
    let fast = flow.and_then(|f| f.fast.as_ref());
    let s = d.scores.unwrap_or_default();
    EventLine {
        schema_version: SCHEMA_VERSION,
        detection_id: &d.detection_id,
        detected_at: secs(d.detected_at_ns),
        file,
        verdict: d.verdict().as_str_name(),
        final_score: d.final_score,
        authoritative: d.authoritative_source().as_str_name(),
        fast_score: fast.map_or(0.0, |f| f.score.clamp(0.0, 1.0)),
        fast_rules: fast.map_or(&[], |f| &f.rule_ids),
        ml_score: d.ml_score,
        ml_scores: s,
        divergence: d.divergence,
        model_versions: d
            .model_versions
            .iter()
            .map(|m| (m.detector.as_str(), m.version.as_str()))
            .collect(),
        top_features: d
            .top_features
            .iter()
            .map(|f| TopFeature {
                detector: &f.detector,
                feature: &f.feature,
                value: f.value,
                weight: f.weight,
            })
            .collect(),
        flow: flow.map(flow_event),
    }
}

/// `d` as one JSON line (with the newline) appended to `out`.
pub fn write_line(d: &Detection, file: Option<&str>, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, &event_line(d, file))
        .expect("serialising to a Vec cannot fail, and every key is a string");
    out.push(b'\n');
}
