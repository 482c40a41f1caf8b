//! `sniffer`: captures packets (XDP, `AF_PACKET` or pcap), builds flows and features, runs the fast detector and publishes `FlowEvents` on flow.v1.
//!
//! What it will do (issue #3): capture (XDP program in `sniffer-ebpf/`, `AF_PACKET` fallback, pcap files), canonical bidirectional flows, `CICFlowMeter` features, per-host context windows and the rule-based fast detector, publishing sealed `FlowEvent`s on `flow.v1`.
//!
//! What it does today: `sniffer validate --config FILE` checks a config against
//! [`Config`] and reports every problem at once (exit 0 when valid, 64 when not). The binary
//! has no `run` command yet, so it never pretends to work.
#![forbid(unsafe_code)]

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::sniffer::SnifferConfig as Config;

/// The binary's name.
pub const NAME: &str = "sniffer";

/// One line for `--help`.
pub const ABOUT: &str = "Captures packets (XDP, AF_PACKET or pcap), builds flows and features, runs the fast detector and publishes FlowEvents on flow.v1 (this build: config validation only; the daemon arrives with issue #3)";
