//! Offline analysis, in-process (no bus, no etcd): `analyze` scores capture files flow by
//! flow, `evaluate` measures the detector on the labelled shared captures.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use mld_flow::offline::{default_config, run_file};
use mld_proto::{FlowEvent, Verdict};
use mld_train::labels::{Family, Scope};

use crate::detection::Detector;
use crate::forests::ALL;
use crate::record::{unix_ns, write_line};
use crate::scoring::{Policy, Scored, Thresholds, score};

/// Scores every finished flow of `files`, writing one event-log line (`docs/EVENT_SCHEMA.md`,
/// with the capture file added) per flow to `out`. Returns (flows, flagged).
pub fn analyze(
    files: &[PathBuf],
    p: &Policy,
    out: &mut dyn Write,
    mut progress: impl FnMut(&Path, usize),
) -> anyhow::Result<(u64, u64)> {
    let (mut flows, mut flagged) = (0, 0);
    let mut detector = Detector::new(p.clone());
    let mut line = Vec::with_capacity(8192);
    for path in files {
        let run = read_capture(path, "analyze")?;
        if let Some(e) = &run.cut_short {
            eprintln!("ml-detector: warning: {} ended early, rest skipped: {e}", path.display());
        }
        let name = path.to_string_lossy();
        let mut here = 0;
        for ev in run.flows.into_iter().filter(|e| !e.snapshot) {
            let d = detector.detect(ev, unix_ns(SystemTime::now()));
            line.clear();
            write_line(&d, Some(&name), &mut line);
            out.write_all(&line).context("writing detections")?;
            flows += 1;
            here += 1;
            flagged += u64::from(crate::detection::flagged(&d));
        }
        progress(path, here);
    }
    out.flush().context("writing detections")?;
    Ok((flows, flagged))
}

/// The sniffer's flow engine over one capture file, with its default config (`sensor`
/// names the run in the events).
pub(crate) fn read_capture(
    path: &Path,
    sensor: &str,
) -> anyhow::Result<mld_flow::offline::Offline> {
    run_file(path, default_config(sensor))
        .with_context(|| format!("cannot read capture file {}", path.display()))
}

/// Counts for one class (or all).
#[derive(Debug, Default, Clone)]
pub struct ClassResult {
    pub files: usize,
    /// Host-level units (listed hosts; a whole capture for `all`/`file` scope) and how many
    /// had at least one flagged flow.
    pub units: usize,
    pub units_detected: usize,
    pub tp: u64,
    pub fn_: u64,
    pub fp: u64,
    pub tn: u64,
    /// (final score, malicious) of every labelled flow in the pool, for PR-AUC.
    pub ranked: Vec<(f64, bool)>,
}

#[allow(clippy::cast_precision_loss, reason = "ratios")]
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl ClassResult {
    /// Adds `o`'s files, units and flow counts to these.
    pub fn merge(&mut self, o: &ClassResult) {
        self.files += o.files;
        self.units += o.units;
        self.units_detected += o.units_detected;
        self.tp += o.tp;
        self.fn_ += o.fn_;
        self.fp += o.fp;
        self.tn += o.tn;
        self.ranked.extend(o.ranked.iter().copied());
    }

    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        (p + r > 0.0).then(|| 2.0 * p * r / (p + r))
    }
    pub fn host_recall(&self) -> Option<f64> {
        ratio(self.units_detected as u64, self.units as u64)
    }
    /// Average precision of the ranking by final score (area under the PR curve, step-wise).
    #[allow(clippy::cast_precision_loss, reason = "ratios")]
    pub fn pr_auc(&self) -> Option<f64> {
        let positives = self.ranked.iter().filter(|r| r.1).count();
        if positives == 0 {
            return None;
        }
        let mut r = self.ranked.clone();
        r.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut tp, mut ap) = (0usize, 0.0);
        let mut i = 0;
        while i < r.len() {
            // Flows with equal scores are one threshold.
            let mut j = i;
            let mut new_tp = 0;
            while j < r.len() && r[j].0.total_cmp(&r[i].0).is_eq() {
                new_tp += usize::from(r[j].1);
                j += 1;
            }
            tp += new_tp;
            ap += (new_tp as f64 / positives as f64) * (tp as f64 / j as f64);
            i = j;
        }
        Some(ap)
    }
}

/// The evaluation report.
#[derive(Debug, Default)]
pub struct Report {
    pub classes: BTreeMap<&'static str, ClassResult>,
    pub benign_files: usize,
    pub benign_flows: u64,
    pub benign_flagged: u64,
    /// Benign-capture flows flagged, by the rule or forest that set the final score.
    pub benign_flagged_by: BTreeMap<String, u64>,
    /// Benign captures with flagged flows: how many each.
    pub benign_flagged_files: BTreeMap<String, u64>,
    pub files: usize,
    pub held_out_only: bool,
}

struct Flow {
    scored: Scored,
    hosts: (Option<IpAddr>, Option<IpAddr>),
    rules: Vec<String>,
}

impl Flow {
    /// SUSPICIOUS or worse.
    fn flagged(&self) -> bool {
        self.scored.verdict != Verdict::Benign
    }
}

fn flows_of(path: &Path, p: &Policy) -> anyhow::Result<Vec<Flow>> {
    let run = read_capture(path, "evaluate")?;
    Ok(run
        .flows
        .iter()
        .filter(|e| !e.snapshot)
        .map(|ev: &FlowEvent| {
            let j = mld_flow::json::flow_event(ev);
            Flow {
                scored: score(ev, p).0,
                hosts: (j.src_ip, j.dst_ip),
                rules: ev.fast.as_ref().map_or_else(Vec::new, |f| f.rule_ids.clone()),
            }
        })
        .collect())
}

/// Evaluates on the captures of `data` (only the held-out files unless `all`).
pub fn evaluate(
    data: &Path,
    p: &Policy,
    all: bool,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<Report> {
    let captures = mld_train::labels::load(data)?;
    let is_eval = mld_train::labels::split(&captures, mld_train::EVAL_SHARE);
    let chosen: Vec<usize> = (0..captures.len()).filter(|&i| all || is_eval[i]).collect();
    let mut report = Report { held_out_only: !all, ..Report::default() };
    // Benign flows of benign captures are every class's negatives.
    let mut benign_pool: Vec<(f64, bool)> = Vec::new();
    for (k, &i) in chosen.iter().enumerate() {
        progress(k, chosen.len());
        let c = &captures[i];
        let flows = flows_of(&c.path, p)?;
        report.files += 1;
        if c.family == Family::Benign {
            report.benign_files += 1;
            let mut flagged = 0;
            for f in &flows {
                let hit = f.flagged();
                flagged += u64::from(hit);
                report.benign_flows += 1;
                if hit {
                    report.benign_flagged += 1;
                    let by = if f.scored.source == mld_proto::ScoreSource::Fast {
                        format!("fast:{}", f.rules.join("+"))
                    } else {
                        format!("ml:{}", ALL[f.scored.top_detector()].name)
                    };
                    *report.benign_flagged_by.entry(by).or_default() += 1;
                }
                benign_pool.push((f.scored.final_score, false));
            }
            if flagged > 0 {
                report.benign_flagged_files.insert(c.name.clone(), flagged);
            }
            continue;
        }
        let r = report.classes.entry(c.family.name()).or_default();
        r.files += 1;
        match &c.scope {
            Scope::Hosts(hosts) => {
                for h in hosts {
                    r.units += 1;
                    let hit = flows
                        .iter()
                        .any(|f| f.flagged() && (f.hosts.0 == Some(*h) || f.hosts.1 == Some(*h)));
                    r.units_detected += usize::from(hit);
                }
            }
            Scope::All | Scope::File | Scope::Benign => {
                r.units += 1;
                r.units_detected += usize::from(flows.iter().any(Flow::flagged));
            }
        }
        for f in &flows {
            let Some(malicious) = c.flow_is_malicious(f.hosts.0, f.hosts.1) else { continue };
            match (malicious, f.flagged()) {
                (true, true) => r.tp += 1,
                (true, false) => r.fn_ += 1,
                (false, true) => r.fp += 1,
                (false, false) => r.tn += 1,
            }
            r.ranked.push((f.scored.final_score, malicious));
        }
    }
    // Overall: every class's labelled flows once, then the benign-capture flows once; each
    // class also gets the benign-capture flows as its negatives.
    let benign_fp = report.benign_flagged;
    let benign_tn = report.benign_flows - report.benign_flagged;
    let mut overall = ClassResult::default();
    for r in report.classes.values_mut() {
        overall.merge(r);
        r.fp += benign_fp;
        r.tn += benign_tn;
        r.ranked.extend(benign_pool.iter().copied());
    }
    overall.fp += benign_fp;
    overall.tn += benign_tn;
    overall.ranked.extend(benign_pool);
    report.classes.insert("overall", overall);
    Ok(report)
}

/// A ratio with three decimals, or `n/a`.
pub(crate) fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

/// The report as markdown tables.
#[allow(clippy::cast_precision_loss, reason = "percentages")]
pub fn render(r: &Report, t: &Thresholds) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} captures ({}); a flow counts as detected when its final score max(fast, ML) reaches {} (SUSPICIOUS or worse).\n",
        r.files,
        if r.held_out_only {
            "the held-out split only: files never trained on"
        } else {
            "all files, including those the models were trained on"
        },
        t.suspicious
    );
    let _ = writeln!(
        s,
        "| class | files | host-level recall | flow TP | flow FN | flow FP | precision | recall | F1 | PR-AUC |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for (name, c) in &r.classes {
        // Without labelled malicious flows (file-scope captures only), flow precision says
        // nothing about the class.
        let labelled = c.tp + c.fn_ > 0;
        let _ = writeln!(
            s,
            "| {name} | {} | {} ({}/{}) | {} | {} | {} | {} | {} | {} | {} |",
            c.files,
            fmt(c.host_recall()),
            c.units_detected,
            c.units,
            c.tp,
            c.fn_,
            c.fp,
            fmt(c.precision().filter(|_| labelled)),
            fmt(c.recall()),
            fmt(c.f1()),
            fmt(c.pr_auc())
        );
    }
    let _ = writeln!(
        s,
        "\nBenign captures: {} files, {} with any flagged flow; {} of {} flows flagged: false-positive rate {}.",
        r.benign_files,
        r.benign_flagged_files.len(),
        r.benign_flagged,
        r.benign_flows,
        ratio(r.benign_flagged, r.benign_flows)
            .map_or_else(|| "n/a".to_owned(), |v| format!("{:.3} %", v * 100.0))
    );
    if !r.benign_flagged_by.is_empty() {
        let by: Vec<String> = r.benign_flagged_by.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "Flagged benign flows by what set their score: {}.", by.join(", "));
        let files: Vec<String> =
            r.benign_flagged_files.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "Flagged benign flows by capture: {}.", files.join(", "));
    }
    let _ = writeln!(
        s,
        "\nPer class, precision and PR-AUC pool the class's labelled flows with every benign-capture flow (so benign false positives count against every class); flows of `file`-scope captures are not labelled one by one and only count at host level (the capture as one unit), as do `all`-scope DDoS captures."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_auc_of_perfect_reversed_and_tied_rankings() {
        let c = |ranked: Vec<(f64, bool)>| ClassResult { ranked, ..ClassResult::default() };
        assert_eq!(c(vec![(0.9, true), (0.8, true), (0.1, false)]).pr_auc(), Some(1.0));
        let rev = c(vec![(0.9, false), (0.8, false), (0.1, true)]).pr_auc().unwrap();
        assert!((rev - 1.0 / 3.0).abs() < 1e-12);
        // All tied: precision is the positive share at the one threshold.
        let tied = c(vec![(0.5, true), (0.5, false), (0.5, false), (0.5, true)]).pr_auc().unwrap();
        assert!((tied - 0.5).abs() < 1e-12);
        assert_eq!(c(vec![(0.5, false)]).pr_auc(), None);
    }

    #[test]
    fn ratios_count_every_outcome() {
        let r = ClassResult {
            tp: 8,
            fn_: 2,
            fp: 2,
            tn: 88,
            units: 4,
            units_detected: 3,
            ..ClassResult::default()
        };
        assert_eq!(r.precision(), Some(0.8));
        assert_eq!(r.recall(), Some(0.8));
        assert!((r.f1().unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(r.host_recall(), Some(0.75));
        assert_eq!(ClassResult::default().recall(), None);
    }
}
