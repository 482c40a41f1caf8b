//! The operator's commands beside `run`: `init` (root secret and first epoch), `keys rotate`,
//! and `config get|put` (a daemon's sealed config in etcd, validated before it is written).
//!
//! They talk to a running etcd-server, or to a real etcd cluster, through the etcd v3 API, so
//! that they work the same in both deployments.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use mld_control::admin::{self, Target, connect, epoch, keyed, load_secret};
use mld_control::{keys, sealed};
use mld_crypto_transport::{KeyRing, RootSecret};
use mld_daemon::ExitCode;

/// Commands of `etcd-server` beside `run` and `validate`.
#[derive(Debug, clap::Subcommand)]
pub enum Admin {
    /// Provision a deployment: write a new root secret (mode 0600) unless one exists, and set
    /// the key epoch to 1 unless it is set. Safe to run again.
    Init(Target),
    /// Key epochs.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A daemon's config in etcd (sealed on the `config` channel).
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Bump the key epoch by one and re-seal every stored config under it, in one
    /// transaction; daemons switch as they see the new epoch, dropping no message.
    Rotate(Target),
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print a daemon's active (or master) config.
    Get {
        /// Component name, e.g. ml-detector.
        component: String,
        /// Print the master config instead of the active one.
        #[arg(long)]
        master: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Validate a config file and make it the daemon's active config. When there is an active
    /// config already, a file that changes a field the daemon applies only at restart is
    /// refused (the daemon would roll it back): change that in the daemon's own config file
    /// and restart it.
    Put {
        /// Component name, e.g. ml-detector.
        component: String,
        /// The JSON config file.
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

/// Runs one command; its outcome goes to stdout, failures to stderr.
pub fn run(command: Admin) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", crate::NAME);
            return ExitCode::Unavailable;
        }
    };
    let outcome = runtime.block_on(async {
        match command {
            Admin::Init(t) => init(&t).await,
            Admin::Keys(KeysCommand::Rotate(t)) => rotate(&t).await,
            Admin::Config(ConfigCommand::Get { component, master, target }) => {
                config_get(&target, &component, master).await
            }
            Admin::Config(ConfigCommand::Put { component, file, target }) => {
                config_put(&target, &component, &file).await
            }
        }
    });
    match outcome {
        Ok(report) => {
            print(&report);
            ExitCode::Success
        }
        Err(e) => {
            eprintln!("{}: {e:#}", crate::NAME);
            ExitCode::Failure
        }
    }
}

#[expect(clippy::print_stdout, reason = "the commands report to the operator")]
fn print(report: &str) {
    println!("{report}");
}

async fn init(target: &Target) -> anyhow::Result<String> {
    let mut report = Vec::new();
    let secret = target.root_secret();
    if secret.exists() {
        load_secret(secret)?;
        report.push(format!("kept the existing root secret {}", secret.display()));
    } else {
        if let Some(dir) = secret.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the directory {}", dir.display()))?;
        }
        RootSecret::generate()
            .and_then(|s| s.write_new(secret))
            .with_context(|| format!("writing the root secret {}", secret.display()))?;
        report.push(format!("wrote a new root secret to {} (mode 0600)", secret.display()));
    }
    let mut client = connect(target).await?;
    let created = client
        .txn(
            Txn::new()
                .when([Compare::create_revision(keys::EPOCH, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(keys::EPOCH, "1", None)]),
        )
        .await
        .context("setting keys/epoch")?
        .succeeded();
    let (current, _) = epoch(&mut client).await?;
    report.push(if created {
        "set the key epoch to 1".to_owned()
    } else {
        format!("kept the key epoch at {current}")
    });
    Ok(report.join("\n"))
}

async fn rotate(target: &Target) -> anyhow::Result<String> {
    let secret = load_secret(target.root_secret())?;
    let mut client = connect(target).await?;
    let (from, epoch_revision) = epoch(&mut client).await?;
    let to = from.checked_add(1).context("the key epoch is at its maximum")?;
    let old = Arc::new(KeyRing::new(secret.clone(), from));
    let new = Arc::new(KeyRing::new(secret, to));
    let configs = client
        .get(keys::CONFIGS, Some(GetOptions::new().with_prefix()))
        .await
        .context("reading the stored configs")?;
    // Every re-sealed config and the epoch change together, and only if none of them changed
    // since it was read.
    let mut compares = vec![Compare::mod_revision(keys::EPOCH, CompareOp::Equal, epoch_revision)];
    let mut puts = vec![TxnOp::put(keys::EPOCH, to.to_string(), None)];
    let mut unreadable = Vec::new();
    for kv in configs.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        match sealed::unseal(&old, kv.value()) {
            Ok(text) => {
                compares.push(Compare::mod_revision(kv.key(), CompareOp::Equal, kv.mod_revision()));
                puts.push(TxnOp::put(kv.key(), sealed::seal(&new, &text)?, None));
            }
            Err(e) => unreadable.push(format!("{key}: {e}")),
        }
    }
    let resealed = puts.len() - 1;
    let done = client
        .txn(Txn::new().when(compares).and_then(puts))
        .await
        .context("writing the new epoch and the re-sealed configs")?
        .succeeded();
    if !done {
        bail!("the epoch or a config changed while rotating; nothing was written, run it again");
    }
    let mut report = vec![format!("key epoch {from} -> {to}; re-sealed {resealed} stored configs")];
    report.extend(unreadable.iter().map(|u| format!("left unreadable config as it was: {u}")));
    Ok(report.join("\n"))
}

async fn config_get(target: &Target, component: &str, master: bool) -> anyhow::Result<String> {
    let (mut client, ring, _) = keyed(target).await?;
    Ok(admin::read_config(&mut client, &ring, component, master).await?.text)
}

async fn config_put(target: &Target, component: &str, file: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    admin::check_config(component, &text, file)?;
    let (mut client, ring, current) = keyed(target).await?;
    // Over an active config, only what the daemon applies while running may change; the
    // write happens only if `active` is still what was compared (or still absent).
    let expect = match admin::read_active(&mut client, &ring, component).await? {
        Some(active) => {
            admin::refuse_restart_only_text(component, &active, &text, file)?;
            active.mod_revision
        }
        None => 0,
    };
    let revision =
        admin::write_active(&mut client, &ring, component, &text, file, Some(expect)).await?;
    Ok(format!("{} set at revision {revision} (epoch {current})", keys::active(component)))
}
