use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use mld_config::common::ValidEtcd;
use mld_config::{ConfigError, DaemonConfig};
use mld_telemetry::prometheus_client::registry::Registry;
use mld_telemetry::{LogFormat, Readiness};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::ExitCode;

/// The validated config of daemon `D`.
pub type Valid<D> = <<D as Daemon>::Config as DaemonConfig>::Valid;

/// A daemon run by [`main`].
pub trait Daemon: Sized + Send + 'static {
    /// Binary name, e.g. `sniffer`.
    const NAME: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    type Config: DaemonConfig;
    /// Daemon-specific flags of `run` (how the process runs: paths, modes).
    type Flags: Args + Send;

    /// Where `/metrics` and `/ready` listen, if anywhere.
    fn metrics_listen(config: &Valid<Self>) -> Option<SocketAddr>;

    /// Builds the daemon: opens what it needs and registers its metrics.
    fn setup(
        config: Valid<Self>,
        flags: Self::Flags,
        registry: &mut Registry,
    ) -> Result<Self, DaemonError>;

    /// Works until `ctx.shutdown` is cancelled, then drains and returns.
    fn run(self, ctx: RunContext) -> impl Future<Output = Result<(), DaemonError>> + Send;

    /// Where the daemon finds etcd; `None` (the default) or no endpoints: standalone.
    fn etcd(_config: &Valid<Self>) -> Option<&ValidEtcd> {
        None
    }

    /// Its instance name under `components/<name>/`; by default the host name.
    fn instance(_config: &Valid<Self>) -> String {
        mld_control::host_instance()
    }

    /// The folders this daemon writes its state or logs in (the units' `StateDirectory` and
    /// `LogsDirectory`). Run by hand, the runtime creates each missing one (mode 0750, its
    /// missing parents 0755) before `setup`, or refuses to start naming the folder and the
    /// config field that names it (the first of each pair).
    fn state_dirs(_config: &Valid<Self>) -> Vec<(&'static str, PathBuf)> {
        Vec::new()
    }

    /// What the control plane needs (key ring, how to apply a new config); taken once after
    /// `setup` when etcd is configured. The default: the daemon does not use etcd.
    fn control(&mut self) -> Membership<Valid<Self>> {
        Membership::Standalone { why: "this daemon does not use etcd" }
    }
}

/// Whether a daemon joins the control plane in this run.
pub enum Membership<V> {
    /// It registers, takes up `active` and follows the key epoch.
    Join(Control<V>),
    /// It runs on its local config alone this time, for this reason (logged at start when
    /// `etcd.endpoints` is set), e.g. an offline run that loads no root secret.
    Standalone { why: &'static str },
}

/// A daemon's part in the control plane.
pub struct Control<V> {
    /// The key ring its bus uses: configs are sealed with it, and it follows `keys/epoch`.
    pub ring: Arc<mld_crypto_transport::KeyRing>,
    /// Applies a new validated config (see [`mld_control::Apply`]).
    pub apply: mld_control::Apply<V>,
}

/// What a running daemon gets from the runtime.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Cancelled on the first SIGTERM/SIGINT: stop taking work, finish what is in hand.
    pub shutdown: CancellationToken,
    /// Set it once the daemon is doing its work; the runtime clears it when draining.
    pub readiness: Readiness,
}

/// A daemon failure and the exit code it maps to.
#[derive(Debug)]
pub struct DaemonError {
    pub exit: ExitCode,
    pub error: anyhow::Error,
}

impl DaemonError {
    pub fn failure(error: impl Into<anyhow::Error>) -> Self {
        Self { exit: ExitCode::Failure, error: error.into() }
    }

    pub fn unavailable(error: impl Into<anyhow::Error>) -> Self {
        Self { exit: ExitCode::Unavailable, error: error.into() }
    }
}

#[derive(Parser)]
struct Cli<F: Args, X: Subcommand> {
    /// Log line format on stderr: plain or json.
    #[arg(long, global = true, default_value = "plain", value_parser = parse_format)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `info,mld_bus=debug` (`RUST_LOG` overrides it).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command<F, X>,
}

#[derive(Subcommand)]
enum Command<F: Args, X: Subcommand> {
    /// Run the daemon until SIGTERM or SIGINT.
    Run(RunArgs<F>),
    /// Check a config file and print every problem in it; exit 0 when valid, 64 when not.
    Validate(ValidateArgs),
    #[command(flatten)]
    Extra(X),
}

/// No commands beyond `run` and `validate`.
#[derive(Subcommand)]
pub enum NoExtra {}

#[derive(Args)]
struct RunArgs<F: Args> {
    #[command(flatten)]
    config: ValidateArgs,
    /// Seconds allowed for draining after the first signal before exiting anyway.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    grace_secs: u64,
    #[command(flatten)]
    flags: F,
}

#[derive(Args)]
struct ValidateArgs {
    /// The daemon's JSON config file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
}

fn parse_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

/// Runs daemon `D` with the process's arguments.
pub fn main<D: Daemon>() -> std::process::ExitCode {
    run_main::<D>(std::env::args_os()).into()
}

/// Runs daemon `D` with the given arguments (the first is the program name).
pub fn run_main<D: Daemon>(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    run_main_with::<D, NoExtra>(args, |never| match never {})
}

/// As [`run_main`], for a binary with more commands than `run` and `validate` (such as
/// `etcd-server init`): `extra` runs them, with logging initialised.
pub fn run_main_with<D: Daemon, X: Subcommand>(
    args: impl IntoIterator<Item = OsString>,
    extra: impl FnOnce(X) -> ExitCode,
) -> ExitCode {
    let command = Cli::<D::Flags, X>::command().name(D::NAME).about(D::ABOUT);
    let cli = match command
        .try_get_matches_from(args)
        .and_then(|m| Cli::<D::Flags, X>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    // `validate` prints its verdict and nothing else; the others log.
    if !matches!(cli.command, Command::Validate(_))
        && let Err(e) = mld_telemetry::init_logging(cli.log_format, &cli.log_level)
    {
        eprintln!("{}: {e:#}", D::NAME);
        return ExitCode::Usage;
    }
    match cli.command {
        Command::Validate(args) => validate::<D::Config>(&args.config),
        Command::Extra(x) => extra(x),
        Command::Run(args) => {
            let config = match mld_config::load_with_raw::<D::Config>(&args.config.config) {
                Ok(config) => config,
                Err(e) => {
                    tracing::error!(error = %e, "invalid config");
                    eprintln!("{}: {e}", D::NAME);
                    return ExitCode::Config;
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the async runtime");
                    return ExitCode::Unavailable;
                }
            };
            let code = runtime.block_on(serve::<D>(
                config,
                args.flags,
                Duration::from_secs(args.grace_secs),
            ));
            // A task stuck in blocking code cannot be aborted; do not wait for it forever.
            runtime.shutdown_timeout(Duration::from_secs(1));
            code
        }
    }
}

fn clap_exit(e: &clap::Error) -> ExitCode {
    // --help and --version print to stdout and succeed; real usage errors go to stderr.
    let _ = e.print();
    if e.use_stderr() { ExitCode::Usage } else { ExitCode::Success }
}

#[expect(clippy::print_stdout, reason = "validate reports its verdict to the operator")]
/// `<binary> validate --config FILE`: prints every problem of the config, exit 0 or 64.
pub fn validate<C: DaemonConfig>(path: &Path) -> ExitCode {
    match mld_config::load::<C>(path) {
        Ok(_) => {
            println!("ok: {} is a valid {} config", path.display(), C::COMPONENT);
            ExitCode::Success
        }
        Err(e @ ConfigError::Read { .. }) => {
            eprintln!(
                "{}: {e}: {}",
                C::COMPONENT,
                std::error::Error::source(&e).map_or(String::new(), ToString::to_string)
            );
            ExitCode::Config
        }
        Err(e) => {
            eprintln!("{}: {e}", C::COMPONENT);
            ExitCode::Config
        }
    }
}

async fn serve<D: Daemon>(
    (raw, config): (D::Config, Valid<D>),
    flags: D::Flags,
    grace: Duration,
) -> ExitCode {
    // Handlers first, so that a signal during set-up is not fatal by default.
    let (mut term, mut int) =
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot install signal handlers");
                return ExitCode::Unavailable;
            }
        };
    let metrics_addr = D::metrics_listen(&config);
    let etcd = D::etcd(&config).filter(|e| !e.endpoints.is_empty()).cloned();
    let instance = D::instance(&config);
    if let Err(e) = make_state_dirs(&D::state_dirs(&config)) {
        tracing::error!(error = format!("{e:#}"), "start-up failed");
        return ExitCode::Unavailable;
    }
    let mut registry = mld_telemetry::component_registry(D::NAME);
    let mut daemon = match D::setup(config, flags, &mut registry) {
        Ok(daemon) => daemon,
        Err(e) => {
            tracing::error!(error = format!("{:#}", e.error), "start-up failed");
            return e.exit;
        }
    };
    let plane = match join::<D>(etcd, daemon.control(), instance, &raw, &mut registry) {
        Ok(plane) => plane,
        Err(code) => return code,
    };
    let shutdown = CancellationToken::new();
    let readiness = Readiness::default();
    // The metrics endpoint outlives the daemon's own token so the drain stays observable.
    let metrics_stop = CancellationToken::new();
    let metrics = match metrics_addr {
        Some(addr) => match mld_telemetry::serve(
            addr,
            Arc::new(registry),
            readiness.clone(),
            metrics_stop.clone(),
        )
        .await
        {
            Ok(server) => Some(server),
            Err(e) => {
                tracing::error!(error = %e, "cannot serve metrics");
                return ExitCode::Unavailable;
            }
        },
        None => None,
    };

    // The control plane outlives the drain too; its lease is revoked once the daemon stopped.
    let plane_stop = CancellationToken::new();
    let plane = plane.map(|p| tokio::spawn(p.run(plane_stop.clone())));
    let ctx = RunContext { shutdown: shutdown.clone(), readiness: readiness.clone() };
    let mut work = tokio::spawn(daemon.run(ctx));
    tracing::info!(daemon = D::NAME, version = env!("CARGO_PKG_VERSION"), "started");

    let outcome = tokio::select! {
        joined = &mut work => Some(joined),
        () = next_signal(&mut term, &mut int) => None,
    };
    let code = if let Some(joined) = outcome {
        finished(joined)
    } else {
        tracing::info!(grace_secs = grace.as_secs(), "signal received, draining");
        readiness.set(false);
        shutdown.cancel();
        tokio::select! {
            joined = &mut work => finished(joined),
            () = tokio::time::sleep(grace) => {
                tracing::error!(grace_secs = grace.as_secs(), "drain did not finish within the grace period");
                work.abort();
                ExitCode::DrainTimeout
            }
            () = next_signal(&mut term, &mut int) => {
                tracing::warn!("second signal, exiting without finishing the drain");
                work.abort();
                ExitCode::Failure
            }
        }
    };
    plane_stop.cancel();
    if let Some(plane) = plane {
        let _ = tokio::time::timeout(Duration::from_secs(2), plane).await;
    }
    metrics_stop.cancel();
    if let Some(server) = metrics {
        let _ = server.task.await;
    }
    tracing::info!(exit_code = code.code(), "stopped");
    code
}

/// The control plane of a daemon that joins it (its kept config's folder made first).
fn join<D: Daemon>(
    etcd: Option<ValidEtcd>,
    membership: Membership<Valid<D>>,
    instance: String,
    raw: &D::Config,
    registry: &mut Registry,
) -> Result<Option<mld_control::ControlPlane<D::Config>>, ExitCode> {
    Ok(match (etcd, membership) {
        (None, _) => None,
        (Some(etcd), Membership::Join(control)) => {
            // The kept config is written only by a daemon that joins: its folder is made now,
            // so that an offline run creates nothing it does not use.
            if let Some(dir) = etcd.cache_file.as_deref().and_then(Path::parent)
                && let Err(e) = make_state_dirs(&[("etcd.cache_file", dir.to_path_buf())])
            {
                tracing::error!(error = format!("{e:#}"), "start-up failed");
                return Err(ExitCode::Unavailable);
            }
            Some(mld_control::ControlPlane::<D::Config>::new(
                mld_control::Options {
                    component: <D::Config as DaemonConfig>::COMPONENT,
                    instance,
                    version: env!("CARGO_PKG_VERSION"),
                    etcd,
                    ring: control.ring,
                    apply: control.apply,
                },
                raw,
                registry,
            ))
        }
        (Some(_), Membership::Standalone { why }) => {
            tracing::info!(reason = why, "not joining the control plane: etcd.endpoints unused");
            None
        }
    })
}

/// [`state_dir`] for each `(field, folder)`; the error names the field.
fn make_state_dirs(dirs: &[(&'static str, PathBuf)]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    for (field, dir) in dirs.iter().filter(|(_, d)| !d.as_os_str().is_empty()) {
        state_dir(dir).with_context(|| format!("the folder {field} names"))?;
    }
    Ok(())
}

/// Makes sure `dir` exists: a missing folder is created with mode 0750 (its missing parents
/// 0755), as systemd makes a unit's `StateDirectory`; an existing one is left as it is. The
/// error names the folder and why it cannot be had.
pub fn state_dir(dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(file) = dir.ancestors().find(|a| a.exists()).filter(|a| !a.is_dir()) {
        anyhow::bail!(
            "cannot create the folder {}: {} is not a folder",
            dir.display(),
            file.display()
        );
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o750).create(dir) {
        Ok(()) => {
            tracing::info!(path = %dir.display(), "created the state folder");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create the folder {}", dir.display())),
    }
}

/// Waits for the next SIGTERM or SIGINT.
async fn next_signal(term: &mut Signal, int: &mut Signal) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn finished(joined: Result<Result<(), DaemonError>, tokio::task::JoinError>) -> ExitCode {
    match joined {
        Ok(Ok(())) => ExitCode::Success,
        Ok(Err(e)) => {
            tracing::error!(error = format!("{:#}", e.error), "daemon failed");
            e.exit
        }
        Err(e) => {
            tracing::error!(error = %e, "daemon task panicked");
            ExitCode::Software
        }
    }
}
