//! Canonical bidirectional flow keys.

use std::net::{IpAddr, Ipv6Addr};

/// The initiator's and the responder's endpoints of an event's key, `None` where missing.
pub fn oriented(
    key: Option<&mld_proto::FlowKey>,
) -> (Option<&mld_proto::Endpoint>, Option<&mld_proto::Endpoint>) {
    let Some(k) = key else { return (None, None) };
    if mld_proto::Direction::try_from(k.initiator).unwrap_or_default() == mld_proto::Direction::BToA
    {
        (k.b.as_ref(), k.a.as_ref())
    } else {
        (k.a.as_ref(), k.b.as_ref())
    }
}

/// One endpoint, with IPv4 stored as an IPv4-mapped IPv6 address so that keys have one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    pub ip: [u8; 16],
    pub port: u16,
}

impl EndpointKey {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        let ip = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        Self { ip, port }
    }

    /// The address, IPv4 again when it was stored mapped.
    pub fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.ip);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

/// A canonical bidirectional 5-tuple: `a` is the lower endpoint (by address bytes, then
/// port), so both directions of a conversation have the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a: EndpointKey,
    pub b: EndpointKey,
    pub proto: u8,
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether the packet travels from `a` to `b`.
    pub fn of(src: EndpointKey, dst: EndpointKey, proto: u8) -> (Self, bool) {
        if src <= dst {
            (Self { a: src, b: dst, proto }, true)
        } else {
            (Self { a: dst, b: src, proto }, false)
        }
    }

    /// The initiator's and the responder's endpoints, `init_is_a` saying which is which.
    pub fn oriented(&self, init_is_a: bool) -> (EndpointKey, EndpointKey) {
        if init_is_a { (self.a, self.b) } else { (self.b, self.a) }
    }

    /// A cheap, well-mixed 64-bit value for picking a shard (not for the hash maps, which use
    /// keyed `SipHash` so that an attacker cannot aim packets at one bucket).
    pub fn shard_hash(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325_u64;
        let mix = |h: &mut u64, bytes: &[u8]| {
            for &b in bytes {
                *h = (*h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        mix(&mut h, &self.a.ip[12..]);
        mix(&mut h, &self.b.ip[12..]);
        mix(&mut h, &self.a.port.to_le_bytes());
        mix(&mut h, &self.b.port.to_le_bytes());
        mix(&mut h, &[self.proto]);
        h ^ (h >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> EndpointKey {
        EndpointKey::new(s.parse().unwrap(), port)
    }

    #[test]
    fn both_directions_share_one_key() {
        let (k1, fwd1) = FlowKey::of(ep("10.0.0.9", 40000), ep("10.0.0.1", 22), 6);
        let (k2, fwd2) = FlowKey::of(ep("10.0.0.1", 22), ep("10.0.0.9", 40000), 6);
        assert_eq!(k1, k2);
        assert_ne!(fwd1, fwd2);
        assert_eq!(k1.a, ep("10.0.0.1", 22), "lower address first");
        assert_eq!(k1.shard_hash(), k2.shard_hash());
    }

    #[test]
    fn same_address_orders_by_port_and_ipv4_round_trips() {
        let (k, fwd) = FlowKey::of(ep("192.0.2.1", 5000), ep("192.0.2.1", 53), 17);
        assert!(!fwd);
        assert_eq!((k.a.port, k.b.port), (53, 5000));
        assert_eq!(k.a.ip().to_string(), "192.0.2.1");
        assert_eq!(ep("2001:db8::1", 1).ip().to_string(), "2001:db8::1");
    }
}
