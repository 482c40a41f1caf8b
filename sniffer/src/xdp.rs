//! The XDP capture path: loads `sniffer-ebpf/xdp_sniffer.c` (compiled by `build.rs`) with
//! aya, attaches it to an interface in native mode or generic mode, and reads its ring buffer
//! and per-CPU counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use mld_flow::record::PacketRecord;
use mld_proto::CaptureMode;

#[repr(C, align(32))]
struct Aligned<B: ?Sized> {
    bytes: B,
}

/// The compiled program, aligned for the ELF parser.
static PROGRAM: &Aligned<[u8]> =
    &Aligned { bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/xdp_sniffer.o")) };

/// Size of `struct mld_record`, and of `struct mld_head_record` (record + payload head).
pub const RECORD_LEN: usize = 72;
pub const HEAD_RECORD_LEN: usize = RECORD_LEN + mld_flow::record::PAYLOAD_HEAD;

/// The program's counters, in `COUNTERS` order.
pub const COUNTER_NAMES: [&str; 7] =
    ["recorded", "ring_full", "not_ip", "truncated", "malformed", "unsupported", "bytes"];

/// Why XDP could not be used on an interface.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "loading the XDP program failed (is this root, or does it have CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN?): {0}"
    )]
    Load(String),
    #[error("interface {0:?} does not exist")]
    NoInterface(String),
    #[error("attaching XDP to {iface} failed in {tried}: {error}")]
    Attach { iface: String, tried: String, error: String },
}

/// The program attached to one interface, with its ring buffer and counters.
pub struct XdpCapture {
    pub iface: String,
    pub mode: CaptureMode,
    pub ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    /// TCP destination ports whose payload heads the program copies.
    head_ports: HashMap<MapData, u16, u8>,
    // Detaches on drop (owns the program and its link).
    _ebpf: Ebpf,
}

/// Whether `iface` names an interface of this process's network namespace. Asked of the kernel
/// (`SIOCGIFINDEX`), not of `/sys/class/net`: a sysfs mounted in another namespace (a
/// container's) lists that namespace's interfaces.
fn interface_exists(iface: &str) -> bool {
    if iface.is_empty() || iface.contains('\0') {
        return false;
    }
    rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None)
        .and_then(|fd| rustix::net::netdevice::name_to_index(&fd, iface))
        .is_ok()
}

impl XdpCapture {
    /// Loads and attaches. `modes` are tried in order (native, then generic for `auto`); the
    /// program copies the payload heads of TCP packets to `head_ports` (and of DNS).
    pub fn attach(
        iface: &str,
        modes: &[CaptureMode],
        ring_bytes: u32,
        head_ports: &[u16],
    ) -> Result<Self, XdpError> {
        if !interface_exists(iface) {
            return Err(XdpError::NoInterface(iface.to_owned()));
        }
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("RECORDS", ring_bytes)
            .load(&PROGRAM.bytes)
            .map_err(|e| XdpError::Load(format!("{e:#}")))?;
        let program: &mut Xdp = ebpf
            .program_mut("mld_xdp_sniffer")
            .ok_or_else(|| {
                XdpError::Load("program mld_xdp_sniffer missing from the object".into())
            })?
            .try_into()
            .map_err(|e| XdpError::Load(format!("{e:#}")))?;
        program.load().map_err(|e| XdpError::Load(format!("{e:#}")))?;
        let mut errors = Vec::new();
        let mut attached = None;
        for &mode in modes {
            let flags = if mode == CaptureMode::XdpNative { XdpMode::Driver } else { XdpMode::Skb };
            match program.attach(iface, flags) {
                Ok(_) => {
                    attached = Some(mode);
                    break;
                }
                Err(e) => errors.push(format!("{}: {e:#}", mode.as_str_name())),
            }
        }
        let Some(mode) = attached else {
            let tried = modes.iter().map(CaptureMode::as_str_name).collect::<Vec<_>>().join(", ");
            return Err(XdpError::Attach {
                iface: iface.to_owned(),
                tried,
                error: errors.join("; "),
            });
        };
        let ring =
            ebpf.take_map("RECORDS").ok_or_else(|| XdpError::Load("map RECORDS missing".into()))?;
        let ring = RingBuf::try_from(ring).map_err(|e| XdpError::Load(format!("{e:#}")))?;
        let counters = ebpf
            .take_map("COUNTERS")
            .ok_or_else(|| XdpError::Load("map COUNTERS missing".into()))?;
        let counters =
            PerCpuArray::try_from(counters).map_err(|e| XdpError::Load(format!("{e:#}")))?;
        let ports = ebpf
            .take_map("HEAD_PORTS")
            .ok_or_else(|| XdpError::Load("map HEAD_PORTS missing".into()))?;
        let ports = HashMap::try_from(ports).map_err(|e| XdpError::Load(format!("{e:#}")))?;
        let mut capture =
            Self { iface: iface.to_owned(), mode, ring, counters, head_ports: ports, _ebpf: ebpf };
        capture.set_head_ports(head_ports)?;
        Ok(capture)
    }

    /// Makes the program copy the payload heads of TCP packets to exactly `ports`.
    pub fn set_head_ports(&mut self, ports: &[u16]) -> Result<(), XdpError> {
        let old: Vec<u16> = self.head_ports.keys().filter_map(Result::ok).collect();
        for port in old.iter().filter(|p| !ports.contains(p)) {
            self.head_ports
                .remove(port)
                .map_err(|e| XdpError::Load(format!("HEAD_PORTS: {e:#}")))?;
        }
        for port in ports {
            self.head_ports
                .insert(port, 1, 0)
                .map_err(|e| XdpError::Load(format!("HEAD_PORTS: {e:#}")))?;
        }
        Ok(())
    }

    /// The counters summed over CPUs, in [`COUNTER_NAMES`] order.
    pub fn counters(&self) -> [u64; 7] {
        let mut out = [0u64; 7];
        for (i, slot) in out.iter_mut().enumerate() {
            let index = u32::try_from(i).unwrap_or(0);
            if let Ok(values) = self.counters.get(&index, 0) {
                *slot = values.iter().sum();
            }
        }
        out
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

/// Decodes one ring-buffer record; `mono_to_unix_ns` converts the kernel's monotonic stamp.
/// `None` for a record of the wrong size (a program/userspace mismatch, counted by the
/// caller).
pub fn decode(bytes: &[u8], source: u8, mono_to_unix_ns: i128) -> Option<PacketRecord<'_>> {
    if bytes.len() != RECORD_LEN && bytes.len() != HEAD_RECORD_LEN {
        return None;
    }
    let ts = u64::from_ne_bytes(bytes[0..8].try_into().ok()?);
    let ip = |at: usize, family: u8| -> Option<IpAddr> {
        Some(if family == 4 {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&bytes[at..at + 4]).ok()?))
        } else {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[at..at + 16]).ok()?))
        })
    };
    let family = bytes[56];
    if family != 4 && family != 6 {
        return None;
    }
    let head_len = usize::from(bytes[57]).min(mld_flow::record::PAYLOAD_HEAD);
    let head = if bytes.len() == HEAD_RECORD_LEN {
        &bytes[RECORD_LEN..RECORD_LEN + head_len]
    } else {
        &[]
    };
    let unix = i128::from(ts) + mono_to_unix_ns;
    Some(PacketRecord {
        ts_ns: u64::try_from(unix.max(0)).unwrap_or(u64::MAX),
        src: ip(8, family)?,
        dst: ip(24, family)?,
        src_port: u16_at(bytes, 40),
        dst_port: u16_at(bytes, 42),
        ip_len: u16_at(bytes, 44),
        ip_header_len: u16_at(bytes, 46),
        l4_header_len: u16_at(bytes, 48),
        payload_len: u16_at(bytes, 50),
        tcp_window: u16_at(bytes, 52),
        proto: bytes[54],
        tcp_flags: bytes[55],
        payload_head: head,
        source,
    })
}

/// `CLOCK_REALTIME − CLOCK_MONOTONIC` now, ns: added to a kernel monotonic stamp it gives
/// Unix time. Recomputed periodically, so NTP adjustments are followed.
pub fn mono_to_unix_offset() -> i128 {
    use rustix::time::{ClockId, clock_gettime};
    let ns =
        |t: rustix::time::Timespec| i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    let real = ns(clock_gettime(ClockId::Realtime));
    let mono = ns(clock_gettime(ClockId::Monotonic));
    real - mono
}
