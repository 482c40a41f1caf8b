//! One event-log line (`docs/EVENT_SCHEMA.md`, schema version 1) read into the columns the
//! store indexes, its feature vector and its one-sentence description.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The event-log schema versions this store reads.
pub const SCHEMA_VERSIONS: [u64; 1] = [1];

/// The four forests, in the order of [`Event::ml_scores`].
pub const DETECTORS: [&str; 4] = ["ddos", "ransomware", "traffic", "internal"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Benign,
    Suspicious,
    Malicious,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Benign, Verdict::Suspicious, Verdict::Malicious];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Benign => "BENIGN",
            Verdict::Suspicious => "SUSPICIOUS",
            Verdict::Malicious => "MALICIOUS",
        }
    }

    /// `BENIGN`, `VERDICT_BENIGN`, `benign`, …
    pub fn parse(s: &str) -> Option<Verdict> {
        let s = s.trim();
        let s = s.strip_prefix("VERDICT_").unwrap_or(s);
        Verdict::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The store's id (the row id; also the id vector indices use and answers cite). 0 before
    /// the event is stored.
    pub id: i64,
    pub detection_id: String,
    pub event_id: String,
    pub sensor_id: String,
    /// Unix seconds.
    pub detected_at: f64,
    pub first_ts: f64,
    pub last_ts: f64,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub proto: u8,
    pub verdict: Verdict,
    pub final_score: f64,
    pub fast_score: f64,
    pub ml_score: f64,
    /// Per forest, in [`DETECTORS`] order.
    pub ml_scores: [f64; 4],
    /// `FAST` or `ML`.
    pub authoritative: String,
    pub fast_rules: Vec<String>,
    pub reasons: Vec<String>,
    /// The capture file (`ml-detector analyze` lines only).
    pub file: Option<String>,
    /// The flow's numeric features and context windows, scaled (see [`vector`]).
    pub vector: Vec<f32>,
    /// A hash of the names behind `vector`'s positions: only vectors of one layout compare.
    pub layout: u64,
    pub description: String,
    /// The store's id of [`summarize`]'s text (0 before the event is stored).
    pub summary_id: i64,
}

/// Why a line was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("schema_version {0} is not one this store reads ({SCHEMA_VERSIONS:?})")]
    Version(String),
    #[error("field {0}: {1}")]
    Field(&'static str, String),
}

fn field<'a>(o: &'a Map<String, Value>, name: &'static str) -> Result<&'a Value, LineError> {
    o.get(name).ok_or(LineError::Field(name, "missing".into()))
}

fn text(o: &Map<String, Value>, name: &'static str) -> Result<String, LineError> {
    match field(o, name)? {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        v => Err(LineError::Field(name, format!("expected a non-empty string, found {v}"))),
    }
}

fn number(o: &Map<String, Value>, name: &'static str) -> Result<f64, LineError> {
    field(o, name)?
        .as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| LineError::Field(name, format!("expected a number, found {}", o[name])))
}

fn port(o: &Map<String, Value>, name: &'static str) -> Result<u16, LineError> {
    field(o, name)?
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| LineError::Field(name, format!("expected a port, found {}", o[name])))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Reads one event-log line.
pub fn parse(line: &str) -> Result<Event, LineError> {
    let v: Value = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let Value::Object(o) = v else {
        return Err(LineError::Json("a line must be a JSON object".into()));
    };
    let version = field(&o, "schema_version")?;
    if !version.as_u64().is_some_and(|n| SCHEMA_VERSIONS.contains(&n)) {
        return Err(LineError::Version(version.to_string()));
    }
    let verdict_text = text(&o, "verdict")?;
    let verdict = Verdict::parse(&verdict_text)
        .ok_or_else(|| LineError::Field("verdict", format!("unknown verdict {verdict_text:?}")))?;
    let scores = field(&o, "ml_scores")?;
    let mut ml_scores = [0.0; 4];
    for (slot, name) in ml_scores.iter_mut().zip(DETECTORS) {
        *slot = scores.get(name).and_then(Value::as_f64).unwrap_or(0.0);
    }
    let fast = o.get("fast");
    let proto =
        field(&o, "proto")?.as_u64().and_then(|p| u8::try_from(p).ok()).ok_or_else(|| {
            LineError::Field("proto", format!("expected 0-255, found {}", o["proto"]))
        })?;
    let authoritative = text(&o, "authoritative")?;
    let mut e = Event {
        id: 0,
        detection_id: text(&o, "detection_id")?,
        event_id: text(&o, "event_id")?,
        sensor_id: o.get("sensor_id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        detected_at: number(&o, "detected_at")?,
        first_ts: number(&o, "first_ts")?,
        last_ts: number(&o, "last_ts")?,
        src_ip: text(&o, "src_ip")?,
        src_port: port(&o, "src_port")?,
        dst_ip: text(&o, "dst_ip")?,
        dst_port: port(&o, "dst_port")?,
        proto,
        verdict,
        final_score: number(&o, "final_score")?,
        fast_score: number(&o, "fast_score")?,
        ml_score: number(&o, "ml_score")?,
        ml_scores,
        authoritative: authoritative.strip_prefix("SCORE_SOURCE_").unwrap_or(&authoritative).into(),
        fast_rules: strings(o.get("fast_rules")),
        reasons: strings(fast.and_then(|f| f.get("reasons"))),
        file: o.get("file").and_then(Value::as_str).map(str::to_owned),
        vector: Vec::new(),
        layout: 0,
        description: String::new(),
        summary_id: 0,
    };
    (e.vector, e.layout) = vector(&o);
    e.description = describe(&e);
    Ok(e)
}

/// The numeric leaves of `features`, `source_context` and `responder_context` (in key order),
/// each scaled by sign(v)·ln(1 + |v|) so packet counts and byte rates weigh alike, then the
/// whole vector to unit length: inner product is cosine similarity. Returns the layout hash
/// of the names too.
pub fn vector(o: &Map<String, Value>) -> (Vec<f32>, u64) {
    let mut out = Vec::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for group in ["features", "source_context", "responder_context"] {
        let Some(Value::Object(m)) = o.get(group) else { continue };
        for (k, v) in m {
            let Some(x) = v.as_f64() else { continue };
            for b in group.bytes().chain([b'.']).chain(k.bytes()).chain([0]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            #[allow(clippy::cast_possible_truncation, reason = "f32 vectors")]
            out.push((x.signum() * x.abs().ln_1p()) as f32);
        }
    }
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut out {
            *x /= norm;
        }
    }
    (out, h)
}

/// The protocol's name for descriptions.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        n => format!("IP protocol {n}"),
    }
}

/// Unix seconds as UTC text (`YYYY-MM-DD HH:MM:SS`).
pub fn utc(secs: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "clamped")]
    let ns = (secs.max(0.0) * 1e9) as u64;
    let t = mld_logfile::time::timestamp(ns);
    // "YYYY-MM-DDTHH:MM:SS.ffffff+0000" → "YYYY-MM-DD HH:MM:SS"
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

/// One sentence that says what the event is: embedded for text search and shown to the model.
pub fn describe(e: &Event) -> String {
    let mut s = format!(
        "{} {} flow from {}:{} to {}:{} at {} UTC, final score {:.2} set by the {} detector",
        e.verdict.as_str(),
        proto_name(e.proto),
        e.src_ip,
        e.src_port,
        e.dst_ip,
        e.dst_port,
        utc(e.last_ts),
        e.final_score,
        if e.authoritative == "FAST" { "rule-based fast" } else { "ML" },
    );
    let (best, score) = e
        .ml_scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or((0, 0.0), |(i, s)| (i, *s));
    if score > 0.0 {
        let _ = write!(s, "; highest forest {} {score:.2}", DETECTORS[best]);
    }
    if !e.fast_rules.is_empty() {
        let _ = write!(s, "; fast rules {}", e.fast_rules.join(", "));
    }
    if let Some(r) = e.reasons.first() {
        let _ = write!(s, "; {r}");
    }
    s.push('.');
    s
}

/// What a fast rule means, in words (for summaries the text index embeds).
pub fn rule_words(rule: &str) -> &'static str {
    match rule {
        "scan.ports" => "port scanning: one source probing many ports",
        "scan.hosts" => "host sweep: one source scanning many hosts",
        "smb.spread" => "SMB spreading to many hosts, ransomware or worm lateral movement",
        "dns.entropy" => "DNS tunnelling: random-looking query names",
        "dns.length" => "DNS tunnelling: very long query names",
        "flood.source" => "flood sent by this source, denial of service",
        "flood.victim" => "flood aimed at this host, denial of service",
        "bruteforce" => "brute-force login attempts, password guessing",
        "web.attack" => "web attack: injection or path traversal in HTTP requests",
        "login.failures" => {
            "password guessing: the server kept saying logins failed, slow brute force"
        }
        "login.sessions" => "password guessing over SSH or RDP: many short login sessions",
        "web.scan" => "web directory or file enumeration, fuzzing: many error responses",
        "dns.dga" => "domain generation algorithm malware: many non-existent domains",
        "dns.tunnel" => "DNS tunnelling: data carried in query names or TXT/NULL records",
        "scan.probe" => "scanning: failed attempts on many internal services",
        "flood.half_open" => {
            "flood aimed at this service, half-open connections, spoofed or distributed denial of service"
        }
        "flood.few_sources" => {
            "flood from one or a few sources: half-open connections, unanswered packets, denial of service"
        }
        "http.slow" => "slow HTTP denial of service: many long idle connections, slowloris",
        "beacon" => "command and control beaconing at regular intervals",
        "exfil.upload" => "data exfiltration: a large upload to an external address",
        "smb.admin_logon" => "administrator account network logon over SMB, lateral movement",
        "smb.admin_share" => "administrative share access (ADMIN$, C$), lateral movement",
        "smb.hidden_admin_session" => {
            "encrypted administrator SMB session, lateral movement hidden from view"
        }
        "smb.exec_pipe" => {
            "remote execution: service control or task scheduler pipe opened, psexec"
        }
        "dcerpc.exec_iface" => "remote execution: DCE-RPC service, task or WMI interface bound",
        "smb.file_drop" => "executable dropped on an administrative share, lateral movement",
        "dcerpc.remote_exec" => "remote execution: a service or scheduled task created remotely",
        "smb.ms17_010" => "EternalBlue / MS17-010 exploitation over SMB1",
        "smb.netlogon" => "Netlogon authentication burst, Zerologon",
        "smb.admin_spread" => {
            "administrator access spreading over several servers, lateral movement"
        }
        _ => "a fast rule",
    }
}

/// What a forest detects, in words.
pub fn detector_words(d: &str) -> &'static str {
    match d {
        "ddos" => "denial of service",
        "ransomware" => "ransomware behaviour",
        "traffic" => "anomalous traffic",
        "internal" => "internal lateral movement",
        _ => "a forest",
    }
}

/// The service a well-known port names.
pub fn service(port: u16) -> Option<&'static str> {
    Some(match port {
        20 | 21 => "FTP",
        22 => "SSH",
        23 => "Telnet",
        25 | 465 | 587 => "SMTP mail",
        53 => "DNS",
        67 | 68 => "DHCP",
        80 | 8080 => "HTTP web",
        110 | 995 => "POP3 mail",
        123 => "NTP time",
        137..=139 => "NetBIOS",
        143 | 993 => "IMAP mail",
        161 | 162 => "SNMP",
        389 | 636 => "LDAP",
        443 | 8443 => "HTTPS web",
        445 => "SMB file sharing",
        1433 => "MS SQL database",
        1900 => "SSDP",
        3306 => "MySQL database",
        3389 => "RDP remote desktop",
        5060 => "SIP",
        5353 => "mDNS",
        5432 => "PostgreSQL database",
        5900 => "VNC remote desktop",
        _ => return None,
    })
}

/// Separates a summary's parts.
pub const FACET_SEPARATOR: &str = " | ";

/// The description without addresses, ports, times and scores: what the event is, in words
/// an analyst would use, as parts separated by [`FACET_SEPARATOR`]: the verdict and protocol,
/// then its *facets*: the service, each fast rule and each forest at 0.5 or more, in words
/// ("Malicious TCP traffic | SSH | brute-force login attempts, password guessing"). Many
/// events share one summary; the text index embeds each facet once.
pub fn summarize(e: &Event) -> String {
    let verdict = match e.verdict {
        Verdict::Benign => "Benign",
        Verdict::Suspicious => "Suspicious",
        Verdict::Malicious => "Malicious",
    };
    let mut parts = vec![format!("{verdict} {} traffic", proto_name(e.proto))];
    if let Some(s) = service(e.dst_port).or_else(|| service(e.src_port)) {
        parts.push(s.to_owned());
    }
    parts.extend(e.fast_rules.iter().map(|r| rule_words(r).to_owned()));
    parts.extend(
        DETECTORS
            .iter()
            .zip(e.ml_scores)
            .filter(|(_, sc)| *sc >= 0.5)
            .map(|(d, _)| detector_words(d).to_owned()),
    );
    parts.dedup();
    parts.join(FACET_SEPARATOR)
}

/// The facets of a summary (what the text index embeds): every part after the first.
pub fn facets(summary: &str) -> impl Iterator<Item = &str> {
    summary.split(FACET_SEPARATOR).skip(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::line;

    #[test]
    fn a_line_reads_into_columns_vector_and_description() {
        let e = parse(&line("d1", "VERDICT_MALICIOUS", "10.0.0.5", 22, 1_700_000_000.0)).unwrap();
        assert_eq!(e.verdict, Verdict::Malicious);
        assert_eq!((e.src_ip.as_str(), e.dst_port, e.proto), ("10.0.0.5", 22, 6));
        assert_eq!(e.authoritative, "FAST");
        assert!(e.ml_scores.iter().zip([0.0, 0.0, 0.2, 0.0]).all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(e.fast_rules, ["scan.ports"]);
        assert_eq!(e.vector.len(), 4);
        let norm: f32 = e.vector.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(
            e.description,
            "MALICIOUS TCP flow from 10.0.0.5:40000 to 10.0.0.9:22 at 2023-11-14 22:13:20 UTC, \
             final score 0.90 set by the rule-based fast detector; highest forest traffic 0.20; \
             fast rules scan.ports; 30 ports in 30 s."
        );
    }

    #[test]
    fn summaries_leave_out_what_differs_between_alike_events() {
        let a = parse(&line("d1", "VERDICT_MALICIOUS", "10.0.0.5", 22, 1_700_000_000.0)).unwrap();
        let b = parse(&line("d2", "VERDICT_MALICIOUS", "10.9.9.9", 22, 1_800_000_000.0)).unwrap();
        assert_eq!(summarize(&a), summarize(&b));
        assert_eq!(
            summarize(&a),
            "Malicious TCP traffic | SSH | port scanning: one source probing many ports"
        );
        assert_eq!(
            facets(&summarize(&a)).collect::<Vec<_>>(),
            ["SSH", "port scanning: one source probing many ports"]
        );
        let c = parse(&line("d3", "VERDICT_BENIGN", "10.0.0.5", 40_000, 1.0)).unwrap();
        assert_eq!(
            summarize(&c),
            "Benign TCP traffic | port scanning: one source probing many ports"
        );
    }

    #[test]
    fn bad_lines_say_which_field() {
        let good = line("d1", "VERDICT_BENIGN", "10.0.0.5", 22, 1.0);
        assert!(matches!(parse("{"), Err(LineError::Json(_))));
        assert!(matches!(parse("[1]"), Err(LineError::Json(_))));
        let v2 = good.replace("\"schema_version\":1", "\"schema_version\":2");
        assert_eq!(parse(&v2), Err(LineError::Version("2".into())));
        let e = parse(&good.replace("\"dst_port\":22", "\"dst_port\":70000")).unwrap_err();
        assert!(e.to_string().starts_with("field dst_port: expected a port"), "{e}");
        let e = parse(&good.replace("VERDICT_BENIGN", "VERDICT_MAYBE")).unwrap_err();
        assert!(e.to_string().contains("unknown verdict"), "{e}");
        let e = parse(&good.replace("\"detection_id\":\"d1\",", "")).unwrap_err();
        assert_eq!(e, LineError::Field("detection_id", "missing".into()));
    }

    #[test]
    fn verdicts_parse_in_any_spelling() {
        assert_eq!(Verdict::parse("suspicious"), Some(Verdict::Suspicious));
        assert_eq!(Verdict::parse("VERDICT_MALICIOUS"), Some(Verdict::Malicious));
        assert_eq!(Verdict::parse("bad"), None);
    }
}
