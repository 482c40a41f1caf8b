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
    let o = d.rag(&["config", "set", "ml-detector", "event_log.retain_files=30"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("event_log.retain_files: 14 -> 30"), "{}", text(&o));
    assert_eq!(active(&d)["event_log"]["retain_files"], 30);
    let o = d.rag(&["config", "diff", "ml-detector"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().nth(1),
        Some("event_log.retain_files: 14 -> 30")
    );

    // Invalid values and unknown fields are refused, naming them; nothing is written.
    for (change, says) in [
        ("verdict.malicious_score=1.5", "verdict.malicious_score"),
        ("no_such_field=1", "no_such_field"),
    ] {
        let o = d.rag(&["config", "set", "ml-detector", change]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(says), "{change}: {}", text(&o));
    }
    assert_eq!(active(&d)["event_log"]["retain_files"], 30);

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

    // Without a master, diff says so; an unknown component is named.
    let o = d.rag(&["config", "diff", "firewall-agent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("config/firewall-agent/master is not set"), "{}", text(&o));
    let o = d.rag(&["config", "set", "nonesuch", "a=1"]);
    assert_eq!(o.status.code(), Some(1));
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
