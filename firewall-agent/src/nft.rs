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

/// The table's family and name.
pub const TABLE: &str = "inet mldefender";

/// Chains hook in before the usual filter chains (priority `filter - 10`), so a block holds
/// whatever other tables accept.
const PRIORITY: &str = "filter - 10";

/// The whole table: allow sets (interval, auto-merged), block sets with per-element timeouts
/// and a size cap, and the same rules in the input and forward hooks: allowed sources accepted,
/// blocked sources counted and dropped. Replaces any table of that name in one transaction.
pub fn render_table(allowlist: &[IpNet], max_elements: u32) -> String {
    let fmt = |v4: bool| {
        let nets = nets(allowlist, v4);
        if nets.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", nets.join(", "))
        }
    };
    let mut s = String::new();
    // Creating then deleting makes the delete safe when the table does not exist yet.
    let _ = writeln!(s, "table {TABLE} {{}}");
    let _ = writeln!(s, "delete table {TABLE}");
    let _ = writeln!(s, "table {TABLE} {{");
    let _ =
        writeln!(s, "\tset allow4 {{ type ipv4_addr; flags interval; auto-merge;{} }}", fmt(true));
    let _ =
        writeln!(s, "\tset allow6 {{ type ipv6_addr; flags interval; auto-merge;{} }}", fmt(false));
    let _ = writeln!(s, "\tset block4 {{ type ipv4_addr; flags timeout; size {max_elements}; }}");
    let _ = writeln!(s, "\tset block6 {{ type ipv6_addr; flags timeout; size {max_elements}; }}");
    for (chain, hook) in [("input", "input"), ("forward", "forward")] {
        let _ = writeln!(s, "\tchain {chain} {{");
        let _ = writeln!(s, "\t\ttype filter hook {hook} priority {PRIORITY}; policy accept;");
        let _ = writeln!(s, "\t\tip saddr @allow4 accept");
        let _ = writeln!(s, "\t\tip6 saddr @allow6 accept");
        let _ = writeln!(s, "\t\tip saddr @block4 counter drop");
        let _ = writeln!(s, "\t\tip6 saddr @block6 counter drop");
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "}}");
    s
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

    /// The addresses in a block set, read back from the kernel (`nft -j list set`).
    pub fn list(&self, set: &str) -> Result<Vec<IpAddr>, NftError> {
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
        let mut addrs = Vec::new();
        for item in v["nftables"].as_array().into_iter().flatten() {
            for e in item["set"]["elem"].as_array().into_iter().flatten() {
                // Elements with a timeout are objects {"elem": {"val": "1.2.3.4", ...}}.
                let val = e.get("elem").map_or(e, |inner| &inner["val"]);
                if let Some(a) = val.as_str().and_then(|s| s.parse().ok()) {
                    addrs.push(a);
                }
            }
        }
        Ok(addrs)
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
\tset allow6 { type ipv6_addr; flags interval; auto-merge; elements = { ::1/128 }; }
\tset block4 { type ipv4_addr; flags timeout; size 65536; }
\tset block6 { type ipv6_addr; flags timeout; size 65536; }
\tchain input {
\t\ttype filter hook input priority filter - 10; policy accept;
\t\tip saddr @allow4 accept
\t\tip6 saddr @allow6 accept
\t\tip saddr @block4 counter drop
\t\tip6 saddr @block6 counter drop
\t}
\tchain forward {
\t\ttype filter hook forward priority filter - 10; policy accept;
\t\tip saddr @allow4 accept
\t\tip6 saddr @allow6 accept
\t\tip saddr @block4 counter drop
\t\tip6 saddr @block6 counter drop
\t}
}
";
        assert_eq!(render_table(&allow, 65_536), expected);
        assert!(!render_table(&[], 8).contains("elements"), "empty sets have no element list");
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
