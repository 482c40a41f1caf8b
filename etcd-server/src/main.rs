//! `etcd-server` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::main::<mld_etcd_server::daemon::EtcdServer>()
}
