//! `etcd-server` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::validate_only_main::<mld_etcd_server::Config>(
        mld_etcd_server::NAME,
        mld_etcd_server::ABOUT,
    )
}
