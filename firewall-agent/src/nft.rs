//! The agent's nftables table, `inet mldefender`, and the scripts that change it. Every change
//! is one `nft -f -` transaction (atomic in the kernel): the whole table at start, a batch of
//! set elements per batch window. No other table is ever named.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ipnet::IpNet;

use crate::policy::{Service, Shield};

/// The table's family and name.
pub const TABLE: &str = "inet mldefender";

/// Chains hook in before the usual filter chains (priority `filter - 10`), so a block holds
/// whatever other tables accept.
const PRIORITY: &str = "filter - 10";

/// TCP options the SYN proxy announces in its cookies' SYN-ACK: those of a Linux server on an
/// Ethernet link (a server with other values still works; the proxy rewrites the window).
const SYNPROXY: &str = "synproxy mss 1460 wscale 7 timestamp sack-perm";
/// The SYN proxy's sets: the match that makes the packet TCP (the port match does it for one
/// service), the key the set holds, the set.
const SYN_SETS: [(&str, &str, &str); 2] =
    [("", " . tcp dport", "syn"), ("meta l4proto tcp ", "", "synaddr")];
/// Elements per protection set (the policy's cap, `response.max_protected_services`, is lower).
const PROTECT_SET_SIZE: u32 = 65_536;

/// The whole table, replacing any table of that name in one transaction:
/// - allow sets (interval, auto-merged) and block sets (per-element timeouts, size cap); in the
///   input and forward hooks, blocked sources are counted and dropped unless allowed, and in
///   forward a blocked address is also unreachable as a destination (a beacon's server);
/// - protected services (ADR 0012): `syn4`/`syn6` (address . port) and `synaddr4`/`synaddr6`
///   (every TCP port of an address) go through the SYN proxy, whose SYNs skip conntrack in a
///   prerouting chain so that only completed handshakes reach the server; `guard4`/`guard6`
///   (address . protocol . port: TCP SYNs, UDP) and `guardproto4`/`guardproto6` (address .
///   protocol: all its ports, or a protocol without ports such as ICMP) are rate-limited per
///   element to `limit_pps` packets per second, the excess counted and dropped.
pub fn render_table(allowlist: &[IpNet], max_elements: u32, limit_pps: u32) -> String {
    let limit = format!("limit rate over {limit_pps}/second burst {limit_pps} packets");
    let mut s = String::new();
    // Creating then deleting makes the delete safe when the table does not exist yet.
    let _ = writeln!(s, "table {TABLE} {{}}");
    let _ = writeln!(s, "delete table {TABLE}");
    let _ = writeln!(s, "table {TABLE} {{");
    sets(&mut s, allowlist, max_elements);
    let _ = writeln!(s, "\tchain prerouting {{");
    let _ = writeln!(s, "\t\ttype filter hook prerouting priority raw; policy accept;");
    for (v, ip) in [("4", "ip"), ("6", "ip6")] {
        for (_, key, set) in SYN_SETS {
            let _ = writeln!(
                s,
                "\t\ttcp flags syn / fin,syn,rst,ack {ip} daddr{key} @{set}{v} notrack"
            );
        }
    }
    let _ = writeln!(s, "\t}}");
    for (chain, hook) in [("input", "input"), ("forward", "forward")] {
        let _ = writeln!(s, "\tchain {chain} {{");
        let _ = writeln!(s, "\t\ttype filter hook {hook} priority {PRIORITY}; policy accept;");
        for (v, ip) in [("4", "ip"), ("6", "ip6")] {
            for (tcp, key, set) in SYN_SETS {
                let m = format!("{tcp}{ip} daddr{key} @{set}{v}");
                let _ = writeln!(s, "\t\t{m} ct state invalid,untracked {SYNPROXY}");
                let _ = writeln!(s, "\t\t{m} ct state invalid counter drop");
            }
        }
        for (v, ip) in [("4", "ip"), ("6", "ip6")] {
            let _ = writeln!(s, "\t\t{ip} saddr @allow{v} accept");
        }
        for (v, ip) in [("4", "ip"), ("6", "ip6")] {
            let _ = writeln!(s, "\t\t{ip} saddr @block{v} counter drop");
            if chain == "forward" {
                let _ = writeln!(s, "\t\t{ip} daddr @block{v} counter drop");
            }
        }
        for (v, ip) in [("4", "ip"), ("6", "ip6")] {
            let _ = writeln!(
                s,
                "\t\ttcp flags syn / fin,syn,rst,ack {ip} daddr . meta l4proto . tcp dport @guard{v} update @rate{v} {{ {ip} daddr . meta l4proto . tcp dport {limit} }} counter drop"
            );
            let _ = writeln!(
                s,
                "\t\tmeta l4proto udp {ip} daddr . meta l4proto . udp dport @guard{v} update @rate{v} {{ {ip} daddr . meta l4proto . udp dport {limit} }} counter drop"
            );
            let _ = writeln!(
                s,
                "\t\ttcp flags syn / fin,syn,rst,ack {ip} daddr . meta l4proto @guardproto{v} update @rateproto{v} {{ {ip} daddr . meta l4proto {limit} }} counter drop"
            );
            let _ = writeln!(
                s,
                "\t\tmeta l4proto != tcp {ip} daddr . meta l4proto @guardproto{v} update @rateproto{v} {{ {ip} daddr . meta l4proto {limit} }} counter drop"
            );
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "}}");
    s
}

/// The table's sets, for [`render_table`].
fn sets(s: &mut String, allowlist: &[IpNet], max_elements: u32) {
    let fmt = |v4: bool| {
        let nets = nets(allowlist, v4);
        if nets.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", nets.join(", "))
        }
    };
    for (v, addr, v4) in [("4", "ipv4_addr", true), ("6", "ipv6_addr", false)] {
        let _ =
            writeln!(s, "\tset allow{v} {{ type {addr}; flags interval; auto-merge;{} }}", fmt(v4));
        let _ =
            writeln!(s, "\tset block{v} {{ type {addr}; flags timeout; size {max_elements}; }}");
        let _ = writeln!(
            s,
            "\tset syn{v} {{ type {addr} . inet_service; flags timeout; size {PROTECT_SET_SIZE}; }}"
        );
        let _ = writeln!(
            s,
            "\tset guard{v} {{ type {addr} . inet_proto . inet_service; flags timeout; size {PROTECT_SET_SIZE}; }}"
        );
        let _ = writeln!(
            s,
            "\tset synaddr{v} {{ type {addr}; flags timeout; size {PROTECT_SET_SIZE}; }}"
        );
        let _ = writeln!(
            s,
            "\tset guardproto{v} {{ type {addr} . inet_proto; flags timeout; size {PROTECT_SET_SIZE}; }}"
        );
        // The meters: one token bucket per protected element, forgotten 10 s after its last
        // packet.
        let _ = writeln!(
            s,
            "\tset rate{v} {{ type {addr} . inet_proto . inet_service; flags dynamic,timeout; timeout 10s; size {PROTECT_SET_SIZE}; }}"
        );
        let _ = writeln!(
            s,
            "\tset rateproto{v} {{ type {addr} . inet_proto; flags dynamic,timeout; timeout 10s; size {PROTECT_SET_SIZE}; }}"
        );
    }
}

/// Adds protections (service, shield, time left) to the protection sets; empty when there is
/// nothing to add.
pub fn render_protections(protections: &[(Service, Shield, Duration)]) -> String {
    let mut s = String::new();
    for (svc, shield, left) in protections {
        let timeout = left.as_millis().max(1);
        let (set, element) = element(svc, *shield);
        let _ = writeln!(s, "add element {TABLE} {set} {{ {element} timeout {timeout}ms }}");
    }
    s
}

/// The set (`syn4`, `guardproto6`...) and the element that protect `svc` with `shield`, as
/// nft writes and [`Nft::list`] reads them.
pub fn element(svc: &Service, shield: Shield) -> (String, String) {
    let v = if svc.addr.is_ipv4() { "4" } else { "6" };
    let (set, element) = match (shield, svc.proto, svc.port) {
        (Shield::Synproxy, _, 0) => ("synaddr", svc.addr.to_string()),
        (Shield::Synproxy, _, port) => ("syn", format!("{} . {port}", svc.addr)),
        (Shield::Limit, 6 | 17, port) if port != 0 => {
            ("guard", format!("{} . {} . {port}", svc.addr, svc.proto_name()))
        }
        (Shield::Limit, _, _) => ("guardproto", format!("{} . {}", svc.addr, svc.proto_name())),
    };
    (format!("{set}{v}"), element)
}

/// The IPv4 (or IPv6) nets of `allowlist`, as nft writes them.
fn nets(allowlist: &[IpNet], v4: bool) -> Vec<String> {
    allowlist.iter().filter(|n| matches!(n, IpNet::V4(_)) == v4).map(ToString::to_string).collect()
}

/// Replaces the allow sets' elements with `allowlist`, in one transaction (a config change
/// while running).
pub fn render_allowlist(allowlist: &[IpNet]) -> String {
    let mut s = String::new();
    for (set, v4) in [("allow4", true), ("allow6", false)] {
        let _ = writeln!(s, "flush set {TABLE} {set}");
        let nets = nets(allowlist, v4);
        if !nets.is_empty() {
            let _ = writeln!(s, "add element {TABLE} {set} {{ {} }}", nets.join(", "));
        }
    }
    s
}

/// Adds `blocks` (address, time left) to the block sets; empty when there is nothing to add.
pub fn render_blocks(blocks: &[(IpAddr, Duration)]) -> String {
    let mut s = String::new();
    for (set, v4) in [("block4", true), ("block6", false)] {
        let elements: Vec<String> = blocks
            .iter()
            .filter(|(a, _)| a.is_ipv4() == v4)
            // nft's smallest timeout unit is the millisecond; never 0 (that means "no timeout").
            .map(|(a, left)| format!("{a} timeout {}ms", left.as_millis().max(1)))
            .collect();
        if !elements.is_empty() {
            let _ = writeln!(s, "add element {TABLE} {set} {{ {} }}", elements.join(", "));
        }
    }
    s
}

/// Deletes the table (`on_exit: remove`); no error when it is already gone.
pub fn render_remove() -> String {
    format!("table {TABLE} {{}}\ndelete table {TABLE}\n")
}

/// Runs scripts through `nft -f -`.
#[derive(Debug, Clone)]
pub struct Nft {
    program: PathBuf,
}

/// A script `nft` refused or could not run.
#[derive(Debug, thiserror::Error)]
#[error("{program} -f - failed: {message}")]
pub struct NftError {
    pub program: String,
    pub message: String,
}

impl Nft {
    pub fn new(program: &Path) -> Self {
        Self { program: program.to_owned() }
    }

    /// Applies `script` as one transaction.
    pub fn apply(&self, script: &str) -> Result<(), NftError> {
        let err =
            |message: String| NftError { program: self.program.display().to_string(), message };
        let mut child = Command::new(&self.program)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot run it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| err(format!("writing the script: {e}")))?;
        }
        let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())))
        }
    }

    /// The addresses in a block set, read back from the kernel.
    pub fn list_addrs(&self, set: &str) -> Result<Vec<IpAddr>, NftError> {
        Ok(self.list(set)?.iter().filter_map(|e| e.parse().ok()).collect())
    }

    /// The elements of a set, read back from the kernel (`nft -j list set`), each as nft
    /// writes it (`10.0.0.1`, `10.0.0.1 . udp . 53`).
    pub fn list(&self, set: &str) -> Result<Vec<String>, NftError> {
        let err =
            |message: String| NftError { program: self.program.display().to_string(), message };
        let out = Command::new(&self.program)
            .args(["-j", "list", "set", "inet", "mldefender", set])
            .output()
            .map_err(|e| err(format!("cannot run it: {e}")))?;
        if !out.status.success() {
            return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| err(format!("unreadable JSON: {e}")))?;
        let scalar = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let mut out = Vec::new();
        for item in v["nftables"].as_array().into_iter().flatten() {
            for e in item["set"]["elem"].as_array().into_iter().flatten() {
                // Elements with a timeout are objects {"elem": {"val": "1.2.3.4", ...}};
                // concatenations are {"concat": ["10.0.0.1", "udp", 53]}.
                let val = e.get("elem").map_or(e, |inner| &inner["val"]);
                let text = match val.get("concat").and_then(|c| c.as_array()) {
                    Some(parts) => {
                        parts.iter().map(scalar).collect::<Option<Vec<_>>>().map(|p| p.join(" . "))
                    }
                    None => scalar(val),
                };
                out.extend(text);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn an_allowlist_change_replaces_both_sets_in_one_script() {
        let allow: Vec<IpNet> =
            ["10.0.0.0/8", "fd00::/8"].iter().map(|n| n.parse().unwrap()).collect();
        assert_eq!(
            render_allowlist(&allow),
            "flush set inet mldefender allow4\nadd element inet mldefender allow4 { 10.0.0.0/8 }\n\
             flush set inet mldefender allow6\nadd element inet mldefender allow6 { fd00::/8 }\n"
        );
        assert_eq!(
            render_allowlist(&[]),
            "flush set inet mldefender allow4\nflush set inet mldefender allow6\n"
        );
    }

    #[test]
    fn the_table_renders_as_committed() {
        let allow: Vec<IpNet> =
            ["127.0.0.0/8", "::1/128", "10.0.0.1/32"].iter().map(|n| n.parse().unwrap()).collect();
        let expected = "\
table inet mldefender {}
delete table inet mldefender
table inet mldefender {
\tset allow4 { type ipv4_addr; flags interval; auto-merge; elements = { 127.0.0.0/8, 10.0.0.1/32 }; }
\tset block4 { type ipv4_addr; flags timeout; size 65536; }
\tset syn4 { type ipv4_addr . inet_service; flags timeout; size 65536; }
\tset guard4 { type ipv4_addr . inet_proto . inet_service; flags timeout; size 65536; }
\tset synaddr4 { type ipv4_addr; flags timeout; size 65536; }
\tset guardproto4 { type ipv4_addr . inet_proto; flags timeout; size 65536; }
\tset rate4 { type ipv4_addr . inet_proto . inet_service; flags dynamic,timeout; timeout 10s; size 65536; }
\tset rateproto4 { type ipv4_addr . inet_proto; flags dynamic,timeout; timeout 10s; size 65536; }
\tset allow6 { type ipv6_addr; flags interval; auto-merge; elements = { ::1/128 }; }
\tset block6 { type ipv6_addr; flags timeout; size 65536; }
\tset syn6 { type ipv6_addr . inet_service; flags timeout; size 65536; }
\tset guard6 { type ipv6_addr . inet_proto . inet_service; flags timeout; size 65536; }
\tset synaddr6 { type ipv6_addr; flags timeout; size 65536; }
\tset guardproto6 { type ipv6_addr . inet_proto; flags timeout; size 65536; }
\tset rate6 { type ipv6_addr . inet_proto . inet_service; flags dynamic,timeout; timeout 10s; size 65536; }
\tset rateproto6 { type ipv6_addr . inet_proto; flags dynamic,timeout; timeout 10s; size 65536; }
\tchain prerouting {
\t\ttype filter hook prerouting priority raw; policy accept;
\t\ttcp flags syn / fin,syn,rst,ack ip daddr . tcp dport @syn4 notrack
\t\ttcp flags syn / fin,syn,rst,ack ip daddr @synaddr4 notrack
\t\ttcp flags syn / fin,syn,rst,ack ip6 daddr . tcp dport @syn6 notrack
\t\ttcp flags syn / fin,syn,rst,ack ip6 daddr @synaddr6 notrack
\t}
\tchain input {
\t\ttype filter hook input priority filter - 10; policy accept;
\t\tip daddr . tcp dport @syn4 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tip daddr . tcp dport @syn4 ct state invalid counter drop
\t\tmeta l4proto tcp ip daddr @synaddr4 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tmeta l4proto tcp ip daddr @synaddr4 ct state invalid counter drop
\t\tip6 daddr . tcp dport @syn6 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tip6 daddr . tcp dport @syn6 ct state invalid counter drop
\t\tmeta l4proto tcp ip6 daddr @synaddr6 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tmeta l4proto tcp ip6 daddr @synaddr6 ct state invalid counter drop
\t\tip saddr @allow4 accept
\t\tip6 saddr @allow6 accept
\t\tip saddr @block4 counter drop
\t\tip6 saddr @block6 counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip daddr . meta l4proto . tcp dport @guard4 update @rate4 { ip daddr . meta l4proto . tcp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto udp ip daddr . meta l4proto . udp dport @guard4 update @rate4 { ip daddr . meta l4proto . udp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip daddr . meta l4proto @guardproto4 update @rateproto4 { ip daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto != tcp ip daddr . meta l4proto @guardproto4 update @rateproto4 { ip daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip6 daddr . meta l4proto . tcp dport @guard6 update @rate6 { ip6 daddr . meta l4proto . tcp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto udp ip6 daddr . meta l4proto . udp dport @guard6 update @rate6 { ip6 daddr . meta l4proto . udp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip6 daddr . meta l4proto @guardproto6 update @rateproto6 { ip6 daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto != tcp ip6 daddr . meta l4proto @guardproto6 update @rateproto6 { ip6 daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t}
\tchain forward {
\t\ttype filter hook forward priority filter - 10; policy accept;
\t\tip daddr . tcp dport @syn4 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tip daddr . tcp dport @syn4 ct state invalid counter drop
\t\tmeta l4proto tcp ip daddr @synaddr4 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tmeta l4proto tcp ip daddr @synaddr4 ct state invalid counter drop
\t\tip6 daddr . tcp dport @syn6 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tip6 daddr . tcp dport @syn6 ct state invalid counter drop
\t\tmeta l4proto tcp ip6 daddr @synaddr6 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
\t\tmeta l4proto tcp ip6 daddr @synaddr6 ct state invalid counter drop
\t\tip saddr @allow4 accept
\t\tip6 saddr @allow6 accept
\t\tip saddr @block4 counter drop
\t\tip daddr @block4 counter drop
\t\tip6 saddr @block6 counter drop
\t\tip6 daddr @block6 counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip daddr . meta l4proto . tcp dport @guard4 update @rate4 { ip daddr . meta l4proto . tcp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto udp ip daddr . meta l4proto . udp dport @guard4 update @rate4 { ip daddr . meta l4proto . udp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip daddr . meta l4proto @guardproto4 update @rateproto4 { ip daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto != tcp ip daddr . meta l4proto @guardproto4 update @rateproto4 { ip daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip6 daddr . meta l4proto . tcp dport @guard6 update @rate6 { ip6 daddr . meta l4proto . tcp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto udp ip6 daddr . meta l4proto . udp dport @guard6 update @rate6 { ip6 daddr . meta l4proto . udp dport limit rate over 1000/second burst 1000 packets } counter drop
\t\ttcp flags syn / fin,syn,rst,ack ip6 daddr . meta l4proto @guardproto6 update @rateproto6 { ip6 daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t\tmeta l4proto != tcp ip6 daddr . meta l4proto @guardproto6 update @rateproto6 { ip6 daddr . meta l4proto limit rate over 1000/second burst 1000 packets } counter drop
\t}
}
";
        assert_eq!(render_table(&allow, 65_536, 1000), expected);
        assert!(!render_table(&[], 8, 1).contains("elements"), "empty sets have no element list");
    }

    #[test]
    fn blocks_render_per_family_with_millisecond_timeouts() {
        let blocks = [
            ("203.0.113.5".parse().unwrap(), Duration::from_mins(10)),
            ("2001:db8::7".parse().unwrap(), Duration::from_millis(1500)),
            ("198.51.100.1".parse().unwrap(), Duration::ZERO),
        ];
        assert_eq!(
            render_blocks(&blocks),
            "add element inet mldefender block4 { 203.0.113.5 timeout 600000ms, 198.51.100.1 timeout 1ms }\n\
             add element inet mldefender block6 { 2001:db8::7 timeout 1500ms }\n"
        );
        assert_eq!(render_blocks(&[]), "");
        assert_eq!(render_remove(), "table inet mldefender {}\ndelete table inet mldefender\n");
    }
}
