//! `firewall-agent`: blocks attackers named in Detections in nftables table inet mldefender.
//!
//! What it will do (issue #6): the nftables table `inet mldefender` (block sets with timeouts, allowlist, caps, batched updates) driven by `detection.v1`, with an audit log.
//!
//! What it does today: `firewall-agent validate --config FILE` checks a config against
//! [`Config`] and reports every problem at once (exit 0 when valid, 64 when not). The binary
//! has no `run` command yet, so it never pretends to work.
#![forbid(unsafe_code)]

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::firewall_agent::FirewallAgentConfig as Config;

/// The binary's name.
pub const NAME: &str = "firewall-agent";

/// One line for `--help`.
pub const ABOUT: &str = "Blocks attackers named in Detections in nftables table inet mldefender (this build: config validation only; the daemon arrives with issue #6)";
