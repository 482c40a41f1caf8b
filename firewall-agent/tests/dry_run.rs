//! `dry_run`: the agent decides and audits, publishes its actions marked as dry runs, and never
//! runs nft (its `nft` program here is one that would fail the test if called). Needs no root.
#![allow(clippy::unwrap_used, reason = "test")]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_bus::{Publisher, PublisherOptions, Subscriber, SubscriberOptions, Topic};
use mld_crypto_transport::{KeyRing, RootSecret};
use mld_proto::{
    Detection, DetectorScores, Direction, Endpoint, FirewallAction, FirewallActionKind, FlowEvent,
    FlowKey, ScoreSource, Verdict,
};
use serde_json::Value;

#[test]
#[allow(
    clippy::too_many_lines,
    clippy::many_single_char_names,
    reason = "one scenario, checked end to end"
)]
fn dry_run_audits_and_publishes_but_never_runs_nft() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("root.secret");
    RootSecret::from_bytes([6; 32]).write_new(&secret).unwrap();
    let marker = dir.path().join("nft-was-called");
    let fake_nft = dir.path().join("nft");
    std::fs::write(&fake_nft, format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display())).unwrap();
    std::fs::set_permissions(&fake_nft, std::fs::Permissions::from_mode(0o755)).unwrap();
    let detections = format!("ipc://{}", dir.path().join("d.ipc").display());
    let control = format!("ipc://{}", dir.path().join("c.ipc").display());
    let audit_dir = dir.path().join("audit");
    let config = dir.path().join("fw.json");
    let c = serde_json::json!({
        "subscribe": { "connect": [detections] },
        "publish": { "bind": control },
        "dry_run": true,
        "on_exit": "remove",
        "audit_dir": audit_dir,
        "nft": fake_nft,
        "metrics": { "listen": null },
        "transport": { "root_secret_file": secret },
    });
    std::fs::write(&config, serde_json::to_vec(&c).unwrap()).unwrap();

    let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([6; 32]), 1));
    let ctx = zmq::Context::new();
    let mut registry = mld_telemetry::component_registry("test");
    let mut publisher = Publisher::bind(
        &ctx,
        Arc::clone(&ring),
        &PublisherOptions::new(detections.as_str()),
        &mut registry,
    )
    .unwrap();
    let mut actions = Subscriber::<FirewallAction>::connect(
        &ctx,
        ring,
        &SubscriberOptions::new([control]),
        &mut registry,
    )
    .unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_firewall-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(publisher.wait_for_subscriber(Topic::Detection, Duration::from_secs(20)).unwrap());
    let d = |k: u8| Detection {
        detection_id: format!("dry-{k}"),
        flow: Some(FlowEvent {
            key: Some(FlowKey {
                a: Some(Endpoint { ip: vec![198, 51, 100, k], port: 44_000 }),
                b: Some(Endpoint { ip: vec![192, 0, 2, 200], port: 22 }),
                ip_proto: 6,
                initiator: Direction::AToB.into(),
            }),
            // An ssh session with payload both ways: the address is proven.
            features: Some(mld_proto::FlowFeatures {
                total_fwd_bytes: 3_000,
                total_bwd_bytes: 4_000,
                ..mld_proto::FlowFeatures::default()
            }),
            ..FlowEvent::default()
        }),
        scores: Some(DetectorScores { ddos: 0.97, ..DetectorScores::default() }),
        ml_score: 0.97,
        final_score: 0.97,
        authoritative_source: ScoreSource::Ml.into(),
        verdict: Verdict::Malicious.into(),
        ..Detection::default()
    };
    // Until control.v1's subscriber has joined, an action may go to nobody: try new sources
    // until one arrives.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut k = 0u8;
    let action = loop {
        k += 1;
        let _ = publisher.publish(&d(k)).unwrap();
        if let Some(r) = actions.recv(Duration::from_millis(200)).unwrap() {
            break r.message;
        }
        assert!(Instant::now() < deadline, "no FirewallAction arrived");
    };
    assert_eq!((action.kind(), action.dry_run), (FirewallActionKind::Block, true));
    let addr = format!("198.51.100.{}", action.address[3]);

    let pid = rustix::process::Pid::from_child(&agent);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = agent.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(agent.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}\n{err}");
    assert!(!marker.exists(), "nft was run in dry_run:\n{err}");
    let audit: Vec<Value> = std::fs::read_to_string(audit_dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let blocks: Vec<&Value> = audit.iter().filter(|r| r["action"] == "block").collect();
    assert!(!blocks.is_empty() && blocks.len() <= usize::from(k), "{audit:?}");
    assert!(blocks.iter().all(|b| b["dry_run"] == true), "{audit:?}");
    assert!(blocks.iter().any(|b| b["addr"] == addr.as_str()), "{audit:?}");

    // `status` lists the decisions the agent counted in `blocked_addresses`, marked as dry
    // runs that never reached the kernel (it listed none before: issue #26, fault 8d).
    let status = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firewall-agent"));
        cmd.args(["status", "--config"]).arg(&config);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed: Vec<Value> =
        status(true).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), blocks.len(), "{listed:?}");
    assert!(listed.iter().all(|b| b["dry_run"] == true && b["in_kernel"] == false), "{listed:?}");
    assert!(listed.iter().any(|b| b["addr"] == addr.as_str()), "{listed:?}");
    let table = status(false);
    let n = blocks.len();
    assert!(
        table.starts_with(&format!("{n} blocked, {n} of them in dry run, not in the kernel")),
        "{table}"
    );
    assert!(table.lines().skip(2).all(|l| l.contains("dry run")), "{table}");

    // Restarted, the dry-run agent goes on from those decisions: its blocked_addresses gauge
    // says what `status` lists (it started at 0 before).
    let port = mld_test_utils::free_port();
    let mut c = c;
    c["metrics"]["listen"] = format!("127.0.0.1:{port}").into();
    std::fs::write(&config, serde_json::to_vec(&c).unwrap()).unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_firewall-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = || {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.lines()
            .find(|l| l.starts_with("mld_firewall_agent_blocked_addresses "))
            .map(ToOwned::to_owned)
    };
    let mut seen = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        seen = metrics();
        if seen.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rustix::process::Pid::from_child(&agent);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(agent.wait().unwrap().success());
    assert_eq!(seen, Some(format!("mld_firewall_agent_blocked_addresses {n}")));
}
