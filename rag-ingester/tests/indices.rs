//! The vector indices beside the store: built by backfill, brought up to date with only the
//! newer rows, rebuilt from SQLite when missing, damaged or written by a crash between the
//! index and its metadata.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mld_eventstore::fixture::line;
use serde_json::Value;

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let c = serde_json::json!({ "store_path": dir.join("store/events.db"), "metrics": { "listen": null } });
    let cfg = dir.join("rag-ingester.json");
    std::fs::write(&cfg, c.to_string()).unwrap();
    (cfg, dir.join("store/events.db.index"))
}

fn append(log: &Path, from: usize, n: usize, verdict: &str, port: u16) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    for i in from..from + n {
        #[allow(clippy::cast_precision_loss)]
        let t = 1_700_000_000.0 + i as f64;
        writeln!(f, "{}", line(&format!("det-{i}"), verdict, "10.1.2.3", port, t)).unwrap();
    }
}

fn ingester(args: &[&str], cfg: &Path, logs: &[&Path]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_rag-ingester"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .args(logs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn meta(index: &Path, kind: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(index.join(format!("{kind}.json"))).unwrap())
        .unwrap()
}

fn said(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn indices_follow_the_store_and_are_rebuilt_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, index) = setup(dir.path());
    let log = dir.path().join("events.jsonl");
    append(&log, 0, 300, "VERDICT_MALICIOUS", 22);
    let o = ingester(&["backfill"], &cfg, &[&log]);
    assert!(
        said(&o).contains(
            "features index: 300 vectors (IDMap,Flat), rebuilt from the store (none saved)"
        ),
        "{}",
        said(&o)
    );
    assert_eq!(meta(&index, "features")["count"], 300);
    assert_eq!(meta(&index, "features")["max_id"], 300);
    // One summary for 300 alike events, with two facets: SSH and the scan rule.
    assert_eq!(meta(&index, "text")["count"], 2);
    assert_eq!(meta(&index, "text")["max_id"], 1);

    // Newer rows only: another summary (benign, another port) and 50 more vectors.
    append(&log, 300, 50, "VERDICT_BENIGN", 443);
    let o = ingester(&["backfill"], &cfg, &[&log]);
    assert!(
        said(&o).contains("features index: 350 vectors (IDMap,Flat), 50 newer rows added"),
        "{}",
        said(&o)
    );
    assert!(
        said(&o).contains("text index: 4 vectors (IDMap,Flat), 2 newer rows added"),
        "{}",
        said(&o)
    );
    let o = ingester(&["reindex"], &cfg, &[]);
    assert!(
        said(&o).contains("features index: 350 vectors (IDMap,Flat), up to date"),
        "{}",
        said(&o)
    );

    // A damaged index file is rebuilt from the store.
    std::fs::write(index.join("features.faiss"), b"not an index").unwrap();
    let o = ingester(&["reindex"], &cfg, &[]);
    assert!(
        said(&o).contains("features index: 350 vectors (IDMap,Flat), rebuilt from the store ("),
        "{}",
        said(&o)
    );
    assert_eq!(meta(&index, "features")["count"], 350);

    // A crash between writing the index and its metadata: metadata older than the index.
    let mut m = meta(&index, "features");
    m["count"] = 300.into();
    m["max_id"] = 300.into();
    std::fs::write(index.join("features.json"), m.to_string()).unwrap();
    let o = ingester(&["reindex"], &cfg, &[]);
    assert!(
        said(&o).contains("features index: 350 vectors (IDMap,Flat), rebuilt from the store ("),
        "{}",
        said(&o)
    );
    assert_eq!(meta(&index, "features")["count"], 350);

    // --rebuild: both from scratch, same contents.
    let o = ingester(&["reindex", "--rebuild"], &cfg, &[]);
    assert!(
        said(&o)
            .contains("text index: 4 vectors (IDMap,Flat), rebuilt from the store (none saved)"),
        "{}",
        said(&o)
    );
    assert_eq!(meta(&index, "text")["max_id"], 2);

    // A missing embedding model is an error naming the folder, not a silent skip.
    let c = serde_json::json!({ "store_path": dir.path().join("store/events.db"), "embedding_model": dir.path().join("no-model") });
    std::fs::write(&cfg, c.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rag-ingester"))
        .args(["reindex", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(69));
    assert!(said(&o).contains("no-model") && said(&o).contains("make setup"), "{}", said(&o));
}
