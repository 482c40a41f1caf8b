//! Per host, where it stands against each behaviour: the largest level (`value / threshold`)
//! one of the behaviour's checks measured within [`LEVEL_HOLD_SECS`], as the actor and as the
//! target. Flow events carry them (`source_levels`, `responder_levels`) as model inputs, so
//! that the forests learn from evidence that stays below a rule's threshold.

use mld_proto::BehaviourLevels;

use super::{KINDS, LEVEL_HOLD_SECS, Measure, Role, SEC};

/// One level and the second of packet time it was measured at.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stamped {
    level: f32,
    at_secs: u32,
}

impl Stamped {
    fn get(self, now_secs: u32) -> f32 {
        if now_secs.saturating_sub(self.at_secs) > hold() { 0.0 } else { self.level }
    }
}

#[allow(clippy::cast_possible_truncation, reason = "600 fits")]
const fn hold() -> u32 {
    LEVEL_HOLD_SECS as u32
}

/// Packet time in whole seconds (wraps in 2106).
#[allow(clippy::cast_possible_truncation, reason = "seconds since 1970 fit u32 until 2106")]
pub fn secs(now_ns: u64) -> u32 {
    (now_ns / SEC) as u32
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Levels {
    actor: [Stamped; KINDS.len()],
    target: [Stamped; KINDS.len()],
}

impl Levels {
    /// Keeps `m`'s level when it is the largest within the hold time.
    pub fn raise(&mut self, m: &Measure, now_secs: u32) {
        let side = match m.role {
            Role::Actor => &mut self.actor,
            Role::Target => &mut self.target,
        };
        let Some(s) = side.get_mut(m.kind) else { return };
        if m.level >= s.get(now_secs) {
            *s = Stamped { level: m.level, at_secs: now_secs };
        }
    }

    /// The levels as `role`, at `now_secs`.
    pub fn get(&self, role: Role, now_secs: u32) -> BehaviourLevels {
        let side = match role {
            Role::Actor => &self.actor,
            Role::Target => &self.target,
        };
        let l = |k: usize| side[k].get(now_secs);
        BehaviourLevels {
            login: l(0),
            web_scan: l(1),
            dns: l(2),
            probe: l(3),
            half_open: l(4),
            slow_http: l(5),
            beacon: l(6),
            exfil: l(7),
            smb: l(8),
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact values stored")]
mod tests {
    use super::*;

    fn m(role: Role, kind: &str, level: f32) -> Measure {
        Measure {
            host: [10, 0, 0, 1].into(),
            role,
            kind: KINDS.iter().position(|k| *k == kind).unwrap(),
            level,
        }
    }

    #[test]
    fn the_largest_level_stands_for_the_hold_time_per_role_and_kind() {
        let mut l = Levels::default();
        l.raise(&m(Role::Actor, "login", 0.4), 1000);
        l.raise(&m(Role::Actor, "login", 0.2), 1010);
        l.raise(&m(Role::Target, "beacon", 1.5), 1010);
        let a = l.get(Role::Actor, 1010);
        assert_eq!((a.login, a.beacon), (0.4, 0.0));
        assert_eq!(l.get(Role::Target, 1010).beacon, 1.5);
        assert_eq!(l.get(Role::Target, 1010).login, 0.0);
        // Still within the hold of the 0.4 measured at 1000; then it lapses.
        assert_eq!(l.get(Role::Actor, 1000 + hold()).login, 0.4);
        assert_eq!(l.get(Role::Actor, 1001 + hold()).login, 0.0);
        // After it lapsed a lower level takes its place.
        l.raise(&m(Role::Actor, "login", 0.1), 1001 + hold());
        assert_eq!(l.get(Role::Actor, 1001 + hold()).login, 0.1);
    }

    #[test]
    fn the_kinds_are_the_fields_in_order() {
        let mut l = Levels::default();
        for (i, k) in KINDS.iter().enumerate() {
            #[allow(clippy::cast_precision_loss, reason = "small")]
            l.raise(&m(Role::Actor, k, (i + 1) as f32), 5);
        }
        let b = l.get(Role::Actor, 5);
        let got = [
            b.login,
            b.web_scan,
            b.dns,
            b.probe,
            b.half_open,
            b.slow_http,
            b.beacon,
            b.exfil,
            b.smb,
        ];
        assert_eq!(got, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    }
}
