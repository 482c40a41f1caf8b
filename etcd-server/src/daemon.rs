//! `etcd-server run`: the gRPC server on the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use etcd_client::proto::{
    PbClusterServer, PbKvServer, PbLeaseServer, PbMaintenanceServer, PbWatchServer,
};
use mld_config::DaemonConfig;
use mld_config::daemons::etcd_server::ValidTls;
use mld_daemon::{Daemon, DaemonError, RunContext};
use mld_telemetry::prometheus_client::registry::Registry;
use tonic::transport::{Certificate, ServerTlsConfig};

use crate::cluster::{Cluster, Maintenance};
use crate::kv::{Identity, Kv, Shared};
use crate::lease::Lease;
use crate::store::Store;
use crate::watch::Watch;

type Valid = <crate::Config as DaemonConfig>::Valid;

/// Flags of `etcd-server run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// Directory of the store (`mvcc.db`, SQLite in WAL mode); created when missing.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/mldefender/etcd-server")]
    pub data_dir: PathBuf,
}

#[derive(Debug)]
pub struct EtcdServer {
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    /// Server TLS, with client-certificate verification when a client CA is configured.
    tls: Option<ServerTlsConfig>,
    listen: SocketAddr,
    progress_every: Duration,
    /// The store's file (its size is a metric).
    path: PathBuf,
}

/// The server's TLS settings; a file that cannot be read is named with its config field.
fn server_tls(tls: &ValidTls) -> anyhow::Result<ServerTlsConfig> {
    let read = |field: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {field} {}", path.display()))
    };
    let identity = tonic::transport::Identity::from_pem(
        read("tls.cert_file", &tls.cert_file)?,
        read("tls.key_file", &tls.key_file)?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read("tls.client_ca_file", ca)?));
    }
    Ok(config)
}

impl Daemon for EtcdServer {
    const NAME: &'static str = crate::NAME;
    const ABOUT: &'static str = crate::ABOUT;
    type Config = crate::Config;
    type Flags = Flags;

    fn metrics_listen(config: &Valid) -> Option<SocketAddr> {
        config.metrics.listen
    }

    fn setup(config: Valid, flags: Flags, registry: &mut Registry) -> Result<Self, DaemonError> {
        mld_daemon::state_dir(&flags.data_dir)
            .context("the data directory (--data-dir)")
            .map_err(DaemonError::unavailable)?;
        let path = flags.data_dir.join("mvcc.db");
        let store = Store::open(&path)
            .with_context(|| format!("opening the store {}", path.display()))
            .map_err(DaemonError::unavailable)?;
        let tls =
            config.tls.as_ref().map(server_tls).transpose().map_err(DaemonError::unavailable)?;
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("binding the client address {} (listen)", config.listen))
            .map_err(DaemonError::unavailable)?;
        listener.set_nonblocking(true).map_err(DaemonError::unavailable)?;
        tracing::info!(revision = store.revision(), path = %path.display(), "store opened");
        // One member of a one-member cluster: fixed, non-zero ids, as etcd's are.
        let id = Identity { cluster_id: 0x6d6c_6465_6665_6e64, member_id: 0x6d6c_6431 };
        let min_ttl = i64::try_from(config.min_lease_ttl.as_secs()).unwrap_or(i64::MAX);
        let shared = Arc::new(Shared::new(store, id, min_ttl));
        shared.metrics.register(registry);
        Ok(Self {
            shared,
            path,
            listener,
            tls,
            listen: config.listen,
            progress_every: config.watch_progress_notify_interval,
        })
    }

    async fn run(self, ctx: RunContext) -> Result<(), DaemonError> {
        let listener =
            tokio::net::TcpListener::from_std(self.listener).map_err(DaemonError::failure)?;
        tracing::info!(addr = %self.listen, "serving the etcd v3 API");
        ctx.readiness.set(true);
        let shutdown = ctx.shutdown.clone();
        // Lease expiry: revoke what is due, ten times a second; the store's gauges once a
        // second.
        let expiry = {
            let shared = Arc::clone(&self.shared);
            let stop = ctx.shutdown.clone();
            let path = self.path.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                for n in 0u64.. {
                    if stop.is_cancelled() {
                        break;
                    }
                    tick.tick().await;
                    let expired = crate::lease::expire(&shared);
                    shared.metrics.leases_expired.inc_by(expired as u64);
                    if n % 10 == 0 {
                        shared.metrics.observe(&shared.store(), &path);
                    }
                }
            })
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut builder = tonic::transport::Server::builder()
            .layer(crate::metrics::CountLayer(self.shared.metrics.clone()));
        if let Some(tls) = self.tls {
            builder = builder
                .tls_config(tls)
                .context("the TLS settings (tls)")
                .map_err(DaemonError::unavailable)?;
        }
        let served = builder
            .add_service(PbKvServer::new(Kv(Arc::clone(&self.shared))))
            .add_service(PbLeaseServer::new(Lease(Arc::clone(&self.shared))))
            .add_service(PbWatchServer::new(Watch {
                shared: Arc::clone(&self.shared),
                progress_every: self.progress_every,
            }))
            .add_service(PbMaintenanceServer::new(Maintenance(Arc::clone(&self.shared))))
            .add_service(PbClusterServer::new(Cluster {
                shared: Arc::clone(&self.shared),
                client_url: format!("{scheme}://{}", self.listen),
            }))
            .serve_with_incoming_shutdown(
                // Small request/response pairs: without TCP_NODELAY, Nagle's algorithm and
                // delayed ACKs add ~40 ms to a request that follows an unanswered write.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move { shutdown.cancelled().await },
            )
            .await
            .context("serving gRPC")
            .map_err(DaemonError::failure);
        expiry.abort();
        served
    }
}
