//! `rag-ingester run` on a real ZeroMQ bus: sealed Detections published on `detection.v1`
//! land in the store once each (re-delivered ones too), as their event-log lines, and a
//! SIGTERM commits what is pending and exits 0.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mld_bus::{Publisher, PublisherOptions, Topic};
use mld_crypto_transport::RootSecret;
use mld_eventstore::{Filter, Store, Verdict};
use mld_proto::{
    Detection, DetectorScores, Direction, Endpoint, FastDetection, FlowEvent, FlowKey, ScoreSource,
};

fn detection(k: u8) -> Detection {
    Detection {
        detection_id: format!("bus-{k}"),
        detected_at_ns: 1_700_000_000_000_000_000 + u64::from(k) * 1_000_000_000,
        flow: Some(FlowEvent {
            event_id: format!("ev-{k}"),
            sensor_id: "s1".into(),
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_000_000_000 + u64::from(k) * 1_000_000_000,
            key: Some(FlowKey {
                a: Some(Endpoint { ip: vec![198, 51, 100, k], port: 44_000 }),
                b: Some(Endpoint { ip: vec![192, 0, 2, 200], port: 22 }),
                ip_proto: 6,
                initiator: Direction::AToB.into(),
            }),
            features: Some(mld_proto::FlowFeatures {
                flow_duration_us: f64::from(k) * 1e6,
                ..mld_proto::FlowFeatures::default()
            }),
            fast: Some(FastDetection {
                score: 0.9,
                rule_ids: vec!["bruteforce".into()],
                reasons: vec!["20 failed logins in 30 s".into()],
                ..FastDetection::default()
            }),
            ..FlowEvent::default()
        }),
        scores: Some(DetectorScores { traffic: 0.7, ..DetectorScores::default() }),
        ml_score: 0.7,
        final_score: 0.9,
        authoritative_source: ScoreSource::Fast.into(),
        verdict: mld_proto::Verdict::Malicious.into(),
        ..Detection::default()
    }
}

#[test]
fn detections_on_the_bus_are_stored_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("root.secret");
    RootSecret::from_bytes([9; 32]).write_new(&secret).unwrap();
    let endpoint = format!("ipc://{}", dir.path().join("d.ipc").display());
    let store_path = dir.path().join("events.db");
    let config = dir.path().join("rag-ingester.json");
    let c = serde_json::json!({
        "subscribe": { "connect": [endpoint] },
        "store_path": store_path,
        "batch_max_events": 16,
        "batch_max_delay_ms": 100,
        "metrics": { "listen": null },
        "transport": { "root_secret_file": secret },
    });
    std::fs::write(&config, serde_json::to_vec(&c).unwrap()).unwrap();
    let ring = mld_test_utils::key_ring(9, 1);
    let ctx = zmq::Context::new();
    let mut registry = mld_telemetry::component_registry("test");
    let mut publisher =
        Publisher::bind(&ctx, ring, &PublisherOptions::new(endpoint.as_str()), &mut registry)
            .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rag-ingester"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(publisher.wait_for_subscriber(Topic::Detection, Duration::from_secs(20)).unwrap());
    // Until the subscription has joined, a message may go to nobody: publish the first one
    // until it is stored.
    let deadline = Instant::now() + Duration::from_secs(20);
    let count = || Store::open_read_only(&store_path).map_or(0, |s| s.count().unwrap());
    while count() == 0 {
        let _ = publisher.publish(&detection(1)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(Instant::now() < deadline, "nothing was stored");
    }
    for k in 1..=100 {
        let _ = publisher.publish(&detection(k)).unwrap();
    }
    for k in 1..=20 {
        let _ = publisher.publish(&detection(k)).unwrap(); // re-delivery
    }
    mld_test_utils::wait_until(Duration::from_secs(20), "100 events stored", || count() >= 100);
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}\n{err}");
    let s = Store::open_read_only(&store_path).unwrap();
    assert_eq!(s.count().unwrap(), 100, "{err}");
    // The store started empty: both indices are built as rows arrive and saved at shutdown
    // (an index opened empty used to stay empty until a `reindex`).
    let index = mld_vindex::dir_for(&store_path);
    let count = |kind: &str| {
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(index.join(format!("{kind}.json")))
                .unwrap_or_else(|e| panic!("{kind} index: {e}\n{err}")),
        )
        .unwrap();
        meta["count"].as_u64().unwrap()
    };
    // One feature vector per event; one text vector per distinct summary.
    assert_eq!(count("features"), 100, "{err}");
    assert!(count("text") > 0, "{err}");
    let f = Filter { hosts: vec!["198.51.100.42".into()], ..Filter::default() };
    let e = s.query(&f, 10).unwrap();
    assert_eq!(e.len(), 1);
    let e = &e[0];
    assert_eq!((e.verdict, e.dst_port, e.src_port), (Verdict::Malicious, 22, 44_000));
    assert_eq!(e.fast_rules, ["bruteforce"]);
    assert!(
        e.description.contains("fast rules bruteforce; 20 failed logins in 30 s"),
        "{}",
        e.description
    );
    let line: serde_json::Value = serde_json::from_str(&s.line(e.id).unwrap().unwrap()).unwrap();
    assert_eq!(line["detection_id"], "bus-42");
    assert_eq!(line["schema_version"], 1);
}
