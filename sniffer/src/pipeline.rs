//! Records in, events out: the engine, its outputs (bus, JSON lines, log) and its metrics.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use mld_bus::{Publish, Publisher};
use mld_config::daemons::sniffer::Sniffer;
use mld_flow::capture::CaptureReader;
use mld_flow::engine::{Engine, Output};
use mld_flow::packet;
use mld_flow::record::PacketRecord;
use mld_proto::FlowEvent;

use crate::metrics::Metrics;

/// Where JSON lines go.
pub enum JsonlOut {
    Stdout(BufWriter<io::Stdout>),
    File { path: PathBuf, file: BufWriter<File> },
}

impl JsonlOut {
    /// `-` is standard output; anything else a file created (or truncated) now.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Self::Stdout(BufWriter::new(io::stdout())));
        }
        let file = File::create(path)
            .with_context(|| format!("cannot create the --jsonl file {}", path.display()))?;
        Ok(Self::File { path: path.to_owned(), file: BufWriter::new(file) })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let w: &mut dyn Write = match self {
            Self::Stdout(w) => w,
            Self::File { file, .. } => file,
        };
        w.write_all(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(w) => w.flush(),
            Self::File { file, .. } => file.flush().and_then(|()| file.get_ref().sync_data()),
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Stdout(_) => "standard output".to_owned(),
            Self::File { path, .. } => path.display().to_string(),
        }
    }
}

/// Everything an event goes to.
pub struct Sink {
    pub publisher: Option<Publisher>,
    pub jsonl: Option<JsonlOut>,
    pub metrics: Metrics,
    line: Vec<u8>,
    last_flush: Instant,
    /// First write error; the pipeline stops on it.
    error: Option<anyhow::Error>,
    /// Configs applied while running (from the control plane), taken by [`Sink::reload`].
    reloads: (std::sync::mpsc::Sender<Sniffer>, std::sync::mpsc::Receiver<Sniffer>),
}

impl Sink {
    pub fn new(publisher: Option<Publisher>, jsonl: Option<JsonlOut>, metrics: Metrics) -> Self {
        Self {
            publisher,
            jsonl,
            metrics,
            line: Vec::new(),
            last_flush: Instant::now(),
            error: None,
            reloads: std::sync::mpsc::channel(),
        }
    }

    /// Where the control plane sends a config to apply while running.
    pub fn reloader(&self) -> std::sync::mpsc::Sender<Sniffer> {
        self.reloads.0.clone()
    }

    /// Gives `engine` the fast-rule policy of the last config applied while running, if any
    /// came since the last call; returns its web ports then (for the XDP programs).
    pub fn reload(&mut self, engine: &mut Engine) -> Option<Vec<u16>> {
        let c = self.reloads.1.try_iter().last()?;
        tracing::info!(
            flood_packets_per_sec = c.fast_detector.flood_packets_per_sec,
            scan_distinct_ports = c.fast_detector.scan_distinct_ports,
            cooldown_secs = c.cooldown.as_secs(),
            internal_nets = c.internal_nets.len(),
            "fast detector policy reloaded"
        );
        let cooldown = u64::try_from(c.cooldown.as_nanos()).unwrap_or(u64::MAX);
        let head_ports = mld_flow::engine::EngineConfig::from_sniffer(&c).head_ports();
        engine.set_policy(c.fast_detector, cooldown, c.internal_nets);
        Some(head_ports)
    }

    pub fn emit(&mut self, out: Output) {
        match out {
            Output::Flow(ev) => self.flow(&ev),
            Output::Alert(a) => {
                self.metrics.alert(a.rule);
                tracing::warn!(host = %a.host, rule = a.rule, score = a.score, "{}", a.reason);
            }
        }
    }

    fn flow(&mut self, ev: &FlowEvent) {
        if let Some(p) = &mut self.publisher {
            match p.publish(ev) {
                Ok(Publish::Sent | Publish::Dropped) => {} // drops are counted by the bus
                Err(e) => {
                    tracing::error!(error = %e, "publishing a FlowEvent failed");
                }
            }
        }
        if self.error.is_some() {
            return;
        }
        if let Some(out) = &mut self.jsonl {
            self.line.clear();
            let written = serde_json::to_writer(&mut self.line, &mld_flow::json::flow_event(ev))
                .map_err(io::Error::from)
                .and_then(|()| {
                    self.line.push(b'\n');
                    out.write_line(&self.line)
                });
            match written {
                Ok(()) => {
                    self.metrics.events_written.inc();
                }
                Err(e) => {
                    self.error = Some(
                        anyhow::Error::new(e)
                            .context(format!("writing JSON lines to {}", out.name())),
                    );
                }
            }
        }
    }

    /// Accounts one packet: metrics, then the engine, whose outputs come back here.
    pub fn feed(&mut self, engine: &mut Engine, rec: &PacketRecord<'_>) {
        self.metrics.packets.inc();
        self.metrics.bytes.inc_by(u64::from(rec.ip_len));
        engine.process(rec, &mut |o| self.emit(o));
    }

    /// Flushes JSON lines at most once a second (and always when `force`).
    pub fn flush(&mut self, force: bool) {
        if !force && self.last_flush.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_flush = Instant::now();
        if let (Some(out), None) = (&mut self.jsonl, &self.error)
            && let Err(e) = out.flush()
        {
            self.error = Some(
                anyhow::Error::new(e).context(format!("writing JSON lines to {}", out.name())),
            );
        }
    }

    /// The first output error, which ends the run.
    pub fn take_error(&mut self) -> Option<anyhow::Error> {
        self.error.take()
    }
}

/// Unix time now, nanoseconds.
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What reading capture files amounted to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PcapSummary {
    pub files: usize,
    pub frames: u64,
    pub skipped: u64,
    pub files_cut_short: usize,
}

/// Reads `files` in order into the engine, each as a capture of its own: at the end of each
/// file its flows are exported and the host context is forgotten (as `ml-detector analyze`
/// does), so a file's verdicts do not depend on the files beside it. With `realtime`, frames
/// are released at their recorded pace (each file from its own first frame).
pub fn run_pcaps(
    files: &[PathBuf],
    realtime: bool,
    engine: &mut Engine,
    sink: &mut Sink,
    stop: &AtomicBool,
) -> anyhow::Result<PcapSummary> {
    let mut summary = PcapSummary::default();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut pace: Option<(u64, Instant)> = None;
    let skipped: Vec<_> =
        crate::metrics::SKIP_REASONS.iter().map(|r| sink.metrics.skipped(r)).collect();
    for path in files {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut reader = CaptureReader::open(path)
            .with_context(|| format!("cannot read capture file {}", path.display()))?;
        summary.files += 1;
        let mut frames_here = 0u64;
        while let Some(frame) = reader.next_frame() {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    summary.files_cut_short += 1;
                    sink.metrics.capture_errors.inc();
                    tracing::warn!(file = %path.display(), after_frames = frames_here, "capture file ended early, rest skipped: {e}");
                    break;
                }
            };
            frames_here += 1;
            summary.frames += 1;
            if realtime {
                let (first_ts, t0) = *pace.get_or_insert((frame.ts_ns, Instant::now()));
                let due = t0 + Duration::from_nanos(frame.ts_ns.saturating_sub(first_ts));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            match packet::parse(frame.link, &frame.data) {
                Ok(p) => {
                    sink.feed(engine, &PacketRecord::from_packet(frame.ts_ns, &p, &frame.data, 0));
                }
                Err(e) => {
                    summary.skipped += 1;
                    let i = crate::metrics::SKIP_REASONS
                        .iter()
                        .position(|r| *r == e.reason())
                        .unwrap_or(4);
                    skipped[i].inc();
                }
            }
            if summary.frames % 4096 == 0 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                sink.metrics.sync(engine);
                sink.reload(engine);
                sink.flush(false);
                if let Some(e) = sink.take_error() {
                    return Err(e);
                }
                if last_progress.elapsed() >= Duration::from_secs(5) {
                    last_progress = Instant::now();
                    tracing::info!(
                        file = %path.display(),
                        frames = summary.frames,
                        flows = engine.counters().flows_exported(),
                        "reading capture files"
                    );
                }
            }
        }
        engine.end_capture(&mut |o| sink.emit(o));
        pace = None;
        tracing::debug!(file = %path.display(), frames = frames_here, "capture file done");
    }
    sink.metrics.sync(engine);
    sink.flush(true);
    if let Some(e) = sink.take_error() {
        return Err(e);
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a rate for the log")]
    let rate = if secs > 0.0 { summary.frames as f64 / secs } else { 0.0 };
    let c = engine.counters();
    tracing::info!(
        files = summary.files,
        frames = summary.frames,
        skipped = summary.skipped,
        files_cut_short = summary.files_cut_short,
        flows = c.flows_exported(),
        snapshots = c.snapshots,
        alerts = c.alerts,
        evicted = c.flows_evicted,
        secs = format!("{secs:.2}"),
        frames_per_sec = format!("{rate:.0}"),
        "capture files done"
    );
    Ok(summary)
}
