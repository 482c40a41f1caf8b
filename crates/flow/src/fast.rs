//! The fast detector (DESIGN §5.2): explainable per-host rules over the host context, with
//! thresholds from config, reported once per host and episode.
//!
//! A rule "fires" when its measure reaches its threshold at an evaluation point (a new flow,
//! a DNS query, a packet-rate crossing). The first firing opens an episode for the host and
//! produces one [`FastAlert`] per rule; while rules keep firing within the cool-down the
//! episode stays open and nothing is reported again. Every flow exported while its host's
//! episode is open carries the episode's score, rule ids and reasons.

use std::net::IpAddr;

use mld_proto::FastDetection;

/// Stable rule identifiers.
pub mod rule {
    pub const SCAN_PORTS: &str = "scan.ports";
    pub const SCAN_HOSTS: &str = "scan.hosts";
    pub const SMB_SPREAD: &str = "smb.spread";
    pub const FLOOD_SOURCE: &str = "flood.source";
    pub const FLOOD_VICTIM: &str = "flood.victim";
    pub const BRUTEFORCE: &str = "bruteforce";
    pub const WEB_ATTACK: &str = "web.attack";
    /// Every rule, in a fixed order.
    pub const ALL: [&str; 7] =
        [SCAN_PORTS, SCAN_HOSTS, SMB_SPREAD, FLOOD_SOURCE, FLOOD_VICTIM, BRUTEFORCE, WEB_ATTACK];
}

/// One rule's measure against its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rule: &'static str,
    pub value: f64,
    pub threshold: f64,
    pub reason: String,
    /// The hit is about the host as the target (a flood's victim, a tunnel's or beacon's
    /// server): flows towards the host carry it, not the flows the host opens.
    pub target: bool,
    /// The service it is about, when only flows to that service should carry it: IP
    /// protocol and port (0: every port of the protocol).
    pub service: Option<(u8, u16)>,
}

impl Hit {
    /// 0.6 at the threshold, rising linearly to 1.0 at twice the threshold.
    pub fn score(&self) -> f64 {
        if self.threshold <= 0.0 {
            return 1.0;
        }
        (0.6 + 0.4 * (self.value / self.threshold - 1.0)).clamp(0.6, 1.0)
    }
}

/// Whether a per-second count that has just grown to `count` should be evaluated against
/// `threshold`: at the threshold and at every further quarter of it up to twice the threshold,
/// so that a rate rule's score climbs with the rate (0.6, 0.7, … 1.0) instead of staying at the
/// 0.6 of the crossing, while a flood costs at most five evaluations per host and second.
pub fn rate_step(count: u32, threshold: u32) -> bool {
    let step = (threshold / 4).max(1);
    count >= threshold
        && count <= threshold.saturating_mul(2)
        && (count - threshold).is_multiple_of(step)
}

/// Reported once per host, rule and episode.
#[derive(Debug, Clone, PartialEq)]
pub struct FastAlert {
    pub ts_ns: u64,
    pub host: IpAddr,
    pub rule: &'static str,
    pub score: f64,
    pub reason: String,
}

/// The rules a host triggered since its episode opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub opened_ns: u64,
    pub last_fired_ns: u64,
    pub hits: Vec<(Hit, f64)>,
    /// The episode's score in whole tenths when a flow of the host was last exported early
    /// for it (0: never).
    pub exported_tenths: u32,
}

impl Episode {
    pub fn is_open(&self, now_ns: u64, cooldown_ns: u64) -> bool {
        now_ns.saturating_sub(self.last_fired_ns) <= cooldown_ns
    }

    /// Records `hit`; returns it as an alert when the rule is new in this episode.
    fn record(&mut self, hit: Hit, now_ns: u64, host: IpAddr) -> Option<FastAlert> {
        self.last_fired_ns = self.last_fired_ns.max(now_ns);
        let score = hit.score();
        if let Some((old, best)) = self
            .hits
            .iter_mut()
            .find(|(h, _)| h.rule == hit.rule && h.target == hit.target && h.service == hit.service)
        {
            if score > *best {
                *best = score;
                *old = hit;
            }
            return None;
        }
        let alert =
            FastAlert { ts_ns: now_ns, host, rule: hit.rule, score, reason: hit.reason.clone() };
        self.hits.push((hit, score));
        Some(alert)
    }

    /// The highest rule score, plus 0.05 for each further rule, at most 1.
    pub fn score(&self) -> f64 {
        combined(self.hits.iter())
    }

    /// The hits about the host as the target (`target`) or as the actor, scored as
    /// [`Episode::score`] scores all of them.
    pub fn part(&self, target: bool) -> FastDetection {
        self.part_where(|h| h.target == target)
    }

    /// The hits `keep` keeps, scored as [`Episode::score`] scores all of them.
    pub fn part_where(&self, keep: impl Fn(&Hit) -> bool) -> FastDetection {
        let hits: Vec<&(Hit, f64)> = self.hits.iter().filter(|(h, _)| keep(h)).collect();
        FastDetection {
            score: combined(hits.iter().copied()),
            rule_ids: hits.iter().map(|(h, _)| h.rule.to_owned()).collect(),
            reasons: hits.iter().map(|(h, _)| h.reason.clone()).collect(),
            victim_all_ports: false,
        }
    }
}

/// The highest of `hits`' scores plus 0.05 for each further hit, at most 1 (0 for none).
fn combined<'a>(hits: impl ExactSizeIterator<Item = &'a (Hit, f64)>) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "a handful of rules")]
    let extra = hits.len().saturating_sub(1) as f64 * 0.05;
    let best = hits.map(|(_, s)| *s).fold(0.0, f64::max);
    if best == 0.0 { 0.0 } else { (best + extra).min(1.0) }
}

/// What the rules evaluated for one packet raised.
#[derive(Debug, Default)]
pub struct Fired {
    /// Rules new in their host's episode, to report.
    pub alerts: Vec<FastAlert>,
    /// An episode's score reached a higher tenth than its host's flows were last exported
    /// early with (the first alert of an episode always does): the flow at hand is exported
    /// early, so that a score that climbs past a block threshold reaches the firewall now, not
    /// when the attack's flows end.
    pub escalated: bool,
}

/// Adds `hits` to the host's episode, opening a new one when none is open; records in `out`
/// the alerts to report (rules new in the episode) and whether the score escalated.
pub fn fire(
    episode: &mut Option<Episode>,
    hits: impl IntoIterator<Item = Hit>,
    host: IpAddr,
    now_ns: u64,
    cooldown_ns: u64,
    out: &mut Fired,
) {
    let mut hits = hits.into_iter().peekable();
    if hits.peek().is_none() {
        return;
    }
    let ep = match episode {
        Some(ep) if ep.is_open(now_ns, cooldown_ns) => ep,
        _ => episode.insert(Episode {
            opened_ns: now_ns,
            last_fired_ns: now_ns,
            hits: vec![],
            exported_tenths: 0,
        }),
    };
    out.alerts.extend(hits.filter_map(|h| ep.record(h, now_ns, host)));
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a score in [0, 1] times 10"
    )]
    let tenths = (ep.score() * 10.0 + 1e-9).floor() as u32;
    if tenths > ep.exported_tenths {
        ep.exported_tenths = tenths;
        out.escalated = true;
    }
}

/// `value ≥ threshold` as a [`Hit`].
pub fn check(
    rule: &'static str,
    value: f64,
    threshold: f64,
    reason: impl FnOnce() -> String,
) -> Option<Hit> {
    (value >= threshold).then(|| Hit {
        rule,
        value,
        threshold,
        reason: reason(),
        target: false,
        service: None,
    })
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::ignored_unit_patterns,
    reason = "exact expected values in tests"
)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn hit(rule: &'static str, value: f64) -> Hit {
        check(rule, value, 10.0, || format!("{rule} {value}")).unwrap()
    }

    #[test]
    fn rate_rules_are_evaluated_in_quarter_steps_up_to_twice_the_threshold() {
        let steps: Vec<u32> = (0..=12_000).filter(|&c| rate_step(c, 5_000)).collect();
        assert_eq!(steps, [5_000, 6_250, 7_500, 8_750, 10_000]);
        for (c, want) in steps.iter().zip([0.6, 0.7, 0.8, 0.9, 1.0]) {
            let got =
                check(rule::FLOOD_SOURCE, f64::from(*c), 5_000.0, String::new).unwrap().score();
            assert!((got - want).abs() < 1e-12, "{c}: {got} != {want}");
        }
        assert_eq!((0..10).filter(|&c| rate_step(c, 2)).collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn scores_grow_with_the_excess() {
        assert_eq!(hit(rule::SCAN_PORTS, 10.0).score(), 0.6);
        assert!((hit(rule::SCAN_PORTS, 15.0).score() - 0.8).abs() < 1e-12);
        assert_eq!(hit(rule::SCAN_PORTS, 500.0).score(), 1.0);
        assert!(check(rule::SCAN_PORTS, 9.0, 10.0, String::new).is_none());
    }

    #[test]
    fn one_alert_per_rule_and_episode_then_a_new_episode_after_the_cooldown() {
        let host = "10.0.0.7".parse().unwrap();
        let fire_at = |ep: &mut Option<Episode>, h: Hit, t: u64| {
            let mut out = Fired::default();
            fire(ep, vec![h], host, t * S, 300 * S, &mut out);
            out
        };
        let mut ep = None;
        let a = fire_at(&mut ep, hit(rule::SCAN_PORTS, 10.0), 0);
        assert_eq!((a.alerts.len(), a.escalated), (1, true), "the first alert escalates");
        let mut escalations = Vec::new();
        for t in 1..100 {
            let again = fire_at(&mut ep, hit(rule::SCAN_PORTS, 10.0 + t as f64), t);
            assert!(again.alerts.is_empty(), "still the same episode at {t} s");
            if again.escalated {
                escalations.push(t);
            }
        }
        // 0.6 + 0.04 per extra port: a new tenth at 13, 15 (0.8 = 0.6 + 0.2), 18 and 20 ports.
        assert_eq!(escalations, [3, 5, 8, 10], "once per tenth the score climbs");
        let b = fire_at(&mut ep, hit(rule::SCAN_HOSTS, 12.0), 100);
        assert_eq!(
            b.alerts[0].rule,
            rule::SCAN_HOSTS,
            "a new rule in the episode is reported once"
        );
        assert!(!b.escalated, "the score was 1.0 already");
        let e = ep.as_ref().unwrap();
        assert_eq!(e.part(false).rule_ids, vec!["scan.ports", "scan.hosts"]);
        assert!((e.score() - 1.0).abs() < 1e-12, "best 1.0 (value 109 ≥ 2×)");
        let quiet = fire_at(&mut ep, hit(rule::SCAN_PORTS, 10.0), 399);
        assert!(quiet.alerts.is_empty() && !quiet.escalated);
        let c = fire_at(&mut ep, hit(rule::SCAN_PORTS, 10.0), 700);
        assert_eq!(c.alerts.len(), 1, "quiet for longer than the cool-down: a new episode");
        assert!(c.escalated, "a new episode starts from nothing exported");
        assert_eq!(ep.unwrap().hits.len(), 1);
    }
}
