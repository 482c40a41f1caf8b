//! The model input: one flat `f32` vector per flow, the same for training and serving.
//!
//! It holds the CIC flow features (§5.1), the source host's context window, part of the
//! responder's (how many sources hit it, how hard: the victim side of a flood), where the
//! source stands against each behaviour and the responder against those that name a target
//! (`level_*`, `responder_level_*`: value / threshold of the behaviour's checks, below the
//! threshold too), and two fields of the key (the responder's port and the IP protocol), each
//! under the name used in model cards and in the detector's "top features". The order is part of the trained models: changing it
//! (or a definition in [`crate::features`]) means retraining, which the codegen test notices.

use mld_proto::{BehaviourLevels, FlowEvent, FlowFeatures, HostContext};

macro_rules! vector {
    (flow: $($f:ident),* ; host: $($h:ident),* ; responder: $($r:ident),* ;
     levels: $($l:ident),* ; responder_levels: $($rl:ident),* ; key: $($k:ident),* $(,)?) => {
        /// Feature names, in vector order.
        pub const NAMES: &[&str] = &[
            $(stringify!($f),)* $(concat!("host_", stringify!($h)),)*
            $(concat!("responder_", stringify!($r)),)*
            $(concat!("level_", stringify!($l)),)*
            $(concat!("responder_level_", stringify!($rl)),)* $(stringify!($k),)*
        ];

        /// Number of features.
        pub const LEN: usize = NAMES.len();

        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, reason = "model inputs are f32")]
        fn fill(
            f: &FlowFeatures,
            h: &HostContext,
            r: &HostContext,
            l: &BehaviourLevels,
            rl: &BehaviourLevels,
            key: &KeyFields,
        ) -> [f32; LEN] {
            [$(f.$f as f32,)* $(h.$h as f32,)* $(r.$r as f32,)* $(l.$l,)* $(rl.$rl,)* $(key.$k as f32,)*]
        }
    };
}

struct KeyFields {
    dst_port: u32,
    ip_proto: u32,
}

vector! {
    flow: flow_duration_us, total_fwd_packets, total_bwd_packets, total_fwd_bytes,
        total_bwd_bytes, fwd_pkt_len_max, fwd_pkt_len_min, fwd_pkt_len_mean, fwd_pkt_len_std,
        bwd_pkt_len_max, bwd_pkt_len_min, bwd_pkt_len_mean, bwd_pkt_len_std, flow_bytes_per_s,
        flow_packets_per_s, flow_iat_mean, flow_iat_std, flow_iat_max, flow_iat_min,
        fwd_iat_total, fwd_iat_mean, fwd_iat_std, fwd_iat_max, fwd_iat_min, bwd_iat_total,
        bwd_iat_mean, bwd_iat_std, bwd_iat_max, bwd_iat_min, fwd_psh_flags, bwd_psh_flags,
        fwd_urg_flags, bwd_urg_flags, fwd_header_bytes, bwd_header_bytes, fwd_packets_per_s,
        bwd_packets_per_s, pkt_len_min, pkt_len_max, pkt_len_mean, pkt_len_std,
        pkt_len_variance, fin_flag_count, syn_flag_count, rst_flag_count, psh_flag_count,
        ack_flag_count, urg_flag_count, cwr_flag_count, ece_flag_count, down_up_ratio,
        avg_packet_size, avg_fwd_segment_size, avg_bwd_segment_size, fwd_avg_bytes_per_bulk,
        fwd_avg_packets_per_bulk, fwd_avg_bulk_rate, bwd_avg_bytes_per_bulk,
        bwd_avg_packets_per_bulk, bwd_avg_bulk_rate, subflow_fwd_packets, subflow_fwd_bytes,
        subflow_bwd_packets, subflow_bwd_bytes, init_win_bytes_fwd, init_win_bytes_bwd,
        act_data_pkt_fwd, min_seg_size_fwd, active_mean, active_std, active_max, active_min,
        idle_mean, idle_std, idle_max, idle_min;
    host: distinct_external_dsts, distinct_dst_ports, smb_dsts, dns_query_entropy, dns_queries,
        rst_ratio, failed_conn_ratio, flows, distinct_dsts, packets_last_sec, distinct_sources,
        packets_received_last_sec;
    responder: distinct_sources, packets_received_last_sec, flows, distinct_dsts;
    levels: login, web_scan, dns, probe, half_open, slow_http, beacon, exfil, smb;
    responder_levels: dns, half_open, beacon, exfil;
    key: dst_port, ip_proto,
}

/// The model input for `ev` (missing parts read as zeros).
pub fn of_event(ev: &FlowEvent) -> [f32; LEN] {
    let key = ev.key.as_ref();
    let (_, responder) = crate::key::oriented(key);
    fill(
        &ev.features.unwrap_or_default(),
        &ev.source_context.unwrap_or_default(),
        &ev.responder_context.unwrap_or_default(),
        &ev.source_levels.unwrap_or_default(),
        &ev.responder_levels.unwrap_or_default(),
        &KeyFields {
            dst_port: responder.map_or(0, |e| e.port),
            ip_proto: key.map_or(0, |k| k.ip_proto),
        },
    )
}

/// The index of feature `name`.
pub fn index(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == name)
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "values copied exactly")]
mod tests {
    use mld_proto::{Direction, Endpoint, FlowKey};

    use super::*;

    #[test]
    fn names_are_unique_and_values_land_under_their_names() {
        let mut sorted = NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), LEN);
        let ev = FlowEvent {
            key: Some(FlowKey {
                a: Some(Endpoint { ip: vec![10, 0, 0, 1], port: 40_000 }),
                b: Some(Endpoint { ip: vec![10, 0, 0, 2], port: 445 }),
                ip_proto: 6,
                initiator: Direction::AToB as i32,
            }),
            features: Some(FlowFeatures {
                total_fwd_packets: 7,
                init_win_bytes_bwd: -1,
                idle_min: 2.5,
                ..FlowFeatures::default()
            }),
            source_context: Some(HostContext { smb_dsts: 12, ..HostContext::default() }),
            source_levels: Some(BehaviourLevels { beacon: 0.5, ..BehaviourLevels::default() }),
            responder_levels: Some(BehaviourLevels {
                half_open: 3.0,
                login: 9.0,
                ..BehaviourLevels::default()
            }),
            responder_context: Some(HostContext {
                distinct_sources: 900,
                ..HostContext::default()
            }),
            ..FlowEvent::default()
        };
        let v = of_event(&ev);
        let at = |n: &str| v[index(n).unwrap()];
        assert_eq!(at("total_fwd_packets"), 7.0);
        assert_eq!(at("init_win_bytes_bwd"), -1.0);
        assert_eq!(at("idle_min"), 2.5);
        assert_eq!(at("host_smb_dsts"), 12.0);
        assert_eq!(at("responder_distinct_sources"), 900.0);
        assert_eq!(at("level_beacon"), 0.5);
        assert_eq!(at("responder_level_half_open"), 3.0);
        // A responder's login level is not an input (nothing reports one).
        assert_eq!(index("responder_level_login"), None);
        assert_eq!(at("dst_port"), 445.0);
        assert_eq!(at("ip_proto"), 6.0);
        // The responder's port, whichever side initiated.
        let mut rev = ev.clone();
        let k = rev.key.as_mut().unwrap();
        k.initiator = Direction::BToA as i32;
        assert_eq!(of_event(&rev)[index("dst_port").unwrap()], 40_000.0);
    }
}
