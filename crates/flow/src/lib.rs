//! Packets into flows: capture-file reading and L2-L4 parsing (work in progress for issue #3).
//!
//! What is here:
//! - [`capture`]: a streaming reader of pcap (µs and ns, either byte order) and pcapng files
//!   (every section and interface, `if_tsresol` and `if_tsoffset` honoured) that yields
//!   [`capture::Frame`]s with Unix-nanosecond timestamps, one block at a time, and turns
//!   truncation and corruption into [`capture::CaptureError`]s instead of panics.
//! - [`packet`]: a parser from a frame of a given link type (Ethernet with up to two VLAN tags,
//!   Linux cooked capture, raw IP, BSD loopback) through IPv4/IPv6 (with extension headers and
//!   fragments) to TCP, UDP and ICMP/ICMPv6, yielding the fields flow features need and the
//!   L4 payload's position (for DNS names), or a [`packet::ParseError`] saying why not.
//!
//! Not here yet (issue #3): the flow table, CICFlowMeter features, host context windows, the
//! fast detector.
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

pub mod capture;
pub mod packet;
