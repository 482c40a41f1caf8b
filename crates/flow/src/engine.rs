//! Packets in, flow events out: the flow table, host context and fast detector together.
//!
//! Time is packet time: the engine's clock is the latest packet timestamp seen (or what the
//! caller passes to [`Engine::advance`] when no packets arrive), so a capture file replayed at
//! any speed yields the same flows as it did live.

use std::collections::VecDeque;
use std::net::IpAddr;

use ipnet::IpNet;
use mld_config::daemons::sniffer::{BehaviourConfig, FastDetectorConfig, Sniffer};
use mld_proto::{CaptureMode, Direction, FastDetection, FlowEvent, InterfaceRole};

use crate::behave::{self, Behaviour, Evidence, Role, StateStats};
use crate::fast::{self, FastAlert, Fired, Hit, check, rule};
use crate::features::FlowStats;
use crate::host::{HostState, counter, ip_value};
use crate::id::EventIds;
use crate::key::{EndpointKey, FlowKey};
use crate::lru::LruMap;
use crate::packet::{proto, tcp_flags};
use crate::record::PacketRecord;
use crate::{dns, http};

/// After a flow closes (RST, or FIN both ways) it lingers this long for the final ACK and
/// retransmissions before it is exported.
pub const CLOSE_LINGER_NS: u64 = 1_000_000_000;
/// How often (packet time) idle flows are looked for.
pub const SWEEP_EVERY_NS: u64 = 250_000_000;

const SMB_PORTS: [u16; 2] = [445, 139];

/// What the engine needs to know; built from the sniffer's validated config.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub sensor_id: String,
    pub capacity: usize,
    pub shards: usize,
    pub idle_ns: u64,
    pub active_ns: u64,
    pub window_ns: u64,
    pub max_hosts: usize,
    pub internal_nets: Vec<IpNet>,
    pub rules: FastDetectorConfig,
    pub behaviours: BehaviourConfig,
    pub cooldown_ns: u64,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl EngineConfig {
    pub fn from_sniffer(c: &Sniffer) -> Self {
        Self {
            sensor_id: c.sensor_id.clone(),
            capacity: c.flow_capacity as usize,
            shards: c.flow_shards as usize,
            idle_ns: nanos(c.idle_timeout),
            active_ns: nanos(c.active_timeout),
            window_ns: nanos(c.context_window),
            max_hosts: c.max_hosts as usize,
            internal_nets: c.internal_nets.clone(),
            rules: c.fast_detector.clone(),
            behaviours: c.behaviours.clone(),
            cooldown_ns: nanos(c.cooldown),
        }
    }

    /// TCP ports whose payload heads the engine reads, in either direction (the XDP program
    /// copies them): the web ports and what the enabled behaviours read.
    pub fn head_ports(&self) -> Vec<u16> {
        let mut v = self.rules.web_ports.clone();
        for b in behave::from_config(&self.behaviours, &self.rules.web_ports) {
            v.extend(b.head_ports());
        }
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Where packets of one capture source come from, stamped on its flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub interface: String,
    pub role: InterfaceRole,
    pub mode: CaptureMode,
}

/// What the engine emits.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Flow(Box<FlowEvent>),
    Alert(FastAlert),
}

/// Why a flow was exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// RST, or FIN in both directions (after the linger).
    Closed,
    IdleTimeout,
    ActiveTimeout,
    /// The table (shard) was full: the least recently active flow made room.
    Evicted,
    /// End of input.
    Flushed,
}

/// Running totals, exported as metrics by the sniffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub flows_created: u64,
    pub flows_closed: u64,
    pub flows_idle: u64,
    pub flows_active_timeout: u64,
    pub flows_evicted: u64,
    pub flows_flushed: u64,
    pub snapshots: u64,
    pub hosts_evicted: u64,
    pub dns_queries: u64,
    pub alerts: u64,
    /// Evidence the behaviours reported (each may raise an alert or only a score).
    pub evidence: u64,
}

impl Counters {
    /// Flows exported as finished, whatever the reason.
    pub fn flows_exported(&self) -> u64 {
        self.flows_closed
            + self.flows_idle
            + self.flows_active_timeout
            + self.flows_evicted
            + self.flows_flushed
    }
}

#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools, reason = "TCP state of the flow, one bit each")]
struct Flow {
    stats: FlowStats,
    start_ns: u64,
    last_ns: u64,
    /// The initiator is endpoint `a` of the key.
    init_is_a: bool,
    source: u8,
    fin_fwd: bool,
    fin_bwd: bool,
    /// The initiator opened with a SYN.
    syn: bool,
    /// The responder answered with SYN+ACK.
    syn_ack: bool,
    /// The initiator acknowledged the SYN+ACK.
    established: bool,
    /// The responder sent a packet back that is not a RST.
    answered: bool,
    closing_ns: Option<u64>,
}

#[derive(Debug)]
struct Shard {
    flows: LruMap<FlowKey, Flow>,
    /// Flows that closed, in closing order, with their closing time.
    closing: VecDeque<(FlowKey, u64)>,
}

/// Everything but the flow table, so that exporting can borrow it while a shard is borrowed.
#[derive(Debug)]
struct Context {
    cfg: EngineConfig,
    sources: Vec<SourceInfo>,
    hosts: LruMap<IpAddr, HostState>,
    counters: Counters,
    ids: EventIds,
    now_ns: u64,
    name: String,
    behaviours: Vec<Box<dyn Behaviour>>,
    /// Per behaviour, its index in [`behave::KINDS`].
    kinds: Vec<usize>,
    evidence: Vec<Evidence>,
    measures: Vec<behave::Measure>,
}

/// Flow table + host context + fast detector.
#[derive(Debug)]
pub struct Engine {
    shards: Vec<Shard>,
    ctx: Context,
    last_sweep_ns: u64,
}

impl Engine {
    /// Takes new fast-rule thresholds, cool-down and internal networks (a config change
    /// while running); flows, host context and open episodes are kept.
    pub fn set_policy(
        &mut self,
        rules: FastDetectorConfig,
        cooldown_ns: u64,
        internal_nets: Vec<IpNet>,
    ) {
        self.ctx.cfg.rules = rules;
        self.ctx.cfg.cooldown_ns = cooldown_ns;
        self.ctx.cfg.internal_nets = internal_nets;
    }

    /// `sources[i]` describes records whose `source` is `i`.
    pub fn new(cfg: EngineConfig, sources: Vec<SourceInfo>) -> Self {
        let shards = cfg.shards.max(1).next_power_of_two();
        let per_shard = cfg.capacity.div_ceil(shards).max(1);
        let behaviours = behave::from_config(&cfg.behaviours, &cfg.rules.web_ports);
        Self {
            shards: (0..shards)
                .map(|_| Shard { flows: LruMap::new(per_shard), closing: VecDeque::new() })
                .collect(),
            ctx: Context {
                hosts: LruMap::new(cfg.max_hosts.max(1)),
                sources,
                counters: Counters::default(),
                ids: EventIds::new(),
                now_ns: 0,
                name: String::new(),
                kinds: behave::kinds(&behaviours),
                behaviours,
                evidence: Vec::new(),
                measures: Vec::new(),
                cfg,
            },
            last_sweep_ns: 0,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.ctx.counters
    }

    /// Flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.shards.iter().map(|s| s.flows.len()).sum()
    }

    /// Hosts currently tracked.
    pub fn hosts(&self) -> usize {
        self.ctx.hosts.len()
    }

    /// The engine's clock (latest packet or [`Engine::advance`] time), Unix ns.
    pub fn now_ns(&self) -> u64 {
        self.ctx.now_ns
    }

    /// Accounts one packet.
    pub fn process(&mut self, rec: &PacketRecord<'_>, out: &mut impl FnMut(Output)) {
        let ctx = &mut self.ctx;
        ctx.counters.packets += 1;
        ctx.now_ns = ctx.now_ns.max(rec.ts_ns);
        if ctx.now_ns >= self.last_sweep_ns.saturating_add(SWEEP_EVERY_NS) {
            self.sweep(out);
        }
        let (key, from_a) = FlowKey::of(
            EndpointKey::new(rec.src, rec.src_port),
            EndpointKey::new(rec.dst, rec.dst_port),
            rec.proto,
        );
        let mask = self.shards.len() - 1;
        let shard = &mut self.shards[usize::try_from(key.shard_hash()).unwrap_or(0) & mask];
        let ctx = &mut self.ctx;
        let tcp = rec.proto == proto::TCP;
        let syn_only = tcp && rec.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;

        // One lookup: add to the flow, end it and start anew, or start one.
        let active_ns = ctx.cfg.active_ns;
        let mut answer = false;
        let mut handshake_done = false;
        // The flow's initiator side and handshake state, for the behaviours.
        let mut meta = None;
        let ended = match shard.flows.get_mut(&key) {
            Some(f) if f.closing_ns.is_some() && syn_only => Some(Some(EndReason::Closed)),
            Some(f) if rec.ts_ns.saturating_sub(f.start_ns) > active_ns => {
                Some(Some(EndReason::ActiveTimeout))
            }
            Some(f) => {
                let forward = from_a == f.init_is_a;
                if !forward && !f.answered && rec.tcp_flags & tcp_flags::RST == 0 {
                    f.answered = true;
                    answer = true;
                }
                if forward
                    && f.syn_ack
                    && !f.established
                    && rec.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST)
                        == tcp_flags::ACK
                {
                    f.established = true;
                    handshake_done = true;
                }
                f.add(rec, forward, &mut shard.closing, key);
                meta = Some((f.init_is_a, f.established));
                None
            }
            None => Some(None),
        };
        // `Some(reason)`: the old flow ended; `Some(None)`: there was none.
        let started = ended.is_some();
        if let Some(Some(reason)) = ended
            && let Some(old) = shard.flows.remove(&key)
        {
            ctx.export(key, &old, reason, out);
        }
        if started {
            let mut flow = Flow::new(rec, from_a);
            flow.update_tcp_state(rec, true, &mut shard.closing, key);
            meta = Some((flow.init_is_a, false));
            ctx.counters.flows_created += 1;
            if let Some((old_key, old)) = shard.flows.insert_new(key, flow) {
                ctx.export(old_key, &old, EndReason::Evicted, out);
            }
        }

        if answer {
            ctx.on_answer(rec.dst, rec.src);
        }
        let established = meta.is_some_and(|(_, e)| e);
        let mut fired = ctx.on_packet(rec, started, established);
        if let Some((init_is_a, _)) = meta
            && !ctx.behaviours.is_empty()
        {
            let forward = from_a == init_is_a;
            let (initiator, responder) = key.oriented(init_is_a);
            let p = behave::Packet {
                rec,
                forward,
                new_flow: started,
                handshake_done,
                initiator: initiator.ip(),
                responder: responder.ip(),
                service_port: responder.port,
            };
            ctx.run_behaviours(|b, cx| b.on_packet(&p, cx));
            ctx.fire_evidence(&mut fired);
        }
        if fired.alerts.is_empty() && !fired.escalated {
            return;
        }
        let mut alerts = fired.alerts;
        if let Some(f) = shard.flows.peek(&key) {
            ctx.counters.snapshots += 1;
            let ev = ctx.event(key, f, true);
            alerts.drain(..).for_each(|a| out(Output::Alert(a)));
            out(Output::Flow(Box::new(ev)));
        }
    }

    /// Moves the clock to `now_ns` (when later than any packet) and exports flows that ended:
    /// live capture calls this periodically so idle flows leave without new packets.
    pub fn advance(&mut self, now_ns: u64, out: &mut impl FnMut(Output)) {
        self.ctx.now_ns = self.ctx.now_ns.max(now_ns);
        self.sweep(out);
    }

    /// Exports every flow still open (end of input or shutdown).
    pub fn flush(&mut self, out: &mut impl FnMut(Output)) {
        let ctx = &mut self.ctx;
        for shard in &mut self.shards {
            shard.closing.clear();
            shard.flows.drain_oldest_first(|k, f| {
                let reason =
                    if f.closing_ns.is_some() { EndReason::Closed } else { EndReason::Flushed };
                ctx.export(k, &f, reason, out);
            });
        }
    }

    /// Ends one capture (a file of several given in turn): exports every open flow, forgets
    /// the host context and the clock, so that the next capture starts as a fresh engine
    /// would, while counters and event ids go on. Without it, a later file's timestamps would
    /// expire an earlier file's flows with the later file's (empty) host context.
    pub fn end_capture(&mut self, out: &mut impl FnMut(Output)) {
        self.flush(out);
        let ctx = &mut self.ctx;
        ctx.hosts = LruMap::new(ctx.cfg.max_hosts.max(1));
        ctx.behaviours = behave::from_config(&ctx.cfg.behaviours, &ctx.cfg.rules.web_ports);
        ctx.kinds = behave::kinds(&ctx.behaviours);
        ctx.now_ns = 0;
        self.last_sweep_ns = 0;
    }

    /// Each behaviour's name and how full its state is.
    pub fn behaviour_state(&self) -> Vec<(&'static str, StateStats)> {
        self.ctx.behaviours.iter().map(|b| (b.name(), b.state())).collect()
    }

    fn sweep(&mut self, out: &mut impl FnMut(Output)) {
        let ctx = &mut self.ctx;
        let now = ctx.now_ns;
        self.last_sweep_ns = now;
        ctx.run_behaviours(|b, cx| b.on_tick(cx));
        ctx.emit_evidence(out);
        for shard in &mut self.shards {
            while let Some((&k, f)) = shard.flows.oldest() {
                if now.saturating_sub(f.last_ns) <= ctx.cfg.idle_ns {
                    break;
                }
                let reason =
                    if f.closing_ns.is_some() { EndReason::Closed } else { EndReason::IdleTimeout };
                if let Some((_, f)) = shard.flows.pop_oldest() {
                    ctx.export(k, &f, reason, out);
                }
            }
            while let Some(&(k, t)) = shard.closing.front() {
                if now.saturating_sub(t) < CLOSE_LINGER_NS {
                    break;
                }
                shard.closing.pop_front();
                if shard.flows.peek(&k).is_some_and(|f| f.closing_ns == Some(t))
                    && let Some(f) = shard.flows.remove(&k)
                {
                    ctx.export(k, &f, EndReason::Closed, out);
                }
            }
        }
    }
}

impl Flow {
    fn new(rec: &PacketRecord<'_>, from_a: bool) -> Self {
        Self {
            stats: FlowStats::new(rec),
            start_ns: rec.ts_ns,
            last_ns: rec.ts_ns,
            init_is_a: from_a,
            source: rec.source,
            fin_fwd: false,
            fin_bwd: false,
            syn: rec.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN,
            syn_ack: false,
            established: false,
            answered: false,
            closing_ns: None,
        }
    }

    fn add(
        &mut self,
        rec: &PacketRecord<'_>,
        forward: bool,
        closing: &mut VecDeque<(FlowKey, u64)>,
        key: FlowKey,
    ) {
        self.stats.add(rec, forward);
        self.last_ns = self.last_ns.max(rec.ts_ns);
        self.update_tcp_state(rec, forward, closing, key);
    }

    fn update_tcp_state(
        &mut self,
        rec: &PacketRecord<'_>,
        forward: bool,
        closing: &mut VecDeque<(FlowKey, u64)>,
        key: FlowKey,
    ) {
        if rec.proto != proto::TCP {
            return;
        }
        let flags = rec.tcp_flags;
        let syn_ack = tcp_flags::SYN | tcp_flags::ACK;
        if !forward && flags & syn_ack == syn_ack {
            self.syn_ack = true;
        }
        if flags & tcp_flags::FIN != 0 {
            if forward {
                self.fin_fwd = true;
            } else {
                self.fin_bwd = true;
            }
        }
        let closed = flags & tcp_flags::RST != 0 || (self.fin_fwd && self.fin_bwd);
        if closed && self.closing_ns.is_none() {
            self.closing_ns = Some(self.last_ns);
            closing.push_back((key, self.last_ns));
        }
    }
}

impl Context {
    /// Runs `f` over every behaviour; their evidence waits in `self.evidence`.
    fn run_behaviours(&mut self, mut f: impl FnMut(&mut dyn Behaviour, &mut behave::Cx<'_>)) {
        let mut cx = behave::Cx {
            now_ns: self.now_ns,
            internal_nets: &self.cfg.internal_nets,
            out: &mut self.evidence,
            kind: 0,
            measures: &mut self.measures,
        };
        for (b, &kind) in self.behaviours.iter_mut().zip(&self.kinds) {
            cx.kind = kind;
            f(b.as_mut(), &mut cx);
        }
        if !self.measures.is_empty() {
            let now = behave::level::secs(self.now_ns);
            // Taken for the loop (it needs `self`), given back empty to keep its capacity.
            let mut measures = std::mem::take(&mut self.measures);
            for m in measures.drain(..) {
                self.host(m.host).levels.raise(&m, now);
            }
            self.measures = measures;
        }
    }

    /// Adds the behaviours' evidence to its hosts' episodes.
    fn fire_evidence(&mut self, fired: &mut Fired) {
        if self.evidence.is_empty() {
            return;
        }
        let (now, cooldown) = (self.now_ns, self.cfg.cooldown_ns);
        let evidence = std::mem::take(&mut self.evidence);
        self.counters.evidence += evidence.len() as u64;
        let before = fired.alerts.len();
        for mut e in evidence {
            e.hit.target = e.role == Role::Target;
            let h = self.host(e.host);
            fast::fire(&mut h.episode, [e.hit], e.host, now, cooldown, fired);
        }
        self.counters.alerts += (fired.alerts.len() - before) as u64;
    }

    /// [`Context::fire_evidence`] where no flow is at hand to export early: the alerts go out.
    fn emit_evidence(&mut self, out: &mut impl FnMut(Output)) {
        let mut fired = Fired::default();
        self.fire_evidence(&mut fired);
        fired.alerts.into_iter().for_each(|a| out(Output::Alert(a)));
    }

    fn host(&mut self, ip: IpAddr) -> &mut HostState {
        let window = self.cfg.window_ns;
        let (host, evicted) = self.hosts.get_or_insert_with(ip, || HostState::new(window));
        if evicted.is_some() {
            self.counters.hosts_evicted += 1;
        }
        host
    }

    fn is_external(&self, ip: IpAddr) -> bool {
        !self.cfg.internal_nets.iter().any(|n| n.contains(&ip))
    }

    /// Host bookkeeping for one packet; returns the alerts it raised and whether a score
    /// escalated.
    fn on_packet(&mut self, rec: &PacketRecord<'_>, new_flow: bool, established: bool) -> Fired {
        let mut fired = Fired::default();
        // A TCP flow whose first packet is a SYN-ACK or a reset was opened by the other side
        // (its SYN went unseen, or the flow it answers has ended: a server's SYN-ACK
        // retransmitted to a forged source outlives the SYN's flow). Its sender opened nothing.
        let reply = rec.proto == proto::TCP
            && (rec.tcp_flags & tcp_flags::RST != 0
                || rec.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK)
                    == tcp_flags::SYN | tcp_flags::ACK);
        if new_flow && !reply {
            self.on_new_flow(rec, &mut fired);
        }
        self.on_rates(rec, established, &mut fired);
        if rec.proto == proto::UDP && rec.dst_port == 53 && !rec.payload_head.is_empty() {
            self.on_dns_query(rec);
        }
        if rec.proto == proto::TCP
            && !rec.payload_head.is_empty()
            && self.cfg.rules.web_ports.contains(&rec.dst_port)
        {
            self.on_http_request(rec, &mut fired);
        }
        self.counters.alerts += fired.alerts.len() as u64;
        fired
    }

    /// A flow opened by `rec.src`: destinations, ports, SMB, login-service bursts.
    fn on_new_flow(&mut self, rec: &PacketRecord<'_>, fired: &mut Fired) {
        let now = self.now_ns;
        let (window, cooldown) = (self.cfg.window_ns, self.cfg.cooldown_ns);
        let external = self.is_external(rec.dst);
        let rules = &self.cfg.rules;
        let login = rec.proto == proto::TCP
            && (rules.bruteforce_ports.is_empty()
                || rules.bruteforce_ports.contains(&rec.dst_port));
        let (ports_thr, hosts_thr) = (rules.scan_distinct_ports, rules.scan_distinct_hosts);
        let (smb_thr, brute_thr) = (rules.smb_distinct_hosts, rules.bruteforce_conns);
        let h = self.host(rec.src);
        h.counters.add(now, counter::FLOWS, 1);
        let dst = ip_value(rec.dst);
        h.dsts.insert(dst, now);
        if external {
            h.external_dsts.insert(dst, now);
            if !h.answered.contains(dst, now, window) {
                h.silent_external.insert(dst, now);
            }
        }
        let ported = rec.proto == proto::TCP || rec.proto == proto::UDP;
        if ported {
            h.ports.insert(u64::from(rec.dst_port), now);
            if SMB_PORTS.contains(&rec.dst_port) {
                h.smb_dsts.insert(ip_value(rec.dst), now);
            }
        }
        let burst = login.then(|| h.on_service_conn((rec.dst, rec.dst_port), now, window));
        let ports = h.ports.count(now, window);
        // A sweep: internal hosts, or external ones that do not answer. Peer-to-peer clients and
        // conferencing apps reach dozens of external hosts that answer.
        let internal = h.dsts.count(now, window).saturating_sub(h.external_dsts.count(now, window));
        let silent = h.silent_external.count(now, window);
        let dsts = internal + silent;
        let smb = h.smb_dsts.count(now, window);
        let secs = window / 1_000_000_000;
        let mut hits: Vec<Hit> = [
            check(rule::SCAN_PORTS, f64::from(ports), f64::from(ports_thr), || {
                format!("{} probed {ports} distinct destination ports within {secs} s (threshold {ports_thr})", rec.src)
            }),
            check(rule::SCAN_HOSTS, f64::from(dsts), f64::from(hosts_thr), || {
                format!("{} contacted {dsts} distinct hosts within {secs} s, {internal} internal and {silent} external that did not answer (threshold {hosts_thr})", rec.src)
            }),
            check(rule::SMB_SPREAD, f64::from(smb), f64::from(smb_thr), || {
                format!("{} opened SMB/NetBIOS (445/139) connections to {smb} hosts within {secs} s (threshold {smb_thr})", rec.src)
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(b) = burst {
            hits.extend(check(rule::BRUTEFORCE, f64::from(b.conns), f64::from(brute_thr), || {
                let span = b.last_ns.saturating_sub(b.first_ns) / 1_000_000_000;
                format!(
                    "{} opened {} connections to login service {}:{} in {span} s, each within {secs} s of the last (threshold {brute_thr})",
                    rec.src, b.conns, rec.dst, rec.dst_port
                )
            }));
        }
        fast::fire(&mut h.episode, hits, rec.src, now, cooldown, fired);
        self.host(rec.dst).sources.insert(ip_value(rec.src), now);
    }

    /// The first packet back (not a RST) on a flow `initiator` opened to `responder`.
    fn on_answer(&mut self, initiator: IpAddr, responder: IpAddr) {
        let now = self.now_ns;
        let h = self.host(initiator);
        let v = ip_value(responder);
        h.answered.insert(v, now);
        h.silent_external.remove(v);
    }

    /// Packets sent and received per second: the flood rules, evaluated as the count of the
    /// current second steps through the threshold and on up to twice it (see [`fast::rate_step`]).
    /// `flood.source` leaves out packets of TCP connections whose handshake completed: the
    /// receiver's window paces those (a backup or a download at line rate is not a flood).
    fn on_rates(&mut self, rec: &PacketRecord<'_>, established: bool, fired: &mut Fired) {
        let now = self.now_ns;
        let (window, cooldown) = (self.cfg.window_ns, self.cfg.cooldown_ns);
        let (flood_thr, victim_thr, min_sources) = (
            self.cfg.rules.flood_packets_per_sec,
            self.cfg.rules.flood_victim_packets_per_sec,
            self.cfg.rules.flood_victim_min_sources,
        );
        let h = self.host(rec.src);
        h.sent.tick(now);
        let sent = if established { 0 } else { h.unpaced_sent.tick(now) };
        if rec.proto == proto::TCP {
            h.counters.add(now, counter::TCP_SENT, 1);
            if rec.tcp_flags & tcp_flags::RST != 0 {
                h.counters.add(now, counter::RST_SENT, 1);
            }
        }
        if fast::rate_step(sent, flood_thr) {
            let hit = check(rule::FLOOD_SOURCE, f64::from(sent), f64::from(flood_thr), || {
                format!(
                    "{} sent {sent} packets within one second outside established TCP connections (threshold {flood_thr})",
                    rec.src
                )
            });
            fast::fire(&mut h.episode, hit, rec.src, now, cooldown, fired);
        }
        let v = self.host(rec.dst);
        let received = v.received.tick(now);
        if fast::rate_step(received, victim_thr) {
            let sources = v.sources.count(now, window);
            if sources >= min_sources {
                let hit = check(
                    rule::FLOOD_VICTIM,
                    f64::from(received),
                    f64::from(victim_thr),
                    || {
                        format!(
                            "{} received {received} packets within one second from {sources} distinct sources (threshold {victim_thr} from {min_sources})",
                            rec.dst
                        )
                    },
                );
                // Scoped to the protocol of the packet that crossed the threshold: a SYN flood
                // does not mark the victim's DNS or ICMP traffic.
                let hit = hit.map(|h| Hit { target: true, service: Some((rec.proto, 0)), ..h });
                fast::fire(&mut v.episode, hit, rec.dst, now, cooldown, fired);
            }
        }
    }

    /// A DNS query from `rec.src`: its name's entropy and length for the host context (the
    /// forests' features; DNS abuse itself is judged by the DNS behaviour).
    fn on_dns_query(&mut self, rec: &PacketRecord<'_>) {
        let now = self.now_ns;
        let mut name = std::mem::take(&mut self.name);
        let cut = rec.payload_head.len() < usize::from(rec.payload_len);
        if dns::query_name(rec.payload_head, cut, &mut name) {
            self.counters.dns_queries += 1;
            let e = dns::entropy(&name);
            let h = self.host(rec.src);
            h.counters.add(now, counter::DNS_QUERIES, 1);
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "entropy ≤ 8 bits"
            )]
            h.counters.add(now, counter::DNS_ENTROPY_MILLI, (e * 1000.0) as u32);
            h.counters.add(now, counter::DNS_NAME_CHARS, u32::try_from(name.len()).unwrap_or(0));
        }
        self.name = name;
    }

    /// A TCP payload to a web port: `web.attack` when it starts a request with an attack
    /// pattern.
    fn on_http_request(&mut self, rec: &PacketRecord<'_>, fired: &mut Fired) {
        let Some((m, target)) = http::attack(rec.payload_head) else { return };
        let now = self.now_ns;
        let (window, cooldown) = (self.cfg.window_ns, self.cfg.cooldown_ns);
        let thr = self.cfg.rules.web_attack_requests;
        let h = self.host(rec.src);
        h.counters.add(now, counter::WEB_ATTACKS, 1);
        let n = h.counters.sum(now, counter::WEB_ATTACKS);
        let secs = window / 1_000_000_000;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let hit = check(rule::WEB_ATTACK, n as f64, f64::from(thr), || {
            let shown: String = target.chars().take(120).collect();
            format!(
                "{} sent {n} HTTP requests with attack patterns to web ports within {secs} s (threshold {thr}), e.g. {} ({:?}) in {shown:?} to {}:{}",
                rec.src, m.kind, m.pattern, rec.dst, rec.dst_port
            )
        });
        fast::fire(&mut h.episode, hit, rec.src, now, cooldown, fired);
    }

    /// The fast result for a flow: its initiator's open episode, plus a flood aimed at its
    /// responder.
    /// `proven`: the flow completed a TCP handshake; `service`: its protocol and responder
    /// port (a target-side hit scoped to a service marks only flows to that service);
    /// `last_ns`: its last packet (a flow over before the responder's episode opened is not
    /// part of what happened to it).
    fn fast_result(
        &self,
        initiator: IpAddr,
        responder: IpAddr,
        proven: bool,
        service: (u8, u16),
        last_ns: u64,
    ) -> FastDetection {
        let now = self.now_ns;
        let open = |ip| {
            self.hosts
                .peek(&ip)
                .and_then(|h| h.episode.as_ref())
                .filter(|e| e.is_open(now, self.cfg.cooldown_ns))
        };
        let mut result = open(initiator).map(|e| e.part(false)).unwrap_or_default();
        let in_scope = |h: &Hit| {
            h.service.is_none_or(|(p, port)| p == service.0 && (port == 0 || port == service.1))
        };
        let towards = |h: &Hit| {
            h.target && in_scope(h) && !(proven && behave::VICTIM_RULES.contains(&h.rule))
        };
        let Some(episode) = open(responder).filter(|e| last_ns >= e.opened_ns) else {
            return result;
        };
        let target = episode.part_where(towards);
        if !target.rule_ids.is_empty() {
            result.score = result.score.max(target.score);
            result.rule_ids.extend(target.rule_ids);
            result.reasons.extend(target.reasons);
        }
        // Which victim-side scope: this service, or only the whole address.
        let (mut service_hit, mut address_hit) = (false, false);
        for (h, _) in episode.hits.iter().filter(|(h, _)| towards(h)) {
            if behave::VICTIM_RULES.contains(&h.rule) {
                match h.service {
                    Some((_, port)) if port != 0 => service_hit = true,
                    _ => address_hit = true,
                }
            }
        }
        result.victim_all_ports = address_hit && !service_hit;
        result
    }

    fn event(&mut self, key: FlowKey, f: &Flow, snapshot: bool) -> FlowEvent {
        let (init_end, resp_end) = key.oriented(f.init_is_a);
        let (init, resp) = (init_end.ip(), resp_end.ip());
        let (now, window) = (self.now_ns, self.cfg.window_ns);
        let context = self.hosts.get_mut(&init).map(|h| h.context(now, window));
        let responder_context = self.hosts.get_mut(&resp).map(|h| h.context(now, window));
        // Only a completed handshake proves a source: replies to forged UDP or ICMP sources
        // are sent all the same.
        let proven = f.established;
        let secs = behave::level::secs(now);
        let source_levels = self.hosts.peek(&init).map(|h| h.levels.get(Role::Actor, secs));
        let responder_levels = self.hosts.peek(&resp).map(|h| {
            let mut l = h.levels.get(Role::Target, secs);
            // As the victim rules: a flooded service's real clients are not its attackers.
            if proven {
                l.half_open = 0.0;
            }
            l
        });
        let fast = self.fast_result(init, resp, proven, (key.proto, resp_end.port), f.last_ns);
        let source = self.sources.get(usize::from(f.source));
        let endpoint = |e: EndpointKey| mld_proto::Endpoint {
            ip: mld_proto::ip_to_bytes(e.ip()),
            port: u32::from(e.port),
        };
        FlowEvent {
            event_id: self.ids.next_id(),
            sensor_id: self.cfg.sensor_id.clone(),
            start_ns: f.start_ns,
            end_ns: f.last_ns,
            key: Some(mld_proto::FlowKey {
                a: Some(endpoint(key.a)),
                b: Some(endpoint(key.b)),
                ip_proto: u32::from(key.proto),
                initiator: if f.init_is_a { Direction::AToB } else { Direction::BToA }.into(),
            }),
            interface: source.map(|s| s.interface.clone()).unwrap_or_default(),
            interface_role: source.map_or(InterfaceRole::Unspecified, |s| s.role).into(),
            capture_mode: source.map_or(CaptureMode::Unspecified, |s| s.mode).into(),
            features: Some(f.stats.features()),
            source_context: context,
            responder_context,
            source_levels,
            responder_levels,
            fast: Some(fast),
            snapshot,
        }
    }

    fn export(&mut self, key: FlowKey, f: &Flow, reason: EndReason, out: &mut impl FnMut(Output)) {
        let c = &mut self.counters;
        match reason {
            EndReason::Closed => c.flows_closed += 1,
            EndReason::IdleTimeout => c.flows_idle += 1,
            EndReason::ActiveTimeout => c.flows_active_timeout += 1,
            EndReason::Evicted => c.flows_evicted += 1,
            EndReason::Flushed => c.flows_flushed += 1,
        }
        let (initiator, responder) = key.oriented(f.init_is_a);
        let end = behave::FlowEnd {
            initiator: initiator.ip(),
            responder: responder.ip(),
            initiator_port: initiator.port,
            service_port: responder.port,
            proto: key.proto,
            start_ns: f.start_ns,
            end_ns: f.last_ns,
            bwd_packets: f.stats.bwd_packets(),
            fwd_bytes: f.stats.fwd_bytes(),
            bwd_bytes: f.stats.bwd_bytes(),
            syn: f.syn,
            syn_ack: f.syn_ack,
        };
        self.run_behaviours(|b, cx| b.on_flow_end(&end, cx));
        self.emit_evidence(out);
        if f.syn {
            let now = self.now_ns;
            let h = self.host(initiator.ip());
            h.counters.add(now, counter::TCP_CONNS, 1);
            if !f.syn_ack {
                h.counters.add(now, counter::TCP_FAILED, 1);
            }
        }
        let ev = self.event(key, f, false);
        out(Output::Flow(Box::new(ev)));
    }
}
