//! Block throughput: firewall-agent alone in a network namespace of its own, with real
//! nftables, under a storm of malicious Detections that each name a new source (198.18.0.0/15,
//! the benchmarking range), published on a real ZeroMQ `ipc://` socket as fast as the bus
//! takes them. Measures the time from the first Detection published to the last element
//! present in the kernel's set, and how the agent batched them into nft transactions.
//!
//! Needs root; prints why and exits otherwise. `bench/block.sh` runs it after the latency
//! benchmark; alone: `cargo bench --workspace --bench block_throughput -- --storm 20000`.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "benchmark"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_bus::{Publish, Publisher, PublisherOptions, Topic};
use mld_crypto_transport::{KeyRing, RootSecret};
use mld_proto::{
    Detection, DetectorScores, Direction, Endpoint, FlowEvent, FlowKey, ScoreSource, Verdict,
};
use serde_json::Value;

const METRICS: &str = "127.0.0.1:19103";

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

fn detection(i: u32) -> Detection {
    let src = (u32::from_be_bytes([198, 18, 0, 0]) + i).to_be_bytes();
    Detection {
        detection_id: format!("storm-{i}"),
        flow: Some(FlowEvent {
            key: Some(FlowKey {
                a: Some(Endpoint { ip: src.to_vec(), port: 40_000 }),
                b: Some(Endpoint { ip: vec![192, 0, 2, 1], port: 80 }),
                ip_proto: 6,
                initiator: Direction::AToB.into(),
            }),
            ..FlowEvent::default()
        }),
        scores: Some(DetectorScores { ddos: 0.95, ..DetectorScores::default() }),
        ml_score: 0.95,
        final_score: 0.95,
        authoritative_source: ScoreSource::Ml.into(),
        verdict: Verdict::Malicious.into(),
        ..Detection::default()
    }
}

fn metric(ns: &str, name: &str) -> Option<f64> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sf", &format!("http://{METRICS}/metrics")])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn kernel_elements(ns: &str) -> usize {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-j", "list", "set", "inet", "mldefender", "block4"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["set"]["elem"].as_array())
        .map(Vec::len)
        .sum()
}

fn config(dir: &Path, endpoint: &str, storm: u32) -> PathBuf {
    let shipped = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .join("../config/firewall-agent.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(shipped).unwrap()).unwrap();
    c["subscribe"]["connect"] = serde_json::json!([endpoint]);
    c["subscribe"]["recv_hwm"] = (storm + 1000).into();
    c["publish"]["bind"] = format!("ipc://{}", dir.join("control.ipc").display()).into();
    c["caps"]["max_new_blocks_per_minute"] = 1_000_000.into();
    c["caps"]["max_set_elements"] = (storm * 2).into();
    c["on_exit"] = "remove".into();
    c["audit_dir"] = dir.join("audit").display().to_string().into();
    c["metrics"]["listen"] = METRICS.into();
    c["transport"]["root_secret_file"] = dir.join("root.secret").display().to_string().into();
    let path = dir.join("firewall-agent.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    path
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let storm: u32 = args
        .iter()
        .position(|a| a == "--storm")
        .and_then(|i| args.get(i + 1))
        .map_or(20_000, |s| s.parse().expect("--storm takes a number of detections"));
    if !rustix::process::geteuid().is_root() {
        eprintln!("block_throughput needs root (a network namespace with nftables); skipped");
        return;
    }
    let ns = Netns(format!("mldbt{}", std::process::id()));
    assert!(Command::new("ip").args(["netns", "add", &ns.0]).status().unwrap().success());
    assert!(
        Command::new("ip")
            .args(["-n", &ns.0, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success()
    );
    let dir = tempfile::tempdir().unwrap();
    RootSecret::from_bytes([7; 32]).write_new(&dir.path().join("root.secret")).unwrap();
    let endpoint = format!("ipc://{}", dir.path().join("detections.ipc").display());
    let config = config(dir.path(), &endpoint, storm);

    let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([7; 32]), 1));
    let ctx = zmq::Context::new();
    let mut registry = mld_telemetry::component_registry("bench");
    let mut options = PublisherOptions::new(endpoint.as_str());
    options.send_hwm = storm + 1000;
    let mut publisher = Publisher::bind(&ctx, ring, &options, &mut registry).unwrap();
    let _agent = Agent(
        Command::new("ip")
            .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_firewall-agent"), "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        publisher.wait_for_subscriber(Topic::Detection, Duration::from_secs(20)).unwrap(),
        "firewall-agent never subscribed: {}",
        std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
    );
    let txns_before = metric(&ns.0, "mld_firewall_agent_nft_transactions_total").unwrap_or(0.0);

    let t0 = Instant::now();
    for i in 0..storm {
        assert_eq!(publisher.publish(&detection(i)).unwrap(), Publish::Sent, "dropped at the HWM");
    }
    let published = t0.elapsed();
    let deadline = Instant::now() + Duration::from_mins(2);
    let target = f64::from(storm);
    while metric(&ns.0, "mld_firewall_agent_blocked_addresses").unwrap_or(0.0) < target {
        assert!(
            Instant::now() < deadline,
            "only {:?} of {storm} blocked after 120 s: {}",
            metric(&ns.0, "mld_firewall_agent_blocked_addresses"),
            std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let applied = t0.elapsed();
    let in_kernel = kernel_elements(&ns.0);
    let txns =
        metric(&ns.0, "mld_firewall_agent_nft_transactions_total").unwrap_or(0.0) - txns_before;
    assert_eq!(in_kernel, storm as usize, "the kernel's set holds {in_kernel} of {storm}");

    println!();
    println!("Block throughput: {storm} Detections, each naming a new source, into one agent");
    println!();
    println!(
        "| detections | published in (s) | all in the kernel's set after (s) | elements/s | nft transactions | elements per transaction |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {storm} | {:.3} | {:.3} | {:.0} | {txns:.0} | {:.0} |",
        published.as_secs_f64(),
        applied.as_secs_f64(),
        target / applied.as_secs_f64(),
        target / txns.max(1.0),
    );
}
