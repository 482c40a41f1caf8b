//! `mld-train`: regenerates the four detectors' forests (Rust modules compiled into
//! ml-detector) and their model cards from the shared captures and the synthetic generator.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Train the ML detector's four RandomForests and write them as Rust source plus model cards.
///
/// Deterministic: the same data, seed and code give byte-identical outputs, which
/// `--check` (and the workspace tests) verify against the committed files.
#[derive(Parser)]
#[command(name = "mld-train", version)]
struct Args {
    /// The shared data folder (with LABELS.tsv and pcap/).
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Workspace root; outputs go to ml-detector/src/forests/ and docs/models/ under it.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Seed of the synthetic generator and the forests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write nothing; exit 1 if any output differs from the file on disk.
    #[arg(long)]
    check: bool,
    /// Instead of training: turn the real-tool corpus in DIR (`make corpus`) into the labelled
    /// model inputs training reads (`crates/train/data/corpus-flows.lz4` under --root). Needed
    /// after a change to the flow engine or the features; training says so.
    #[arg(long, value_name = "DIR")]
    corpus_flows: Option<PathBuf>,
    /// Which of the corpus's training-part flows to train on (ADR 0013: the committed models
    /// take none; the others are there to repeat the measurement).
    #[arg(long, value_enum, default_value_t = mld_train::corpus::Rows::None)]
    corpus_rows: mld_train::corpus::Rows,
}

/// `--corpus-flows`: extracts and writes the corpus flows atomically.
#[allow(clippy::print_stdout, reason = "a command-line tool")]
fn extract(args: &Args, corpus: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let real = mld_train::load_real(&args.data, |i, n, name| {
        if i % 100 == 0 {
            eprintln!("mld-train: shared capture {}/{n}: {name}", i + 1);
        }
    })?;
    let fp = mld_train::corpus::fingerprint(&real.flows);
    let flows = mld_train::corpus::extract(corpus, fp, |i, n, name| {
        eprintln!("mld-train: corpus capture {}/{n}: {name}", i + 1);
    })?;
    let bytes = mld_train::corpus::encode(&flows);
    let path = args.root.join(mld_train::corpus::FLOWS_FILE);
    let tmp = path.with_extension("tmp");
    std::fs::create_dir_all(path.parent().unwrap_or(&args.root))
        .and_then(|()| std::fs::write(&tmp, &bytes))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    let train = flows.flows.iter().filter(|f| !f.test).count();
    println!(
        "wrote {} ({} flows: {train} training, {} test; {} bytes)",
        path.display(),
        flows.flows.len(),
        flows.flows.len() - train,
        bytes.len()
    );
    Ok(())
}

#[allow(clippy::print_stdout, reason = "a command-line tool")]
fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(corpus) = &args.corpus_flows {
        return match extract(&args, corpus) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mld-train: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let outputs =
        match mld_train::outputs(&args.root, &args.data, args.seed, args.corpus_rows, |m| {
            eprintln!("mld-train: {m}");
        }) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("mld-train: error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
    let mut differ = 0;
    for (path, text) in &outputs {
        let same = std::fs::read_to_string(path).is_ok_and(|t| t == *text);
        if args.check {
            if !same {
                differ += 1;
                println!("differs: {}", path.display());
            }
            continue;
        }
        // Atomic: a crash never leaves half a model.
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::create_dir_all(path.parent().unwrap_or(&args.root))
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, path))
        {
            eprintln!("mld-train: error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{} {}", if same { "unchanged" } else { "wrote" }, path.display());
    }
    if differ > 0 {
        eprintln!(
            "mld-train: {differ} output(s) differ from the committed files; run `make train`"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
