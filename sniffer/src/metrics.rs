//! The sniffer's Prometheus metrics (`mld_sniffer_*`). Engine totals are copied in as deltas
//! after each batch, so the hot path never touches an atomic it does not need.

use mld_flow::behave::StateStats;
use mld_flow::engine::{Counters, Engine};
use mld_flow::fast::rule;
use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::metrics::family::Family;
use mld_telemetry::prometheus_client::metrics::gauge::Gauge;
use mld_telemetry::prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Labels of skipped frames: the parser's reasons plus the capture paths' own.
pub const SKIP_REASONS: [&str; 5] =
    ["unsupported_link", "not_ip", "truncated", "malformed", "other"];

#[derive(Debug, Clone)]
pub struct Metrics {
    pub packets: Counter,
    pub bytes: Counter,
    skipped: Family<Labels, Counter>,
    pub capture_errors: Counter,
    flows: Family<Labels, Counter>,
    pub snapshots: Counter,
    alerts: Family<Labels, Counter>,
    pub hosts_evicted: Counter,
    pub dns_queries: Counter,
    pub active_flows: Gauge,
    pub hosts: Gauge,
    pub events_written: Counter,
    /// Kernel-side (XDP) counters by reason, copied from the per-CPU map.
    pub xdp: Family<Labels, Gauge>,
    /// `AF_PACKET` reader counters by interface and outcome.
    pub afpacket: Family<Labels, Gauge>,
    /// Records of several capture sources merged into time order, by outcome.
    pub reorder: Family<Labels, Gauge>,
    behaviours: BehaviourMetrics,
    last: Counters,
}

fn reg<M: mld_telemetry::prometheus_client::registry::Metric + Clone>(
    r: &mut Registry,
    name: &str,
    help: &str,
    m: M,
) -> M {
    r.register(name, help, m.clone());
    m
}

impl Metrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = Self {
            packets: reg(r, "packets", "Packets accounted into flows", Counter::default()),
            bytes: reg(
                r,
                "ip_bytes",
                "IP bytes of packets accounted into flows",
                Counter::default(),
            ),
            skipped: reg(r, "skipped_frames", "Frames not accounted, by reason", Family::default()),
            capture_errors: reg(
                r,
                "capture_errors",
                "Capture files that ended early (truncated or corrupt)",
                Counter::default(),
            ),
            flows: reg(r, "flows", "Flows exported as finished, by end reason", Family::default()),
            snapshots: reg(
                r,
                "flow_snapshots",
                "Open flows exported early because a fast rule fired for their host",
                Counter::default(),
            ),
            alerts: reg(
                r,
                "fast_alerts",
                "Fast-detector alerts (once per host, rule and episode)",
                Family::default(),
            ),
            hosts_evicted: reg(
                r,
                "hosts_evicted",
                "Host contexts forgotten because the host table was full",
                Counter::default(),
            ),
            dns_queries: reg(
                r,
                "dns_queries",
                "DNS query names read from payloads",
                Counter::default(),
            ),
            active_flows: reg(r, "active_flows", "Flows in the flow table", Gauge::default()),
            hosts: reg(r, "hosts", "Hosts with a context window", Gauge::default()),
            events_written: reg(
                r,
                "jsonl_events",
                "Events written to the --jsonl output",
                Counter::default(),
            ),
            xdp: reg(
                r,
                "xdp_packets",
                "XDP program counters summed over CPUs, by interface and outcome (passed to the ring, or dropped from it and why)",
                Family::default(),
            ),
            afpacket: reg(
                r,
                "afpacket_frames",
                "AF_PACKET fallback counters by interface and outcome (frames read, skipped by the parser, dropped because the engine fell behind)",
                Family::default(),
            ),
            reorder: reg(
                r,
                "reorder_records",
                "Records merged from several interfaces into time order: held now, released early because the buffer was full (forced), or arrived after later records had gone (late)",
                Family::default(),
            ),
            behaviours: BehaviourMetrics::register(r),
            last: Counters::default(),
        };
        for reason in SKIP_REASONS {
            m.skipped(reason);
        }
        for reason in ["closed", "idle", "active_timeout", "evicted", "flushed"] {
            let _ = m.flows.get_or_create(&vec![("reason", reason.to_owned())]);
        }
        for rule in rule::ALL {
            let _ = m.alerts.get_or_create(&vec![("rule", rule.to_owned())]);
        }
        m
    }

    pub fn skipped(&self, reason: &str) -> Counter {
        self.skipped.get_or_create(&vec![("reason", reason.to_owned())]).clone()
    }

    pub fn alert(&self, rule: &str) {
        self.alerts.get_or_create(&vec![("rule", rule.to_owned())]).inc();
    }

    /// Adds what the engine counted since the last call, and copies in its gauges and its
    /// behaviours' state.
    pub fn sync(&mut self, engine: &Engine) {
        self.sync_counters(engine.counters(), engine.active_flows(), engine.hosts());
        self.sync_behaviours(&engine.behaviour_state());
    }

    fn sync_counters(&mut self, c: &Counters, active_flows: usize, hosts: usize) {
        let flows = |reason: &str, now: u64, before: u64| {
            self.flows.get_or_create(&vec![("reason", reason.to_owned())]).inc_by(now - before);
        };
        let l = &self.last;
        flows("closed", c.flows_closed, l.flows_closed);
        flows("idle", c.flows_idle, l.flows_idle);
        flows("active_timeout", c.flows_active_timeout, l.flows_active_timeout);
        flows("evicted", c.flows_evicted, l.flows_evicted);
        flows("flushed", c.flows_flushed, l.flows_flushed);
        self.snapshots.inc_by(c.snapshots - l.snapshots);
        self.hosts_evicted.inc_by(c.hosts_evicted - l.hosts_evicted);
        self.dns_queries.inc_by(c.dns_queries - l.dns_queries);
        self.behaviours.evidence.inc_by(c.evidence - l.evidence);
        self.active_flows.set(i64::try_from(active_flows).unwrap_or(i64::MAX));
        self.hosts.set(i64::try_from(hosts).unwrap_or(i64::MAX));
        self.last = c.clone();
    }

    /// Copies in the behaviours' state sizes and evictions.
    fn sync_behaviours(&mut self, state: &[(&'static str, StateStats)]) {
        let b = &mut self.behaviours;
        for (name, s) in state {
            let label = vec![("behaviour", (*name).to_owned())];
            let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            b.entries.get_or_create(&label).set(gauge(s.entries));
            b.capacity.get_or_create(&label).set(gauge(s.capacity));
            let last = b.last_evicted.entry(name).or_default();
            // A new capture (pcap files in turn) starts the behaviours afresh.
            let delta = s.evicted.checked_sub(*last).unwrap_or(s.evicted);
            b.evictions.get_or_create(&label).inc_by(delta);
            *last = s.evicted;
        }
    }
}

/// The behaviours' metrics (`mld_sniffer_behaviour_*`).
#[derive(Debug, Clone)]
struct BehaviourMetrics {
    /// Entries held and their cap, by behaviour.
    entries: Family<Labels, Gauge>,
    capacity: Family<Labels, Gauge>,
    /// Entries a behaviour forgot to make room, by behaviour.
    evictions: Family<Labels, Counter>,
    evidence: Counter,
    last_evicted: std::collections::HashMap<&'static str, u64>,
}

impl BehaviourMetrics {
    fn register(r: &mut Registry) -> Self {
        Self {
            entries: reg(
                r,
                "behaviour_entries",
                "Entries (hosts, pairs, services, domains) each behaviour holds now",
                Family::default(),
            ),
            capacity: reg(
                r,
                "behaviour_capacity",
                "Entries each behaviour may hold (behaviours.max_entries, or a share of it)",
                Family::default(),
            ),
            evictions: reg(
                r,
                "behaviour_evictions",
                "Entries a behaviour forgot, least recently active first, to stay within its cap",
                Family::default(),
            ),
            evidence: reg(
                r,
                "behaviour_evidence",
                "Evidence the behaviours reported about hosts (each adds to the host's episode)",
                Counter::default(),
            ),
            last_evicted: std::collections::HashMap::new(),
        }
    }
}
