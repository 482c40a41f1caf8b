//! A bounded map with least-recently-used order: O(1) lookup, touch, insert and removal of
//! the oldest entry. Entries live in a slab linked in recency order by indices, so the memory
//! of a full map is fixed and no per-entry allocation happens after the slab has grown. The
//! slab's address space is reserved up front (pages become resident only as entries arrive),
//! so it never moves its entries to grow.
//!
//! The index hashes with foldhash seeded at random per map: an attacker who cannot read the
//! process's memory cannot aim packets at one bucket, at a fraction of `SipHash`'s cost.

use std::collections::HashMap;
use std::hash::Hash;

type Hasher = foldhash::quality::RandomState;

/// Slots reserved up front at most (a larger map still grows past this, by doubling).
const RESERVE_MAX: usize = 1 << 20;

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<K, V> {
    key: K,
    value: V,
    /// Towards the most recent entry.
    newer: u32,
    /// Towards the oldest entry.
    older: u32,
}

/// A map holding at most `capacity` entries, in recency order.
#[derive(Debug)]
pub struct LruMap<K, V> {
    index: HashMap<K, u32, Hasher>,
    slots: Vec<Option<Slot<K, V>>>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Copy, V> LruMap<K, V> {
    /// An empty map for at most `capacity` (≥ 1) entries; memory grows as entries arrive.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        Self {
            index: HashMap::default(),
            slots: Vec::with_capacity(capacity.min(RESERVE_MAX)),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.index.len() >= self.capacity
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The value for `key`, made the most recent.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        self.unlink(i);
        self.link_newest(i);
        self.slot_mut(i).map(|s| &mut s.value)
    }

    /// The value for `key`, made the most recent; inserted from `make` when absent (removing
    /// the oldest entry first when full, returned as the second element).
    pub fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
    ) -> (&mut V, Option<(K, V)>) {
        let (i, evicted) = if let Some(&i) = self.index.get(&key) {
            self.unlink(i);
            self.link_newest(i);
            (i, None)
        } else {
            let evicted = self.insert_new(key, make());
            (self.newest, evicted)
        };
        let slot = self.slots[i as usize].as_mut().expect("linked slots are occupied");
        (&mut slot.value, evicted)
    }

    /// The value for `key` without changing the order.
    pub fn peek(&self, key: &K) -> Option<&V> {
        let i = *self.index.get(key)?;
        self.slots[i as usize].as_ref().map(|s| &s.value)
    }

    /// Inserts `key` as the most recent entry. When the map is full the oldest entry is
    /// removed first and returned. The caller must know `key` is absent.
    pub fn insert_new(&mut self, key: K, value: V) -> Option<(K, V)> {
        debug_assert!(!self.index.contains_key(&key));
        let evicted = if self.is_full() { self.pop_oldest() } else { None };
        let slot = Slot { key, value, newer: NIL, older: NIL };
        let i = if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(slot);
            i
        } else {
            self.slots.push(Some(slot));
            u32::try_from(self.slots.len() - 1).unwrap_or(NIL - 1)
        };
        self.index.insert(key, i);
        self.link_newest(i);
        evicted
    }

    /// The oldest entry, if any.
    pub fn oldest(&self) -> Option<(&K, &V)> {
        self.slots.get(self.oldest as usize)?.as_ref().map(|s| (&s.key, &s.value))
    }

    /// Removes and returns the oldest entry.
    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let i = self.oldest;
        if i == NIL {
            return None;
        }
        self.take(i)
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = *self.index.get(key)?;
        self.take(i).map(|(_, v)| v)
    }

    /// Removes every entry, oldest first, handing each to `f`.
    pub fn drain_oldest_first(&mut self, mut f: impl FnMut(K, V)) {
        while let Some((k, v)) = self.pop_oldest() {
            f(k, v);
        }
    }

    /// Entries from newest to oldest.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let mut i = self.newest;
        std::iter::from_fn(move || {
            let s = self.slots.get(i as usize)?.as_ref()?;
            i = s.older;
            Some((&s.key, &s.value))
        })
    }

    fn take(&mut self, i: u32) -> Option<(K, V)> {
        self.unlink(i);
        let slot = self.slots.get_mut(i as usize)?.take()?;
        self.index.remove(&slot.key);
        self.free.push(i);
        Some((slot.key, slot.value))
    }

    fn slot_mut(&mut self, i: u32) -> Option<&mut Slot<K, V>> {
        self.slots.get_mut(i as usize)?.as_mut()
    }

    fn unlink(&mut self, i: u32) {
        let Some(s) = self.slot_mut(i) else { return };
        let (newer, older) = (s.newer, s.older);
        s.newer = NIL;
        s.older = NIL;
        match self.slot_mut(newer) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
        match self.slot_mut(older) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
    }

    fn link_newest(&mut self, i: u32) {
        let prev = self.newest;
        if let Some(s) = self.slot_mut(i) {
            s.older = prev;
            s.newer = NIL;
        }
        match self.slot_mut(prev) {
            Some(p) => p.newer = i,
            None => self.oldest = i,
        }
        self.newest = i;
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::ignored_unit_patterns,
    reason = "exact expected values in tests"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut m = LruMap::new(3);
        for k in 1..=3 {
            assert!(m.insert_new(k, k * 10).is_none());
        }
        assert_eq!(m.get_mut(&1), Some(&mut 10)); // 1 becomes newest: order 2, 3, 1
        assert_eq!(m.insert_new(4, 40), Some((2, 20)));
        assert_eq!(m.oldest(), Some((&3, &30)));
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![4, 1, 3]);
        assert_eq!(m.remove(&1), Some(10));
        assert_eq!(m.len(), 2);
        let mut drained = vec![];
        m.drain_oldest_first(|k, _| drained.push(k));
        assert_eq!(drained, vec![3, 4]);
        assert!(m.is_empty());
    }

    #[test]
    fn get_or_insert_with_finds_or_makes_room() {
        let mut m = LruMap::new(2);
        assert_eq!(m.get_or_insert_with(1, || 10), (&mut 10, None));
        assert_eq!(m.get_or_insert_with(2, || 20), (&mut 20, None));
        assert_eq!(m.get_or_insert_with(1, || 0), (&mut 10, None), "present: found, made newest");
        assert_eq!(
            m.get_or_insert_with(3, || 30),
            (&mut 30, Some((2, 20))),
            "full: the oldest made room"
        );
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![3, 1]);
    }

    proptest! {
        /// Against a model: a Vec in recency order.
        #[test]
        fn behaves_like_a_recency_list(ops in proptest::collection::vec((0u8..3, 0u8..12), 0..300)) {
            let mut m = LruMap::new(5);
            let mut model: Vec<u8> = vec![]; // oldest first
            for (op, k) in ops {
                match op {
                    0 => {
                        if model.contains(&k) {
                            prop_assert!(m.get_mut(&k).is_some());
                            model.retain(|x| *x != k);
                        } else {
                            let ev = m.insert_new(k, ());
                            if model.len() == 5 {
                                prop_assert_eq!(ev.map(|e| e.0), Some(model.remove(0)));
                            } else {
                                prop_assert!(ev.is_none());
                            }
                        }
                        model.push(k);
                    }
                    1 => {
                        prop_assert_eq!(m.remove(&k).is_some(), model.contains(&k));
                        model.retain(|x| *x != k);
                    }
                    _ => {
                        prop_assert_eq!(m.pop_oldest().map(|e| e.0), (!model.is_empty()).then(|| model.remove(0)));
                    }
                }
                let order: Vec<u8> = m.iter().map(|(k, _)| *k).collect();
                let mut rev = model.clone();
                rev.reverse();
                prop_assert_eq!(order, rev);
            }
        }
    }
}
