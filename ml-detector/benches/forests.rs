//! All four forests for one flow event (the per-event cost of ML scoring), and batch
//! throughput, over real flows of shared captures (a spoofed SYN flood, web, DNS, lateral
//! movement), so the paths walked are the ones real traffic takes.
//!
//! `cargo bench -p mld-ml-detector --bench forests` (`make bench-detector`). The lock-step walk
//! (`forests`, what ml-detector runs) and the tree-by-tree reference are measured side by side.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]
#![allow(clippy::many_single_char_names, reason = "c, b, g, i, t, n")]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mld_flow::vector::{self, LEN};
use mld_ml_detector::scoring::{Thresholds, combine, forests, forests_tree_by_tree};

fn inputs() -> Vec<[f32; LEN]> {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../shared/data/pcap");
    let mut out = Vec::new();
    for f in [
        "ddos/stopddos-pkt.TCP.synflood.spoofed.pcap",
        "benign/ndpi-443-chrome.pcap",
        "benign/ndpi-dns.pcap",
        "lateral/otrf-empire_psexec_dcerpc_tcp_svcctl.cap",
    ] {
        let run =
            mld_flow::offline::run_file(&root.join(f), mld_flow::offline::default_config("bench"))
                .unwrap();
        out.extend(run.flows.iter().take(256).map(vector::of_event));
    }
    out
}

fn bench(c: &mut Criterion) {
    let xs = inputs();
    let t = Thresholds::default();
    let mut g = c.benchmark_group("forests");
    let mut i = 0;
    g.bench_function("four_forests_one_event", |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            black_box(forests(black_box(&xs[i])))
        });
    });
    g.bench_function("four_forests_one_event_tree_by_tree", |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            black_box(forests_tree_by_tree(black_box(&xs[i])))
        });
    });
    g.bench_function("score_one_event_with_verdict", |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            black_box(combine(forests(black_box(&xs[i])), 0.0, &t))
        });
    });
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("batch", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for x in &xs {
                n += usize::from(forests(black_box(x))[0] > 0.5);
            }
            black_box(n)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
