//! `rag-ingester` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::run_main_with::<
        mld_rag_ingester::daemon::Ingester,
        mld_rag_ingester::backfill::Command,
    >(std::env::args_os(), mld_rag_ingester::backfill::run)
    .into()
}
