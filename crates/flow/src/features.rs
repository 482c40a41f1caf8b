//! CICFlowMeter flow features, computed in constant memory per flow.
//!
//! Definitions follow CICFlowMeter-V4 (`BasicFlow.java`), the extractor behind the
//! CIC-IDS2017/2018 datasets: lengths are L4 payload bytes, times microseconds, standard
//! deviations sample (n − 1), "forward" is the initiator's direction, the activity timeout
//! for active/idle periods is 5 s and a subflow or bulk ends after a gap of more than 1 s.
//! Deliberate differences, each a bug or ambiguity in the original, are listed in
//! `docs/features.md` and checked by the differential test against the reference extractor.

use mld_proto::FlowFeatures;

use crate::packet::tcp_flags as f;
use crate::record::PacketRecord;
use crate::stats::Running;

/// Gap ending an active period (CICFlowMeter's activity timeout), µs.
pub const ACTIVITY_TIMEOUT_US: f64 = 5_000_000.0;
/// Gap ending a subflow or a bulk, µs.
pub const SUBFLOW_GAP_US: f64 = 1_000_000.0;
/// Packets in a row, in one direction, that make a bulk.
pub const BULK_MIN_PACKETS: u64 = 4;

/// Bulk-transfer bookkeeping of one direction.
#[derive(Debug, Clone, Copy, Default)]
struct Bulk {
    /// Start of the candidate bulk (`None`: none).
    start_us: Option<f64>,
    last_us: f64,
    helper_packets: u64,
    helper_bytes: u64,
    bulks: u64,
    packets: u64,
    bytes: u64,
    duration_us: f64,
}

impl Bulk {
    /// CICFlowMeter's `updateForwardBulk`/`updateBackwardBulk`.
    fn update(&mut self, ts_us: f64, size: u64, last_bulk_in_other_us: f64) {
        if self.start_us.is_some_and(|start| last_bulk_in_other_us > start) {
            self.start_us = None;
        }
        if size == 0 {
            return;
        }
        let Some(start) = self.start_us.filter(|_| ts_us - self.last_us <= SUBFLOW_GAP_US) else {
            self.start_us = Some(ts_us);
            self.last_us = ts_us;
            self.helper_packets = 1;
            self.helper_bytes = size;
            return;
        };
        self.helper_packets += 1;
        self.helper_bytes += size;
        if self.helper_packets == BULK_MIN_PACKETS {
            self.bulks += 1;
            self.packets += self.helper_packets;
            self.bytes += self.helper_bytes;
            self.duration_us += ts_us - start;
        } else if self.helper_packets > BULK_MIN_PACKETS {
            self.packets += 1;
            self.bytes += size;
            self.duration_us += ts_us - self.last_us;
        }
        self.last_us = ts_us;
    }

    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    fn averages(&self) -> (f64, f64, f64) {
        if self.bulks == 0 {
            return (0.0, 0.0, 0.0);
        }
        let rate =
            if self.duration_us > 0.0 { self.bytes as f64 / (self.duration_us / 1e6) } else { 0.0 };
        (self.bytes as f64 / self.bulks as f64, self.packets as f64 / self.bulks as f64, rate)
    }
}

/// Per-direction state.
#[derive(Debug, Clone, Copy, Default)]
struct Side {
    packets: u64,
    bytes: u64,
    len: Running,
    iat: Running,
    last_us: f64,
    header_bytes: u64,
    psh: u64,
    urg: u64,
    /// TCP window of the first packet (-1: none seen).
    init_win: i64,
    data_packets: u64,
    min_header: u64,
    bulk: Bulk,
}

/// The running state of one flow; [`FlowStats::features`] turns it into CIC features.
#[derive(Debug, Clone)]
pub struct FlowStats {
    /// Times are kept in µs relative to the first packet, so that f64 keeps sub-µs precision.
    first_ns: u64,
    last_us: f64,
    fwd: Side,
    bwd: Side,
    all_len: Running,
    flow_iat: Running,
    flags: [u64; 8],
    active: Running,
    idle: Running,
    active_start_us: f64,
    active_end_us: f64,
    subflows: u64,
}

fn us(ts_ns: u64, first_ns: u64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "flow-relative ns fit f64 exactly for 104 days")]
    let v = ts_ns.saturating_sub(first_ns) as f64 / 1_000.0;
    v
}

impl FlowStats {
    /// A flow starting with `first`, sent in the forward direction.
    pub fn new(first: &PacketRecord<'_>) -> Self {
        let t = 0.0;
        let side = Side { init_win: -1, min_header: u64::MAX, ..Side::default() };
        let mut s = Self {
            first_ns: first.ts_ns,
            last_us: t,
            fwd: side,
            bwd: side,
            all_len: Running::default(),
            flow_iat: Running::default(),
            flags: [0; 8],
            active: Running::default(),
            idle: Running::default(),
            active_start_us: t,
            active_end_us: t,
            subflows: 1,
        };
        s.add(first, true);
        s
    }

    /// Adds a packet; `forward` when it travels in the initiator's direction.
    pub fn add(&mut self, p: &PacketRecord<'_>, forward: bool) {
        // Timestamps in a capture can step back slightly; never let time run backwards.
        let t = us(p.ts_ns, self.first_ns).max(self.last_us);
        let first = self.fwd.packets + self.bwd.packets == 0;
        if !first {
            let gap = t - self.last_us;
            self.flow_iat.add(gap);
            if gap > SUBFLOW_GAP_US {
                self.subflows += 1;
            }
            if t - self.active_end_us > ACTIVITY_TIMEOUT_US {
                let active = self.active_end_us - self.active_start_us;
                if active > 0.0 {
                    self.active.add(active);
                }
                self.idle.add(t - self.active_end_us);
                self.active_start_us = t;
            }
            self.active_end_us = t;
        }
        self.last_us = t;

        let size = u64::from(p.payload_len);
        let header = u64::from(p.l4_header_len);
        let (side, other_bulk_last) = if forward {
            (&mut self.fwd, self.bwd.bulk.last_us)
        } else {
            (&mut self.bwd, self.fwd.bulk.last_us)
        };
        side.bulk.update(t, size, other_bulk_last);
        if side.packets > 0 {
            side.iat.add(t - side.last_us);
        }
        side.last_us = t;
        side.packets += 1;
        side.bytes += size;
        #[allow(clippy::cast_precision_loss, reason = "lengths below 2^16")]
        side.len.add(size as f64);
        side.header_bytes += header;
        side.min_header = side.min_header.min(header);
        if size > 0 {
            side.data_packets += 1;
        }
        if p.tcp_flags & f::PSH != 0 {
            side.psh += 1;
        }
        if p.tcp_flags & f::URG != 0 {
            side.urg += 1;
        }
        if side.init_win < 0 && p.proto == crate::packet::proto::TCP {
            side.init_win = i64::from(p.tcp_window);
        }
        #[allow(clippy::cast_precision_loss, reason = "lengths below 2^16")]
        self.all_len.add(size as f64);
        for (bit, count) in self.flags.iter_mut().enumerate() {
            if p.tcp_flags & (1 << bit) != 0 {
                *count += 1;
            }
        }
    }

    /// Packets in both directions.
    pub fn packets(&self) -> u64 {
        self.fwd.packets + self.bwd.packets
    }

    pub fn fwd_packets(&self) -> u64 {
        self.fwd.packets
    }

    pub fn bwd_packets(&self) -> u64 {
        self.bwd.packets
    }

    /// Payload bytes from the initiator.
    pub fn fwd_bytes(&self) -> u64 {
        self.fwd.bytes
    }

    /// Payload bytes from the responder.
    pub fn bwd_bytes(&self) -> u64 {
        self.bwd.bytes
    }

    /// Payload bytes in both directions.
    pub fn bytes(&self) -> u64 {
        self.fwd.bytes + self.bwd.bytes
    }

    /// Count of packets carrying TCP flag `flag` (one of [`crate::packet::tcp_flags`]).
    pub fn flag_count(&self, flag: u8) -> u64 {
        self.flags[flag.trailing_zeros() as usize & 7]
    }

    /// The CICFlowMeter features of the flow so far.
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    pub fn features(&self) -> FlowFeatures {
        let duration = self.last_us;
        let secs = duration / 1e6;
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let (fwd, bwd) = (&self.fwd, &self.bwd);
        let packets = self.packets();
        // The last active period is still open.
        let mut active = self.active;
        let open = self.active_end_us - self.active_start_us;
        if open > 0.0 {
            active.add(open);
        }
        let (fab, fap, fabr) = fwd.bulk.averages();
        let (bab, bap, babr) = bwd.bulk.averages();
        let fl = |flag: u8| self.flag_count(flag);
        FlowFeatures {
            flow_duration_us: duration,
            total_fwd_packets: fwd.packets,
            total_bwd_packets: bwd.packets,
            total_fwd_bytes: fwd.bytes,
            total_bwd_bytes: bwd.bytes,
            fwd_pkt_len_max: fwd.len.max(),
            fwd_pkt_len_min: fwd.len.min(),
            fwd_pkt_len_mean: fwd.len.mean(),
            fwd_pkt_len_std: fwd.len.std(),
            bwd_pkt_len_max: bwd.len.max(),
            bwd_pkt_len_min: bwd.len.min(),
            bwd_pkt_len_mean: bwd.len.mean(),
            bwd_pkt_len_std: bwd.len.std(),
            flow_bytes_per_s: per_sec(self.bytes()),
            flow_packets_per_s: per_sec(packets),
            flow_iat_mean: self.flow_iat.mean(),
            flow_iat_std: self.flow_iat.std(),
            flow_iat_max: self.flow_iat.max(),
            flow_iat_min: self.flow_iat.min(),
            fwd_iat_total: fwd.iat.sum(),
            fwd_iat_mean: fwd.iat.mean(),
            fwd_iat_std: fwd.iat.std(),
            fwd_iat_max: fwd.iat.max(),
            fwd_iat_min: fwd.iat.min(),
            bwd_iat_total: bwd.iat.sum(),
            bwd_iat_mean: bwd.iat.mean(),
            bwd_iat_std: bwd.iat.std(),
            bwd_iat_max: bwd.iat.max(),
            bwd_iat_min: bwd.iat.min(),
            fwd_psh_flags: fwd.psh,
            bwd_psh_flags: bwd.psh,
            fwd_urg_flags: fwd.urg,
            bwd_urg_flags: bwd.urg,
            fwd_header_bytes: fwd.header_bytes,
            bwd_header_bytes: bwd.header_bytes,
            fwd_packets_per_s: per_sec(fwd.packets),
            bwd_packets_per_s: per_sec(bwd.packets),
            pkt_len_min: self.all_len.min(),
            pkt_len_max: self.all_len.max(),
            pkt_len_mean: self.all_len.mean(),
            pkt_len_std: self.all_len.std(),
            pkt_len_variance: self.all_len.variance(),
            fin_flag_count: fl(f::FIN),
            syn_flag_count: fl(f::SYN),
            rst_flag_count: fl(f::RST),
            psh_flag_count: fl(f::PSH),
            ack_flag_count: fl(f::ACK),
            urg_flag_count: fl(f::URG),
            cwr_flag_count: fl(f::CWR),
            ece_flag_count: fl(f::ECE),
            down_up_ratio: if fwd.packets > 0 {
                bwd.packets as f64 / fwd.packets as f64
            } else {
                0.0
            },
            avg_packet_size: if packets > 0 { self.bytes() as f64 / packets as f64 } else { 0.0 },
            avg_fwd_segment_size: fwd.len.mean(),
            avg_bwd_segment_size: bwd.len.mean(),
            fwd_avg_bytes_per_bulk: fab,
            fwd_avg_packets_per_bulk: fap,
            fwd_avg_bulk_rate: fabr,
            bwd_avg_bytes_per_bulk: bab,
            bwd_avg_packets_per_bulk: bap,
            bwd_avg_bulk_rate: babr,
            subflow_fwd_packets: fwd.packets / self.subflows,
            subflow_fwd_bytes: fwd.bytes / self.subflows,
            subflow_bwd_packets: bwd.packets / self.subflows,
            subflow_bwd_bytes: bwd.bytes / self.subflows,
            init_win_bytes_fwd: fwd.init_win,
            init_win_bytes_bwd: bwd.init_win,
            act_data_pkt_fwd: fwd.data_packets,
            min_seg_size_fwd: if fwd.min_header == u64::MAX { 0 } else { fwd.min_header },
            active_mean: active.mean(),
            active_std: active.std(),
            active_max: active.max(),
            active_min: active.min(),
            idle_mean: self.idle.mean(),
            idle_std: self.idle.std(),
            idle_max: self.idle.max(),
            idle_min: self.idle.min(),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::ignored_unit_patterns,
    reason = "exact expected values in tests"
)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn rec(ts_ms: u64, payload: u16, flags: u8, window: u16) -> PacketRecord<'static> {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        PacketRecord {
            ts_ns: 1_700_000_000_000_000_000 + ts_ms * 1_000_000,
            src: a,
            dst: a,
            proto: 6,
            src_port: 1,
            dst_port: 2,
            ip_len: 40 + payload,
            ip_header_len: 20,
            l4_header_len: 20,
            payload_len: payload,
            tcp_flags: flags,
            tcp_window: window,
            payload_head: &[],
            source: 0,
        }
    }

    /// A hand-computed TCP conversation: SYN, SYN-ACK, ACK, 100 B request, 1000 B reply,
    /// then after 7 s idle a FIN from each side.
    #[test]
    fn known_conversation() {
        let mut s = FlowStats::new(&rec(0, 0, f::SYN, 64240));
        s.add(&rec(1, 0, f::SYN | f::ACK, 65160), false);
        s.add(&rec(2, 0, f::ACK, 502), true);
        s.add(&rec(3, 100, f::PSH | f::ACK, 502), true);
        s.add(&rec(10, 1000, f::PSH | f::ACK, 509), false);
        s.add(&rec(7_010, 0, f::FIN | f::ACK, 502), true);
        s.add(&rec(7_011, 0, f::FIN | f::ACK, 509), false);
        let x = s.features();
        assert_eq!(x.flow_duration_us, 7_011_000.0);
        assert_eq!((x.total_fwd_packets, x.total_bwd_packets), (4, 3));
        assert_eq!((x.total_fwd_bytes, x.total_bwd_bytes), (100, 1000));
        assert_eq!((x.fwd_pkt_len_max, x.fwd_pkt_len_min, x.fwd_pkt_len_mean), (100.0, 0.0, 25.0));
        assert!((x.fwd_pkt_len_std - 50.0).abs() < 1e-9); // sample std of 0, 0, 100, 0
        assert_eq!((x.init_win_bytes_fwd, x.init_win_bytes_bwd), (64240, 65160));
        assert_eq!((x.syn_flag_count, x.fin_flag_count, x.ack_flag_count), (2, 2, 6));
        assert_eq!((x.fwd_psh_flags, x.bwd_psh_flags), (1, 1));
        assert_eq!((x.fwd_header_bytes, x.min_seg_size_fwd), (80, 20));
        assert_eq!(x.act_data_pkt_fwd, 1);
        assert_eq!(x.flow_iat_max, 7_000_000.0);
        assert_eq!(x.flow_iat_min, 1_000.0);
        assert_eq!(x.fwd_iat_total, 7_010_000.0);
        assert_eq!(x.bwd_iat_total, 7_010_000.0);
        // One idle gap of 7 s; active periods 10 ms before it and 1 ms after.
        assert_eq!((x.idle_mean, x.idle_max), (7_000_000.0, 7_000_000.0));
        assert_eq!((x.active_max, x.active_min), (10_000.0, 1_000.0));
        assert_eq!(x.subflow_fwd_packets, 2); // two subflows split by the 7 s gap
        assert!((x.flow_bytes_per_s - 1100.0 / 7.011).abs() < 1e-6);
        assert!((x.down_up_ratio - 0.75).abs() < 1e-12);
    }

    #[test]
    fn bulk_needs_four_data_packets_within_a_second() {
        let mut s = FlowStats::new(&rec(0, 0, f::SYN, 1));
        for i in 1..=6 {
            s.add(&rec(i * 10, 1000, f::ACK, 1), true);
        }
        let x = s.features();
        assert_eq!(x.fwd_avg_bytes_per_bulk, 6000.0);
        assert_eq!(x.fwd_avg_packets_per_bulk, 6.0);
        assert!((x.fwd_avg_bulk_rate - 6000.0 / 0.05).abs() < 1e-6);
        assert_eq!(x.bwd_avg_bytes_per_bulk, 0.0);
    }

    #[test]
    fn single_packet_flow_has_zero_rates_not_infinity() {
        let x = FlowStats::new(&rec(0, 10, 0, 0)).features();
        assert_eq!((x.flow_duration_us, x.flow_bytes_per_s, x.flow_packets_per_s), (0.0, 0.0, 0.0));
        assert_eq!(x.init_win_bytes_bwd, -1);
    }
}
