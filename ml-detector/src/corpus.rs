//! `ml-detector evaluate --corpus DIR`: the cross-corpus measurement. The forests and rules
//! are trained and tuned on `../shared/data` (+ synthetic flows); the corpus is traffic of real
//! tools run fresh in network namespaces (`make corpus`, `scripts/corpus/`), which nothing was
//! tuned on (training can take its training part, `mld-train --corpus-rows`; the committed
//! models do not, ADR 0013). The report is per class and per tool/parameterisation (scenario).
//!
//! Scoring never reads the labels: every capture is turned into flow events and scored first
//! (thresholds fixed by the config or the flags); only then are the events joined with the
//! label rows. A labelled attack flow is one that involves an attacker host of its row (any
//! host when the row's attackers are `*`, as for spoofed floods: then the victims are the
//! hosts to find) and a victim host (any when `-`), and overlaps the row's time window.
//! Flows of benign rows are the negatives; flows of attack captures that match no label
//! (background traffic) are negatives too and are counted apart.
//!
//! `LABELS.tsv` columns (tab-separated, header first): `path class tool params
//! attacker_hosts victim_hosts start end split`; hosts comma-separated addresses, last-octet
//! ranges (`10.66.0.10-14`) or networks (`198.18.10.0/26`), `*` any, `-` none; `start`/`end`
//! Unix seconds; `split` `train` or `test`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use anyhow::bail;
use mld_proto::Verdict;

pub use mld_train::corpus::{Hosts, Row, labels};

use crate::offline::{ClassResult, fmt, read_capture};
use crate::scoring::{Policy, score};

/// A scored flow event, as the evaluation sees it (no label).
#[derive(Debug, Clone)]
struct Scored {
    a: Option<IpAddr>,
    b: Option<IpAddr>,
    /// The flow's initiator (the address a block would name).
    initiator: Option<IpAddr>,
    first: f64,
    last: f64,
    exported: f64,
    final_score: f64,
    verdict: Verdict,
    snapshot: bool,
}

#[allow(clippy::cast_precision_loss, reason = "Unix seconds")]
fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn scored_flows(path: &Path, p: &Policy) -> anyhow::Result<Vec<Scored>> {
    let run = read_capture(path, "evaluate")?;
    Ok(run
        .flows
        .iter()
        .zip(&run.exported_ns)
        .map(|(ev, &exported)| {
            let j = mld_flow::json::flow_event(ev);
            let (s, _) = score(ev, p);
            Scored {
                a: j.src_ip,
                b: j.dst_ip,
                // The JSON form names the initiator's endpoint `src`.
                initiator: j.src_ip,
                first: secs(ev.start_ns),
                last: secs(ev.end_ns),
                exported: secs(exported),
                final_score: s.final_score,
                verdict: s.verdict,
                snapshot: ev.snapshot,
            }
        })
        .collect())
}

/// One line of the report: a scenario or a whole class.
#[derive(Debug, Default, Clone)]
pub struct Line {
    pub flows: ClassResult,
    /// Hosts to find, and how many reached MALICIOUS / SUSPICIOUS or worse.
    pub units: usize,
    pub malicious: usize,
    pub suspicious: usize,
    /// Seconds from the row's start to the first MALICIOUS flow event of each host found.
    pub to_malicious: Vec<f64>,
    pub scenarios: usize,
}

impl Line {
    fn add(&mut self, o: &Line) {
        self.flows.merge(&o.flows);
        self.units += o.units;
        self.malicious += o.malicious;
        self.suspicious += o.suspicious;
        self.to_malicious.extend(o.to_malicious.iter().copied());
        self.scenarios += o.scenarios;
    }

    pub fn median_to_malicious(&self) -> Option<f64> {
        let mut v = self.to_malicious.clone();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| {
            let m = v.len() / 2;
            if v.len() % 2 == 1 { v[m] } else { f64::midpoint(v[m - 1], v[m]) }
        })
    }
}

/// The benign side.
#[derive(Debug, Default, Clone)]
pub struct Benign {
    pub scenarios: usize,
    pub flows: u64,
    pub flagged: u64,
    pub malicious: u64,
    /// Initiators of benign flows that reached MALICIOUS: the hosts a firewall would block.
    pub blocked_hosts: BTreeSet<IpAddr>,
    /// Flows of attack captures that match no label row.
    pub background_flows: u64,
    pub background_flagged: u64,
    /// Per benign scenario: (flows, flagged, MALICIOUS).
    pub by_scenario: BTreeMap<String, (u64, u64, u64)>,
}

/// The cross-corpus report.
#[derive(Debug, Default)]
pub struct Report {
    /// class -> scenario -> line.
    pub scenarios: BTreeMap<String, BTreeMap<String, Line>>,
    pub classes: BTreeMap<String, Line>,
    pub benign: Benign,
    pub files: usize,
    pub test_only: bool,
}

/// Scores every capture of the corpus (the test part unless `all`), then joins the labels.
pub fn evaluate(
    dir: &Path,
    p: &Policy,
    all: bool,
    mut progress: impl FnMut(usize, usize, &Path),
) -> anyhow::Result<Report> {
    let rows: Vec<Row> = labels(dir)?.into_iter().filter(|r| all || r.test).collect();
    let mut files: Vec<&Path> = rows.iter().map(|r| r.path.as_path()).collect();
    files.sort_unstable();
    files.dedup();
    if files.is_empty() {
        bail!("{}: no {}rows in LABELS.tsv", dir.display(), if all { "" } else { "test " });
    }
    // Scoring first, labels never looked at here.
    let mut scored = BTreeMap::new();
    for (k, f) in files.iter().enumerate() {
        progress(k, files.len(), f);
        scored.insert(*f, scored_flows(f, p)?);
    }
    let mut report = Report { test_only: !all, files: files.len(), ..Report::default() };
    let mut benign_pool = Vec::new();
    for (file, flows) in &scored {
        let here: Vec<&Row> = rows.iter().filter(|r| r.path == *file).collect();
        for f in flows.iter().filter(|f| !f.snapshot) {
            let attack = here.iter().any(|r| !r.benign() && r.matches(f.a, f.b, f.first, f.last));
            if attack {
                continue;
            }
            let flagged = f.verdict != Verdict::Benign;
            if let Some(row) = here.iter().find(|r| r.benign()) {
                let e = report.benign.by_scenario.entry(row.scenario()).or_default();
                e.0 += 1;
                e.1 += u64::from(flagged);
                e.2 += u64::from(f.verdict == Verdict::Malicious);
                report.benign.flows += 1;
                report.benign.flagged += u64::from(flagged);
                benign_pool.push((f.final_score, false));
                if f.verdict == Verdict::Malicious {
                    report.benign.malicious += 1;
                    report.benign.blocked_hosts.extend(f.initiator);
                }
            } else {
                report.benign.background_flows += 1;
                report.benign.background_flagged += u64::from(flagged);
            }
        }
        // Snapshots of benign flows can block too.
        if here.iter().any(|r| r.benign()) {
            for f in flows.iter().filter(|f| f.snapshot && f.verdict == Verdict::Malicious) {
                let attack =
                    here.iter().any(|r| !r.benign() && r.matches(f.a, f.b, f.first, f.last));
                if !attack {
                    report.benign.blocked_hosts.extend(f.initiator);
                }
            }
        }
    }
    report.benign.scenarios = rows.iter().filter(|r| r.benign()).count();
    for r in rows.iter().filter(|r| !r.benign()) {
        let line = attack_line(r, &scored[r.path.as_path()]);
        report.classes.entry(r.class.clone()).or_default().add(&line);
        report
            .scenarios
            .entry(r.class.clone())
            .or_default()
            .entry(r.scenario())
            .or_default()
            .add(&line);
    }
    // Benign flows are every line's negatives.
    let (fp, tn) = (report.benign.flagged, report.benign.flows - report.benign.flagged);
    let lines = report
        .classes
        .values_mut()
        .chain(report.scenarios.values_mut().flat_map(|s| s.values_mut()));
    for l in lines {
        l.flows.fp += fp;
        l.flows.tn += tn;
        l.flows.ranked.extend(benign_pool.iter().copied());
    }
    Ok(report)
}

/// What `classes` (each host of them at MALICIOUS) and the benign side (no host blocked) fall
/// short of in `r`, in words; empty when all is met.
pub fn unmet(r: &Report, classes: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for c in classes {
        match r.classes.get(c) {
            None => out.push(format!("class {c:?} has no attack rows")),
            Some(l) if l.malicious < l.units => {
                out.push(format!("{c}: {} of {} hosts reached MALICIOUS", l.malicious, l.units));
            }
            Some(_) => {}
        }
    }
    if !r.benign.blocked_hosts.is_empty() {
        let hosts: Vec<String> = r.benign.blocked_hosts.iter().map(ToString::to_string).collect();
        out.push(format!("benign hosts that would have been blocked: {}", hosts.join(", ")));
    }
    out
}

/// One attack row's line: its labelled flows, and its hosts found at each verdict and when.
fn attack_line(r: &Row, flows: &[Scored]) -> Line {
    let mut line = Line { scenarios: 1, ..Line::default() };
    for f in flows.iter().filter(|f| !f.snapshot && r.matches(f.a, f.b, f.first, f.last)) {
        if f.verdict == Verdict::Benign {
            line.flows.fn_ += 1;
        } else {
            line.flows.tp += 1;
        }
        line.flows.ranked.push((f.final_score, true));
    }
    let seen: BTreeSet<IpAddr> = flows.iter().flat_map(|f| [f.a, f.b]).flatten().collect();
    // A listed host that sent nothing cannot be found (a network listed whole for a flood
    // from some of its addresses): only hosts the capture holds count.
    for h in r.units().into_iter().filter(|h| seen.contains(h)) {
        line.units += 1;
        let mine = |f: &&Scored| {
            (f.a == Some(h) || f.b == Some(h)) && r.matches(f.a, f.b, f.first, f.last)
        };
        let first_malicious = flows
            .iter()
            .filter(mine)
            .filter(|f| f.verdict == Verdict::Malicious)
            .map(|f| f.exported)
            .min_by(f64::total_cmp);
        line.suspicious +=
            usize::from(flows.iter().filter(mine).any(|f| f.verdict != Verdict::Benign));
        if let Some(t) = first_malicious {
            line.malicious += 1;
            line.to_malicious.push((t - r.start).max(0.0));
        }
    }
    line
}

#[allow(clippy::cast_precision_loss, reason = "ratios")]
fn share(a: usize, b: usize) -> String {
    if b == 0 { "n/a".to_owned() } else { format!("{:.2} ({a}/{b})", a as f64 / b as f64) }
}

/// The report as markdown.
#[allow(clippy::cast_precision_loss, reason = "percentages")]
pub fn render(r: &Report, p: &Policy, corpus: &Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Cross-corpus evaluation: forests and rules trained and tuned on `../shared/data` + synthetic flows (not on the corpus: ADR 0013), tested on {} capture(s) of the real-tool corpus `{}` ({}). Verdict thresholds fixed before scoring: SUSPICIOUS at {}, MALICIOUS at {} (final score = max(fast, ML)); the forests' cuts are those of their model cards.\n",
        r.files,
        corpus.display(),
        if r.test_only { "its test part only" } else { "train and test parts" },
        p.thresholds.suspicious,
        p.thresholds.malicious
    );
    let _ = writeln!(
        s,
        "| class | scenario | hosts | host recall MALICIOUS | host recall SUSPICIOUS+ | median s to MALICIOUS | attack flows | flow precision | flow recall | F1 | PR-AUC |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    let row = |s: &mut String, class: &str, name: &str, l: &Line| {
        let _ = writeln!(
            s,
            "| {class} | {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.units,
            share(l.malicious, l.units),
            share(l.suspicious, l.units),
            l.median_to_malicious().map_or_else(|| "never".to_owned(), |t| format!("{t:.1}")),
            l.flows.tp + l.flows.fn_,
            fmt(l.flows.precision()),
            fmt(l.flows.recall()),
            fmt(l.flows.f1()),
            fmt(l.flows.pr_auc())
        );
    };
    for (class, scenarios) in &r.scenarios {
        for (name, l) in scenarios {
            row(&mut s, class, name, l);
        }
        row(
            &mut s,
            class,
            &format!("**all {} scenario(s)**", r.classes[class].scenarios),
            &r.classes[class],
        );
    }
    let b = &r.benign;
    let rate = if b.flows == 0 {
        "n/a".to_owned()
    } else {
        format!("{:.3} %", b.flagged as f64 * 100.0 / b.flows as f64)
    };
    let hosts: Vec<String> = b.blocked_hosts.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        s,
        "\nBenign: {} scenario(s), {} flows, {} flagged SUSPICIOUS or worse (false-positive rate {rate}), {} MALICIOUS; benign hosts that would have been blocked: {}{}.",
        b.scenarios,
        b.flows,
        b.flagged,
        b.malicious,
        b.blocked_hosts.len(),
        if hosts.is_empty() { String::new() } else { format!(" ({})", hosts.join(", ")) }
    );
    if !b.by_scenario.is_empty() {
        let _ = writeln!(s, "\n| benign scenario | flows | flagged SUSPICIOUS+ | MALICIOUS |");
        let _ = writeln!(s, "|---|---|---|---|");
        for (name, (n, flagged, malicious)) in &b.by_scenario {
            let _ = writeln!(s, "| {name} | {n} | {flagged} | {malicious} |");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "Background flows in attack captures that match no label: {} ({} flagged).",
        b.background_flows, b.background_flagged
    );
    let _ = writeln!(
        s,
        "\nHost recall counts the attacker hosts of each row (the victims, for floods from spoofed sources) with at least one labelled flow event at that verdict; time to MALICIOUS is from the row's start to when the first such event would have been published live (a snapshot when a fast rule fires, a finished flow when it ends). Flow precision, recall and PR-AUC pool the labelled attack flows with every benign flow, so benign false positives count against every line."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_even_and_odd_counts() {
        let l = Line { to_malicious: vec![3.0, 1.0, 2.0], ..Line::default() };
        assert_eq!(l.median_to_malicious(), Some(2.0));
        let l = Line { to_malicious: vec![4.0, 1.0, 2.0, 3.0], ..Line::default() };
        assert_eq!(l.median_to_malicious(), Some(2.5));
        assert_eq!(Line::default().median_to_malicious(), None);
    }

    #[test]
    fn the_gate_names_each_class_short_of_malicious_and_any_blocked_benign_host() {
        let mut r = Report::default();
        r.classes.insert("scan".into(), Line { units: 2, malicious: 2, ..Line::default() });
        r.classes.insert("c2".into(), Line { units: 2, malicious: 1, ..Line::default() });
        let want = |c: &[&str]| c.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert!(unmet(&r, &want(&["scan"])).is_empty());
        assert_eq!(
            unmet(&r, &want(&["scan", "c2", "dns"])),
            ["c2: 1 of 2 hosts reached MALICIOUS", "class \"dns\" has no attack rows"]
        );
        r.benign.blocked_hosts.insert("10.0.0.9".parse().unwrap());
        assert_eq!(
            unmet(&r, &want(&["scan"])),
            ["benign hosts that would have been blocked: 10.0.0.9"]
        );
    }
}
