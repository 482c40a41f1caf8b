//! The runtime shared by every ML Defender daemon binary.
//!
//! A daemon's `main.rs` is one call: [`main`] parses the command line, initialises logging,
//! loads and validates the config, starts `/metrics` and `/ready`, runs the daemon until
//! SIGTERM or SIGINT, lets it drain for a grace period, and maps the outcome to an
//! [`ExitCode`]. Every daemon therefore has the same interface:
//!
//! ```text
//! <daemon> [--log-format plain|json] [--log-level FILTER] run --config FILE [--grace-secs N] [daemon flags]
//! <daemon> validate --config FILE
//! ```
//!
//! A daemon implements [`Daemon`]: `setup` builds it (opens sockets, registers metrics;
//! failures there are start-up errors), `run` works until the shutdown token is cancelled and
//! then drains. A second signal during the drain, or a drain longer than the grace period,
//! ends the process with a non-zero code; nothing waits forever.
//!
//! Daemons whose run loop does not exist yet use [`validate_only_main`], which offers only
//! `validate`, so that no binary pretends to do work it cannot do.
#![forbid(unsafe_code)]

mod exit;
mod runtime;

pub use exit::ExitCode;

/// Loads the root secret named by `transport.root_secret_file` into a key ring at the
/// configured epoch and grace window. A missing or unreadable secret is "unavailable" (the
/// operator has not provisioned the host yet), with the file and field in the message.
pub fn key_ring(
    transport: &mld_config::common::ValidTransport,
) -> Result<std::sync::Arc<mld_crypto_transport::KeyRing>, DaemonError> {
    use anyhow::Context as _;
    let secret = mld_crypto_transport::RootSecret::load(&transport.root_secret_file)
        .with_context(|| {
            format!(
                "loading the root secret named by transport.root_secret_file ({})",
                transport.root_secret_file.display()
            )
        })
        .map_err(DaemonError::unavailable)?;
    Ok(std::sync::Arc::new(mld_crypto_transport::KeyRing::with_grace(
        secret,
        transport.key_epoch,
        transport.epoch_grace,
    )))
}
pub use runtime::{Daemon, DaemonError, RunContext, Valid, main, run_main, validate_only_main};
