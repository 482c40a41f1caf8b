//! What one detection costs the daemon, stage by stage, over real flow events of shared
//! captures (a spoofed SYN flood, web, DNS, lateral movement): opening and decoding the sealed
//! `FlowEvent`, scoring, encoding and sealing the `Detection` for the bus, and each output
//! (events.jsonl line, EVE records, sealed artifact; written to a temporary directory), then
//! all of it together, which is `ml-detector run`'s work per flow minus the ZeroMQ calls.
//!
//! `cargo bench -p mld-ml-detector --bench pipeline` (`make bench-detector`).
#![expect(clippy::unwrap_used, reason = "benchmark setup")]
#![allow(clippy::many_single_char_names, reason = "c, g, b, i, n, d")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mld_config::daemons::ml_detector::{FlushPolicy, ValidEventLog};
use mld_crypto_transport::{Channel, KeyRing, Opener, Sealer};
use mld_ml_detector::detection::Detector;
use mld_ml_detector::outputs::Outputs;
use mld_ml_detector::scoring::{Policy, Thresholds};
use mld_proto::FlowEvent;
use prost::Message as _;

mod common;

fn ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::new(mld_crypto_transport::RootSecret::from_bytes([7; 32]), 1))
}

fn outputs(dir: &std::path::Path) -> Outputs {
    let c = ValidEventLog {
        dir: dir.to_owned(),
        eve: true,
        artifacts: true,
        rotate_max_bytes: 16 << 20,
        rotate_max_age: Duration::from_hours(24),
        retain_files: 2,
        flush: FlushPolicy::Interval,
        flush_interval: Duration::from_secs(1),
        shed_benign_after: 0,
    };
    Outputs::open(&c, ring()).unwrap()
}

fn policy() -> Policy {
    Policy { thresholds: Thresholds::default(), internal_nets: Vec::new() }
}

#[allow(clippy::too_many_lines, reason = "one stage per block")]
fn bench(c: &mut Criterion) {
    let flows = common::flows();
    let n = flows.len();
    let mut sealer = Sealer::new(ring(), Channel::Flow).unwrap();
    let sealed: Vec<Vec<u8>> =
        flows.iter().map(|f| sealer.seal(&f.encode_to_vec()).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("detector_pipeline");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("receive_open_decode", |b| {
        // A fresh opener per pass over the events: the replay window refuses repeats.
        let mut opener = Opener::new(ring(), Channel::Flow);
        b.iter(|| {
            i = (i + 1) % n;
            if i == 0 {
                opener = Opener::new(ring(), Channel::Flow);
            }
            let o = opener.open(black_box(&sealed[i])).unwrap();
            black_box(FlowEvent::decode(o.payload.as_slice()).unwrap())
        });
    });
    let mut detector = Detector::new(policy());
    g.bench_function("detect", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(detector.detect(flows[i].clone(), 1))
        });
    });
    let detections: Vec<_> = flows.iter().map(|f| detector.detect(f.clone(), 1)).collect();
    let mut bus = Sealer::new(ring(), Channel::Detection).unwrap();
    g.bench_function("bus_encode_seal", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(bus.seal(&detections[i].encode_to_vec()).unwrap())
        });
    });
    let mut line = Vec::with_capacity(8192);
    g.bench_function("events_jsonl_line", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            line.clear();
            mld_ml_detector::record::write_line(&detections[i], None, &mut line);
            black_box(line.len())
        });
    });
    g.bench_function("eve_records", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            line.clear();
            black_box(mld_ml_detector::eve::write_records(&detections[i], &mut line))
        });
    });
    let mut out = outputs(dir.path());
    let now = SystemTime::now();
    g.bench_function("outputs_write_all", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            out.write(black_box(&detections[i]), now, false);
        });
    });
    let mut out = outputs(&dir.path().join("whole"));
    g.bench_function("whole_per_flow", |b| {
        let mut opener = Opener::new(ring(), Channel::Flow);
        b.iter(|| {
            i = (i + 1) % n;
            if i == 0 {
                opener = Opener::new(ring(), Channel::Flow);
            }
            let o = opener.open(&sealed[i]).unwrap();
            let flow = FlowEvent::decode(o.payload.as_slice()).unwrap();
            let d = detector.detect(flow, 1);
            black_box(bus.seal(&d.encode_to_vec()).unwrap());
            out.write(&d, now, false);
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
