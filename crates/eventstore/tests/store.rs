//! The event store on a real `SQLite` file: idempotent inserts, filters, backfill positions,
//! and the errors an operator sees for a locked, corrupt, missing or newer store.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use mld_eventstore::fixture::line;
use mld_eventstore::{Error, Filter, Store, Verdict};

const T: f64 = 1_700_000_000.0;

fn lines() -> Vec<String> {
    vec![
        line("a", "VERDICT_MALICIOUS", "10.0.0.5", 22, T),
        line("b", "VERDICT_BENIGN", "10.0.0.6", 443, T + 10.0),
        line("c", "VERDICT_SUSPICIOUS", "10.0.0.5", 445, T + 20.0)
            .replace("scan.ports", "smb.spread")
            .replace("\"internal\":0.0", "\"internal\":0.8"),
        line("d", "VERDICT_MALICIOUS", "192.168.1.7", 22, T + 3600.0),
    ]
}

#[test]
fn the_same_detection_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rag/events.db");
    let mut s = Store::open(&path).unwrap();
    let r = s.insert_lines(&lines(), None).unwrap();
    assert_eq!((r.inserted, r.duplicates, r.rejected.len()), (4, 0, 0));
    let r = s.insert_lines(&lines(), None).unwrap();
    assert_eq!((r.inserted, r.duplicates), (0, 4), "re-delivery stores nothing");
    drop(s);
    let mut s = Store::open(&path).unwrap();
    let r = s.insert_lines(&lines()[..2], None).unwrap();
    assert_eq!((r.inserted, r.duplicates), (0, 2), "after a reopen too");
    assert_eq!(s.count().unwrap(), 4);
    assert_eq!(s.max_id().unwrap(), 4);
}

#[test]
fn bad_lines_are_returned_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("e.db")).unwrap();
    let mut batch = lines();
    batch.insert(1, "{\"schema_version\":1}".into());
    batch.insert(3, "garbage".into());
    let r = s.insert_lines(&batch, None).unwrap();
    assert_eq!(r.inserted, 4);
    assert_eq!(r.rejected.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 3]);
    assert!(r.rejected[0].1.to_string().ends_with(": missing"), "{}", r.rejected[0].1);
}

#[test]
fn filters_select_by_time_host_port_verdict_detector_rule_and_score() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("e.db")).unwrap();
    s.insert_lines(&lines(), None).unwrap();
    let ids = |f: Filter| -> Vec<String> {
        s.query(&f, 100).unwrap().into_iter().map(|e| e.detection_id).collect()
    };
    assert_eq!(ids(Filter::default()), ["d", "c", "b", "a"], "newest first");
    assert_eq!(
        ids(Filter { since: Some(T + 5.0), until: Some(T + 3600.0), ..Filter::default() }),
        ["c", "b"]
    );
    assert_eq!(ids(Filter { hosts: vec!["10.0.0.5".into()], ..Filter::default() }), ["c", "a"]);
    assert_eq!(
        ids(Filter { hosts: vec!["10.0.0.9".into()], ..Filter::default() }).len(),
        4,
        "either end"
    );
    assert_eq!(ids(Filter { ports: vec![22, 445], ..Filter::default() }), ["d", "c", "a"]);
    assert_eq!(
        ids(Filter { verdicts: vec![Verdict::Malicious], ports: vec![22], ..Filter::default() }),
        ["d", "a"]
    );
    assert_eq!(ids(Filter { detectors: vec!["internal".into()], ..Filter::default() }), ["c"]);
    assert_eq!(
        ids(Filter { detectors: vec!["bogus".into()], ..Filter::default() }),
        Vec::<String>::new()
    );
    assert_eq!(ids(Filter { rules: vec!["smb".into()], ..Filter::default() }), ["c"]);
    assert_eq!(
        ids(Filter { rules: vec!["scan.ports".into()], ..Filter::default() }),
        ["d", "b", "a"]
    );
    assert_eq!(ids(Filter { min_score: Some(0.95), ..Filter::default() }), Vec::<String>::new());
    assert_eq!(ids(Filter { ids: vec![1, 3], ..Filter::default() }), ["c", "a"]);
    // A value that looks like SQL is a value.
    assert!(ids(Filter { hosts: vec!["x' OR 1=1 --".into()], ..Filter::default() }).is_empty());
    assert_eq!(s.query(&Filter::default(), 2).unwrap().len(), 2, "limit");
    let e = &s.query(&Filter { ids: vec![3], ..Filter::default() }, 1).unwrap()[0];
    assert_eq!(
        (e.verdict, e.ml_scores[3], e.fast_rules.clone()),
        (Verdict::Suspicious, 0.8, vec!["smb.spread".to_owned()])
    );
    assert!(s.line(3).unwrap().unwrap().contains("\"detection_id\":\"c\""));
    let mut seen = Vec::new();
    s.vectors(2, |id, _, v| seen.push((id, v.len()))).unwrap();
    assert_eq!(seen, [(3, 4), (4, 4)]);
}

#[test]
fn a_backfill_position_commits_with_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("e.db")).unwrap();
    assert_eq!(s.source_offset("/var/log/events.jsonl").unwrap(), 0);
    s.insert_lines(&lines()[..2], Some(("/var/log/events.jsonl", 1234))).unwrap();
    assert_eq!(s.source_offset("/var/log/events.jsonl").unwrap(), 1234);
    s.insert_lines(&lines()[2..], Some(("/var/log/events.jsonl", 5678))).unwrap();
    assert_eq!(s.source_offset("/var/log/events.jsonl").unwrap(), 5678);
}

#[test]
fn a_locked_store_says_so_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    let mut s = Store::open(&path).unwrap();
    s.set_busy_timeout(Duration::from_millis(200)).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = s.insert_lines(&lines(), None).unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert!(e.to_string().contains("e.db") && e.to_string().contains("locked"), "{e}");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(s.insert_lines(&lines(), None).unwrap().inserted, 4, "and works once released");
}

#[test]
fn corrupt_missing_and_newer_stores_are_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42; 8192]).unwrap();
    let e = Store::open(&junk).err().unwrap();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("junk.db"));
    let e = Store::open_read_only(&junk).err().unwrap();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");

    let missing = dir.path().join("none.db");
    assert!(matches!(Store::open_read_only(&missing).err().unwrap(), Error::Missing { .. }));
    assert!(!missing.exists(), "reading never creates a store");

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let e = Store::open(&newer).err().unwrap();
    assert!(matches!(e, Error::Newer { found: 99, .. }), "{e}");
    assert!(matches!(Store::open_read_only(&newer).err().unwrap(), Error::Newer { .. }));

    let ro = Store::open_read_only(&dir.path().join("e.db"));
    assert!(matches!(ro.err().unwrap(), Error::Missing { .. }));
}
