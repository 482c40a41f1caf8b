//! `http.slow`: one client holding many long-lived connections to one web server over which
//! almost nothing flows — slowloris (headers that never end), slow POST (a body at a byte a
//! second), slow read (a tiny receive window) all exhaust the server's connection slots this
//! way, whatever their timing parameters.

use std::net::IpAddr;

use mld_config::daemons::sniffer::SlowHttpConfig;

use super::state::Bounded;
use super::{Behaviour, Cx, FlowEnd, Packet, Role, SEC, StateStats};
use crate::fast::check;
use crate::packet::{proto, tcp_flags};

pub const RULE: &str = "http.slow";

/// Open connections remembered per client and server (more are counted, not remembered).
const MAX_OPEN: usize = 4_096;

type Key = (IpAddr, IpAddr, u16);

#[derive(Debug, Default)]
struct Pair {
    /// Open connections: client port and start.
    open: Vec<(u16, u64)>,
    /// Server payload bytes since `since_ns` (set when the pair became a candidate).
    server_bytes: u64,
    since_ns: u64,
    candidate: bool,
}

#[derive(Debug)]
pub struct SlowHttp {
    cfg: SlowHttpConfig,
    pairs: Bounded<Key, Pair>,
    candidates: Vec<Key>,
}

impl SlowHttp {
    pub fn new(cfg: &SlowHttpConfig, cap: usize) -> Self {
        Self { cfg: cfg.clone(), pairs: Bounded::new(cap), candidates: Vec::new() }
    }
}

impl Behaviour for SlowHttp {
    fn name(&self) -> &'static str {
        "slow_http"
    }

    fn on_packet(&mut self, p: &Packet<'_>, cx: &mut Cx<'_>) {
        let r = p.rec;
        if r.proto != proto::TCP || !self.cfg.ports.contains(&p.service_port) {
            return;
        }
        let key = (p.initiator, p.responder, p.service_port);
        if p.new_flow && p.forward && r.tcp_flags & tcp_flags::SYN != 0 {
            let pair = self.pairs.entry(key, Pair::default);
            if pair.open.len() < MAX_OPEN {
                pair.open.push((r.src_port, cx.now_ns));
            }
            if !pair.candidate && pair.open.len() >= self.cfg.connections as usize {
                pair.candidate = true;
                pair.server_bytes = 0;
                pair.since_ns = cx.now_ns;
                self.candidates.push(key);
            }
        } else if !p.forward
            && !self.candidates.is_empty()
            && let Some(pair) = self.pairs.get_mut(&key)
            && pair.candidate
        {
            pair.server_bytes += u64::from(r.payload_len);
        }
    }

    fn on_flow_end(&mut self, f: &FlowEnd, _cx: &mut Cx<'_>) {
        if f.proto != proto::TCP || !self.cfg.ports.contains(&f.service_port) {
            return;
        }
        let key = (f.initiator, f.responder, f.service_port);
        if let Some(pair) = self.pairs.get_mut(&key)
            && let Some(i) = pair.open.iter().position(|&(port, _)| port == f.initiator_port)
        {
            pair.open.swap_remove(i);
        }
    }

    fn on_tick(&mut self, cx: &mut Cx<'_>) {
        let (now, c) = (cx.now_ns, &self.cfg);
        let min_age = c.min_age_secs * SEC;
        let thr = c.connections;
        let pairs = &mut self.pairs;
        self.candidates.retain(|key| {
            let Some(pair) = pairs.get_mut(key) else { return false };
            if pair.open.len() < thr as usize {
                pair.candidate = false;
                return false;
            }
            let elapsed = now.saturating_sub(pair.since_ns);
            if elapsed < min_age {
                return true;
            }
            let old = pair.open.iter().filter(|(_, t)| now.saturating_sub(*t) >= min_age).count();
            #[allow(clippy::cast_precision_loss, reason = "rates")]
            let rate = pair.server_bytes as f64 / pair.open.len() as f64 / (elapsed as f64 / 1e9);
            if rate > f64::from(c.max_bytes_per_conn_sec) {
                return true;
            }
            let (client, server, port) = *key;
            #[allow(clippy::cast_precision_loss, reason = "counts")]
            cx.measure(client, Role::Actor, old as f64, f64::from(thr));
            #[allow(clippy::cast_precision_loss, reason = "counts")]
            let hit = check(RULE, old as f64, f64::from(thr), || {
                format!(
                    "{client} holds {old} connections to web server {server}:{port} open for {}+ s, over which the server sent {rate:.0} bytes per connection and second (threshold {thr} connections, {} B/s)",
                    c.min_age_secs, c.max_bytes_per_conn_sec
                )
            });
            cx.report(client, Role::Actor, hit);
            true
        });
    }

    fn state(&self) -> StateStats {
        self.pairs.stats()
    }
}
