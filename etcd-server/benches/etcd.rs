//! etcd-server against a real etcd 3.4 on this machine, in one run: put, get and watch
//! latency, concurrent put throughput, and the control plane's "config change → applied"
//! latency. Prints a Markdown table.
//!
//! `cargo bench --workspace --bench etcd [-- --ops N]` (`make bench-etcd`).
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "bench"
)]

#[path = "../tests/it/server.rs"]
#[allow(dead_code, reason = "the tests' server harness, of which the bench uses a part")]
mod server;

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType};
use mld_config::daemons::ml_detector::{MlDetector, MlDetectorConfig};
use mld_control::{ControlPlane, Options, keys, sealed};
use mld_telemetry::prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

struct Row {
    what: &'static str,
    ours: String,
    etcd: String,
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!("{:.2} / {:.2} ms", ms(at(0.5)), ms(at(0.99)))
}

async fn put_latency(c: &mut Client, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        c.put(format!("/bench/put/{}", i % 100), vec![b'x'; 256], None).await.unwrap();
        out.push(t.elapsed());
    }
    out
}

async fn get_latency(c: &mut Client, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        c.get(format!("/bench/put/{}", i % 100), None).await.unwrap();
        out.push(t.elapsed());
    }
    out
}

async fn watch_latency(c: &mut Client, n: usize) -> Vec<Duration> {
    let (_requests, mut stream) = c.watch("/bench/watch", None).await.unwrap().split();
    stream.message().await.unwrap().unwrap(); // created
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        c.put("/bench/watch", i.to_string(), None).await.unwrap();
        loop {
            let r = stream.message().await.unwrap().unwrap();
            if r.events().iter().any(|e| e.event_type() == EventType::Put) {
                break;
            }
        }
        out.push(t.elapsed());
    }
    out
}

/// Puts per second from `tasks` clients writing at once.
async fn throughput(endpoint: &str, tasks: usize, per_task: usize) -> f64 {
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let mut c = Client::connect([endpoint], None).await.unwrap();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                c.put(format!("/bench/tp/{t}/{i}"), vec![b'y'; 256], None).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    (tasks * per_task) as f64 / start.elapsed().as_secs_f64()
}

/// From the start of the put of a new active config to its arrival in the daemon's apply.
async fn config_applied(endpoint: &str, n: usize) -> Vec<Duration> {
    let mut local = MlDetectorConfig::default();
    local.etcd.endpoints = vec![format!("http://{endpoint}")];
    let valid: MlDetector = mld_config::DaemonConfig::validate(&local).unwrap();
    let ring = mld_test_utils::key_ring(1, 1);
    let (tx, rx) = mpsc::channel::<Instant>();
    let tx = std::sync::Mutex::new(tx);
    let plane = ControlPlane::<MlDetectorConfig>::new(
        Options {
            component: "ml-detector",
            instance: "bench".into(),
            version: "bench",
            etcd: valid.etcd,
            ring: Arc::clone(&ring),
            apply: Box::new(move |_| {
                tx.lock().unwrap().send(Instant::now()).unwrap();
                Ok(())
            }),
        },
        &local,
        &mut Registry::default(),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(plane.run(stop.clone()));
    let mut c = Client::connect([endpoint], None).await.unwrap();
    let registration = keys::component("ml-detector", "bench");
    while c.get(registration.as_str(), None).await.unwrap().kvs().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut config = local.clone();
        config.verdict.malicious_score = 0.81 + (i % 2) as f64 * 0.1; // each differs from the last
        let stored = sealed::seal(&ring, &serde_json::to_string(&config).unwrap()).unwrap();
        let t = Instant::now();
        c.put(keys::active("ml-detector"), stored, None).await.unwrap();
        let applied = tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(5)))
            .expect("the change was applied within 5 s");
        out.push(applied - t);
    }
    stop.cancel();
    task.await.unwrap();
    out
}

async fn measure(endpoint: &str, ops: usize) -> Vec<String> {
    let mut c = server::connect(endpoint).await;
    vec![
        percentiles(put_latency(&mut c, ops).await),
        percentiles(get_latency(&mut c, ops).await),
        percentiles(watch_latency(&mut c, ops / 2).await),
        format!("{:.0} puts/s", throughput(endpoint, 8, ops / 4).await),
        percentiles(config_applied(endpoint, ops / 10).await),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ops = args
        .iter()
        .position(|a| a == "--ops")
        .and_then(|i| args.get(i + 1))
        .map_or(1000, |n| n.parse().expect("--ops N"));
    let dir = tempfile::tempdir().unwrap();
    let port = mld_test_utils::free_port();
    let _ours = server::start(dir.path(), port);
    let (_etcd, etcd_endpoint) = server::real_etcd(dir.path());
    let ours = measure(&format!("127.0.0.1:{port}"), ops).await;
    let etcd = measure(&etcd_endpoint, ops).await;
    let what = [
        "put latency p50 / p99 (256 B, sequential)",
        "get latency p50 / p99 (sequential)",
        "watch: put → event p50 / p99",
        "put throughput (8 clients)",
        "config change → applied p50 / p99",
    ];
    let rows: Vec<Row> = what
        .into_iter()
        .zip(ours.into_iter().zip(etcd))
        .map(|(what, (ours, etcd))| Row { what, ours, etcd })
        .collect();
    println!("ops per latency row: {ops} (watch {}, config {})\n", ops / 2, ops / 10);
    println!("| measure | etcd-server | etcd 3.4 |");
    println!("|---|---:|---:|");
    for r in rows {
        println!("| {} | {} | {} |", r.what, r.ours, r.etcd);
    }
}
