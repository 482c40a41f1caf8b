//! RandomForests for the ML detector (DESIGN §5.3): trained here with fixed seeds
//! ([`train`]), rendered as Rust `const` node arrays ([`codegen`]) that ml-detector compiles
//! in, and evaluated over those arrays ([`Forest`]) with no allocation and no files.
//!
//! A forest is a binary classifier: each leaf holds the fraction of (weighted) positive
//! training samples that reached it, and the forest's score is the mean over its trees.
//!
//! ```
//! use mld_forest::train::{Params, train};
//! // x0 > 5 is positive.
//! let x: Vec<Vec<f32>> = (0..200).map(|i| vec![(i % 10) as f32, (i % 3) as f32]).collect();
//! let y: Vec<bool> = x.iter().map(|r| r[0] > 5.0).collect();
//! let f = train(&x, &y, &Params { trees: 5, ..Params::default() }).forest;
//! assert!(f.as_forest().score(&[9.0, 1.0]) > 0.9);
//! assert!(f.as_forest().score(&[1.0, 1.0]) < 0.1);
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::many_single_char_names, reason = "the textbook names: x, y, n, d, t")]

pub mod codegen;
pub mod rng;
pub mod train;

/// One tree node. A leaf has `feature == LEAF`; a split sends `x[feature] <= threshold` to
/// `left`, the rest to `right` (indices into the forest's node array). `value` is the
/// positive fraction of the training samples that reached the node (leaves and splits alike,
/// for feature contributions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub feature: u16,
    pub threshold: f32,
    pub left: u32,
    pub right: u32,
    pub value: f32,
}

/// `Node::feature` of a leaf.
pub const LEAF: u16 = u16::MAX;

/// Trees walked together by [`Packed::score`].
pub const LANES: usize = 16;

impl Node {
    pub const fn leaf(value: f32) -> Self {
        Self { feature: LEAF, threshold: 0.0, left: 0, right: 0, value }
    }

    pub const fn split(feature: u16, threshold: f32, left: u32, right: u32, value: f32) -> Self {
        Self { feature, threshold, left, right, value }
    }

    pub const fn is_leaf(&self) -> bool {
        self.feature == LEAF
    }
}

/// A forest's score `s` on a scale where its cut reads 0.5: linear from 0 to the cut and from
/// the cut to 1, so the order of scores is kept, 0 and 1 stay, and a cut of 0.5 changes
/// nothing. A forest whose cut is higher than 0.5 (chosen in training, so that it flags few
/// benign flows) then meets the same verdict thresholds as the others.
pub fn calibrate(s: f32, cut: f32) -> f32 {
    if cut <= 0.0 || cut >= 1.0 {
        return s;
    }
    if s < cut { 0.5 * s / cut } else { 0.5 + 0.5 * (s - cut) / (1.0 - cut) }
}

/// A forest over borrowed node arrays (`'static` when compiled in).
#[derive(Debug, Clone, Copy)]
pub struct Forest<'a> {
    pub nodes: &'a [Node],
    /// Index of each tree's root in `nodes`.
    pub roots: &'a [u32],
}

impl Forest<'_> {
    /// Mean leaf value over the trees: the probability that `x` is positive.
    #[allow(clippy::cast_precision_loss, reason = "tree counts are small")]
    pub fn score(&self, x: &[f32]) -> f32 {
        if self.roots.is_empty() {
            return 0.0;
        }
        let mut sum = 0.0;
        for &root in self.roots {
            sum += self.leaf(root, x).value;
        }
        sum / self.roots.len() as f32
    }

    fn leaf(&self, root: u32, x: &[f32]) -> &Node {
        let mut n = &self.nodes[root as usize];
        while !n.is_leaf() {
            // A NaN (never produced by the feature code) goes right.
            let v = x.get(usize::from(n.feature)).copied().unwrap_or(0.0);
            n = &self.nodes[if v <= n.threshold { n.left } else { n.right } as usize];
        }
        n
    }

    /// Per-feature contributions to `score(x)` (the change in node value at each split on
    /// the decision paths, averaged over trees): `score(x) = bias + Σ contributions`, where
    /// `bias` is the mean root value. Adds into `out` (one slot per feature).
    #[allow(clippy::cast_precision_loss, reason = "tree counts are small")]
    pub fn contributions(&self, x: &[f32], out: &mut [f32]) -> f32 {
        if self.roots.is_empty() {
            return 0.0;
        }
        let per_tree = 1.0 / self.roots.len() as f32;
        let mut bias = 0.0;
        for &root in self.roots {
            let mut n = &self.nodes[root as usize];
            bias += n.value * per_tree;
            while !n.is_leaf() {
                let f = usize::from(n.feature);
                let v = x.get(f).copied().unwrap_or(0.0);
                let next = &self.nodes[if v <= n.threshold { n.left } else { n.right } as usize];
                if let Some(slot) = out.get_mut(f) {
                    *slot += (next.value - n.value) * per_tree;
                }
                n = next;
            }
        }
        bias
    }

    /// Number of trees.
    pub fn trees(&self) -> usize {
        self.roots.len()
    }

    /// Depth of the deepest tree (a lone leaf has depth 0).
    pub fn max_depth(&self) -> usize {
        fn depth(nodes: &[Node], i: u32) -> usize {
            let n = &nodes[i as usize];
            if n.is_leaf() { 0 } else { 1 + depth(nodes, n.left).max(depth(nodes, n.right)) }
        }
        self.roots.iter().map(|&r| depth(self.nodes, r)).max().unwrap_or(0)
    }
}

/// A split in [`Packed`] form: 12 bytes, and a leaf is a node that leads to itself.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PackedNode {
    threshold: f32,
    /// `x[feature] <= threshold` goes to `left`, else `right`.
    left: u32,
    right: u32,
}

/// A forest laid out for fast scoring, built once from a [`Forest`]: 12-byte nodes with the
/// feature index in a parallel array, leaves that lead to themselves (`threshold` +∞ on
/// feature 0, both children the leaf), and every tree walked for exactly the forest's depth,
/// [`LANES`] trees in lock step. No data-dependent branch is left in the walk, and the lanes'
/// loads overlap instead of each waiting on the one before. Scores equal
/// [`Forest::score`] bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    nodes: Vec<PackedNode>,
    features: Vec<u16>,
    values: Vec<f32>,
    roots: Vec<u32>,
    depth: usize,
}

impl Packed {
    /// Lays out `f` (whose features index inputs of length `inputs`; a feature beyond reads
    /// as 0, as in [`Forest::score`]).
    pub fn new(f: &Forest<'_>, inputs: usize) -> Self {
        let mut nodes = Vec::with_capacity(f.nodes.len());
        let mut features = Vec::with_capacity(f.nodes.len());
        for (i, n) in f.nodes.iter().enumerate() {
            let me = u32::try_from(i).expect("forests have fewer than 2^32 nodes");
            if n.is_leaf() {
                nodes.push(PackedNode { threshold: f32::INFINITY, left: me, right: me });
                features.push(0);
            } else if usize::from(n.feature) >= inputs {
                // Reads as 0.0: the branch is decided now.
                let to = if 0.0 <= n.threshold { n.left } else { n.right };
                nodes.push(PackedNode { threshold: f32::INFINITY, left: to, right: to });
                features.push(0);
            } else {
                nodes.push(PackedNode { threshold: n.threshold, left: n.left, right: n.right });
                features.push(n.feature);
            }
        }
        Self {
            nodes,
            features,
            values: f.nodes.iter().map(|n| n.value).collect(),
            roots: f.roots.to_vec(),
            depth: f.max_depth(),
        }
    }

    /// The probability that `x` is positive (as [`Forest::score`]).
    #[allow(clippy::cast_precision_loss, reason = "tree counts are small")]
    pub fn score(&self, x: &[f32]) -> f32 {
        if self.roots.is_empty() {
            return 0.0;
        }
        let mut sum = 0.0;
        for chunk in self.roots.chunks(LANES) {
            let mut at = [0u32; LANES];
            at[..chunk.len()].copy_from_slice(chunk);
            let lanes = &mut at[..chunk.len()];
            for _ in 0..self.depth {
                for i in lanes.iter_mut() {
                    let n = self.nodes[*i as usize];
                    let v = x.get(usize::from(self.features[*i as usize])).copied().unwrap_or(0.0);
                    // NaN (never produced by the feature code) goes right, as in `Forest`.
                    *i = if v <= n.threshold { n.left } else { n.right };
                }
            }
            for i in lanes.iter() {
                sum += self.values[*i as usize];
            }
        }
        sum / self.roots.len() as f32
    }
}

/// A forest that owns its nodes (what training produces).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnedForest {
    pub nodes: Vec<Node>,
    pub roots: Vec<u32>,
}

impl OwnedForest {
    pub fn as_forest(&self) -> Forest<'_> {
        Forest { nodes: &self.nodes, roots: &self.roots }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tree 0: x0 <= 1 ? 0.0 : 1.0 (root value 0.5); tree 1: a leaf of 0.25.
    fn forest() -> OwnedForest {
        OwnedForest {
            nodes: vec![
                Node::split(0, 1.0, 1, 2, 0.5),
                Node::leaf(0.0),
                Node::leaf(1.0),
                Node::leaf(0.25),
            ],
            roots: vec![0, 3],
        }
    }

    #[test]
    fn calibration_reads_the_cut_as_one_half_and_keeps_the_order() {
        for cut in [0.5f32, 0.62, 0.9] {
            assert!((calibrate(cut, cut) - 0.5).abs() < 1e-6);
            assert!(calibrate(0.0, cut).abs() < 1e-6);
            assert!((calibrate(1.0, cut) - 1.0).abs() < 1e-6);
            let mut last = -1.0;
            for i in 0..=100u8 {
                let c = calibrate(f32::from(i) / 100.0, cut);
                assert!(c > last, "{cut}: not increasing at {i}");
                last = c;
            }
        }
        // A cut of 0.5 changes nothing; a higher cut lowers a score between 0.5 and the cut
        // below 0.5.
        assert!((calibrate(0.7, 0.5) - 0.7).abs() < 1e-6);
        assert!(calibrate(0.55, 0.62) < 0.5);
        assert!(calibrate(0.7, 0.62) > 0.5);
    }

    #[test]
    fn scores_average_the_leaves_and_contributions_add_up() {
        let f = forest();
        let f = f.as_forest();
        assert!((f.score(&[0.0]) - 0.125).abs() < 1e-6);
        assert!((f.score(&[2.0]) - 0.625).abs() < 1e-6);
        for x in [[0.0], [2.0]] {
            let mut c = [0.0];
            let bias = f.contributions(&x, &mut c);
            assert!((bias + c[0] - f.score(&x)).abs() < 1e-6);
        }
        assert_eq!((f.trees(), f.max_depth()), (2, 1));
        // A missing feature reads as 0; an empty forest scores 0.
        assert!((f.score(&[]) - 0.125).abs() < 1e-6);
        assert!(Forest { nodes: &[], roots: &[] }.score(&[1.0]).abs() < f32::EPSILON);
    }

    #[test]
    fn lockstep_scores_equal_tree_by_tree_scores_bit_for_bit() {
        // 19 trees (two full lanes of 8 and a partial one) of uneven depth.
        let mut rng = rng::Rng::new(7);
        let x: Vec<Vec<f32>> = (0..600)
            .map(|_| {
                (0..5)
                    .map(|_| f32::from(u16::try_from(rng.next_u64() % 1000).unwrap_or(0)) / 10.0)
                    .collect()
            })
            .collect();
        let y: Vec<bool> = x.iter().map(|r| r[0] + r[1] * 0.5 > 60.0 || r[3] < 5.0).collect();
        let owned = train::train(&x, &y, &train::Params { trees: 19, ..Default::default() }).forest;
        let f = owned.as_forest();
        assert!(f.max_depth() >= 3, "{}", f.max_depth());
        let packed = Packed::new(&f, 5);
        for r in x.iter().take(300) {
            assert_eq!(f.score(r).to_bits(), packed.score(r).to_bits(), "{r:?}");
        }
        // Inputs shorter than the features read as 0, as in `Forest::score`.
        let short = Packed::new(&f, 2);
        for r in x.iter().take(100) {
            let cut = [r[0], r[1]];
            assert_eq!(f.score(&cut).to_bits(), short.score(&cut).to_bits());
        }
        let toy = forest();
        let p = Packed::new(&toy.as_forest(), 1);
        for v in [0.0, 1.0, 2.0] {
            assert_eq!(p.score(&[v]).to_bits(), toy.as_forest().score(&[v]).to_bits());
        }
        assert!(
            Packed::new(&Forest { nodes: &[], roots: &[] }, 1).score(&[1.0]).abs() < f32::EPSILON
        );
    }
}
