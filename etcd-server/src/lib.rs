//! `etcd-server`: serves the etcd v3 API subset every daemon registers, heartbeats and takes its config from.
//!
//! `etcd-server run --config FILE [--data-dir DIR]` serves, on the MVCC [`store`] (SQLite),
//! the etcd v3 **KV** service ([`kv`]: `Range` with prefix/range end, limit, sort, keys/count
//! only, revision and revision filters; `Put` with `prev_kv`, `lease`,
//! `ignore_value`/`ignore_lease`; `DeleteRange` with `prev_kv`; `Txn` with compares on version,
//! create/mod revision, value and lease, and nested txns; `Compact`), the **Lease** service ([`lease`]: grant,
//! revoke, keep-alive stream, time to live, list; expiry deletes a lease's keys in one
//! revision) and the **Watch** service ([`watch`]: start revision, prefix, `prev_kv`, filters,
//! progress notifications, cancel, the compacted cancel; history then live changes with no gap
//! or duplicate, one response per revision). Errors map to etcd's codes and messages in
//! [`status`]. Maintenance answers `Status` and `Alarm`, Cluster `MemberList`, as a one-member
//! cluster ([`cluster`]). With `tls` it serves TLS, and with `tls.client_ca_file` requires a
//! client certificate that CA signed ([`daemon`]). Tests run the same client-level scenarios
//! against it and a real etcd 3.4 and require equal results.
//!
//! [`admin`]: `init` (root secret, key epoch 1), `keys rotate` (epoch + 1 and every stored
//! config re-sealed in one transaction) and `config get|put`, through the etcd API, so they
//! work against a real etcd cluster too. [`metrics`]: requests by method and code, commit
//! latency, watch streams, expired leases and the store's revision, keys, leases and size.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cluster;
pub mod daemon;
pub mod kv;
pub mod lease;
pub mod metrics;
pub mod status;
pub mod store;
pub mod watch;

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::etcd_server::EtcdServerConfig as Config;

/// The binary's name.
pub const NAME: &str = "etcd-server";

/// One line for `--help`.
pub const ABOUT: &str = "Serves the etcd v3 API subset every daemon registers, heartbeats and takes its config from (KV, Lease, Watch, Maintenance status, Cluster member list; optional TLS with client certificates), and provisions the deployment: init, keys rotate, config get|put";
