//! `etcd-server`: serves the etcd v3 API subset every daemon registers, heartbeats and takes its config from.
//!
//! What it will do (issue #5): a compatible subset of the etcd v3 gRPC API (KV, Watch, Lease, Maintenance, Cluster) on an embedded MVCC store, plus `init` (root secret) and `keys rotate`.
//!
//! What it does today: `etcd-server validate --config FILE` checks a config against
//! [`Config`] and reports every problem at once (exit 0 when valid, 64 when not); the MVCC
//! store the services will stand on ([`store`]: SQLite, etcd's revision rules, leases,
//! compaction, history for watch replay) is built and unit-tested. The gRPC services are not:
//! the binary has no `run` command yet, so it never pretends to work.
#![forbid(unsafe_code)]

pub mod store;

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::etcd_server::EtcdServerConfig as Config;

/// The binary's name.
pub const NAME: &str = "etcd-server";

/// One line for `--help`.
pub const ABOUT: &str = "Serves the etcd v3 API subset every daemon registers, heartbeats and takes its config from (this build: config validation only; the daemon arrives with issue #5)";
