//! The daemon (`rag-ingester run`): Detections from `detection.v1` into the event store.
//!
//! One thread receives Detections, turns each into its event-log line and commits them in
//! batches (`batch_max_events`, at least every `batch_max_delay_ms`). A batch the store
//! refuses (locked by a long reader, disk full) is kept and retried every second; past
//! [`MAX_PENDING`] lines the oldest are dropped and counted, so memory stays bounded and no
//! loss is silent. On shutdown it reads what is queued (up to 1 s) and commits it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mld_bus::Subscriber;
use mld_config::common::ValidEtcd;
use mld_config::daemons::rag_ingester::RagIngester as Valid;
use mld_control::restart_only;
use mld_crypto_transport::KeyRing;
use mld_daemon::{Control, Daemon, DaemonError, Membership, RunContext};
use mld_eventstore::Store;

use crate::indices::Indices;
use mld_proto::Detection;
use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::metrics::family::Family;
use mld_telemetry::prometheus_client::metrics::gauge::Gauge;
use mld_telemetry::prometheus_client::registry::Registry;

/// How long a shutdown keeps reading queued Detections.
const DRAIN: Duration = Duration::from_secs(1);
/// Lines held while the store refuses writes, at most.
pub const MAX_PENDING: usize = 100_000;
/// Between retries of a refused batch.
const RETRY: Duration = Duration::from_secs(1);

/// Flags of `rag-ingester run` (none: everything is in the config).
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {}

type Labels = Vec<(&'static str, String)>;

/// `mld_rag_ingester_*` metrics.
#[derive(Debug, Clone, Default)]
struct Metrics {
    events: Family<Labels, Counter>,
    commits: Counter,
    store_errors: Counter,
    dropped: Counter,
    stored: Gauge,
    pending: Gauge,
    indexed: Family<Labels, Gauge>,
    index_errors: Counter,
}

impl Metrics {
    fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register(
            "events",
            "Detections by result: stored, duplicate (already stored), rejected (unreadable)",
            m.events.clone(),
        );
        r.register("commits", "Batches committed to the store", m.commits.clone());
        r.register("store_errors", "Batches the store refused (each try)", m.store_errors.clone());
        r.register(
            "dropped",
            "Detections dropped because the store refused writes for too long",
            m.dropped.clone(),
        );
        r.register("stored_events", "Events in the store", m.stored.clone());
        r.register(
            "pending_events",
            "Detections received and not yet committed",
            m.pending.clone(),
        );
        r.register(
            "indexed_vectors",
            "Vectors in each FAISS index (features, text)",
            m.indexed.clone(),
        );
        r.register(
            "index_errors",
            "Index updates or saves that failed (the store keeps the events; the index is rebuilt from it at the next start)",
            m.index_errors.clone(),
        );
        m
    }

    fn indexed(&self, (features, text): (u64, u64)) {
        for (name, n) in [("features", features), ("text", text)] {
            self.indexed
                .get_or_create(&vec![("index", name.to_owned())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn add(&self, result: &str, n: usize) {
        self.events.get_or_create(&vec![("result", result.to_owned())]).inc_by(n as u64);
    }
}

/// Batch settings that change while running.
#[derive(Debug, Clone, Copy)]
struct Batching {
    max_events: usize,
    max_delay: Duration,
}

impl Batching {
    fn of(c: &Valid) -> Self {
        Self {
            max_events: usize::try_from(c.batch_max_events).unwrap_or(512),
            max_delay: c.batch_max_delay,
        }
    }
}

/// The daemon.
pub struct Ingester {
    config: Valid,
    ring: Arc<KeyRing>,
    store: Store,
    indices: Indices,
    subscriber: Subscriber<Detection>,
    metrics: Metrics,
    batching: Batching,
    reloads: (std::sync::mpsc::Sender<Batching>, std::sync::mpsc::Receiver<Batching>),
    pending: std::collections::VecDeque<String>,
    first_pending: Option<Instant>,
    last_failure: Option<Instant>,
}

impl Daemon for Ingester {
    const NAME: &'static str = crate::NAME;
    const ABOUT: &'static str = crate::ABOUT;
    type Config = crate::Config;
    type Flags = Flags;

    fn metrics_listen(config: &Valid) -> Option<SocketAddr> {
        config.metrics.listen
    }

    /// The event store's folder (the unit's `StateDirectory`).
    fn state_dirs(config: &Valid) -> Vec<(&'static str, std::path::PathBuf)> {
        config.store_path.parent().map(|p| ("store_path", p.to_path_buf())).into_iter().collect()
    }

    fn setup(config: Valid, _flags: Flags, registry: &mut Registry) -> Result<Self, DaemonError> {
        let ring = mld_daemon::key_ring(&config.transport)?;
        let mut store = Store::open(&config.store_path)
            .map_err(|e| DaemonError::unavailable(anyhow::anyhow!("{e} (store_path)")))?;
        let embedder = mld_embed::Embedder::load(&config.embedding_model)
            .map_err(|e| DaemonError::unavailable(anyhow::anyhow!("{e} (embedding_model)")))?;
        let indices = Indices::open(&mut store, embedder, &mut |m| tracing::info!("{m}"))
            .map_err(|e| DaemonError::unavailable(anyhow::anyhow!("vector indices: {e}")))?;
        let ctx = zmq::Context::new();
        let subscriber =
            mld_daemon::bus_subscriber(&ctx, Arc::clone(&ring), &config.subscribe, registry)?;
        let metrics = Metrics::register(registry);
        metrics.indexed(indices.counts());
        let stored = store.count().map_err(|e| DaemonError::unavailable(anyhow::anyhow!("{e}")))?;
        metrics.stored.set(i64::try_from(stored).unwrap_or(i64::MAX));
        tracing::info!(store = %config.store_path.display(), events = stored, "event store open");
        Ok(Self {
            batching: Batching::of(&config),
            config,
            ring,
            store,
            indices,
            subscriber,
            metrics,
            reloads: std::sync::mpsc::channel(),
            pending: std::collections::VecDeque::new(),
            first_pending: None,
            last_failure: None,
        })
    }

    async fn run(self, ctx: RunContext) -> Result<(), DaemonError> {
        mld_daemon::run_blocking(ctx, "ingest", move |stop, readiness| self.work(stop, readiness))
            .await
    }

    fn etcd(config: &Valid) -> Option<&ValidEtcd> {
        Some(&config.etcd)
    }

    /// Registers, follows the key epoch, and applies new batch settings while running; every
    /// other field changes only at restart.
    fn control(&mut self) -> Membership<Valid> {
        let running = self.config.clone();
        let to_loop = self.reloads.0.clone();
        let apply = move |new: &Valid| {
            restart_only("subscribe", &running.subscribe, &new.subscribe)?;
            restart_only("store_path", &running.store_path, &new.store_path)?;
            restart_only("metrics", &running.metrics, &new.metrics)?;
            restart_only("etcd", &running.etcd, &new.etcd)?;
            restart_only("transport", &running.transport, &new.transport)?;
            to_loop.send(Batching::of(new)).map_err(|_| "the ingest loop has stopped".to_owned())
        };
        Membership::Join(Control { ring: Arc::clone(&self.ring), apply: Box::new(apply) })
    }
}

impl Ingester {
    fn work(
        mut self,
        stop: &AtomicBool,
        readiness: &mld_telemetry::Readiness,
    ) -> Result<(), DaemonError> {
        readiness.set(true);
        let mut drain_until: Option<Instant> = None;
        let mut line = Vec::with_capacity(4096);
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                drain_until = Some(Instant::now() + DRAIN);
            }
            if let Ok(b) = self.reloads.1.try_recv() {
                tracing::info!(
                    batch_max_events = b.max_events,
                    batch_max_delay_ms = b.max_delay.as_millis(),
                    "batching reloaded"
                );
                self.batching = b;
            }
            let wait = match (drain_until, self.first_pending) {
                (Some(_), _) => Duration::from_millis(20),
                (None, Some(t0)) => self.batching.max_delay.saturating_sub(t0.elapsed()),
                (None, None) => Duration::from_millis(100),
            };
            match self.subscriber.recv(wait).map_err(DaemonError::failure)? {
                Some(r) => {
                    line.clear();
                    mld_events::write_line(&r.message, None, &mut line);
                    self.pending.push_back(String::from_utf8_lossy(&line).into_owned());
                    self.first_pending.get_or_insert_with(Instant::now);
                    if self.pending.len() > MAX_PENDING {
                        self.pending.pop_front();
                        self.metrics.dropped.inc();
                    }
                }
                None if drain_until.is_some() => break,
                None => {}
            }
            let due = self.pending.len() >= self.batching.max_events
                || self.first_pending.is_some_and(|t0| t0.elapsed() >= self.batching.max_delay);
            if due && self.last_failure.is_none_or(|t| t.elapsed() >= RETRY) {
                self.commit();
            }
            if let Err(e) = self.indices.save_if_due(false) {
                self.metrics.index_errors.inc();
                tracing::error!(error = %e, "saving the vector indices failed");
            }
            if drain_until.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.commit();
        if let Err(e) = self.indices.save_if_due(true) {
            self.metrics.index_errors.inc();
            tracing::error!(error = %e, "saving the vector indices failed");
        }
        if !self.pending.is_empty() {
            tracing::error!(
                events = self.pending.len(),
                "stopped with Detections the store refused"
            );
            self.metrics.dropped.inc_by(self.pending.len() as u64);
        }
        tracing::info!(events = self.store.count().unwrap_or(0), "stopped");
        Ok(())
    }

    /// Commits what is pending, `batch_max_events` per transaction.
    fn commit(&mut self) {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(self.batching.max_events.max(1));
            let batch: Vec<&String> = self.pending.iter().take(n).collect();
            match self.store.insert_lines(&batch, None) {
                Ok(r) => {
                    self.metrics.commits.inc();
                    self.metrics.add("stored", r.inserted);
                    self.metrics.stored.inc_by(i64::try_from(r.inserted).unwrap_or(0));
                    self.metrics.add("duplicate", r.duplicates);
                    self.metrics.add("rejected", r.rejected.len());
                    for (_, why) in r.rejected.iter().take(3) {
                        tracing::warn!(error = %why, "a Detection's line could not be stored");
                    }
                    self.pending.drain(..n);
                    self.last_failure = None;
                    if r.inserted > 0 {
                        match self.indices.update(&mut self.store) {
                            Ok(_) => self.metrics.indexed(self.indices.counts()),
                            Err(e) => {
                                self.metrics.index_errors.inc();
                                tracing::error!(error = %e, "updating the vector indices failed");
                            }
                        }
                    }
                }
                Err(e) => {
                    self.metrics.store_errors.inc();
                    tracing::error!(error = %e, pending = self.pending.len(), "the store refused a batch; retrying");
                    self.last_failure = Some(Instant::now());
                    break;
                }
            }
        }
        if self.pending.is_empty() {
            self.first_pending = None;
        }
        self.metrics.pending.set(i64::try_from(self.pending.len()).unwrap_or(i64::MAX));
    }
}
