//! `firewall-agent` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::validate_only_main::<mld_firewall_agent::Config>(
        mld_firewall_agent::NAME,
        mld_firewall_agent::ABOUT,
    )
}
