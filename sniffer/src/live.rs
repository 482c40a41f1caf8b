//! Live capture: XDP on each configured interface (native, then generic), `AF_PACKET` where
//! XDP cannot attach (when the config allows), all into one engine until shutdown.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mld_config::daemons::sniffer::{
    CaptureMode as Wanted, InterfaceRole as ConfigRole, Sniffer as Valid,
};
use mld_daemon::DaemonError;
use mld_flow::engine::{Engine, EngineConfig, SourceInfo};
use mld_flow::record::PacketRecord;
use mld_flow::reorder::Reorder;
use mld_proto::{CaptureMode, InterfaceRole};
use rustix::event::{PollFd, PollFlags, poll};

use crate::afpacket::{self, AfPacketCapture};
use crate::pipeline::{Sink, unix_now_ns};
use crate::xdp::{self, XdpCapture, XdpError};

/// Ring buffer size per interface: 8 MiB holds ~110 k records.
pub const RING_BYTES: u32 = 8 << 20;
/// Housekeeping period: idle flows, metrics, clock offset.
const TICK: Duration = Duration::from_millis(100);
/// With several interfaces, how long a record waits for older records of other interfaces.
/// XDP records reach their ring within microseconds of their timestamp and every ring is
/// drained after reading the clock, so 2 ms is ample; an `AF_PACKET` reader is a thread that
/// may be descheduled, so it gets more.
const HOLD_XDP: Duration = Duration::from_millis(2);
const HOLD_AF_PACKET: Duration = Duration::from_millis(25);
/// Records the reorder buffer holds at most (~19 MB). A 25 ms hold at 2 M pkt/s needs 50 k;
/// beyond it the oldest record goes early and is counted as forced.
const REORDER_CAPACITY: usize = 65_536;

/// Where captured records go: straight to the engine with one interface; with several,
/// through a reorder buffer, so that a reply read from one interface before its request from
/// another does not flip the flow's initiator.
struct Intake {
    reorder: Option<Reorder>,
    hold_ns: u64,
}

impl Intake {
    fn new(sources: &[SourceInfo]) -> Self {
        let hold = if sources.iter().any(|s| s.mode == CaptureMode::AfPacket) {
            HOLD_AF_PACKET
        } else {
            HOLD_XDP
        };
        Self {
            reorder: (sources.len() > 1).then(|| Reorder::new(REORDER_CAPACITY)),
            hold_ns: u64::try_from(hold.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    fn take(&mut self, sink: &mut Sink, engine: &mut Engine, rec: &PacketRecord<'_>) {
        match &mut self.reorder {
            Some(r) => r.push(rec, &mut |rec| sink.feed(engine, rec)),
            None => sink.feed(engine, rec),
        }
    }

    /// Feeds every held record captured before `read_at_ns - hold` (all sources were read
    /// to empty after `read_at_ns`), or all of them when `read_at_ns` is `None`.
    fn release(&mut self, sink: &mut Sink, engine: &mut Engine, read_at_ns: Option<u64>) {
        if let Some(r) = &mut self.reorder {
            let up_to = read_at_ns.map_or(u64::MAX, |t| t.saturating_sub(self.hold_ns));
            r.release(up_to, &mut |rec| sink.feed(engine, rec));
        }
    }

    /// How long the capture loop may sleep before held records are due.
    fn due_in(&self, now_ns: u64, wait: Duration) -> Duration {
        match self.reorder.as_ref().and_then(Reorder::oldest_ns) {
            Some(oldest) => wait
                .min(Duration::from_nanos(
                    oldest.saturating_add(self.hold_ns).saturating_sub(now_ns),
                ))
                .max(Duration::from_micros(200)),
            None => wait,
        }
    }

    fn publish(&self, sink: &Sink) {
        if let Some(r) = &self.reorder {
            for (name, value) in [
                ("held", u64::try_from(r.len()).unwrap_or(u64::MAX)),
                ("forced", r.forced()),
                ("late", r.late()),
            ] {
                sink.metrics
                    .reorder
                    .get_or_create(&vec![("outcome", name.to_owned())])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
    }
}

fn role(r: ConfigRole) -> InterfaceRole {
    match r {
        ConfigRole::Host => InterfaceRole::Host,
        ConfigRole::Lan => InterfaceRole::Lan,
        ConfigRole::Wan => InterfaceRole::Wan,
    }
}

/// XDP modes to try for a configured capture mode (empty: `AF_PACKET` only).
fn xdp_modes(wanted: Wanted) -> &'static [CaptureMode] {
    match wanted {
        Wanted::Auto => &[CaptureMode::XdpNative, CaptureMode::XdpGeneric],
        Wanted::XdpNative => &[CaptureMode::XdpNative],
        Wanted::XdpGeneric => &[CaptureMode::XdpGeneric],
        Wanted::AfPacket => &[],
    }
}

/// Captures until `stop`, then exports every open flow.
#[allow(clippy::too_many_lines, reason = "set-up, loop and drain read top to bottom")]
pub fn run(
    config: &Valid,
    sink: &mut Sink,
    stop: &AtomicBool,
    readiness: &mld_telemetry::Readiness,
) -> Result<(), DaemonError> {
    let mut rings: Vec<(u8, XdpCapture)> = Vec::new();
    let mut readers: Vec<AfPacketCapture> = Vec::new();
    let (tx, rx) = afpacket::queue();
    let stop_readers = Arc::new(AtomicBool::new(false));
    let mut sources = Vec::new();
    for (i, iface) in config.interfaces.iter().enumerate() {
        let source = u8::try_from(i)
            .map_err(|_| DaemonError::failure(anyhow::anyhow!("at most 256 interfaces")))?;
        let name = iface.name.as_str();
        let modes = xdp_modes(config.capture);
        let mut mode = CaptureMode::AfPacket;
        if !modes.is_empty() {
            let head_ports = EngineConfig::from_sniffer(config).head_ports();
            match XdpCapture::attach(name, modes, RING_BYTES, &head_ports) {
                Ok(c) => {
                    tracing::info!(
                        iface = name,
                        mode = c.mode.as_str_name(),
                        "XDP program attached"
                    );
                    mode = c.mode;
                    rings.push((source, c));
                }
                Err(XdpError::NoInterface(_)) => {
                    return Err(DaemonError::unavailable(anyhow::anyhow!(
                        "interface {name:?} (interfaces[{i}].name) does not exist; `ip link` lists this host's interfaces"
                    )));
                }
                Err(e) if config.capture == Wanted::Auto => {
                    tracing::warn!(
                        iface = name,
                        "XDP unavailable, falling back to AF_PACKET (every frame is copied to userspace; slower): {e}"
                    );
                }
                Err(e) => {
                    return Err(DaemonError::unavailable(anyhow::anyhow!(
                        "{e}; set \"capture\": \"auto\" to fall back to AF_PACKET"
                    )));
                }
            }
        }
        if mode == CaptureMode::AfPacket {
            let reader =
                afpacket::start(name, source, tx.clone(), stop_readers.clone()).map_err(|e| {
                    DaemonError::unavailable(anyhow::anyhow!(
                        "cannot capture on {name:?} with AF_PACKET: {e} (needs root or CAP_NET_RAW)"
                    ))
                })?;
            tracing::info!(iface = name, "capturing with AF_PACKET");
            readers.push(reader);
        }
        sources.push(SourceInfo { interface: name.to_owned(), role: role(iface.role), mode });
    }
    drop(tx);
    let mut intake = Intake::new(&sources);
    let mut engine = Engine::new(EngineConfig::from_sniffer(config), sources);
    let mut offset = xdp::mono_to_unix_offset();
    let mut last_tick = Instant::now();
    let mut bad_records = 0u64;
    let bad = sink.metrics.skipped("other");
    readiness.set(true);
    while !stop.load(Ordering::Relaxed) {
        let wait =
            if rings.is_empty() || readers.is_empty() { TICK } else { Duration::from_millis(1) };
        let wait = intake.due_in(unix_now_ns(), wait);
        if rings.is_empty() {
            if let Ok(r) = rx.recv_timeout(wait) {
                intake.take(sink, &mut engine, &r.record());
            }
        } else {
            let mut fds: Vec<PollFd<'_>> = rings
                .iter()
                .map(|(_, c)| PollFd::from_borrowed_fd(c.ring.as_fd(), PollFlags::IN))
                .collect();
            let timeout = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: i64::try_from(wait.as_nanos()).unwrap_or(0),
            };
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(DaemonError::failure(anyhow::anyhow!(
                        "polling the XDP ring buffers: {e}"
                    )));
                }
            }
        }
        // Every source is read to empty after this instant, so held records stamped well
        // before it can go.
        let read_at = unix_now_ns();
        for (source, c) in &mut rings {
            while let Some(item) = c.ring.next() {
                if let Some(rec) = xdp::decode(&item, *source, offset) {
                    intake.take(sink, &mut engine, &rec);
                } else {
                    bad_records += 1;
                    bad.inc();
                }
            }
        }
        while let Ok(r) = rx.try_recv() {
            intake.take(sink, &mut engine, &r.record());
        }
        intake.release(sink, &mut engine, Some(read_at));
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            offset = xdp::mono_to_unix_offset();
            // Flows whose next packets may still be held are not idle yet.
            engine.advance(unix_now_ns().saturating_sub(intake.hold_ns), &mut |o| sink.emit(o));
            publish_counters(sink, &rings, &readers);
            intake.publish(sink);
            sink.metrics.sync(&engine);
            if let Some(ports) = sink.reload(&mut engine) {
                for (_, c) in &mut rings {
                    if let Err(e) = c.set_head_ports(&ports) {
                        tracing::warn!(iface = %c.iface, "payload-head ports not applied to XDP: {e}");
                    }
                }
            }
            sink.flush(false);
            if let Some(e) = sink.take_error() {
                return Err(DaemonError::failure(e));
            }
        }
    }
    stop_readers.store(true, Ordering::Relaxed);
    for r in readers.drain(..) {
        r.join();
    }
    // Records already in the rings still count.
    for (source, c) in &mut rings {
        while let Some(item) = c.ring.next() {
            if let Some(rec) = xdp::decode(&item, *source, offset) {
                intake.take(sink, &mut engine, &rec);
            }
        }
    }
    while let Ok(r) = rx.try_recv() {
        intake.take(sink, &mut engine, &r.record());
    }
    intake.release(sink, &mut engine, None);
    intake.publish(sink);
    engine.flush(&mut |o| sink.emit(o));
    publish_counters(sink, &rings, &readers);
    sink.metrics.sync(&engine);
    sink.flush(true);
    if bad_records > 0 {
        tracing::error!(
            bad_records,
            "ring records of an unexpected size: the XDP program and the sniffer do not match"
        );
    }
    let c = engine.counters();
    tracing::info!(
        packets = c.packets,
        flows = c.flows_exported(),
        alerts = c.alerts,
        "capture stopped"
    );
    sink.take_error().map_or(Ok(()), |e| Err(DaemonError::failure(e)))
}

fn publish_counters(sink: &Sink, rings: &[(u8, XdpCapture)], readers: &[AfPacketCapture]) {
    for (_, c) in rings {
        for (name, value) in xdp::COUNTER_NAMES.iter().zip(c.counters()) {
            sink.metrics
                .xdp
                .get_or_create(&vec![("iface", c.iface.clone()), ("outcome", (*name).to_owned())])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }
    for r in readers {
        let c = &r.counters;
        for (name, value) in [
            ("frames", c.frames.load(Ordering::Relaxed)),
            ("skipped", c.skipped.load(Ordering::Relaxed)),
            ("queue_full", c.queue_full.load(Ordering::Relaxed)),
        ] {
            sink.metrics
                .afpacket
                .get_or_create(&vec![("iface", r.iface.clone()), ("outcome", name.to_owned())])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }
}
