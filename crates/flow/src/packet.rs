//! L2-L4 parsing of one captured frame.
//!
//! Supported link types: Ethernet, Linux cooked capture v1 and v2, raw IP (DLT 101, 228, 229;
//! also DLT 12 and 14 as Linux and OpenBSD assign them), BSD loopback (DLT 0, 108), PPP,
//! Cisco HDLC and PPI; inside them 802.1Q/802.1ad VLAN tags, PPPoE sessions and MPLS label
//! stacks, nested at most 8 deep. Above them IPv4 and IPv6 (hop-by-hop, routing, destination
//! options and fragment headers are skipped; non-first fragments carry no ports), then TCP,
//! UDP, ICMP and ICMPv6. All multi-byte fields are read in network byte order.
//!
//! Any other frame, and any frame too short for the headers it announces, is a
//! [`ParseError`] whose [`ParseError::reason`] is a stable label for counting skips.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// A link-layer header type (tcpdump's `LINKTYPE_*` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: Self = Self(0);
    pub const ETHERNET: Self = Self(1);
    pub const PPP: Self = Self(9);
    pub const RAW_LINUX: Self = Self(12);
    pub const RAW_OPENBSD: Self = Self(14);
    pub const RAW: Self = Self(101);
    pub const C_HDLC: Self = Self(104);
    pub const LOOP: Self = Self(108);
    pub const LINUX_SLL: Self = Self(113);
    pub const PPI: Self = Self(192);
    pub const IPV4: Self = Self(228);
    pub const IPV6: Self = Self(229);
    pub const LINUX_SLL2: Self = Self(276);
}

/// IANA protocol numbers used here.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits as in the header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// What flow features need from one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IANA protocol number of the transport (after IPv6 extension headers).
    pub proto: u8,
    /// 0 for protocols without ports and for non-first fragments.
    pub src_port: u16,
    pub dst_port: u16,
    /// VLAN ids, outermost first.
    pub vlans: Vec<u16>,
    /// IPv4 total length, or IPv6 payload length plus 40.
    pub ip_len: u16,
    pub ip_header_len: u16,
    pub ttl: u8,
    /// TCP/UDP/ICMP header length (0 when unknown, e.g. non-first fragments).
    pub l4_header_len: u16,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// TCP window (0 for other protocols).
    pub tcp_window: u16,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// A fragment other than the first: no transport header.
    pub later_fragment: bool,
    /// Where the L4 payload lies in the frame (clipped to the captured bytes).
    pub payload: Range<usize>,
    /// L4 payload length by the headers (may exceed the captured bytes).
    pub payload_len_on_wire: u16,
}

impl Packet {
    /// L4 payload length as announced by the headers.
    pub fn payload_len(&self) -> u16 {
        self.payload_len_on_wire
    }
}

/// Why a frame yields no packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("unsupported link type {0}")]
    UnsupportedLink(u32),
    #[error("not IP (ethertype {0:#06x})")]
    NotIp(u16),
    #[error("truncated {0} header")]
    Truncated(&'static str),
    #[error("bad {0} header")]
    Malformed(&'static str),
}

impl ParseError {
    /// A stable label for counting skipped frames.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnsupportedLink(_) => "unsupported_link",
            Self::NotIp(_) => "not_ip",
            Self::Truncated(_) => "truncated",
            Self::Malformed(_) => "malformed",
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;

const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MULTICAST: u16 = 0x8848;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// Nested encapsulations followed at most (VLAN tags count individually).
const MAX_NESTING: usize = 8;

/// Parses one frame of link type `link`.
pub fn parse(link: LinkType, frame: &[u8]) -> Result<Packet, ParseError> {
    let mut vlans = Vec::new();
    let (ethertype, at) = link_layer(link, frame, 0, &mut vlans, 0)?;
    let mut packet = match ethertype {
        ETH_IPV4 => ipv4(frame, at)?,
        ETH_IPV6 => ipv6(frame, at)?,
        other => return Err(ParseError::NotIp(other)),
    };
    packet.vlans = vlans;
    Ok(packet)
}

/// Finds the network layer: (ethertype of what starts at the offset, offset).
fn link_layer(
    link: LinkType,
    frame: &[u8],
    at: usize,
    vlans: &mut Vec<u16>,
    depth: usize,
) -> Result<(u16, usize), ParseError> {
    match link {
        LinkType::ETHERNET => {
            let ethertype = be16(frame, at + 12).ok_or(ParseError::Truncated("ethernet"))?;
            ethertype_layer(ethertype, frame, at + 14, vlans, depth)
        }
        LinkType::LINUX_SLL => {
            let ethertype = be16(frame, at + 14).ok_or(ParseError::Truncated("linux cooked"))?;
            ethertype_layer(ethertype, frame, at + 16, vlans, depth)
        }
        LinkType::LINUX_SLL2 => {
            let ethertype = be16(frame, at).ok_or(ParseError::Truncated("linux cooked v2"))?;
            ethertype_layer(ethertype, frame, at + 20, vlans, depth)
        }
        LinkType::RAW | LinkType::RAW_LINUX | LinkType::RAW_OPENBSD => ip_by_version(frame, at),
        LinkType::IPV4 => Ok((ETH_IPV4, at)),
        LinkType::IPV6 => Ok((ETH_IPV6, at)),
        LinkType::NULL | LinkType::LOOP => {
            let raw = frame.get(at..at + 4).ok_or(ParseError::Truncated("loopback"))?;
            let family = [raw[0], raw[1], raw[2], raw[3]];
            // NULL: host byte order of the capturing machine (either); LOOP: network order.
            let (le, be) = (u32::from_le_bytes(family), u32::from_be_bytes(family));
            let family = if link == LinkType::LOOP { be } else { le.min(be) };
            match family {
                2 => Ok((ETH_IPV4, at + 4)),
                // AF_INET6 differs between BSDs: 24, 28 or 30.
                24 | 28 | 30 => Ok((ETH_IPV6, at + 4)),
                other => Err(ParseError::NotIp(u16::try_from(other).unwrap_or(u16::MAX))),
            }
        }
        LinkType::PPP => {
            // Optional address/control bytes 0xff 0x03, then the PPP protocol.
            let at = if frame.get(at..at + 2) == Some(&[0xff, 0x03]) { at + 2 } else { at };
            let protocol = be16(frame, at).ok_or(ParseError::Truncated("ppp"))?;
            ppp_protocol(protocol, at + 2)
        }
        LinkType::C_HDLC => {
            let ethertype = be16(frame, at + 2).ok_or(ParseError::Truncated("cisco hdlc"))?;
            ethertype_layer(ethertype, frame, at + 4, vlans, depth)
        }
        LinkType::PPI => {
            // Per-Packet Information: version, flags, header length (LE), inner DLT (LE).
            let h = frame.get(at..at + 8).ok_or(ParseError::Truncated("ppi"))?;
            let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
            let inner = LinkType(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
            if len < 8 || inner == LinkType::PPI || depth >= MAX_NESTING {
                return Err(ParseError::Malformed("ppi"));
            }
            link_layer(inner, frame, at + len, vlans, depth + 1)
        }
        LinkType(other) => Err(ParseError::UnsupportedLink(other)),
    }
}

/// Follows VLAN tags, PPPoE sessions and MPLS label stacks to the network layer.
fn ethertype_layer(
    ethertype: u16,
    frame: &[u8],
    at: usize,
    vlans: &mut Vec<u16>,
    depth: usize,
) -> Result<(u16, usize), ParseError> {
    if depth >= MAX_NESTING {
        return Err(ParseError::Malformed("encapsulation (nested too deep)"));
    }
    match ethertype {
        ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
            let tci = be16(frame, at).ok_or(ParseError::Truncated("vlan"))?;
            vlans.push(tci & 0x0fff);
            let inner = be16(frame, at + 2).ok_or(ParseError::Truncated("vlan"))?;
            ethertype_layer(inner, frame, at + 4, vlans, depth + 1)
        }
        ETH_PPPOE_SESSION => {
            // version/type, code, session id, length, then the PPP protocol.
            let protocol = be16(frame, at + 6).ok_or(ParseError::Truncated("pppoe"))?;
            ppp_protocol(protocol, at + 8)
        }
        ETH_MPLS | ETH_MPLS_MULTICAST => {
            let mut at = at;
            for _ in 0..MAX_NESTING {
                let label = frame.get(at..at + 4).ok_or(ParseError::Truncated("mpls"))?;
                at += 4;
                if label[2] & 0x01 != 0 {
                    return ip_by_version(frame, at);
                }
            }
            Err(ParseError::Malformed("mpls (label stack too deep)"))
        }
        other => Ok((other, at)),
    }
}

fn ppp_protocol(protocol: u16, at: usize) -> Result<(u16, usize), ParseError> {
    match protocol {
        PPP_IPV4 => Ok((ETH_IPV4, at)),
        PPP_IPV6 => Ok((ETH_IPV6, at)),
        other => Err(ParseError::NotIp(other)),
    }
}

fn ip_by_version(frame: &[u8], at: usize) -> Result<(u16, usize), ParseError> {
    match frame.get(at).ok_or(ParseError::Truncated("ip"))? >> 4 {
        4 => Ok((ETH_IPV4, at)),
        6 => Ok((ETH_IPV6, at)),
        _ => Err(ParseError::Malformed("ip version")),
    }
}

/// Network layer result before the transport is parsed.
#[derive(Clone, Copy)]
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    total_len: u16,
    header_len: u16,
    ttl: u8,
    /// Offset of the transport header.
    l4_at: usize,
    /// Transport bytes by the IP header (header + payload).
    l4_len: u16,
    later_fragment: bool,
}

fn ipv4(frame: &[u8], at: usize) -> Result<Packet, ParseError> {
    let h = frame.get(at..at + 20).ok_or(ParseError::Truncated("ipv4"))?;
    if h[0] >> 4 != 4 {
        return Err(ParseError::Malformed("ipv4 version"));
    }
    let ihl = u16::from(h[0] & 0x0f) * 4;
    let total = u16::from_be_bytes([h[2], h[3]]);
    if ihl < 20 || total < ihl {
        return Err(ParseError::Malformed("ipv4 length"));
    }
    if frame.len() < at + usize::from(ihl) {
        return Err(ParseError::Truncated("ipv4 options"));
    }
    let frag = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    transport(
        frame,
        Ip {
            src,
            dst,
            proto: h[9],
            total_len: total,
            header_len: ihl,
            ttl: h[8],
            l4_at: at + usize::from(ihl),
            l4_len: total - ihl,
            later_fragment: frag != 0,
        },
    )
}

fn ipv6(frame: &[u8], at: usize) -> Result<Packet, ParseError> {
    let h = frame.get(at..at + 40).ok_or(ParseError::Truncated("ipv6"))?;
    if h[0] >> 4 != 6 {
        return Err(ParseError::Malformed("ipv6 version"));
    }
    let payload_len = u16::from_be_bytes([h[4], h[5]]);
    let mut next = h[6];
    let ttl = h[7];
    let mut src = [0; 16];
    src.copy_from_slice(&h[8..24]);
    let mut dst = [0; 16];
    dst.copy_from_slice(&h[24..40]);
    let mut off = at + 40;
    let mut ext_len: u16 = 0;
    let mut later_fragment = false;
    // Hop-by-hop, routing, fragment, destination options; at most 8 headers.
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let e = frame.get(off..off + 2).ok_or(ParseError::Truncated("ipv6 extension"))?;
                let len = (u16::from(e[1]) + 1) * 8;
                next = e[0];
                off += usize::from(len);
                ext_len = ext_len.saturating_add(len);
            }
            44 => {
                let e = frame.get(off..off + 8).ok_or(ParseError::Truncated("ipv6 fragment"))?;
                later_fragment = u16::from_be_bytes([e[2], e[3]]) >> 3 != 0;
                next = e[0];
                off += 8;
                ext_len = ext_len.saturating_add(8);
            }
            _ => break,
        }
    }
    if ext_len > payload_len {
        return Err(ParseError::Malformed("ipv6 extension length"));
    }
    transport(
        frame,
        Ip {
            src: IpAddr::V6(Ipv6Addr::from(src)),
            dst: IpAddr::V6(Ipv6Addr::from(dst)),
            proto: next,
            total_len: payload_len.saturating_add(40),
            header_len: 40 + ext_len,
            ttl,
            l4_at: off,
            l4_len: payload_len - ext_len,
            later_fragment,
        },
    )
}

fn transport(frame: &[u8], ip: Ip) -> Result<Packet, ParseError> {
    let mut p = Packet {
        src: ip.src,
        dst: ip.dst,
        proto: ip.proto,
        src_port: 0,
        dst_port: 0,
        vlans: Vec::new(),
        ip_len: ip.total_len,
        ip_header_len: ip.header_len,
        ttl: ip.ttl,
        l4_header_len: 0,
        tcp_flags: 0,
        tcp_window: 0,
        icmp: None,
        later_fragment: ip.later_fragment,
        payload: ip.l4_at.min(frame.len())..ip.l4_at.min(frame.len()),
        payload_len_on_wire: ip.l4_len,
    };
    if ip.later_fragment {
        p.payload = ip.l4_at.min(frame.len())..(ip.l4_at + usize::from(ip.l4_len)).min(frame.len());
        return Ok(p);
    }
    let l4 = frame.get(ip.l4_at..).unwrap_or_default();
    let header_len: u16 = match ip.proto {
        proto::TCP => {
            let t = l4.get(..20).ok_or(ParseError::Truncated("tcp"))?;
            p.src_port = u16::from_be_bytes([t[0], t[1]]);
            p.dst_port = u16::from_be_bytes([t[2], t[3]]);
            p.tcp_flags = t[13];
            p.tcp_window = u16::from_be_bytes([t[14], t[15]]);
            let len = u16::from(t[12] >> 4) * 4;
            if len < 20 {
                return Err(ParseError::Malformed("tcp data offset"));
            }
            len
        }
        proto::UDP => {
            let u = l4.get(..8).ok_or(ParseError::Truncated("udp"))?;
            p.src_port = u16::from_be_bytes([u[0], u[1]]);
            p.dst_port = u16::from_be_bytes([u[2], u[3]]);
            8
        }
        proto::ICMP | proto::ICMPV6 => {
            let i = l4.get(..4).ok_or(ParseError::Truncated("icmp"))?;
            p.icmp = Some((i[0], i[1]));
            // Type, code, checksum and the 4-byte rest of header.
            8
        }
        _ => 0,
    };
    if header_len > ip.l4_len {
        return Err(ParseError::Malformed("transport length"));
    }
    p.l4_header_len = header_len;
    p.payload_len_on_wire = ip.l4_len - header_len;
    let start = (ip.l4_at + usize::from(header_len)).min(frame.len());
    let end = (ip.l4_at + usize::from(ip.l4_len)).min(frame.len()).max(start);
    p.payload = start..end;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MACS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    fn ipv4_tcp_syn() -> Vec<u8> {
        let mut ip =
            vec![0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7];
        // TCP 40000 -> 443, data offset 6 (one 4-byte option), SYN, window 64240.
        ip.extend_from_slice(&[
            0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
        ]);
        ip.extend_from_slice(&[2, 4, 5, 0xb4]);
        ip
    }

    fn ipv6_udp_with_hop_by_hop() -> Vec<u8> {
        let mut ip = vec![0x60, 0, 0, 0, 0, 20, 0, 255];
        ip.extend_from_slice(
            &[0x20, 0x01, 0x0d, 0xb8].into_iter().chain([0; 11]).chain([1]).collect::<Vec<_>>(),
        );
        ip.extend_from_slice(
            &[0x20, 0x01, 0x0d, 0xb8].into_iter().chain([0; 11]).chain([2]).collect::<Vec<_>>(),
        );
        ip.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, next = UDP
        ip.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 12, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]);
        ip
    }

    fn ether(ethertype: &[u8], inner: &[u8]) -> Vec<u8> {
        [&MACS[..], ethertype, inner].concat()
    }

    #[test]
    fn ipv4_tcp_fields_in_network_byte_order() {
        let p = parse(LinkType::ETHERNET, &ether(&[8, 0], &ipv4_tcp_syn())).unwrap();
        assert_eq!(p.src, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.dst, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!((p.proto, p.src_port, p.dst_port), (proto::TCP, 40_000, 443));
        assert_eq!((p.tcp_flags, p.tcp_window), (tcp_flags::SYN, 64_240));
        assert_eq!((p.ip_len, p.ip_header_len, p.l4_header_len, p.payload_len()), (44, 20, 24, 0));
        assert_eq!(p.ttl, 64);
        assert!(p.vlans.is_empty() && !p.later_fragment);
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let frame = ether(&[0x86, 0xdd], &ipv6_udp_with_hop_by_hop());
        let p = parse(LinkType::ETHERNET, &frame).unwrap();
        assert_eq!((p.proto, p.src_port, p.dst_port, p.payload_len()), (proto::UDP, 12_345, 53, 4));
        assert_eq!(&frame[p.payload.clone()], &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(p.ip_header_len, 48);
    }

    #[test]
    fn encapsulations_reach_the_same_packet() {
        let ip = ipv4_tcp_syn();
        let vlan = ether(&[0x81, 0, 0x20, 0x0a, 8, 0], &ip);
        let qinq = ether(&[0x88, 0xa8, 0, 0x64, 0x81, 0, 0, 0xc8, 8, 0], &ip);
        let pppoe = ether(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 46, 0, 0x21], &ip);
        let mpls = ether(&[0x88, 0x47, 0, 0x01, 0x20, 64, 0, 0x02, 0x01, 64], &ip);
        let sll = [&[0, 0, 0, 1, 0, 6][..], &MACS[..6], &[0, 0, 8, 0], &ip].concat();
        let null = [&2_u32.to_le_bytes()[..], &ip].concat();
        let hdlc = [&[0x0f, 0, 8, 0][..], &ip].concat();
        let ppp = [&[0xff, 0x03, 0, 0x21][..], &ip].concat();
        let ppi = [&[0, 0, 8, 0, 1, 0, 0, 0][..], &ether(&[8, 0], &ip)].concat();
        let cases: [(LinkType, &[u8], &[u16]); 10] = [
            (LinkType::ETHERNET, &vlan, &[10]),
            (LinkType::ETHERNET, &qinq, &[100, 200]),
            (LinkType::ETHERNET, &pppoe, &[]),
            (LinkType::ETHERNET, &mpls, &[]),
            (LinkType::LINUX_SLL, &sll, &[]),
            (LinkType::NULL, &null, &[]),
            (LinkType::C_HDLC, &hdlc, &[]),
            (LinkType::PPP, &ppp, &[]),
            (LinkType::PPI, &ppi, &[]),
            (LinkType::RAW, &ip, &[]),
        ];
        for (link, frame, vlans) in cases {
            let p = parse(link, frame).unwrap_or_else(|e| panic!("{link:?}: {e}"));
            assert_eq!(
                (p.src_port, p.dst_port, p.tcp_flags),
                (40_000, 443, tcp_flags::SYN),
                "{link:?}"
            );
            assert_eq!(p.vlans, vlans, "{link:?}");
        }
    }

    #[test]
    fn later_fragments_carry_no_ports() {
        let mut ip = ipv4_tcp_syn();
        ip[6] = 0x00;
        ip[7] = 0x10; // fragment offset 16 * 8 bytes
        let p = parse(LinkType::RAW, &ip).unwrap();
        assert!(p.later_fragment);
        assert_eq!((p.src_port, p.dst_port, p.payload_len()), (0, 0, 24));
    }

    #[test]
    fn what_is_not_ip_says_why() {
        let arp = ether(&[8, 6], &[0; 28]);
        assert_eq!(parse(LinkType::ETHERNET, &arp), Err(ParseError::NotIp(0x0806)));
        assert_eq!(parse(LinkType(147), &[0; 60]), Err(ParseError::UnsupportedLink(147)));
        let mut bad = ipv4_tcp_syn();
        bad[0] = 0x44; // IHL 16 bytes
        assert_eq!(parse(LinkType::RAW, &bad).unwrap_err().reason(), "malformed");
        let mut short_tcp = ipv4_tcp_syn();
        short_tcp[32] = 0x40; // data offset 16 bytes
        assert_eq!(parse(LinkType::RAW, &short_tcp), Err(ParseError::Malformed("tcp data offset")));
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_payload_never_a_panic() {
        let frames =
            [ether(&[8, 0], &ipv4_tcp_syn()), ether(&[0x86, 0xdd], &ipv6_udp_with_hop_by_hop())];
        for frame in frames {
            for len in 0..frame.len() {
                if let Ok(p) = parse(LinkType::ETHERNET, &frame[..len]) {
                    assert!(p.payload.end <= len);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(
            link in prop::sample::select(vec![0_u32, 1, 9, 12, 101, 104, 108, 113, 192, 228, 229, 276]),
            bytes in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            if let Ok(p) = parse(LinkType(link), &bytes) {
                prop_assert!(p.payload.start <= p.payload.end && p.payload.end <= bytes.len());
            }
        }
    }
}
