//! `FlowEvent` as one JSON object (the sniffer's `--jsonl` output): addresses as text, enums
//! by name, the initiator's endpoint as `src_*`, features and host context under the proto's
//! field names. Serialised straight from borrowed fields, with no intermediate `Value` tree.

use std::net::IpAddr;

use mld_proto::{
    BehaviourLevels, CaptureMode, Direction, FastDetection, FlowEvent, FlowFeatures, HostContext,
    InterfaceRole, ip_from_bytes,
};
use serde::Serialize;

/// The JSON form of a `FlowEvent`; build it with [`flow_event`] and hand it to `serde_json`.
#[derive(Debug, Serialize)]
pub struct FlowEventJson<'a> {
    pub event_id: &'a str,
    pub sensor_id: &'a str,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Unix seconds of the first packet.
    pub first_ts: f64,
    /// Unix seconds of the last packet.
    pub last_ts: f64,
    pub src_ip: Option<IpAddr>,
    pub src_port: u32,
    pub dst_ip: Option<IpAddr>,
    pub dst_port: u32,
    pub proto: u32,
    pub initiator: &'static str,
    pub interface: &'a str,
    pub interface_role: &'static str,
    pub capture_mode: &'static str,
    pub snapshot: bool,
    pub features: Option<&'a FlowFeatures>,
    pub source_context: Option<&'a HostContext>,
    pub responder_context: Option<&'a HostContext>,
    pub source_levels: Option<&'a BehaviourLevels>,
    pub responder_levels: Option<&'a BehaviourLevels>,
    pub fast: Option<&'a FastDetection>,
}

/// The JSON form of `ev`.
pub fn flow_event(ev: &FlowEvent) -> FlowEventJson<'_> {
    #[allow(clippy::cast_precision_loss, reason = "µs precision is what JSON consumers get")]
    let secs = |ns: u64| ns as f64 / 1e9;
    let key = ev.key.as_ref();
    let initiator =
        key.map_or(Direction::default(), |k| Direction::try_from(k.initiator).unwrap_or_default());
    let (src, dst) = crate::key::oriented(key);
    let ip = |e: Option<&mld_proto::Endpoint>| e.and_then(|e| ip_from_bytes(&e.ip));
    let port = |e: Option<&mld_proto::Endpoint>| e.map_or(0, |e| e.port);
    FlowEventJson {
        event_id: &ev.event_id,
        sensor_id: &ev.sensor_id,
        start_ns: ev.start_ns,
        end_ns: ev.end_ns,
        first_ts: secs(ev.start_ns),
        last_ts: secs(ev.end_ns),
        src_ip: ip(src),
        src_port: port(src),
        dst_ip: ip(dst),
        dst_port: port(dst),
        proto: key.map_or(0, |k| k.ip_proto),
        initiator: initiator.as_str_name(),
        interface: &ev.interface,
        interface_role: InterfaceRole::try_from(ev.interface_role)
            .unwrap_or_default()
            .as_str_name(),
        capture_mode: CaptureMode::try_from(ev.capture_mode).unwrap_or_default().as_str_name(),
        snapshot: ev.snapshot,
        features: ev.features.as_ref(),
        source_context: ev.source_context.as_ref(),
        responder_context: ev.responder_context.as_ref(),
        source_levels: ev.source_levels.as_ref(),
        responder_levels: ev.responder_levels.as_ref(),
        fast: ev.fast.as_ref(),
    }
}
