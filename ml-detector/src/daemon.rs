//! The bus daemon (`ml-detector run`): `FlowEvent`s from `flow.v1` in, sealed `Detection`s on
//! `detection.v1` out, and every Detection written to the event log, EVE-JSON and (when
//! flagged) a sealed artifact.
//!
//! One thread does the work: receive, score, publish, write. The bus counts what it drops or
//! loses; the outputs count what they could not write; neither stops detection. On shutdown
//! the daemon reads what is still queued (up to [`DRAIN`]), then flushes and syncs its files.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use mld_bus::{Publish, Publisher, Subscriber, Topic};
use mld_config::common::ValidEtcd;
use mld_config::daemons::ml_detector::MlDetector as Valid;
use mld_control::restart_only;
use mld_crypto_transport::KeyRing;
use mld_daemon::{Control, Daemon, DaemonError, Membership, RunContext};
use mld_proto::{FlowEvent, Verdict};
use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::metrics::family::Family;
use mld_telemetry::prometheus_client::registry::Registry;

use crate::detection::Detector;
use crate::outputs::{OutputStats, Outputs};
use crate::record::unix_ns;
use crate::scoring::{Policy, Thresholds};

/// The longest the daemon keeps reading queued flow events after a shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(2);
/// How long one receive waits before the loop checks for shutdown and flushes.
const POLL: Duration = Duration::from_millis(50);

/// Flags of `ml-detector run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// Wait up to SECS for a subscriber of detection.v1 (firewall-agent, rag-ingester) before
    /// reading flow events, so that none of the first detections is published to nobody.
    /// Flow events arriving meanwhile queue in the subscriber (up to `subscribe.recv_hwm`).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub wait_for_subscriber: u64,
}

type Labels = Vec<(&'static str, String)>;

/// `mld_ml_detector_*` metrics.
#[derive(Debug, Clone, Default)]
struct Metrics {
    detections: Family<Labels, Counter>,
    /// The BENIGN, SUSPICIOUS and MALICIOUS counters of `detections`, resolved once.
    by_verdict: [Counter; 3],
    lines: Family<Labels, Counter>,
    dropped_lines: Family<Labels, Counter>,
    write_errors: Family<Labels, Counter>,
    rotations: Family<Labels, Counter>,
    shed: Family<Labels, Counter>,
    last: OutputStats,
}

impl Metrics {
    fn register(r: &mut Registry) -> Self {
        let mut m = Self::default();
        r.register("detections", "Detections made, by verdict", m.detections.clone());
        r.register(
            "log_records",
            "Records written, by log (events: events.jsonl lines, eve: eve.json lines, alerts: sealed artifacts in alerts.mld)",
            m.lines.clone(),
        );
        r.register(
            "log_dropped_records",
            "Records dropped whole because a write failed, by log",
            m.dropped_lines.clone(),
        );
        r.register("log_write_errors", "Failed writes or syncs, by log", m.write_errors.clone());
        r.register("log_rotations", "Log files rotated, by log", m.rotations.clone());
        r.register(
            "log_shed_records",
            "Records of BENIGN detections not written because the daemon was behind its input (event_log.shed_benign_after), by log",
            m.shed.clone(),
        );
        for log in ["events", "eve", "alerts"] {
            let label = vec![("log", log.to_owned())];
            for f in [&m.lines, &m.dropped_lines, &m.write_errors, &m.rotations, &m.shed] {
                let _ = f.get_or_create(&label);
            }
        }
        m.by_verdict = [Verdict::Benign, Verdict::Suspicious, Verdict::Malicious].map(|v| {
            m.detections.get_or_create(&vec![("verdict", v.as_str_name().to_owned())]).clone()
        });
        m
    }

    fn detection(&self, v: Verdict) {
        let i = match v {
            Verdict::Unspecified | Verdict::Benign => 0,
            Verdict::Suspicious => 1,
            Verdict::Malicious => 2,
        };
        self.by_verdict[i].inc();
    }

    fn sync(&mut self, s: &OutputStats) {
        let l = self.last;
        for (log, now, before) in [
            ("events", s.events, l.events),
            ("eve", s.eve, l.eve),
            ("alerts", s.artifacts, l.artifacts),
        ] {
            let label = vec![("log", log.to_owned())];
            self.lines.get_or_create(&label).inc_by(now.lines - before.lines);
            self.dropped_lines
                .get_or_create(&label)
                .inc_by(now.dropped_lines - before.dropped_lines);
            self.write_errors.get_or_create(&label).inc_by(now.write_errors - before.write_errors);
            self.rotations.get_or_create(&label).inc_by(now.rotations - before.rotations);
        }
        for (log, now, before) in
            [("events", s.shed.events, l.shed.events), ("eve", s.shed.eve, l.shed.eve)]
        {
            self.shed.get_or_create(&vec![("log", log.to_owned())]).inc_by(now - before);
        }
        self.last = *s;
    }
}

/// The daemon.
pub struct MlDetectorDaemon {
    flags: Flags,
    /// The config it started with: what a hot reload may not change is compared against it.
    config: Valid,
    ring: Arc<KeyRing>,
    detector: Detector,
    /// New policies from the control plane, taken by the detection loop between two flows.
    reloads: (mpsc::Sender<Policy>, mpsc::Receiver<Policy>),
    subscriber: Subscriber<FlowEvent>,
    publisher: Publisher,
    outputs: Outputs,
    flush_interval: Duration,
    metrics: Metrics,
    backlog: crate::shed::Backlog,
    /// The shedding episode last logged.
    shed_logged: u64,
}

impl Daemon for MlDetectorDaemon {
    const NAME: &'static str = crate::NAME;
    const ABOUT: &'static str = crate::ABOUT;
    type Config = crate::Config;
    type Flags = Flags;

    fn metrics_listen(config: &Valid) -> Option<SocketAddr> {
        config.metrics.listen
    }

    /// The event log's folder (the unit's `LogsDirectory`).
    fn state_dirs(config: &Valid) -> Vec<(&'static str, std::path::PathBuf)> {
        vec![("event_log.dir", config.event_log.dir.clone())]
    }

    fn setup(config: Valid, flags: Flags, registry: &mut Registry) -> Result<Self, DaemonError> {
        let ring = mld_daemon::key_ring(&config.transport)?;
        let outputs = Outputs::open(&config.event_log, Arc::clone(&ring))
            .context("opening the event log (event_log.dir)")
            .map_err(DaemonError::unavailable)?;
        let ctx = zmq::Context::new();
        let publisher = mld_daemon::bus_publisher(
            &ctx,
            Arc::clone(&ring),
            &config.publish,
            Topic::Detection,
            registry,
        )?;
        tracing::info!(
            dir = %config.event_log.dir.display(),
            eve = config.event_log.eve,
            artifacts = config.event_log.artifacts,
            "event log open"
        );
        let subscriber =
            mld_daemon::bus_subscriber(&ctx, Arc::clone(&ring), &config.subscribe, registry)?;
        let flush_interval = config.event_log.flush_interval;
        let backlog = crate::shed::Backlog::new(config.event_log.shed_benign_after);
        Ok(Self {
            backlog,
            shed_logged: 0,
            flags,
            detector: Detector::new(policy(&config)),
            config,
            ring,
            reloads: mpsc::channel(),
            subscriber,
            publisher,
            outputs,
            flush_interval,
            metrics: Metrics::register(registry),
        })
    }

    async fn run(self, ctx: RunContext) -> Result<(), DaemonError> {
        mld_daemon::run_blocking(ctx, "detector", move |stop, readiness| self.work(stop, readiness))
            .await
    }

    fn etcd(config: &Valid) -> Option<&ValidEtcd> {
        Some(&config.etcd)
    }

    /// Verdict thresholds and internal networks change while running; the rest (endpoints,
    /// event log, transport) only at restart.
    fn control(&mut self) -> Membership<Valid> {
        let running = self.config.clone();
        let to_loop = self.reloads.0.clone();
        let apply = move |new: &Valid| {
            restart_only("subscribe", &running.subscribe, &new.subscribe)?;
            restart_only("publish", &running.publish, &new.publish)?;
            restart_only("event_log", &running.event_log, &new.event_log)?;
            restart_only("metrics", &running.metrics, &new.metrics)?;
            restart_only("etcd", &running.etcd, &new.etcd)?;
            restart_only("transport", &running.transport, &new.transport)?;
            to_loop.send(policy(new)).map_err(|_| "the detection loop has stopped".to_owned())
        };
        Membership::Join(Control { ring: Arc::clone(&self.ring), apply: Box::new(apply) })
    }
}

/// The scoring policy a config sets.
fn policy(config: &Valid) -> Policy {
    Policy {
        thresholds: Thresholds {
            suspicious: config.suspicious_score,
            malicious: config.malicious_score,
        },
        internal_nets: config.internal_nets.clone(),
    }
}

impl MlDetectorDaemon {
    fn work(
        mut self,
        stop: &AtomicBool,
        readiness: &mld_telemetry::Readiness,
    ) -> Result<(), DaemonError> {
        if self.flags.wait_for_subscriber > 0 {
            let secs = self.flags.wait_for_subscriber;
            let found = self
                .publisher
                .wait_for_subscriber(Topic::Detection, Duration::from_secs(secs))
                .map_err(DaemonError::failure)?;
            if !found {
                tracing::warn!(secs, "no detection.v1 subscriber connected; publishing anyway");
            }
        }
        readiness.set(true);
        let mut last_flush = Instant::now();
        let mut drain_until: Option<Instant> = None;
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                drain_until = Some(Instant::now() + DRAIN);
            }
            let wait = if drain_until.is_some() { Duration::from_millis(20) } else { POLL };
            if let Ok(policy) = self.reloads.1.try_recv() {
                tracing::info!(
                    suspicious = policy.thresholds.suspicious,
                    malicious = policy.thresholds.malicious,
                    internal_nets = policy.internal_nets.len(),
                    "scoring policy reloaded"
                );
                self.detector.set_policy(policy);
            }
            // Already queued, or wait for it (the daemon has caught up).
            let queued = self.subscriber.recv(Duration::ZERO).map_err(DaemonError::failure)?;
            let next = if queued.is_some() {
                self.backlog.queued();
                queued
            } else {
                if self.backlog.shedding() {
                    tracing::info!("caught up with flow.v1; writing every record again");
                }
                self.backlog.caught_up();
                self.subscriber.recv(wait).map_err(DaemonError::failure)?
            };
            match next {
                Some(received) => self.handle(received.message),
                None if drain_until.is_some() => break,
                None => {}
            }
            if drain_until.is_some_and(|d| Instant::now() >= d) {
                tracing::warn!("flow events still arriving after the drain period; stopping");
                break;
            }
            if last_flush.elapsed() >= self.flush_interval {
                last_flush = Instant::now();
                self.outputs.flush(SystemTime::now());
                self.metrics.sync(&self.outputs.stats());
            }
        }
        self.outputs.flush(SystemTime::now());
        self.metrics.sync(&self.outputs.stats());
        let bus = self.subscriber.stats();
        let out = self.outputs.stats();
        tracing::info!(
            received = bus.received,
            lost = bus.lost,
            published = self.publisher.stats().sent,
            dropped = self.publisher.stats().dropped,
            event_lines = out.events.lines,
            eve_lines = out.eve.lines,
            artifacts = out.artifacts.lines,
            shed_events = out.shed.events,
            shed_eve = out.shed.eve,
            dropped_records =
                out.events.dropped_lines + out.eve.dropped_lines + out.artifacts.dropped_lines,
            "stopped"
        );
        Ok(())
    }

    fn handle(&mut self, flow: FlowEvent) {
        let now = SystemTime::now();
        let d = self.detector.detect(flow, unix_ns(now));
        self.metrics.detection(d.verdict());
        match self.publisher.publish(&d) {
            Ok(Publish::Sent | Publish::Dropped) => {} // drops are counted by the bus
            Err(e) => tracing::error!(error = %e, "publishing a Detection failed"),
        }
        let shed = self.backlog.shedding();
        if shed && self.backlog.episodes != self.shed_logged {
            self.shed_logged = self.backlog.episodes;
            tracing::warn!(
                after = self.config.event_log.shed_benign_after,
                "behind flow.v1: shedding the events.jsonl and EVE records of BENIGN detections until caught up (every flow is still scored and published)"
            );
        }
        self.outputs.write(&d, now, shed);
    }
}
