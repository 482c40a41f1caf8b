//! `firewall-agent` binary: see the library docs.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mld_firewall_agent::audit::{now_ns, read_all, replay, replay_dry_run};
use mld_firewall_agent::nft::Nft;
use mld_firewall_agent::policy::Block;

/// List the blocks and the service protections in force (from the audit log), with reasons and
/// expiry, and whether each is in the kernel's sets. Blocks decided in `dry_run` are listed too, marked "dry run" (not in
/// the kernel): the agent counts them in its `blocked_addresses` metric.
#[derive(Parser)]
#[command(name = "firewall-agent status")]
struct Status {
    /// The firewall-agent config (its `audit_dir` and `nft`).
    #[arg(long, short)]
    config: PathBuf,
    /// One JSON object per block or protection (`kind`) instead of tables.
    #[arg(long)]
    json: bool,
}

#[allow(clippy::print_stdout, reason = "the listing is the command's output")]
fn status(args: Vec<String>) -> anyhow::Result<()> {
    let s = Status::parse_from(args);
    let c = mld_config::load::<mld_firewall_agent::Config>(&s.config)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (records, bad) = read_all(&c.audit_dir)
        .map_err(|e| anyhow::anyhow!("reading the audit log in {}: {e}", c.audit_dir.display()))?;
    let now = now_ns();
    let state = replay(&records, now);
    let nft = Nft::new(&c.nft);
    let kernel: Option<Vec<std::net::IpAddr>> =
        match (nft.list_addrs("block4"), nft.list_addrs("block6")) {
            (Ok(mut a), Ok(b)) => {
                a.extend(b);
                Some(a)
            }
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("firewall-agent status: cannot read the kernel's sets: {e}");
                None
            }
        };
    // Real blocks first; a dry-run decision for an address blocked for real is not repeated.
    let dry_state = replay_dry_run(&records, now);
    let mut blocks: Vec<(&Block, bool)> = state.active().map(|b| (b, false)).collect();
    blocks.extend(
        dry_state.active().filter(|d| !state.active().any(|b| b.addr == d.addr)).map(|b| (b, true)),
    );
    blocks.sort_by_key(|(b, dry)| (*dry, b.until_ns, b.addr));
    let dry = blocks.iter().filter(|(_, dry)| *dry).count();
    if s.json {
        for (b, dry_run) in &blocks {
            let in_kernel =
                if *dry_run { Some(false) } else { kernel.as_ref().map(|k| k.contains(&b.addr)) };
            let v = serde_json::json!({
                "kind": "block",
                "addr": b.addr,
                "until": mld_logfile::time::timestamp(b.until_ns),
                "seconds_left": b.until_ns.saturating_sub(now) / 1_000_000_000,
                "offence": b.offence,
                "detector": b.detector,
                "detection_id": b.detection_id,
                "reason": b.reason,
                "dry_run": dry_run,
                "in_kernel": in_kernel,
            });
            println!("{v}");
        }
    } else {
        let dry_note = if dry > 0 {
            format!(", {dry} of them in dry run, not in the kernel")
        } else {
            String::new()
        };
        println!("{} blocked{dry_note} (audit log {}):", blocks.len(), c.audit_dir.display());
        println!(
            "{:<40} {:<32} {:>8} {:>7} {:<9} {:<9} reason",
            "address", "until", "left (s)", "offence", "detector", "in kernel"
        );
        for (b, dry_run) in &blocks {
            let in_kernel = if *dry_run {
                "dry run"
            } else {
                kernel
                    .as_ref()
                    .map_or("unknown", |k| if k.contains(&b.addr) { "yes" } else { "NO" })
            };
            println!(
                "{:<40} {:<32} {:>8} {:>7} {:<9} {:<9} {}",
                b.addr.to_string(),
                mld_logfile::time::timestamp(b.until_ns),
                b.until_ns.saturating_sub(now) / 1_000_000_000,
                b.offence,
                b.detector,
                in_kernel,
                b.reason
            );
        }
    }
    print_protections(&c, &state, &nft, now, s.json);
    if bad > 0 {
        eprintln!("firewall-agent status: {bad} audit lines could not be read");
    }
    Ok(())
}

/// The services protected now (from the audit log), with their shield and whether the kernel
/// holds the element.
#[allow(clippy::print_stdout, reason = "the listing is the command's output")]
fn print_protections(
    c: &mld_config::daemons::firewall_agent::FirewallAgent,
    state: &mld_firewall_agent::policy::State,
    nft: &Nft,
    now: u64,
    json: bool,
) {
    use mld_firewall_agent::policy::Shield;
    let mut ps: Vec<_> = state.protected().collect();
    ps.sort_by_key(|p| (p.until_ns, p.service));
    if ps.is_empty() {
        return;
    }
    if !json {
        println!("{} services protected:", ps.len());
        println!("{:<48} {:<32} {:>8} {:<9} reason", "service", "until", "left (s)", "in kernel");
    }
    for p in ps {
        // Either shield, whichever set holds it (the SYN proxy can fall back to a limit).
        let candidates: &[Shield] = if p.service.proto == 6 {
            &[Shield::Synproxy, Shield::Limit]
        } else {
            &[Shield::Limit]
        };
        let held = candidates.iter().copied().find_map(|shield| {
            let (set, element) = mld_firewall_agent::nft::element(&p.service, shield);
            match nft.list(&set) {
                Ok(elements) => elements.contains(&element).then_some(Ok(shield)),
                Err(e) => Some(Err(e)),
            }
        });
        let in_kernel = match &held {
            Some(Ok(shield)) => shield.as_str(),
            Some(Err(_)) => "unknown",
            None if c.dry_run => "dry run",
            None => "NO",
        };
        if json {
            let v = serde_json::json!({
                "kind": "protection",
                "service": p.service.to_string(),
                "addr": p.service.addr,
                "proto": p.service.proto_name(),
                "port": p.service.port,
                "until": mld_logfile::time::timestamp(p.until_ns),
                "seconds_left": p.until_ns.saturating_sub(now) / 1_000_000_000,
                "detection_id": p.detection_id,
                "reason": p.reason,
                "in_kernel": in_kernel,
            });
            println!("{v}");
        } else {
            println!(
                "{:<48} {:<32} {:>8} {:<9} {}",
                p.service.to_string(),
                mld_logfile::time::timestamp(p.until_ns),
                p.until_ns.saturating_sub(now) / 1_000_000_000,
                in_kernel,
                p.reason
            );
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|c| c == "status") {
        args.remove(1);
        "firewall-agent status".clone_into(&mut args[0]);
        return match status(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("firewall-agent status: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    mld_daemon::main::<mld_firewall_agent::daemon::FirewallDaemon>()
}
