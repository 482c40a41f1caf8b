//! The `rag` binary over a fixture store built from shared captures the way production builds
//! one: ml-detector's offline analysis writes event-log lines, `rag-ingester backfill` stores
//! them and builds the indices (real SQLite, FAISS, all-MiniLM-L6-v2), then `rag` retrieves
//! and, with the GGUF model from `make setup`, answers.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const SCAN: &str = "pcap/scan/ndpi-synscan.pcap";
const BRUTE: &str = "pcap/bruteforce/slips-ssh-bruteforce.pcap";
const BENIGN: &str = "pcap/benign/ndpi-443-chrome.pcap";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    lines: Vec<Value>,
}

/// The store, built once for all tests of this binary.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = [SCAN, BRUTE, BENIGN].iter().map(|f| data().join(f)).collect();
        for f in &files {
            assert!(
                f.exists(),
                "{} missing: the shared captures are read from ../shared/data",
                f.display()
            );
        }
        let log = dir.path().join("events.jsonl");
        let mut out = std::fs::File::create(&log).unwrap();
        mld_ml_detector::offline::analyze(
            &files,
            &mld_ml_detector::scoring::Policy::default(),
            &mut out,
            |_, _| {},
        )
        .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let store = dir.path().join("rag/events.db");
        let ingester = dir.path().join("rag-ingester.json");
        std::fs::write(&ingester, serde_json::json!({"store_path": store}).to_string()).unwrap();
        let o = Command::new(ingester_bin())
            .args(["backfill", "--config"])
            .arg(&ingester)
            .arg(&log)
            .output()
            .unwrap();
        assert!(o.status.success(), "backfill: {}", String::from_utf8_lossy(&o.stderr));
        let config = dir.path().join("rag.json");
        std::fs::write(
            &config,
            serde_json::json!({"store_path": store,
                               "retrieval": {"top_k": 20}})
            .to_string(),
        )
        .unwrap();
        Fixture { _dir: dir, config, lines }
    })
}

/// rag-ingester, built beside this test binary (`cargo test --workspace` builds it).
fn ingester_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("rag-ingester");
    assert!(bin.exists(), "{} not built: run the tests with --workspace", bin.display());
    bin
}

fn rag(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("--config")
        .arg(&fixture().config)
        .args(args)
        .output()
        .unwrap()
}

fn json_of(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_owned()
}

/// The UTC day after the latest scan-rule Detection of the scan capture, as `--now`.
fn day_after(file: &str, rule: &str) -> (String, f64, f64) {
    let ts = fixture()
        .lines
        .iter()
        .filter(|l| l["file"].as_str().is_some_and(|f| f.ends_with(file)))
        .filter(|l| {
            l["fast_rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().starts_with(rule))
        })
        .map(|l| l["last_ts"].as_f64().unwrap())
        .fold(f64::NAN, f64::max);
    assert!(ts.is_finite(), "no {rule} Detection in {file}");
    let day = (ts / 86_400.0).floor() * 86_400.0;
    ((day + 86_400.0 + 3_600.0).to_string(), day, day + 86_400.0)
}

#[test]
fn which_hosts_were_blocked_for_scanning_yesterday() {
    let f = fixture();
    let (now, from, to) = day_after(SCAN, "scan");
    // What the answer must be, from the analysed lines themselves: malicious flows of that
    // day whose fast rules are scans.
    let expected: BTreeSet<String> = f
        .lines
        .iter()
        .filter(|l| l["verdict"] == "VERDICT_MALICIOUS")
        .filter(|l| (from..to).contains(&l["last_ts"].as_f64().unwrap()))
        .filter(|l| {
            l["fast_rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("scan"))
        })
        .map(|l| str_of(l, "src_ip"))
        .collect();
    assert!(!expected.is_empty(), "the scan capture has flagged scans");
    let o = rag(&[
        "--now",
        &now,
        "search",
        "--json",
        "--limit",
        "200",
        "which hosts were blocked for scanning yesterday?",
    ]);
    let hits = json_of(&o);
    let hits = hits.as_array().unwrap();
    let got: BTreeSet<String> = hits.iter().map(|h| str_of(h, "src_ip")).collect();
    assert_eq!(got, expected);
    for h in hits {
        assert_eq!(h["verdict"], "MALICIOUS");
        assert!((from..to).contains(&h["last_ts"].as_f64().unwrap()));
        assert!(
            h["fast_rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("scan")),
            "{h}"
        );
    }
    // The brute-force attacker is not a scanner.
    assert!(!got.contains("147.32.80.40"));
}

#[test]
fn brute_force_questions_find_the_ssh_attacker() {
    let (now, ..) = day_after(BRUTE, "bruteforce");
    let hits =
        json_of(&rag(&["--now", &now, "search", "--json", "ssh brute force attacks yesterday"]));
    let hits = hits.as_array().unwrap();
    assert!(!hits.is_empty());
    // The capture's service runs on port 902: "ssh" is a topic word, not a port filter.
    for h in hits {
        assert!(h["fast_rules"].as_array().unwrap().iter().any(|r| r == "bruteforce"), "{h}");
        assert_eq!(h["verdict"], "MALICIOUS");
    }
    assert!(hits.iter().any(|h| h["src_ip"] == "147.32.80.40"), "{hits:?}");
}

#[test]
fn events_filters_and_similar() {
    let f = fixture();
    let all = json_of(&rag(&["events", "--json", "--limit", "100000"]));
    assert_eq!(all.as_array().unwrap().len(), f.lines.len());
    let m = json_of(&rag(&[
        "events",
        "--json",
        "--verdict",
        "malicious",
        "--host",
        "147.32.80.40",
        "--limit",
        "100000",
    ]));
    let want = f
        .lines
        .iter()
        .filter(|l| {
            l["verdict"] == "VERDICT_MALICIOUS"
                && (l["src_ip"] == "147.32.80.40" || l["dst_ip"] == "147.32.80.40")
        })
        .count();
    assert_eq!(m.as_array().unwrap().len(), want);
    let id = m[0]["id"].as_i64().unwrap().to_string();
    let sim = json_of(&rag(&["similar", "--json", &id, "--limit", "5"]));
    let sim = sim.as_array().unwrap();
    assert_eq!(sim.len(), 5);
    assert!(sim.iter().all(|h| h["id"].as_i64().unwrap().to_string() != id));
    let scores: Vec<f64> = sim.iter().map(|h| h["similarity"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1] - 1e-6), "{scores:?}");
}

#[test]
fn no_match_and_bad_input_are_clear_failures() {
    let o = rag(&["search", "anything from 203.0.113.77"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no stored event matches"), "{o:?}");
    let o = rag(&["search", "port 99999 scans"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"99999\" is not a port"), "{o:?}");
    let o = rag(&["events", "--verdict", "maybe"]);
    assert_eq!(o.status.code(), Some(2));
    let o = rag(&["similar", "999999999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no event 999999999"), "{o:?}");

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    // A store that is not there, and one that is not a database.
    let missing =
        write("missing.json", serde_json::json!({"store_path": dir.path().join("none.db")}));
    let o = Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("-c")
        .arg(&missing)
        .args(["search", "scans"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no event store here"), "{o:?}");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    let corrupt = write("corrupt.json", serde_json::json!({"store_path": junk}));
    let o = Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("-c")
        .arg(&corrupt)
        .args(["events"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an event store or corrupt"), "{o:?}");
    // A model file that is missing or not a model.
    let store = std::fs::read_to_string(&fixture().config).unwrap();
    let store: Value = serde_json::from_str(&store).unwrap();
    let fake = dir.path().join("fake.gguf");
    std::fs::write(&fake, b"GGUF but not really a model").unwrap();
    for (gguf, says) in [(dir.path().join("nope.gguf"), "No such file"), (fake, "could not load")] {
        let c = write(
            "m.json",
            serde_json::json!({"store_path": store["store_path"], "model": {"gguf": gguf}}),
        );
        let o = Command::new(env!("CARGO_BIN_EXE_rag"))
            .arg("-c")
            .arg(&c)
            .args(["ask", "any scans?"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(69), "{o:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{o:?}");
    }
}

/// The real model: an answer cites only events that were retrieved (and, for a question
/// with matches, cites at least one) and names only their addresses; a question with no
/// match gets no answer at all.
#[test]
fn answers_cite_only_retrieved_events() {
    let (now, ..) = day_after(SCAN, "scan");
    for question in [
        "which hosts were blocked for scanning yesterday?",
        "summarise the malicious activity yesterday",
    ] {
        let v = json_of(&rag(&["--now", &now, "ask", "--json", question]));
        let retrieved: BTreeSet<i64> =
            v["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
        let cited: Vec<i64> =
            v["cited"].as_array().unwrap().iter().map(|c| c.as_i64().unwrap()).collect();
        assert!(!retrieved.is_empty());
        assert!(!v["answer"].as_str().unwrap().trim().is_empty(), "{v}");
        assert!(
            cited.iter().all(|c| retrieved.contains(c)),
            "cited {cited:?}, retrieved {retrieved:?}"
        );
        assert_eq!(v["unretrieved"], serde_json::json!([]));
        // Every address the answer names is an endpoint of a retrieved event.
        let endpoints: BTreeSet<&str> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| [e["src_ip"].as_str().unwrap(), e["dst_ip"].as_str().unwrap()])
            .collect();
        let answer = v["answer"].as_str().unwrap();
        for a in mld_rag_consumer::llm::addresses(answer) {
            assert!(
                endpoints.contains(a.to_string().as_str()),
                "{a} in {answer:?}, retrieved {endpoints:?}"
            );
        }
        assert_eq!(v["unretrieved_addresses"], serde_json::json!([]));
        eprintln!("{question} -> {answer}");
    }
    let o = rag(&["--now", &now, "ask", "what did 203.0.113.77 do yesterday?"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "no answer without events: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}
