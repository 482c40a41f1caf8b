//! `rag-ingester backfill`: event logs into the store, resumable.
//!
//! Each file is read from the byte offset the store recorded for it (in the same transaction
//! as the batch that reached it), so an interrupted backfill resumes without storing anything
//! twice and a finished one re-run reads only what was appended since. A last line without its
//! newline (a log being written) is left for the next run. A file shorter than its recorded
//! offset was replaced: it is read from the start (its stored events are still not duplicated).

use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use mld_daemon::ExitCode;
use mld_eventstore::Store;

/// Commands of `rag-ingester` beside `run` and `validate`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Load event logs (the `events.jsonl` lines ml-detector writes, rotated files included)
    /// into the store, resuming each file where the last backfill stopped; prints progress
    /// and a summary. Exits 1 when a line could not be read (the others are stored).
    Backfill(Args),
    /// Bring the vector indices (`<store_path>.index/`) up to date with the store: embed new
    /// summaries, add newer rows, and rebuild an index that is missing, damaged or of other
    /// vectors (`--rebuild`: rebuild both regardless).
    Reindex(ReindexArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReindexArgs {
    /// The rag-ingester config (its `store_path` and `embedding_model`).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Delete the saved indices first, so both are rebuilt from the store.
    #[arg(long)]
    pub rebuild: bool,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The rag-ingester config (its `store_path` and `batch_max_events`).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Event log files, in any order.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// Read every file from its start instead of where the last backfill stopped.
    #[arg(long)]
    pub from_start: bool,
}

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub bytes: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// `file@offset: why`, the first few.
    pub first_rejections: Vec<String>,
}

const REJECTIONS_SHOWN: usize = 5;

/// Loads `path` into `store`, `batch` lines per transaction; `progress` is called after each
/// batch with the running summary and the file's size.
pub fn file(
    store: &mut Store,
    path: &Path,
    batch: usize,
    from_start: bool,
    sum: &mut Summary,
    mut progress: impl FnMut(&Summary, u64, u64),
) -> anyhow::Result<()> {
    let key = std::fs::canonicalize(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .to_string_lossy()
        .into_owned();
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let size = f.metadata().with_context(|| format!("{}: cannot stat", path.display()))?.len();
    let mut offset = if from_start { 0 } else { store.source_offset(&key)? };
    if offset > size {
        tracing::warn!(file = %path.display(), offset, size, "shorter than where the last backfill stopped: replaced, reading it from the start");
        offset = 0;
    }
    let mut r = BufReader::with_capacity(1 << 20, f);
    r.seek(SeekFrom::Start(offset)).with_context(|| format!("{}: cannot seek", path.display()))?;
    let mut lines: Vec<String> = Vec::with_capacity(batch);
    let mut starts: Vec<u64> = Vec::with_capacity(batch);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}: read error", path.display()))?;
        let complete = buf.last() == Some(&b'\n');
        if complete {
            let at = offset;
            offset += n as u64;
            sum.lines += 1;
            sum.bytes += n as u64;
            match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(s) if s.trim().is_empty() => {}
                Ok(s) => {
                    lines.push(s);
                    starts.push(at);
                }
                Err(_) => reject(sum, path, at, "not UTF-8"),
            }
        }
        // A full batch, or the end (which also records where it is).
        if lines.len() >= batch || !complete {
            let r = store.insert_lines(&lines, Some((&key, offset)))?;
            sum.inserted += r.inserted as u64;
            sum.duplicates += r.duplicates as u64;
            for (i, why) in &r.rejected {
                reject(sum, path, starts[*i], &why.to_string());
            }
            lines.clear();
            starts.clear();
            progress(sum, offset, size);
        }
        if !complete {
            break;
        }
    }
    Ok(())
}

fn reject(sum: &mut Summary, path: &Path, at: u64, why: &str) {
    sum.rejected += 1;
    if sum.first_rejections.len() < REJECTIONS_SHOWN {
        sum.first_rejections.push(format!("{}@{at}: {why}", path.display()));
    }
}

/// `rag-ingester backfill` and `rag-ingester reindex`.
pub fn run(c: Command) -> ExitCode {
    match c {
        Command::Backfill(args) => backfill(&args),
        Command::Reindex(args) => reindex(&args),
    }
}

type Config = <crate::Config as mld_config::DaemonConfig>::Valid;

#[allow(clippy::print_stderr, reason = "errors are the command's output")]
fn open(what: &str, config: &Path) -> Result<(Config, Store), ExitCode> {
    let config = mld_config::load::<crate::Config>(config).map_err(|e| {
        eprintln!("rag-ingester {what}: {e}");
        ExitCode::Config
    })?;
    let store = Store::open(&config.store_path).map_err(|e| {
        eprintln!("rag-ingester {what}: {e}");
        ExitCode::Unavailable
    })?;
    Ok((config, store))
}

/// Brings the indices up to date (printing what it does); false when it could not.
#[allow(clippy::print_stderr, reason = "progress is the command's output")]
fn update_indices(what: &str, config: &Config, store: &mut Store) -> bool {
    let embedder = match mld_embed::Embedder::load(&config.embedding_model) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("rag-ingester {what}: {e} (embedding_model)");
            return false;
        }
    };
    let mut say = |m: &str| eprintln!("rag-ingester {what}: {m}");
    match crate::indices::Indices::open(store, embedder, &mut say) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("rag-ingester {what}: the vector indices: {e}");
            false
        }
    }
}

#[allow(clippy::print_stderr, reason = "errors are the command's output")]
fn reindex(args: &ReindexArgs) -> ExitCode {
    let (config, mut store) = match open("reindex", &args.config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if args.rebuild {
        let dir = crate::indices::dir_for(store.path());
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("rag-ingester reindex: {}: {e}", dir.display());
            return ExitCode::Failure;
        }
    }
    if update_indices("reindex", &config, &mut store) {
        ExitCode::Success
    } else {
        ExitCode::Unavailable
    }
}

#[allow(clippy::print_stderr, reason = "progress and the summary are the command's output")]
fn backfill(args: &Args) -> ExitCode {
    let config = match mld_config::load::<crate::Config>(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rag-ingester backfill: {e}");
            return ExitCode::Config;
        }
    };
    // Every input is checked before the store is opened (and created): a mistyped path
    // leaves nothing behind.
    let unreadable: Vec<String> = args
        .logs
        .iter()
        .filter_map(|log| match std::fs::File::open(log).and_then(|f| f.metadata()) {
            Ok(m) if m.is_file() => None,
            Ok(_) => Some(format!("{}: not a file", log.display())),
            Err(e) => Some(format!("{}: {e}", log.display())),
        })
        .collect();
    if !unreadable.is_empty() {
        for u in &unreadable {
            eprintln!("rag-ingester backfill: cannot read the event log {u}");
        }
        eprintln!("rag-ingester backfill: nothing was stored");
        return ExitCode::Failure;
    }
    let mut store = match Store::open(&config.store_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rag-ingester backfill: {e}");
            return ExitCode::Unavailable;
        }
    };
    let batch = usize::try_from(config.batch_max_events).unwrap_or(512);
    let mut sum = Summary::default();
    let t0 = Instant::now();
    let mut last = Instant::now();
    let mut failed = false;
    for (i, log) in args.logs.iter().enumerate() {
        let res = file(&mut store, log, batch, args.from_start, &mut sum, |s, at, size| {
            if last.elapsed().as_secs() >= 1 {
                last = Instant::now();
                #[allow(clippy::cast_precision_loss, reason = "a percentage")]
                let pct = if size == 0 { 100.0 } else { at as f64 * 100.0 / size as f64 };
                eprintln!(
                    "rag-ingester backfill: file {}/{} {}: {pct:.0} %, {} stored, {} already there",
                    i + 1,
                    args.logs.len(),
                    log.display(),
                    s.inserted,
                    s.duplicates
                );
            }
        });
        if let Err(e) = res {
            eprintln!("rag-ingester backfill: {e:#}");
            failed = true;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "rag-ingester backfill: {} lines ({} MB) from {} file(s) in {secs:.1} s: {} stored, {} already stored, {} unreadable; {} events in {}",
        sum.lines,
        sum.bytes / 1_000_000,
        args.logs.len(),
        sum.inserted,
        sum.duplicates,
        sum.rejected,
        store.count().map_or_else(|e| format!("? ({e})"), |n| n.to_string()),
        store.path().display()
    );
    for r in &sum.first_rejections {
        eprintln!("rag-ingester backfill: unreadable line {r}");
    }
    if !update_indices("backfill", &config, &mut store) {
        return ExitCode::Unavailable;
    }
    if failed || sum.rejected > 0 { ExitCode::Failure } else { ExitCode::Success }
}
