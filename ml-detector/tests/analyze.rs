//! `ml-detector analyze` and `evaluate` as a user runs them, on shared captures.
#![expect(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../shared/data/pcap")
        .join(rel)
}

fn analyze(files: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detections.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ml-detector"));
    cmd.arg("analyze").arg("--pcap");
    for f in files {
        cmd.arg(shared(f));
    }
    let run = cmd.arg("--out").arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_spoofed_syn_flood_is_malicious_by_the_ddos_forest_and_every_line_has_the_fields() {
    let lines = analyze(&["ddos/stopddos-pkt.TCP.synflood.spoofed.pcap"]);
    assert!(lines.len() > 1000, "{} flows", lines.len());
    for l in &lines {
        for k in [
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
            "proto",
            "first_ts",
            "last_ts",
            "fast_score",
            "ml_score",
            "final_score",
            "verdict",
            "fast_rules",
            "authoritative",
            "divergence",
        ] {
            assert!(l.get(k).is_some(), "{k} missing: {l}");
        }
        for d in ["ddos", "ransomware", "traffic", "internal"] {
            let s = l["ml_scores"][d].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&s));
        }
        let (fast, ml, fin) = (
            l["fast_score"].as_f64().unwrap(),
            l["ml_score"].as_f64().unwrap(),
            l["final_score"].as_f64().unwrap(),
        );
        assert!((fin - fast.max(ml)).abs() < 1e-12, "{l}");
        assert!(l["first_ts"].as_f64() <= l["last_ts"].as_f64());
    }
    let malicious = lines.iter().filter(|l| l["verdict"] == "VERDICT_MALICIOUS").count();
    assert_eq!(malicious, lines.len(), "every flow of a spoofed flood is an attack");
    let by_ddos = lines.iter().filter(|l| l["ml_scores"]["ddos"].as_f64().unwrap() >= 0.8).count();
    assert!(by_ddos * 10 >= lines.len() * 9, "{by_ddos} of {} by the ddos forest", lines.len());
    assert!(
        lines.iter().any(|l| l["fast_rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "flood.victim"))
    );
    let explained = &lines[0]["top_features"];
    assert!(!explained.as_array().unwrap().is_empty(), "{explained}");
}

#[test]
fn ordinary_web_and_dns_traffic_stays_benign() {
    let lines = analyze(&["benign/ndpi-443-chrome.pcap", "benign/ndpi-dns.pcap"]);
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(l["verdict"], "VERDICT_BENIGN", "{l}");
        assert!(l["top_features"].as_array().unwrap().is_empty());
    }
}

#[test]
fn bad_input_is_a_clear_error_and_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_pcap = dir.path().join("notes.txt");
    std::fs::write(&not_pcap, "hello").unwrap();
    let out = dir.path().join("out.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["analyze", "--pcap"])
        .arg(&not_pcap)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("notes.txt") && err.contains("not a pcap"), "{err}");
    assert!(!out.exists() && !out.with_extension("partial").exists());
    let run = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["analyze", "--suspicious", "0.9", "--malicious", "0.5", "--pcap"])
        .arg(shared("benign/ndpi-443-chrome.pcap"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("above the malicious threshold"));
}

#[test]
fn evaluate_prints_every_class_and_counts_benign_false_positives() {
    let run = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["evaluate", "--data"])
        .arg(
            PathBuf::from(
                std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
            )
            .join("../../shared/data"),
        )
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = String::from_utf8(run.stdout).unwrap();
    for class in
        ["| ddos |", "| lateral |", "| overall |", "held-out split only", "Benign captures: "]
    {
        assert!(out.contains(class), "{class} missing:\n{out}");
    }
}
