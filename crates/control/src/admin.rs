//! What operators' commands share (`etcd-server init|keys|config`, `rag config|status|
//! accelerate|decelerate`): reaching etcd, the root secret and key epoch, and daemons'
//! sealed configs, read and written through the etcd v3 API so that they work the same
//! against etcd-server and a real etcd cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use mld_crypto_transport::{KeyRing, RootSecret};

use crate::{keys, sealed};

/// Where the commands find etcd and the root secret.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// etcd endpoint (etcd-server or a member of an etcd cluster).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:2379", global = true)]
    pub endpoint: String,
    /// The deployment's root secret (64 hex characters, mode 0600).
    #[arg(long, value_name = "FILE", default_value = "/etc/mldefender/root.secret", global = true)]
    pub root_secret: PathBuf,
    /// PEM CA of the etcd server's certificate, for an `https://` endpoint.
    #[arg(long, value_name = "FILE", global = true)]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate, for an etcd that requires one (with --key).
    #[arg(long, value_name = "FILE", global = true, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", global = true, requires = "cert")]
    pub key: Option<PathBuf>,
}

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
    let mut client = Client::connect([&target.endpoint], Some(options))
        .await
        .with_context(|| format!("connecting to etcd at {} (--endpoint)", target.endpoint))?;
    client
        .status()
        .await
        .with_context(|| format!("etcd at {} (--endpoint) does not answer", target.endpoint))?;
    Ok(client)
}

pub fn load_secret(path: &Path) -> anyhow::Result<RootSecret> {
    RootSecret::load(path).with_context(|| {
        format!(
            "loading the root secret {} (--root-secret; written by `etcd-server init`)",
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
    let secret = load_secret(&target.root_secret)?;
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

/// Checks `text` as `component`'s config (`origin` names it in errors).
pub fn check_config(component: &str, text: &str, origin: &Path) -> anyhow::Result<()> {
    let checker = mld_config::Component::named(component).with_context(|| {
        let known: Vec<_> = mld_config::COMPONENTS.iter().map(|c| c.name).collect();
        format!("unknown component {component:?}; one of {}", known.join(", "))
    })?;
    (checker.check)(text, origin)?;
    Ok(())
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
