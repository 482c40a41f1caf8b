//! The daemon (`firewall-agent run`): Detections from `detection.v1` in, nftables blocks and
//! service protections out (the response that fits the rules that fired: [`crate::policy`]).
//!
//! At start it reads its own addresses and gateways (allowlisted), rebuilds its blocks from the
//! audit log and replaces table `inet mldefender` with a fresh one holding them, in one
//! transaction. Then one thread receives Detections, decides ([`crate::policy`]), and applies
//! the blocks of each batch window in one `nft` transaction (retried, and undone in its state
//! and audited when nft refuses). Every second it audits the blocks that have ended (nftables
//! drops the elements itself). On shutdown it reads what is queued (up to 1 s), applies it, and
//! keeps or removes its table as configured. Each block, expiry, skip and cap hit is also
//! published as a sealed `FirewallAction` on `control.v1` (ADR 0003) for the RAG layer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mld_bus::{Publish, Publisher, Subscriber};
use mld_config::common::ValidEtcd;
use mld_config::daemons::firewall_agent::{FirewallAgent as Valid, OnExit};
use mld_control::restart_only;
use mld_crypto_transport::KeyRing;
use mld_daemon::{Control, Daemon, DaemonError, Membership, RunContext};
use mld_flow::id::EventIds;
use mld_proto::{Detection, FirewallAction, FirewallActionKind};
use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::metrics::family::Family;
use mld_telemetry::prometheus_client::metrics::gauge::Gauge;
use mld_telemetry::prometheus_client::registry::Registry;

use crate::audit::{Action, AuditLog, Record, now_ns};
use crate::nft::{self, Nft};
use crate::policy::{Block, Outcome, Protection, Rules, Shield, State};

/// Where conntrack's mid-stream pickup is set; the SYN proxy needs it off.
const TCP_LOOSE: &str = "/proc/sys/net/netfilter/nf_conntrack_tcp_loose";

/// How long a shutdown keeps reading queued Detections.
const DRAIN: Duration = Duration::from_secs(1);
/// Attempts per nft transaction.
const NFT_TRIES: u32 = 3;

/// Flags of `firewall-agent run` (none yet: everything is in the config).
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {}

type Labels = Vec<(&'static str, String)>;

/// `mld_firewall_agent_*` metrics.
#[derive(Debug, Clone, Default)]
struct Metrics {
    outcomes: Family<Labels, Counter>,
    nft_transactions: Counter,
    nft_errors: Counter,
    blocked: Gauge,
    protected: Gauge,
}

impl Metrics {
    fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register(
            "decisions",
            "Responses by outcome: block, protect, below_threshold, no_address, monitor_only, allowlisted, special, forgeable, unproven, source_spared, inside_destination, already_blocked, already_protected, rate_capped, set_full, protect_capped",
            m.outcomes.clone(),
        );
        r.register("nft_transactions", "nft transactions applied", m.nft_transactions.clone());
        r.register("nft_errors", "nft transactions that failed (each try)", m.nft_errors.clone());
        r.register("blocked_addresses", "Addresses blocked now", m.blocked.clone());
        r.register(
            "protected_services",
            "Services (address, protocol, port) under a SYN proxy or rate limit now",
            m.protected.clone(),
        );
        m
    }

    /// The blocks and protections in force, from `state`.
    fn in_force(&self, state: &State) {
        self.blocked.set(i64::try_from(state.len()).unwrap_or(i64::MAX));
        self.protected.set(i64::try_from(state.protected().count()).unwrap_or(i64::MAX));
    }

    fn outcome(&self, name: &str) {
        self.outcomes.get_or_create(&vec![("outcome", name.to_owned())]).inc();
    }
}

/// The daemon.
pub struct FirewallDaemon {
    config: Valid,
    /// The bus key ring, which follows etcd's key epoch.
    ring: Arc<KeyRing>,
    rules: Rules,
    /// This host's addresses (allowlisted when `allowlist_local_addresses`).
    local: Vec<std::net::IpAddr>,
    /// Configs applied while running, from the control plane to the work loop.
    reloads: (std::sync::mpsc::Sender<Reload>, std::sync::mpsc::Receiver<Reload>),
    state: State,
    audit: AuditLog,
    nft: Nft,
    subscriber: Subscriber<Detection>,
    /// `control.v1`: what the agent did.
    publisher: Publisher,
    action_ids: EventIds,
    metrics: Metrics,
    pending: Vec<Block>,
    pending_protect: Vec<Protection>,
    first_pending: Option<Instant>,
    /// Whether TCP services can go through the SYN proxy (conntrack does not pick up
    /// connections mid-stream); else they are rate-limited.
    synproxy_ok: bool,
}

impl Daemon for FirewallDaemon {
    const NAME: &'static str = crate::NAME;
    const ABOUT: &'static str = crate::ABOUT;
    type Config = crate::Config;
    type Flags = Flags;

    fn metrics_listen(config: &Valid) -> Option<SocketAddr> {
        config.metrics.listen
    }

    /// The audit log's folder (the unit's `StateDirectory`).
    fn state_dirs(config: &Valid) -> Vec<(&'static str, std::path::PathBuf)> {
        vec![("audit_dir", config.audit_dir.clone())]
    }

    fn setup(config: Valid, _flags: Flags, registry: &mut Registry) -> Result<Self, DaemonError> {
        let ring = mld_daemon::key_ring(&config.transport)?;
        let local = if config.allowlist_local_addresses {
            crate::local::detect()
                .context("reading this host's addresses (allowlist_local_addresses)")
                .map_err(DaemonError::unavailable)?
        } else {
            Vec::new()
        };
        let rules = Rules::new(&config, &local);
        let dir = &config.audit_dir;
        let (records, unreadable) = crate::audit::read_all(dir)
            .with_context(|| format!("reading the audit log in {} (audit_dir)", dir.display()))
            .map_err(DaemonError::unavailable)?;
        if unreadable > 0 {
            tracing::warn!(lines = unreadable, dir = %dir.display(), "audit lines that do not parse were skipped");
        }
        let now = now_ns();
        // A dry-run agent goes on from its earlier dry-run decisions (what `status` lists and
        // `blocked_addresses` counts); a real one from the blocks it put into nftables.
        let state = if config.dry_run {
            crate::audit::replay_dry_run(&records, now)
        } else {
            crate::audit::replay(&records, now)
        };
        let audit = AuditLog::open(dir)
            .with_context(|| format!("opening the audit log in {} (audit_dir)", dir.display()))
            .map_err(DaemonError::unavailable)?;
        let nft = Nft::new(&config.nft);
        let response = &config.response;
        if config.dry_run {
            tracing::warn!("dry_run: decisions are audited, nftables is not touched");
        } else {
            let table = nft::render_table(
                &rules.allowlist,
                config.max_set_elements,
                response.limit_packets_per_sec,
            );
            nft.apply(&table)
                .context("creating table inet mldefender (the agent needs CAP_NET_ADMIN)")
                .map_err(DaemonError::unavailable)?;
        }
        // Read after the table is in: its conntrack rules load the module that makes the file.
        let loose = std::fs::read_to_string(TCP_LOOSE).map(|s| s.trim().to_owned());
        let synproxy_ok = loose.as_deref().is_ok_and(|l| l == "0");
        if response.tcp == mld_config::daemons::firewall_agent::TcpProtection::Synproxy
            && !synproxy_ok
        {
            tracing::warn!(
                file = TCP_LOOSE,
                value = %loose.as_deref().unwrap_or("unreadable"),
                "response.tcp is synproxy but conntrack picks up connections mid-stream: TCP services under a flood are rate-limited instead (set net.netfilter.nf_conntrack_tcp_loose=0; scripts/install.sh writes /etc/sysctl.d/60-mldefender.conf)"
            );
        }
        if !config.dry_run {
            let blocks: Vec<_> = state
                .active()
                .map(|b| (b.addr, Duration::from_nanos(b.until_ns.saturating_sub(now))))
                .collect();
            let protections = shields(state.protected(), response.tcp, synproxy_ok, now);
            nft.apply(&(nft::render_blocks(&blocks) + &nft::render_protections(&protections)))
                .context("restoring the blocks and protections in force")
                .map_err(DaemonError::unavailable)?;
        }
        let ctx = zmq::Context::new();
        let publisher = mld_daemon::bus_publisher(
            &ctx,
            Arc::clone(&ring),
            &config.publish,
            mld_bus::Topic::Control,
            registry,
        )?;
        let subscriber =
            mld_daemon::bus_subscriber(&ctx, Arc::clone(&ring), &config.subscribe, registry)?;
        let metrics = Metrics::register(registry);
        metrics.in_force(&state);
        tracing::info!(
            restored = state.len(),
            protected = state.protected().count(),
            synproxy = synproxy_ok,
            allowlisted_nets = rules.allowlist.len(),
            local_addresses = local.len(),
            "table inet mldefender ready"
        );
        Ok(Self {
            config,
            ring,
            rules,
            local,
            reloads: std::sync::mpsc::channel(),
            state,
            audit,
            nft,
            subscriber,
            publisher,
            action_ids: EventIds::new(),
            metrics,
            pending: Vec::new(),
            pending_protect: Vec::new(),
            first_pending: None,
            synproxy_ok,
        })
    }

    async fn run(self, ctx: RunContext) -> Result<(), DaemonError> {
        mld_daemon::run_blocking(ctx, "firewall", move |stop, readiness| self.work(stop, readiness))
            .await
    }

    fn etcd(config: &Valid) -> Option<&ValidEtcd> {
        Some(&config.etcd)
    }

    /// Registers, follows the key epoch, and applies a new config's block policy (verdict
    /// and score thresholds, durations, monitor-only detectors, allowlist, per-minute cap,
    /// batch window, `on_exit`) while running. The allowlist sets change in nftables here, in
    /// one transaction, so that a refusal rolls the config back; the rest is taken by the
    /// work loop before its next Detection. Every other field changes only at restart.
    fn control(&mut self) -> Membership<Valid> {
        let running = self.config.clone();
        let local = self.local.clone();
        let nft = self.nft.clone();
        let mut allowlist = self.rules.allowlist.clone();
        let to_loop = self.reloads.0.clone();
        let apply = move |new: &Valid| {
            restart_only("subscribe", &running.subscribe, &new.subscribe)?;
            restart_only("publish", &running.publish, &new.publish)?;
            restart_only("dry_run", &running.dry_run, &new.dry_run)?;
            restart_only(
                "caps.max_set_elements",
                &running.max_set_elements,
                &new.max_set_elements,
            )?;
            restart_only(
                "allowlist_local_addresses",
                &running.allowlist_local_addresses,
                &new.allowlist_local_addresses,
            )?;
            restart_only("audit_dir", &running.audit_dir, &new.audit_dir)?;
            restart_only("nft", &running.nft, &new.nft)?;
            restart_only("response.tcp", &running.response.tcp, &new.response.tcp)?;
            restart_only(
                "response.limit_packets_per_sec",
                &running.response.limit_packets_per_sec,
                &new.response.limit_packets_per_sec,
            )?;
            restart_only("metrics", &running.metrics, &new.metrics)?;
            restart_only("etcd", &running.etcd, &new.etcd)?;
            restart_only("transport", &running.transport, &new.transport)?;
            let rules = Rules::new(new, &local);
            if rules.allowlist != allowlist && !running.dry_run {
                nft.apply(&nft::render_allowlist(&rules.allowlist))
                    .map_err(|e| format!("updating the allowlist sets: {e}"))?;
                allowlist.clone_from(&rules.allowlist);
            }
            to_loop
                .send(Reload { rules, config: new.clone() })
                .map_err(|_| "the firewall loop has stopped".to_owned())
        };
        Membership::Join(Control { ring: Arc::clone(&self.ring), apply: Box::new(apply) })
    }
}

/// A config applied while running, with the rules it sets.
struct Reload {
    rules: Rules,
    config: Valid,
}

impl FirewallDaemon {
    fn work(
        mut self,
        stop: &AtomicBool,
        readiness: &mld_telemetry::Readiness,
    ) -> Result<(), DaemonError> {
        readiness.set(true);
        let mut last_expire = Instant::now();
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                drain_until = Some(Instant::now() + DRAIN);
            }
            if let Ok(r) = self.reloads.1.try_recv() {
                tracing::info!(
                    min_score = r.rules.min_score,
                    block_secs = r.rules.duration.as_secs(),
                    allowlisted_nets = r.rules.allowlist.len(),
                    max_new_blocks_per_minute = r.rules.max_new_blocks_per_minute,
                    "block policy reloaded"
                );
                self.rules = r.rules;
                self.config = r.config;
            }
            let wait = match (drain_until, self.first_pending) {
                (Some(_), _) => Duration::from_millis(20),
                (None, Some(t0)) => self.config.batch_window.saturating_sub(t0.elapsed()),
                (None, None) => Duration::from_millis(100),
            };
            match self.subscriber.recv(wait).map_err(DaemonError::failure)? {
                Some(r) => self.handle(&r.message),
                None if drain_until.is_some() => break,
                None => {}
            }
            if self.first_pending.is_some_and(|t0| t0.elapsed() >= self.config.batch_window) {
                self.apply_batch();
            }
            if last_expire.elapsed() >= Duration::from_secs(1) {
                last_expire = Instant::now();
                self.expire();
            }
            if drain_until.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.apply_batch();
        self.expire();
        if self.config.on_exit == OnExit::Remove && !self.config.dry_run {
            match self.nft.apply(&nft::render_remove()) {
                Ok(()) => self.audit(&Record::new(Action::TableRemoved, now_ns())),
                Err(e) => tracing::error!(error = %e, "removing table inet mldefender failed"),
            }
        }
        if let Err(e) = self.audit.flush() {
            tracing::error!(error = %e, "syncing the audit log failed");
        }
        tracing::info!(blocked = self.state.len(), on_exit = ?self.config.on_exit, "stopped");
        Ok(())
    }

    /// Writes `r` to the audit log and publishes it on `control.v1` when it is an action on an
    /// address that `FirewallAction` has a kind for.
    fn audit(&mut self, r: &Record) {
        if let Err(e) = self.audit.write(r) {
            tracing::error!(error = %e, "writing the audit log failed");
        }
        let kind = match r.action {
            Action::Block => FirewallActionKind::Block,
            Action::Expire => FirewallActionKind::Expired,
            Action::SkipAllowlisted | Action::SkipSpecial => FirewallActionKind::SkippedAllowlisted,
            Action::RateCapped => FirewallActionKind::RateCapped,
            Action::SetFull => FirewallActionKind::SetFull,
            Action::Protect => FirewallActionKind::Protect,
            Action::ProtectEnded => FirewallActionKind::ProtectEnded,
            Action::MonitorOnly
            | Action::SkipForgeable
            | Action::SkipInsideDestination
            | Action::ProtectCapped
            | Action::NftFailed
            | Action::TableRemoved => return,
        };
        let Some(addr) = r.addr else { return };
        let action = FirewallAction {
            action_id: self.action_ids.next_id(),
            at_ns: r.at_ns,
            kind: kind.into(),
            address: mld_proto::ip_to_bytes(addr),
            reason: r.reason.clone(),
            detection_id: r.detection_id.clone(),
            until_ns: if matches!(r.action, Action::Block | Action::Protect) {
                r.until_ns.unwrap_or(0)
            } else {
                0
            },
            dry_run: r.dry_run,
            ip_proto: r.proto.map_or(0, u32::from),
            port: r.port.map_or(0, u32::from),
        };
        match self.publisher.publish(&action) {
            Ok(Publish::Sent | Publish::Dropped) => {} // drops are counted by the bus
            Err(e) => tracing::error!(error = %e, "publishing a FirewallAction failed"),
        }
    }

    fn handle(&mut self, d: &Detection) {
        let now = now_ns();
        for outcome in self.state.consider(&self.rules, d, now) {
            self.act(d, outcome, now);
        }
    }

    /// Queues, audits or counts one outcome of `d`.
    fn act(&mut self, d: &Detection, outcome: Outcome, now: u64) {
        let skip = |action, addr, reason: String| Record {
            addr: Some(addr),
            detection_id: d.detection_id.clone(),
            detector: crate::policy::decider(d).to_owned(),
            reason,
            dry_run: self.config.dry_run,
            ..Record::new(action, now)
        };
        let (name, record) = match outcome {
            Outcome::Block(b) => {
                self.pending.push(b);
                self.first_pending.get_or_insert_with(Instant::now);
                ("block", None)
            }
            Outcome::Protect(p) => {
                self.pending_protect.push(p);
                self.first_pending.get_or_insert_with(Instant::now);
                ("protect", None)
            }
            Outcome::BelowThreshold => ("below_threshold", None),
            Outcome::NoAddress => ("no_address", None),
            Outcome::AlreadyBlocked { .. } => ("already_blocked", None),
            Outcome::AlreadyProtected { .. } => ("already_protected", None),
            Outcome::MonitorOnly { addr, detector } => (
                "monitor_only",
                Some(skip(Action::MonitorOnly, addr, format!("{detector} is monitor-only"))),
            ),
            Outcome::Allowlisted { addr, net } => (
                "allowlisted",
                Some(skip(Action::SkipAllowlisted, addr, format!("allowlisted by {net}"))),
            ),
            Outcome::Special { addr, kind } => {
                ("special", Some(skip(Action::SkipSpecial, addr, format!("{kind} address"))))
            }
            Outcome::Forgeable { addr } => (
                "forgeable",
                Some(skip(
                    Action::SkipForgeable,
                    addr,
                    "an inside address (internal_nets) on evidence a forger could produce: this flow carried no TCP payload both ways".to_owned(),
                )),
            ),
            // Counted, not audited: a spoofed flood makes one per forged source, and the
            // protection's own record says why no source is blocked.
            Outcome::SourceSpared { .. } => ("source_spared", None),
            Outcome::Unproven { .. } => ("unproven", None),
            Outcome::InsideDestination { addr } => (
                "inside_destination",
                Some(skip(
                    Action::SkipInsideDestination,
                    addr,
                    "the server of a destination rule (response.destination_rules) is inside (internal_nets), e.g. the resolver: never blocked".to_owned(),
                )),
            ),
            Outcome::ProtectCapped { service } => (
                "protect_capped",
                Some(Record {
                    proto: Some(service.proto),
                    port: Some(service.port),
                    ..skip(
                        Action::ProtectCapped,
                        service.addr,
                        format!(
                            "{service}: {} services protected already (response.max_protected_services)",
                            self.rules.max_protected_services
                        ),
                    )
                }),
            ),
            Outcome::RateCapped { addr } => (
                "rate_capped",
                Some(skip(
                    Action::RateCapped,
                    addr,
                    format!(
                        "{} new blocks in the last minute (caps.max_new_blocks_per_minute)",
                        self.rules.max_new_blocks_per_minute
                    ),
                )),
            ),
            Outcome::SetFull { addr } => (
                "set_full",
                Some(skip(
                    Action::SetFull,
                    addr,
                    format!(
                        "{} addresses blocked (caps.max_set_elements)",
                        self.rules.max_set_elements
                    ),
                )),
            ),
        };
        self.metrics.outcome(name);
        if let Some(r) = record {
            tracing::info!(action = ?r.action, addr = ?r.addr, reason = %r.reason, "not blocked");
            self.audit(&r);
        }
    }

    /// The shield a service gets under the running config.
    fn shield(&self, proto: u8) -> Shield {
        Shield::for_proto(proto, self.config.response.tcp, self.synproxy_ok)
    }

    fn apply_batch(&mut self) {
        self.first_pending = None;
        if self.pending.is_empty() && self.pending_protect.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let protect = std::mem::take(&mut self.pending_protect);
        let now = now_ns();
        let mut applied = self.config.dry_run;
        if !applied {
            let elements: Vec<_> = batch
                .iter()
                .map(|b| (b.addr, Duration::from_nanos(b.until_ns.saturating_sub(now))))
                .collect();
            let protections =
                shields(protect.iter(), self.config.response.tcp, self.synproxy_ok, now);
            let script = nft::render_blocks(&elements) + &nft::render_protections(&protections);
            let mut last_error = None;
            for attempt in 0..NFT_TRIES {
                match self.nft.apply(&script) {
                    Ok(()) => {
                        applied = true;
                        break;
                    }
                    Err(e) => {
                        self.metrics.nft_errors.inc();
                        tracing::warn!(error = %e, attempt = attempt + 1, "nft transaction failed");
                        last_error = Some(e);
                        std::thread::sleep(Duration::from_millis(50 << attempt));
                    }
                }
            }
            if let Some(e) = last_error.filter(|_| !applied) {
                tracing::error!(error = %e, addresses = batch.len(), services = protect.len(), "blocks and protections not applied");
                for b in &batch {
                    self.state.undo(b.addr);
                    let r = Record {
                        reason: e.to_string(),
                        ..Record::of_block(Action::NftFailed, b, now)
                    };
                    self.audit(&r);
                }
                for p in &protect {
                    self.state.undo_protection(&p.service);
                    let r = Record {
                        reason: e.to_string(),
                        ..Record::of_protection(
                            Action::NftFailed,
                            p,
                            self.shield(p.service.proto),
                            now,
                        )
                    };
                    self.audit(&r);
                }
            }
        }
        if applied {
            if !self.config.dry_run {
                self.metrics.nft_transactions.inc();
            }
            for b in &batch {
                tracing::warn!(addr = %b.addr, until = %mld_logfile::time::timestamp(b.until_ns), offence = b.offence, reason = %b.reason, "blocked");
                let r = Record {
                    dry_run: self.config.dry_run,
                    ..Record::of_block(Action::Block, b, now)
                };
                self.audit(&r);
            }
            for p in &protect {
                let shield = self.shield(p.service.proto);
                tracing::warn!(service = %p.service, shield = shield.as_str(), until = %mld_logfile::time::timestamp(p.until_ns), reason = %p.reason, "service protected");
                let r = Record {
                    dry_run: self.config.dry_run,
                    ..Record::of_protection(Action::Protect, p, shield, now)
                };
                self.audit(&r);
            }
        }
        self.metrics.in_force(&self.state);
        if let Err(e) = self.audit.flush() {
            tracing::error!(error = %e, "syncing the audit log failed");
        }
    }

    fn expire(&mut self) {
        let now = now_ns();
        let ended = self.state.expire(&self.rules, now);
        for b in &ended {
            tracing::info!(addr = %b.addr, "block ended");
            let r =
                Record { dry_run: self.config.dry_run, ..Record::of_block(Action::Expire, b, now) };
            self.audit(&r);
        }
        let over = self.state.expire_protections(now);
        for p in &over {
            tracing::info!(service = %p.service, "protection ended");
            let r = Record {
                dry_run: self.config.dry_run,
                ..Record::of_protection(Action::ProtectEnded, p, self.shield(p.service.proto), now)
            };
            self.audit(&r);
        }
        if !ended.is_empty() || !over.is_empty() {
            self.metrics.in_force(&self.state);
            if let Err(e) = self.audit.flush() {
                tracing::error!(error = %e, "syncing the audit log failed");
            }
        }
    }
}

/// The protections in `ps` with their shields and the time they have left at `now`.
fn shields<'a>(
    ps: impl Iterator<Item = &'a Protection>,
    tcp: mld_config::daemons::firewall_agent::TcpProtection,
    synproxy_ok: bool,
    now: u64,
) -> Vec<(crate::policy::Service, Shield, Duration)> {
    ps.map(|p| {
        (
            p.service,
            Shield::for_proto(p.service.proto, tcp, synproxy_ok),
            Duration::from_nanos(p.until_ns.saturating_sub(now)),
        )
    })
    .collect()
}
