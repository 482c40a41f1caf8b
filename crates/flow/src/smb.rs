//! SMB1/SMB2 and DCE-RPC, far enough to see lateral movement in the head of a client's
//! request: NTLMSSP logons (account and domain), tree connects (the share), creates (the
//! file or named pipe), DCE-RPC binds (the interface) and requests (the operation), SMB1
//! Trans2 `SESSION_SETUP` (the MS17-010 family) and SMB3 encryption (after which nothing more
//! is visible). Every offset is checked against the captured head: a cut or malformed message
//! yields less, never a panic.

/// What one client request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// NTLMSSP AUTHENTICATE: the account logging on.
    Logon {
        domain: String,
        user: String,
    },
    TreeConnect {
        share: String,
    },
    Create {
        name: String,
    },
    Bind {
        iface: Iface,
    },
    Call {
        opnum: u16,
    },
    /// SMB1 TRANS2 with the `SESSION_SETUP` subcommand (`EternalBlue`, `DoublePulsar`).
    Trans2SessionSetup,
    /// An SMB3 transform header: the session is encrypted from here on.
    Encrypted,
}

/// DCE-RPC interfaces of remote administration (and the ones lateral movement uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iface {
    Svcctl,
    Atsvc,
    TaskScheduler,
    Winreg,
    Samr,
    Lsarpc,
    Netlogon,
    Drsuapi,
    RemoteActivation,
    Wmi,
    Other,
}

impl Iface {
    pub fn name(self) -> &'static str {
        match self {
            Self::Svcctl => "svcctl",
            Self::Atsvc => "atsvc",
            Self::TaskScheduler => "ITaskSchedulerService",
            Self::Winreg => "winreg",
            Self::Samr => "samr",
            Self::Lsarpc => "lsarpc",
            Self::Netlogon => "netlogon",
            Self::Drsuapi => "drsuapi",
            Self::RemoteActivation => "IRemoteSCMActivator",
            Self::Wmi => "IWbemLevel1Login",
            Self::Other => "other",
        }
    }
}

const IFACES: [(&str, Iface); 10] = [
    ("367abb81-9844-35f1-ad32-98f038001003", Iface::Svcctl),
    ("1ff70682-0a51-30e8-076d-740be8cee98b", Iface::Atsvc),
    ("86d35949-83c9-4044-b424-db363231fd0c", Iface::TaskScheduler),
    ("338cd001-2244-31f1-aaaa-900038001003", Iface::Winreg),
    ("12345778-1234-abcd-ef00-0123456789ac", Iface::Samr),
    ("12345778-1234-abcd-ef00-0123456789ab", Iface::Lsarpc),
    ("12345678-1234-abcd-ef00-01234567cffb", Iface::Netlogon),
    ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", Iface::Drsuapi),
    ("000001a0-0000-0000-c000-000000000046", Iface::RemoteActivation),
    ("f309ad18-d86a-11d0-a075-00c04fb68820", Iface::Wmi),
];

/// A UUID's wire form (first three fields little-endian).
fn uuid_wire(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text
        .bytes()
        .filter(|&b| b != b'-')
        .map(|b| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if hex.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        b[i] = pair[0] << 4 | pair[1];
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    Some(b)
}

fn iface_of(wire: &[u8]) -> Iface {
    IFACES
        .iter()
        .find(|(t, _)| uuid_wire(t).is_some_and(|u| u == wire))
        .map_or(Iface::Other, |&(_, i)| i)
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_le_bytes([x[0], x[1]]))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// UTF-16LE (or 8-bit) text, lower-cased; stops at the end of `b` or a NUL.
fn text(b: &[u8], unicode: bool) -> String {
    if unicode {
        let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        char::decode_utf16(units.into_iter().take_while(|&u| u != 0))
            .map(|c| c.unwrap_or('?'))
            .collect::<String>()
            .to_lowercase()
    } else {
        b.iter().take_while(|&&c| c != 0).map(|&c| char::from(c)).collect::<String>().to_lowercase()
    }
}

/// The NTLMSSP AUTHENTICATE message somewhere in `b`, if its names are within it.
fn ntlm_logon(b: &[u8]) -> Option<Request> {
    let at = b.windows(8).position(|w| w == b"NTLMSSP\0")?;
    let m = &b[at..];
    if u32le(m, 8)? != 3 {
        return None;
    }
    let flags = u32le(m, 60).unwrap_or(1);
    let field = |off: usize| -> Option<String> {
        let len = usize::from(u16le(m, off)?);
        let start = usize::try_from(u32le(m, off + 4)?).ok()?;
        let s = m.get(start..start.checked_add(len)?)?;
        Some(text(s, flags & 1 != 0))
    };
    let user = field(36)?;
    let domain = field(28).unwrap_or_default();
    Some(Request::Logon { domain, user })
}

/// A DCE-RPC PDU at the start of `b`: a bind's first interface, or a request's operation.
pub fn dcerpc(b: &[u8]) -> Option<Request> {
    if b.len() < 24 || b[0] != 5 || b[1] != 0 {
        return None;
    }
    match b[2] {
        // bind, alter_context
        11 | 14 => b.get(32..48).map(|u| Request::Bind { iface: iface_of(u) }),
        0 => u16le(b, 22).map(|opnum| Request::Call { opnum }),
        _ => None,
    }
}

const SMB2_SESSION_SETUP: u16 = 1;
const SMB2_TREE_CONNECT: u16 = 3;
const SMB2_CREATE: u16 = 5;
const SMB2_WRITE: u16 = 9;
const SMB2_IOCTL: u16 = 11;

fn smb2(m: &[u8]) -> Option<Request> {
    if u32le(m, 16)? & 1 != 0 {
        return None; // a response
    }
    let body = 64;
    match u16le(m, 12)? {
        SMB2_SESSION_SETUP => ntlm_logon(m),
        SMB2_TREE_CONNECT => {
            let off = usize::from(u16le(m, body + 4)?);
            let len = usize::from(u16le(m, body + 6)?);
            let path = text(m.get(off..off.checked_add(len)?.min(m.len()))?, true);
            let share = path.rsplit('\\').next().unwrap_or_default().to_owned();
            Some(Request::TreeConnect { share })
        }
        SMB2_CREATE => {
            let off = usize::from(u16le(m, body + 44)?);
            let len = usize::from(u16le(m, body + 46)?);
            let name = text(m.get(off..off.checked_add(len)?.min(m.len()))?, true);
            Some(Request::Create { name })
        }
        SMB2_WRITE => dcerpc(m.get(usize::from(u16le(m, body + 2)?)..)?),
        SMB2_IOCTL => dcerpc(m.get(usize::try_from(u32le(m, body + 24)?).ok()?..)?),
        _ => None,
    }
}

const SMB1_SESSION_SETUP_ANDX: u8 = 0x73;
const SMB1_TREE_CONNECT_ANDX: u8 = 0x75;
const SMB1_TRANS2: u8 = 0x32;

fn smb1(m: &[u8]) -> Option<Request> {
    if m.get(9)? & 0x80 != 0 {
        return None; // a reply
    }
    let flags2 = u16le(m, 10)?;
    let unicode = flags2 & 0x8000 != 0;
    let words = usize::from(*m.get(32)?);
    let params = 33;
    let data = params + 2 * words + 2;
    match m[4] {
        SMB1_SESSION_SETUP_ANDX => ntlm_logon(m),
        SMB1_TREE_CONNECT_ANDX => {
            // Password (length in word 3), then the path, aligned to 2 for Unicode.
            let pw = usize::from(u16le(m, params + 6)?);
            let mut at = data + pw;
            if unicode && at % 2 == 1 {
                at += 1;
            }
            let path = text(m.get(at..)?, unicode);
            Some(Request::TreeConnect {
                share: path.rsplit('\\').next().unwrap_or_default().into(),
            })
        }
        // Setup word 0 (after 14 parameter words) is the subcommand; 0x0e: SESSION_SETUP.
        SMB1_TRANS2 if words >= 15 && u16le(m, params + 28)? == 0x0e => {
            Some(Request::Trans2SessionSetup)
        }
        _ => None,
    }
}

/// The request in the head of one client-to-server TCP payload on an SMB port (445 direct,
/// or 139 `NetBIOS` session: both start with a 4-byte length header).
pub fn request(payload: &[u8]) -> Option<Request> {
    let m = payload.get(4..)?;
    match m.get(..4)? {
        [0xfe, b'S', b'M', b'B'] => smb2(m),
        [0xff, b'S', b'M', b'B'] => smb1(m),
        [0xfd, b'S', b'M', b'B'] => Some(Request::Encrypted),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn smb2_msg(cmd: u16, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 0, 0, 0, 0xfe, b'S', b'M', b'B', 64, 0, 0, 0, 0, 0, 0, 0];
        m.resize(4 + 64, 0);
        m[12 + 4..14 + 4].copy_from_slice(&cmd.to_le_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn tree_connect_create_and_binds() {
        let path = utf16("\\\\10.0.0.5\\ADMIN$");
        let mut body = vec![9, 0, 0, 0];
        body.extend_from_slice(&72u16.to_le_bytes());
        body.extend_from_slice(&u16::try_from(path.len()).unwrap().to_le_bytes());
        body.extend_from_slice(&path);
        assert_eq!(
            request(&smb2_msg(3, &body)),
            Some(Request::TreeConnect { share: "admin$".into() })
        );

        let name = utf16("svcctl");
        let mut body = vec![0u8; 56];
        body[44..46].copy_from_slice(&120u16.to_le_bytes());
        body[46..48].copy_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
        body.extend_from_slice(&name);
        assert_eq!(request(&smb2_msg(5, &body)), Some(Request::Create { name: "svcctl".into() }));

        let mut bind = vec![5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0];
        bind.extend_from_slice(&[0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]);
        bind.extend_from_slice(&uuid_wire(IFACES[0].0).unwrap());
        let mut body = vec![0u8; 48];
        body[2..4].copy_from_slice(&112u16.to_le_bytes());
        body.extend_from_slice(&bind);
        assert_eq!(request(&smb2_msg(9, &body)), Some(Request::Bind { iface: Iface::Svcctl }));
        let mut call = vec![5, 0, 0, 3, 0x10, 0, 0, 0, 24, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        call.extend_from_slice(&12u16.to_le_bytes());
        assert_eq!(dcerpc(&call), Some(Request::Call { opnum: 12 }));
    }

    #[test]
    fn ntlm_logon_names() {
        let mut n = b"NTLMSSP\0".to_vec();
        n.extend_from_slice(&3u32.to_le_bytes());
        n.resize(64, 0);
        let (domain, user) = (utf16("CORP"), utf16("Administrator"));
        n[28..30].copy_from_slice(&u16::try_from(domain.len()).unwrap().to_le_bytes());
        n[32..36].copy_from_slice(&64u32.to_le_bytes());
        n[36..38].copy_from_slice(&u16::try_from(user.len()).unwrap().to_le_bytes());
        n[40..44].copy_from_slice(&(64 + u32::try_from(domain.len()).unwrap()).to_le_bytes());
        n[60..64].copy_from_slice(&1u32.to_le_bytes());
        n.extend_from_slice(&domain);
        n.extend_from_slice(&user);
        let mut body = vec![0u8; 24];
        body.extend_from_slice(&n);
        assert_eq!(
            request(&smb2_msg(1, &body)),
            Some(Request::Logon { domain: "corp".into(), user: "administrator".into() })
        );
        // Cut before the user name: nothing.
        let m = smb2_msg(1, &body);
        assert_eq!(request(&m[..m.len() - 4]), None);
    }

    /// The first 248 bytes (the captured head) of impacket's SMB2 `SESSION_SETUP` with NTLMSSP
    /// AUTHENTICATE, from the real-tool corpus (psexec.py against Samba).
    const IMPACKET_SESSION_SETUP: &str = "0000016efe534d42400001000000000001007f00000000000000000003000000000000000000000000000000d525f0090000000000000000000000000000000000000000190000010000000000000000580016010000000000000000a18201123082010ea282010a048201064e544c4d535350000300000018001800620000008c008c007a00000008000800400000001a001a004800000000000000620000000000000006010000050288a043004f0052005000610064006d0069006e006900730074007200610074006f0072005cb9ad1e649c53347942faa9ac938fa5454e4c624178314b310d6857c934da2f8e6100cbfe6e69f50101";

    #[test]
    fn impacket_logon_within_the_captured_head() {
        let b: Vec<u8> = (0..IMPACKET_SESSION_SETUP.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&IMPACKET_SESSION_SETUP[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(b.len(), 248);
        assert_eq!(
            request(&b),
            Some(Request::Logon { domain: "corp".into(), user: "administrator".into() })
        );
    }

    #[test]
    fn encrypted_and_garbage() {
        assert_eq!(request(&[0, 0, 0, 9, 0xfd, b'S', b'M', b'B', 1]), Some(Request::Encrypted));
        assert_eq!(request(b"GET / HTTP/1.1"), None);
        assert_eq!(request(&[]), None);
    }
}
