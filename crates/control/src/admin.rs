//! What operators' commands share (`etcd-server init|keys|config`, `rag config|status|
//! accelerate|decelerate`): reaching etcd, the root secret and key epoch, and daemons'
//! sealed configs, read and written through the etcd v3 API so that they work the same
//! against etcd-server and a real etcd cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use mld_crypto_transport::{KeyRing, RootSecret};
use serde_json::Value;

use crate::{fields, keys, sealed};

/// Where the commands find etcd and the root secret: the flags, else what the program's
/// config names ([`Target::or_config`]), else the defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// etcd endpoint (etcd-server or a member of an etcd cluster); default: the config's
    /// `etcd.endpoints`, else [`DEFAULT_ENDPOINT`].
    #[arg(
        long,
        value_name = "URL",
        global = true,
        help = "etcd endpoint (etcd-server or a member of an etcd cluster) [default: \
                http://127.0.0.1:2379; for rag, etcd.endpoints of its config when set]"
    )]
    pub endpoint: Option<String>,
    /// The deployment's root secret (64 hex characters, mode 0600); default: the config's
    /// `root_secret_file`, else [`DEFAULT_ROOT_SECRET`].
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help = "The deployment's root secret (64 hex characters, mode 0600) [default: \
                /etc/mldefender/root.secret; for rag, root_secret_file of its config]"
    )]
    pub root_secret: Option<PathBuf>,
    /// PEM CA of the etcd server's certificate, for an `https://` endpoint.
    #[arg(long, value_name = "FILE", global = true)]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate, for an etcd that requires one (with --key).
    #[arg(long, value_name = "FILE", global = true, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", global = true, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Endpoints tried in turn when --endpoint is not given (from a config file).
    #[arg(skip)]
    pub config_endpoints: Vec<String>,
}

/// The endpoint used when neither the flag nor a config names one.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";
/// The root secret used when neither the flag nor a config names one.
pub const DEFAULT_ROOT_SECRET: &str = "/etc/mldefender/root.secret";

impl Target {
    /// Takes what the flags left unset from a config file: its `etcd` section (endpoints,
    /// TLS) and its root secret file.
    #[must_use]
    pub fn or_config(mut self, etcd: &mld_config::common::ValidEtcd, root_secret: &Path) -> Self {
        if self.endpoint.is_none() {
            self.config_endpoints.clone_from(&etcd.endpoints);
        }
        if self.root_secret.is_none() {
            self.root_secret = Some(root_secret.to_owned());
        }
        if self.cacert.is_none()
            && let Some(tls) = &etcd.tls
        {
            self.cacert = Some(tls.ca_file.clone());
            if self.cert.is_none() {
                self.cert.clone_from(&tls.cert_file);
                self.key.clone_from(&tls.key_file);
            }
        }
        self
    }

    /// The endpoints to try, in order: --endpoint, the config's, or the default.
    pub fn endpoints(&self) -> Vec<String> {
        match &self.endpoint {
            Some(e) => vec![e.clone()],
            None if !self.config_endpoints.is_empty() => self.config_endpoints.clone(),
            None => vec![DEFAULT_ENDPOINT.to_owned()],
        }
    }

    /// The root secret file: --root-secret, the config's, or the default.
    pub fn root_secret(&self) -> &Path {
        self.root_secret.as_deref().unwrap_or(Path::new(DEFAULT_ROOT_SECRET))
    }
}

/// A client of the first endpoint of `target` that answers.
pub async fn connect(target: &Target) -> anyhow::Result<Client> {
    let mut options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(std::time::Duration::from_secs(3))
        .with_timeout(std::time::Duration::from_secs(10));
    if let Some(ca_file) = &target.cacert {
        let tls = mld_config::common::EtcdTlsConfig {
            ca_file: ca_file.clone(),
            cert_file: target.cert.clone(),
            key_file: target.key.clone(),
        };
        options = options.with_tls(crate::tls_options(&tls).map_err(anyhow::Error::msg)?);
    }
    let from = if target.endpoint.is_none() && !target.config_endpoints.is_empty() {
        "etcd.endpoints of the config; --endpoint overrides it"
    } else {
        "--endpoint"
    };
    let mut failures = Vec::new();
    for endpoint in target.endpoints() {
        let answered = async {
            let mut client = Client::connect([&endpoint], Some(options.clone()))
                .await
                .with_context(|| format!("connecting to etcd at {endpoint} ({from})"))?;
            client
                .status()
                .await
                .with_context(|| format!("etcd at {endpoint} ({from}) does not answer"))?;
            anyhow::Ok(client)
        };
        match answered.await {
            Ok(client) => return Ok(client),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    bail!("{}", failures.join("; "))
}

pub fn load_secret(path: &Path) -> anyhow::Result<RootSecret> {
    RootSecret::load(path).with_context(|| {
        format!(
            "loading the root secret {} (--root-secret or the config's root_secret_file; \
             written by `etcd-server init`)",
            path.display()
        )
    })
}

/// The epoch in etcd (1 when unset) and the key's mod revision (0 when unset).
pub async fn epoch(client: &mut Client) -> anyhow::Result<(u32, i64)> {
    let resp = client.get(keys::EPOCH, None).await.context("reading keys/epoch")?;
    match resp.kvs().first() {
        None => Ok((1, 0)),
        Some(kv) => {
            let text = String::from_utf8_lossy(kv.value());
            let epoch = text
                .trim()
                .parse::<u32>()
                .with_context(|| format!("{} holds {text:?}, not an epoch number", keys::EPOCH))?;
            Ok((epoch, kv.mod_revision()))
        }
    }
}

/// A client, and the key ring at the deployment's current epoch (the epoch too).
pub async fn keyed(target: &Target) -> anyhow::Result<(Client, Arc<KeyRing>, u32)> {
    let secret = load_secret(target.root_secret())?;
    let mut client = connect(target).await?;
    let (current, _) = epoch(&mut client).await?;
    Ok((client, Arc::new(KeyRing::new(secret, current)), current))
}

/// A daemon's stored config: its text and the key's mod revision (for compare-and-swap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub text: String,
    pub mod_revision: i64,
}

/// Reads and opens `component`'s active config; `None` when there is none.
pub async fn read_active(
    client: &mut Client,
    ring: &Arc<KeyRing>,
    component: &str,
) -> anyhow::Result<Option<Stored>> {
    let key = keys::active(component);
    let resp = client.get(key.as_str(), None).await.with_context(|| format!("reading {key}"))?;
    let Some(kv) = resp.kvs().first() else { return Ok(None) };
    let text = sealed::unseal(ring, kv.value()).with_context(|| format!("opening {key}"))?;
    Ok(Some(Stored { key, text, mod_revision: kv.mod_revision() }))
}

/// Reads and opens `component`'s active (or master) config.
pub async fn read_config(
    client: &mut Client,
    ring: &Arc<KeyRing>,
    component: &str,
    master: bool,
) -> anyhow::Result<Stored> {
    let key = if master { keys::master(component) } else { keys::active(component) };
    let resp = client.get(key.as_str(), None).await.with_context(|| format!("reading {key}"))?;
    let kv = resp.kvs().first().with_context(|| format!("{key} is not set"))?;
    let text = sealed::unseal(ring, kv.value()).with_context(|| format!("opening {key}"))?;
    Ok(Stored { key, text, mod_revision: kv.mod_revision() })
}

/// The config type of `component`, or an error listing the known ones.
pub fn component(name: &str) -> anyhow::Result<mld_config::Component> {
    mld_config::Component::named(name).with_context(|| {
        let known: Vec<_> = mld_config::COMPONENTS.iter().map(|c| c.name).collect();
        format!("unknown component {name:?}; one of {}", known.join(", "))
    })
}

/// Checks `text` as `component`'s config (`origin` names it in errors).
pub fn check_config(component: &str, text: &str, origin: &Path) -> anyhow::Result<()> {
    (self::component(component)?.check)(text, origin)?;
    Ok(())
}

/// Checks `value` (a config edited as JSON) as `component`'s config and returns its canonical
/// form; errors name the field path, never a line of the generated text.
pub fn check_value(component: &str, value: &Value, origin: &Path) -> anyhow::Result<Value> {
    Ok((self::component(component)?.canonical)(value, origin)?)
}

/// Refuses to replace `component`'s active config `old` with `new` when that changes a field
/// the daemon applies only at restart: its control plane would refuse the config and roll it
/// back. The error names each such field with both values as JSON, and the fix. An `old` that
/// is not a valid config is not compared.
pub fn refuse_restart_only(
    component: &str,
    old: &Value,
    new: &Value,
    origin: &Path,
) -> anyhow::Result<()> {
    let checker = self::component(component)?;
    let Ok(old) = (checker.canonical)(old, Path::new("the active config")) else {
        return Ok(());
    };
    let new = (checker.canonical)(new, origin)?;
    let refused = fields::restart_only_changes(&old, &new, checker.live_fields);
    if refused.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = refused.iter().map(|c| format!("  {c}")).collect();
    bail!(
        "{component} applies {} only at restart; the running daemon would refuse this config \
         and roll it back, so nothing was written:\n{}\nchange {} in the daemon's config file \
         and restart it (fields it applies while running: {})",
        if refused.len() == 1 { "this field" } else { "these fields" },
        list.join("\n"),
        if refused.len() == 1 { "it" } else { "them" },
        if checker.live_fields.is_empty() {
            "none".to_owned()
        } else {
            checker.live_fields.join(", ")
        },
    )
}

/// As [`refuse_restart_only`], for the text of a config file replacing the stored `active`.
pub fn refuse_restart_only_text(
    component: &str,
    active: &Stored,
    text: &str,
    origin: &Path,
) -> anyhow::Result<()> {
    let old: Value = serde_json::from_str(&active.text)
        .with_context(|| format!("{} is not JSON", active.key))?;
    let new: Value =
        serde_json::from_str(text).with_context(|| format!("{} is not JSON", origin.display()))?;
    refuse_restart_only(component, &old, &new, origin)
}

/// Validates `text` and makes it `component`'s active config; with `expect_revision`, only
/// if `active` is still at that mod revision (0: only if it does not exist). Returns the
/// revision written.
pub async fn write_active(
    client: &mut Client,
    ring: &Arc<KeyRing>,
    component: &str,
    text: &str,
    origin: &Path,
    expect_revision: Option<i64>,
) -> anyhow::Result<i64> {
    check_config(component, text, origin)?;
    let key = keys::active(component);
    let put = TxnOp::put(key.as_str(), sealed::seal(ring, text)?, None);
    let mut txn = Txn::new();
    if let Some(rev) = expect_revision {
        txn = txn.when([Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)]);
    }
    let resp = client.txn(txn.and_then([put])).await.with_context(|| format!("writing {key}"))?;
    anyhow::ensure!(
        resp.succeeded(),
        "{key} changed since it was read; nothing was written, run the command again"
    );
    Ok(resp.header().map_or(0, etcd_client::ResponseHeader::revision))
}
