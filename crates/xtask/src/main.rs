//! Repository tasks, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `proto`: regenerate `proto/src/gen/` from `proto/proto/*.proto` (needs `protoc`).
//! - `schemas`: regenerate the JSON Schema of every daemon config into `docs/config/`.
//!
//! Tests in `mld-proto` and `mld-config` fail when the committed files differ from what these
//! tasks would write, so run them after changing a `.proto` file or a config struct.
#![forbid(unsafe_code)]

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "ML Defender repository tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Regenerate the prost code in proto/src/gen/ (needs protoc).
    Proto,
    /// Regenerate docs/config/<daemon>.schema.json for every daemon config.
    Schemas,
}

fn repo_root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
}

fn main() -> std::process::ExitCode {
    match run(&Cli::parse().task) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(task: &Task) -> Result<()> {
    match task {
        Task::Proto => {
            let tmp = tempfile::tempdir().context("creating a temporary directory")?;
            let crate_dir = repo_root().join("proto");
            let generated = mld_proto::codegen::generate(&crate_dir, tmp.path())
                .context("running prost-build")?;
            let target = mld_proto::codegen::committed_file(&crate_dir);
            fs::create_dir_all(target.parent().context("generated file has a parent")?)?;
            fs::copy(&generated, &target)
                .with_context(|| format!("writing {}", target.display()))?;
            eprintln!("wrote {}", target.display());
        }
        Task::Schemas => {
            let dir = repo_root().join("docs/config");
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for c in mld_config::COMPONENTS {
                let path = dir.join(format!("{}.schema.json", c.name));
                fs::write(&path, (c.schema)())
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
