//! `rag-ingester`: stores every Detection in `SQLite` and FAISS for the rag CLI.
//!
//! What it will do (issue #7): ingestion of `detection.v1` into `SQLite` (WAL) and two FAISS indices, idempotent and crash-safe.
//!
//! What it does today: `rag-ingester validate --config FILE` checks a config against
//! [`Config`] and reports every problem at once (exit 0 when valid, 64 when not). The binary
//! has no `run` command yet, so it never pretends to work.
#![forbid(unsafe_code)]

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::rag_ingester::RagIngesterConfig as Config;

/// The binary's name.
pub const NAME: &str = "rag-ingester";

/// One line for `--help`.
pub const ABOUT: &str = "Stores every Detection in SQLite and FAISS for the rag CLI (this build: config validation only; the daemon arrives with issue #7)";
