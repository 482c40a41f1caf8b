//! `ml-detector` binary: see the library docs.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use mld_ml_detector::offline;
use mld_ml_detector::scoring::{Policy, Thresholds};

/// Verdict thresholds and internal networks: from a config file (`verdict`, `internal_nets`),
/// or flags, or the defaults.
#[derive(clap::Args)]
struct ThresholdArgs {
    /// An ml-detector config file whose `verdict` thresholds and `internal_nets` apply.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Final score at or above which a flow is SUSPICIOUS (overrides the config).
    #[arg(long)]
    suspicious: Option<f64>,
    /// Final score at or above which a flow is MALICIOUS (overrides the config).
    #[arg(long)]
    malicious: Option<f64>,
}

impl ThresholdArgs {
    fn policy(&self) -> anyhow::Result<Policy> {
        let mut p = Policy::default();
        if let Some(path) = &self.config {
            let c = mld_config::load::<mld_ml_detector::Config>(path)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            p.thresholds =
                Thresholds { suspicious: c.suspicious_score, malicious: c.malicious_score };
            p.internal_nets = c.internal_nets;
        }
        let t = &mut p.thresholds;
        t.suspicious = self.suspicious.unwrap_or(t.suspicious);
        t.malicious = self.malicious.unwrap_or(t.malicious);
        for (name, v) in [("--suspicious", t.suspicious), ("--malicious", t.malicious)] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} {v} is outside 0..=1");
            }
        }
        if t.suspicious > t.malicious {
            bail!(
                "the suspicious threshold {} is above the malicious threshold {}",
                t.suspicious,
                t.malicious
            );
        }
        Ok(p)
    }
}

/// Score capture files offline (no bus, no etcd): the sniffer's flow engine and fast rules,
/// then the four forests; one JSON line per finished flow.
#[derive(Parser)]
#[command(name = "ml-detector analyze")]
struct Analyze {
    /// Capture files (pcap or pcapng), read in order.
    #[arg(long, num_args = 1.., required = true)]
    pcap: Vec<PathBuf>,
    /// Where the JSON lines go (`-`: stdout). A file is written whole or not at all.
    #[arg(long, default_value = "-")]
    out: PathBuf,
    #[command(flatten)]
    thresholds: ThresholdArgs,
}

/// Measure detection on the labelled shared captures: per class and overall, host-level
/// recall, flow-level precision/recall/F1, PR-AUC, and the false-positive rate on benign
/// captures, every outcome counted.
#[derive(Parser)]
#[command(name = "ml-detector evaluate")]
struct Evaluate {
    /// The shared data folder (LABELS.tsv, pcap/).
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Include the files the models were trained on (optimistic); default: held-out files only.
    /// With --corpus: the corpus's train part too; default: its test part only.
    #[arg(long)]
    all: bool,
    /// Instead of the shared data, a real-tool corpus folder (`make corpus`: LABELS.tsv with
    /// attack windows, pcap/): the cross-corpus table per class and tool.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// With --corpus: also write the table to FILE (whole, or not at all).
    #[arg(long, value_name = "FILE", requires = "corpus")]
    write: Option<PathBuf>,
    /// With --corpus: exit 1 unless every host of these classes (comma-separated) reached
    /// MALICIOUS and no benign host would have been blocked (a gate for `make corpus-smoke`).
    #[arg(long, value_name = "CLASSES", requires = "corpus", value_delimiter = ',')]
    require_malicious: Vec<String>,
    #[command(flatten)]
    thresholds: ThresholdArgs,
}

/// Open sealed alert artifacts (`<event_log.dir>/alerts*.mld`) with the deployment's root
/// secret and print each Detection as one event-log line (`docs/EVENT_SCHEMA.md`).
#[derive(Parser)]
#[command(name = "ml-detector artifact")]
struct Artifact {
    /// The ml-detector config whose transport section names the root secret and key epoch.
    #[arg(long)]
    config: PathBuf,
    /// Artifact files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print only this detection.
    #[arg(long)]
    id: Option<String>,
    /// The key epoch the artifacts were sealed under, when older than the config's previous
    /// one (after `keys rotate`); default: the config's `transport.key_epoch` and the one before.
    #[arg(long, value_name = "N")]
    key_epoch: Option<u32>,
}

#[allow(clippy::print_stdout, reason = "the report is the command's output")]
fn offline_main(command: &str, args: Vec<String>) -> anyhow::Result<()> {
    if command == "artifact" {
        let a = Artifact::parse_from(args);
        let mut c = mld_config::load::<mld_ml_detector::Config>(&a.config)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(epoch) = a.key_epoch {
            c.transport.key_epoch = epoch;
        }
        let ring = mld_daemon::key_ring(&c.transport).map_err(|e| e.error)?;
        let mut out = std::io::stdout().lock();
        let mut failed = 0;
        let mut line = Vec::new();
        for f in &a.files {
            match mld_ml_detector::artifacts::read(f, &ring) {
                Ok(all) => {
                    for d in
                        all.iter().filter(|d| a.id.as_ref().is_none_or(|id| *id == d.detection_id))
                    {
                        line.clear();
                        mld_ml_detector::record::write_line(d, None, &mut line);
                        out.write_all(&line)?;
                    }
                }
                Err(e) => {
                    eprintln!("ml-detector artifact: {e}");
                    failed += 1;
                }
            }
        }
        if failed > 0 {
            bail!("{failed} of {} artifact files could not be read whole", a.files.len());
        }
    } else if command == "analyze" {
        let a = Analyze::parse_from(args);
        let p = a.thresholds.policy()?;
        let progress =
            |p: &std::path::Path, n: usize| eprintln!("ml-detector: {}: {n} flows", p.display());
        let (flows, flagged) = if a.out.as_os_str() == "-" {
            offline::analyze(&a.pcap, &p, &mut std::io::stdout().lock(), progress)?
        } else {
            let tmp = a.out.with_extension("partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let r = offline::analyze(&a.pcap, &p, &mut w, progress);
            let r = r.and_then(|r| {
                w.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
                std::fs::rename(&tmp, &a.out)
                    .with_context(|| format!("cannot write {}", a.out.display()))?;
                Ok(r)
            });
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?
        };
        eprintln!("ml-detector: {flows} flows, {flagged} flagged (SUSPICIOUS or MALICIOUS)");
    } else {
        let e = Evaluate::parse_from(args);
        let p = e.thresholds.policy()?;
        if let Some(dir) = &e.corpus {
            let report = mld_ml_detector::corpus::evaluate(dir, &p, e.all, |k, n, f| {
                eprintln!("ml-detector: capture {}/{n}: {}", k + 1, f.display());
            })?;
            let text = mld_ml_detector::corpus::render(&report, &p, dir);
            if let Some(path) = &e.write {
                let tmp = path.with_extension("partial");
                let page = format!(
                    "# Cross-corpus evaluation\n\nWritten by `ml-detector evaluate --corpus {} --write {}`{} (`make corpus && make evaluate-corpus`); the corpus is made by `scripts/corpus/`, its tools, seed and versions are in its MANIFEST.json.\n\n{text}",
                    dir.display(),
                    path.display(),
                    if e.all { " --all" } else { "" }
                );
                std::fs::write(&tmp, &page)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            std::io::stdout().lock().write_all(text.as_bytes())?;
            if !e.require_malicious.is_empty() {
                let unmet = mld_ml_detector::corpus::unmet(&report, &e.require_malicious);
                if !unmet.is_empty() {
                    bail!("{}: {}", dir.display(), unmet.join("; "));
                }
            }
            return Ok(());
        }
        let report = offline::evaluate(&e.data, &p, e.all, |k, n| {
            if k % 50 == 0 {
                eprintln!("ml-detector: capture {}/{n}", k + 1);
            }
        })?;
        let mut out = std::io::stdout().lock();
        out.write_all(offline::render(&report, &p.thresholds).as_bytes())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(command) = args.get(1).cloned()
        && ["analyze", "evaluate", "artifact"].contains(&command.as_str())
    {
        args.remove(1);
        args[0] = format!("ml-detector {command}");
        return match offline_main(&command, args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ml-detector {command}: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    mld_daemon::main::<mld_ml_detector::daemon::MlDetectorDaemon>()
}
