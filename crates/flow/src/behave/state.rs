//! Bounded long-window state for behaviours: an LRU map that counts what it had to forget,
//! window-resetting counters and approximate distinct counts (`HyperLogLog++`).

use foldhash::quality::{FixedState, RandomState};
use std::hash::{BuildHasher, Hash};

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};

use super::StateStats;
use crate::lru::LruMap;

/// At most `capacity` entries; the least recently touched one makes room, and is counted.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: LruMap<K, V>,
    evicted: u64,
}

impl<K: Hash + Eq + Copy, V> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { map: LruMap::new(capacity.max(1)), evicted: 0 }
    }

    /// The entry of `key`, made with `make` when missing (evicting the oldest when full).
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let (v, old) = self.map.get_or_insert_with(key, make);
        if old.is_some() {
            self.evicted += 1;
        }
        v
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    pub fn peek(&self, key: &K) -> Option<&V> {
        self.map.peek(key)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    pub fn stats(&self) -> StateStats {
        StateStats {
            entries: self.map.len() as u64,
            capacity: self.map.capacity() as u64,
            evicted: self.evicted,
        }
    }
}

/// A count over a tumbling window: it starts again when the window since its first event has
/// passed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tumbling {
    pub since_ns: u64,
    pub count: u64,
}

impl Tumbling {
    /// Adds `n` at `now_ns`; returns the count of the current window.
    pub fn add(&mut self, now_ns: u64, window_ns: u64, n: u64) -> u64 {
        if self.count == 0 || now_ns.saturating_sub(self.since_ns) > window_ns {
            *self = Self { since_ns: now_ns, count: 0 };
        }
        self.count += n;
        self.count
    }

    pub fn get(&self, now_ns: u64, window_ns: u64) -> u64 {
        if now_ns.saturating_sub(self.since_ns) > window_ns { 0 } else { self.count }
    }
}

/// `HyperLogLog++` precision: 2^10 registers, about 3 % standard error.
const PRECISION: u8 = 10;
/// Values counted exactly before a set turns into a `HyperLogLog++` sketch: thresholds sit
/// below this, so verdicts near them do not depend on the sketch's error.
const EXACT: usize = 256;
/// A sketch's estimate is recomputed after this many insertions.
const REESTIMATE: u32 = 64;

/// Distinct values over a tumbling window, in bounded memory whatever their number: exact up
/// to [`EXACT`] values, then a `HyperLogLog++` sketch.
#[derive(Default)]
pub struct Distinct {
    since_ns: u64,
    exact: Vec<u64>,
    hll: Option<Box<HyperLogLogPlus<u64, FixedState>>>,
    estimate: u64,
    pending: u32,
}

impl std::fmt::Debug for Distinct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distinct")
            .field("since_ns", &self.since_ns)
            .field("exact", &self.exact.len())
            .field("sketch", &self.hll.is_some())
            .field("estimate", &self.estimate)
            .field("pending", &self.pending)
            .finish()
    }
}

impl Distinct {
    /// Adds a value (hashed by the caller) at `now_ns`.
    pub fn insert(&mut self, value: u64, now_ns: u64, window_ns: u64) {
        if now_ns.saturating_sub(self.since_ns) > window_ns
            || (self.exact.is_empty() && self.hll.is_none())
        {
            *self = Self { since_ns: now_ns, ..Self::default() };
        }
        if let Some(h) = &mut self.hll {
            h.insert(&value);
            self.pending += 1;
            if self.pending >= REESTIMATE {
                self.reestimate();
            }
            return;
        }
        if self.exact.contains(&value) {
            return;
        }
        self.exact.push(value);
        if self.exact.len() > EXACT
            && let Ok(mut h) = HyperLogLogPlus::new(PRECISION, seeded(1))
        {
            for v in &self.exact {
                h.insert(v);
            }
            self.exact = Vec::new();
            self.hll = Some(Box::new(h));
            self.reestimate();
        }
    }

    fn reestimate(&mut self) {
        if let Some(h) = &mut self.hll {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "an estimate ≥ 0"
            )]
            let n = h.count().round() as u64;
            // Never below what was counted exactly.
            self.estimate = n.max(EXACT as u64 + 1);
        }
        self.pending = 0;
    }

    /// The number of distinct values of the current window (estimated once past [`EXACT`]).
    pub fn count(&mut self, now_ns: u64, window_ns: u64) -> u64 {
        if now_ns.saturating_sub(self.since_ns) > window_ns {
            return 0;
        }
        if self.hll.is_some() {
            if self.pending > 0 {
                self.reestimate();
            }
            self.estimate
        } else {
            self.exact.len() as u64
        }
    }
}

static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// The seed of the behaviours' hashes (distinct counts): random per process, so that an
/// attacker cannot choose addresses or names whose hashes collide and count as one, unless
/// [`fix_hash_seed`] came first.
fn seed() -> u64 {
    *SEED.get_or_init(|| RandomState::default().hash_one(0x6d6c_6400_u64))
}

/// Fixes the seed of the behaviours' hashes for this process, so that running the same
/// captures gives the same distinct-count estimates and so the same model inputs (training
/// is reproducible). Call before any engine runs; returns false when a different seed is
/// already in use.
pub fn fix_hash_seed(seed: u64) -> bool {
    SEED.set(seed).is_ok() || SEED.get() == Some(&seed)
}

fn seeded(n: u64) -> FixedState {
    FixedState::with_seed(seed().wrapping_add(n))
}

/// A stable 64-bit hash of a value (within one process).
pub fn hash64(v: impl Hash) -> u64 {
    static STATE: std::sync::OnceLock<FixedState> = std::sync::OnceLock::new();
    STATE.get_or_init(|| seeded(0)).hash_one(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn bounded_counts_evictions() {
        let mut b: Bounded<u32, u32> = Bounded::new(2);
        for k in 0..5 {
            *b.entry(k, || 0) += 1;
        }
        assert_eq!(b.stats(), StateStats { entries: 2, capacity: 2, evicted: 3 });
        assert!(b.peek(&4).is_some() && b.peek(&0).is_none());
    }

    #[test]
    fn tumbling_restarts_after_its_window() {
        let mut t = Tumbling::default();
        assert_eq!(t.add(10 * S, 60 * S, 1), 1);
        assert_eq!(t.add(69 * S, 60 * S, 2), 3);
        assert_eq!(t.get(70 * S, 60 * S), 3);
        assert_eq!(t.get(71 * S, 60 * S), 0);
        assert_eq!(t.add(71 * S, 60 * S, 1), 1);
    }

    #[test]
    fn distinct_is_exact_when_small_and_close_when_large() {
        let mut d = Distinct::default();
        for v in [1, 2, 3, 2, 1] {
            d.insert(v, S, 60 * S);
        }
        assert_eq!(d.count(S, 60 * S), 3);
        for v in 0..100_000u64 {
            d.insert(hash64(v), 2 * S, 60 * S);
        }
        // 2^10 registers: a standard error of 1.04 / 32 = 3.25 %; hashes are seeded per
        // process, so allow 4.6 standard errors (a failure once in ~200,000 runs).
        let n = d.count(2 * S, 60 * S);
        assert!((85_000..=115_000).contains(&n), "{n}");
        assert_eq!(d.count(100 * S, 60 * S), 0, "the window passed");
        d.insert(7, 100 * S, 60 * S);
        assert_eq!(d.count(100 * S, 60 * S), 1);
    }
}
