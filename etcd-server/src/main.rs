//! `etcd-server` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::run_main_with::<mld_etcd_server::daemon::EtcdServer, mld_etcd_server::admin::Admin>(
        std::env::args_os(),
        mld_etcd_server::admin::run,
    )
    .into()
}
