//! Suricata EVE-JSON records (`event_type` `alert` and `flow`) for SIEMs that ingest
//! Suricata's `eve.json` unchanged. Field names, types and value forms follow Suricata's EVE
//! output (`timestamp` with microseconds and a `+0000` offset, `flow_id` an integer shared by a
//! flow's records, `src_*`/`dest_*` from the initiator, `proto` by name, `alert.signature_id`,
//! `alert.severity` 1-3, `flow.pkts_toserver`...). What is ours is under `mldefender`; the
//! signature ids are listed in `docs/EVENT_SCHEMA.md`.

use std::net::IpAddr;

use mld_flow::json::flow_event;
use mld_proto::{Detection, DetectorScores, FlowEvent, ScoreSource, Verdict};
use serde::Serialize;

use crate::record::timestamp;

/// Suricata's generator id for rule alerts.
const GID: u32 = 1;

/// (rule or detector, signature id, signature, Suricata classification).
pub const SIGNATURES: [(&str, u32, &str, &str); 34] = [
    (
        "ddos",
        9_100_001,
        "MLD ML ddos forest: denial-of-service flow",
        "Attempted Denial of Service",
    ),
    (
        "ransomware",
        9_100_002,
        "MLD ML ransomware forest: ransomware-like file-share activity",
        "A Network Trojan was detected",
    ),
    ("traffic", 9_100_003, "MLD ML traffic forest: anomalous traffic", "Potentially Bad Traffic"),
    ("internal", 9_100_004, "MLD ML internal forest: lateral movement", "Misc Attack"),
    ("scan.ports", 9_200_001, "MLD FAST port scan", "Detection of a Network Scan"),
    ("scan.hosts", 9_200_002, "MLD FAST host sweep", "Detection of a Network Scan"),
    ("smb.spread", 9_200_003, "MLD FAST SMB spread to many hosts", "A Network Trojan was detected"),
    ("dns.entropy", 9_200_004, "MLD FAST high-entropy DNS names", "Potentially Bad Traffic"),
    ("dns.length", 9_200_008, "MLD FAST long DNS names (tunnel)", "Potentially Bad Traffic"),
    ("flood.source", 9_200_005, "MLD FAST flooding source", "Attempted Denial of Service"),
    ("flood.victim", 9_200_006, "MLD FAST flooded victim", "Attempted Denial of Service"),
    ("bruteforce", 9_200_007, "MLD FAST login brute force", "Attempted User Privilege Gain"),
    (
        "web.attack",
        9_200_009,
        "MLD FAST web attack pattern in HTTP request",
        "Web Application Attack",
    ),
    (
        "login.failures",
        9_200_010,
        "MLD BEHAVIOUR failed logins (slow brute force)",
        "Attempted User Privilege Gain",
    ),
    (
        "login.sessions",
        9_200_011,
        "MLD BEHAVIOUR short sessions to an encrypted login service",
        "Attempted User Privilege Gain",
    ),
    (
        "web.scan",
        9_200_012,
        "MLD BEHAVIOUR web enumeration (error responses)",
        "Web Application Attack",
    ),
    (
        "dns.dga",
        9_200_013,
        "MLD BEHAVIOUR domain generation (NXDOMAIN)",
        "A Network Trojan was detected",
    ),
    ("dns.tunnel", 9_200_014, "MLD BEHAVIOUR DNS tunnel", "Potentially Bad Traffic"),
    (
        "scan.probe",
        9_200_015,
        "MLD BEHAVIOUR probes of many internal services",
        "Detection of a Network Scan",
    ),
    (
        "flood.half_open",
        9_200_016,
        "MLD BEHAVIOUR service flooded (half-open or unanswered)",
        "Attempted Denial of Service",
    ),
    (
        "http.slow",
        9_200_017,
        "MLD BEHAVIOUR slow HTTP denial of service",
        "Attempted Denial of Service",
    ),
    (
        "beacon",
        9_200_018,
        "MLD BEHAVIOUR beaconing to an external server",
        "A Network Trojan was detected",
    ),
    (
        "exfil.upload",
        9_200_019,
        "MLD BEHAVIOUR large upload to an external address",
        "Potential Corporate Privacy Violation",
    ),
    (
        "smb.admin_logon",
        9_200_020,
        "MLD BEHAVIOUR administrator network logon over SMB",
        "Misc Attack",
    ),
    ("smb.admin_share", 9_200_021, "MLD BEHAVIOUR administrative share access", "Misc Attack"),
    (
        "smb.hidden_admin_session",
        9_200_022,
        "MLD BEHAVIOUR encrypted administrator SMB session",
        "Misc Attack",
    ),
    (
        "smb.exec_pipe",
        9_200_023,
        "MLD BEHAVIOUR remote service or task pipe opened",
        "A Network Trojan was detected",
    ),
    (
        "dcerpc.exec_iface",
        9_200_024,
        "MLD BEHAVIOUR remote execution interface bound",
        "A Network Trojan was detected",
    ),
    (
        "smb.file_drop",
        9_200_025,
        "MLD BEHAVIOUR executable dropped on an administrative share",
        "A Network Trojan was detected",
    ),
    (
        "dcerpc.remote_exec",
        9_200_026,
        "MLD BEHAVIOUR service or task created remotely",
        "A Network Trojan was detected",
    ),
    (
        "smb.ms17_010",
        9_200_027,
        "MLD BEHAVIOUR SMB1 Trans2 SESSION_SETUP (MS17-010)",
        "Attempted Administrator Privilege Gain",
    ),
    (
        "smb.netlogon",
        9_200_028,
        "MLD BEHAVIOUR Netlogon authentication burst (Zerologon)",
        "Attempted Administrator Privilege Gain",
    ),
    (
        "smb.admin_spread",
        9_200_029,
        "MLD BEHAVIOUR administrator access spreading over servers",
        "Misc Attack",
    ),
    (
        "flood.few_sources",
        9_200_030,
        "MLD BEHAVIOUR service flooded by few sources",
        "Attempted Denial of Service",
    ),
];

/// Signature id for alerts with nothing more specific (a fast score without rule ids).
const SID_OTHER: u32 = 9_200_000;

#[derive(Debug, Serialize)]
struct Alert<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    category: &'a str,
    severity: u8,
}

#[derive(Debug, Serialize)]
struct Flow {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerted: Option<bool>,
}

#[derive(Debug, Serialize)]
#[allow(
    clippy::struct_excessive_bools,
    clippy::struct_field_names,
    reason = "Suricata's tcp object and its field names"
)]
struct Tcp {
    tcp_flags: String,
    syn: bool,
    fin: bool,
    rst: bool,
    psh: bool,
    ack: bool,
    urg: bool,
    ecn: bool,
    cwr: bool,
}

#[derive(Debug, Serialize)]
struct Ours<'a> {
    detection_id: &'a str,
    event_id: &'a str,
    sensor_id: &'a str,
    verdict: &'static str,
    final_score: f64,
    authoritative: &'static str,
    fast_score: f64,
    fast_rules: &'a [String],
    ml_scores: DetectorScores,
}

#[derive(Debug, Serialize)]
struct Record<'a> {
    timestamp: String,
    flow_id: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    in_iface: &'a str,
    event_type: &'static str,
    src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u32>,
    dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u32>,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<Alert<'a>>,
    flow: Flow,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<Tcp>,
    host: &'a str,
    mldefender: Ours<'a>,
}

/// Suricata's protocol names.
fn proto_name(p: u32) -> String {
    match p {
        1 => "ICMP".to_owned(),
        6 => "TCP".to_owned(),
        17 => "UDP".to_owned(),
        58 => "IPv6-ICMP".to_owned(),
        132 => "SCTP".to_owned(),
        n => format!("{n:03}"),
    }
}

/// One id per flow (the same in its alert and flow records): FNV-1a of the key and start,
/// kept below 2^53 so that JSON consumers with double-precision numbers read it exactly.
fn flow_id(flow: &FlowEvent) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(flow.sensor_id.as_bytes());
    if let Some(k) = &flow.key {
        for e in [&k.a, &k.b].into_iter().flatten() {
            eat(&e.ip);
            eat(&e.port.to_be_bytes());
        }
        eat(&k.ip_proto.to_be_bytes());
    }
    eat(&flow.start_ns.to_be_bytes());
    (h & ((1 << 53) - 1)).max(1)
}

/// The signature an alert is filed under: the fast rule when the fast score decided, the
/// highest-scoring forest otherwise.
fn signature(d: &Detection) -> (u32, &'static str, &'static str) {
    let fast = d.flow.as_ref().and_then(|f| f.fast.as_ref());
    let key: &str = if d.authoritative_source() == ScoreSource::Fast {
        fast.and_then(|f| f.rule_ids.first()).map_or("", String::as_str)
    } else {
        DetectorScores::NAMES[d.scores.unwrap_or_default().top()]
    };
    SIGNATURES.iter().find(|s| s.0 == key).map_or(
        (SID_OTHER, "MLD fast detector score", "Potentially Bad Traffic"),
        |&(_, sid, sig, cat)| (sid, sig, cat),
    )
}

fn record<'a>(d: &'a Detection, flow: &'a FlowEvent, alert: bool) -> Record<'a> {
    let j = flow_event(flow);
    let f = flow.features.unwrap_or_default();
    let ported = matches!(j.proto, 6 | 17 | 132);
    let fast = flow.fast.as_ref();
    let s = d.scores.unwrap_or_default();
    let closed = f.fin_flag_count > 0 || f.rst_flag_count > 0;
    let state = if closed {
        "closed"
    } else if f.total_bwd_packets > 0 {
        "established"
    } else {
        "new"
    };
    let flow_record = Flow {
        pkts_toserver: f.total_fwd_packets,
        pkts_toclient: f.total_bwd_packets,
        bytes_toserver: f.total_fwd_bytes + f.fwd_header_bytes,
        bytes_toclient: f.total_bwd_bytes + f.bwd_header_bytes,
        start: timestamp(flow.start_ns),
        end: (!alert).then(|| timestamp(flow.end_ns)),
        age: (!alert).then(|| flow.end_ns.saturating_sub(flow.start_ns) / 1_000_000_000),
        state: (!alert).then_some(state),
        // Suricata's reasons are timeout, forced and shutdown; a closed flow also ends by timeout.
        reason: (!alert).then_some("timeout"),
        alerted: (!alert).then(|| crate::detection::flagged(d)),
    };
    let tcp = (j.proto == 6).then(|| {
        let bits = [
            (f.fin_flag_count, 0x01),
            (f.syn_flag_count, 0x02),
            (f.rst_flag_count, 0x04),
            (f.psh_flag_count, 0x08),
            (f.ack_flag_count, 0x10),
            (f.urg_flag_count, 0x20),
            (f.ece_flag_count, 0x40),
            (f.cwr_flag_count, 0x80),
        ];
        let flags: u8 = bits.iter().filter(|(n, _)| *n > 0).fold(0, |a, (_, b)| a | b);
        Tcp {
            tcp_flags: format!("{flags:02x}"),
            syn: f.syn_flag_count > 0,
            fin: f.fin_flag_count > 0,
            rst: f.rst_flag_count > 0,
            psh: f.psh_flag_count > 0,
            ack: f.ack_flag_count > 0,
            urg: f.urg_flag_count > 0,
            ecn: f.ece_flag_count > 0,
            cwr: f.cwr_flag_count > 0,
        }
    });
    let alert = alert.then(|| {
        let (signature_id, signature, category) = signature(d);
        Alert {
            action: "allowed",
            gid: GID,
            signature_id,
            rev: 1,
            signature,
            category,
            severity: if d.verdict() == Verdict::Malicious { 1 } else { 2 },
        }
    });
    Record {
        timestamp: timestamp(if alert.is_some() { flow.end_ns } else { flow.start_ns }),
        flow_id: flow_id(flow),
        in_iface: &flow.interface,
        event_type: if alert.is_some() { "alert" } else { "flow" },
        src_ip: j.src_ip,
        src_port: ported.then_some(j.src_port),
        dest_ip: j.dst_ip,
        dest_port: ported.then_some(j.dst_port),
        proto: proto_name(j.proto),
        alert,
        flow: flow_record,
        tcp,
        host: &flow.sensor_id,
        mldefender: Ours {
            detection_id: &d.detection_id,
            event_id: &flow.event_id,
            sensor_id: &flow.sensor_id,
            verdict: d.verdict().as_str_name(),
            final_score: d.final_score,
            authoritative: d.authoritative_source().as_str_name(),
            fast_score: fast.map_or(0.0, |f| f.score.clamp(0.0, 1.0)),
            fast_rules: fast.map_or(&[], |f| &f.rule_ids),
            ml_scores: s,
        },
    }
}

/// Appends `d`'s EVE records to `out`, one JSON line each: an `alert` when the verdict is
/// SUSPICIOUS or MALICIOUS, and a `flow` record when the flow has ended (not for a snapshot
/// of a flow still running). Returns (alerts, flows) written.
pub fn write_records(d: &Detection, out: &mut Vec<u8>) -> (u32, u32) {
    let Some(flow) = d.flow.as_ref() else { return (0, 0) };
    let mut n = (0, 0);
    let mut line = |r: &Record<'_>| {
        serde_json::to_writer(&mut *out, r)
            .expect("serialising to a Vec cannot fail, and every key is a string");
        out.push(b'\n');
    };
    if crate::detection::flagged(d) {
        line(&record(d, flow, true));
        n.0 += 1;
    }
    if !flow.snapshot {
        line(&record(d, flow, false));
        n.1 += 1;
    }
    n
}
