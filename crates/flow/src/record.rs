//! The compact per-packet record every capture path produces (pcap, XDP ring buffer,
//! `AF_PACKET`), so that flows and features are computed by one code path.

use std::net::IpAddr;

use crate::packet::Packet;

/// What the flow table needs from one packet. `payload_head` borrows the first captured bytes
/// of the L4 payload (the XDP program copies at most [`PAYLOAD_HEAD`] bytes, only for DNS and
/// for TCP to and from the ports of [`crate::engine::EngineConfig::head_ports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRecord<'a> {
    /// Wall-clock capture time, Unix nanoseconds.
    pub ts_ns: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// IPv4 total length, or the IPv6 payload length plus 40.
    pub ip_len: u16,
    pub ip_header_len: u16,
    /// TCP/UDP/ICMP header length; 0 for non-first fragments.
    pub l4_header_len: u16,
    /// L4 payload length according to the headers.
    pub payload_len: u16,
    pub tcp_flags: u8,
    pub tcp_window: u16,
    /// First captured bytes of the L4 payload (may be empty).
    pub payload_head: &'a [u8],
    /// Index of the capture source (interface) in the engine's source list.
    pub source: u8,
}

/// Payload bytes the XDP program hands to userspace for DNS packets and the TCP services the
/// engine reads (enough for a query name of typical length, a request or status line, or an
/// SMB session setup up to the account name; longer ones are cut and measured on what
/// arrived).
pub const PAYLOAD_HEAD: usize = 248;
const _: () = assert!(PAYLOAD_HEAD < 256, "OwnedRecord keeps the head length in a u8");

impl<'a> PacketRecord<'a> {
    /// The record for a parsed packet of `frame` captured at `ts_ns`.
    pub fn from_packet(ts_ns: u64, p: &Packet, frame: &'a [u8], source: u8) -> Self {
        let head = frame.get(p.payload.clone()).unwrap_or(&[]);
        Self {
            ts_ns,
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            src_port: p.src_port,
            dst_port: p.dst_port,
            ip_len: p.ip_len,
            ip_header_len: p.ip_header_len,
            l4_header_len: p.l4_header_len,
            payload_len: p.payload_len(),
            tcp_flags: p.tcp_flags,
            tcp_window: p.tcp_window,
            payload_head: &head[..head.len().min(PAYLOAD_HEAD)],
            source,
        }
    }
}

/// A record that owns its payload head, to cross threads or wait in a reorder buffer.
#[derive(Debug, Clone)]
pub struct OwnedRecord {
    rec: PacketRecord<'static>,
    head: [u8; PAYLOAD_HEAD],
    head_len: u8,
}

impl OwnedRecord {
    /// A copy of `r` (its payload head cut to [`PAYLOAD_HEAD`] bytes).
    pub fn new(r: &PacketRecord<'_>) -> Self {
        let mut head = [0u8; PAYLOAD_HEAD];
        let len = r.payload_head.len().min(PAYLOAD_HEAD);
        head[..len].copy_from_slice(&r.payload_head[..len]);
        #[allow(clippy::cast_possible_truncation, reason = "PAYLOAD_HEAD < 256")]
        Self { rec: PacketRecord { payload_head: &[], ..*r }, head, head_len: len as u8 }
    }

    /// The record, borrowing its payload head.
    pub fn record(&self) -> PacketRecord<'_> {
        PacketRecord { payload_head: &self.head[..usize::from(self.head_len)], ..self.rec }
    }

    /// Capture time, Unix nanoseconds.
    pub fn ts_ns(&self) -> u64 {
        self.rec.ts_ns
    }
}
