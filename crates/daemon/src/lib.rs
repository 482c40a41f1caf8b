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
//! A daemon whose config lists `etcd.endpoints` joins the control plane when its
//! [`Daemon::control`] says [`Membership::Join`]; a run that cannot (the sniffer with
//! `--no-publish` has no root secret to unseal configs with) says why, and the runtime logs it.
#![forbid(unsafe_code)]

mod exit;
mod runtime;

pub use exit::ExitCode;

/// Runs `work` on a blocking thread (a capture or bus loop that polls its sockets) until it
/// returns. `work` gets a flag that turns true on the first shutdown signal, at which point it
/// should drain and return, and the readiness to set once it is working. `what` names the
/// thread in the error if it panics.
pub async fn run_blocking<F>(
    ctx: RunContext,
    what: &'static str,
    work: F,
) -> Result<(), DaemonError>
where
    F: FnOnce(&std::sync::atomic::AtomicBool, &mld_telemetry::Readiness) -> Result<(), DaemonError>
        + Send
        + 'static,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = {
        let stop = Arc::clone(&stop);
        let token = ctx.shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let readiness = ctx.readiness.clone();
    let result = tokio::task::spawn_blocking(move || work(&stop, &readiness))
        .await
        .map_err(|e| DaemonError::failure(anyhow::anyhow!("{what} thread failed: {e}")))?;
    stop_on_signal.abort();
    result
}

/// Binds the publisher a daemon's `publish` section describes, for messages of `topic` (named
/// in the error when the endpoint cannot be bound).
pub fn bus_publisher(
    ctx: &mld_bus::Context,
    ring: std::sync::Arc<mld_crypto_transport::KeyRing>,
    publish: &mld_config::common::ValidPublish,
    topic: mld_bus::Topic,
    registry: &mut mld_telemetry::prometheus_client::registry::Registry,
) -> Result<mld_bus::Publisher, DaemonError> {
    use anyhow::Context as _;
    let mut options = mld_bus::PublisherOptions::new(publish.bind.as_str());
    options.send_hwm = publish.send_hwm;
    mld_bus::Publisher::bind(ctx, ring, &options, registry)
        .with_context(|| format!("binding the {topic} publisher on {}", publish.bind))
        .map_err(DaemonError::unavailable)
}

/// Connects the subscriber a daemon's `subscribe` section describes, for messages `M`.
pub fn bus_subscriber<M: mld_bus::BusMessage>(
    ctx: &mld_bus::Context,
    ring: std::sync::Arc<mld_crypto_transport::KeyRing>,
    subscribe: &mld_config::common::ValidSubscribe,
    registry: &mut mld_telemetry::prometheus_client::registry::Registry,
) -> Result<mld_bus::Subscriber<M>, DaemonError> {
    use anyhow::Context as _;
    let mut options = mld_bus::SubscriberOptions::new(
        subscribe.connect.iter().map(mld_config::common::Endpoint::as_str),
    );
    options.recv_hwm = subscribe.recv_hwm;
    mld_bus::Subscriber::connect(ctx, ring, &options, registry)
        .with_context(|| format!("connecting the {} subscriber", M::TOPIC))
        .map_err(DaemonError::unavailable)
}

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
pub use runtime::{
    Control, Daemon, DaemonError, Membership, NoExtra, RunContext, Valid, main, run_main,
    run_main_with, state_dir, validate,
};
