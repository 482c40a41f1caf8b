//! `web.scan`: a client drawing a stream of error responses from one web server — directory
//! and file enumeration, parameter fuzzing — counted from the server's status lines, so that
//! neither connection reuse nor the client's pace hides it.

use std::net::IpAddr;

use mld_config::daemons::sniffer::WebScanConfig;

use super::state::{Bounded, Tumbling};
use super::{Behaviour, Cx, Packet, Role, SEC, StateStats};
use crate::fast::check;
use crate::packet::proto;

pub const RULE: &str = "web.scan";

/// The status code of an HTTP/1.x response head.
pub fn status(head: &[u8]) -> Option<u16> {
    let rest = head.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    if rest.get(1) != Some(&b' ') || !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
}

/// Statuses a scanner draws: not found, forbidden, bad request, method not allowed, URI too
/// long.
fn scan_error(code: u16) -> bool {
    matches!(code, 400 | 403 | 404 | 405 | 414)
}

#[derive(Debug, Default)]
struct Pair {
    responses: Tumbling,
    errors: u64,
}

#[derive(Debug)]
pub struct WebScan {
    cfg: WebScanConfig,
    pairs: Bounded<(IpAddr, IpAddr, u16), Pair>,
    web_ports: Vec<u16>,
}

impl WebScan {
    pub fn new(cfg: &WebScanConfig, web_ports: &[u16], cap: usize) -> Self {
        Self { cfg: cfg.clone(), pairs: Bounded::new(cap), web_ports: web_ports.to_vec() }
    }
}

impl Behaviour for WebScan {
    fn name(&self) -> &'static str {
        "web_scan"
    }

    fn on_packet(&mut self, p: &Packet<'_>, cx: &mut Cx<'_>) {
        let r = p.rec;
        if p.forward
            || r.proto != proto::TCP
            || r.payload_head.len() < 12
            || !self.web_ports.contains(&p.service_port)
        {
            return;
        }
        let Some(code) = status(r.payload_head) else { return };
        let window = self.cfg.window_secs * SEC;
        let pair = self.pairs.entry((p.initiator, p.responder, p.service_port), Pair::default);
        let before = pair.responses.count;
        let total = pair.responses.add(cx.now_ns, window, 1);
        if total <= before {
            pair.errors = 0;
        }
        if !scan_error(code) {
            return;
        }
        pair.errors += 1;
        let errors = pair.errors;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let share = errors as f64 / total as f64;
        if share < self.cfg.min_error_share {
            return;
        }
        let thr = self.cfg.errors;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        cx.measure(p.initiator, Role::Actor, errors as f64, f64::from(thr));
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let hit = check(RULE, errors as f64, f64::from(thr), || {
            format!(
                "{} drew {errors} error responses (404, 403, 400, 405, 414) out of {total} from web server {}:{} within {} s, e.g. {code} (threshold {thr} and {:.0} %)",
                p.initiator,
                p.responder,
                p.service_port,
                self.cfg.window_secs,
                self.cfg.min_error_share * 100.0
            )
        });
        cx.report(p.initiator, Role::Actor, hit);
    }

    fn state(&self) -> StateStats {
        self.pairs.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status(b"HTTP/1.1 404 Not Found\r\n"), Some(404));
        assert_eq!(status(b"HTTP/1.0 200 OK"), Some(200));
        assert_eq!(status(b"HTTP/1.1 20"), None);
        assert_eq!(status(b"HTTP/2 200"), None);
        assert_eq!(status(b"GET / HTTP/1.1"), None);
        assert_eq!(status(b"HTTP/1.1 4x4"), None);
    }
}
