//! `rag`: answers an analyst's questions about stored events with a local LLM, citing event ids.
//!
//! What it will do (issue #7): the analyst CLI `rag` (`ask`, `search`, `similar`, `events`, `chat`, `status`, `config …`) over the event store, answering with a local GGUF model through llama.cpp.
//!
//! What it does today: `rag validate --config FILE` checks a config against
//! [`Config`] and reports every problem at once (exit 0 when valid, 64 when not). The binary
//! has no `run` command yet, so it never pretends to work.
#![forbid(unsafe_code)]

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::rag::RagConfig as Config;

/// The binary's name.
pub const NAME: &str = "rag";

/// One line for `--help`.
pub const ABOUT: &str = "Answers an analyst's questions about stored events with a local LLM, citing event ids (this build: config validation only; the daemon arrives with issue #7)";
