//! `ml-detector` binary: see the library docs.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    mld_daemon::validate_only_main::<mld_ml_detector::Config>(
        mld_ml_detector::NAME,
        mld_ml_detector::ABOUT,
    )
}
