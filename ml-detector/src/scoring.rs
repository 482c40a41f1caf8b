//! The dual score (DESIGN §4.3): per-detector probabilities from the forests, the ML score
//! (their maximum), the final score `max(fast, ml)` with the source that set it, their
//! divergence, the verdict from configured thresholds, and the features that pushed the
//! deciding forest's score up.

use ipnet::IpNet;
use mld_flow::vector::{self, LEN};
use mld_proto::{
    DetectorScores, FeatureContribution, FlowEvent, ModelVersion, ScoreSource, Verdict,
    ip_from_bytes,
};

use crate::forests::{ALL, Detector};

/// Verdict thresholds on the final score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// At or above: SUSPICIOUS.
    pub suspicious: f64,
    /// At or above: MALICIOUS.
    pub malicious: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        let c = mld_config::daemons::ml_detector::VerdictConfig::default();
        Self { suspicious: c.suspicious_score, malicious: c.malicious_score }
    }
}

/// What scoring takes from the config: verdict thresholds and the site's own networks.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub thresholds: Thresholds,
    /// The `internal` (lateral movement) forest scores only flows with both ends in these.
    pub internal_nets: Vec<IpNet>,
}

impl Default for Policy {
    fn default() -> Self {
        let internal_nets = mld_config::daemons::sniffer::default_internal_nets()
            .iter()
            .map(|n| n.parse().expect("the default internal networks parse"))
            .collect();
        Self { thresholds: Thresholds::default(), internal_nets }
    }
}

impl Policy {
    /// Whether both ends of `ev`'s flow are inside the site's networks.
    pub fn both_internal(&self, ev: &FlowEvent) -> bool {
        let (a, b) = mld_flow::key::oriented(ev.key.as_ref());
        let inside = |e: Option<&mld_proto::Endpoint>| {
            e.and_then(|e| ip_from_bytes(&e.ip))
                .is_some_and(|ip| self.internal_nets.iter().any(|n| n.contains(&ip)))
        };
        inside(a) && inside(b)
    }
}

/// What the scorer decided about one flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// ddos, ransomware, traffic, internal.
    pub ml: [f64; 4],
    pub ml_score: f64,
    pub fast_score: f64,
    pub final_score: f64,
    pub source: ScoreSource,
    pub divergence: f64,
    pub verdict: Verdict,
}

impl Scored {
    /// The forest with the highest score (the first of equal scores).
    pub fn top_detector(&self) -> usize {
        self.scores().top()
    }

    pub fn scores(&self) -> DetectorScores {
        DetectorScores {
            ddos: self.ml[0],
            ransomware: self.ml[1],
            traffic: self.ml[2],
            internal: self.ml[3],
        }
    }
}

/// Runs the four forests over `x` (their [`mld_forest::Packed`] layout).
pub fn forests(x: &[f32; LEN]) -> [f64; 4] {
    let packed = &*crate::forests::PACKED;
    let mut out = [0.0; 4];
    for ((o, p), d) in out.iter_mut().zip(packed).zip(&ALL) {
        *o = f64::from(mld_forest::calibrate(p.score(x), d.cut));
    }
    out
}

/// [`forests`] walking one tree at a time (the reference; benchmarked side by side).
pub fn forests_tree_by_tree(x: &[f32; LEN]) -> [f64; 4] {
    let mut out = [0.0; 4];
    for (o, d) in out.iter_mut().zip(ALL.iter()) {
        *o = f64::from(mld_forest::calibrate(d.forest.score(x), d.cut));
    }
    out
}

/// The verdict for a final score.
pub fn verdict(final_score: f64, t: &Thresholds) -> Verdict {
    if final_score >= t.malicious {
        Verdict::Malicious
    } else if final_score >= t.suspicious {
        Verdict::Suspicious
    } else {
        Verdict::Benign
    }
}

/// Combines the forests' scores with the fast detector's.
pub fn combine(ml: [f64; 4], fast_score: f64, t: &Thresholds) -> Scored {
    let ml_score = ml.iter().copied().fold(0.0, f64::max);
    let fast_score = fast_score.clamp(0.0, 1.0);
    // Ties go to the fast detector: its reasons are readable.
    let (final_score, source) = if ml_score > fast_score {
        (ml_score, ScoreSource::Ml)
    } else {
        (fast_score, ScoreSource::Fast)
    };
    Scored {
        ml,
        ml_score,
        fast_score,
        final_score,
        source,
        divergence: (fast_score - ml_score).abs(),
        verdict: verdict(final_score, t),
    }
}

/// Index of the `internal` forest in [`ALL`].
pub const INTERNAL: usize = 3;

/// Scores a flow event. The `internal` forest, trained on lateral movement between a site's
/// own hosts, does not apply to a flow with an end outside the site's networks: its score is 0
/// there (on the held-out captures this removed 10 of 14 benign flows it flagged, recall
/// unchanged).
pub fn score(ev: &FlowEvent, p: &Policy) -> (Scored, [f32; LEN]) {
    let x = vector::of_event(ev);
    let fast = ev.fast.as_ref().map_or(0.0, |f| f.score);
    let mut ml = forests(&x);
    if !p.both_internal(ev) {
        ml[INTERNAL] = 0.0;
    }
    (combine(ml, fast, &p.thresholds), x)
}

/// The `k` features that raised detector `d`'s score most for `x` (positive contributions
/// only, largest first).
pub fn top_features(x: &[f32; LEN], d: usize, k: usize) -> Vec<FeatureContribution> {
    let det: &Detector = &ALL[d];
    let mut c = [0.0f32; LEN];
    det.forest.contributions(x, &mut c);
    let mut idx: Vec<usize> = (0..LEN).filter(|&i| c[i] > 0.0).collect();
    idx.sort_by(|&a, &b| c[b].total_cmp(&c[a]).then(a.cmp(&b)));
    idx.into_iter()
        .take(k)
        .map(|i| FeatureContribution {
            feature: vector::NAMES[i].to_owned(),
            value: f64::from(x[i]),
            weight: f64::from(c[i]),
            detector: det.name.to_owned(),
        })
        .collect()
}

/// The versions of the compiled-in models.
pub fn model_versions() -> Vec<ModelVersion> {
    ALL.iter()
        .map(|d| ModelVersion { detector: d.name.to_owned(), version: d.version.to_owned() })
        .collect()
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "scores are copied, not computed")]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { suspicious: 0.5, malicious: 0.8 };

    #[test]
    fn final_score_is_the_max_and_names_its_source() {
        let s = combine([0.1, 0.0, 0.9, 0.2], 0.6, &T);
        assert_eq!((s.ml_score, s.final_score, s.source), (0.9, 0.9, ScoreSource::Ml));
        assert!((s.divergence - 0.3).abs() < 1e-12);
        assert_eq!(s.verdict, Verdict::Malicious);
        assert_eq!(s.top_detector(), 2);
        let s = combine([0.1, 0.0, 0.3, 0.2], 0.6, &T);
        assert_eq!(
            (s.final_score, s.source, s.verdict),
            (0.6, ScoreSource::Fast, Verdict::Suspicious)
        );
        // A tie goes to the fast detector; out-of-range fast scores are clamped.
        assert_eq!(combine([0.7; 4], 0.7, &T).source, ScoreSource::Fast);
        assert_eq!(combine([0.0; 4], 3.0, &T).final_score, 1.0);
    }

    #[test]
    fn the_internal_forest_applies_only_inside_the_site() {
        use mld_proto::{Endpoint, FlowKey};
        let p = Policy::default();
        let flow = |a: [u8; 4], b: [u8; 4]| FlowEvent {
            key: Some(FlowKey {
                a: Some(Endpoint { ip: a.to_vec(), port: 40_000 }),
                b: Some(Endpoint { ip: b.to_vec(), port: 445 }),
                ip_proto: 6,
                initiator: 1,
            }),
            ..FlowEvent::default()
        };
        assert!(p.both_internal(&flow([10, 0, 0, 5], [192, 168, 1, 9])));
        assert!(!p.both_internal(&flow([10, 0, 0, 5], [82, 178, 1, 9])));
        assert!(!p.both_internal(&flow([82, 178, 2, 2], [82, 178, 1, 9])));
        assert!(!p.both_internal(&FlowEvent::default()), "no key, no addresses");
        let outside = flow([82, 178, 2, 2], [82, 178, 1, 9]);
        assert_eq!(score(&outside, &p).0.ml[INTERNAL], 0.0);
        let narrow = Policy { internal_nets: vec!["10.0.0.0/24".parse().unwrap()], ..p };
        assert!(!narrow.both_internal(&flow([10, 0, 0, 5], [192, 168, 1, 9])));
    }

    #[test]
    fn verdict_thresholds_are_inclusive() {
        assert_eq!(verdict(0.4999, &T), Verdict::Benign);
        assert_eq!(verdict(0.5, &T), Verdict::Suspicious);
        assert_eq!(verdict(0.8, &T), Verdict::Malicious);
        let strict = Thresholds { suspicious: 0.9, malicious: 0.95 };
        assert_eq!(verdict(0.8, &strict), Verdict::Benign);
    }

    #[test]
    fn contributions_of_the_compiled_forests_explain_their_scores() {
        // A spoofed SYN: one packet, no reply, port 80, a host flooding at 5,000 pkt/s.
        let mut x = [0.0f32; LEN];
        for (name, v) in [
            ("total_fwd_packets", 1.0),
            ("syn_flag_count", 1.0),
            ("dst_port", 80.0),
            ("ip_proto", 6.0),
            ("fwd_header_bytes", 20.0),
            ("host_packets_last_sec", 5000.0),
        ] {
            x[vector::index(name).unwrap()] = v;
        }
        for (d, det) in ALL.iter().enumerate() {
            let mut c = [0.0f32; LEN];
            let bias = det.forest.contributions(&x, &mut c);
            let sum: f32 = bias + c.iter().sum::<f32>();
            assert!((sum - det.forest.score(&x)).abs() < 1e-4, "{}", det.name);
            for f in top_features(&x, d, 3) {
                assert!(f.weight > 0.0 && f.detector == det.name);
            }
        }
        assert_eq!(model_versions().len(), 4);
    }

    #[test]
    fn the_lock_step_walk_gives_the_reference_scores_bit_for_bit() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2_000 {
            let mut x = [0.0f32; LEN];
            for v in &mut x {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly small counts and zeros, as real features are.
                *v = match state % 4 {
                    0 => 0.0,
                    1 => f32::from(u16::try_from(state >> 48).unwrap_or(0) % 100),
                    _ => f32::from(u16::try_from(state >> 48).unwrap_or(0)),
                };
            }
            let (a, b) = (forests(&x), forests_tree_by_tree(&x));
            assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{x:?}");
        }
    }
}
