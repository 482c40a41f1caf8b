//! `smb.*` and `dcerpc.*`: lateral movement over SMB and DCE-RPC, from the client's requests
//! ([`crate::smb`]).
//!
//! | rule | what | score |
//! |---|---|---|
//! | `smb.admin_logon` | an NTLM network logon with an administrator account | 0.6 |
//! | `smb.admin_share` | a tree connect to an administrative share (`ADMIN$`, `C$`, ...) | 0.7 |
//! | `smb.hidden_admin_session` | an administrator's session that turns to SMB3 encryption: its shares, pipes and calls can no longer be seen | 0.8 |
//! | `smb.exec_pipe` / `dcerpc.exec_iface` | the service control manager or task scheduler opened (`svcctl`, `atsvc`, `ITaskSchedulerService`) or remote activation / WMI bound | 0.8 |
//! | `smb.file_drop` | an executable or script created on an administrative share | 0.9 |
//! | `dcerpc.remote_exec` | `CreateService` or a scheduled task registered remotely | 1.0 |
//! | `smb.ms17_010` | SMB1 Trans2 `SESSION_SETUP` (`EternalBlue`, `DoublePulsar`) | 1.0 |
//! | `smb.netlogon` | Netlogon authentication calls from one host over a minute (Zerologon) | by count |
//! | `smb.admin_spread` | one host logging on as an administrator to, or asking for the administrative shares of, several servers | by count |
//!
//! All of it takes a completed handshake and a session the client drives, so a forged
//! address cannot produce it.

use std::net::IpAddr;

use mld_config::daemons::sniffer::{BEHAVIOUR_HEAD_PORTS, SmbConfig};

use super::state::{Bounded, Tumbling};
use super::{Behaviour, Cx, Packet, Role, SEC, StateStats};
use crate::fast::{Hit, check};
use crate::packet::proto;
use crate::smb::{self, Iface, Request};

pub const ADMIN_LOGON: &str = "smb.admin_logon";
pub const ADMIN_SHARE: &str = "smb.admin_share";
pub const HIDDEN: &str = "smb.hidden_admin_session";
pub const EXEC_PIPE: &str = "smb.exec_pipe";
pub const EXEC_IFACE: &str = "dcerpc.exec_iface";
pub const FILE_DROP: &str = "smb.file_drop";
pub const REMOTE_EXEC: &str = "dcerpc.remote_exec";
pub const MS17_010: &str = "smb.ms17_010";
pub const NETLOGON: &str = "smb.netlogon";
pub const SPREAD: &str = "smb.admin_spread";

/// Servers remembered per client for the spread.
const MAX_SPREAD: usize = 1_024;

#[derive(Debug, Default)]
struct Spread {
    since_ns: u64,
    servers: Vec<IpAddr>,
}

/// A hit with a fixed score (threshold 1, value placed so that [`Hit::score`] gives `score`).
fn fixed(rule: &'static str, score: f64, reason: String) -> Hit {
    Hit {
        rule,
        value: 1.0 + (score - 0.6) / 0.4,
        threshold: 1.0,
        reason,
        target: false,
        service: None,
    }
}

/// What one SMB or DCE-RPC connection did so far.
#[derive(Debug, Default)]
struct Conn {
    admin: Option<String>,
    admin_share: Option<String>,
    iface: Option<Iface>,
    hidden_reported: bool,
}

#[derive(Debug)]
pub struct Lateral {
    cfg: SmbConfig,
    conns: Bounded<(IpAddr, IpAddr, u16), Conn>,
    netlogon: Bounded<IpAddr, Tumbling>,
    spread: Bounded<IpAddr, Spread>,
}

impl Lateral {
    pub fn new(cfg: &SmbConfig, cap: usize) -> Self {
        Self {
            cfg: cfg.clone(),
            conns: Bounded::new(cap),
            netlogon: Bounded::new(cap),
            spread: Bounded::new(cap),
        }
    }

    /// `client` used administrative rights or shares on `server`: the spread so far.
    fn spread(&mut self, client: IpAddr, server: IpAddr, now_ns: u64, what: &str) -> Option<Hit> {
        let window = self.cfg.spread_window_secs * SEC;
        let s = self.spread.entry(client, Spread::default);
        if now_ns.saturating_sub(s.since_ns) > window {
            *s = Spread { since_ns: now_ns, servers: Vec::new() };
        }
        if !s.servers.contains(&server) && s.servers.len() < MAX_SPREAD {
            s.servers.push(server);
        }
        let n = s.servers.len();
        let thr = self.cfg.spread_servers;
        #[allow(clippy::cast_precision_loss, reason = "counts")]
        check(SPREAD, n as f64, f64::from(thr), || {
            format!(
                "{client} used administrator logons or administrative shares on {n} servers within {} s ({what} on {server}; threshold {thr})",
                self.cfg.spread_window_secs
            )
        })
    }
}

const EXECUTABLE: [&str; 7] = [".exe", ".dll", ".bat", ".ps1", ".vbs", ".cmd", ".sys"];

impl Behaviour for Lateral {
    fn name(&self) -> &'static str {
        "smb"
    }

    fn head_ports(&self) -> Vec<u16> {
        BEHAVIOUR_HEAD_PORTS.to_vec()
    }

    #[allow(clippy::too_many_lines, reason = "one arm per request kind")]
    fn on_packet(&mut self, p: &Packet<'_>, cx: &mut Cx<'_>) {
        let r = p.rec;
        if !p.forward || r.proto != proto::TCP || r.payload_head.is_empty() {
            return;
        }
        let req = match p.service_port {
            445 | 139 => smb::request(r.payload_head),
            135 => smb::dcerpc(r.payload_head),
            _ => return,
        };
        let Some(req) = req else { return };
        let (client, server, port) = (p.initiator, p.responder, p.service_port);
        let conn = self.conns.entry((client, server, r.src_port), Conn::default);
        let at = format!("{client} -> {server}:{port}");
        let hit = match req {
            Request::Logon { domain, user } => {
                if !self.cfg.admin_accounts.iter().any(|a| a.eq_ignore_ascii_case(&user)) {
                    return;
                }
                let account = if domain.is_empty() { user } else { format!("{domain}\\{user}") };
                let h = fixed(
                    ADMIN_LOGON,
                    0.6,
                    format!("{at}: NTLM network logon as administrator account {account:?}"),
                );
                conn.admin = Some(account);
                let spread = self.spread(client, server, cx.now_ns, "administrator logon");
                cx.report(client, Role::Actor, spread);
                h
            }
            Request::Encrypted => {
                let Some(account) = conn.admin.as_ref().filter(|_| !conn.hidden_reported) else {
                    return;
                };
                conn.hidden_reported = true;
                fixed(
                    HIDDEN,
                    0.8,
                    format!(
                        "{at}: administrator {account:?} logged on and the session went SMB3-encrypted: its shares, pipes and calls are hidden"
                    ),
                )
            }
            Request::TreeConnect { share } => {
                if !share.ends_with('$') || share == "ipc$" {
                    return;
                }
                let h = fixed(
                    ADMIN_SHARE,
                    0.7,
                    format!("{at}: tree connect to administrative share {share}"),
                );
                conn.admin_share = Some(share);
                let spread = self.spread(client, server, cx.now_ns, "administrative share");
                cx.report(client, Role::Actor, spread);
                h
            }
            Request::Create { name } => {
                let pipe = name.trim_start_matches('\\');
                if matches!(pipe, "svcctl" | "atsvc") {
                    fixed(
                        EXEC_PIPE,
                        0.8,
                        format!("{at}: opened named pipe {pipe} (remote service / task control)"),
                    )
                } else if let Some(share) = &conn.admin_share
                    && EXECUTABLE.iter().any(|e| name.ends_with(e))
                {
                    fixed(
                        FILE_DROP,
                        0.9,
                        format!("{at}: created {name:?} on administrative share {share}"),
                    )
                } else {
                    return;
                }
            }
            Request::Bind { iface } => {
                conn.iface = Some(iface);
                match iface {
                    Iface::Svcctl
                    | Iface::Atsvc
                    | Iface::TaskScheduler
                    | Iface::RemoteActivation
                    | Iface::Wmi => fixed(
                        EXEC_IFACE,
                        0.8,
                        format!(
                            "{at}: DCE-RPC bind to {} (remote execution interface)",
                            iface.name()
                        ),
                    ),
                    _ => return,
                }
            }
            Request::Call { opnum } => match (conn.iface, opnum) {
                (Some(Iface::Svcctl), 12 | 24) => fixed(
                    REMOTE_EXEC,
                    1.0,
                    format!(
                        "{at}: svcctl CreateService (opnum {opnum}): a service created remotely"
                    ),
                ),
                (Some(Iface::Atsvc), 0) | (Some(Iface::TaskScheduler), 1) => fixed(
                    REMOTE_EXEC,
                    1.0,
                    format!("{at}: a scheduled task registered remotely (opnum {opnum})"),
                ),
                (Some(Iface::Netlogon), 4 | 26) => {
                    let n =
                        self.netlogon.entry(client, Tumbling::default).add(cx.now_ns, 60 * SEC, 1);
                    let thr = self.cfg.netlogon_auths;
                    #[allow(clippy::cast_precision_loss, reason = "counts")]
                    let Some(h) = check(NETLOGON, n as f64, f64::from(thr), || {
                        format!(
                            "{at}: {n} Netlogon challenge/authenticate calls within 60 s (threshold {thr})"
                        )
                    }) else {
                        return;
                    };
                    h
                }
                _ => return,
            },
            Request::Trans2SessionSetup => fixed(
                MS17_010,
                1.0,
                format!(
                    "{at}: SMB1 Trans2 SESSION_SETUP, the request of the MS17-010 exploits and the DoublePulsar implant"
                ),
            ),
        };
        cx.report(client, Role::Actor, Some(hit));
    }

    fn state(&self) -> StateStats {
        self.conns.stats().plus(self.netlogon.stats()).plus(self.spread.stats())
    }
}
