//! `etcd-server`: serves the etcd v3 API subset every daemon registers, heartbeats and takes its config from.
//!
//! What it will do (issue #5): a compatible subset of the etcd v3 gRPC API (KV, Watch, Lease, Maintenance, Cluster) on an embedded MVCC store, plus `init` (root secret) and `keys rotate`.
//!
//! What it does today: `etcd-server run --config FILE [--data-dir DIR]` serves the etcd v3
//! **KV** service (`Range` with prefix/range end, limit, sort, keys/count only, revision and
//! revision filters; `Put` with `prev_kv`, `lease`, `ignore_value`/`ignore_lease`;
//! `DeleteRange` with `prev_kv`; `Txn` with compares on version, create/mod revision, value
//! and lease; `Compact`) on the MVCC [`store`] (SQLite), with errors mapped to etcd's codes
//! and messages in [`status`]. A test runs the same client-level scenario against it and a real
//! etcd 3.4 and requires equal results. Not yet: Watch, Lease, Maintenance, Cluster, TLS,
//! metrics of its own, and the control-plane library.
#![forbid(unsafe_code)]

pub mod daemon;
pub mod kv;
pub mod status;
pub mod store;

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::etcd_server::EtcdServerConfig as Config;

/// The binary's name.
pub const NAME: &str = "etcd-server";

/// One line for `--help`.
pub const ABOUT: &str = "Serves the etcd v3 API subset every daemon registers, heartbeats and takes its config from (this build: the KV service only; Watch, Lease, Maintenance and Cluster arrive with issue #5)";
