//! `rag`: answers an analyst's questions about stored events with a local LLM, citing event
//! ids (DESIGN §7).
//!
//! - `rag ask "which hosts were blocked for scanning yesterday"`: the question's time range,
//!   hosts, ports, verdicts, forests and rule ids become SQL filters ([`query`]); its topic
//!   is matched against event summaries in the text index ([`retrieve`]); the local GGUF
//!   model ([`llm`]) answers from the retrieved events only, citing their ids, and the
//!   command checks every citation against what was retrieved.
//! - `rag search` (retrieval without the model), `rag similar ID` (feature-vector
//!   neighbours), `rag events` (filters, table or JSON), `rag chat` (multi-turn).
//!
//! - `rag status`, `rag config get|set|diff|rollback`, `rag accelerate|decelerate`: the
//!   deployment through etcd ([`admin`]).
//!
//! The store is opened read-only; the indices rag-ingester saved are loaded and, when behind
//! the store, brought up to date in memory.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod llm;
pub mod query;
pub mod retrieve;

/// This tool's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::rag::RagConfig as Config;

/// The binary's name.
pub const NAME: &str = "rag";

/// One line for `--help`.
pub const ABOUT: &str = "Answers an analyst's questions about stored events with a local LLM that cites event ids; searches, lists and compares events";
