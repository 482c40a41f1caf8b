//! DNS query names from real DNS payloads, and their Shannon entropy; DNS messages
//! (queries and responses) far enough for the DNS behaviours.

/// The query name of a DNS query message (QR = 0, at least one question), lower-cased and
/// written with dots, into `out`. Returns `false` (leaving `out` unspecified) for responses,
/// malformed or compressed names, or a payload that ends before the name does, unless `cut`
/// says the capture cut the payload: then the name read up to the cut (at least one label
/// begun) is the query name, since a name longer than the captured head is a fact in itself.
pub fn query_name(payload: &[u8], cut: bool, out: &mut String) -> bool {
    out.clear();
    if payload.len() < 12 || payload[2] & 0x80 != 0 {
        return false;
    }
    if u16::from_be_bytes([payload[4], payload[5]]) == 0 {
        return false;
    }
    let mut at = 12;
    loop {
        let Some(&len) = payload.get(at) else { return cut && !out.is_empty() };
        let len = usize::from(len);
        if len == 0 {
            return !out.is_empty();
        }
        if len > 63 || out.len() + len + 1 > 255 {
            return false;
        }
        let end = at + 1 + len;
        let label = match payload.get(at + 1..end) {
            Some(label) => label,
            None if cut => payload.get(at + 1..).unwrap_or_default(),
            None => return false,
        };
        if label.is_empty() {
            // Cut right after a length byte.
            return !out.is_empty();
        }
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            if !b.is_ascii_graphic() {
                return false;
            }
            out.push(char::from(b.to_ascii_lowercase()));
        }
        if end > payload.len() {
            return true;
        }
        at = end;
    }
}

/// Shannon entropy in bits per character of the name's characters, dots excluded; 0 for an
/// empty name.
pub fn entropy(name: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in name.bytes().filter(|&b| b != b'.') {
        counts[usize::from(b)] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum()
}

/// DNS record types the tunnel behaviour treats as data carriers.
pub mod qtype {
    pub const NULL: u16 = 10;
    pub const TXT: u16 = 16;
    pub const ANY: u16 = 255;
}

/// What one DNS message (query or response) says, as far as its captured head goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub response: bool,
    /// Response code (3: NXDOMAIN).
    pub rcode: u8,
    /// The question's type, when the head reaches it.
    pub qtype: Option<u16>,
    /// The question name, lower-cased, with dots; bytes that are not printable ASCII are
    /// written as `?`.
    pub name: String,
    /// Some label held bytes that are not printable ASCII (binary tunnel encodings).
    pub binary: bool,
    /// The longest label, in bytes.
    pub longest_label: usize,
    /// The name ran past the captured head.
    pub cut: bool,
}

/// Parses the header and first question of a DNS message. `None` for anything that is not
/// one: shorter than a header, no question, a label over 63 bytes, a compression pointer in
/// the question, a name over 255 bytes. `cut` says the capture cut the payload: a name read
/// up to the cut then counts (with `cut` set).
pub fn message(payload: &[u8], cut: bool) -> Option<Message> {
    if payload.len() < 12 || u16::from_be_bytes([payload[4], payload[5]]) == 0 {
        return None;
    }
    let mut m = Message {
        response: payload[2] & 0x80 != 0,
        rcode: payload[3] & 0x0f,
        ..Message::default()
    };
    let mut at = 12;
    let mut total = 0usize;
    loop {
        let Some(&len) = payload.get(at) else {
            m.cut = true;
            return (cut && !m.name.is_empty()).then_some(m);
        };
        let len = usize::from(len);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        total += len + 1;
        if total > 255 {
            return None;
        }
        let end = at + 1 + len;
        let label = match payload.get(at + 1..end) {
            Some(l) => l,
            None if cut => {
                m.cut = true;
                payload.get(at + 1..).unwrap_or_default()
            }
            None => return None,
        };
        if !m.name.is_empty() {
            m.name.push('.');
        }
        m.longest_label = m.longest_label.max(len);
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' {
                m.name.push(char::from(b.to_ascii_lowercase()));
            } else {
                m.binary = true;
                m.name.push('?');
            }
        }
        if m.cut {
            return (!m.name.is_empty()).then_some(m);
        }
        at = end;
    }
    if m.name.is_empty() {
        // The root: nothing to say about a domain.
        return None;
    }
    m.qtype = payload.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    if m.qtype.is_none() {
        m.cut = true;
    }
    Some(m)
}

/// The registered domain of `name` (one label under its public suffix, from the Public Suffix
/// List; a name under an unlisted top-level domain counts that domain as the suffix), or the
/// name itself when it is a suffix.
pub fn registered_domain(name: &str) -> &str {
    psl::domain_str(name).unwrap_or(name)
}

/// Whether the name ends in a suffix of the Public Suffix List (a name of the public DNS
/// tree, not `dnscat.<hex>` or `printer.lan`).
pub fn in_public_tree(name: &str) -> bool {
    psl::suffix(name.as_bytes()).is_some_and(|s| s.is_known())
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

    fn query(name: &str) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            m.push(u8::try_from(label.len()).unwrap());
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    #[test]
    fn reads_query_names() {
        let mut s = String::new();
        assert!(query_name(&query("WWW.Example.com"), false, &mut s));
        assert_eq!(s, "www.example.com");
    }

    #[test]
    fn refuses_responses_and_bad_names() {
        let mut s = String::new();
        let mut resp = query("a.b");
        resp[2] |= 0x80;
        assert!(!query_name(&resp, false, &mut s));
        let q = query("example.com");
        for cut in 0..q.len() - 5 {
            assert!(!query_name(&q[..cut], false, &mut s), "cut at {cut}");
        }
        let mut pointer = query("x");
        pointer[12] = 0xc0;
        assert!(!query_name(&pointer, false, &mut s));
    }

    #[test]
    fn a_name_cut_by_the_capture_is_read_up_to_the_cut() {
        let mut s = String::new();
        let q = query("abcdef.example.com");
        // Cut inside the first label's length byte: nothing read.
        assert!(!query_name(&q[..12], true, &mut s));
        assert!(!query_name(&q[..13], true, &mut s));
        assert!(query_name(&q[..16], true, &mut s));
        assert_eq!(s, "abc");
        assert!(query_name(&q[..20], true, &mut s));
        assert_eq!(s, "abcdef");
        assert!(query_name(&q[..22], true, &mut s));
        assert_eq!(s, "abcdef.ex");
        // Cut or not, a response or a compressed name is still refused.
        let mut resp = q.clone();
        resp[2] |= 0x80;
        assert!(!query_name(&resp[..16], true, &mut s));
    }

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(entropy(""), 0.0);
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("ab.ab") - 1.0).abs() < 1e-12);
        assert!((entropy("abcdefgh") - 3.0).abs() < 1e-12);
        assert!(entropy("x3k9q2mz7wv1.example.com") > entropy("www.google.com"));
    }
}
