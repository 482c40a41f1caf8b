//! The append-only audit log (`<audit_dir>/audit.jsonl`, rotated at 64 MiB, 16 files kept):
//! one JSON line per block, protection of a service, expiry, allowlist or special-address skip,
//! monitor-only detection, cap hit, nftables failure and table removal. At start
//! the agent rebuilds its blocks and protections from it; `firewall-agent status` reads it, listing the decisions of a `dry_run`
//! agent apart (they are counted in `blocked_addresses` but never reach the kernel).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use mld_logfile::time::{timestamp, unix_ns};
use mld_logfile::{Framing, RotatingLog, Settings};
use serde::{Deserialize, Serialize};

use crate::policy::{Block, Protection, Service, Shield, State};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Block,
    Expire,
    SkipAllowlisted,
    SkipSpecial,
    /// An inside address on evidence a forger could have produced.
    SkipForgeable,
    /// A destination rule's server is inside (a resolver, a server of ours).
    SkipInsideDestination,
    /// A service protected (SYN proxy or rate limit) for a while.
    Protect,
    /// A protection ended.
    ProtectEnded,
    /// `response.max_protected_services` reached.
    ProtectCapped,
    MonitorOnly,
    RateCapped,
    SetFull,
    NftFailed,
    TableRemoved,
}

/// One audit line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unix ns.
    pub at_ns: u64,
    /// The same, readable (UTC).
    pub at: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpAddr>,
    /// When the block ends (Unix ns); blocks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offence: Option<u32>,
    /// The protected service's IP protocol and port (protections only; `addr` is its address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `synproxy` or `limit` (protections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shield: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detection_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Decided but not applied (`dry_run`).
    #[serde(default)]
    pub dry_run: bool,
}

impl Record {
    pub fn new(action: Action, at_ns: u64) -> Self {
        Self {
            at_ns,
            at: timestamp(at_ns),
            action,
            addr: None,
            until_ns: None,
            duration_secs: None,
            offence: None,
            proto: None,
            port: None,
            shield: None,
            detector: String::new(),
            detection_id: String::new(),
            reason: String::new(),
            dry_run: false,
        }
    }

    /// The record of a block or an expiry of `b`.
    pub fn of_block(action: Action, b: &Block, at_ns: u64) -> Self {
        Self {
            addr: Some(b.addr),
            until_ns: Some(b.until_ns),
            duration_secs: Some(b.duration.as_secs_f64()),
            offence: Some(b.offence),
            detector: b.detector.clone(),
            detection_id: b.detection_id.clone(),
            reason: b.reason.clone(),
            ..Self::new(action, at_ns)
        }
    }

    /// The record of a protection of `p` (with `shield`), its end or its failure.
    pub fn of_protection(action: Action, p: &Protection, shield: Shield, at_ns: u64) -> Self {
        Self {
            addr: Some(p.service.addr),
            until_ns: Some(p.until_ns),
            duration_secs: Some(p.duration.as_secs_f64()),
            proto: Some(p.service.proto),
            port: Some(p.service.port),
            shield: Some(shield.as_str().to_owned()),
            detector: "fast".to_owned(),
            detection_id: p.detection_id.clone(),
            reason: p.reason.clone(),
            ..Self::new(action, at_ns)
        }
    }

    fn protection(&self) -> Option<Protection> {
        Some(Protection {
            service: Service { addr: self.addr?, proto: self.proto?, port: self.port.unwrap_or(0) },
            until_ns: self.until_ns?,
            duration: Duration::from_secs_f64(self.duration_secs.unwrap_or(0.0).max(0.0)),
            detection_id: self.detection_id.clone(),
            reason: self.reason.clone(),
        })
    }

    fn block(&self) -> Option<Block> {
        Some(Block {
            addr: self.addr?,
            until_ns: self.until_ns?,
            duration: Duration::from_secs_f64(self.duration_secs.unwrap_or(0.0).max(0.0)),
            offence: self.offence.unwrap_or(1),
            detector: self.detector.clone(),
            detection_id: self.detection_id.clone(),
            reason: self.reason.clone(),
        })
    }
}

const SETTINGS: Settings = Settings {
    max_bytes: 64 * 1024 * 1024,
    max_age: Duration::from_hours(30 * 24),
    retain: 16,
    sync_every_line: false,
};

/// The audit log being written.
#[derive(Debug)]
pub struct AuditLog {
    log: RotatingLog,
    line: Vec<u8>,
}

impl AuditLog {
    /// Opens `dir/audit.jsonl` (creating `dir`).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            log: RotatingLog::open(dir, "audit", "jsonl", Framing::Lines, SETTINGS)?,
            line: Vec::new(),
        })
    }

    /// Appends `r` (buffered until [`flush`](Self::flush)).
    pub fn write(&mut self, r: &Record) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, r).map_err(std::io::Error::from)?;
        self.line.push(b'\n');
        self.log.append(&self.line, 1, SystemTime::now())
    }

    /// Writes and syncs.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.log.flush(SystemTime::now())
    }

    pub fn stats(&self) -> mld_logfile::Stats {
        self.log.stats()
    }
}

/// Every record in `dir`'s audit files, oldest first. Lines that do not parse are skipped and
/// counted (second value).
pub fn read_all(dir: &Path) -> std::io::Result<(Vec<Record>, usize)> {
    let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                // Rotated files: audit.<UTC time>.jsonl (written by this agent, lower case).
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("audit.")
                        && p.extension().is_some_and(|e| e == "jsonl")
                        && n != "audit.jsonl"
                })
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    files.sort();
    files.push(dir.join("audit.jsonl"));
    let (mut out, mut bad) = (Vec::new(), 0);
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", f.display()))),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Record>(line) {
                Ok(r) => out.push(r),
                Err(_) => bad += 1,
            }
        }
    }
    Ok((out, bad))
}

/// The agent's state as the audit records leave it at `now_ns`: blocks still in force and
/// offence counts. Dry-run blocks never reached the kernel and are not restored. A table
/// removed on exit lifts the blocks while the agent is down, not for good: those still within
/// their time are applied again at the next start.
pub fn replay(records: &[Record], now_ns: u64) -> State {
    let mut st = State::default();
    let mut open: std::collections::HashMap<IpAddr, Block> = std::collections::HashMap::new();
    let mut protected = std::collections::HashMap::new();
    for r in records {
        if r.proto.is_some() {
            // About a service, not an address.
            if let Some(p) = r.protection().filter(|_| !r.dry_run) {
                match r.action {
                    Action::Protect => {
                        protected.insert(p.service, p);
                    }
                    Action::ProtectEnded | Action::NftFailed => {
                        protected.remove(&p.service);
                    }
                    _ => {}
                }
            }
            continue;
        }
        match r.action {
            Action::Block if !r.dry_run => {
                if let Some(b) = r.block() {
                    open.insert(b.addr, b);
                }
            }
            Action::Expire | Action::NftFailed => {
                if let Some(a) = r.addr
                    && let Some(b) = open.remove(&a)
                    && r.action == Action::Expire
                {
                    // Ended: it still counts as an offence.
                    st.restore(b, now_ns);
                }
            }
            _ => {}
        }
    }
    for (_, b) in open {
        st.restore(b, now_ns);
    }
    for (_, p) in protected {
        st.restore_protection(p, now_ns);
    }
    st
}

/// The decisions of an agent in `dry_run` as the audit records leave them at `now_ns`: the
/// blocks it decided (and counts in `blocked_addresses`) that have not ended, which never
/// reached the kernel. `firewall-agent status` lists them beside the real blocks.
pub fn replay_dry_run(records: &[Record], now_ns: u64) -> State {
    let mut st = State::default();
    let mut open: std::collections::HashMap<IpAddr, Block> = std::collections::HashMap::new();
    for r in records.iter().filter(|r| r.dry_run && r.proto.is_none()) {
        match r.action {
            Action::Block => {
                if let Some(b) = r.block() {
                    open.insert(b.addr, b);
                }
            }
            Action::Expire => {
                if let Some(a) = r.addr {
                    open.remove(&a);
                }
            }
            _ => {}
        }
    }
    for (_, b) in open {
        st.restore(b, now_ns);
    }
    st
}

/// Now, as Unix ns.
pub fn now_ns() -> u64 {
    unix_ns(SystemTime::now())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn block(ip: &str, until_ns: u64, offence: u32) -> Block {
        Block {
            addr: ip.parse().unwrap(),
            until_ns,
            duration: Duration::from_mins(10),
            offence,
            detector: "ddos".into(),
            detection_id: "d1".into(),
            reason: "r".into(),
        }
    }

    #[test]
    fn replay_restores_blocks_in_force_and_offences() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        let recs = [
            Record::of_block(Action::Block, &block("203.0.113.1", 100 * S, 1), 10 * S),
            Record::of_block(Action::Block, &block("203.0.113.2", 20 * S, 1), 10 * S),
            Record::of_block(Action::Expire, &block("203.0.113.2", 20 * S, 1), 20 * S),
            Record::of_block(Action::Block, &block("203.0.113.3", 100 * S, 1), 10 * S),
            Record::of_block(Action::NftFailed, &block("203.0.113.3", 100 * S, 1), 10 * S),
            Record {
                dry_run: true,
                ..Record::of_block(Action::Block, &block("203.0.113.4", 100 * S, 1), 10 * S)
            },
            Record {
                addr: Some("10.0.0.1".parse().unwrap()),
                ..Record::new(Action::SkipAllowlisted, 11 * S)
            },
        ];
        for r in &recs {
            log.write(r).unwrap();
        }
        log.flush().unwrap();
        let (back, bad) = read_all(dir.path()).unwrap();
        assert_eq!((back.as_slice(), bad), (&recs[..], 0));
        let st = replay(&back, 50 * S);
        let active: Vec<String> = st.active().map(|b| b.addr.to_string()).collect();
        assert_eq!(active, ["203.0.113.1"]);
        // After everything ended, nothing is in force.
        assert!(replay(&back, 200 * S).is_empty());
        assert_eq!(read_all(&dir.path().join("missing")).unwrap().0.len(), 0);
    }

    #[test]
    fn dry_run_decisions_in_force_are_replayed_apart() {
        let dry = |action, ip, until| Record {
            dry_run: true,
            ..Record::of_block(action, &block(ip, until * S, 1), 10 * S)
        };
        let recs = [
            Record::of_block(Action::Block, &block("203.0.113.1", 100 * S, 1), 10 * S),
            dry(Action::Block, "198.51.100.1", 100),
            dry(Action::Block, "198.51.100.2", 20),
            dry(Action::Block, "198.51.100.3", 100),
            dry(Action::Expire, "198.51.100.3", 100),
        ];
        let addrs = |st: &State| {
            let mut a: Vec<String> = st.active().map(|b| b.addr.to_string()).collect();
            a.sort();
            a
        };
        assert_eq!(addrs(&replay_dry_run(&recs, 50 * S)), ["198.51.100.1"]);
        assert_eq!(addrs(&replay(&recs, 50 * S)), ["203.0.113.1"]);
        assert!(replay_dry_run(&recs, 200 * S).is_empty());
    }
}
