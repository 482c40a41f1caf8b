//! `make bench-rag`: the RAG layer's numbers on this machine, as tables.
//!
//! 1. Ingest: event-log lines (from ml-detector's analysis of shared captures, repeated with
//!    new detection ids) into the store, 512 per transaction, then the index update.
//! 2. Feature-vector search at 10 k, 100 k and 1 M events: the vectors are the captures'
//!    real flow vectors with noise at two spreads ([`SPREADS`]); latency over
//!    200 queries, recall@10 of the index against an exact search (ties at the 10th score
//!    count as found) and the 10th gap (how much lower the cosine similarity of the 10th
//!    neighbour found is than the exact 10th's, mean over queries), for several numbers of
//!    IVF lists probed.
//! 3. `rag ask`: model load, retrieval, time to first token and total, with `SmolLM2`.
//!
//! Environment: `RAG_BENCH_SIZES` (default `10000,100000,1000000`), `RAG_BENCH_INGEST`
//! (default 100000 lines).
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    reason = "a benchmark"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mld_vindex::{Kind, Source, VectorIndex};
use serde_json::Value;

const CAPTURES: [&str; 4] = [
    "pcap/scan/ndpi-synscan.pcap",
    "pcap/bruteforce/slips-ssh-bruteforce.pcap",
    "pcap/benign/ndpi-443-chrome.pcap",
    "pcap/benign/ndpi-ssh.pcap",
];

/// Lists probed per IVF search, swept to show recall against latency.
const NPROBES: [u32; 3] = [16, 64, 128];

/// Noise added to each component of a real vector (uniform in ±spread, then normalised):
/// 0.005 keeps copies of a flow close, as repeated flows of one activity are; 0.05 (about
/// 0.3 in norm, over unit vectors) makes a diffuse cloud, the hard case for an inverted file.
const SPREADS: [f32; 2] = [0.005, 0.05];

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// A tiny deterministic generator (xorshift) for the noise.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        #[allow(clippy::cast_precision_loss, reason = "noise")]
        let u = (self.0 >> 40) as f32 / (1u64 << 24) as f32;
        u * 2.0 - 1.0
    }
}

struct Synthetic {
    dim: usize,
    vectors: Vec<f32>,
}

impl Source for Synthetic {
    fn key(&self) -> Result<Option<(String, usize)>, mld_vindex::Error> {
        Ok(Some(("bench".into(), self.dim)))
    }

    fn rows(
        &self,
        _key: &str,
        after: i64,
        each: &mut dyn FnMut(i64, &[f32]),
    ) -> Result<(), mld_vindex::Error> {
        for (i, v) in self.vectors.chunks_exact(self.dim).enumerate() {
            let id = i64::try_from(i).unwrap() + 1;
            if id > after {
                each(id, v);
            }
        }
        Ok(())
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in v.iter_mut() {
        *x /= n;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = CAPTURES.iter().map(|f| data().join(f)).collect();
    let mut buf = Vec::new();
    mld_ml_detector::offline::analyze(
        &files,
        &mld_ml_detector::scoring::Policy::default(),
        &mut buf,
        |_, _| {},
    )
    .unwrap();
    let lines: Vec<Value> =
        String::from_utf8(buf).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    println!("{} Detections from {} shared captures\n", lines.len(), CAPTURES.len());

    // 1. Ingest.
    let n_ingest: usize =
        std::env::var("RAG_BENCH_INGEST").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let store_path = dir.path().join("events.db");
    let mut store = mld_eventstore::Store::open(&store_path).unwrap();
    let texts: Vec<String> = (0..n_ingest)
        .map(|i| {
            let mut l = lines[i % lines.len()].clone();
            l["detection_id"] = Value::String(format!("bench-{i}"));
            l.to_string()
        })
        .collect();
    let t0 = Instant::now();
    for chunk in texts.chunks(512) {
        store.insert_lines(chunk, None).unwrap();
    }
    let ingest = t0.elapsed();
    let embedder = mld_embed::Embedder::load(Path::new(mld_embed::DEFAULT_MODEL_DIR)).unwrap();
    let t1 = Instant::now();
    let summaries = store.summaries(0).unwrap();
    for s in &summaries {
        let _ = embedder.embed(&s.text);
    }
    let embed = t1.elapsed();
    let t2 = Instant::now();
    let (fx, _) =
        VectorIndex::open(dir.path(), Kind::Features, &mld_vindex::Features(&store)).unwrap();
    let index = t2.elapsed();
    #[allow(clippy::cast_precision_loss, reason = "a rate")]
    let rate = n_ingest as f64 / ingest.as_secs_f64();
    println!("## Ingest (store: SQLite WAL, 512 events per transaction)\n");
    println!("| events | store | events/s | distinct summaries | embed them | feature index |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {n_ingest} | {:.2} s | {rate:.0} | {} | {:.2} s ({:.0} ms each) | {:.2} s ({}) |\n",
        ingest.as_secs_f64(),
        summaries.len(),
        embed.as_secs_f64(),
        ms(embed) / summaries.len().max(1) as f64,
        index.as_secs_f64(),
        fx.meta().factory
    );

    // 2. Vector search.
    let base: Vec<Vec<f32>> = lines
        .iter()
        .filter_map(|l| {
            let o = l.as_object()?;
            let (v, _) = mld_eventstore::event::vector(o);
            (!v.is_empty()).then_some(v)
        })
        .collect();
    let dim = base[0].len();
    let sizes: Vec<usize> = std::env::var("RAG_BENCH_SIZES").ok().map_or_else(
        || vec![10_000, 100_000, 1_000_000],
        |s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
    );
    println!("## Feature-vector search (dimension {dim}, k = 10, 200 queries, one thread)\n");
    println!(
        "| events | noise | index | lists probed | build | p50 | p99 | recall@10 | 10th gap |"
    );
    println!("|---:|---:|---|---|---:|---:|---:|---:|---:|");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (n, spread) in sizes.iter().flat_map(|&n| SPREADS.map(|s| (n, s))) {
        let mut vectors = Vec::with_capacity(n * dim);
        for i in 0..n {
            let mut v = base[i % base.len()].clone();
            for x in &mut v {
                *x += spread * rng.unit();
            }
            normalise(&mut v);
            vectors.extend_from_slice(&v);
        }
        let src = Synthetic { dim, vectors };
        let t = Instant::now();
        let mut ix = VectorIndex::build(dir.path(), Kind::Features, &src, "bench", dim).unwrap();
        let build = t.elapsed();
        let queries: Vec<Vec<f32>> = (0..200)
            .map(|q| src.vectors[(q * 7919 % n) * dim..(q * 7919 % n + 1) * dim].to_vec())
            .collect();
        // The exact 10th-best score of each query, by brute force over the same vectors.
        let kths: Vec<f32> = queries
            .iter()
            .map(|q| {
                let mut scores: Vec<f32> =
                    src.vectors.chunks_exact(dim).map(|v| mld_embed::dot(q, v)).collect();
                scores.select_nth_unstable_by(9, |a, b| b.total_cmp(a));
                scores[..10].iter().copied().fold(f32::INFINITY, f32::min)
            })
            .collect();
        let probes: &[u32] = if ix.meta().factory.starts_with("IVF") { &NPROBES } else { &[0] };
        for &nprobe in probes {
            if nprobe > 0 {
                ix.set_nprobe(nprobe).unwrap();
            }
            let mut times = Vec::new();
            let mut hit = 0usize;
            let mut gap = 0.0;
            for (q, kth) in queries.iter().zip(&kths) {
                let t = Instant::now();
                let got = ix.search(q, 10).unwrap();
                times.push(t.elapsed());
                // Ties at the 10th score count as found.
                hit += got.iter().filter(|(_, s)| *s >= kth - 1e-6).count().min(10);
                let found = got.iter().map(|(_, s)| *s).fold(f32::INFINITY, f32::min);
                gap += f64::from((kth - found).max(0.0));
            }
            times.sort();
            #[allow(clippy::cast_precision_loss, reason = "a ratio")]
            let recall = hit as f64 / (10.0 * queries.len() as f64);
            #[allow(clippy::cast_precision_loss, reason = "a mean")]
            let gap = gap / queries.len() as f64;
            let probe = if nprobe == 0 {
                "all (exact)".to_string()
            } else if nprobe == mld_vindex::NPROBE {
                format!("{nprobe} (default)")
            } else {
                nprobe.to_string()
            };
            println!(
                "| {n} | {spread} | {} | {probe} | {:.1} s | {:.3} ms | {:.3} ms | {recall:.3} | {gap:.4} |",
                ix.meta().factory,
                build.as_secs_f64(),
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99)),
            );
        }
    }

    // 3. rag ask.
    println!("\n## `rag ask` (SmolLM2-135M-Instruct Q4_1, greedy, 2 threads)\n");
    drop(store);
    let config = dir.path().join("rag.json");
    std::fs::write(&config, serde_json::json!({ "store_path": store_path }).to_string()).unwrap();
    let rag = Path::new(env!("CARGO_BIN_EXE_rag"));
    println!(
        "| question | events | load | retrieval | prompt tokens | first token | answer tokens | total |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for q in ["which hosts were scanning?", "summarise the ssh brute force activity"] {
        let o = std::process::Command::new(rag)
            .arg("--config")
            .arg(&config)
            .args(["ask", "--json", q])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let t = &v["timings_ms"];
        println!(
            "| {q} | {} | {} ms | {} ms | {} | {} ms | {} | {} ms |",
            v["events"].as_array().unwrap().len(),
            t["load"],
            t["retrieval"],
            v["prompt_tokens"],
            t["first_token"],
            v["answer_tokens"],
            t["answer"]
        );
    }
}
