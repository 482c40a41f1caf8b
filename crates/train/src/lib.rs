//! Training the four detectors (DESIGN §5.3), reproducibly: labelled flows from the shared
//! captures ([`labels`], a fixed split into training and evaluation files) plus synthetic
//! flows ([`synthetic`]), the same feature vector as serving ([`mld_flow::vector`]), forests
//! from [`mld_forest`] with fixed seeds, rendered as Rust modules for ml-detector and described
//! by model cards.

pub mod corpus;
pub mod labels;
pub mod synthetic;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mld_flow::engine::EngineConfig;
use mld_flow::vector::{self, LEN};
use mld_forest::train::{Params, Trained, train};
use mld_proto::FlowEvent;

use crate::labels::{Capture, Detector, Family};

/// The flows of the shared captures, finished flows only (snapshots are partial copies).
pub struct RealData {
    pub captures: Vec<Capture>,
    /// Per capture: kept for evaluation (never trained on).
    pub is_eval: Vec<bool>,
    /// Per capture, in a stable order.
    pub flows: Vec<Vec<FlowEvent>>,
}

/// Share of each family's files kept for evaluation.
pub const EVAL_SHARE: f64 = 0.3;

pub(crate) fn endpoints(ev: &FlowEvent) -> (Option<IpAddr>, Option<IpAddr>) {
    let v = mld_flow::json::flow_event(ev);
    (v.src_ip, v.dst_ip)
}

/// A stable order for flows (the engine's export order depends on its hash seeds).
pub(crate) fn sort_flows(flows: &mut [FlowEvent]) {
    flows.sort_by_cached_key(|e| {
        let v = mld_flow::json::flow_event(e);
        (e.start_ns, e.end_ns, v.src_ip, v.src_port, v.dst_ip, v.dst_port, v.proto)
    });
}

/// The behaviours' hash seed of every engine training runs: their distinct-count estimates
/// are model inputs, and the same captures must give the same models.
pub const HASH_SEED: u64 = 0x6d6c_6474_7261_696e;

/// Fixes the engine's hash seed to [`HASH_SEED`] (before any engine runs in this process).
pub fn reproducible() -> anyhow::Result<()> {
    if !mld_flow::behave::state::fix_hash_seed(HASH_SEED) {
        anyhow::bail!("the flow engine already runs with another hash seed in this process");
    }
    Ok(())
}

/// Runs every capture in `LABELS.tsv` through the flow engine (default sniffer config).
pub fn load_real(
    data: &Path,
    mut progress: impl FnMut(usize, usize, &str),
) -> anyhow::Result<RealData> {
    reproducible()?;
    let captures = labels::load(data)?;
    let is_eval = labels::split(&captures, EVAL_SHARE);
    let mut flows = Vec::with_capacity(captures.len());
    for (i, c) in captures.iter().enumerate() {
        progress(i, captures.len(), &c.name);
        let run = mld_flow::offline::run_file(&c.path, mld_flow::offline::default_config("train"))
            .with_context(|| format!("reading {}", c.path.display()))?;
        let mut f: Vec<FlowEvent> = run.flows.into_iter().filter(|e| !e.snapshot).collect();
        sort_flows(&mut f);
        flows.push(f);
    }
    Ok(RealData { captures, is_eval, flows })
}

fn private(ip: Option<IpAddr>) -> bool {
    match ip {
        Some(IpAddr::V4(v4)) => v4.is_private() || v4.is_link_local(),
        Some(IpAddr::V6(v6)) => v6.is_unique_local() || v6.is_unicast_link_local(),
        None => false,
    }
}

/// The family a real flow is labelled with for training: its capture's family when the
/// label makes it malicious or does not say (file scope), else benign. In the lateral-movement
/// captures (file scope) only flows between internal addresses count: their internet
/// background (updates, telemetry) is not lateral movement.
pub fn flow_family(c: &Capture, ev: &FlowEvent) -> Family {
    let (a, b) = endpoints(ev);
    match c.flow_is_malicious(a, b) {
        Some(false) => Family::Benign,
        None if c.family == Family::Lateral && !(private(a) && private(b)) => Family::Benign,
        Some(true) | None => c.family,
    }
}

/// Training rows and their families.
#[derive(Default)]
pub struct TrainingSet {
    pub x: Vec<[f32; LEN]>,
    pub family: Vec<Family>,
    pub real: usize,
    pub synthetic: usize,
    /// From the real-tool corpus's training part.
    pub corpus: usize,
}

/// Real flows of the training captures, the synthetic flows and the corpus's training part.
pub fn training_set(
    real: &RealData,
    synthetic: &[(FlowEvent, Family)],
    corpus: &corpus::Flows,
) -> TrainingSet {
    training_subset(real, synthetic, corpus, |_| true)
}

/// [`training_set`] with only the shared training captures that `keep` (given a capture's
/// index).
pub fn training_subset(
    real: &RealData,
    synthetic: &[(FlowEvent, Family)],
    corpus: &corpus::Flows,
    keep: impl Fn(usize) -> bool,
) -> TrainingSet {
    let mut t = TrainingSet::default();
    for (i, ((c, flows), eval)) in
        real.captures.iter().zip(&real.flows).zip(&real.is_eval).enumerate()
    {
        if *eval || !keep(i) {
            continue;
        }
        for ev in flows {
            t.x.push(vector::of_event(ev));
            t.family.push(flow_family(c, ev));
            t.real += 1;
        }
    }
    for (ev, family) in synthetic {
        t.x.push(vector::of_event(ev));
        t.family.push(*family);
        t.synthetic += 1;
    }
    for f in corpus.flows.iter().filter(|f| !f.test && corpus.rows.takes(f)) {
        t.x.push(f.x);
        t.family.push(corpus.family(f));
        t.corpus += 1;
    }
    t
}

/// Hyperparameters of every detector (the seed differs per detector).
pub fn params(detector: Detector, seed: u64) -> Params {
    Params {
        trees: 24,
        max_depth: 10,
        min_samples_leaf: 3,
        max_features: None,
        bins: 64,
        sample_fraction: 1.0,
        positive_weight: None,
        seed: seed.wrapping_mul(31).wrapping_add(detector as u64 + 1),
    }
}

pub struct Model {
    pub detector: Detector,
    pub params: Params,
    pub trained: Trained,
    pub positives: usize,
    pub negatives: usize,
}

/// Trains one forest per detector: positives are the flows of the families it covers.
pub fn train_all(set: &TrainingSet, seed: u64) -> Vec<Model> {
    Detector::ALL
        .iter()
        .map(|&d| {
            let y: Vec<bool> = set.family.iter().map(|f| f.detector() == Some(d)).collect();
            let positives = y.iter().filter(|&&p| p).count();
            let p = params(d, seed);
            let trained = train(&set.x, &y, &p);
            Model { detector: d, params: p, trained, positives, negatives: y.len() - positives }
        })
        .collect()
}

/// Folds of the training split for cross-validation.
pub const FOLDS: usize = 3;

/// Share of benign flows one forest may flag: a quarter of the 0.1 % goal, as four forests
/// (and the fast rules) share it.
pub const FOREST_FP_BUDGET: f64 = 0.00025;

/// Out-of-fold scores: (family, the four forests' scores) of every real flow of the training
/// split, each scored by forests trained without its capture's fold.
pub fn cross_validate(
    real: &RealData,
    synthetic: &[(FlowEvent, Family)],
    corpus: &corpus::Flows,
    seed: u64,
    mut progress: impl FnMut(&str),
) -> Vec<(Family, [f32; 4])> {
    let fold = labels::folds(&real.captures, &real.is_eval, FOLDS);
    let mut out = Vec::new();
    for k in 0..FOLDS {
        let set = training_subset(real, synthetic, corpus, |i| fold[i] != Some(k));
        progress(&format!("cross-validation fold {}/{FOLDS}: {} rows", k + 1, set.x.len()));
        let models = train_all(&set, seed);
        for (i, (c, flows)) in real.captures.iter().zip(&real.flows).enumerate() {
            if fold[i] != Some(k) {
                continue;
            }
            for ev in flows {
                let x = vector::of_event(ev);
                let mut s = [0.0; 4];
                for (o, m) in s.iter_mut().zip(&models) {
                    *o = m.trained.forest.as_forest().score(&x);
                }
                out.push((flow_family(c, ev), s));
            }
        }
    }
    out
}

/// A forest's cut (its decision threshold, read as 0.5 after [`mld_forest::calibrate`]) from
/// out-of-fold scores: the lowest of 0.50, 0.51, … 0.95 at which it flags at most
/// [`FOREST_FP_BUDGET`] of the benign flows, as long as it keeps its flow recall within 0.01
/// of the recall at 0.5; when the budget cannot be met so, the highest cut that keeps it.
#[allow(clippy::cast_precision_loss, reason = "counts")]
pub fn choose_cut(oof: &[(Family, [f32; 4])], d: Detector) -> Cut {
    let i = d as usize;
    let count = |t: f32, pos: bool| {
        oof.iter()
            .filter(|(f, _)| (f.detector() == Some(d)) == pos && (pos || *f == Family::Benign))
            .filter(|(_, s)| s[i] >= t)
            .count()
    };
    // Forest scores are finite: every row of the kind counts at -∞.
    let positives = count(f32::NEG_INFINITY, true);
    let benign = count(f32::NEG_INFINITY, false);
    let recall =
        |t: f32| if positives == 0 { 1.0 } else { count(t, true) as f64 / positives as f64 };
    let floor = recall(0.5) - 0.01;
    let mut best = 0.5f32;
    for step in 50..=95u8 {
        let t = f32::from(step) / 100.0;
        if recall(t) < floor {
            break;
        }
        best = t;
        if count(t, false) as f64 <= FOREST_FP_BUDGET * benign as f64 {
            break;
        }
    }
    Cut {
        cut: best,
        benign,
        positives,
        benign_flagged_at_half: count(0.5, false),
        benign_flagged: count(best, false),
        recall_at_half: recall(0.5),
        recall: recall(best),
    }
}

/// A chosen cut and the out-of-fold numbers behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cut {
    pub cut: f32,
    pub benign: usize,
    pub positives: usize,
    pub benign_flagged_at_half: usize,
    pub benign_flagged: usize,
    pub recall_at_half: f64,
    pub recall: f64,
}

/// The command that regenerates the models.
pub const GENERATOR: &str = "make train";

pub fn card_path(detector: Detector) -> String {
    format!("docs/models/{}.md", detector.name())
}

/// The generated Rust module of a model.
pub fn render(m: &Model, cut: f32) -> String {
    let card = card_path(m.detector);
    let meta = mld_forest::codegen::Meta {
        name: m.detector.name(),
        generator: GENERATOR,
        card: &card,
        cut,
    };
    mld_forest::codegen::render(&meta, &m.trained.forest)
}

/// Flow- and capture-level results of one detector's forest alone on the evaluation files.
#[derive(Debug, Default, Clone)]
pub struct Holdout {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
    /// Benign flows (benign captures) and how many scored at or above 0.5.
    pub benign_flows: u64,
    pub benign_flagged: u64,
    /// Per evaluation capture of this detector's families: (file, class, flagged flows, flows).
    pub captures: Vec<(String, String, u64, u64)>,
}

/// Scores the evaluation captures with `m` at its cut.
#[allow(clippy::many_single_char_names, reason = "m, f, h, c, a, b")]
pub fn holdout(m: &Model, cut: f32, real: &RealData) -> Holdout {
    let f = m.trained.forest.as_forest();
    let mut h = Holdout::default();
    for ((c, flows), eval) in real.captures.iter().zip(&real.flows).zip(&real.is_eval) {
        if !*eval {
            continue;
        }
        let mine = c.family.detector() == Some(m.detector);
        let mut flagged = 0;
        for ev in flows {
            let hit = f.score(&vector::of_event(ev)) >= cut;
            flagged += u64::from(hit);
            let (a, b) = endpoints(ev);
            let truth = c.flow_is_malicious(a, b).map(|mal| mal && mine);
            match (truth, hit) {
                (Some(true), true) => h.tp += 1,
                (Some(true), false) => h.fn_ += 1,
                (Some(false), true) => h.fp += 1,
                (Some(false), false) => h.tn += 1,
                (None, _) => {}
            }
            if c.family == Family::Benign {
                h.benign_flows += 1;
                h.benign_flagged += u64::from(hit);
            }
        }
        if mine {
            h.captures.push((c.name.clone(), c.class.clone(), flagged, flows.len() as u64));
        }
    }
    h
}

/// The model card (markdown) of `m`.
#[allow(
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    clippy::many_single_char_names,
    reason = "one document, top to bottom"
)]
pub fn card(
    m: &Model,
    cut: &Cut,
    set: &TrainingSet,
    real: &RealData,
    corpus: &corpus::Flows,
    synthetic_seed: u64,
) -> String {
    let f = m.trained.forest.as_forest();
    let mut s = String::new();
    let d = m.detector;
    let _ = writeln!(s, "# Model card: `{}`\n", d.name());
    let _ = writeln!(
        s,
        "Generated by `{GENERATOR}` (`mld-train`); do not edit by hand. Version `{}`.\n",
        mld_forest::codegen::version(&m.trained.forest)
    );
    let _ = writeln!(s, "**Detects**: {}.\n", d.what());
    let _ = writeln!(s, "## Data\n");
    let _ = writeln!(
        s,
        "- Training rows: {} ({} from the training split of `shared/data`, {} synthetic, seed {synthetic_seed}, {} from the training part of the real-tool corpus, `{}`, rows `{:?}`; ADR 0013).",
        set.x.len(),
        set.real,
        set.synthetic,
        set.corpus,
        corpus::FLOWS_FILE,
        corpus.rows
    );
    let _ = writeln!(
        s,
        "- Positives: {} (families: {}); negatives: {}. Positive weight {:.2} (balanced).",
        m.positives,
        Family::ATTACKS
            .iter()
            .filter(|f| f.detector() == Some(d))
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", "),
        m.negatives,
        m.trained.positive_weight
    );
    let train_files: Vec<&str> = real
        .captures
        .iter()
        .zip(&real.is_eval)
        .filter(|(c, e)| !**e && c.family.detector() == Some(d))
        .map(|(c, _)| c.name.as_str())
        .collect();
    let eval_files: Vec<&str> = real
        .captures
        .iter()
        .zip(&real.is_eval)
        .filter(|(c, e)| **e && c.family.detector() == Some(d))
        .map(|(c, _)| c.name.as_str())
        .collect();
    let _ = writeln!(
        s,
        "- Attack captures trained on: {}.",
        if train_files.is_empty() {
            "none (synthetic only)".to_owned()
        } else {
            train_files.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "- Attack captures held out for evaluation: {}.",
        if eval_files.is_empty() { "none".to_owned() } else { eval_files.join(", ") }
    );
    let benign_eval = real
        .captures
        .iter()
        .zip(&real.is_eval)
        .filter(|(c, e)| **e && c.family == Family::Benign)
        .count();
    let _ = writeln!(
        s,
        "- Benign captures held out: {benign_eval} of {}; the split is a hash of the file name, {:.0} % of each family's files (at least one) held out.\n",
        real.captures.iter().filter(|c| c.family == Family::Benign).count(),
        EVAL_SHARE * 100.0
    );
    let _ = writeln!(
        s,
        "Real flows are labelled from `LABELS.tsv`: benign files all negative; `all` scope all positive; `host` scope positive when a listed host is an endpoint; `file` scope (the capture as a whole shows the behaviour) all positive, except that in lateral-movement captures only flows between internal (private) addresses are; this is noisy: such captures also hold background traffic between internal hosts.\n"
    );
    let _ = writeln!(s, "## Features\n");
    let _ = writeln!(
        s,
        "{LEN} inputs, `mld_flow::vector::NAMES` (the CIC flow features, the source host's context window, part of the responder's, the behaviours' levels of the source and of the responder as a target, responder port, IP protocol; `docs/features.md`). Most important (Gini decrease):\n"
    );
    let mut imp: Vec<(usize, f64)> = m.trained.importance.iter().copied().enumerate().collect();
    imp.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let _ = writeln!(s, "| feature | importance |\n|---|---|");
    for (i, v) in imp.iter().take(10) {
        let _ = writeln!(s, "| `{}` | {:.3} |", vector::NAMES[*i], v);
    }
    let p = &m.params;
    let _ = writeln!(s, "\n## Forest\n");
    let _ = writeln!(
        s,
        "RandomForest (`mld-forest`: bootstrap, √features per split, Gini over ≤ {} quantile thresholds per feature): {} trees, max depth {} (reached: {}), min {} samples per leaf, seed {}; {} nodes in all.\n",
        p.bins,
        p.trees,
        p.max_depth,
        f.max_depth(),
        p.min_samples_leaf,
        p.seed,
        m.trained.forest.nodes.len()
    );
    let _ = writeln!(s, "## Cut\n");
    let _ = writeln!(
        s,
        "The forest flags a flow when its score reaches **{:.2}** (ml-detector reads that score as 0.5, `mld_forest::calibrate`). The cut comes from the training split alone: {FOLDS}-fold cross-validation by capture file (every fold a share of each family's files; forests trained without a fold score its flows), then the lowest of 0.50, 0.51, … 0.95 at which the forest flags at most {:.3} % of the benign flows (a quarter of the 0.1 % goal), unless that costs more than 0.01 of its flow recall.\n",
        cut.cut,
        FOREST_FP_BUDGET * 100.0
    );
    let _ = writeln!(s, "| out-of-fold | at 0.50 | at the cut |\n|---|---|---|");
    let _ = writeln!(
        s,
        "| benign flows flagged (of {}) | {} | {} |",
        cut.benign, cut.benign_flagged_at_half, cut.benign_flagged
    );
    let _ = writeln!(
        s,
        "| flow recall ({} positives) | {:.3} | {:.3} |\n",
        cut.positives, cut.recall_at_half, cut.recall
    );
    let h = holdout(m, cut.cut, real);
    let _ = writeln!(s, "## Held-out results (this forest alone, at its cut)\n");
    let ratio = |a: u64, b: u64| {
        if b == 0 { "n/a".to_owned() } else { format!("{:.3}", a as f64 / b as f64) }
    };
    let _ = writeln!(s, "| flow-level | value |\n|---|---|");
    let _ =
        writeln!(s, "| true positives / false negatives (labelled flows) | {} / {} |", h.tp, h.fn_);
    let _ =
        writeln!(s, "| false positives / true negatives (labelled flows) | {} / {} |", h.fp, h.tn);
    let _ = writeln!(s, "| precision | {} |", ratio(h.tp, h.tp + h.fp));
    let _ = writeln!(s, "| recall | {} |", ratio(h.tp, h.tp + h.fn_));
    let _ = writeln!(
        s,
        "| benign flows flagged (held-out benign captures) | {} of {} ({}) |\n",
        h.benign_flagged,
        h.benign_flows,
        ratio(h.benign_flagged, h.benign_flows)
    );
    if !h.captures.is_empty() {
        let _ = writeln!(s, "| held-out attack capture | class | flows flagged |\n|---|---|---|");
        for (name, class, flagged, total) in &h.captures {
            let _ = writeln!(s, "| `{name}` | {class} | {flagged} of {total} |");
        }
        let _ = writeln!(s);
    }
    cross_corpus(&mut s, m, cut.cut, corpus);
    let _ = writeln!(
        s,
        "The full picture (fast rules and all four forests together, host-level recall, PR-AUC) is `ml-detector evaluate`; see the README."
    );
    s
}

/// The card's cross-corpus section: this forest alone, at its cut, on the corpus's test part
/// (tools and parameterisations nothing was trained on), per class.
#[allow(clippy::cast_precision_loss, reason = "counts")]
fn cross_corpus(s: &mut String, m: &Model, cut: f32, corpus: &corpus::Flows) {
    let f = m.trained.forest.as_forest();
    // Per class: (attack flows flagged, attack flows, benign flows flagged, benign flows).
    let mut per: std::collections::BTreeMap<&str, [u64; 4]> = std::collections::BTreeMap::new();
    for fl in corpus.flows.iter().filter(|fl| fl.test) {
        let hit = u64::from(f.score(&fl.x) >= cut);
        let e = per.entry(corpus.class(fl)).or_default();
        if fl.attack {
            e[0] += hit;
            e[1] += 1;
        } else {
            e[2] += hit;
            e[3] += 1;
        }
    }
    let _ = writeln!(s, "## Cross-corpus results (this forest alone, at its cut)\n");
    let _ = writeln!(
        s,
        "On the test part of the real-tool corpus (`make corpus`; at most {} flows per capture and label, stride-sampled). Classes marked * are this detector's; on the others, flagged attack flows are caught by the wrong detector (they still count as detections). Benign flows are the benign captures' and the attack captures' background.\n",
        corpus::MAX_FLOWS_PER_LABEL
    );
    let _ = writeln!(s, "| class | attack flows flagged | benign flows flagged |\n|---|---|---|");
    let share = |a: u64, b: u64| {
        if b == 0 { "–".to_owned() } else { format!("{a} of {b} ({:.3})", a as f64 / b as f64) }
    };
    for (class, [ah, an, bh, bn]) in &per {
        let mine = corpus::family(class).and_then(Family::detector) == Some(m.detector);
        let _ = writeln!(
            s,
            "| {class}{} | {} | {} |",
            if mine { " *" } else { "" },
            share(*ah, *an),
            share(*bh, *bn)
        );
    }
    let _ = writeln!(s);
}

/// Where the generated forests and the model cards go, relative to the workspace root.
pub fn forest_path(root: &Path, d: Detector) -> PathBuf {
    root.join("ml-detector/src/forests").join(format!("{}.rs", d.name()))
}

/// Everything one training run produces: (path, contents).
pub fn outputs(
    root: &Path,
    data: &Path,
    seed: u64,
    rows: corpus::Rows,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let real = load_real(data, |i, n, name| {
        if i % 50 == 0 {
            progress(&format!("capture {}/{n}: {name}", i + 1));
        }
    })?;
    let shapes: Vec<synthetic::Shape> = real
        .captures
        .iter()
        .zip(&real.flows)
        .zip(&real.is_eval)
        .filter(|((c, _), e)| !**e && c.family == Family::Benign)
        .flat_map(|((_, f), _)| f.iter().filter_map(synthetic::Shape::of))
        .collect();
    progress(&format!("synthetic traffic from {} benign flow shapes", shapes.len()));
    let synth = synthetic::generate(seed, synthetic::Counts::default(), &shapes, &engine_config());
    let mut corpus = corpus::load(root, corpus::fingerprint(&real.flows))?;
    corpus.rows = rows;
    let set = training_set(&real, &synth, &corpus);
    progress(&format!(
        "training on {} rows ({} real, {} synthetic, {} from the corpus)",
        set.x.len(),
        set.real,
        set.synthetic,
        set.corpus
    ));
    let models = train_all(&set, seed);
    let oof = cross_validate(&real, &synth, &corpus, seed, &mut progress);
    let mut out = Vec::new();
    for m in &models {
        let c = choose_cut(&oof, m.detector);
        progress(&format!(
            "{}: cut {:.2} (out of fold: benign flows flagged {} -> {} of {}, flow recall {:.3} -> {:.3})",
            m.detector.name(),
            c.cut,
            c.benign_flagged_at_half,
            c.benign_flagged,
            c.benign,
            c.recall_at_half,
            c.recall
        ));
        out.push((forest_path(root, m.detector), render(m, c.cut)));
        out.push((root.join(card_path(m.detector)), card(m, &c, &set, &real, &corpus, seed)));
    }
    Ok(out)
}

/// The engine configuration synthetic traffic runs through (the sniffer's defaults).
pub fn engine_config() -> EngineConfig {
    mld_flow::offline::default_config("synthetic")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` out-of-fold rows of `family` whose `ddos` score is `score`.
    fn rows(family: Family, score: f32, n: usize) -> Vec<(Family, [f32; 4])> {
        vec![(family, [score, 0.0, 0.0, 0.0]); n]
    }

    #[test]
    fn the_cut_rises_until_benign_flows_fit_the_budget_unless_recall_pays() {
        // 10,000 benign flows, 20 scoring 0.6 and 2 scoring 0.7: the budget (2.5 flows) is
        // met at 0.61.
        let mut oof = rows(Family::Benign, 0.1, 9_978);
        oof.extend(rows(Family::Benign, 0.6, 20));
        oof.extend(rows(Family::Benign, 0.7, 2));
        oof.extend(rows(Family::Ddos, 0.95, 1_000));
        let c = choose_cut(&oof, Detector::Ddos);
        assert!((c.cut - 0.61).abs() < 1e-6, "{c:?}");
        assert_eq!((c.benign, c.benign_flagged_at_half, c.benign_flagged), (10_000, 22, 2));
        assert!((c.recall - 1.0).abs() < 1e-12);
        // When 5 % of the positives score 0.55, the cut stops at 0.55 (a higher one would
        // lose more than 0.01 of recall) although the budget is not met there.
        oof.extend(rows(Family::Ddos, 0.55, 53));
        let c = choose_cut(&oof, Detector::Ddos);
        assert!((c.cut - 0.55).abs() < 1e-6, "{c:?}");
        assert_eq!(c.benign_flagged, 22);
        // Other detectors' families are neither positives nor benign for this forest.
        let c = choose_cut(&rows(Family::Scan, 0.9, 100), Detector::Ddos);
        assert_eq!((c.cut, c.benign, c.positives), (0.5, 0, 0));
    }
}
