//! `dns.dga` and `dns.tunnel`.
//!
//! - A DGA-infected host asks for many domains that do not exist: the distinct registered
//!   domains (public-suffix aware) it drew NXDOMAIN for are counted per host.
//! - A DNS tunnel has to move its data through names or records under one domain it
//!   controls: per registered domain, queries that carry data (a long or binary label, or a
//!   TXT/NULL/ANY/PRIVATE record) are counted, at most once per distinct name. Once a domain
//!   is over the threshold, every client asking for it is reported, and so is the external
//!   server answering for it (the address to block). Names outside the public DNS tree
//!   (`dnscat.<hex>`, an unlisted top-level domain) have no registered domain to share: they
//!   are counted per server they are sent to.
//!
//! Busy resolvers and CDN names do neither: their names exist, and CDN labels are short
//! hostnames asked for as A/AAAA records.
//!
//! A host that answers the queries of several clients is a resolver: the queries it forwards
//! are not held against it (its clients' own queries are seen and counted), so a tunnel or a
//! DGA behind the resolver reports the clients, never the resolver.

use std::net::IpAddr;

use mld_config::daemons::sniffer::DnsBehaviourConfig;

use super::state::{Bounded, Distinct, Tumbling, hash64};
use super::{Behaviour, Cx, Packet, Role, SEC, StateStats};
use crate::dns::{self, qtype};
use crate::fast::check;
use crate::host::ip_value;
use crate::packet::proto;

pub const DGA: &str = "dns.dga";
pub const TUNNEL: &str = "dns.tunnel";

/// The DNS port.
const DNS: u16 = 53;

#[derive(Debug, Default)]
struct Client {
    nxdomains: Distinct,
}

/// Recent data-carrying names remembered per domain, so that a name asked again (a retry,
/// a client re-resolving a long CDN name) is not counted twice.
const RECENT_NAMES: usize = 64;

#[derive(Debug, Default)]
struct Domain {
    data_queries: Tumbling,
    recent: Vec<u64>,
    next: usize,
}

impl Domain {
    /// Remembers `name`; whether it was new.
    fn remember(&mut self, name: u64) -> bool {
        if self.recent.contains(&name) {
            return false;
        }
        if self.recent.len() < RECENT_NAMES {
            self.recent.push(name);
        } else {
            self.recent[self.next] = name;
            self.next = (self.next + 1) % RECENT_NAMES;
        }
        true
    }
}

/// Clients a DNS server answered (at most a few, to know it is a resolver).
#[derive(Debug, Default)]
struct Server {
    clients: Vec<u64>,
}

#[derive(Debug)]
pub struct DnsAbuse {
    cfg: DnsBehaviourConfig,
    clients: Bounded<IpAddr, Client>,
    domains: Bounded<u64, Domain>,
    servers: Bounded<IpAddr, Server>,
}

impl DnsAbuse {
    pub fn new(cfg: &DnsBehaviourConfig, cap: usize) -> Self {
        Self {
            cfg: cfg.clone(),
            clients: Bounded::new(cap),
            domains: Bounded::new(cap),
            servers: Bounded::new(cap),
        }
    }

    fn is_resolver(&self, host: IpAddr) -> bool {
        self.servers
            .peek(&host)
            .is_some_and(|s| s.clients.len() >= self.cfg.resolver_min_clients as usize)
    }

    /// Whether a query carries data.
    fn data_shaped(&self, m: &dns::Message) -> bool {
        m.binary
            || m.longest_label >= self.cfg.data_label_chars as usize
            || matches!(m.qtype, Some(qtype::TXT | qtype::NULL | qtype::ANY | 65_280..=65_534))
    }

    fn on_query(&mut self, p: &Packet<'_>, m: &dns::Message, cx: &mut Cx<'_>) {
        let window = self.cfg.window_secs * SEC;
        let (client, server) = (p.rec.src, p.rec.dst);
        let (key, domain) = if dns::in_public_tree(&m.name) {
            let d = dns::registered_domain(&m.name);
            (hash64(d), d.to_owned())
        } else {
            (hash64(server), format!("names outside the public DNS tree sent to {server}"))
        };
        let data = self.data_shaped(m);
        let d = self.domains.entry(key, Domain::default);
        if data && d.remember(hash64(&m.name)) {
            d.data_queries.add(cx.now_ns, window, 1);
        }
        let n = d.data_queries.get(cx.now_ns, window);
        let thr = self.cfg.tunnel_queries;
        // Only a query that itself carries data makes its client (and server) part of it.
        if !data {
            return;
        }
        let forwarded = self.is_resolver(client);
        let external = !cx.is_internal(server) && super::unicast(server);
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        {
            if !forwarded {
                cx.measure(client, Role::Actor, n as f64, f64::from(thr));
            }
            if external {
                cx.measure(server, Role::Target, n as f64, f64::from(thr));
            }
        }
        if n < u64::from(thr) {
            return;
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let hit = |who: &str| {
            check(TUNNEL, n as f64, f64::from(thr), || {
                format!(
                    "{who}: {n} distinct queries carrying data (labels of {}+ characters or binary, TXT/NULL/ANY records) under {domain} within {} s, e.g. {:?} from {client} to {server} (threshold {thr})",
                    self.cfg.data_label_chars,
                    self.cfg.window_secs,
                    m.name.chars().take(80).collect::<String>()
                )
            })
        };
        if !forwarded {
            cx.report(client, Role::Actor, hit(&format!("{client} asked")));
        }
        if external {
            cx.report(server, Role::Target, hit(&format!("{server} answers for a tunnel")));
        }
    }

    fn on_response(&mut self, p: &Packet<'_>, m: &dns::Message, cx: &mut Cx<'_>) {
        let (server, client) = (p.rec.src, p.rec.dst);
        let min = self.cfg.resolver_min_clients as usize;
        let seen = self.servers.entry(server, Server::default);
        let value = ip_value(client);
        if seen.clients.len() < min && !seen.clients.contains(&value) {
            seen.clients.push(value);
        }
        if m.rcode != 3 || self.is_resolver(client) {
            return;
        }
        let window = self.cfg.window_secs * SEC;
        let domain = dns::registered_domain(&m.name);
        let st = self.clients.entry(client, Client::default);
        st.nxdomains.insert(hash64(domain), cx.now_ns, window);
        let n = st.nxdomains.count(cx.now_ns, window);
        let thr = self.cfg.nxdomain_domains;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        cx.measure(client, Role::Actor, n as f64, f64::from(thr));
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let hit = check(DGA, n as f64, f64::from(thr), || {
            format!(
                "{client} asked for {n} distinct registered domains that do not exist (NXDOMAIN) within {} s, e.g. {domain:?} (threshold {thr})",
                self.cfg.window_secs
            )
        });
        cx.report(client, Role::Actor, hit);
    }
}

impl Behaviour for DnsAbuse {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn on_packet(&mut self, p: &Packet<'_>, cx: &mut Cx<'_>) {
        let r = p.rec;
        if r.proto != proto::UDP || r.payload_head.is_empty() || p.service_port != DNS {
            return;
        }
        let cut = r.payload_head.len() < usize::from(r.payload_len);
        let Some(m) = dns::message(r.payload_head, cut) else { return };
        if m.response && !p.forward {
            self.on_response(p, &m, cx);
        } else if !m.response && p.forward {
            self.on_query(p, &m, cx);
        }
    }

    fn state(&self) -> StateStats {
        self.clients.stats().plus(self.domains.stats()).plus(self.servers.stats())
    }
}
