//! `rag status`, `rag config get|set|diff|rollback` and `rag accelerate|decelerate`: the
//! deployment through etcd (DESIGN §4.4), with the same `--endpoint` and `--root-secret` as
//! `etcd-server`'s admin commands. Every config written is validated first and written only
//! if `active` did not change since it was read.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use etcd_client::{Client, GetOptions, SortOrder, SortTarget};
use mld_control::admin::{self, Target};
use mld_control::{fields, keys};
use mld_crypto_transport::KeyRing;
use serde_json::Value;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print a daemon's active config (or its master).
    Get {
        /// sniffer, ml-detector, firewall-agent, rag-ingester or rag.
        component: String,
        #[arg(long)]
        master: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Change fields of a daemon's active config (`verdict.malicious_score=0.85`; values are
    /// JSON, or text when not JSON), or replace it with `--file`. Validated before it is
    /// written; prints what changed. Daemons apply it without a restart; a change to a field
    /// a daemon reads only at start (endpoints, paths, ...) is refused, naming the field:
    /// change it in the daemon's config file and restart the daemon.
    Set {
        component: String,
        /// FIELD=VALUE, dotted paths into the JSON.
        #[arg(value_name = "FIELD=VALUE")]
        changes: Vec<String>,
        /// A whole config file instead of field changes.
        #[arg(long, conflicts_with = "changes")]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// The fields where the active config differs from the master.
    Diff {
        component: String,
        #[command(flatten)]
        target: Target,
    },
    /// Make the master config active again (always allowed: the master is what the daemon
    /// started with).
    Rollback {
        component: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// How much each of ml-detector's verdict thresholds moves.
    #[arg(long, default_value_t = 0.05)]
    pub step: f64,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

/// `accelerate` lowers ml-detector's verdict thresholds by `step` (more flows are judged
/// suspicious or malicious: the firewall blocks earlier, with more false positives);
/// `decelerate` raises them. Bounds: suspicious 0.20–0.90, malicious 0.50–0.99, suspicious
/// always below malicious.
pub const SUSPICIOUS_BOUNDS: (f64, f64) = (0.20, 0.90);
pub const MALICIOUS_BOUNDS: (f64, f64) = (0.50, 0.99);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn keyed(target: &Target) -> anyhow::Result<(Client, Arc<KeyRing>)> {
    let (client, ring, _) = admin::keyed(target).await?;
    Ok((client, ring))
}

/// `path: old -> new` for every field that differs (a field `null` on one side and absent on
/// the other is unchanged).
pub fn diff(old: &Value, new: &Value) -> Vec<String> {
    fields::changes(old, new).iter().map(ToString::to_string).collect()
}

/// `Err` when `path` names no field of a config whose every field `known` holds (its
/// canonical form): the error names the path, the value and the fields at that level. A path
/// through an unset optional section (`null`) is left to the config's own check.
pub fn check_path(known: &Value, path: &str, value: &Value) -> anyhow::Result<()> {
    let mut node = known;
    let mut walked: Vec<&str> = Vec::new();
    for part in path.split('.') {
        let Value::Object(m) = node else { return Ok(()) };
        let Some(next) = m.get(part) else {
            let mut names: Vec<&str> = m.keys().map(String::as_str).collect();
            names.sort_unstable();
            let level = if walked.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("of {}", walked.join("."))
            };
            bail!(
                "no field `{path}` (given {value}); the fields {level} are: {}",
                names.join(", ")
            );
        };
        walked.push(part);
        node = next;
    }
    Ok(())
}

/// Sets `path` (dotted) in `v` to `value`, creating objects on the way.
pub fn set_path(v: &mut Value, path: &str, value: Value) -> anyhow::Result<()> {
    let mut cur = v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        anyhow::ensure!(!p.is_empty(), "{path:?}: empty field name");
        let Value::Object(m) = cur else {
            bail!("{path:?}: {} is not an object", parts[..i].join("."));
        };
        if i == parts.len() - 1 {
            m.insert((*p).to_owned(), value);
            return Ok(());
        }
        cur = m.entry((*p).to_owned()).or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    Ok(())
}

fn parse_json(text: &str, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{what} is not JSON"))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

async fn config(c: ConfigCommand) -> anyhow::Result<String> {
    match c {
        ConfigCommand::Get { component, master, target } => {
            let (mut client, ring) = keyed(&target).await?;
            let s = admin::read_config(&mut client, &ring, &component, master).await?;
            Ok(pretty(&parse_json(&s.text, &s.key)?))
        }
        ConfigCommand::Set { component, changes, file, target } => {
            admin::component(&component)?;
            let (mut client, ring) = keyed(&target).await?;
            let cur = admin::read_config(&mut client, &ring, &component, false).await?;
            let old = parse_json(&cur.text, &cur.key)?;
            let (new, origin) = if let Some(f) = &file {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                // Errors in the user's file name its lines.
                admin::check_config(&component, &text, f)?;
                (parse_json(&text, &f.display().to_string())?, f.clone())
            } else {
                anyhow::ensure!(!changes.is_empty(), "give FIELD=VALUE changes or --file");
                let origin: std::path::PathBuf =
                    format!("{} with {}", cur.key, changes.join(", ")).into();
                // Every field the config has, defaults included.
                let known = admin::check_value(&component, &old, Path::new(&cur.key))
                    .unwrap_or_else(|_| old.clone());
                let mut new = old.clone();
                for ch in &changes {
                    let (path, raw) =
                        ch.split_once('=').with_context(|| format!("{ch:?} is not FIELD=VALUE"))?;
                    let value =
                        serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
                    let path = path.trim();
                    check_path(&known, path, &value).with_context(|| component.clone())?;
                    set_path(&mut new, path, value)?;
                }
                // The edited JSON is checked as JSON: errors name the field, not a line of
                // text the user never saw.
                admin::check_value(&component, &new, &origin)?;
                (new, origin)
            };
            admin::refuse_restart_only(&component, &old, &new, &origin)?;
            write(&mut client, &ring, &component, &old, &new, &origin, cur.mod_revision).await
        }
        ConfigCommand::Diff { component, target } => {
            let (mut client, ring) = keyed(&target).await?;
            let master = admin::read_config(&mut client, &ring, &component, true).await?;
            let active = admin::read_config(&mut client, &ring, &component, false).await?;
            let d = diff(
                &parse_json(&master.text, &master.key)?,
                &parse_json(&active.text, &active.key)?,
            );
            Ok(if d.is_empty() {
                format!("{component}: the active config is the master config")
            } else {
                format!("{component}: master -> active\n{}", d.join("\n"))
            })
        }
        ConfigCommand::Rollback { component, target } => {
            let (mut client, ring) = keyed(&target).await?;
            let master = admin::read_config(&mut client, &ring, &component, true).await?;
            let active = admin::read_config(&mut client, &ring, &component, false).await?;
            let (old, new) =
                (parse_json(&active.text, &active.key)?, parse_json(&master.text, &master.key)?);
            write(
                &mut client,
                &ring,
                &component,
                &old,
                &new,
                Path::new(&master.key),
                active.mod_revision,
            )
            .await
        }
    }
}

async fn write(
    client: &mut Client,
    ring: &Arc<KeyRing>,
    component: &str,
    old: &Value,
    new: &Value,
    origin: &Path,
    revision: i64,
) -> anyhow::Result<String> {
    let changed = diff(old, new);
    if changed.is_empty() {
        return Ok(format!("{component}: no change; nothing written"));
    }
    let rev =
        admin::write_active(client, ring, component, &pretty(new), origin, Some(revision)).await?;
    Ok(format!("{} set at revision {rev}:\n{}", keys::active(component), changed.join("\n")))
}

/// The thresholds after one accelerate (`sign` -1) or decelerate (+1) step.
pub fn tuned(suspicious: f64, malicious: f64, step: f64, sign: f64) -> anyhow::Result<(f64, f64)> {
    anyhow::ensure!(step > 0.0 && step <= 0.3, "--step {step}: between 0 (exclusive) and 0.3");
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let s = round((suspicious + sign * step).clamp(SUSPICIOUS_BOUNDS.0, SUSPICIOUS_BOUNDS.1));
    let m = round((malicious + sign * step).clamp(MALICIOUS_BOUNDS.0, MALICIOUS_BOUNDS.1));
    anyhow::ensure!(
        (s, m) != (round(suspicious), round(malicious)),
        "the thresholds are at their {} already (suspicious {suspicious}, malicious {malicious})",
        if sign < 0.0 { "minimum" } else { "maximum" }
    );
    anyhow::ensure!(s < m, "suspicious {s} would not be below malicious {m}");
    Ok((s, m))
}

async fn tune(a: &TuneArgs, sign: f64) -> anyhow::Result<String> {
    let component = "ml-detector";
    let (mut client, ring) = keyed(&a.target).await?;
    let cur = admin::read_config(&mut client, &ring, component, false).await?;
    let old = parse_json(&cur.text, &cur.key)?;
    let number = |k: &str, default: f64| old["verdict"][k].as_f64().unwrap_or(default);
    let (s, m) =
        tuned(number("suspicious_score", 0.5), number("malicious_score", 0.8), a.step, sign)?;
    let mut new = old.clone();
    set_path(&mut new, "verdict.suspicious_score", s.into())?;
    set_path(&mut new, "verdict.malicious_score", m.into())?;
    let origin = format!("{} ({})", cur.key, if sign < 0.0 { "accelerate" } else { "decelerate" });
    admin::refuse_restart_only(component, &old, &new, Path::new(&origin))?;
    write(&mut client, &ring, component, &old, &new, Path::new(&origin), cur.mod_revision).await
}

#[allow(clippy::too_many_lines, reason = "one report, section after section")]
async fn status(a: &StatusArgs, store: &Path) -> anyhow::Result<String> {
    let mut report = serde_json::Map::new();
    let mut text = Vec::new();
    // The store and its indices need no etcd.
    match mld_eventstore::Store::open_read_only(store) {
        Ok(s) => {
            let count = s.count()?;
            let last = s.query(&mld_eventstore::Filter::default(), 5)?;
            text.push(format!("event store {}: {count} events", store.display()));
            for e in &last {
                text.push(format!("  #{} {}", e.id, e.description));
            }
            let dir = mld_vindex::dir_for(store);
            for kind in ["features", "text"] {
                let meta = std::fs::read_to_string(dir.join(format!("{kind}.json")))
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok());
                let line = meta.as_ref().map_or_else(
                    || format!("  {kind} index: not saved yet (rag-ingester builds it)"),
                    |m| {
                        format!(
                            "  {kind} index: {} vectors up to id {} ({})",
                            m["count"],
                            m["max_id"],
                            m["factory"].as_str().unwrap_or("")
                        )
                    },
                );
                text.push(line);
                report.insert(format!("{kind}_index"), meta.unwrap_or(Value::Null));
            }
            report.insert("events".into(), count.into());
            report.insert(
                "last_events".into(),
                last.iter()
                    .map(|e| serde_json::json!({"id": e.id, "description": e.description}))
                    .collect(),
            );
        }
        Err(e) => {
            text.push(format!("event store: {e}"));
            report.insert("store_error".into(), e.to_string().into());
        }
    }
    let mut client = admin::connect(&a.target).await?;
    let comps = client
        .get(keys::COMPONENTS, Some(GetOptions::new().with_prefix()))
        .await
        .context("reading components/")?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let mut list = Vec::new();
    text.push(format!(
        "{} component(s) registered in etcd {}:",
        comps.kvs().len(),
        a.target.endpoints().join(", ")
    ));
    for kv in comps.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let mut v: Value = serde_json::from_slice(kv.value()).unwrap_or(Value::Null);
        let ttl = if kv.lease() == 0 {
            None
        } else {
            client.lease_time_to_live(kv.lease(), None).await.ok().map(|r| r.ttl())
        };
        let up_ms = v["started_unix_ms"].as_u64().map(|t| now_ms.saturating_sub(u128::from(t)));
        text.push(format!(
            "  {} pid {} on {} v{}, config revision {}, key epoch {}, up {}, lease {}",
            key.trim_start_matches(keys::COMPONENTS),
            v["pid"],
            v["host"].as_str().unwrap_or("?"),
            v["version"].as_str().unwrap_or("?"),
            v["config_revision"],
            v["key_epoch"],
            up_ms.map_or("?".into(), |u| format!("{} s", u / 1000)),
            ttl.map_or("none".into(), |t| format!("{t} s left (heartbeats renew it)")),
        ));
        if let Value::Object(m) = &mut v {
            m.insert("key".into(), key.into());
            m.insert("lease_ttl_left_secs".into(), ttl.into());
        }
        list.push(v);
    }
    report.insert("components".into(), Value::Array(list));
    let alerts = client
        .get(
            keys::ALERTS,
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend)
                    .with_limit(5),
            ),
        )
        .await
        .context("reading alerts/")?;
    let alerts: Vec<Value> =
        alerts.kvs().iter().filter_map(|kv| serde_json::from_slice(kv.value()).ok()).collect();
    text.push(format!("last {} alert(s):", alerts.len()));
    for al in &alerts {
        text.push(format!(
            "  {} {}: {} ({})",
            al["component"].as_str().unwrap_or("?"),
            al["kind"].as_str().unwrap_or("?"),
            al["error"].as_str().unwrap_or(""),
            al["action"].as_str().unwrap_or("")
        ));
    }
    report.insert("alerts".into(), Value::Array(alerts));
    Ok(if a.json { Value::Object(report).to_string() } else { text.join("\n") })
}

/// What the admin commands are.
#[derive(Debug)]
pub enum Admin {
    Config(ConfigCommand),
    Accelerate(TuneArgs),
    Decelerate(TuneArgs),
    Status(StatusArgs),
}

impl Admin {
    fn target(&mut self) -> &mut Target {
        match self {
            Self::Config(
                ConfigCommand::Get { target, .. }
                | ConfigCommand::Set { target, .. }
                | ConfigCommand::Diff { target, .. }
                | ConfigCommand::Rollback { target, .. },
            ) => target,
            Self::Accelerate(a) | Self::Decelerate(a) => &mut a.target,
            Self::Status(a) => &mut a.target,
        }
    }
}

/// Runs one admin command: its report on stdout, failures on stderr (exit 1). etcd and the
/// root secret are those of the flags, else of the `rag` config (`etcd`, `root_secret_file`).
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "the command's output")]
pub fn run(mut c: Admin, rag: &mld_config::daemons::rag::Rag) -> mld_daemon::ExitCode {
    let store = rag.store_path.as_path();
    let target = c.target();
    *target = target.clone().or_config(&rag.etcd, &rag.root_secret_file);
    let outcome = runtime().and_then(|rt| {
        rt.block_on(async {
            match c {
                Admin::Config(c) => Box::pin(config(c)).await,
                Admin::Accelerate(a) => tune(&a, -1.0).await,
                Admin::Decelerate(a) => tune(&a, 1.0).await,
                Admin::Status(a) => status(&a, store).await,
            }
        })
    });
    match outcome {
        Ok(report) => {
            println!("{report}");
            mld_daemon::ExitCode::Success
        }
        Err(e) => {
            eprintln!("rag: {e:#}");
            mld_daemon::ExitCode::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn diffs_list_changed_fields() {
        let a = json!({"verdict": {"suspicious_score": 0.5, "malicious_score": 0.8}, "x": [1]});
        let b = json!({"verdict": {"suspicious_score": 0.45, "malicious_score": 0.8}, "y": true, "x": [1]});
        assert_eq!(diff(&a, &b), ["verdict.suspicious_score: 0.5 -> 0.45", "y: (unset) -> true"]);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn set_path_creates_and_refuses_non_objects() {
        let mut v = json!({"a": {"b": 1}, "n": 3});
        set_path(&mut v, "a.c.d", json!("x")).unwrap();
        assert_eq!(v, json!({"a": {"b": 1, "c": {"d": "x"}}, "n": 3}));
        assert!(
            set_path(&mut v, "n.m", json!(1))
                .unwrap_err()
                .to_string()
                .contains("n is not an object")
        );
        assert!(set_path(&mut v, "a..b", json!(1)).is_err());
    }

    #[test]
    fn thresholds_move_within_bounds() {
        assert_eq!(tuned(0.5, 0.8, 0.05, -1.0).unwrap(), (0.45, 0.75));
        assert_eq!(tuned(0.5, 0.8, 0.05, 1.0).unwrap(), (0.55, 0.85));
        assert_eq!(tuned(0.22, 0.52, 0.05, -1.0).unwrap(), (0.2, 0.5));
        assert!(tuned(0.2, 0.5, 0.05, -1.0).unwrap_err().to_string().contains("minimum"));
        assert!(tuned(0.9, 0.99, 0.05, 1.0).unwrap_err().to_string().contains("maximum"));
        assert!(tuned(0.5, 0.8, 0.0, 1.0).is_err());
        // Suspicious pushed to its ceiling cannot pass malicious.
        assert!(tuned(0.88, 0.9, 0.1, 1.0).is_ok());
    }
}
