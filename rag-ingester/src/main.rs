//! `rag-ingester` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::validate_only_main::<mld_rag_ingester::Config>(
        mld_rag_ingester::NAME,
        mld_rag_ingester::ABOUT,
    )
}
