//! Event-log lines for tests (of this store and of its users): schema version 1, every field
//! the store reads.

/// A line for detection `id`: `verdict` (`VERDICT_…`), from `src`:40000 to 10.0.0.9:`dst_port`
/// over TCP, the flow ending at Unix second `last`, fast rule `scan.ports` at 0.9, the
/// `traffic` forest at 0.2.
pub fn line(id: &str, verdict: &str, src: &str, dst_port: u16, last: f64) -> String {
    serde_json::json!({
        "schema_version": 1, "detection_id": id, "detected_at": last + 1.0,
        "verdict": verdict, "final_score": 0.9, "authoritative": "SCORE_SOURCE_FAST",
        "fast_score": 0.9, "fast_rules": ["scan.ports"], "ml_score": 0.2,
        "ml_scores": {"ddos": 0.0, "ransomware": 0.0, "traffic": 0.2, "internal": 0.0},
        "divergence": 0.7, "model_versions": {}, "top_features": [],
        "event_id": format!("ev-{id}"), "sensor_id": "s1", "start_ns": 0, "end_ns": 0,
        "first_ts": last - 1.0, "last_ts": last, "src_ip": src, "src_port": 40000,
        "dst_ip": "10.0.0.9", "dst_port": dst_port, "proto": 6,
        "features": {"flow_duration_us": 10.0, "total_fwd_packets": 3},
        "source_context": {"flows": 40, "distinct_dst_ports": 30},
        "fast": {"score": 0.9, "rule_ids": ["scan.ports"], "reasons": ["30 ports in 30 s"]}
    })
    .to_string()
}
