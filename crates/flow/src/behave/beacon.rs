//! `beacon`: an internal host that keeps connecting to one external service at regular
//! intervals, as command-and-control implants check in (RITA's beacon analysis, in
//! streaming form). The measure is the number of sessions whose start-to-start intervals
//! stay regular — coefficient of variation at most `max_interval_cv` — so jitter added by the
//! implant lowers the score only as far as it makes the check-ins irregular. Connections
//! started less than a second apart count as one session. Only TCP connections count: UDP
//! keepalives of one long association (SIP, voice, NTP) are periodic by design, and DNS is the
//! DNS behaviour's.

use std::collections::VecDeque;
use std::net::IpAddr;

use mld_config::daemons::sniffer::BeaconConfig;

use super::state::Bounded;
use super::{Behaviour, Cx, Packet, Role, SEC, StateStats};
use crate::fast::check;
use crate::packet::{proto, tcp_flags};

pub const RULE: &str = "beacon";

/// Session starts remembered per pair.
const MAX_STARTS: usize = 32;

#[derive(Debug, Default)]
struct Pair {
    starts: VecDeque<u64>,
}

/// Mean and coefficient of variation of the intervals between `starts`.
#[allow(clippy::cast_precision_loss, reason = "a few dozen values")]
pub fn regularity(starts: &VecDeque<u64>) -> Option<(f64, f64)> {
    if starts.len() < 3 {
        return None;
    }
    let gaps: Vec<f64> =
        starts.iter().zip(starts.iter().skip(1)).map(|(a, b)| (b - a) as f64 / 1e9).collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return None;
    }
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    Some((mean, var.sqrt() / mean))
}

#[derive(Debug)]
pub struct Beacon {
    cfg: BeaconConfig,
    pairs: Bounded<(IpAddr, IpAddr, u8, u16), Pair>,
}

impl Beacon {
    pub fn new(cfg: &BeaconConfig, cap: usize) -> Self {
        Self { cfg: cfg.clone(), pairs: Bounded::new(cap) }
    }
}

impl Behaviour for Beacon {
    fn name(&self) -> &'static str {
        "beacon"
    }

    fn on_packet(&mut self, p: &Packet<'_>, cx: &mut Cx<'_>) {
        let r = p.rec;
        if !p.new_flow || !p.forward {
            return;
        }
        // A check-in is a new TCP connection. UDP "sessions" are the flow table's idle
        // timeout cutting one long association (SIP, voice, game keepalives), not check-ins.
        let session = r.proto == proto::TCP
            && r.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        if !session
            || !cx.is_internal(p.initiator)
            || cx.is_internal(p.responder)
            || !super::unicast(p.responder)
        {
            return;
        }
        let key = (p.initiator, p.responder, r.proto, p.service_port);
        let pair = self.pairs.entry(key, Pair::default);
        if pair.starts.back().is_some_and(|&last| cx.now_ns.saturating_sub(last) < SEC) {
            return;
        }
        if pair.starts.len() == MAX_STARTS {
            pair.starts.pop_front();
        }
        pair.starts.push_back(cx.now_ns);
        let Some((mean, cv)) = regularity(&pair.starts) else { return };
        let c = &self.cfg;
        #[allow(clippy::cast_precision_loss, reason = "seconds")]
        if cv > c.max_interval_cv || mean < c.min_interval_secs as f64 {
            return;
        }
        let n = pair.starts.len();
        let thr = c.connections;
        #[allow(clippy::cast_precision_loss, reason = "a few dozen")]
        {
            cx.measure(p.initiator, Role::Actor, n as f64, f64::from(thr));
            cx.measure(p.responder, Role::Target, n as f64, f64::from(thr));
        }
        #[allow(clippy::cast_precision_loss, reason = "a few dozen")]
        let hit = check(RULE, n as f64, f64::from(thr), || {
            format!(
                "{} connected to {}:{} {n} times at a regular interval of {mean:.1} s (coefficient of variation {cv:.2}, at most {}; threshold {thr} sessions)",
                p.initiator, p.responder, p.service_port, c.max_interval_cv
            )
        });
        if let Some(h) = hit {
            cx.report(p.initiator, Role::Actor, Some(h.clone()));
            cx.report(p.responder, Role::Target, Some(h));
        }
    }

    fn state(&self) -> StateStats {
        self.pairs.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_and_irregular_intervals() {
        let s = |v: &[u64]| v.iter().map(|x| x * SEC).collect::<VecDeque<_>>();
        let (mean, cv) = regularity(&s(&[0, 10, 20, 30, 40])).unwrap();
        assert!((mean - 10.0).abs() < 1e-9 && cv < 1e-9);
        let (_, cv) = regularity(&s(&[0, 8, 20, 27, 40, 49])).unwrap();
        assert!(cv > 0.1 && cv < 0.35, "{cv}");
        let (_, cv) = regularity(&s(&[0, 1, 2, 60, 61, 200])).unwrap();
        assert!(cv > 1.0, "{cv}");
        assert!(regularity(&s(&[0, 10])).is_none());
    }
}
