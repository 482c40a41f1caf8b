//! The real model from `make setup`: embeddings are unit length, deterministic, and place
//! paraphrases closer than unrelated sentences (a broken encoder scores near-random here).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use mld_embed::{DEFAULT_MODEL_DIR, Embedder, Error, dot};

fn model() -> Embedder {
    Embedder::load(Path::new(DEFAULT_MODEL_DIR))
        .unwrap_or_else(|e| panic!("{e}: the embedding model comes with `make setup`"))
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let m = model();
    assert_eq!(m.dim(), 384);
    let cases = [
        ("A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell."),
        (
            "Which hosts scanned our network?",
            "port scan from an external address",
            "a large file upload to a backup server",
        ),
        (
            "brute force login attempts against ssh",
            "many failed password guesses on the secure shell service",
            "a DNS lookup for a news website",
        ),
        (
            "flood of SYN packets taking the web server down",
            "denial of service attack",
            "an analyst reading a report",
        ),
    ];
    for (a, near, far) in cases {
        let (a_, n_, f_) = (m.embed(a), m.embed(near), m.embed(far));
        for v in [&a_, &n_, &f_] {
            assert!((dot(v, v) - 1.0).abs() < 1e-4);
        }
        let (sn, sf) = (dot(&a_, &n_), dot(&a_, &f_));
        assert!(sn > sf + 0.1, "{a:?}: {near:?} {sn:.3} vs {far:?} {sf:.3}");
    }
    assert_eq!(m.embed("same text"), m.embed("same text"));
    assert!(dot(&m.embed("Port SCAN"), &m.embed("port scan")) > 0.9999);
}

#[test]
fn tokens_follow_the_vocabulary() {
    let m = model();
    // [CLS] … [SEP] with BERT's uncased vocabulary ids.
    let ids = m.tokens("Hello, world!");
    assert_eq!(ids, [101, 7592, 1010, 2088, 999, 102]);
    assert_eq!(m.tokens(&"word ".repeat(1000)).len(), mld_embed::MAX_TOKENS);
}

#[test]
fn a_missing_or_broken_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedder::load(dir.path()).unwrap_err();
    assert!(matches!(e, Error::Read { .. }), "{e}");
    assert!(e.to_string().contains("tokenizer.json") && e.to_string().contains("make setup"));
    let src = Path::new(DEFAULT_MODEL_DIR);
    for f in ["tokenizer.json", "config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("model.safetensors"), b"not a model").unwrap();
    let e = Embedder::load(dir.path()).unwrap_err();
    assert!(matches!(e, Error::Format { .. }), "{e}");
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}
