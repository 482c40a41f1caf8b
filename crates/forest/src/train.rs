//! RandomForest training: bootstrap samples, a random subset of features per split, CART
//! splits on Gini impurity over quantile bins (at most 255 thresholds per feature), positive
//! samples weighted to balance the classes. Single-threaded and seeded, so the same data and
//! parameters give the same forest, node for node.

use crate::rng::Rng;
use crate::{Node, OwnedForest};

#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub trees: usize,
    pub max_depth: usize,
    /// Fewer samples than this never make a leaf.
    pub min_samples_leaf: usize,
    /// Features tried per split; `None`: the square root of the feature count.
    pub max_features: Option<usize>,
    /// Thresholds per feature at most (quantiles of the training values), ≤ 255.
    pub bins: usize,
    /// Bootstrap sample size as a fraction of the training set.
    pub sample_fraction: f64,
    /// Weight of a positive sample; `None`: negatives / positives (balanced classes).
    pub positive_weight: Option<f64>,
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            trees: 32,
            max_depth: 10,
            min_samples_leaf: 3,
            max_features: None,
            bins: 64,
            sample_fraction: 1.0,
            positive_weight: None,
            seed: 1,
        }
    }
}

/// A trained forest and what it learned from.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    pub forest: OwnedForest,
    /// Total weighted Gini decrease per feature, normalised to sum to 1.
    pub importance: Vec<f64>,
    pub positive_weight: f64,
}

/// Candidate thresholds of one column: midpoints of its distinct values when there are few,
/// else quantiles of its values.
#[allow(clippy::cast_precision_loss, reason = "thresholds are f32 like the inputs")]
fn cuts(mut values: Vec<f32>, bins: usize) -> Vec<f32> {
    values.sort_unstable_by(f32::total_cmp);
    let mut distinct = values.clone();
    distinct.dedup();
    if distinct.len() <= bins {
        return distinct.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0).collect();
    }
    let n = values.len();
    let mut out: Vec<f32> = (1..bins).map(|k| values[k * n / bins]).collect();
    out.dedup();
    // The largest value would send everything left.
    if out.last() == distinct.last() {
        out.pop();
    }
    out
}

struct Binned {
    cuts: Vec<Vec<f32>>,
    /// Column-major bin index of every sample.
    bins: Vec<u8>,
    n: usize,
}

impl Binned {
    fn new<R: AsRef<[f32]>>(x: &[R], d: usize, bins: usize) -> Self {
        let n = x.len();
        let bins = bins.clamp(2, 255);
        let mut all = Vec::with_capacity(d * n);
        let mut cut_sets = Vec::with_capacity(d);
        for f in 0..d {
            let col: Vec<f32> = x.iter().map(|r| r.as_ref()[f]).collect();
            let c = cuts(col.clone(), bins);
            for v in col {
                #[allow(clippy::cast_possible_truncation, reason = "at most 255 cuts")]
                all.push(c.partition_point(|&t| t < v) as u8);
            }
            cut_sets.push(c);
        }
        Self { cuts: cut_sets, bins: all, n }
    }

    fn bin(&self, f: usize, i: u32) -> usize {
        usize::from(self.bins[f * self.n + i as usize])
    }
}

#[derive(Clone, Copy, Default)]
struct Tally {
    neg: f64,
    pos: f64,
    count: usize,
}

impl Tally {
    fn total(&self) -> f64 {
        self.neg + self.pos
    }

    /// Weighted Gini impurity times total weight.
    fn cost(&self) -> f64 {
        let t = self.total();
        if t <= 0.0 { 0.0 } else { t - (self.neg * self.neg + self.pos * self.pos) / t }
    }

    fn add(&mut self, w: f64, positive: bool) {
        if positive {
            self.pos += w;
        } else {
            self.neg += w;
        }
        self.count += 1;
    }
}

struct Builder<'a> {
    data: &'a Binned,
    y: &'a [bool],
    weight: Vec<f64>,
    params: &'a Params,
    mtry: usize,
    features: Vec<usize>,
    rng: Rng,
    nodes: Vec<Node>,
    importance: Vec<f64>,
}

impl Builder<'_> {
    fn tally(&self, idx: &[u32]) -> Tally {
        let mut t = Tally::default();
        for &i in idx {
            t.add(self.weight[i as usize], self.y[i as usize]);
        }
        t
    }

    /// Best (cost, feature, bin) among `mtry` random features.
    fn best_split(&mut self, idx: &[u32], parent: Tally) -> Option<(f64, usize, usize)> {
        let d = self.features.len();
        let mut best: Option<(f64, usize, usize)> = None;
        let mut hist: Vec<Tally> = Vec::new();
        for k in 0..self.mtry.min(d) {
            let j = k + self.rng.below(d - k);
            self.features.swap(k, j);
            let f = self.features[k];
            let nbins = self.data.cuts[f].len() + 1;
            if nbins < 2 {
                continue;
            }
            hist.clear();
            hist.resize(nbins, Tally::default());
            for &i in idx {
                hist[self.data.bin(f, i)].add(self.weight[i as usize], self.y[i as usize]);
            }
            let mut left = Tally::default();
            for (b, h) in hist.iter().enumerate().take(nbins - 1) {
                left.neg += h.neg;
                left.pos += h.pos;
                left.count += h.count;
                let right = Tally {
                    neg: parent.neg - left.neg,
                    pos: parent.pos - left.pos,
                    count: parent.count - left.count,
                };
                if left.count < self.params.min_samples_leaf
                    || right.count < self.params.min_samples_leaf
                {
                    continue;
                }
                let cost = left.cost() + right.cost();
                if best.is_none_or(|(c, _, _)| cost < c) {
                    best = Some((cost, f, b));
                }
            }
        }
        best
    }

    #[allow(clippy::cast_possible_truncation, reason = "node and feature counts fit")]
    fn build(&mut self, idx: &mut [u32], depth: usize) -> u32 {
        let t = self.tally(idx);
        let value = if t.total() > 0.0 { (t.pos / t.total()) as f32 } else { 0.0 };
        let at = self.nodes.len() as u32;
        self.nodes.push(Node::leaf(value));
        if depth >= self.params.max_depth
            || t.count < 2 * self.params.min_samples_leaf.max(1)
            || t.neg <= 0.0
            || t.pos <= 0.0
        {
            return at;
        }
        let Some((cost, f, b)) = self.best_split(idx, t) else { return at };
        let gain = t.cost() - cost;
        if gain <= 1e-12 * t.total() {
            return at;
        }
        self.importance[f] += gain;
        let mut split = 0;
        for k in 0..idx.len() {
            if self.data.bin(f, idx[k]) <= b {
                idx.swap(k, split);
                split += 1;
            }
        }
        let (l, r) = idx.split_at_mut(split);
        let left = self.build(l, depth + 1);
        let right = self.build(r, depth + 1);
        self.nodes[at as usize] = Node::split(f as u16, self.data.cuts[f][b], left, right, value);
        at
    }
}

/// Trains a forest on rows `x` (all of one length, at most 65,535 features) labelled `y`.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "sizes and weights"
)]
pub fn train<R: AsRef<[f32]>>(x: &[R], y: &[bool], params: &Params) -> Trained {
    assert_eq!(x.len(), y.len(), "one label per row");
    let d = x.first().map_or(0, |r| r.as_ref().len());
    assert!(d < usize::from(crate::LEAF), "too many features");
    let n = x.len();
    let positives = y.iter().filter(|&&p| p).count();
    let positive_weight = params.positive_weight.unwrap_or(if positives == 0 {
        1.0
    } else {
        (n - positives) as f64 / positives as f64
    });
    let data = Binned::new(x, d, params.bins);
    let mtry = params.max_features.unwrap_or_else(|| ((d as f64).sqrt().ceil() as usize).max(1));
    let mut b = Builder {
        data: &data,
        y,
        weight: vec![0.0; n],
        params,
        mtry,
        features: (0..d).collect(),
        rng: Rng::new(params.seed),
        nodes: Vec::new(),
        importance: vec![0.0; d],
    };
    let mut roots = Vec::with_capacity(params.trees);
    let draws = ((n as f64) * params.sample_fraction).round() as usize;
    let mut counts = vec![0u32; n];
    for t in 0..params.trees {
        b.rng = Rng::new(params.seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        counts.fill(0);
        for _ in 0..draws {
            counts[b.rng.below(n)] += 1;
        }
        let mut idx: Vec<u32> = (0..n as u32).filter(|&i| counts[i as usize] > 0).collect();
        for &i in &idx {
            let w = if y[i as usize] { positive_weight } else { 1.0 };
            b.weight[i as usize] = f64::from(counts[i as usize]) * w;
        }
        if idx.is_empty() {
            roots.push(b.nodes.len() as u32);
            b.nodes.push(Node::leaf(0.0));
            continue;
        }
        let root = b.build(&mut idx, 0);
        roots.push(root);
    }
    let total: f64 = b.importance.iter().sum();
    let importance =
        b.importance.iter().map(|g| if total > 0.0 { g / total } else { 0.0 }).collect();
    Trained { forest: OwnedForest { nodes: b.nodes, roots }, importance, positive_weight }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss, reason = "test data in f32")]
mod tests {
    use proptest::prelude::{any, prop_assert, proptest};

    use super::*;

    fn xor_data(n: usize, seed: u64) -> (Vec<[f32; 3]>, Vec<bool>) {
        let mut r = Rng::new(seed);
        let x: Vec<[f32; 3]> =
            (0..n).map(|_| [r.unit() as f32, r.unit() as f32, r.unit() as f32 * 100.0]).collect();
        let y = x.iter().map(|v| (v[0] > 0.5) != (v[1] > 0.5)).collect();
        (x, y)
    }

    #[test]
    fn learns_a_non_linear_rule_and_generalises() {
        let (x, y) = xor_data(2000, 1);
        let p = Params { trees: 20, max_depth: 6, ..Params::default() };
        let t = train(&x, &y, &p);
        let (tx, ty) = xor_data(1000, 2);
        let f = t.forest.as_forest();
        let right = tx.iter().zip(&ty).filter(|(v, y)| (f.score(&v[..]) > 0.5) == **y).count();
        assert!(right > 950, "{right} of 1000 right");
        // The noise feature matters least.
        assert!(t.importance[2] < t.importance[0] && t.importance[2] < t.importance[1]);
        assert!(f.max_depth() <= 6);
    }

    #[test]
    fn same_seed_same_forest_other_seed_other_forest() {
        let (x, y) = xor_data(500, 3);
        let p = Params { trees: 4, ..Params::default() };
        assert_eq!(train(&x, &y, &p), train(&x, &y, &p));
        assert_ne!(train(&x, &y, &p).forest, train(&x, &y, &Params { seed: 2, ..p }).forest);
    }

    #[test]
    fn rare_positives_are_balanced_and_degenerate_inputs_give_leaves() {
        // 1 % positives, separable on x0.
        let x: Vec<[f32; 1]> = (0..1000).map(|i| [i as f32]).collect();
        let y: Vec<bool> = (0..1000).map(|i| i >= 990).collect();
        let t = train(&x, &y, &Params { trees: 8, ..Params::default() });
        assert!((t.positive_weight - 99.0).abs() < 1e-9);
        assert!(t.forest.as_forest().score(&[995.0]) > 0.9);
        assert!(t.forest.as_forest().score(&[10.0]) < 0.05);
        // One class only, or a constant feature: every tree is a leaf.
        let all_neg = train(&x, &vec![false; 1000], &Params { trees: 2, ..Params::default() });
        assert!(all_neg.forest.nodes.iter().all(Node::is_leaf));
        let constant = train(&[[1.0f32]; 10], &[true, false].repeat(5), &Params::default());
        assert!(constant.forest.nodes.iter().all(Node::is_leaf));
    }

    proptest! {
        #[test]
        fn every_split_threshold_separates_the_training_values(
            rows in proptest::collection::vec((0u8..20, 0u8..5, any::<bool>()), 10..200)
        ) {
            let x: Vec<[f32; 2]> = rows.iter().map(|r| [f32::from(r.0), f32::from(r.1)]).collect();
            let y: Vec<bool> = rows.iter().map(|r| r.2).collect();
            let t = train(&x, &y, &Params { trees: 3, min_samples_leaf: 1, ..Params::default() });
            let f = t.forest.as_forest();
            for n in f.nodes {
                prop_assert!((0.0..=1.0).contains(&n.value));
                if !n.is_leaf() {
                    prop_assert!((n.left as usize) < f.nodes.len() && (n.right as usize) < f.nodes.len());
                }
            }
            let s = f.score(&x[0]);
            prop_assert!((0.0..=1.0).contains(&s));
        }
    }
}
