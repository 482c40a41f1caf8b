//! All four forests for one flow event (the per-event cost of ML scoring), and batch
//! throughput, over real flows of shared captures (a spoofed SYN flood, web, DNS, lateral
//! movement), so the paths walked are the ones real traffic takes.
//!
//! `cargo bench -p mld-ml-detector --bench forests` (`make bench-detector`). The lock-step walk
//! (`forests`, what ml-detector runs) and the tree-by-tree reference are measured side by side.
#![allow(clippy::many_single_char_names, reason = "c, b, g, i, t, n")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mld_flow::vector::{self, LEN};
use mld_ml_detector::scoring::{Thresholds, combine, forests, forests_tree_by_tree};

mod common;

fn inputs() -> Vec<[f32; LEN]> {
    common::flows().iter().map(vector::of_event).collect()
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
