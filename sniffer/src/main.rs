//! `sniffer` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::validate_only_main::<mld_sniffer::Config>(mld_sniffer::NAME, mld_sniffer::ABOUT)
}
