//! The pipeline over the real bus: the sniffer binary reads shared captures and publishes
//! sealed `FlowEvent`s on flow.v1; `ml-detector run` scores them and publishes sealed Detections
//! on detection.v1, which this test receives and decrypts; then the event log, EVE-JSON and the
//! sealed artifacts on disk are checked against what went over the bus.
#![expect(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_bus::{Subscriber, SubscriberOptions};
use mld_crypto_transport::{KeyRing, RootSecret};
use mld_proto::{Detection, Verdict};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
}

fn shared(rel: &str) -> PathBuf {
    repo().join("../shared/data/pcap").join(rel)
}

fn sniffer_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_ml-detector")).with_file_name("sniffer");
    assert!(bin.exists(), "{} is missing: run the tests with --workspace", bin.display());
    bin
}

/// A shipped config with `patch` applied (top-level sections replaced key by key).
fn config(name: &str, patch: &Value, path: &Path) {
    let text = std::fs::read_to_string(repo().join("config").join(name)).unwrap();
    let mut c: Value = serde_json::from_str(&text).unwrap();
    for (section, fields) in patch.as_object().unwrap() {
        for (k, v) in fields.as_object().unwrap() {
            c[section][k] = v.clone();
        }
    }
    std::fs::write(path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ml-detector did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, checked end to end")]
fn sniffer_to_detector_to_a_decrypting_subscriber_with_logs_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("root.secret");
    RootSecret::from_bytes([9; 32]).write_new(&secret).unwrap();
    let (flow_port, det_port) = (mld_test_utils::free_port(), mld_test_utils::free_port());
    let logs = dir.path().join("logs");
    let transport = json!({ "root_secret_file": secret, "key_epoch": 1 });
    let det_cfg = dir.path().join("ml-detector.json");
    config(
        "ml-detector.json",
        &json!({
            "subscribe": { "connect": [format!("tcp://127.0.0.1:{flow_port}")] },
            "publish": { "bind": format!("tcp://127.0.0.1:{det_port}") },
            "metrics": { "listen": null },
            "event_log": { "dir": logs, "flush": "interval", "flush_interval_ms": 100 },
            "etcd": { "cache_file": dir.path().join("ml-detector-active.json") },
            "transport": transport,
        }),
        &det_cfg,
    );
    let sn_cfg = dir.path().join("sniffer.json");
    config(
        "sniffer.json",
        &json!({
            "publish": { "bind": format!("tcp://127.0.0.1:{flow_port}") },
            "metrics": { "listen": null },
            "etcd": { "cache_file": dir.path().join("sniffer-active.json") },
            "transport": transport,
        }),
        &sn_cfg,
    );

    let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([9; 32]), 1));
    let ctx = zmq::Context::new();
    let mut registry = mld_telemetry::component_registry("test");
    let mut sub = Subscriber::<Detection>::connect(
        &ctx,
        Arc::clone(&ring),
        &SubscriberOptions::new([format!("tcp://127.0.0.1:{det_port}")]),
        &mut registry,
    )
    .unwrap();

    let mut detector = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["run", "--config"])
        .arg(&det_cfg)
        .args(["--wait-for-subscriber", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let flows_jsonl = dir.path().join("flows.jsonl");
    let t0 = Instant::now();
    let sniffer = Command::new(sniffer_bin())
        .args(["run", "--config"])
        .arg(&sn_cfg)
        .arg("--pcap")
        // Two captures, each read as a capture of its own.
        .arg(shared("benign/ndpi-dns.pcap"))
        .arg(shared("ddos/stopddos-amp.TCP.syn.optionallyACK.optionallysamePort.pcapng"))
        .args(["--wait-for-subscriber", "30", "--jsonl"])
        .arg(&flows_jsonl)
        .output()
        .unwrap();
    assert!(sniffer.status.success(), "sniffer: {}", String::from_utf8_lossy(&sniffer.stderr));
    eprintln!("sniffer done after {:?}", t0.elapsed());
    let flows = lines(&flows_jsonl);
    assert!(flows.len() > 300, "{} flows", flows.len());
    let sent: BTreeSet<String> =
        flows.iter().map(|f| f["event_id"].as_str().unwrap().to_owned()).collect();

    let mut got: BTreeMap<String, Detection> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_mins(1);
    while got.len() < flows.len() && Instant::now() < deadline {
        if let Some(r) = sub.recv(Duration::from_millis(200)).unwrap() {
            let id = r.message.flow.as_ref().unwrap().event_id.clone();
            assert!(got.insert(id, r.message).is_none(), "a flow was scored twice");
        }
    }
    eprintln!("received {} after {:?}", got.len(), t0.elapsed());
    let status = terminate(&mut detector);
    let mut stderr = String::new();
    std::io::Read::read_to_string(detector.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "ml-detector: {status}\n{stderr}");

    // Every flow the sniffer published came back as exactly one decrypted Detection.
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), sent, "{stderr}");
    let stats = sub.stats();
    assert_eq!((stats.lost, stats.rejected.len()), (0, 0), "{stats:?}");
    for d in got.values() {
        let s = d.scores.unwrap();
        let ml = s.ddos.max(s.ransomware).max(s.traffic).max(s.internal);
        let fast = d.flow.as_ref().unwrap().fast.as_ref().map_or(0.0, |f| f.score);
        assert!((d.ml_score - ml).abs() < 1e-12 && (d.final_score - ml.max(fast)).abs() < 1e-12);
        assert_eq!(d.model_versions.len(), 4);
    }
    // The flood's flows are the TCP ones (the DNS capture's are UDP): all of them flagged,
    // and all but a few MALICIOUS (the ddos forest's cut, ADR 0010, leaves 7 of 348 flows of
    // this capture SUSPICIOUS).
    let flood: Vec<&Detection> = got
        .values()
        .filter(|d| d.flow.as_ref().unwrap().key.as_ref().unwrap().ip_proto == 6)
        .collect();
    assert!(flood.len() > 300, "{} flood flows", flood.len());
    for d in &flood {
        assert_ne!(d.verdict(), Verdict::Benign, "{d:?}");
    }
    let malicious = flood.iter().filter(|d| d.verdict() == Verdict::Malicious).count();
    assert!(malicious * 100 >= flood.len() * 95, "{malicious} of {} MALICIOUS", flood.len());
    // The DNS capture's flows (UDP, between public addresses) are benign: among others, the
    // internal forest does not apply outside the site's networks.
    let dns: Vec<&Detection> = got
        .values()
        .filter(|d| d.flow.as_ref().unwrap().key.as_ref().unwrap().ip_proto == 17)
        .collect();
    assert!(!dns.is_empty());
    for d in &dns {
        assert_eq!(d.verdict(), Verdict::Benign, "{d:?}");
    }
    let flagged: Vec<&Detection> =
        got.values().filter(|d| d.verdict() != Verdict::Benign).collect();
    // The event log has one line per Detection, the same ids and verdicts.
    let events = lines(&logs.join("events.jsonl"));
    assert_eq!(events.len(), got.len());
    for e in &events {
        assert_eq!(e["schema_version"], 1);
        let d = &got[e["event_id"].as_str().unwrap()];
        assert_eq!(e["detection_id"], d.detection_id.as_str());
        assert_eq!(e["verdict"], d.verdict().as_str_name());
        assert!(e["features"]["total_fwd_packets"].as_u64().is_some(), "{e}");
    }
    // EVE: an alert per flagged Detection, a flow record per finished flow, Suricata's shape.
    let eve = lines(&logs.join("eve.json"));
    let alerts: Vec<&Value> = eve.iter().filter(|r| r["event_type"] == "alert").collect();
    let eve_flows = eve.iter().filter(|r| r["event_type"] == "flow").count();
    let finished = got.values().filter(|d| !d.flow.as_ref().unwrap().snapshot).count();
    assert_eq!((alerts.len(), eve_flows), (flagged.len(), finished));
    for r in &eve {
        let ts = r["timestamp"].as_str().unwrap();
        assert!(ts.len() == 31 && ts.ends_with("+0000"), "{ts}");
        assert!(r["flow_id"].as_u64().is_some() && r["proto"].is_string(), "{r}");
        assert!(r["flow"]["pkts_toserver"].as_u64().is_some(), "{r}");
    }
    let a = alerts[0];
    assert!(a["alert"]["signature_id"].as_u64().unwrap() >= 9_100_000, "{a}");
    assert!(matches!(a["alert"]["severity"].as_u64(), Some(1 | 2)), "{a}");
    // One sealed artifact per flagged Detection, readable with the deployment's keys only.
    let alerts_file = logs.join("alerts.mld");
    let opened = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["artifact", "--config"])
        .arg(&det_cfg)
        .arg(&alerts_file)
        .output()
        .unwrap();
    assert!(opened.status.success(), "{}", String::from_utf8_lossy(&opened.stderr));
    let text = String::from_utf8(opened.stdout).unwrap();
    assert_eq!(text.lines().count(), flagged.len());
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let d = &got[v["event_id"].as_str().unwrap()];
        assert_eq!(v["detection_id"], d.detection_id.as_str());
        assert_ne!(v["verdict"], "VERDICT_BENIGN");
    }
    let wrong = dir.path().join("wrong.json");
    let other = dir.path().join("other.secret");
    RootSecret::from_bytes([8; 32]).write_new(&other).unwrap();
    config("ml-detector.json", &json!({ "transport": { "root_secret_file": other } }), &wrong);
    let refused = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["artifact", "--config"])
        .arg(&wrong)
        .arg(&alerts_file)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a valid artifact for these keys")
    );
}

#[test]
fn start_up_problems_name_the_file_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let run = |patch: &Value| {
        let cfg = dir.path().join("c.json");
        config("ml-detector.json", patch, &cfg);
        let out = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
            .args(["run", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let missing = dir.path().join("no-such.secret");
    let (code, err) = run(&json!({
        "metrics": { "listen": null },
        "event_log": { "dir": dir.path().join("logs") },
        "transport": { "root_secret_file": missing },
    }));
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("no-such.secret") && err.contains("root_secret_file"), "{err}");

    let secret = dir.path().join("root.secret");
    RootSecret::from_bytes([1; 32]).write_new(&secret).unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let (code, err) = run(&json!({
        "metrics": { "listen": null },
        "event_log": { "dir": not_a_dir },
        "transport": { "root_secret_file": secret },
    }));
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("event_log.dir") && err.contains("/file"), "{err}");
}

/// Overload by design: the daemon starts with 3,000 flow events already queued (it waits for
/// a detection.v1 subscriber before reading), so it is behind from the first read. It sheds
/// the events.jsonl and EVE records of BENIGN detections, counts them, and still scores and
/// publishes every flow; no SUSPICIOUS or MALICIOUS record is shed.
#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, checked end to end")]
fn behind_its_input_it_sheds_benign_records_only_and_scores_every_flow() {
    use mld_bus::{Publisher, PublisherOptions, Topic};
    use mld_proto::{Endpoint, FastDetection, FlowEvent, FlowKey};

    const N: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("root.secret");
    RootSecret::from_bytes([9; 32]).write_new(&secret).unwrap();
    let (flow_port, det_port) = (mld_test_utils::free_port(), mld_test_utils::free_port());
    let logs = dir.path().join("logs");
    let det_cfg = dir.path().join("ml-detector.json");
    config(
        "ml-detector.json",
        &json!({
            "subscribe": { "connect": [format!("tcp://127.0.0.1:{flow_port}")] },
            "publish": { "bind": format!("tcp://127.0.0.1:{det_port}") },
            "metrics": { "listen": null },
            "event_log": { "dir": logs, "shed_benign_after": 50 },
            "etcd": { "cache_file": dir.path().join("ml-detector-active.json") },
            "transport": { "root_secret_file": secret, "key_epoch": 1 },
        }),
        &det_cfg,
    );
    let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([9; 32]), 1));
    let ctx = zmq::Context::new();
    let mut registry = mld_telemetry::component_registry("test");
    let mut publisher = Publisher::bind(
        &ctx,
        Arc::clone(&ring),
        &PublisherOptions::new(format!("tcp://127.0.0.1:{flow_port}")),
        &mut registry,
    )
    .unwrap();
    let mut detector = Command::new(env!("CARGO_BIN_EXE_ml-detector"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(&det_cfg)
        .args(["--wait-for-subscriber", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(publisher.wait_for_subscriber(Topic::Flow, Duration::from_secs(30)).unwrap());
    // Every third flow carries a fast score of 1.0: MALICIOUS whatever the forests say.
    let mut malicious = BTreeSet::new();
    for i in 0..N {
        let id = format!("flow-{i:05}");
        let fast = if i % 3 == 0 {
            malicious.insert(id.clone());
            FastDetection { score: 1.0, rule_ids: vec!["scan.ports".into()], ..Default::default() }
        } else {
            FastDetection::default()
        };
        let port = u32::try_from(40_000 + i % 20_000).unwrap();
        let ev = FlowEvent {
            event_id: id,
            sensor_id: "test".into(),
            start_ns: 1_000_000_000,
            end_ns: 2_000_000_000,
            key: Some(FlowKey {
                a: Some(Endpoint { ip: vec![10, 0, 0, 1], port }),
                b: Some(Endpoint { ip: vec![10, 0, 0, 2], port: 443 }),
                ip_proto: 6,
                initiator: mld_proto::Direction::AToB.into(),
            }),
            fast: Some(fast),
            ..FlowEvent::default()
        };
        assert_eq!(publisher.publish(&ev).unwrap(), mld_bus::Publish::Sent);
    }
    // Give the queue a moment to reach the daemon's socket, then let it read.
    std::thread::sleep(Duration::from_millis(500));
    let mut sub = Subscriber::<Detection>::connect(
        &ctx,
        Arc::clone(&ring),
        &SubscriberOptions::new([format!("tcp://127.0.0.1:{det_port}")]),
        &mut registry,
    )
    .unwrap();
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_mins(2);
    while got.len() < N && Instant::now() < deadline {
        if let Some(r) = sub.recv(Duration::from_millis(200)).unwrap() {
            let id = r.message.flow.as_ref().unwrap().event_id.clone();
            got.insert(id, r.message.verdict());
        }
    }
    let status = terminate(&mut detector);
    let mut stderr = String::new();
    std::io::Read::read_to_string(detector.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "ml-detector: {status}\n{stderr}");
    assert_eq!(got.len(), N, "every flow scored and published\n{stderr}");
    for id in &malicious {
        assert_eq!(got[id], Verdict::Malicious, "{id}");
    }
    let events = lines(&logs.join("events.jsonl"));
    let written: BTreeSet<String> =
        events.iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect();
    // Every flagged detection has its record; benign ones were shed while behind.
    let flagged: BTreeSet<String> =
        got.iter().filter(|(_, v)| **v != Verdict::Benign).map(|(id, _)| id.clone()).collect();
    assert!(flagged.is_subset(&written), "a flagged record was shed");
    assert!(events.len() < N, "nothing was shed: the daemon never fell behind?\n{stderr}");
    let shed: usize = stderr
        .lines()
        .find(|l| l.contains("shed_events"))
        .and_then(|l| l.split("\"shed_events\":").nth(1))
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no shed count in the stop line:\n{stderr}"));
    assert_eq!(events.len() + shed, N, "every record written or counted as shed");
    assert!(stderr.contains("shedding the events.jsonl and EVE records"), "{stderr}");
}
