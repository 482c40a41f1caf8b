//! Seal + open round trip of one envelope, per payload size.
//!
//! `cargo bench -p mld-crypto-transport --bench seal_open`; for the x86-64-v3 build add
//! `RUSTFLAGS="-C target-cpu=x86-64-v3"`. `bench/crypto.sh` runs both and prints the table.
//!
//! Payloads are random bytes, the worst case: LZ4 is attempted and discarded on every seal.
//! The `compressible` group uses repetitive bytes, where LZ4 is kept.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mld_crypto_transport::{Channel, KeyRing, Opener, RootSecret, Sealer};

const SIZES: [usize; 4] = [64, 512, 1400, 16 * 1024];

fn random_payload(len: usize) -> Vec<u8> {
    // xorshift: deterministic and incompressible enough for LZ4.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn bench_group(c: &mut Criterion, name: &str, payload_for: fn(usize) -> Vec<u8>) {
    let ring = Arc::new(KeyRing::new(RootSecret::from_bytes([42; 32]), 1));
    let mut group = c.benchmark_group(name);
    for size in SIZES {
        let payload = payload_for(size);
        let mut sealer = Sealer::new(Arc::clone(&ring), Channel::Flow).unwrap();
        let mut opener = Opener::new(Arc::clone(&ring), Channel::Flow);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| {
                let sealed = sealer.seal(black_box(payload)).unwrap();
                black_box(opener.open(black_box(&sealed)).unwrap());
            });
        });
    }
    group.finish();
}

fn seal_open(c: &mut Criterion) {
    bench_group(c, "seal_open", random_payload);
    bench_group(c, "seal_open_compressible", |len| {
        b"flow 10.0.0.1:51000 -> 10.0.0.2:443 tcp ".iter().copied().cycle().take(len).collect()
    });
}

criterion_group!(benches, seal_open);
criterion_main!(benches);
