//! `login.failures` and `login.sessions`: password guessing against one login service,
//! however slowly and with however few parallel tasks.
//!
//! Where the protocol is clear text the server says when a login failed, and that reply is
//! counted whatever the client's pace or connection reuse. Where it is encrypted (SSH, RDP,
//! TLS-wrapped mail, databases) each short session that completed its handshake, exchanged a
//! little data and ended is counted: a guess per connection or a few. A long interactive
//! session or a transfer does not count, so an administrator's work and backups do not
//! accumulate.

use std::net::IpAddr;

use mld_config::daemons::sniffer::LoginConfig;

use super::state::{Bounded, Tumbling};
use super::{Behaviour, Cx, FlowEnd, Packet, Role, SEC, StateStats};
use crate::fast::check;
use crate::packet::proto;

pub const FAILURES: &str = "login.failures";
pub const SESSIONS: &str = "login.sessions";

/// Whether a server's reply (the head of one TCP payload) says a login failed, and which
/// protocol's words it used.
pub fn failed_login(reply: &[u8]) -> Option<&'static str> {
    // Most replies on these ports are data (a download's segments): decide on the first
    // bytes, and read the first line only when they start a reply of interest.
    let starts = |p: &[u8]| reply.len() >= p.len() && reply[..p.len()].eq_ignore_ascii_case(p);
    let line = || reply.split(|&b| b == b'\n').next().unwrap_or_default();
    if starts(b"530 ") || starts(b"530-") {
        return Some("FTP 530");
    }
    if starts(b"535 ") || starts(b"535-") {
        return Some("SMTP 535");
    }
    if starts(b"-ERR") {
        let l = line();
        return (contains_ci(l, b"auth")
            || contains_ci(l, b"password")
            || contains_ci(l, b"login"))
        .then_some("POP3 -ERR");
    }
    if starts(b"HTTP/1.1 ") || starts(b"HTTP/1.0 ") {
        return match reply.get(9..12) {
            Some(b"401") => Some("HTTP 401"),
            Some(b"407") => Some("HTTP 407"),
            _ => None,
        };
    }
    // IMAP: "<tag> NO [AUTHENTICATIONFAILED] ..." or "<tag> NO LOGIN failed".
    if let Some(sp) = reply.iter().take(24).position(|&b| b == b' ')
        && sp > 0
        && reply.get(sp + 1..sp + 4).is_some_and(|w| w.eq_ignore_ascii_case(b"NO "))
    {
        let l = line();
        return (contains_ci(l, b"auth") || contains_ci(l, b"login")).then_some("IMAP NO");
    }
    if reply.len() <= 64 && contains_ci(reply, b"login incorrect") {
        return Some("telnet");
    }
    None
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[derive(Debug, Default)]
struct Pair {
    failures: Tumbling,
    sessions: Tumbling,
    words: &'static str,
}

/// Failed logins and short encrypted sessions per (source, server, port).
#[derive(Debug)]
pub struct LoginFailures {
    cfg: LoginConfig,
    pairs: Bounded<(IpAddr, IpAddr, u16), Pair>,
}

impl LoginFailures {
    pub fn new(cfg: &LoginConfig, cap: usize) -> Self {
        Self { cfg: cfg.clone(), pairs: Bounded::new(cap) }
    }
}

impl Behaviour for LoginFailures {
    fn name(&self) -> &'static str {
        "login"
    }

    fn head_ports(&self) -> Vec<u16> {
        self.cfg.reply_ports.clone()
    }

    fn on_packet(&mut self, p: &Packet<'_>, cx: &mut Cx<'_>) {
        let r = p.rec;
        if p.forward
            || r.proto != proto::TCP
            || r.payload_head.is_empty()
            || !self.cfg.reply_ports.contains(&p.service_port)
        {
            return;
        }
        let Some(words) = failed_login(r.payload_head) else { return };
        let window = self.cfg.window_secs * SEC;
        let pair = self.pairs.entry((p.initiator, p.responder, p.service_port), Pair::default);
        pair.words = words;
        let n = pair.failures.add(cx.now_ns, window, 1);
        let thr = self.cfg.failures;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        cx.measure(p.initiator, Role::Actor, n as f64, f64::from(thr));
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let hit = check(FAILURES, n as f64, f64::from(thr), || {
            format!(
                "{} failed {n} logins on {}:{} within {} s ({words} replies; threshold {thr})",
                p.initiator, p.responder, p.service_port, self.cfg.window_secs
            )
        });
        cx.report(p.initiator, Role::Actor, hit);
    }

    fn on_flow_end(&mut self, f: &FlowEnd, cx: &mut Cx<'_>) {
        let c = &self.cfg;
        let short = f.proto == proto::TCP
            && f.syn_ack
            && f.fwd_bytes > 0
            && f.bwd_bytes > 0
            && f.end_ns.saturating_sub(f.start_ns) < c.short_session_secs * SEC
            && f.fwd_bytes + f.bwd_bytes < c.short_session_bytes
            && c.session_ports.contains(&f.service_port);
        if !short {
            return;
        }
        let window = c.window_secs * SEC;
        let pair = self.pairs.entry((f.initiator, f.responder, f.service_port), Pair::default);
        let n = pair.sessions.add(cx.now_ns, window, 1);
        let thr = c.short_sessions;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        cx.measure(f.initiator, Role::Actor, n as f64, f64::from(thr));
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let hit = check(SESSIONS, n as f64, f64::from(thr), || {
            format!(
                "{} opened {n} short sessions to login service {}:{} within {} s, each under {} s and {} bytes (threshold {thr})",
                f.initiator,
                f.responder,
                f.service_port,
                c.window_secs,
                c.short_session_secs,
                c.short_session_bytes
            )
        });
        cx.report(f.initiator, Role::Actor, hit);
    }

    fn state(&self) -> StateStats {
        self.pairs.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_replies_that_say_a_login_failed() {
        for (reply, want) in [
            (&b"530 Login incorrect.\r\n"[..], Some("FTP 530")),
            (b"535 5.7.8 Error: authentication failed\r\n", Some("SMTP 535")),
            (b"-ERR [AUTH] Authentication failed.\r\n", Some("POP3 -ERR")),
            (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n", Some("HTTP 401")),
            (b"a001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", Some("IMAP NO")),
            (b"\r\nLogin incorrect\r\nlogin: ", Some("telnet")),
            (b"230 Login successful.\r\n", None),
            (b"HTTP/1.1 200 OK\r\n", None),
            (b"HTTP/1.1 404 Not Found\r\n", None),
            (b"-ERR unknown command\r\n", None),
            (b"* NO [ALERT] mailbox almost full\r\n", None),
            (b"", None),
        ] {
            assert_eq!(failed_login(reply), want, "{:?}", String::from_utf8_lossy(reply));
        }
    }
}
