//! The control plane every daemon shares (DESIGN §4.4, §8): registration and heartbeats in
//! etcd, the sealed master/active configs with hot reload and rollback, and the key epoch.
//!
//! A daemon started with `etcd.endpoints` runs one [`ControlPlane`] beside its work (the
//! `mld-daemon` runtime does this for every daemon). Per session with etcd it:
//! 1. grants a lease of `etcd.lease_ttl_secs` and keeps it alive every third of it (the
//!    heartbeat); `components/<name>/<instance>` holds the registration JSON, bound to it;
//! 2. reads `keys/epoch` and switches its key ring to a newer epoch, then follows it;
//! 3. creates `config/<name>/master` from its running config once (compare-and-swap on the
//!    key's create revision: never overwritten), publishes the running config as `active`
//!    when there is none, or else takes up the active one;
//! 4. watches `active`: each new value is opened (sealed on the `config` channel), parsed,
//!    validated and, unless it changes a field outside the daemon's
//!    [`LIVE_FIELDS`](mld_config::DaemonConfig::LIVE_FIELDS) (refused naming each field and
//!    its JSON values), handed to the daemon's [`Apply`]; an invalid or rejected config is
//!    replaced by the master (only if `active` still holds it) and an alert is written under
//!    `alerts/`; a value that cannot be opened (wrong root secret or epoch) is reported as a
//!    misconfiguration alert and leaves the running config in force.
//!
//! When etcd is down, the session ends and the daemon runs on its last good config; the plane
//! retries with exponential backoff (0.1 s doubling to 5 s, ±20 % jitter) and on reconnect
//! registers again and re-reads `active` from the current revision. On shutdown it revokes its
//! lease, so the component is shown down at once rather than after its TTL. The config in
//! force is kept in `etcd.cache_file` (0600, replaced atomically); a daemon that starts while
//! etcd is unreachable applies it over its local file.
#![forbid(unsafe_code)]

pub mod admin;
pub mod fields;
pub mod keys;
mod plane;
pub mod sealed;

pub use plane::{Apply, BACKOFF, ControlPlane, Options, REQUEST_TIMEOUT};

/// For an [`Apply`] that cannot change `field` while running: `Err` naming the field when the
/// values differ. A second line of defence: the control plane refuses a change outside
/// [`mld_config::DaemonConfig::LIVE_FIELDS`] before it calls the daemon, naming each field
/// with its JSON values (see [`fields`]); the typed values here are not what the user wrote,
/// so they are not shown.
pub fn restart_only<T: PartialEq>(field: &str, running: &T, new: &T) -> Result<(), String> {
    if running == new { Ok(()) } else { Err(format!("{field} changes only at restart")) }
}

/// The client TLS settings `tls` names: the CA that signed etcd's certificate, and this
/// daemon's certificate when one is configured. Errors name the file.
pub fn tls_options(
    tls: &mld_config::common::EtcdTlsConfig,
) -> Result<etcd_client::TlsOptions, String> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let mut options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca_file)?));
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        options = options.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(options)
}

/// This machine's host name (empty when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The default instance name: the host name, or `default` when it cannot be read.
pub fn host_instance() -> String {
    let host = host_name();
    if host.is_empty() { "default".to_owned() } else { host }
}
