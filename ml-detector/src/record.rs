//! The JSONL event log's line: a `Detection` flattened into the versioned schema of
//! `docs/EVENT_SCHEMA.md` (the "`RAGLogger`"). `ml-detector analyze` writes the same lines, with the
//! capture file added.

use std::collections::BTreeMap;

use mld_flow::json::{FlowEventJson, flow_event};
use mld_proto::Detection;
use serde::Serialize;

/// The schema version written in every line (`schema_version`). Bump it when a field changes
/// meaning or goes away; adding a field is not a new version.
pub const SCHEMA_VERSION: u32 = 1;

/// Per-detector forest scores.
#[derive(Debug, Serialize)]
pub struct MlScores {
    pub ddos: f64,
    pub ransomware: f64,
    pub traffic: f64,
    pub internal: f64,
}

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
    pub ml_scores: MlScores,
    pub divergence: f64,
    pub model_versions: BTreeMap<&'a str, &'a str>,
    pub top_features: Vec<TopFeature<'a>>,
    /// The flow event, as the sniffer's `--jsonl` writes it.
    #[serde(flatten)]
    pub flow: Option<FlowEventJson<'a>>,
}

/// A wall-clock time as Unix ns (0 before 1970).
pub fn unix_ns(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
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
        ml_scores: MlScores {
            ddos: s.ddos,
            ransomware: s.ransomware,
            traffic: s.traffic,
            internal: s.internal,
        },
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

/// Unix ns as `YYYY-MM-DDTHH:MM:SS.ffffff+0000` (UTC, microseconds: Suricata's EVE form).
pub fn timestamp(ns: u64) -> String {
    let (date, time, micros) = utc(ns);
    format!("{date}T{time}.{micros:06}+0000")
}

/// Unix ns as `YYYYMMDDTHHMMSS.ffffffZ` (file names: sorts by time).
pub fn compact_timestamp(ns: u64) -> String {
    let (date, time, micros) = utc(ns);
    format!("{}T{}.{micros:06}Z", date.replace('-', ""), time.replace(':', ""))
}

/// ("YYYY-MM-DD", "HH:MM:SS", microseconds) in UTC.
fn utc(ns: u64) -> (String, String, u64) {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
        micros,
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (400-year eras of 146,097 days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that the leap day ends each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // 2000-02-29 (a leap day of a century year divisible by 400) 12:34:56.789012.
        let ns = (951_827_696 * 1_000_000_000) + 789_012_345;
        assert_eq!(timestamp(ns), "2000-02-29T12:34:56.789012+0000");
        assert_eq!(compact_timestamp(ns), "20000229T123456.789012Z");
        // 2100 is not a leap year: the day after 2100-02-28 is 2100-03-01.
        assert_eq!(timestamp(4_107_542_400 * 1_000_000_000), "2100-03-01T00:00:00.000000+0000");
        assert_eq!(timestamp(1_795_824_000 * 1_000_000_000), "2026-11-28T00:00:00.000000+0000");
    }

    #[test]
    fn civil_dates_agree_with_day_counting_for_four_centuries() {
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            d += 1;
            if d > len[usize::try_from(m - 1).unwrap_or(0)] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
