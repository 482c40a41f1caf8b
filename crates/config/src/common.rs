//! Sections shared by several daemon configs, and their validated forms.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Validator;

/// Prometheus `/metrics` and `/ready` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` to listen on; `null` disables the endpoint.
    pub listen: Option<String>,
}

impl MetricsConfig {
    pub fn on(port: u16) -> Self {
        Self { listen: Some(format!("127.0.0.1:{port}")) }
    }

    pub(crate) fn validate(&self, v: &mut Validator, field: &str) -> Option<ValidMetrics> {
        match &self.listen {
            None => Some(ValidMetrics { listen: None }),
            Some(raw) => v
                .parse::<SocketAddr>(
                    &format!("{field}.listen"),
                    raw,
                    "host:port such as 127.0.0.1:9101",
                )
                .map(|a| ValidMetrics { listen: Some(a) }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidMetrics {
    pub listen: Option<SocketAddr>,
}

/// A `ZeroMQ` endpoint (`tcp://host:port`, `ipc:///path`, `inproc://name`), checked for form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(String);

impl Endpoint {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the form of `raw`; `bind` allows a `*` port (any free port).
    pub fn check(raw: &str, bind: bool) -> Result<Self, String> {
        if let Some(rest) = raw.strip_prefix("tcp://") {
            let (host, port) =
                rest.rsplit_once(':').ok_or_else(|| "tcp endpoint needs host:port".to_owned())?;
            if host.is_empty() {
                return Err("tcp endpoint needs a host".into());
            }
            if !(bind && port == "*") && port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!(
                    "port {port:?} is not 1-65535{}",
                    if bind { " or *" } else { "" }
                ));
            }
            Ok(Self(raw.to_owned()))
        } else if raw.strip_prefix("ipc://").is_some_and(|p| !p.is_empty())
            || raw.strip_prefix("inproc://").is_some_and(|p| !p.is_empty())
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err("expected tcp://host:port, ipc://path or inproc://name".into())
        }
    }

    fn validate(v: &mut Validator, field: &str, raw: &str, bind: bool) -> Option<Self> {
        Self::check(raw, bind).map_err(|msg| v.error(field, format!("{raw:?}"), msg)).ok()
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const MAX_HWM: u32 = 10_000_000;

/// Where a daemon publishes on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Endpoint to bind, e.g. `tcp://127.0.0.1:5571`.
    pub bind: String,
    /// Messages queued per subscriber before new ones are dropped (and counted).
    #[serde(default = "default_hwm")]
    pub send_hwm: u32,
}

/// Where a daemon subscribes on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeConfig {
    /// Publisher endpoints to connect to.
    pub connect: Vec<String>,
    /// Messages queued before the subscriber applies back-pressure to the publisher.
    #[serde(default = "default_hwm")]
    pub recv_hwm: u32,
}

fn default_hwm() -> u32 {
    10_000
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPublish {
    pub bind: Endpoint,
    pub send_hwm: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSubscribe {
    pub connect: Vec<Endpoint>,
    pub recv_hwm: u32,
}

impl PublishConfig {
    pub fn on(port: u16) -> Self {
        Self { bind: format!("tcp://127.0.0.1:{port}"), send_hwm: default_hwm() }
    }

    pub(crate) fn validate(&self, v: &mut Validator, field: &str) -> Option<ValidPublish> {
        let bind = Endpoint::validate(v, &format!("{field}.bind"), &self.bind, true);
        let hwm = v.range(&format!("{field}.send_hwm"), self.send_hwm, 1, MAX_HWM);
        Some(ValidPublish { bind: bind?, send_hwm: hwm? })
    }
}

impl SubscribeConfig {
    pub fn to(port: u16) -> Self {
        Self { connect: vec![format!("tcp://127.0.0.1:{port}")], recv_hwm: default_hwm() }
    }

    pub(crate) fn validate(&self, v: &mut Validator, field: &str) -> Option<ValidSubscribe> {
        v.check(
            !self.connect.is_empty(),
            &format!("{field}.connect"),
            "[]",
            "needs at least one endpoint",
        );
        let connect: Vec<_> = self
            .connect
            .iter()
            .enumerate()
            .map(|(i, raw)| Endpoint::validate(v, &format!("{field}.connect[{i}]"), raw, false))
            .collect();
        let hwm = v.range(&format!("{field}.recv_hwm"), self.recv_hwm, 1, MAX_HWM);
        Some(ValidSubscribe {
            connect: connect.into_iter().collect::<Option<_>>()?,
            recv_hwm: hwm?,
        })
    }
}

/// The etcd cluster a daemon registers with and takes its live config from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// Client endpoints (`http://127.0.0.1:2379`); empty runs standalone from this file.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Lease TTL of the registration; heartbeats are sent at a third of it.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl_secs: u64,
    /// Timeout for connecting to an endpoint.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// TLS to etcd (`https://` endpoints); `null` for plain `http://`.
    #[serde(default)]
    pub tls: Option<EtcdTlsConfig>,
    /// File that keeps the last config taken from etcd (mode 0600, replaced atomically): a
    /// daemon that restarts while etcd is unreachable applies it, so it runs on its last
    /// good config rather than on this file alone. `null`: not kept.
    #[serde(default)]
    pub cache_file: Option<PathBuf>,
}

/// How a daemon authenticates etcd, and itself to etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdTlsConfig {
    /// PEM CA bundle that signed the etcd server's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate, for an etcd that requires one (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_lease_ttl() -> u64 {
    10
}

fn default_connect_timeout() -> u64 {
    2_000
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            lease_ttl_secs: default_lease_ttl(),
            connect_timeout_ms: default_connect_timeout(),
            tls: None,
            cache_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEtcd {
    /// Empty: standalone.
    pub endpoints: Vec<String>,
    pub lease_ttl: Duration,
    pub connect_timeout: Duration,
    pub tls: Option<EtcdTlsConfig>,
    pub cache_file: Option<PathBuf>,
}

impl EtcdConfig {
    pub(crate) fn validate(&self, v: &mut Validator, field: &str) -> Option<ValidEtcd> {
        for (i, e) in self.endpoints.iter().enumerate() {
            let ok = ["http://", "https://"]
                .iter()
                .any(|s| e.strip_prefix(s).is_some_and(|r| r.contains(':')));
            v.check(
                ok,
                &format!("{field}.endpoints[{i}]"),
                format!("{e:?}"),
                "expected http(s)://host:port",
            );
        }
        let tls = self.tls.is_some();
        for (i, e) in self.endpoints.iter().enumerate() {
            v.check(
                e.starts_with("https://") == tls,
                &format!("{field}.endpoints[{i}]"),
                format!("{e:?}"),
                if tls {
                    "must be https:// when etcd.tls is set"
                } else {
                    "https:// needs etcd.tls (at least its ca_file)"
                },
            );
        }
        if let Some(t) = &self.tls {
            v.check(
                t.cert_file.is_some() == t.key_file.is_some(),
                &format!("{field}.tls"),
                {
                    let show = |p: &Option<PathBuf>| {
                        p.as_ref().map_or_else(
                            || "unset".to_owned(),
                            |p| format!("{:?}", p.display().to_string()),
                        )
                    };
                    format!("cert_file {}, key_file {}", show(&t.cert_file), show(&t.key_file))
                },
                "a client certificate needs both cert_file and key_file",
            );
        }
        if let Some(f) = &self.cache_file {
            v.check(
                f.file_name().is_some(),
                &format!("{field}.cache_file"),
                f.display().to_string(),
                "expected a file path",
            );
        }
        let ttl = v.range(&format!("{field}.lease_ttl_secs"), self.lease_ttl_secs, 2, 3600);
        let timeout =
            v.range(&format!("{field}.connect_timeout_ms"), self.connect_timeout_ms, 10, 60_000);
        Some(ValidEtcd {
            endpoints: self.endpoints.clone(),
            lease_ttl: Duration::from_secs(ttl?),
            connect_timeout: Duration::from_millis(timeout?),
            tls: self.tls.clone(),
            cache_file: self.cache_file.clone(),
        })
    }
}

/// Sealed-transport settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    /// Key epoch to use when running standalone; with etcd the epoch comes from
    /// `/mldefender/v1/keys/epoch`.
    #[serde(default = "default_epoch")]
    pub key_epoch: u32,
    /// After a key rotation, how long envelopes of the previous epoch are still accepted.
    #[serde(default = "default_grace")]
    pub epoch_grace_secs: u64,
    /// The root secret (64 hex characters, mode 0600) the channel keys derive from; written by
    /// `etcd-server init`.
    #[serde(default = "default_root_secret")]
    pub root_secret_file: PathBuf,
}

pub(crate) fn default_root_secret() -> PathBuf {
    PathBuf::from("/etc/mldefender/root.secret")
}

fn default_epoch() -> u32 {
    1
}

fn default_grace() -> u64 {
    60
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            key_epoch: default_epoch(),
            epoch_grace_secs: default_grace(),
            root_secret_file: default_root_secret(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTransport {
    pub key_epoch: u32,
    pub epoch_grace: Duration,
    pub root_secret_file: PathBuf,
}

impl TransportConfig {
    pub(crate) fn validate(&self, v: &mut Validator, field: &str) -> Option<ValidTransport> {
        let epoch = v.range(&format!("{field}.key_epoch"), self.key_epoch, 1, u32::MAX);
        let grace = v.range(&format!("{field}.epoch_grace_secs"), self.epoch_grace_secs, 1, 86_400);
        let secret = &self.root_secret_file;
        v.check(
            !secret.as_os_str().is_empty(),
            &format!("{field}.root_secret_file"),
            format!("{:?}", secret.display().to_string()),
            "must name the root secret file",
        );
        Some(ValidTransport {
            key_epoch: epoch?,
            epoch_grace: Duration::from_secs(grace?),
            root_secret_file: secret.clone(),
        })
    }
}

/// Checks an identifier (sensor id, instance name): 1-64 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn check_id(v: &mut Validator, field: &str, value: &str) -> Option<String> {
    let ok = (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    v.check(ok, field, format!("{value:?}"), "must be 1-64 characters of A-Z a-z 0-9 . _ -")
        .then(|| value.to_owned())
}

/// Parses a list of networks in CIDR form (`field[i]` in errors); `None` for each bad entry.
pub fn parse_nets(v: &mut Validator, field: &str, raw: &[String]) -> Vec<Option<ipnet::IpNet>> {
    raw.iter()
        .enumerate()
        .map(|(i, raw)| {
            let field = format!("{field}[{i}]");
            let net: ipnet::IpNet =
                v.parse(&field, raw, "a network in CIDR form such as 192.168.1.0/24")?;
            let exact = net.trunc() == net;
            v.check(
                exact,
                &field,
                format!("{raw:?}"),
                &format!("has host bits set; did you mean {}?", net.trunc()),
            )
            .then_some(net)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let cases = [
            ("tcp://127.0.0.1:5571", false, true),
            ("tcp://127.0.0.1:*", true, true),
            ("tcp://127.0.0.1:*", false, false),
            ("tcp://[::1]:5571", false, true),
            ("tcp://127.0.0.1:0", false, false),
            ("tcp://127.0.0.1:70000", false, false),
            ("tcp://:5571", false, false),
            ("tcp://127.0.0.1", false, false),
            ("ipc:///run/mld/flow.sock", false, true),
            ("inproc://x", false, true),
            ("ipc://", false, false),
            ("udp://127.0.0.1:1", false, false),
            ("", false, false),
        ];
        for (raw, bind, ok) in cases {
            assert_eq!(Endpoint::check(raw, bind).is_ok(), ok, "{raw} bind={bind}");
        }
    }
}
