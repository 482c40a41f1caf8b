//! `rag-ingester`: stores every Detection in the RAG event store ([`mld_eventstore`], `SQLite`
//! in WAL mode) for the `rag` CLI (DESIGN §7).
//!
//! `rag-ingester run` subscribes to `detection.v1` and writes each Detection as its event-log
//! line ([`mld_events`]), in batches of `batch_max_events` committed at least every
//! `batch_max_delay_ms`; `rag-ingester backfill LOG...` loads event logs ml-detector wrote
//! (`events.jsonl` and its rotated files), resuming where an earlier backfill stopped. Both are
//! idempotent: a detection id is stored once, whoever delivers it and how often.
//!
//! Both keep the two FAISS vector indices beside the store ([`indices`]): feature vectors per
//! event, and all-MiniLM-L6-v2 embeddings of event summaries; `rag-ingester reindex` brings
//! them up to date (or rebuilds them) from the store alone.
#![forbid(unsafe_code)]

pub mod backfill;
pub mod daemon;
pub mod indices;

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::rag_ingester::RagIngesterConfig as Config;

/// The binary's name.
pub const NAME: &str = "rag-ingester";

/// One line for `--help`.
pub const ABOUT: &str = "Stores every Detection from detection.v1 (or from event logs: `backfill`) in the RAG event store (SQLite) for the rag CLI";
