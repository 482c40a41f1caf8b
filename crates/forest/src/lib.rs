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
}
