//! Capture files straight into flow events, in-process (no bus): what training, the
//! detector's `analyze` and `evaluate` use, with exactly the sniffer's engine.

use std::path::Path;

use mld_proto::{CaptureMode, FlowEvent, InterfaceRole};

use crate::capture::{CaptureError, CaptureReader};
use crate::engine::{Engine, EngineConfig, Output, SourceInfo};
use crate::fast::FastAlert;
use crate::packet::parse;
use crate::record::PacketRecord;

/// What one capture file became.
#[derive(Debug, Default)]
pub struct Offline {
    /// Every flow event, finished flows and snapshots (`snapshot == true`) alike.
    pub flows: Vec<FlowEvent>,
    /// For each of `flows`, the engine's clock (capture time, Unix ns) when it was exported:
    /// when a live sensor would have published it (a snapshot at the packet that raised it, a
    /// finished flow at its close or its idle timeout, the rest at the end of the capture).
    pub exported_ns: Vec<u64>,
    pub alerts: Vec<FastAlert>,
    pub frames: u64,
    /// Frames the parser skipped (not IP, truncated, malformed…).
    pub skipped: u64,
    /// Set when the file ended early; the frames before it are in `flows`.
    pub cut_short: Option<CaptureError>,
}

/// The engine configuration the sniffer runs with when its config file sets nothing.
pub fn default_config(sensor_id: &str) -> EngineConfig {
    let text = format!(r#"{{ "sensor_id": {} }}"#, serde_json::Value::from(sensor_id));
    let sniffer = mld_config::parse_str::<mld_config::daemons::sniffer::SnifferConfig>(
        &text,
        Path::new("(built-in defaults)"),
    )
    .expect("the default sniffer config is valid");
    EngineConfig::from_sniffer(&sniffer)
}

/// Runs the flow engine over `path` with `cfg` and flushes it.
pub fn run_file(path: &Path, cfg: EngineConfig) -> Result<Offline, CaptureError> {
    let source = SourceInfo {
        interface: "pcap".into(),
        role: InterfaceRole::Unspecified,
        mode: CaptureMode::Pcap,
    };
    let mut engine = Engine::new(cfg, vec![source]);
    let mut out = Offline::default();
    let reader = CaptureReader::open(path)?;
    let clock = std::cell::Cell::new(0u64);
    let mut sink = |o: Output| match o {
        Output::Flow(ev) => {
            out.flows.push(*ev);
            out.exported_ns.push(clock.get());
        }
        Output::Alert(a) => out.alerts.push(a),
    };
    let mut cut_short = None;
    let (mut frames, mut skipped) = (0, 0);
    for frame in reader {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                cut_short = Some(e);
                break;
            }
        };
        frames += 1;
        clock.set(clock.get().max(frame.ts_ns));
        match parse(frame.link, &frame.data) {
            Ok(p) => engine
                .process(&PacketRecord::from_packet(frame.ts_ns, &p, &frame.data, 0), &mut sink),
            Err(_) => skipped += 1,
        }
    }
    engine.flush(&mut sink);
    out.frames = frames;
    out.skipped = skipped;
    out.cut_short = cut_short;
    Ok(out)
}
