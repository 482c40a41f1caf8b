//! `rag config`, `rag accelerate|decelerate` and `rag status` against a real etcd-server
//! (its binary, on a free loopback port), with a real rag-ingester registered.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mld_control::{keys, sealed};
use mld_crypto_transport::{KeyRing, RootSecret};
use serde_json::Value;

/// A sibling binary of the workspace (`cargo test --workspace` builds them all).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let b = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(b.exists(), "{} not built: run the tests with --workspace", b.display());
    b
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

struct Deployment {
    dir: tempfile::TempDir,
    endpoint: String,
    secret: PathBuf,
    _server: Killed,
}

impl Deployment {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = mld_test_utils::free_port();
        let config = dir.path().join("etcd-server.json");
        std::fs::write(
            &config,
            format!(r#"{{ "listen": "127.0.0.1:{port}", "metrics": {{ "listen": null }} }}"#),
        )
        .unwrap();
        let server = Killed(
            Command::new(bin("etcd-server"))
                .args(["run", "--config"])
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        let secret = dir.path().join("root.secret");
        let d = Deployment { dir, endpoint, secret, _server: server };
        mld_test_utils::wait_until(Duration::from_secs(10), "etcd-server init", || {
            d.etcd_server(&["init"]).status.success()
        });
        d
    }

    fn target(&self) -> Vec<String> {
        vec![
            "--endpoint".into(),
            self.endpoint.clone(),
            "--root-secret".into(),
            self.secret.display().to_string(),
        ]
    }

    fn etcd_server(&self, args: &[&str]) -> Output {
        Command::new(bin("etcd-server")).args(args).args(self.target()).output().unwrap()
    }

    fn rag(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rag"))
            .arg("--config")
            .arg(self.dir.path().join("rag.json"))
            .args(args)
            .args(self.target())
            .output()
            .unwrap()
    }

    /// Stores `text` as `component`'s master, sealed, the way a daemon's control plane does.
    fn put_master(&self, component: &str, text: &str) {
        let ring = Arc::new(KeyRing::new(RootSecret::load(&self.secret).unwrap(), 1));
        let sealed = sealed::seal(&ring, text).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut c = etcd_client::Client::connect([&self.endpoint], None).await.unwrap();
            c.put(keys::master(component), sealed, None).await.unwrap();
        });
    }
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn active(d: &Deployment) -> Value {
    let o = d.rag(&["config", "get", "ml-detector"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, checked end to end")]
fn config_set_diff_rollback_and_thresholds() {
    let d = Deployment::start();
    std::fs::write(d.dir.path().join("rag.json"), "{}").unwrap();
    let shipped = repo().join("config/ml-detector.json");
    let master = std::fs::read_to_string(&shipped).unwrap();
    d.put_master("ml-detector", &master);
    let o = d.etcd_server(&["config", "put", "ml-detector", shipped.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = d.rag(&["config", "diff", "ml-detector"]);
    assert!(text(&o).contains("the active config is the master config"), "{}", text(&o));

    // A field change, validated, then visible in get and diff.
    let o = d.rag(&["config", "set", "ml-detector", r#"internal_nets=["10.0.0.0/8"]"#]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(r#"internal_nets: ["10.0.0.0/8","#), "{}", text(&o));
    assert_eq!(active(&d)["internal_nets"], serde_json::json!(["10.0.0.0/8"]));
    let o = d.rag(&["config", "diff", "ml-detector"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).lines().nth(1).is_some_and(|l| l
            .starts_with("internal_nets: [")
            && l.ends_with(r#"-> ["10.0.0.0/8"]"#)),
        "{}",
        text(&o)
    );

    // Invalid values and unknown fields are refused, naming the field path and the value (and
    // the fields there are), never a line of JSON the user did not write; nothing is written.
    for (change, says) in [
        ("verdict.malicious_score=1.5", "verdict.malicious_score"),
        (
            "no_such_field=1",
            "no field `no_such_field` (given 1); the fields at the top level are: etcd, event_log, \
             internal_nets, metrics, publish, subscribe, transport, verdict",
        ),
        (
            "verdict.malicius_score=0.9",
            "no field `verdict.malicius_score` (given 0.9); the fields of verdict are: \
             malicious_score, suspicious_score",
        ),
        (
            "verdict.malicious_score=high",
            "`verdict.malicious_score`: invalid type: string \"high\"",
        ),
    ] {
        let o = d.rag(&["config", "set", "ml-detector", change]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(says), "{change}: {}", text(&o));
        assert!(!text(&o).contains("line"), "{change}: {}", text(&o));
    }

    // A field the daemon reads only at start is refused up front (issue #26, fault 7b): the
    // daemon would roll it back with only an alert. The error names the field, both values
    // and the fix; nothing is written.
    let o = d.rag(&[
        "config",
        "set",
        "ml-detector",
        "event_log.retain_files=30",
        "verdict.malicious_score=0.9",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("event_log.retain_files: 14 -> 30"), "{}", text(&o));
    assert!(!text(&o).contains("malicious_score: 0.8"), "only restart-only fields: {}", text(&o));
    assert!(
        text(&o).contains("change it in the daemon's config file and restart it"),
        "{}",
        text(&o)
    );
    let mut file: Value = serde_json::from_str(&master).unwrap();
    file["event_log"]["dir"] = "/tmp/x".into();
    let f = d.dir.path().join("new-ml-detector.json");
    std::fs::write(&f, file.to_string()).unwrap();
    let o = d.rag(&["config", "set", "ml-detector", "--file", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(r#"event_log.dir: "/var/log/mldefender/ml-detector" -> "/tmp/x""#),
        "{}",
        text(&o)
    );
    let o = d.etcd_server(&["config", "put", "ml-detector", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("event_log.dir"), "{}", text(&o));
    assert_eq!(active(&d)["event_log"]["retain_files"], 14);
    assert_eq!(active(&d)["event_log"]["dir"], "/var/log/mldefender/ml-detector");

    // accelerate / decelerate move both thresholds by the step, within bounds.
    let o = d.rag(&["accelerate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        active(&d)["verdict"],
        serde_json::json!({"suspicious_score": 0.45, "malicious_score": 0.75})
    );
    let o = d.rag(&["decelerate", "--step", "0.1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        active(&d)["verdict"],
        serde_json::json!({"suspicious_score": 0.55, "malicious_score": 0.85})
    );
    let o = d.rag(&["accelerate", "--step", "0.5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--step 0.5"), "{}", text(&o));

    // Rollback restores the master.
    let o = d.rag(&["config", "rollback", "ml-detector"]);
    assert!(o.status.success(), "{}", text(&o));
    let want: Value = serde_json::from_str(&master).unwrap();
    assert_eq!(active(&d), want);

    // A whole file: a field null there and absent in etcd is no change (fault 8b).
    let mut file = want.clone();
    file["etcd"]["tls"] = Value::Null;
    file["verdict"]["malicious_score"] = 0.9.into();
    std::fs::write(&f, file.to_string()).unwrap();
    let o = d.rag(&["config", "set", "ml-detector", "--file", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().skip(1).collect::<Vec<_>>(),
        ["verdict.malicious_score: 0.8 -> 0.9"],
        "{}",
        text(&o)
    );

    // Without a master, diff says so; an unknown component is named.
    let o = d.rag(&["config", "diff", "firewall-agent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("config/firewall-agent/master is not set"), "{}", text(&o));
    let o = d.rag(&["config", "set", "nonesuch", "a=1"]);
    assert_eq!(o.status.code(), Some(1));
}

/// With no --endpoint and --root-secret, the rag config's `etcd.endpoints` and
/// `root_secret_file` say where etcd and the secret are (issue #26, fault 8c); flags override.
#[test]
fn admin_commands_take_etcd_and_the_secret_from_the_rag_config() {
    let d = Deployment::start();
    let shipped = repo().join("config/ml-detector.json");
    let o = d.etcd_server(&["config", "put", "ml-detector", shipped.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let config = d.dir.path().join("rag.json");
    std::fs::write(
        &config,
        serde_json::json!({"etcd": {"endpoints": [d.endpoint]}, "root_secret_file": d.secret})
            .to_string(),
    )
    .unwrap();
    let bare = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rag"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let o = bare(&["config", "get", "ml-detector"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("malicious_score"), "{}", text(&o));
    // A flag still wins.
    let o = bare(&["config", "get", "ml-detector", "--root-secret", "/nonexistent/root.secret"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/root.secret"), "{}", text(&o));
}

#[test]
fn status_shows_registered_components_and_the_store() {
    let d = Deployment::start();
    let store = d.dir.path().join("rag/events.db");
    // rag-ingester, registered with the deployment's etcd and key.
    let ingester_config = d.dir.path().join("rag-ingester.json");
    std::fs::write(
        &ingester_config,
        serde_json::json!({
            "store_path": store,
            "subscribe": {"connect": [format!("tcp://127.0.0.1:{}", mld_test_utils::free_port())]},
            "metrics": {"listen": null},
            "etcd": {"endpoints": [d.endpoint], "lease_ttl_secs": 5,
                     "cache_file": d.dir.path().join("ingester-active.json")},
            "transport": {"root_secret_file": d.secret},
        })
        .to_string(),
    )
    .unwrap();
    let _ingester = Killed(
        Command::new(bin("rag-ingester"))
            .args(["run", "--config"])
            .arg(&ingester_config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::fs::write(
        d.dir.path().join("rag.json"),
        serde_json::json!({"store_path": store}).to_string(),
    )
    .unwrap();
    let mut report = Value::Null;
    mld_test_utils::wait_until(Duration::from_secs(30), "rag-ingester in rag status", || {
        let o = d.rag(&["status", "--json"]);
        if !o.status.success() {
            return false;
        }
        report = serde_json::from_slice(&o.stdout).unwrap();
        report["components"].as_array().is_some_and(|c| !c.is_empty())
    });
    let c = &report["components"][0];
    assert_eq!(c["component"], "rag-ingester");
    assert!(c["lease_ttl_left_secs"].as_i64().unwrap() > 0, "{c}");
    assert_eq!(report["events"], 0);
    let o = d.rag(&["status"]);
    assert!(text(&o).contains("1 component(s) registered"), "{}", text(&o));
    assert!(text(&o).contains("event store"), "{}", text(&o));
}
