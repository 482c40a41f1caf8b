//! Per-source-host context windows (DESIGN §5.1): what each host did recently, in bounded
//! memory per host and a bounded number of hosts.

use std::net::IpAddr;

use mld_proto::HostContext;

/// Sub-buckets of a window: counts cover between `window` and `window + window / 7`.
const BUCKETS: usize = 8;
/// Most recent distinct values kept per set (see `mld_config`'s `MAX_DISTINCT`).
pub const MAX_DISTINCT: usize = 1_024;
/// Login services tracked per host for brute force.
const MAX_SERVICES: usize = 64;

fn slot(bucket: u64) -> usize {
    usize::try_from(bucket % BUCKETS as u64).unwrap_or(0)
}

/// Counters summed over a sliding window of fixed-width buckets.
#[derive(Debug, Clone)]
pub struct Window<const K: usize> {
    width_ns: u64,
    head: u64,
    buckets: [[u32; K]; BUCKETS],
}

impl<const K: usize> Window<K> {
    pub fn new(window_ns: u64) -> Self {
        let width_ns = window_ns.div_ceil(BUCKETS as u64 - 1).max(1);
        Self { width_ns, head: 0, buckets: [[0; K]; BUCKETS] }
    }

    fn roll(&mut self, now_ns: u64) {
        let idx = now_ns / self.width_ns;
        if idx <= self.head {
            return;
        }
        let steps = (idx - self.head).min(BUCKETS as u64);
        for s in 1..=steps {
            self.buckets[slot(self.head + s)] = [0; K];
        }
        self.head = idx;
    }

    pub fn add(&mut self, now_ns: u64, k: usize, v: u32) {
        self.roll(now_ns);
        let b = &mut self.buckets[slot(self.head)][k];
        *b = b.saturating_add(v);
    }

    pub fn sum(&mut self, now_ns: u64, k: usize) -> u64 {
        self.roll(now_ns);
        self.buckets.iter().map(|b| u64::from(b[k])).sum()
    }
}

/// The most recent distinct values (at most [`MAX_DISTINCT`]) with when each was last seen.
/// Counts are exact until a host sees more than that many values within one window.
#[derive(Debug, Clone, Default)]
pub struct RecentSet {
    items: Vec<(u64, u64)>,
    /// At most the oldest item's time (exact after a count that forgot something): while it
    /// is within the window, nothing is to forget and counting is O(1).
    oldest_ns: u64,
}

impl RecentSet {
    pub fn insert(&mut self, value: u64, now_ns: u64) {
        if let Some(item) = self.items.iter_mut().find(|(v, _)| *v == value) {
            item.1 = item.1.max(now_ns);
            return;
        }
        if self.items.is_empty() {
            self.oldest_ns = now_ns;
        }
        self.oldest_ns = self.oldest_ns.min(now_ns);
        if self.items.len() < MAX_DISTINCT {
            self.items.push((value, now_ns));
        } else if let Some(oldest) = self.items.iter_mut().min_by_key(|(_, t)| *t) {
            *oldest = (value, now_ns);
        }
    }

    /// Whether `value` was seen within `window_ns` before `now_ns`.
    pub fn contains(&self, value: u64, now_ns: u64, window_ns: u64) -> bool {
        self.items.iter().any(|(v, t)| *v == value && now_ns.saturating_sub(*t) <= window_ns)
    }

    pub fn remove(&mut self, value: u64) {
        self.items.retain(|(v, _)| *v != value);
    }

    /// Values seen within `window_ns` before `now_ns`; forgets older ones.
    pub fn count(&mut self, now_ns: u64, window_ns: u64) -> u32 {
        if now_ns.saturating_sub(self.oldest_ns) > window_ns {
            self.items.retain(|(_, t)| now_ns.saturating_sub(*t) <= window_ns);
            self.oldest_ns = self.items.iter().map(|&(_, t)| t).min().unwrap_or(now_ns);
        }
        u32::try_from(self.items.len()).unwrap_or(u32::MAX)
    }
}

/// A burst of connections to one service: each within a window of the previous one.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub service: (IpAddr, u16),
    pub first_ns: u64,
    pub last_ns: u64,
    pub conns: u32,
}

/// Events counted in the current one-second bucket.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerSecond {
    pub sec: u64,
    pub count: u32,
}

impl PerSecond {
    /// Counts one event at `now_ns`; returns the events so far in its second.
    pub fn tick(&mut self, now_ns: u64) -> u32 {
        let sec = now_ns / 1_000_000_000;
        if sec == self.sec {
            self.count = self.count.saturating_add(1);
        } else {
            *self = Self { sec, count: 1 };
        }
        self.count
    }

    /// The count of the current or the previous second `sec`, else 0 (stale).
    pub fn recent(&self, sec: u64) -> u32 {
        if self.sec + 1 >= sec { self.count } else { 0 }
    }
}

/// Indices into the windowed counters.
pub mod counter {
    pub const FLOWS: usize = 0;
    pub const TCP_SENT: usize = 1;
    pub const RST_SENT: usize = 2;
    pub const TCP_CONNS: usize = 3;
    pub const TCP_FAILED: usize = 4;
    pub const DNS_QUERIES: usize = 5;
    /// Sum of query-name entropies, in thousandths of a bit.
    pub const DNS_ENTROPY_MILLI: usize = 6;
    /// Sum of query-name lengths in characters (a name cut by the capture: up to the cut).
    pub const DNS_NAME_CHARS: usize = 7;
    /// HTTP requests with an attack pattern.
    pub const WEB_ATTACKS: usize = 8;
    pub const COUNT: usize = 9;
}

/// What one host did recently.
#[derive(Debug, Clone)]
pub struct HostState {
    pub counters: Window<{ counter::COUNT }>,
    pub dsts: RecentSet,
    pub external_dsts: RecentSet,
    /// Destinations that answered a flow this host opened (a packet back that is not a RST).
    pub answered: RecentSet,
    /// External destinations this host opened flows to that have not answered any of them.
    pub silent_external: RecentSet,
    pub ports: RecentSet,
    pub smb_dsts: RecentSet,
    /// Sources that opened flows towards this host.
    pub sources: RecentSet,
    pub bursts: Vec<Burst>,
    /// Packets sent and received in the current second.
    pub sent: PerSecond,
    /// Packets sent in the current second outside established TCP connections.
    pub unpaced_sent: PerSecond,
    pub received: PerSecond,
    pub episode: Option<crate::fast::Episode>,
    /// Where the host stands against each behaviour.
    pub levels: crate::behave::level::Levels,
}

impl HostState {
    pub fn new(window_ns: u64) -> Self {
        Self {
            counters: Window::new(window_ns),
            dsts: RecentSet::default(),
            external_dsts: RecentSet::default(),
            answered: RecentSet::default(),
            silent_external: RecentSet::default(),
            ports: RecentSet::default(),
            smb_dsts: RecentSet::default(),
            sources: RecentSet::default(),
            bursts: Vec::new(),
            sent: PerSecond::default(),
            unpaced_sent: PerSecond::default(),
            received: PerSecond::default(),
            episode: None,
            levels: crate::behave::level::Levels::default(),
        }
    }

    /// Records a connection to a login service; returns the burst's length.
    pub fn on_service_conn(
        &mut self,
        service: (IpAddr, u16),
        now_ns: u64,
        window_ns: u64,
    ) -> Burst {
        let fresh = Burst { service, first_ns: now_ns, last_ns: now_ns, conns: 1 };
        if let Some(b) = self.bursts.iter_mut().find(|b| b.service == service) {
            if now_ns.saturating_sub(b.last_ns) > window_ns {
                *b = fresh;
            } else {
                b.last_ns = b.last_ns.max(now_ns);
                b.conns = b.conns.saturating_add(1);
            }
            return *b;
        }
        if self.bursts.len() < MAX_SERVICES {
            self.bursts.push(fresh);
        } else if let Some(oldest) = self.bursts.iter_mut().min_by_key(|b| b.last_ns) {
            *oldest = fresh;
        }
        fresh
    }

    /// The context message for events, over the window ending at `now_ns`.
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    pub fn context(&mut self, now_ns: u64, window_ns: u64) -> HostContext {
        use counter as c;
        let mut sum = |k| self.counters.sum(now_ns, k);
        let (tcp, rst) = (sum(c::TCP_SENT), sum(c::RST_SENT));
        let (conns, failed) = (sum(c::TCP_CONNS), sum(c::TCP_FAILED));
        let (queries, entropy) = (sum(c::DNS_QUERIES), sum(c::DNS_ENTROPY_MILLI));
        let flows = sum(c::FLOWS);
        let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let sec = now_ns / 1_000_000_000;
        HostContext {
            window_secs: u32::try_from(window_ns / 1_000_000_000).unwrap_or(u32::MAX),
            distinct_external_dsts: self.external_dsts.count(now_ns, window_ns),
            distinct_dst_ports: self.ports.count(now_ns, window_ns),
            smb_dsts: self.smb_dsts.count(now_ns, window_ns),
            dns_query_entropy: ratio(entropy, queries) / 1_000.0,
            dns_queries: u32::try_from(queries).unwrap_or(u32::MAX),
            rst_ratio: ratio(rst, tcp),
            failed_conn_ratio: ratio(failed, conns),
            flows: u32::try_from(flows).unwrap_or(u32::MAX),
            distinct_dsts: self.dsts.count(now_ns, window_ns),
            packets_last_sec: self.sent.recent(sec),
            distinct_sources: self.sources.count(now_ns, window_ns),
            packets_received_last_sec: self.received.recent(sec),
        }
    }
}

/// A value for [`RecentSet`]s from an address.
pub fn ip_value(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(v4.to_bits()),
        IpAddr::V6(v6) => {
            let b = v6.to_bits();
            #[allow(clippy::cast_possible_truncation, reason = "folding 128 bits into 64")]
            let folded = (b as u64) ^ ((b >> 64) as u64).rotate_left(17) ^ (1 << 63);
            folded
        }
    }
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

    #[test]
    fn window_forgets_old_buckets() {
        let mut w: Window<1> = Window::new(7 * S);
        w.add(100 * S, 0, 5);
        w.add(103 * S, 0, 2);
        assert_eq!(w.sum(104 * S, 0), 7);
        assert_eq!(w.sum(107 * S, 0), 7, "8 one-second buckets: t=100 s still in");
        assert_eq!(w.sum(108 * S, 0), 2, "the bucket of t=100 s fell out");
        assert_eq!(w.sum(200 * S, 0), 0);
    }

    #[test]
    fn recent_set_counts_distinct_values_in_window() {
        let mut s = RecentSet::default();
        for (v, t) in [(1, 0), (2, 1), (1, 2), (3, 10)] {
            s.insert(v, t * S);
        }
        assert_eq!(s.count(10 * S, 30 * S), 3);
        assert_eq!(s.count(35 * S, 30 * S), 1, "1 and 2 last seen at 2 s and 1 s");
        for v in 0..(MAX_DISTINCT as u64 + 10) {
            s.insert(v + 100, 40 * S);
        }
        assert_eq!(s.count(40 * S, 30 * S), MAX_DISTINCT as u32, "saturates, never grows");
    }

    #[test]
    fn recent_set_counting_in_a_row_still_forgets_on_time() {
        // Counted after every insert (as each exported flow does): the O(1) path must not
        // keep a value past its window, re-seen values must stay, and out-of-order times too.
        let mut s = RecentSet::default();
        s.insert(1, 10 * S);
        assert_eq!(s.count(10 * S, 30 * S), 1);
        s.insert(2, 20 * S);
        s.insert(1, 25 * S); // re-seen: now last seen at 25 s
        assert_eq!(s.count(30 * S, 30 * S), 2);
        assert_eq!(s.count(51 * S, 30 * S), 1, "2 (20 s) is out, 1 (25 s) is in");
        s.insert(3, 5 * S); // an older timestamp arriving late
        assert_eq!(s.count(52 * S, 30 * S), 1, "3 (5 s) is out at once");
        assert_eq!(s.count(56 * S, 30 * S), 0);
    }

    #[test]
    fn bursts_restart_after_a_quiet_window() {
        let mut h = HostState::new(30 * S);
        let svc = ("10.0.0.1".parse().unwrap(), 22);
        for i in 0..5 {
            h.on_service_conn(svc, i * 10 * S, 30 * S);
        }
        assert_eq!(h.on_service_conn(svc, 50 * S, 30 * S).conns, 6);
        assert_eq!(h.on_service_conn(svc, 81 * S, 30 * S).conns, 1);
    }

    #[test]
    fn per_second_packet_counts() {
        let mut h = HostState::new(30 * S);
        assert_eq!(h.sent.tick(5 * S), 1);
        assert_eq!(h.sent.tick(5 * S + 999_999_999), 2);
        assert_eq!(h.sent.tick(6 * S), 1);
        assert_eq!(h.received.tick(6 * S), 1);
        // The count stands for its second and the next, then goes stale.
        assert_eq!((h.sent.recent(6), h.sent.recent(7), h.sent.recent(8)), (1, 1, 0));
    }
}
