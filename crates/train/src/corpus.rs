//! The real-tool corpus (`make corpus`, `scripts/corpus/`): its `LABELS.tsv`, which flows
//! of a capture are a row's attack, and the corpus's flows as training and cross-corpus
//! data.
//!
//! `LABELS.tsv` columns (tab-separated, header first): `path class tool params
//! attacker_hosts victim_hosts start end split`; hosts comma-separated addresses, last-octet
//! ranges (`10.66.0.10-14`) or networks (`198.18.10.0/26`), `*` any, `-` none; `start`/`end`
//! Unix seconds; `split` `train` or `test`. A labelled attack flow is one that involves an
//! attacker host of its row (any host when the row's attackers are `*`, as for spoofed
//! floods) and a victim host (any when `-`), and overlaps the row's time window.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mld_flow::vector::{self, LEN};
use mld_proto::FlowEvent;

use crate::labels::Family;

/// Which hosts of a row are attackers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// Any address (spoofed or random sources).
    Any,
    List(BTreeSet<IpAddr>),
}

impl Hosts {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "*" => Ok(Self::Any),
            "-" | "" => Ok(Self::List(BTreeSet::new())),
            s => {
                let mut set = BTreeSet::new();
                for h in s.split(',').map(str::trim) {
                    set.extend(Self::range(h).ok_or_else(|| format!("{h:?} is not an address"))?);
                }
                Ok(Self::List(set))
            }
        }
    }

    /// `a.b.c.d`, an IPv6 address, `a.b.c.d-e` (the last octet from d to e) or a network of
    /// at most 1024 addresses (`198.18.10.0/26`).
    fn range(text: &str) -> Option<Vec<IpAddr>> {
        if let Ok(ip) = text.parse() {
            return Some(vec![ip]);
        }
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            let hosts: Vec<IpAddr> = net.hosts().take(1025).collect();
            return (hosts.len() <= 1024).then_some(hosts);
        }
        let (first, last) = text.split_once('-')?;
        let first: std::net::Ipv4Addr = first.parse().ok()?;
        let last: u8 = last.parse().ok()?;
        let [net0, net1, net2, from] = first.octets();
        (from <= last).then(|| (from..=last).map(|o| IpAddr::from([net0, net1, net2, o])).collect())
    }

    pub fn has(&self, ip: Option<IpAddr>) -> bool {
        match self {
            Self::Any => true,
            Self::List(l) => ip.is_some_and(|ip| l.contains(&ip)),
        }
    }

    pub fn list(&self) -> Vec<IpAddr> {
        match self {
            Self::Any => Vec::new(),
            Self::List(l) => l.iter().copied().collect(),
        }
    }
}

/// One row of the corpus's `LABELS.tsv`.
#[derive(Debug, Clone)]
pub struct Row {
    pub path: PathBuf,
    pub class: String,
    pub tool: String,
    pub params: String,
    pub attackers: Hosts,
    pub victims: Hosts,
    pub start: f64,
    pub end: f64,
    pub test: bool,
}

impl Row {
    pub fn benign(&self) -> bool {
        self.class == "benign"
    }

    /// The hosts to find: the attackers, or the victims of a flood from any address.
    pub fn units(&self) -> Vec<IpAddr> {
        match (&self.attackers, &self.victims) {
            (Hosts::Any, v) => v.list(),
            (a, _) => a.list(),
        }
    }

    /// Whether a flow between `a` and `b` over `[first, last]` is this row's attack.
    pub fn matches(&self, a: Option<IpAddr>, b: Option<IpAddr>, first: f64, last: f64) -> bool {
        const SLACK: f64 = 1.0;
        let in_window = last >= self.start - SLACK && first <= self.end + SLACK;
        let victims_any = matches!(&self.victims, Hosts::List(l) if l.is_empty());
        let pair = |x, y| self.attackers.has(x) && (victims_any || self.victims.has(y));
        in_window && (pair(a, b) || pair(b, a))
    }

    /// The scenario's name in the report.
    pub fn scenario(&self) -> String {
        if self.params.is_empty() || self.params == "-" {
            self.tool.clone()
        } else {
            format!("{} {}", self.tool, self.params)
        }
    }
}

/// Reads `dir/LABELS.tsv`; errors name the line and the column.
pub fn labels(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let file = dir.join("LABELS.tsv");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else { bail!("{}: empty", file.display()) };
    let cols: Vec<&str> = header.split('\t').collect();
    let want = [
        "path",
        "class",
        "tool",
        "params",
        "attacker_hosts",
        "victim_hosts",
        "start",
        "end",
        "split",
    ];
    let at = |name: &str| cols.iter().position(|c| *c == name);
    let idx: Vec<usize> = want
        .iter()
        .map(|w| {
            at(w).with_context(|| format!("{}: no column {w:?} in the header", file.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut rows = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let where_ = || format!("{}:{}", file.display(), n + 1);
        let get = |k: usize| {
            f.get(idx[k]).copied().with_context(|| format!("{}: no {} column", where_(), want[k]))
        };
        let time = |k: usize| -> anyhow::Result<f64> {
            let v = get(k)?;
            v.parse()
                .map_err(|_| anyhow::anyhow!("{}: {} {v:?} is not a number", where_(), want[k]))
        };
        let hosts = |k: usize| -> anyhow::Result<Hosts> {
            Hosts::parse(get(k)?).map_err(|e| anyhow::anyhow!("{}: {}: {e}", where_(), want[k]))
        };
        let split = get(8)?;
        let test = match split {
            "test" => true,
            "train" => false,
            s => bail!("{}: split {s:?}: expected train or test", where_()),
        };
        rows.push(Row {
            path: dir.join(get(0)?),
            class: get(1)?.to_owned(),
            tool: get(2)?.to_owned(),
            params: get(3)?.to_owned(),
            attackers: hosts(4)?,
            victims: hosts(5)?,
            start: time(6)?,
            end: time(7)?,
            test,
        });
    }
    Ok(rows)
}

/// The training family of a corpus class (`None`: a class training does not know).
pub fn family(class: &str) -> Option<Family> {
    Some(match class {
        "benign" => Family::Benign,
        "scan" => Family::Scan,
        // Denial of service, loud or slow: the DDoS detector's.
        "flood" | "slowdos" => Family::Ddos,
        "bruteforce" => Family::Bruteforce,
        // An inside host talking to an outside controller, tunnel or drop.
        "dns" | "c2" | "exfil" => Family::Botnet,
        "webattack" => Family::Webattack,
        "lateral" => Family::Lateral,
        _ => return None,
    })
}

/// Flows kept per capture and label (stride-sampled in flow order): a flood makes one flow per
/// packet, and a few hundred of them teach what tens of thousands would.
pub const MAX_FLOWS_PER_LABEL: usize = 400;

/// One corpus flow as training and the model cards see it: its model input and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The row's `split` is `test`.
    pub test: bool,
    /// Index into [`Flows::classes`] of the row's class.
    pub class: u8,
    /// The flow is the row's attack (else benign: a benign row, or background traffic).
    pub attack: bool,
    pub x: [f32; LEN],
}

/// Which of the corpus's training-part flows training takes (ADR 0013).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Rows {
    /// None: the corpus only measures (the committed models). Each corpus capture is one
    /// tool against one server with no one else about, and forests trained on it learn that
    /// lab's topology (a server with one client) rather than the attacks: on the corpus's
    /// test part benign false positives rose tenfold.
    #[default]
    None,
    /// Only the benign captures' flows and the attack captures' background.
    Benign,
    /// Only the attack flows.
    Attacks,
    All,
}

impl Rows {
    pub fn takes(self, f: &Flow) -> bool {
        match self {
            Rows::None => false,
            Rows::Benign => !f.attack,
            Rows::Attacks => f.attack,
            Rows::All => true,
        }
    }
}

/// The corpus's flows, as the flow engine made them from its captures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flows {
    /// [`fingerprint`] of the engine and feature layout that made them.
    pub fingerprint: u64,
    pub classes: Vec<String>,
    pub flows: Vec<Flow>,
    /// Which training-part flows training takes (not stored in the file).
    pub rows: Rows,
}

impl Flows {
    pub fn class(&self, f: &Flow) -> &str {
        &self.classes[usize::from(f.class)]
    }

    /// The training family of `f`.
    pub fn family(&self, f: &Flow) -> Family {
        if f.attack { family(self.class(f)).unwrap_or(Family::Benign) } else { Family::Benign }
    }
}

/// Where the corpus's flows are kept, under the workspace root.
pub const FLOWS_FILE: &str = "crates/train/data/corpus-flows.lz4";

const MAGIC: &[u8; 8] = b"MLDCF001";

/// A hash of the feature names and of every shared-capture flow's model input: it changes
/// when the flow engine or the feature layout changes what a capture turns into, which makes
/// flows extracted before the change stale.
pub fn fingerprint(shared_flows: &[Vec<FlowEvent>]) -> u64 {
    let mut h = Fnv::default();
    for n in vector::NAMES {
        h.write(n.as_bytes());
        h.write(&[0]);
    }
    for ev in shared_flows.iter().flatten() {
        for v in vector::of_event(ev) {
            h.write(&v.to_bits().to_le_bytes());
        }
    }
    h.0
}

#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Runs every capture of the corpus `dir` through the flow engine (default sniffer config),
/// labels its finished flows by its row, and keeps at most [`MAX_FLOWS_PER_LABEL`] attack and
/// as many benign flows per capture.
pub fn extract(
    dir: &Path,
    fingerprint: u64,
    mut progress: impl FnMut(usize, usize, &str),
) -> anyhow::Result<Flows> {
    crate::reproducible()?;
    let rows = labels(dir)?;
    let mut out = Flows { fingerprint, ..Flows::default() };
    for (i, row) in rows.iter().enumerate() {
        progress(i, rows.len(), &row.path.display().to_string());
        if family(&row.class).is_none() {
            bail!("{}: class {:?} has no training family", row.path.display(), row.class);
        }
        let class = out.classes.iter().position(|c| *c == row.class).unwrap_or_else(|| {
            out.classes.push(row.class.clone());
            out.classes.len() - 1
        });
        let class = u8::try_from(class).context("more than 255 classes")?;
        let run =
            mld_flow::offline::run_file(&row.path, mld_flow::offline::default_config("train"))
                .with_context(|| format!("reading {}", row.path.display()))?;
        let mut flows: Vec<FlowEvent> = run.flows.into_iter().filter(|e| !e.snapshot).collect();
        crate::sort_flows(&mut flows);
        let (mut attack, mut benign) = (Vec::new(), Vec::new());
        for ev in &flows {
            let (a, b) = crate::endpoints(ev);
            #[allow(clippy::cast_precision_loss, reason = "Unix seconds")]
            let secs = |ns: u64| ns as f64 / 1e9;
            let is_attack = !row.benign() && row.matches(a, b, secs(ev.start_ns), secs(ev.end_ns));
            if is_attack { &mut attack } else { &mut benign }.push(vector::of_event(ev));
        }
        for (xs, is_attack) in [(attack, true), (benign, false)] {
            let stride = xs.len().div_ceil(MAX_FLOWS_PER_LABEL).max(1);
            out.flows.extend(xs.into_iter().step_by(stride).map(|x| Flow {
                test: row.test,
                class,
                attack: is_attack,
                x,
            }));
        }
    }
    Ok(out)
}

/// The binary form: magic, fingerprint, feature count, classes, flows; LZ4-compressed.
pub fn encode(f: &Flows) -> Vec<u8> {
    let mut raw = Vec::with_capacity(64 + f.flows.len() * (3 + 4 * LEN));
    raw.extend_from_slice(MAGIC);
    raw.extend_from_slice(&f.fingerprint.to_le_bytes());
    raw.extend_from_slice(&u32::try_from(LEN).unwrap_or(u32::MAX).to_le_bytes());
    raw.push(u8::try_from(f.classes.len()).unwrap_or(u8::MAX));
    for c in &f.classes {
        raw.push(u8::try_from(c.len()).unwrap_or(u8::MAX));
        raw.extend_from_slice(c.as_bytes());
    }
    raw.extend_from_slice(&u32::try_from(f.flows.len()).unwrap_or(u32::MAX).to_le_bytes());
    for fl in &f.flows {
        raw.extend_from_slice(&[u8::from(fl.test), fl.class, u8::from(fl.attack)]);
        for v in fl.x {
            raw.extend_from_slice(&v.to_le_bytes());
        }
    }
    lz4_flex::block::compress_prepend_size(&raw)
}

/// Reads [`encode`]'s form; errors say what is wrong.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Flows> {
    let raw = lz4_flex::block::decompress_size_prepended(bytes)
        .map_err(|e| anyhow::anyhow!("not LZ4 corpus flows: {e}"))?;
    let mut r = Reader { b: &raw, at: 0 };
    if r.take(8)? != MAGIC {
        bail!("not a corpus flows file (magic {MAGIC:?} expected)");
    }
    let fingerprint = u64::from_le_bytes(r.take(8)?.try_into()?);
    let len = u32::from_le_bytes(r.take(4)?.try_into()?) as usize;
    if len != LEN {
        bail!("flows of {len} features; the model input now has {LEN}");
    }
    let n_classes = r.take(1)?[0];
    let mut classes = Vec::new();
    for _ in 0..n_classes {
        let n = usize::from(r.take(1)?[0]);
        classes.push(String::from_utf8(r.take(n)?.to_vec())?);
    }
    let n = u32::from_le_bytes(r.take(4)?.try_into()?) as usize;
    let mut flows = Vec::with_capacity(n);
    for _ in 0..n {
        let h = r.take(3)?;
        let (test, class, attack) = (h[0] != 0, h[1], h[2] != 0);
        if usize::from(class) >= classes.len() {
            bail!("flow of class {class}: only {} classes", classes.len());
        }
        let mut x = [0f32; LEN];
        for v in &mut x {
            *v = f32::from_le_bytes(r.take(4)?.try_into()?);
        }
        flows.push(Flow { test, class, attack, x });
    }
    if r.at != raw.len() {
        bail!("{} bytes after the last flow", raw.len() - r.at);
    }
    Ok(Flows { fingerprint, classes, flows, rows: Rows::default() })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n).context("truncated corpus flows file")?;
        self.at += n;
        Ok(s)
    }
}

/// Reads the committed corpus flows under `root` and checks they were made by this engine.
pub fn load(root: &Path, fingerprint: u64) -> anyhow::Result<Flows> {
    let path = root.join(FLOWS_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let flows = decode(&bytes).with_context(|| format!("{}", path.display()))?;
    if flows.fingerprint != fingerprint {
        bail!(
            "{} was extracted by a flow engine or feature layout that turns the shared captures into other inputs than this one does (fingerprint {:016x}, now {fingerprint:016x}): re-extract it from a corpus with `make corpus-flows CORPUS=DIR` (`make corpus` builds one)",
            path.display(),
            flows.fingerprint
        );
    }
    Ok(flows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(attackers: &str, victims: &str) -> Row {
        Row {
            path: PathBuf::from("x.pcap"),
            class: "scan".into(),
            tool: "nmap".into(),
            params: "-sS -T4".into(),
            attackers: Hosts::parse(attackers).unwrap(),
            victims: Hosts::parse(victims).unwrap(),
            start: 100.0,
            end: 200.0,
            test: true,
        }
    }

    #[allow(clippy::unnecessary_wraps, reason = "flows carry optional addresses")]
    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_flow_is_an_attack_flow_only_between_its_hosts_inside_its_window() {
        let r = row("10.0.0.1", "10.0.0.2,10.0.0.3");
        assert!(r.matches(ip("10.0.0.1"), ip("10.0.0.2"), 150.0, 160.0));
        assert!(r.matches(ip("10.0.0.3"), ip("10.0.0.1"), 150.0, 160.0), "either direction");
        assert!(!r.matches(ip("10.0.0.1"), ip("10.0.0.9"), 150.0, 160.0), "not a victim");
        assert!(!r.matches(ip("10.0.0.1"), ip("10.0.0.2"), 300.0, 310.0), "after the window");
        assert!(r.matches(ip("10.0.0.1"), ip("10.0.0.2"), 50.0, 100.5), "overlaps its start");
        let spoofed = row("*", "10.0.0.2");
        assert!(spoofed.matches(ip("1.2.3.4"), ip("10.0.0.2"), 150.0, 150.0));
        assert_eq!(spoofed.units(), vec![ip("10.0.0.2").unwrap()], "the victim is the unit");
        let range = row("10.0.0.1", "10.0.1.10-12,10.0.0.2");
        assert!(range.matches(ip("10.0.0.1"), ip("10.0.1.11"), 150.0, 150.0));
        assert!(!range.matches(ip("10.0.0.1"), ip("10.0.1.13"), 150.0, 150.0));
        assert!(Hosts::parse("10.0.1.12-10").is_err());
        let net = row("198.18.10.0/30", "10.0.0.2");
        assert!(net.matches(ip("198.18.10.2"), ip("10.0.0.2"), 150.0, 150.0));
        assert_eq!(net.units().len(), 2, "the hosts of a /30");
        assert!(Hosts::parse("10.0.0.0/8").is_err(), "too many to list");
        let anyone = row("10.0.0.1", "-");
        assert!(anyone.matches(ip("10.0.0.1"), ip("192.0.2.1"), 150.0, 150.0));
    }

    #[test]
    fn flows_survive_encoding_and_bad_files_are_named() {
        let mut x = [0f32; LEN];
        x[3] = 1.5;
        x[LEN - 1] = -2.0;
        let f = Flows {
            fingerprint: 0xdead_beef,
            classes: vec!["scan".into(), "benign".into()],
            flows: vec![
                Flow { test: false, class: 0, attack: true, x },
                Flow { test: true, class: 1, attack: false, x: [0.0; LEN] },
            ],
            rows: Rows::None,
        };
        let bytes = encode(&f);
        assert_eq!(decode(&bytes).unwrap(), f);
        assert_eq!(f.family(&f.flows[0]), Family::Scan);
        assert_eq!(f.family(&f.flows[1]), Family::Benign);
        let e = decode(&bytes[..bytes.len() - 3]).unwrap_err().to_string();
        assert!(e.contains("LZ4") || e.contains("truncated"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("crates/train/data")).unwrap();
        std::fs::write(dir.path().join(FLOWS_FILE), &bytes).unwrap();
        assert_eq!(load(dir.path(), 0xdead_beef).unwrap(), f);
        let e = load(dir.path(), 7).unwrap_err().to_string();
        assert!(e.contains("make corpus-flows") && e.contains("00000000deadbeef"), "{e}");
    }

    #[test]
    fn every_corpus_class_trains_a_family() {
        for c in [
            "benign",
            "scan",
            "flood",
            "slowdos",
            "bruteforce",
            "dns",
            "c2",
            "exfil",
            "webattack",
            "lateral",
        ] {
            assert!(family(c).is_some(), "{c}");
        }
        assert_eq!(family("flood").and_then(Family::detector), Some(crate::labels::Detector::Ddos));
        assert_eq!(family("phishing"), None);
    }

    #[test]
    fn labels_are_read_and_bad_rows_named() {
        let dir = tempfile::tempdir().unwrap();
        let header = "path\tclass\ttool\tparams\tattacker_hosts\tvictim_hosts\tstart\tend\tsplit\n";
        std::fs::write(
            dir.path().join("LABELS.tsv"),
            format!("{header}pcap/a.pcap\tscan\tnmap\t-sS\t10.0.0.1\t-\t1.5\t2\ttest\n"),
        )
        .unwrap();
        let rows = labels(dir.path()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].start, rows[0].end, rows[0].test), (1.5, 2.0, true));
        assert_eq!(rows[0].scenario(), "nmap -sS");
        std::fs::write(
            dir.path().join("LABELS.tsv"),
            format!("{header}pcap/a.pcap\tscan\tnmap\t-sS\t10.0.0.x\t-\t1\t2\ttest\n"),
        )
        .unwrap();
        let e = labels(dir.path()).unwrap_err().to_string();
        assert!(e.contains("LABELS.tsv:2: attacker_hosts: \"10.0.0.x\" is not an address"), "{e}");
    }
}
