//! A question into store filters: time expressions ("yesterday", "last hour", "past 3 days",
//! "since 2026-11-20", "on 2026-11-20", "between 2026-11-20 and 2026-11-21"), addresses,
//! "port N", verdict words ("blocked" and "malicious" are
//! `MALICIOUS`), forests ("ddos forest", "lateral movement") and fast rule ids. Whatever is
//! left (the topic: "scanning", "ssh brute force", less generic words like "summarise") goes
//! to the text index; service names stay in the topic (a service may run on any port). Times are UTC; `now`
//! is passed in so that parsing is testable.

use std::net::IpAddr;

use mld_eventstore::{Filter, Verdict};

/// A parsed question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub filter: Filter,
    /// The words that are not filters (empty: no topic, filters alone select).
    pub topic: String,
    /// What the filters mean, for the analyst (`from … to … UTC`, `host 10.0.0.5`).
    pub understood: Vec<String>,
}

const DAY: f64 = 86_400.0;

/// Words that carry no topic: a question made only of these and filters is answered from
/// the filters alone.
const STOP: [&str; 92] = [
    "a",
    "an",
    "the",
    "which",
    "what",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "were",
    "was",
    "is",
    "are",
    "be",
    "been",
    "did",
    "do",
    "does",
    "has",
    "have",
    "had",
    "for",
    "from",
    "to",
    "of",
    "in",
    "on",
    "at",
    "by",
    "with",
    "and",
    "or",
    "any",
    "all",
    "show",
    "list",
    "me",
    "tell",
    "about",
    "there",
    "that",
    "this",
    "these",
    "those",
    "hosts",
    "host",
    "events",
    "event",
    "ip",
    "ips",
    "addresses",
    "address",
    "happened",
    "our",
    "we",
    "summarise",
    "summarize",
    "summary",
    "overview",
    "activity",
    "activities",
    "anything",
    "everything",
    "something",
    "alerts",
    "alert",
    "detections",
    "detection",
    "flows",
    "flow",
    "happen",
    "happening",
    "going",
    "report",
    "give",
    "please",
    "can",
    "you",
    "see",
    "seen",
    "saw",
    "get",
    "i",
    "my",
    "it",
    "its",
    "they",
    "them",
    "their",
];

/// Unix seconds of 00:00 UTC on the day of `t`.
fn day_start(t: f64) -> f64 {
    (t / DAY).floor() * DAY
}

/// `YYYY-MM-DD` → Unix seconds of its 00:00 UTC.
pub fn parse_date(s: &str) -> Option<f64> {
    let mut it = s.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    #[allow(clippy::cast_precision_loss, reason = "days since 1970 fit")]
    Some(days as f64 * DAY)
}

/// A time word and its length in seconds ("hour", "3 days" …).
fn unit(w: &str) -> Option<f64> {
    Some(match w.trim_end_matches('s') {
        "second" | "sec" => 1.0,
        "minute" | "min" => 60.0,
        "hour" | "hr" | "h" => 3_600.0,
        "day" | "d" => DAY,
        "week" | "wk" => 7.0 * DAY,
        "month" => 30.0 * DAY,
        _ => return None,
    })
}

fn number_word(w: &str) -> Option<f64> {
    let words =
        ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve"];
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0];
    w.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .or_else(|| words.iter().position(|x| *x == w).map(|i| values[i]))
}

/// Why a question's filter could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    Date(String),
    #[error("{0:?} is not a port (1-65535)")]
    Port(String),
    #[error("the time range ends ({until}) before it starts ({since})")]
    Range { since: String, until: String },
}

/// Parses `question` at `now` (Unix seconds).
#[allow(
    clippy::too_many_lines,
    clippy::many_single_char_names,
    reason = "one table of phrases, read in one pass"
)]
pub fn parse(question: &str, now: f64) -> Result<Query, ParseError> {
    let lower = question.to_lowercase();
    let words: Vec<String> = lower
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '?' | '!' | ';' | '(' | ')' | '"'))
        .map(|w| w.trim_end_matches('.').to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    let mut q = Query::default();
    let mut used = vec![false; words.len()];
    let w = |i: usize| words.get(i).map_or("", String::as_str);
    let mut since: Option<f64> = None;
    let mut until: Option<f64> = None;
    let mut i = 0;
    while i < words.len() {
        let take = |n: usize, used: &mut Vec<bool>| {
            for u in used.iter_mut().skip(i).take(n) {
                *u = true;
            }
            n
        };
        let step = match (w(i), w(i + 1), w(i + 2)) {
            ("today", ..) => {
                (since, until) = (Some(day_start(now)), None);
                take(1, &mut used)
            }
            ("yesterday", ..) => {
                (since, until) = (Some(day_start(now) - DAY), Some(day_start(now)));
                take(1, &mut used)
            }
            ("this", "week" | "month", _) => {
                let days = if w(i + 1) == "week" { 7.0 } else { 30.0 };
                (since, until) = (Some(day_start(now) - (days - 1.0) * DAY), None);
                take(2, &mut used)
            }
            ("last" | "past" | "previous" | "recent", n, u)
                if number_word(n).is_some() && unit(u).is_some() =>
            {
                let secs = number_word(n).unwrap_or(1.0) * unit(u).unwrap_or(DAY);
                (since, until) = (Some(now - secs), None);
                take(3, &mut used)
            }
            ("last" | "past" | "previous", u, _) if unit(u).is_some() => {
                (since, until) = (Some(now - unit(u).unwrap_or(DAY)), None);
                take(2, &mut used)
            }
            ("since" | "after", d, _) if looks_like_date(d) => {
                since = Some(parse_date(d).ok_or_else(|| ParseError::Date(d.into()))?);
                take(2, &mut used)
            }
            ("before" | "until", d, _) if looks_like_date(d) => {
                until = Some(parse_date(d).ok_or_else(|| ParseError::Date(d.into()))?);
                take(2, &mut used)
            }
            ("on", d, _) if looks_like_date(d) => {
                let t = parse_date(d).ok_or_else(|| ParseError::Date(d.into()))?;
                (since, until) = (Some(t), Some(t + DAY));
                take(2, &mut used)
            }
            ("between", a, "and") if looks_like_date(a) && looks_like_date(w(i + 3)) => {
                let b = w(i + 3);
                let t0 = parse_date(a).ok_or_else(|| ParseError::Date(a.into()))?;
                let t1 = parse_date(b).ok_or_else(|| ParseError::Date(b.into()))?;
                (since, until) = (Some(t0), Some(t1 + DAY));
                take(4, &mut used)
            }
            (d, ..) if looks_like_date(d) => {
                let t = parse_date(d).ok_or_else(|| ParseError::Date(d.into()))?;
                (since, until) = (Some(t), Some(t + DAY));
                take(1, &mut used)
            }
            ("port" | "ports", p, _) if p.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| ParseError::Port(p.into()))?;
                q.filter.ports.push(port);
                take(2, &mut used)
            }
            (word, ..) => {
                if let Ok(ip) = word.parse::<IpAddr>() {
                    q.filter.hosts.push(ip.to_string());
                    take(1, &mut used)
                } else if let Some(v) = verdict_word(word) {
                    if !q.filter.verdicts.contains(&v) {
                        q.filter.verdicts.push(v);
                    }
                    // "attacks" is a topic word too ("web attacks").
                    if matches!(word, "attack" | "attacks") { 1 } else { take(1, &mut used) }
                } else if let Some(d) = detector_phrase(word, w(i + 1)) {
                    q.filter.detectors.push(d.0.into());
                    take(d.1, &mut used)
                } else if is_rule_id(word) {
                    q.filter.rules.push(word.into());
                    take(1, &mut used)
                } else {
                    1
                }
            }
        };
        i += step;
    }
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        return Err(ParseError::Range {
            since: mld_eventstore::event::utc(s),
            until: mld_eventstore::event::utc(u),
        });
    }
    q.filter.since = since;
    q.filter.until = until;
    q.topic = words
        .iter()
        .zip(&used)
        .filter(|(w, used)| !**used && !STOP.contains(&w.as_str()))
        .map(|(w, _)| w.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    q.understood = describe(&q.filter);
    Ok(q)
}

fn looks_like_date(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b.get(4) == Some(&b'-')
}

fn verdict_word(w: &str) -> Option<Verdict> {
    Some(match w {
        "blocked" | "block" | "malicious" | "attack" | "attacks" | "attacker" | "attackers" => {
            Verdict::Malicious
        }
        "suspicious" => Verdict::Suspicious,
        "benign" => Verdict::Benign,
        _ => return None,
    })
}

/// A forest named in the question, and how many words named it.
fn detector_phrase(w: &str, next: &str) -> Option<(&'static str, usize)> {
    match (w, next) {
        ("ddos" | "dos", "forest" | "detector" | "model") => Some(("ddos", 2)),
        ("ransomware", "forest" | "detector" | "model") => Some(("ransomware", 2)),
        ("traffic" | "anomaly", "forest" | "detector" | "model") => Some(("traffic", 2)),
        ("internal", "forest" | "detector" | "model") | ("lateral", "movement") => {
            Some(("internal", 2))
        }
        _ => None,
    }
}

/// A fast rule id as the event log writes it (`scan.ports`, `bruteforce` …).
fn is_rule_id(w: &str) -> bool {
    matches!(
        w,
        "scan.ports"
            | "scan.hosts"
            | "smb.spread"
            | "dns.entropy"
            | "dns.length"
            | "flood.source"
            | "flood.victim"
            | "bruteforce"
            | "web.attack"
            | "login.failures"
            | "login.sessions"
            | "web.scan"
            | "dns.dga"
            | "dns.tunnel"
            | "scan.probe"
            | "flood.half_open"
            | "flood.few_sources"
            | "http.slow"
            | "beacon"
            | "exfil.upload"
            | "smb.admin_logon"
            | "smb.admin_share"
            | "smb.hidden_admin_session"
            | "smb.exec_pipe"
            | "dcerpc.exec_iface"
            | "smb.file_drop"
            | "dcerpc.remote_exec"
            | "smb.ms17_010"
            | "smb.netlogon"
            | "smb.admin_spread"
    )
}

/// The filters in words.
pub fn describe(f: &Filter) -> Vec<String> {
    use mld_eventstore::event::utc;
    let mut out = Vec::new();
    match (f.since, f.until) {
        (Some(s), Some(u)) => out.push(format!("from {} to {} UTC", utc(s), utc(u))),
        (Some(s), None) => out.push(format!("since {} UTC", utc(s))),
        (None, Some(u)) => out.push(format!("before {} UTC", utc(u))),
        (None, None) => {}
    }
    let list =
        |name: &str, v: Vec<String>| (!v.is_empty()).then(|| format!("{name} {}", v.join(" or ")));
    out.extend(list("host", f.hosts.clone()));
    out.extend(list("port", f.ports.iter().map(u16::to_string).collect()));
    out.extend(list("verdict", f.verdicts.iter().map(|v| v.as_str().to_owned()).collect()));
    out.extend(list("forest", f.detectors.clone()));
    out.extend(list("fast rule", f.rules.clone()));
    if let Some(s) = f.min_score {
        out.push(format!("score >= {s}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 10:30:00 UTC.
    const NOW: f64 = 1_795_429_800.0;
    const MIDNIGHT: f64 = 1_795_392_000.0;

    #[test]
    fn dates_are_utc_midnights() {
        assert_eq!(parse_date("2026-11-23"), Some(MIDNIGHT));
        assert_eq!(parse_date("1970-01-01"), Some(0.0));
        let leap = parse_date("2024-03-01").unwrap() - parse_date("2024-02-28").unwrap();
        assert!((leap - 2.0 * DAY).abs() < 1.0, "{leap}");
        for bad in ["2026-13-01", "2026-11", "26-11-23", "2026-11-23-1", "x"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn questions_into_filters() {
        struct Case {
            q: &'static str,
            since: Option<f64>,
            until: Option<f64>,
            hosts: &'static [&'static str],
            ports: &'static [u16],
            verdicts: &'static [Verdict],
            detectors: &'static [&'static str],
            rules: &'static [&'static str],
            topic: &'static str,
        }
        let none = Case {
            q: "",
            since: None,
            until: None,
            hosts: &[],
            ports: &[],
            verdicts: &[],
            detectors: &[],
            rules: &[],
            topic: "",
        };
        let cases = [
            Case {
                q: "Which hosts were blocked for scanning yesterday?",
                since: Some(MIDNIGHT - DAY),
                until: Some(MIDNIGHT),
                verdicts: &[Verdict::Malicious],
                topic: "scanning",
                ..none
            },
            Case { q: "anything in the last hour", since: Some(NOW - 3_600.0), ..none },
            Case {
                q: "past 3 days of ssh brute force",
                since: Some(NOW - 3.0 * DAY),
                topic: "ssh brute force",
                ..none
            },
            Case {
                q: "Summarise the malicious activity yesterday",
                since: Some(MIDNIGHT - DAY),
                until: Some(MIDNIGHT),
                verdicts: &[Verdict::Malicious],
                ..none
            },
            Case { q: "last two weeks", since: Some(NOW - 14.0 * DAY), ..none },
            Case { q: "today", since: Some(MIDNIGHT), ..none },
            Case { q: "this week", since: Some(MIDNIGHT - 6.0 * DAY), ..none },
            Case {
                q: "what did 10.0.0.5 do on 2026-11-20",
                since: Some(MIDNIGHT - 3.0 * DAY),
                until: Some(MIDNIGHT - 2.0 * DAY),
                hosts: &["10.0.0.5"],
                ..none
            },
            Case {
                q: "between 2026-11-01 and 2026-11-02 port 445 suspicious",
                since: parse_date("2026-11-01"),
                until: parse_date("2026-11-03"),
                ports: &[445],
                verdicts: &[Verdict::Suspicious],
                ..none
            },
            Case {
                q: "since 2026-11-20 fe80::1",
                since: Some(MIDNIGHT - 3.0 * DAY),
                hosts: &["fe80::1"],
                ..none
            },
            Case { q: "ddos forest alerts", detectors: &["ddos"], ..none },
            Case {
                q: "lateral movement from 192.168.1.20",
                detectors: &["internal"],
                hosts: &["192.168.1.20"],
                ..none
            },
            Case { q: "scan.ports or bruteforce", rules: &["scan.ports", "bruteforce"], ..none },
            Case { q: "DNS tunnelling", topic: "dns tunnelling", ..none },
        ];
        for c in cases {
            let q = parse(c.q, NOW).unwrap_or_else(|e| panic!("{:?}: {e}", c.q));
            let f = &q.filter;
            assert_eq!((f.since, f.until), (c.since, c.until), "{:?}", c.q);
            assert_eq!(f.hosts, c.hosts, "{:?}", c.q);
            assert_eq!(f.ports, c.ports, "{:?}", c.q);
            assert_eq!(f.verdicts, c.verdicts, "{:?}", c.q);
            assert_eq!(f.detectors, c.detectors, "{:?}", c.q);
            assert_eq!(f.rules, c.rules, "{:?}", c.q);
            assert_eq!(q.topic, c.topic, "{:?}", c.q);
        }
    }

    #[test]
    fn malformed_filters_are_errors_naming_the_value() {
        assert_eq!(parse("on 2026-02-30x", NOW), Err(ParseError::Date("2026-02-30x".into())));
        assert_eq!(parse("port 70000", NOW), Err(ParseError::Port("70000".into())));
        assert_eq!(parse("port 0", NOW), Err(ParseError::Port("0".into())));
        let e = parse("between 2026-11-05 and 2026-11-01", NOW).unwrap_err();
        assert!(matches!(e, ParseError::Range { .. }), "{e}");
    }
}
