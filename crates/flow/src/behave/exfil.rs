//! `exfil.upload`: an internal host sending a large volume to one external address while
//! receiving little back, summed over the flows that ended (or reached the active timeout)
//! within the window, so that splitting the upload over many connections does not hide it.

use std::net::IpAddr;

use mld_config::daemons::sniffer::ExfilConfig;

use super::state::{Bounded, Tumbling};
use super::{Behaviour, Cx, FlowEnd, Role, SEC, StateStats};
use crate::fast::check;

pub const RULE: &str = "exfil.upload";

#[derive(Debug, Default)]
struct Pair {
    up: Tumbling,
    down: u64,
}

#[derive(Debug)]
pub struct Exfil {
    cfg: ExfilConfig,
    pairs: Bounded<(IpAddr, IpAddr), Pair>,
}

impl Exfil {
    pub fn new(cfg: &ExfilConfig, cap: usize) -> Self {
        Self { cfg: cfg.clone(), pairs: Bounded::new(cap) }
    }
}

impl Behaviour for Exfil {
    fn name(&self) -> &'static str {
        "exfil"
    }

    fn on_flow_end(&mut self, f: &FlowEnd, cx: &mut Cx<'_>) {
        if f.fwd_bytes == 0
            || !cx.is_internal(f.initiator)
            || cx.is_internal(f.responder)
            || !super::unicast(f.responder)
        {
            return;
        }
        let window = self.cfg.window_secs * SEC;
        let p = self.pairs.entry((f.initiator, f.responder), Pair::default);
        let up = p.up.add(cx.now_ns, window, f.fwd_bytes);
        if up == f.fwd_bytes {
            // A new window.
            p.down = 0;
        }
        p.down += f.bwd_bytes;
        let down = p.down;
        #[allow(clippy::cast_precision_loss, reason = "byte counts, ratios")]
        let ratio = up as f64 / (down.max(1)) as f64;
        if ratio < self.cfg.min_ratio {
            return;
        }
        let mb = self.cfg.upload_mb;
        #[allow(clippy::cast_precision_loss, reason = "byte counts")]
        {
            cx.measure(f.initiator, Role::Actor, up as f64 / 1e6, f64::from(mb));
            cx.measure(f.responder, Role::Target, up as f64 / 1e6, f64::from(mb));
        }
        #[allow(clippy::cast_precision_loss, reason = "byte counts")]
        let hit = check(RULE, up as f64 / 1e6, f64::from(mb), || {
            format!(
                "{} sent {:.1} MB to {}:{} (and received {:.1} MB) within {} s (threshold {mb} MB at {:.0}x more sent than received)",
                f.initiator,
                up as f64 / 1e6,
                f.responder,
                f.service_port,
                down as f64 / 1e6,
                self.cfg.window_secs,
                self.cfg.min_ratio
            )
        });
        cx.report(f.initiator, Role::Actor, hit.clone());
        cx.report(f.responder, Role::Target, hit);
    }

    fn state(&self) -> StateStats {
        self.pairs.stats()
    }
}
