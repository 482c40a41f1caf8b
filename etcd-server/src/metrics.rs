//! `mld_etcd_server_*` metrics: requests by method and gRPC code (counted by a layer in front
//! of every service, so undecodable requests and unknown methods count too), commit latency,
//! watch streams, expired leases, lagging watchers, and the store's state.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::metrics::family::Family;
use mld_telemetry::prometheus_client::metrics::gauge::Gauge;
use mld_telemetry::prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use mld_telemetry::prometheus_client::registry::Registry;
use tonic::codegen::http;

use crate::store::Store;

type Labels = Vec<(&'static str, String)>;

/// The methods served, as they appear in request paths; any other path counts as `other`
/// (so that a client sending made-up paths cannot grow the label set).
const METHODS: [&str; 15] = [
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/DeleteRange",
    "/etcdserverpb.KV/Txn",
    "/etcdserverpb.KV/Compact",
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseGrant",
    "/etcdserverpb.Lease/LeaseRevoke",
    "/etcdserverpb.Lease/LeaseKeepAlive",
    "/etcdserverpb.Lease/LeaseTimeToLive",
    "/etcdserverpb.Lease/LeaseLeases",
    "/etcdserverpb.Maintenance/Status",
    "/etcdserverpb.Maintenance/Alarm",
    "/etcdserverpb.Cluster/MemberList",
    "/etcdserverpb.KV/RangeStream",
];

/// Every metric; clones share their values.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<Labels, Counter>,
    pub commit_seconds: Histogram,
    pub watch_streams: Gauge,
    pub watches_created: Counter,
    pub watch_lagged: Counter,
    pub leases_expired: Counter,
    revision: Gauge,
    compact_revision: Gauge,
    keys: Gauge,
    leases: Gauge,
    db_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            // 100 µs to ~1.6 s: a commit is one SQLite transaction with an fsync.
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 15)),
            watch_streams: Gauge::default(),
            watches_created: Counter::default(),
            watch_lagged: Counter::default(),
            leases_expired: Counter::default(),
            revision: Gauge::default(),
            compact_revision: Gauge::default(),
            keys: Gauge::default(),
            leases: Gauge::default(),
            db_bytes: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "requests",
            "gRPC requests (streams when they start) by method and code",
            self.requests.clone(),
        );
        r.register(
            "commit_seconds",
            "Time to apply one write (SQLite transaction with fsync)",
            self.commit_seconds.clone(),
        );
        r.register("watch_streams", "Watch streams open", self.watch_streams.clone());
        r.register("watches_created", "Watches created", self.watches_created.clone());
        r.register(
            "watch_lagged",
            "Times a watcher fell behind the live changes and caught up from history",
            self.watch_lagged.clone(),
        );
        r.register("leases_expired", "Leases revoked by expiry", self.leases_expired.clone());
        r.register("revision", "Current store revision", self.revision.clone());
        r.register("compact_revision", "Revision compacted up to", self.compact_revision.clone());
        r.register("keys", "Keys in the current revision", self.keys.clone());
        r.register("leases", "Leases granted and not expired", self.leases.clone());
        r.register(
            "db_bytes",
            "Size of the store files (mvcc.db and its WAL)",
            self.db_bytes.clone(),
        );
    }

    /// Counts one request to `path` that ended with gRPC status `code`.
    pub fn request(&self, path: &str, code: i32) {
        let method = METHODS.iter().find(|m| **m == path).map_or("other", |m| &m[14..]);
        let code = format!("{:?}", tonic::Code::from_i32(code));
        self.requests.get_or_create(&vec![("method", method.to_owned()), ("code", code)]).inc();
    }

    /// Takes the store's state (call it with the store locked; the daemon does once a
    /// second); `db` is the store's file.
    pub fn observe(&self, store: &Store, db: &Path) {
        self.revision.set(store.revision());
        self.compact_revision.set(store.compact_revision());
        self.keys.set(i64::try_from(store.key_count()).unwrap_or(i64::MAX));
        self.leases.set(i64::try_from(store.leases().count()).unwrap_or(i64::MAX));
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let bytes = size(db) + size(Path::new(&wal));
        self.db_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

/// The layer that counts requests: in front of the services, it sees every response,
/// including those to requests that never reached a service.
#[derive(Debug, Clone)]
pub struct CountLayer(pub Metrics);

impl<S> tower_layer::Layer<S> for CountLayer {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted { inner, metrics: self.0.clone() }
    }
}

#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Counted<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await;
            if let Ok(r) = &response {
                // An error is sent in the headers ("trailers only"); a response that goes on
                // to a body has its status in the trailers, and started fine.
                let code = r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                metrics.request(&path, code);
            }
            response
        })
    }
}
