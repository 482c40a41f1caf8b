//! A `FlowEvent` in, a `Detection` out (DESIGN §4.3): the scores of [`crate::scoring`] with an
//! id, a time, the model versions and, for flagged flows, the features that decided it.

use mld_flow::id::EventIds;
use mld_proto::{Detection, FlowEvent, ModelVersion, Verdict};

use crate::scoring::{Policy, model_versions, score, top_features};

/// Top contributing features kept per flagged detection.
pub const TOP_FEATURES: usize = 3;

/// Turns flow events into detections.
#[derive(Debug)]
pub struct Detector {
    policy: Policy,
    ids: EventIds,
    versions: Vec<ModelVersion>,
}

impl Detector {
    pub fn new(policy: Policy) -> Self {
        Self { policy, ids: EventIds::new(), versions: model_versions() }
    }

    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy (a hot reload); the next flow is scored with the new one.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Scores `flow` at `now_ns` (Unix ns). Top features are computed for SUSPICIOUS and
    /// MALICIOUS verdicts only (from the forest with the highest score); BENIGN detections
    /// carry none.
    pub fn detect(&mut self, flow: FlowEvent, now_ns: u64) -> Detection {
        let (s, x) = score(&flow, &self.policy);
        let top_features = if s.verdict == Verdict::Benign {
            Vec::new()
        } else {
            top_features(&x, s.top_detector(), TOP_FEATURES)
        };
        Detection {
            detection_id: self.ids.next_id(),
            detected_at_ns: now_ns,
            flow: Some(flow),
            scores: Some(s.scores()),
            ml_score: s.ml_score,
            final_score: s.final_score,
            authoritative_source: s.source.into(),
            divergence: s.divergence,
            verdict: s.verdict.into(),
            model_versions: self.versions.clone(),
            top_features,
        }
    }
}

/// Whether a detection is SUSPICIOUS or MALICIOUS.
pub fn flagged(d: &Detection) -> bool {
    matches!(d.verdict(), Verdict::Suspicious | Verdict::Malicious)
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "scores are copied, not computed")]
mod tests {
    use super::*;
    use mld_proto::{FastDetection, ScoreSource};

    #[test]
    fn a_fast_rule_above_the_forests_decides_and_is_named() {
        let mut d = Detector::new(Policy::default());
        let flow = FlowEvent {
            event_id: "e1".into(),
            fast: Some(FastDetection {
                score: 0.9,
                rule_ids: vec!["scan.ports".into()],
                ..FastDetection::default()
            }),
            ..FlowEvent::default()
        };
        let det = d.detect(flow, 42);
        assert_eq!(det.detected_at_ns, 42);
        assert_eq!(det.flow.as_ref().map(|f| f.event_id.as_str()), Some("e1"));
        assert_eq!(det.verdict(), Verdict::Malicious);
        assert!(flagged(&det));
        // An empty flow scores low in every forest, so the fast rule is authoritative.
        assert!(det.ml_score < 0.9, "{}", det.ml_score);
        assert_eq!(det.authoritative_source(), ScoreSource::Fast);
        assert_eq!(det.final_score, 0.9);
        assert_eq!(det.model_versions.len(), 4);
        assert_eq!(det.top_features.len(), det.top_features.len().min(TOP_FEATURES));
        let other = d.detect(FlowEvent::default(), 43);
        assert_ne!(other.detection_id, det.detection_id);
        assert_eq!(other.verdict(), Verdict::Benign);
        assert!(other.top_features.is_empty() && !flagged(&other));
    }
}
