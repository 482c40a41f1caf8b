//! `rag-ingester backfill` as a user runs it: a real event log into a real store, re-run
//! (nothing stored twice), killed with SIGKILL mid-way and resumed (nothing lost, nothing
//! twice), a half-written last line left for later, and unreadable lines reported.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mld_eventstore::Store;
use mld_eventstore::fixture::line;

fn config(dir: &Path, batch: u32) -> std::path::PathBuf {
    let c = serde_json::json!({
        "store_path": dir.join("store/events.db"),
        "batch_max_events": batch,
        "metrics": { "listen": null },
    });
    let p = dir.join("rag-ingester.json");
    std::fs::write(&p, serde_json::to_vec(&c).unwrap()).unwrap();
    p
}

fn backfill(config: &Path, logs: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rag-ingester"))
        .args(["backfill", "--config"])
        .arg(config)
        .args(logs)
        .output()
        .unwrap()
}

fn write_log(path: &Path, from: usize, n: usize) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let mut buf = String::new();
    for i in from..from + n {
        #[allow(clippy::cast_precision_loss)]
        let t = 1_700_000_000.0 + i as f64;
        buf += &line(&format!("det-{i}"), "VERDICT_SUSPICIOUS", "10.1.2.3", 22, t);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).unwrap();
}

fn count(dir: &Path) -> u64 {
    Store::open_read_only(&dir.join("store/events.db")).map_or(0, |s| s.count().unwrap())
}

#[test]
fn a_backfill_reruns_and_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 200);
    let log = dir.path().join("events.jsonl");
    write_log(&log, 0, 1000);
    // A log being written: its last line is not finished.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&line("det-1000", "VERDICT_BENIGN", "10.1.2.3", 22, 1.0).as_bytes()[..100])
        .unwrap();
    let out = backfill(&cfg, &[&log]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1000 stored, 0 already stored, 0 unreadable; 1000 events"), "{err}");
    // The line is finished and more are appended: only those are read.
    f.write_all(&line("det-1000", "VERDICT_BENIGN", "10.1.2.3", 22, 1.0).as_bytes()[100..])
        .unwrap();
    f.write_all(b"\n").unwrap();
    write_log(&log, 1001, 9);
    let out = backfill(&cfg, &[&log]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10 lines") && err.contains("10 stored, 0 already stored"), "{err}");
    assert_eq!(count(dir.path()), 1010);
    // --from-start reads everything again and stores nothing twice.
    let out = Command::new(env!("CARGO_BIN_EXE_rag-ingester"))
        .args(["backfill", "--from-start", "--config"])
        .arg(&cfg)
        .arg(&log)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0 stored, 1010 already stored"), "{err}");
}

#[test]
fn a_backfill_killed_mid_way_resumes_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 50);
    let log = dir.path().join("events.jsonl");
    let total = 60_000;
    write_log(&log, 0, total);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rag-ingester"))
        .args(["backfill", "--config"])
        .arg(&cfg)
        .arg(&log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    mld_test_utils::wait_until(Duration::from_mins(1), "1000 events stored", || {
        count(dir.path()) >= 1000
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = count(dir.path());
    assert!(partial < total as u64, "killed too late to test a resume ({partial} stored)");
    let out = backfill(&cfg, &[&log]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(count(dir.path()), total as u64, "{err}");
    // Resumed from the committed position: at most the one uncommitted batch is read twice.
    assert!(err.contains(&format!("{} stored", total as u64 - partial)), "{err}");
}

#[test]
fn unreadable_lines_are_reported_with_file_and_offset_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 10);
    let log = dir.path().join("events.jsonl");
    write_log(&log, 0, 3);
    let at = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"{\"schema_version\":7}\n\xff\xfe\n")
        .unwrap();
    write_log(&log, 3, 3);
    let out = backfill(&cfg, &[&log]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("6 stored") && err.contains("2 unreadable"), "{err}");
    assert!(err.contains(&format!("events.jsonl@{at}: schema_version 7")), "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
    assert_eq!(count(dir.path()), 6);
}

#[test]
fn a_bad_config_or_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"batch_max_events": 0}"#).unwrap();
    let out = backfill(&cfg, &[Path::new("x")]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch_max_events"));
    let cfg = config(dir.path(), 10);
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    std::fs::write(dir.path().join("store/events.db"), vec![7u8; 4096]).unwrap();
    let log = dir.path().join("events.jsonl");
    write_log(&log, 0, 1);
    let out = backfill(&cfg, &[&log]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(err.contains("events.db: not an event store or corrupt"), "{err}");
}

#[test]
fn a_missing_event_log_is_refused_before_the_store_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 200);
    let log = dir.path().join("events.jsonl");
    write_log(&log, 0, 10);
    let missing = dir.path().join("no-such-events.jsonl");
    let out = backfill(&cfg, &[&log, &missing]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot read the event log {}", missing.display())), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    // Neither the store nor its folder was made.
    assert!(!dir.path().join("store").exists(), "{err}");
}
