//! `flood.half_open`: a service receiving more than it answers, judged at the victim.
//!
//! Per victim service (address, protocol, port) and per victim address (all ports), the
//! packets received that were not answered are counted per second: TCP handshakes that did
//! not complete, UDP datagrams beyond the replies sent, ICMP packets. The count is compared
//! with an absolute floor and with the service's learned rate (an exponential average over
//! the seconds that were calm), so a busy service's normal load does not fire, and a flood
//! below the source-side rate rule, from one source or from a million forged ones, does. From
//! many sources (`min_sources` over a minute, spoofed or distributed) the verdict names the
//! victim: its inbound flows carry it, and a spoofed source is never the conclusion. From fewer
//! the flood is attributable: the source of the packet that crossed the threshold is named
//! (`flood.few_sources`), whatever its own rate.

use std::net::IpAddr;

use mld_config::daemons::sniffer::HalfOpenConfig;

use super::state::{Bounded, Distinct, hash64};
use super::{Behaviour, Cx, Packet, Role, SEC, StateStats};
use crate::fast::{Hit, check};
use crate::packet::{proto, tcp_flags};

pub const RULE: &str = "flood.half_open";
pub const FEW_SOURCES: &str = "flood.few_sources";

/// Sources are counted over this window for the reason.
const SOURCES_WINDOW_NS: u64 = 60 * SEC;

#[derive(Debug, Default)]
struct Service {
    sec: u64,
    inbound: u64,
    answered: u64,
    /// The next excess at which the current second is evaluated again.
    next_eval: u64,
    /// The next excess at which the victim's level is measured again.
    next_level: u64,
    baseline: f64,
    sources: Distinct,
}

impl Service {
    /// Moves to second `sec`, folding a calm finished second into the baseline.
    fn roll(&mut self, sec: u64, threshold: f64, alpha: f64) {
        if sec == self.sec {
            return;
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let excess = self.inbound.saturating_sub(self.answered) as f64;
        if self.inbound > 0 && excess < threshold {
            // Seconds without packets are calm too: decay over them.
            let quiet = sec.saturating_sub(self.sec + 1).min(1_000);
            self.baseline += alpha * (excess - self.baseline);
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_possible_wrap,
                reason = "≤ 1000"
            )]
            let decay = (1.0 - alpha).powi(quiet as i32);
            self.baseline *= decay;
        }
        self.sec = sec;
        self.inbound = 0;
        self.answered = 0;
        self.next_eval = 0;
        self.next_level = 0;
    }
}

#[derive(Debug)]
pub struct HalfOpen {
    cfg: HalfOpenConfig,
    services: Bounded<(IpAddr, u8, u16), Service>,
}

impl HalfOpen {
    pub fn new(cfg: &HalfOpenConfig, cap: usize) -> Self {
        Self { cfg: cfg.clone(), services: Bounded::new((cap / 4).max(16)) }
    }

    fn floor(&self, protocol: u8) -> u32 {
        match protocol {
            proto::TCP => self.cfg.syn_per_sec,
            proto::UDP => self.cfg.udp_per_sec,
            _ => self.cfg.icmp_per_sec,
        }
    }

    /// Accounts one packet to the service `key`: `inbound` received or one answered.
    fn count(&mut self, key: (IpAddr, u8, u16), inbound: bool, source: IpAddr, cx: &mut Cx<'_>) {
        let floor = f64::from(self.floor(key.1));
        let (factor, alpha) = (self.cfg.baseline_factor, self.cfg.baseline_alpha);
        let s = self.services.entry(key, Service::default);
        let sec = cx.now_ns / SEC;
        let threshold = |s: &Service| floor.max(factor * s.baseline);
        let t = threshold(s);
        s.roll(sec, t, alpha);
        if !inbound {
            s.answered += 1;
            return;
        }
        s.inbound += 1;
        let excess = s.inbound.saturating_sub(s.answered);
        // Sources are only of interest once a second looks like a flood.
        #[allow(clippy::cast_precision_loss, reason = "rates")]
        if excess as f64 * 2.0 >= t {
            s.sources.insert(hash64(source), cx.now_ns, SOURCES_WINDOW_NS);
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "rates"
        )]
        let (thr, step) = (t.ceil() as u64, (t / 4.0).ceil().max(1.0) as u64);
        // The victim's level from a quarter of the threshold on, a few times a second.
        if excess >= step && excess >= s.next_level {
            s.next_level = excess + step;
            #[allow(clippy::cast_precision_loss, reason = "rates")]
            cx.measure(key.0, Role::Target, excess as f64, t);
        }
        if excess < thr || excess < s.next_eval || excess > 2 * thr {
            return;
        }
        s.next_eval = excess + step;
        let sources = s.sources.count(cx.now_ns, SOURCES_WINDOW_NS);
        let baseline = s.baseline;
        let (victim, protocol, port) = key;
        let what = match protocol {
            proto::TCP => "TCP handshakes left half-open",
            proto::UDP => "UDP datagrams beyond its replies",
            _ => "ICMP packets",
        };
        let service =
            if port == 0 { format!("{victim} (all ports)") } else { format!("{victim}:{port}") };
        let min_sources = self.cfg.min_sources;
        let many = sources >= u64::from(min_sources);
        #[allow(clippy::cast_precision_loss, reason = "rates")]
        let hit = check(if many { RULE } else { FEW_SOURCES }, excess as f64, t, || {
            let from = if many {
                format!("about {sources} distinct sources")
            } else {
                format!("{sources} source(s), {source} among them (fewer than {min_sources})")
            };
            format!(
                "{service} received {excess} {what} within one second from {from} (threshold {t:.0}: floor {floor:.0}, {factor}x its learned rate of {baseline:.1}/s)"
            )
        });
        if many {
            cx.report(
                victim,
                Role::Target,
                hit.map(|h| Hit { service: Some((protocol, port)), ..h }),
            );
        } else {
            cx.report(source, Role::Actor, hit);
        }
    }
}

impl Behaviour for HalfOpen {
    fn name(&self) -> &'static str {
        "half_open"
    }

    fn on_packet(&mut self, p: &Packet<'_>, cx: &mut Cx<'_>) {
        let r = p.rec;
        let (inbound, port) = match r.proto {
            proto::TCP => {
                let syn = r.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
                if p.forward && p.new_flow && syn {
                    (true, p.service_port)
                } else if p.handshake_done {
                    (false, p.service_port)
                } else {
                    return;
                }
            }
            proto::UDP => (p.forward, p.service_port),
            proto::ICMP | proto::ICMPV6 if p.forward => (true, 0),
            _ => return,
        };
        let victim = p.responder;
        if port != 0 {
            self.count((victim, r.proto, port), inbound, p.initiator, cx);
        }
        self.count((victim, r.proto, 0), inbound, p.initiator, cx);
    }

    fn state(&self) -> StateStats {
        self.services.stats()
    }
}
