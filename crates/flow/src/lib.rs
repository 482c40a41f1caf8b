//! Packets into flows, features and fast detections (DESIGN §5.1, §5.2), shared by the
//! sniffer (live and pcap), the ML detector's offline analysis and training.
//!
//! - [`capture`]: a streaming pcap/pcapng reader with Unix-nanosecond timestamps; truncation
//!   and corruption become [`capture::CaptureError`]s, never panics.
//! - [`packet`]: an L2-L4 parser (Ethernet, VLAN/QinQ, PPPoE, MPLS, Linux cooked, raw IP,
//!   loopback; IPv4/IPv6 with extension headers and fragments; TCP, UDP, ICMP/ICMPv6).
//! - [`record`]: the compact per-packet record all capture paths produce; [`reorder`] merges
//!   several capture sources into timestamp order.
//! - [`engine`]: the sharded flow table with idle/active timeouts, FIN/RST termination and
//!   counted evictions, per-host context windows ([`host`]) and the fast detector ([`fast`]).
//! - [`features`]: CICFlowMeter flow features in constant memory per flow.
//! - [`dns`]: DNS query names and their entropy.
//! - [`http`]: obvious attacks in the heads of HTTP requests.
//! - [`behave`]: long-window behaviours (slow brute force, web scans, DNS tunnels and DGA,
//!   half-open floods, slow HTTP denial of service, beacons, SMB lateral movement), one module each behind
//!   one trait; [`smb`]: the SMB/DCE-RPC request parser they use.
//!
//! ```
//! use mld_flow::packet::{parse, LinkType};
//! // Ethernet + IPv4 + UDP 10.0.0.1:5353 -> 10.0.0.2:53, 4 payload bytes.
//! let frame = [
//!     0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00,
//!     0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
//!     0x14, 0xe9, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4,
//! ];
//! let p = parse(LinkType::ETHERNET, &frame)?;
//! assert_eq!((p.src_port, p.dst_port, p.payload_len()), (5353, 53, 4));
//! # Ok::<(), mld_flow::packet::ParseError>(())
//! ```
#![forbid(unsafe_code)]

pub mod behave;
pub mod capture;
pub mod dns;
pub mod engine;
pub mod fast;
pub mod features;
pub mod host;
pub mod http;
pub mod id;
pub mod json;
pub mod key;
pub mod lru;
pub mod offline;
pub mod packet;
pub mod record;
pub mod reorder;
pub mod smb;
pub mod stats;
pub mod vector;
