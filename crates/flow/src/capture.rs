//! Streaming pcap and pcapng reading.
//!
//! Frames come one at a time with their link type and a Unix-nanosecond timestamp. pcap files
//! may be little- or big-endian with microsecond or nanosecond timestamps; pcapng files may
//! hold several sections (each with its own byte order) and interfaces (each with its own link
//! type, `if_tsresol` and `if_tsoffset`). Corrupt or truncated input ends the stream with a
//! [`CaptureError`] naming the file and byte offset; nothing panics and nothing is read ahead
//! beyond one record.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::packet::LinkType;

/// Largest pcapng block accepted; larger lengths mean a corrupt file.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;
/// Largest captured length of a pcap record (libpcap's maximum snapshot length); a record
/// claiming more is corrupt, as libpcap also decides. The on-the-wire length is not checked.
pub const MAX_FRAME: u32 = 262_144;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, Unix nanoseconds (from the file; some old captures start at 1970).
    pub ts_ns: u64,
    pub link: LinkType,
    /// Length of the frame on the wire (may exceed `data.len()` when the snapshot was cut).
    pub orig_len: u32,
    /// The captured bytes (without any trailing FCS the file declares).
    pub data: Vec<u8>,
}

/// Why a capture file could not be read (further).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a pcap or pcapng file (starts with {magic:02x?})")]
    NotACapture { path: PathBuf, magic: Vec<u8> },
    #[error("{path} is truncated at byte {offset}: {what}")]
    Truncated { path: PathBuf, offset: u64, what: &'static str },
    #[error("{path} is corrupt at byte {offset}: {what}")]
    Corrupt { path: PathBuf, offset: u64, what: String },
}

#[derive(Debug, Clone, Copy)]
enum Resolution {
    /// 10^-n seconds per tick.
    Decimal(u32),
    /// 2^-n seconds per tick.
    Binary(u32),
}

impl Resolution {
    fn to_ns(self, ticks: u64) -> u64 {
        let ticks = u128::from(ticks);
        let ns = match self {
            Self::Decimal(n) if n <= 9 => ticks * 10_u128.pow(9 - n),
            Self::Decimal(n) => ticks / 10_u128.pow((n - 9).min(38)),
            Self::Binary(n) => (ticks * 1_000_000_000) >> n.min(127),
        };
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    resolution: Resolution,
    offset_secs: i64,
}

#[derive(Debug)]
enum Format {
    Pcap { big_endian: bool, resolution: Resolution, link: LinkType, fcs_len: usize },
    PcapNg { big_endian: bool, interfaces: Vec<Interface>, last_ts: u64 },
}

/// Reads frames from a pcap or pcapng stream.
#[derive(Debug)]
pub struct CaptureReader<R: Read> {
    src: R,
    path: PathBuf,
    offset: u64,
    format: Format,
    done: bool,
}

impl CaptureReader<BufReader<File>> {
    /// Opens a capture file, detecting pcap or pcapng from its first bytes.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path)
            .map_err(|source| CaptureError::Io { path: path.to_owned(), source })?;
        Self::new(BufReader::with_capacity(256 * 1024, file), path)
    }
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

fn u16_at(b: &[u8], at: usize, be: bool) -> u16 {
    let x = [b[at], b[at + 1]];
    if be { u16::from_be_bytes(x) } else { u16::from_le_bytes(x) }
}

fn u32_at(b: &[u8], at: usize, be: bool) -> u32 {
    let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if be { u32::from_be_bytes(x) } else { u32::from_le_bytes(x) }
}

fn len_at(b: &[u8], at: usize, be: bool) -> usize {
    u32_at(b, at, be) as usize
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `src`; `path` names the stream in errors.
    pub fn new(src: R, path: &Path) -> Result<Self, CaptureError> {
        let mut reader = Self {
            src,
            path: path.to_owned(),
            offset: 0,
            format: Format::PcapNg { big_endian: false, interfaces: Vec::new(), last_ts: 0 },
            done: false,
        };
        let mut magic = [0_u8; 4];
        if !reader.read_exact_or_eof(&mut magic, "file header")? {
            return Err(CaptureError::NotACapture { path: reader.path, magic: Vec::new() });
        }
        match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => reader.pcap_header(false, Resolution::Decimal(6))?,
            [0xa1, 0xb2, 0xc3, 0xd4] => reader.pcap_header(true, Resolution::Decimal(6))?,
            [0x4d, 0x3c, 0xb2, 0xa1] => reader.pcap_header(false, Resolution::Decimal(9))?,
            [0xa1, 0xb2, 0x3c, 0x4d] => reader.pcap_header(true, Resolution::Decimal(9))?,
            [0x0a, 0x0d, 0x0d, 0x0a] => reader.section_header()?,
            _ => {
                return Err(CaptureError::NotACapture { path: reader.path, magic: magic.to_vec() });
            }
        }
        Ok(reader)
    }

    /// The next frame, `None` at the end, or the error that ended the stream.
    pub fn next_frame(&mut self) -> Option<Result<Frame, CaptureError>> {
        if self.done {
            return None;
        }
        let result = match self.format {
            Format::Pcap { .. } => self.next_pcap(),
            Format::PcapNg { .. } => self.next_pcapng(),
        };
        match result {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Fills `buf`; `Ok(false)` at a clean end of file (nothing read), an error when the file
    /// ends inside `buf`.
    fn read_exact_or_eof(
        &mut self,
        buf: &mut [u8],
        what: &'static str,
    ) -> Result<bool, CaptureError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.src.read(&mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => return Err(self.truncated(what)),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(CaptureError::Io { path: self.path.clone(), source }),
            }
        }
        self.offset += buf.len() as u64;
        Ok(true)
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), CaptureError> {
        if self.read_exact_or_eof(buf, what)? { Ok(()) } else { Err(self.truncated(what)) }
    }

    fn truncated(&self, what: &'static str) -> CaptureError {
        CaptureError::Truncated { path: self.path.clone(), offset: self.offset, what }
    }

    fn corrupt(&self, what: impl Into<String>) -> CaptureError {
        CaptureError::Corrupt { path: self.path.clone(), offset: self.offset, what: what.into() }
    }

    fn pcap_header(
        &mut self,
        big_endian: bool,
        resolution: Resolution,
    ) -> Result<(), CaptureError> {
        let mut rest = [0_u8; 20];
        self.read_exact(&mut rest, "pcap file header")?;
        // version (4), thiszone (4), sigfigs (4), snaplen (4), link type + FCS flags (4)
        let network = u32_at(&rest, 16, big_endian);
        let link = LinkType(network & 0xffff);
        // Bits 28-31: FCS length in 16-bit words, valid when bit 26 ("F") is set.
        let fcs_len = if network & 0x0400_0000 != 0 { ((network >> 28) as usize) * 2 } else { 0 };
        self.format = Format::Pcap { big_endian, resolution, link, fcs_len };
        Ok(())
    }

    fn next_pcap(&mut self) -> Result<Option<Frame>, CaptureError> {
        let Format::Pcap { big_endian: be, resolution, link, fcs_len } = self.format else {
            unreachable!("called for pcap only")
        };
        let mut head = [0_u8; 16];
        if !self.read_exact_or_eof(&mut head, "record header")? {
            return Ok(None);
        }
        let secs = u64::from(u32_at(&head, 0, be));
        let frac = u64::from(u32_at(&head, 4, be));
        let incl = len_at(&head, 8, be);
        let orig_len = u32_at(&head, 12, be);
        if incl > MAX_FRAME as usize {
            return Err(self.corrupt(format!("record of {incl} captured bytes")));
        }
        let mut data = vec![0; incl];
        self.read_exact(&mut data, "record data")?;
        data.truncate(incl.saturating_sub(fcs_len));
        let ts_ns = secs.saturating_mul(1_000_000_000).saturating_add(resolution.to_ns(frac));
        Ok(Some(Frame { ts_ns, link, orig_len, data }))
    }

    /// Reads a section header block whose type has already been read.
    fn section_header(&mut self) -> Result<(), CaptureError> {
        let mut head = [0_u8; 8];
        self.read_exact(&mut head, "section header")?;
        let big_endian = match u32::from_le_bytes([head[4], head[5], head[6], head[7]]) {
            PCAPNG_BOM => false,
            x if x.swap_bytes() == PCAPNG_BOM => true,
            _ => return Err(self.corrupt("section header without byte-order magic")),
        };
        let total = len_at(&head, 0, big_endian);
        self.block_body(total, 12, big_endian)?;
        self.format = Format::PcapNg { big_endian, interfaces: Vec::new(), last_ts: 0 };
        Ok(())
    }

    /// Checks a block's total length and reads its body (everything after the first `read`
    /// bytes, up to the trailing length).
    fn block_body(&mut self, total: usize, read: usize, be: bool) -> Result<Vec<u8>, CaptureError> {
        if total < 12 || total < read + 4 || !total.is_multiple_of(4) || total > MAX_RECORD {
            return Err(self.corrupt(format!("block length {total}")));
        }
        let mut body = vec![0; total - read];
        self.read_exact(&mut body, "block")?;
        let trailer = len_at(&body, body.len() - 4, be);
        if trailer != total {
            return Err(self.corrupt(format!("block length {total} but trailer says {trailer}")));
        }
        body.truncate(body.len() - 4);
        Ok(body)
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame>, CaptureError> {
        loop {
            let mut head = [0_u8; 4];
            if !self.read_exact_or_eof(&mut head, "block header")? {
                return Ok(None);
            }
            if u32::from_le_bytes(head) == PCAPNG_SHB {
                self.section_header()?;
                continue;
            }
            let Format::PcapNg { big_endian: be, .. } = self.format else {
                unreachable!("pcapng only")
            };
            let block_type = u32_at(&head, 0, be);
            let mut len = [0_u8; 4];
            self.read_exact(&mut len, "block header")?;
            let body = self.block_body(len_at(&len, 0, be), 8, be)?;
            match block_type {
                1 => self.interface(&body, be)?,
                6 => return self.timestamped_packet(&body, be, true).map(Some),
                3 => return self.simple_packet(&body, be).map(Some),
                2 => return self.timestamped_packet(&body, be, false).map(Some),
                _ => {} // statistics, name resolution, custom, …: not needed
            }
        }
    }

    fn interfaces(&mut self) -> (&mut Vec<Interface>, &mut u64) {
        match &mut self.format {
            Format::PcapNg { interfaces, last_ts, .. } => (interfaces, last_ts),
            Format::Pcap { .. } => unreachable!("pcapng only"),
        }
    }

    fn interface(&mut self, body: &[u8], be: bool) -> Result<(), CaptureError> {
        if body.len() < 8 {
            return Err(self.corrupt("interface description too short"));
        }
        let mut iface = Interface {
            link: LinkType(u32::from(u16_at(body, 0, be))),
            resolution: Resolution::Decimal(6),
            offset_secs: 0,
        };
        for (code, value) in options(&body[8..], be) {
            match (code, value.len()) {
                (9, 1) => {
                    let v = u32::from(value[0] & 0x7f);
                    iface.resolution = if value[0] & 0x80 == 0 {
                        Resolution::Decimal(v)
                    } else {
                        Resolution::Binary(v)
                    };
                }
                (14, 8) => {
                    let mut b = [0; 8];
                    b.copy_from_slice(value);
                    iface.offset_secs =
                        if be { i64::from_be_bytes(b) } else { i64::from_le_bytes(b) };
                }
                _ => {}
            }
        }
        self.interfaces().0.push(iface);
        Ok(())
    }

    fn timestamp(iface: &Interface, ticks: u64) -> u64 {
        let ns = iface.resolution.to_ns(ticks);
        let offset = i128::from(iface.offset_secs) * 1_000_000_000;
        u64::try_from((i128::from(ns) + offset).max(0)).unwrap_or(u64::MAX)
    }

    fn iface(&mut self, id: usize) -> Result<Interface, CaptureError> {
        let found = self.interfaces().0.get(id).copied();
        found.ok_or_else(|| self.corrupt(format!("packet for undeclared interface {id}")))
    }

    fn packet(&mut self, iface: Interface, ts_ns: u64, orig_len: u32, data: &[u8]) -> Frame {
        *self.interfaces().1 = ts_ns;
        Frame { ts_ns, link: iface.link, orig_len, data: data.to_vec() }
    }

    /// Enhanced (type 6) and obsolete (type 2) packet blocks: the interface id (32 bits, or
    /// 16 bits plus a drop count), then timestamp, captured and original length, data.
    fn timestamped_packet(
        &mut self,
        body: &[u8],
        be: bool,
        enhanced: bool,
    ) -> Result<Frame, CaptureError> {
        if body.len() < 20 {
            return Err(self.corrupt("packet block too short"));
        }
        let id = if enhanced { len_at(body, 0, be) } else { usize::from(u16_at(body, 0, be)) };
        let iface = self.iface(id)?;
        let ticks = (u64::from(u32_at(body, 4, be)) << 32) | u64::from(u32_at(body, 8, be));
        let cap = len_at(body, 12, be);
        let Some(data) = body.get(20..20 + cap) else {
            return Err(self.corrupt(format!("captured length {cap} exceeds its block")));
        };
        Ok(self.packet(iface, Self::timestamp(&iface, ticks), u32_at(body, 16, be), data))
    }

    fn simple_packet(&mut self, body: &[u8], be: bool) -> Result<Frame, CaptureError> {
        if body.len() < 4 {
            return Err(self.corrupt("simple packet block too short"));
        }
        let iface = self.iface(0)?;
        let orig_len = u32_at(body, 0, be);
        let cap = (orig_len as usize).min(body.len() - 4);
        // Simple packets carry no timestamp: they get the previous packet's.
        let ts = *self.interfaces().1;
        Ok(self.packet(iface, ts, orig_len, &body[4..4 + cap]))
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<Frame, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
    }
}

/// pcapng options: (code, value) pairs until `opt_endofopt` or the end of the bytes.
fn options(mut bytes: &[u8], be: bool) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let code = u16_at(bytes, 0, be);
        let len = usize::from(u16_at(bytes, 2, be));
        if code == 0 {
            return None;
        }
        let value = bytes.get(4..4 + len)?;
        let padded = (4 + len).next_multiple_of(4).min(bytes.len());
        bytes = &bytes[padded..];
        Some((code, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> (Vec<Frame>, Option<CaptureError>) {
        let reader = match CaptureReader::new(bytes, Path::new("mem.pcap")) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Some(e)),
        };
        let mut frames = Vec::new();
        for item in reader {
            match item {
                Ok(f) => frames.push(f),
                Err(e) => return (frames, Some(e)),
            }
        }
        (frames, None)
    }

    fn pcap(big_endian: bool, nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }).to_vec();
        out.extend(w16(2));
        out.extend(w16(4));
        out.extend([0; 8]);
        out.extend(w32(65_535));
        out.extend(w32(1));
        for (secs, frac, data) in records {
            let len = u32::try_from(data.len()).unwrap();
            for v in [*secs, *frac, len, len] {
                out.extend(w32(v));
            }
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn pcap_in_both_byte_orders_and_resolutions() {
        for (big_endian, nanos, frac, expected_ns) in [
            (false, false, 250_000, 250_000_000),
            (true, false, 1, 1_000),
            (false, true, 7, 7),
            (true, true, 999_999_999, 999_999_999),
        ] {
            let file = pcap(big_endian, nanos, &[(1_700_000_000, frac, b"frame")]);
            let (frames, err) = read_all(&file);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].ts_ns, 1_700_000_000_000_000_000 + expected_ns);
            assert_eq!(
                (frames[0].link, frames[0].data.as_slice()),
                (LinkType::ETHERNET, &b"frame"[..])
            );
        }
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let total = u32::try_from(12 + body.len().next_multiple_of(4)).unwrap();
        let mut out = kind.to_le_bytes().to_vec();
        out.extend(total.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(usize::try_from(total).unwrap() - 4, 0);
        out.extend(total.to_le_bytes());
        out
    }

    fn shb() -> Vec<u8> {
        block(PCAPNG_SHB, &[&PCAPNG_BOM.to_le_bytes()[..], &[1, 0, 0, 0], &[0xff; 8]].concat())
    }

    fn idb(link: u16, options: &[u8]) -> Vec<u8> {
        block(1, &[&link.to_le_bytes()[..], &[0, 0], &0_u32.to_le_bytes(), options].concat())
    }

    fn epb(iface: u32, ticks: u64, data: &[u8]) -> Vec<u8> {
        let len = u32::try_from(data.len()).unwrap();
        #[expect(clippy::cast_possible_truncation, reason = "splitting a u64 into halves")]
        let (hi, lo) = ((ticks >> 32) as u32, ticks as u32);
        block(
            6,
            &[
                &iface.to_le_bytes()[..],
                &hi.to_le_bytes(),
                &lo.to_le_bytes(),
                &len.to_le_bytes(),
                &len.to_le_bytes(),
                data,
            ]
            .concat(),
        )
    }

    #[test]
    fn pcapng_interfaces_resolutions_and_offsets() {
        let nanos = [9_u16.to_le_bytes().as_slice(), &1_u16.to_le_bytes(), &[9, 0, 0, 0]].concat();
        let binary =
            [9_u16.to_le_bytes().as_slice(), &1_u16.to_le_bytes(), &[0x80 | 0x0a, 0, 0, 0]]
                .concat();
        let offset =
            [14_u16.to_le_bytes().as_slice(), &8_u16.to_le_bytes(), &100_i64.to_le_bytes()]
                .concat();
        let file = [
            shb(),
            idb(1, &[]),                          // 0: Ethernet, microseconds (default)
            idb(101, &nanos),                     // 1: raw IP, nanoseconds
            idb(113, &[binary, offset].concat()), // 2: Linux SLL, 2^-10 s, +100 s
            block(5, &[0; 8]),                    // interface statistics: skipped
            epb(0, 1_500_000, b"a"),
            epb(1, 1_500_000, b"bb"),
            epb(2, 1_024, b"ccc"),
        ]
        .concat();
        let (frames, err) = read_all(&file);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<_> = frames.iter().map(|f| (f.link, f.ts_ns, f.data.len())).collect();
        assert_eq!(
            got,
            [
                (LinkType::ETHERNET, 1_500_000_000, 1),
                (LinkType::RAW, 1_500_000, 2),
                (LinkType::LINUX_SLL, 101_000_000_000, 3)
            ]
        );
    }

    #[test]
    fn truncation_and_corruption_end_the_stream_with_an_error_never_a_panic() {
        // (file, lengths at which a cut leaves a valid, shorter file)
        let pcap_file = pcap(false, false, &[(1, 2, b"first"), (3, 4, b"second")]);
        let parts = [shb(), idb(1, &[]), epb(0, 5, b"first"), epb(0, 6, b"second")];
        let mut ng_boundaries = vec![0];
        for part in &parts {
            ng_boundaries.push(ng_boundaries.last().unwrap() + part.len());
        }
        let files = [(pcap_file, vec![24, 24 + 16 + 5]), (parts.concat(), ng_boundaries)];
        for (file, boundaries) in files {
            for len in 1..file.len() {
                let (frames, err) = read_all(&file[..len]);
                assert!(frames.len() < 2, "cut at {len}");
                assert_eq!(err.is_none(), boundaries.contains(&len), "cut at {len}: {err:?}");
            }
            assert_eq!(read_all(&file).0.len(), 2);
        }
        let mut bad_len = [shb(), idb(1, &[]), epb(0, 5, b"x")].concat();
        let n = bad_len.len();
        bad_len[n - 4] ^= 0x40; // trailing length disagrees
        assert!(matches!(read_all(&bad_len).1, Some(CaptureError::Corrupt { .. })));
        let undeclared = [shb(), epb(3, 5, b"x")].concat();
        assert!(matches!(read_all(&undeclared).1, Some(CaptureError::Corrupt { .. })));
        assert!(matches!(read_all(b"GIF89a....").1, Some(CaptureError::NotACapture { .. })));
    }
}
