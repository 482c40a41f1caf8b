//! `rag` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::validate_only_main::<mld_rag_consumer::Config>(
        mld_rag_consumer::NAME,
        mld_rag_consumer::ABOUT,
    )
}
