//! The sniffer on capture files as the README runs it: the shipped config, several files, and
//! publishing with nobody listening.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pcap").join(rel)
}

/// The shipped `config/sniffer.json` (etcd endpoints, root secret and state paths as
/// shipped), with only `metrics.listen` moved to a free port so tests can run side by side.
fn shipped_config(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sniffer.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(shipped).unwrap()).unwrap();
    c["metrics"]["listen"] = format!("127.0.0.1:{}", mld_test_utils::free_port()).into();
    edit(&mut c);
    let p = dir.join("sniffer.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    p
}

fn sniffer(config: &Path, args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sniffer"))
        .args(["run", "--config"])
        .arg(config)
        .args(args)
        .arg("--pcap")
        .args(files)
        .output()
        .unwrap()
}

fn events(jsonl: &Path) -> Vec<Value> {
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What a flow event says, without its id.
fn signature(e: &Value) -> String {
    let mut rules: Vec<String> = e["fast"]["rule_ids"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    rules.sort();
    format!(
        "{} {}:{} -> {}:{} p{} {}..{} snapshot={} rules={rules:?}",
        e["initiator"],
        e["src_ip"],
        e["src_port"],
        e["dst_ip"],
        e["dst_port"],
        e["proto"],
        e["start_ns"],
        e["end_ns"],
        e["snapshot"]
    )
}

fn has_rule(e: &Value, rule: &str) -> bool {
    e["fast"]["rule_ids"].as_array().is_some_and(|a| a.iter().any(|r| r == rule))
}

/// The README's offline command with the shipped config, whose `etcd.endpoints` is set: an
/// offline run loads no root secret, so it runs without the control plane (it used to exit
/// 64, "etcd.endpoints is set, but sniffer does not use etcd"). Each file given is a capture of
/// its own: a scan capture followed by a later ssh capture gives the scan's flows exactly as
/// the scan capture alone does (they used to expire at the later file's timestamps with an
/// empty host context: almost none kept `scan.ports`).
#[test]
fn offline_files_with_the_shipped_config_are_each_a_capture_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = shipped_config(dir.path(), |_| {});
    let scan = shared("scan/ndpi-synscan.pcap");
    let ssh = shared("bruteforce/slips-ssh-bruteforce.pcap");

    let alone = dir.path().join("alone.jsonl");
    let out = sniffer(
        &cfg,
        &["--no-publish", "--jsonl", alone.to_str().unwrap()],
        std::slice::from_ref(&scan),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{err}", out.status);
    assert!(err.contains("not joining the control plane"), "{err}");
    let alone = events(&alone);
    let scanning = alone.iter().filter(|e| has_rule(e, "scan.ports")).count();
    assert!(scanning > 100, "{scanning} of {} flows carry scan.ports", alone.len());

    let both = dir.path().join("both.jsonl");
    let out = sniffer(&cfg, &["--no-publish", "--jsonl", both.to_str().unwrap()], &[scan, ssh]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let both = events(&both);
    assert!(both.len() > alone.len(), "{} events for both files", both.len());
    let mut a: Vec<String> = alone.iter().map(signature).collect();
    let mut b: Vec<String> = both[..alone.len()].iter().map(signature).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the scan capture's flows differ when another file follows it");
    // Event ids stay unique across files.
    let mut ids: Vec<&str> = both.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), both.len());
}

/// Publishing a capture with no subscriber refuses to run (exit 69, saying why and what to
/// do) instead of sending every event to nobody and exiting 0; `--wait-for-subscriber 0`
/// publishes anyway, with a warning.
#[test]
fn publishing_a_capture_to_nobody_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("root.secret");
    mld_crypto_transport::RootSecret::from_bytes([3; 32]).write_new(&secret).unwrap();
    let bind = format!("tcp://127.0.0.1:{}", mld_test_utils::free_port());
    let cfg = shipped_config(dir.path(), |c| {
        c["etcd"]["endpoints"] = serde_json::json!([]);
        c["publish"]["bind"] = bind.clone().into();
        c["transport"]["root_secret_file"] = secret.to_str().unwrap().into();
    });
    let scan = shared("scan/ndpi-tcp_scan.pcapng");
    let out = sniffer(&cfg, &["--wait-for-subscriber", "1"], std::slice::from_ref(&scan));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(
        err.contains(&format!("no flow.v1 subscriber connected to {bind} within 1 s")),
        "{err}"
    );
    assert!(err.contains("--no-publish"), "{err}");

    let out = sniffer(&cfg, &["--wait-for-subscriber", "0"], &[scan]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("publishing anyway"), "{err}");
}
