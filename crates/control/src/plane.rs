//! One daemon's session with etcd, re-established with backoff for as long as it runs.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchResponse,
};
use mld_config::DaemonConfig;
use mld_config::common::ValidEtcd;
use mld_crypto_transport::KeyRing;
use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::metrics::family::Family;
use mld_telemetry::prometheus_client::metrics::gauge::Gauge;
use mld_telemetry::prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::{fields, keys, sealed};

/// The longest one etcd request may take before the session is considered lost.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait between attempts to reach etcd.
pub const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Applies a validated config to the running daemon, atomically: `Ok` once it is in force
/// (or handed to the loop that uses it from its next event), `Err(reason)` to reject it (the
/// daemon keeps its running config, and the control plane rolls `active` back to master).
pub type Apply<V> = Box<dyn FnMut(&V) -> Result<(), String> + Send + Sync>;

/// What the control plane needs from its daemon.
pub struct Options<V> {
    /// Component name (`components/<name>/…`, `config/<name>/…`).
    pub component: &'static str,
    /// This process's instance name under `components/<name>/`.
    pub instance: String,
    /// The daemon's version, shown in its registration.
    pub version: &'static str,
    pub etcd: ValidEtcd,
    /// The daemon's key ring: configs are sealed with it, and it follows `keys/epoch`.
    pub ring: Arc<KeyRing>,
    pub apply: Apply<V>,
}

/// `mld_<daemon>_control_*` metrics.
#[derive(Debug, Clone, Default)]
struct Metrics {
    connected: Gauge,
    sessions: Counter,
    changes: Family<Vec<(&'static str, &'static str)>, Counter>,
    alerts: Counter,
    epoch: Gauge,
    revision: Gauge,
}

impl Metrics {
    fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        let r = r.sub_registry_with_prefix("control");
        r.register("etcd_connected", "1 while registered with etcd", m.connected.clone());
        r.register(
            "sessions",
            "etcd sessions started (more than one: reconnects)",
            m.sessions.clone(),
        );
        r.register(
            "config_changes",
            "Changes of the active config seen, by outcome (applied, unchanged, invalid, rejected, unreadable)",
            m.changes.clone(),
        );
        r.register("alerts", "Alerts written under alerts/", m.alerts.clone());
        r.register("key_epoch", "Key epoch in force", m.epoch.clone());
        r.register(
            "config_revision",
            "etcd revision of the active config in force (0: the local file)",
            m.revision.clone(),
        );
        m
    }

    fn change(&self, outcome: &'static str) {
        self.changes.get_or_create(&vec![("outcome", outcome)]).inc();
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{what}: {source}")]
    Etcd { what: &'static str, source: etcd_client::Error },
    #[error("{what}: no answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout { what: &'static str },
    #[error("{0}")]
    Lost(&'static str),
    #[error("the watch on {what} ended")]
    WatchEnded { what: &'static str },
    #[error("the watch on {what} was cancelled")]
    WatchCancelled { what: &'static str },
    #[error("etcd.tls: {0}")]
    Tls(String),
    #[error("sealing the running config: {0}")]
    Seal(#[from] mld_crypto_transport::SealError),
}

/// A value written to a watched key, and its mod revision.
type Put = (Vec<u8>, i64);

/// The events of one message on the watch of `what`, in order: `Some((value, mod revision))`
/// for a put, `None` for a delete. An error, the end of the stream or a cancelled watch ends
/// the session.
fn watched(
    what: &'static str,
    message: Result<Option<WatchResponse>, etcd_client::Error>,
) -> Result<Vec<Option<Put>>, SessionError> {
    let resp = message
        .map_err(|source| SessionError::Etcd { what, source })?
        .ok_or(SessionError::WatchEnded { what })?;
    if resp.canceled() {
        return Err(SessionError::WatchCancelled { what });
    }
    Ok(resp
        .events()
        .iter()
        .map(|e| match (e.event_type(), e.kv()) {
            (EventType::Put, Some(kv)) => Some((kv.value().to_vec(), kv.mod_revision())),
            _ => None,
        })
        .collect())
}

/// One etcd request, bounded by [`REQUEST_TIMEOUT`].
async fn call<T>(
    what: &'static str,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, SessionError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(SessionError::Etcd { what, source }),
        Err(_) => Err(SessionError::Timeout { what }),
    }
}

/// Registration, heartbeats, the active config and the key epoch of one daemon.
pub struct ControlPlane<C: DaemonConfig> {
    opts: Options<C::Valid>,
    /// The config in force, as compact JSON of its parsed form (formatting is not a change).
    running: String,
    /// Its source: the mod revision of `active` it came from, 0 for the local file.
    revision: i64,
    /// What `etcd.cache_file` holds, once read or written.
    cached: Option<String>,
    started_ms: u128,
    metrics: Metrics,
}

impl<C: DaemonConfig> ControlPlane<C> {
    /// A control plane for a daemon that started on `local` (its config file).
    pub fn new(opts: Options<C::Valid>, local: &C, registry: &mut Registry) -> Self {
        let metrics = Metrics::register(registry);
        metrics.epoch.set(i64::from(opts.ring.current_epoch()));
        Self {
            opts,
            running: compact(local),
            revision: 0,
            cached: None,
            started_ms: unix_ms(),
            metrics,
        }
    }

    /// Runs until `shutdown`: connects, registers, follows the config and the epoch; when etcd
    /// is unreachable it keeps the daemon on its last good config and retries with backoff.
    /// On shutdown it revokes its lease, so the component shows as down at once.
    ///
    /// Each session talks to one endpoint (the next one after a failure), as etcd's own
    /// clients pin one: a client balancing over all of them keeps sending part of its requests
    /// to a member that is down. The backoff grows only once every endpoint has failed.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut wait = BACKOFF.0;
        let mut next = 0;
        let mut failed_in_a_row = 0;
        while !shutdown.is_cancelled() {
            self.metrics.sessions.inc();
            let endpoint = self.opts.etcd.endpoints[next % self.opts.etcd.endpoints.len()].clone();
            let mut established = false;
            let outcome = self.session(&endpoint, &shutdown, &mut established).await;
            self.metrics.connected.set(0);
            let Err(e) = outcome else { return };
            // The first session (no failure counted yet) never got through: the daemon started
            // while etcd is unreachable.
            if !established && next == 0 {
                self.start_from_cache();
            }
            next += 1;
            failed_in_a_row = if established { 1 } else { failed_in_a_row + 1 };
            if established {
                wait = BACKOFF.0;
            }
            let round_failed = failed_in_a_row >= self.opts.etcd.endpoints.len();
            let pause = if round_failed { jitter(wait) } else { BACKOFF.0 };
            tracing::warn!(
                endpoint,
                error = %e,
                retry_in_ms = pause.as_millis(),
                "etcd session lost or unavailable; running on the last good config"
            );
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            if round_failed {
                wait = (wait * 2).min(BACKOFF.1);
            }
        }
    }

    async fn session(
        &mut self,
        endpoint: &str,
        shutdown: &CancellationToken,
        established: &mut bool,
    ) -> Result<(), SessionError> {
        let etcd = &self.opts.etcd;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(etcd.connect_timeout)
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
            .with_require_leader(true);
        if let Some(tls) = &etcd.tls {
            // Read per session, so renewed certificates are picked up on the next reconnect.
            options = options.with_tls(crate::tls_options(tls).map_err(SessionError::Tls)?);
        }
        let mut client = call("connecting", Client::connect([endpoint], Some(options))).await?;
        let ttl = etcd.lease_ttl;
        let lease = call(
            "granting the registration lease",
            client.lease_grant(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX), None),
        )
        .await?
        .id();
        let (mut keeper, mut acks) =
            call("starting heartbeats", client.lease_keep_alive(lease)).await?;

        let epoch = call("reading keys/epoch", client.get(keys::EPOCH, None)).await?;
        let epoch_revision = epoch.header().map_or(0, etcd_client::ResponseHeader::revision);
        if let Some(kv) = epoch.kvs().first() {
            self.epoch_changed(&mut client, kv.value(), kv.mod_revision()).await?;
        }
        let revision = self.bootstrap(&mut client).await?;
        self.register(&mut client, lease).await?;
        *established = true;
        self.metrics.connected.set(1);
        tracing::info!(
            endpoint,
            lease = format_args!("{lease:x}"),
            revision,
            key_epoch = self.opts.ring.current_epoch(),
            "registered with etcd"
        );

        let active = keys::active(self.opts.component);
        let mut config_watch = call(
            "watching the active config",
            client.watch(active, Some(WatchOptions::new().with_start_revision(revision + 1))),
        )
        .await?;
        let mut epoch_watch = call(
            "watching keys/epoch",
            client.watch(
                keys::EPOCH,
                Some(WatchOptions::new().with_start_revision(epoch_revision + 1)),
            ),
        )
        .await?;
        let mut beat = tokio::time::interval(ttl / 3);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), client.lease_revoke(lease)).await;
                    return Ok(());
                }
                _ = beat.tick() => call("sending a heartbeat", keeper.keep_alive()).await?,
                ack = acks.message() => match ack {
                    Ok(Some(a)) if a.ttl() > 0 => {}
                    Ok(Some(_)) => return Err(SessionError::Lost("the registration lease expired")),
                    Ok(None) => return Err(SessionError::Lost("the heartbeat stream ended")),
                    Err(source) => return Err(SessionError::Etcd { what: "heartbeats", source }),
                },
                changed = config_watch.message() => {
                    let before = self.revision;
                    for put in watched("the active config", changed)? {
                        if let Some((value, revision)) = put {
                            self.active_changed(&mut client, &value, revision).await?;
                        } else {
                            tracing::warn!("the active config was deleted; keeping the running config");
                        }
                    }
                    if self.revision != before {
                        self.register(&mut client, lease).await?;
                    }
                }
                changed = epoch_watch.message() => {
                    let before = self.opts.ring.current_epoch();
                    for (value, revision) in watched("keys/epoch", changed)?.into_iter().flatten() {
                        self.epoch_changed(&mut client, &value, revision).await?;
                    }
                    if self.opts.ring.current_epoch() != before {
                        self.register(&mut client, lease).await?;
                    }
                }
            }
        }
    }

    /// Creates the master once (compare-and-swap on its create revision), publishes the
    /// running config as `active` if there is none, else takes up the active one. Returns the
    /// revision the config watch continues from.
    async fn bootstrap(&mut self, client: &mut Client) -> Result<i64, SessionError> {
        let name = self.opts.component;
        let sealed = sealed::seal(&self.opts.ring, &pretty(&self.running))?;
        let (master, active) = (keys::master(name), keys::active(name));
        let created = call(
            "creating the master config",
            client.txn(
                Txn::new()
                    .when([Compare::create_revision(master.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(master, sealed.clone(), None)]),
            ),
        )
        .await?;
        if created.succeeded() {
            tracing::info!(component = name, "stored the running config as the master config");
        }
        let resp = call(
            "reading the active config",
            client.txn(
                Txn::new()
                    .when([Compare::create_revision(active.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(active.clone(), sealed, None)])
                    .or_else([TxnOp::get(active, None)]),
            ),
        )
        .await?;
        let revision = resp.header().map_or(0, etcd_client::ResponseHeader::revision);
        if resp.succeeded() {
            tracing::info!(revision, "published the running config as the active config");
            self.set_revision(revision);
        } else if let Some(TxnOpResponse::Get(get)) = resp.op_responses().into_iter().next()
            && let Some(kv) = get.kvs().first()
        {
            self.active_changed(client, kv.value(), kv.mod_revision()).await?;
        }
        Ok(revision)
    }

    /// A new value of `active`: open, parse, validate, apply; on failure roll back and alert.
    async fn active_changed(
        &mut self,
        client: &mut Client,
        stored: &[u8],
        revision: i64,
    ) -> Result<(), SessionError> {
        let key = keys::active(self.opts.component);
        let text = match sealed::unseal(&self.opts.ring, stored) {
            Ok(text) => text,
            Err(e) => {
                self.metrics.change("unreadable");
                let error = format!("{key} at revision {revision} cannot be opened: {e}");
                return self
                    .alert(client, "misconfiguration", revision, &error, "kept the running config")
                    .await;
            }
        };
        let origin = PathBuf::from(format!("etcd {key} at revision {revision}"));
        let (canonical, valid) = match parse::<C>(&text, &origin) {
            Ok(ok) => ok,
            Err(e) => {
                self.metrics.change("invalid");
                return self
                    .roll_back(client, stored, revision, "invalid_config", &e.to_string())
                    .await;
            }
        };
        if canonical == self.running {
            self.metrics.change("unchanged");
            self.set_revision(revision);
            return Ok(());
        }
        match self.live_change(&canonical).and_then(|()| (self.opts.apply)(&valid)) {
            Ok(()) => {
                self.metrics.change("applied");
                self.running = canonical;
                self.set_revision(revision);
                tracing::info!(revision, "applied the active config");
                Ok(())
            }
            Err(reason) => {
                self.metrics.change("rejected");
                let error = format!("{key} at revision {revision} was not applied: {reason}");
                self.roll_back(client, stored, revision, "rejected_config", &error).await
            }
        }
    }

    /// Writes the master back over the rejected `active` (only if `active` is still the
    /// rejected value, so that several instances roll back once) and raises an alert.
    async fn roll_back(
        &mut self,
        client: &mut Client,
        rejected: &[u8],
        revision: i64,
        kind: &'static str,
        error: &str,
    ) -> Result<(), SessionError> {
        let name = self.opts.component;
        let master =
            call("reading the master config", client.get(keys::master(name), None)).await?;
        let action = match master.kvs().first() {
            Some(m) if m.value() == rejected => {
                "the master config itself is rejected; kept the running config"
            }
            Some(m) => {
                let active = keys::active(name);
                let txn = Txn::new()
                    .when([Compare::mod_revision(active.clone(), CompareOp::Equal, revision)])
                    .and_then([TxnOp::put(active, m.value(), None)]);
                if call("restoring the master config", client.txn(txn)).await?.succeeded() {
                    "restored the master config as active"
                } else {
                    "active changed again before the rollback; left it to be checked in turn"
                }
            }
            None => "no master config to restore; kept the running config",
        };
        self.alert(client, kind, revision, error, action).await
    }

    /// A new value of `keys/epoch`: rotate to it if it is newer.
    async fn epoch_changed(
        &mut self,
        client: &mut Client,
        value: &[u8],
        revision: i64,
    ) -> Result<(), SessionError> {
        let current = self.opts.ring.current_epoch();
        let parsed = std::str::from_utf8(value).ok().and_then(|s| s.trim().parse::<u32>().ok());
        match parsed {
            Some(epoch) if epoch > current => {
                self.opts.ring.rotate(epoch).expect("the epoch is newer");
                self.metrics.epoch.set(i64::from(epoch));
                tracing::info!(from = current, to = epoch, "switched key epoch");
                Ok(())
            }
            Some(epoch) if epoch == current => Ok(()),
            Some(epoch) => {
                let error = format!("{} went back from {current} to {epoch}", keys::EPOCH);
                self.alert(client, "misconfiguration", revision, &error, "kept the current epoch")
                    .await
            }
            None => {
                let error = format!(
                    "{} is {:?}, not an epoch number",
                    keys::EPOCH,
                    String::from_utf8_lossy(value)
                );
                self.alert(client, "misconfiguration", revision, &error, "kept the current epoch")
                    .await
            }
        }
    }

    /// The running config now comes from `active` at `revision`: noted, and kept in
    /// `etcd.cache_file`.
    fn set_revision(&mut self, revision: i64) {
        self.revision = revision;
        self.metrics.revision.set(revision);
        self.keep();
    }

    /// Writes the running config to `etcd.cache_file` when it differs from what the file
    /// holds: a temporary file (0600), synced, renamed over it, so a crash leaves the old or
    /// the new file whole. A failure is logged; the daemon goes on.
    fn keep(&mut self) {
        let Some(path) = &self.opts.etcd.cache_file else { return };
        if self.cached.as_deref() == Some(self.running.as_str()) {
            return;
        }
        match write_replacing(path, pretty(&self.running).as_bytes()) {
            Ok(()) => self.cached = Some(self.running.clone()),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot keep the config (etcd.cache_file)");
            }
        }
    }

    /// etcd was not reached at start: applies the config kept by an earlier run, if there is
    /// one and it differs from the local file. One the daemon cannot apply (a field that
    /// changes only at restart differs from the local file) is left, with a warning.
    fn start_from_cache(&mut self) {
        let Some(path) = self.opts.etcd.cache_file.clone() else { return };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the kept config (etcd.cache_file)");
                return;
            }
        };
        let (canonical, valid) = match parse::<C>(&text, &path) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::warn!(error = %e, "the kept config is not usable; running on the local file");
                return;
            }
        };
        self.cached = Some(canonical.clone());
        if canonical == self.running {
            return;
        }
        match self.live_change(&canonical).and_then(|()| (self.opts.apply)(&valid)) {
            Ok(()) => {
                self.metrics.change("cached");
                self.running = canonical;
                tracing::info!(path = %path.display(), "etcd is unreachable: applied the config kept from the last run");
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason, "the kept config was not applied; running on the local file");
            }
        }
    }

    /// `Err` naming every field that differs between the running config and `canonical`
    /// (both compact JSON) and that the daemon does not apply while running
    /// ([`DaemonConfig::LIVE_FIELDS`]), with both values as JSON.
    fn live_change(&self, canonical: &str) -> Result<(), String> {
        let json = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
        let refused =
            fields::restart_only_changes(&json(&self.running), &json(canonical), C::LIVE_FIELDS);
        if refused.is_empty() { Ok(()) } else { Err(fields::restart_only_message(&refused)) }
    }

    async fn register(&self, client: &mut Client, lease: i64) -> Result<(), SessionError> {
        let o = &self.opts;
        let registration = serde_json::json!({
            "component": o.component,
            "instance": o.instance,
            "version": o.version,
            "pid": std::process::id(),
            "host": crate::host_name(),
            "started_unix_ms": self.started_ms,
            "config_revision": self.revision,
            "key_epoch": o.ring.current_epoch(),
        });
        call(
            "registering",
            client.put(
                keys::component(o.component, &o.instance),
                registration.to_string(),
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await
        .map(drop)
    }

    async fn alert(
        &self,
        client: &mut Client,
        kind: &'static str,
        revision: i64,
        error: &str,
        action: &str,
    ) -> Result<(), SessionError> {
        let o = &self.opts;
        tracing::error!(kind, revision, error, action, "config alert");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let alert = serde_json::json!({
            "unix_ms": now.as_millis(),
            "component": o.component,
            "instance": o.instance,
            "kind": kind,
            "revision": revision,
            "error": error,
            "action": action,
        });
        self.metrics.alerts.inc();
        call(
            "writing an alert",
            client.put(
                keys::alert(now.as_nanos(), o.component, &o.instance),
                alert.to_string(),
                None,
            ),
        )
        .await
        .map(drop)
    }
}

/// Parses and validates a config text from `origin`: its compact form and its validated one.
fn parse<C: DaemonConfig>(
    text: &str,
    origin: &std::path::Path,
) -> Result<(String, C::Valid), mld_config::ConfigError> {
    let raw = mld_config::parse_raw::<C>(text, origin)?;
    let valid = raw
        .validate()
        .map_err(|errors| mld_config::ConfigError::Invalid { path: origin.to_owned(), errors })?;
    Ok((compact(&raw), valid))
}

/// Replaces `path` with `bytes` atomically (mode 0600).
fn write_replacing(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Compact JSON of a parsed config: two texts with the same meaning compare equal.
fn compact<C: DaemonConfig>(config: &C) -> String {
    serde_json::to_string(config).expect("a config serializes to JSON")
}

/// The indented form stored in etcd, for people reading it with `rag config get`.
fn pretty(compact: &str) -> String {
    serde_json::from_str::<serde_json::Value>(compact)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| compact.to_owned())
}

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

/// ±20 % of `wait`, so that daemons restarted together do not retry in lockstep.
fn jitter(wait: Duration) -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    wait.mul_f64(0.8 + f64::from(nanos % 1000) / 2500.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use mld_config::daemons::ml_detector::MlDetectorConfig;
    use mld_crypto_transport::RootSecret;

    use super::*;

    /// The control plane of an ml-detector that started on `local`, counting its applies.
    fn plane(local: &MlDetectorConfig) -> (ControlPlane<MlDetectorConfig>, Arc<Gauge>) {
        let valid = local.validate().unwrap();
        let applied = Arc::new(Gauge::default());
        let count = Arc::clone(&applied);
        let opts = Options {
            component: "ml-detector",
            instance: "test".into(),
            version: "test",
            etcd: valid.etcd,
            ring: Arc::new(KeyRing::new(RootSecret::from_bytes([3; 32]), 1)),
            apply: Box::new(move |_| {
                count.inc();
                Ok(())
            }),
        };
        (ControlPlane::new(opts, local, &mut Registry::default()), applied)
    }

    /// Issue #26, fault 7a: a change the daemon cannot apply while running is refused before
    /// the daemon sees it, naming the field as in the JSON file and both JSON values (the
    /// daemon's own check printed Rust structs).
    #[test]
    fn restart_only_changes_are_refused_by_json_path_and_value() {
        let local = MlDetectorConfig::default();
        let (plane, applied) = plane(&local);
        let mut live = local.clone();
        live.verdict.malicious_score = 0.85;
        live.internal_nets = vec!["10.0.0.0/8".into()];
        assert_eq!(plane.live_change(&compact(&live)), Ok(()));

        let mut new = live.clone();
        new.event_log.dir = "/tmp/x".into();
        new.publish.send_hwm = 7;
        let refused = plane.live_change(&compact(&new)).unwrap_err();
        assert_eq!(
            refused,
            format!(
                "event_log.dir changes only at restart (running {:?}, new \"/tmp/x\"); \
                 publish.send_hwm changes only at restart (running 10000, new 7)",
                local.event_log.dir.display().to_string()
            )
        );
        assert!(!refused.contains("Valid"), "{refused}");
        assert_eq!(applied.get(), 0);
    }

    #[test]
    fn a_kept_config_with_a_restart_only_change_is_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let mut local = MlDetectorConfig::default();
        local.etcd.cache_file = Some(dir.path().join("kept.json"));
        let mut kept = local.clone();
        kept.verdict.malicious_score = 0.9;
        kept.event_log.retain_files = 30;
        std::fs::write(dir.path().join("kept.json"), compact(&kept)).unwrap();
        let (mut plane, applied) = plane(&local);
        plane.start_from_cache();
        assert_eq!(applied.get(), 0);
        kept.event_log.retain_files = local.event_log.retain_files;
        std::fs::write(dir.path().join("kept.json"), compact(&kept)).unwrap();
        plane.start_from_cache();
        assert_eq!(applied.get(), 1);
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(1));
            assert!(
                (Duration::from_millis(800)..=Duration::from_millis(1200)).contains(&j),
                "{j:?}"
            );
        }
    }
}
