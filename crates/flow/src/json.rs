//! `FlowEvent` as one JSON object (the sniffer's `--jsonl` output): addresses as text, enums
//! by name, the initiator's endpoint as `src_*`, features and host context under the proto's
//! field names.

use mld_proto::{CaptureMode, Direction, FlowEvent, InterfaceRole, ip_from_bytes};
use serde_json::{Value, json};

fn ip_text(bytes: &[u8]) -> Value {
    ip_from_bytes(bytes).map_or(Value::Null, |ip| Value::String(ip.to_string()))
}

/// The JSON form of `ev`.
pub fn flow_event(ev: &FlowEvent) -> Value {
    let key = ev.key.clone().unwrap_or_default();
    let a = key.a.unwrap_or_default();
    let b = key.b.unwrap_or_default();
    let initiator = Direction::try_from(key.initiator).unwrap_or_default();
    let (src, dst) = if initiator == Direction::BToA { (&b, &a) } else { (&a, &b) };
    #[allow(clippy::cast_precision_loss, reason = "µs precision is what JSON consumers get")]
    let secs = |ns: u64| ns as f64 / 1e9;
    json!({
        "event_id": ev.event_id,
        "sensor_id": ev.sensor_id,
        "start_ns": ev.start_ns,
        "end_ns": ev.end_ns,
        "first_ts": secs(ev.start_ns),
        "last_ts": secs(ev.end_ns),
        "src_ip": ip_text(&src.ip),
        "src_port": src.port,
        "dst_ip": ip_text(&dst.ip),
        "dst_port": dst.port,
        "proto": key.ip_proto,
        "initiator": initiator.as_str_name(),
        "interface": ev.interface,
        "interface_role": InterfaceRole::try_from(ev.interface_role).unwrap_or_default().as_str_name(),
        "capture_mode": CaptureMode::try_from(ev.capture_mode).unwrap_or_default().as_str_name(),
        "snapshot": ev.snapshot,
        "features": ev.features,
        "source_context": ev.source_context,
        "fast": ev.fast,
    })
}
