//! `firewall-agent`: blocks the sources named in Detections in nftables table
//! `inet mldefender` (DESIGN §6).
//!
//! - [`policy`]: which Detections lead to a block (verdict and score thresholds, monitor-only
//!   detectors), for how long (escalating for repeat offenders), and what is never blocked
//!   (allowlist, the host's own and gateway addresses, loopback, multicast, broadcast,
//!   link-local), with caps on new blocks per minute and on the set size.
//! - [`nft`]: the table (IPv4/IPv6 block sets with per-element timeouts, allow sets, rules in
//!   the input and forward hooks) and batched element updates, each one `nft -f -` transaction.
//! - [`audit`]: the append-only JSONL audit log of every action; blocks are rebuilt from it.
//! - [`daemon`]: `firewall-agent run`.
//!
//! `firewall-agent status --config FILE` lists the blocks in force with their reasons.
#![forbid(unsafe_code)]

pub mod audit;
pub mod daemon;
pub mod local;
pub mod nft;
pub mod policy;

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::firewall_agent::FirewallAgentConfig as Config;

/// The binary's name.
pub const NAME: &str = "firewall-agent";

/// One line for `--help`.
pub const ABOUT: &str = "Blocks the sources named in Detections (detection.v1) in nftables table inet mldefender, with an allowlist, caps and an audit log. Also: `firewall-agent status --help` (blocks in force)";
