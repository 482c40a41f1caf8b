//! `scan.probe`: one source knocking on many distinct services (address and port) of the
//! protected network that refuse it, never answer, or that it abandons right after their
//! answer (a SYN scan's RST). A scan of a handful of hosts on a handful of ports stays under
//! `scan.ports` and `scan.hosts`, which each count one dimension; this counts the services,
//! and only the failed or aborted attempts, so clients using a service do not add up.

use std::net::IpAddr;

use mld_config::daemons::sniffer::ProbeConfig;

use super::state::{Bounded, Distinct, hash64};
use super::{Behaviour, Cx, FlowEnd, Role, SEC, StateStats};
use crate::fast::check;
use crate::packet::proto;

pub const RULE: &str = "scan.probe";

#[derive(Debug)]
pub struct Probe {
    cfg: ProbeConfig,
    sources: Bounded<IpAddr, Distinct>,
}

impl Probe {
    pub fn new(cfg: &ProbeConfig, cap: usize) -> Self {
        Self { cfg: cfg.clone(), sources: Bounded::new((cap / 4).max(16)) }
    }
}

/// Whether an ended flow was a failed or aborted attempt: TCP refused, unanswered, or
/// answered and dropped without a byte of data either way; UDP without a reply.
pub fn failed_attempt(f: &FlowEnd) -> bool {
    match f.proto {
        proto::TCP => f.syn && (!f.syn_ack || (f.fwd_bytes == 0 && f.bwd_bytes == 0)),
        proto::UDP => f.bwd_packets == 0,
        _ => false,
    }
}

impl Behaviour for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn on_flow_end(&mut self, f: &FlowEnd, cx: &mut Cx<'_>) {
        if !failed_attempt(f) || !cx.is_internal(f.responder) {
            return;
        }
        let window = self.cfg.window_secs * SEC;
        let d = self.sources.entry(f.initiator, Distinct::default);
        d.insert(hash64((f.responder, f.proto, f.service_port)), cx.now_ns, window);
        let n = d.count(cx.now_ns, window);
        let thr = self.cfg.services;
        #[allow(clippy::cast_precision_loss, reason = "counts")]
        cx.measure(f.initiator, Role::Actor, n as f64, f64::from(thr));
        #[allow(clippy::cast_precision_loss, reason = "counts")]
        let hit = check(RULE, n as f64, f64::from(thr), || {
            format!(
                "{} made failed or aborted attempts on {n} distinct internal services (address, protocol, port) within {} s, e.g. {}:{} (threshold {thr})",
                f.initiator, self.cfg.window_secs, f.responder, f.service_port
            )
        });
        cx.report(f.initiator, Role::Actor, hit);
    }

    fn state(&self) -> StateStats {
        self.sources.stats()
    }
}
