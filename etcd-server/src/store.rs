//! The MVCC key-value store behind the etcd API, persisted in SQLite (WAL, synchronous FULL).
//!
//! Every change is a row of `history` keyed by (revision, sub-revision), written in the same
//! SQLite transaction as the new store revision, so an acknowledged write survives a crash and
//! revisions never go backwards across restarts. The current state is an in-memory map
//! rebuilt from `history` at open (the store holds configuration and registrations: thousands
//! of keys, not millions). Reads at an older revision, and watch replay, read `history`.
//!
//! Revision rules are etcd's: a put or a delete that removes something, and a txn with at least
//! one such operation, take the next revision; the operations of one txn share it with
//! increasing sub-revisions; `version` counts puts since the key was (re)created;
//! `create_revision` is the revision of that creation; a delete of nothing changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

/// Why a store operation failed. `crate::status` maps each to etcd's gRPC code and message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("required revision {0} is a future revision")]
    FutureRevision(i64),
    #[error("required revision {0} has been compacted")]
    Compacted(i64),
    #[error("key not found")]
    KeyNotFound,
    #[error("requested lease {0} not found")]
    LeaseNotFound(i64),
    #[error("lease {0} already exists")]
    LeaseExists(i64),
    #[error("duplicate key given in txn request")]
    DuplicateKey,
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A key's state at one revision (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// One change, as watchers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `true` for a delete; `kv` then holds the key and the deletion's revision.
    pub deleted: bool,
    pub kv: KeyValue,
    /// The key's state before the change, when history still holds it.
    pub prev: Option<KeyValue>,
}

/// A key range in etcd's form: `end` empty is the single key `key`; `end == [0]` is every key
/// from `key` on; otherwise `[key, end)`. `key == [0]` with `end == [0]` is every key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    pub key: Vec<u8>,
    pub end: Vec<u8>,
}

impl KeyRange {
    pub fn new(key: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into(), end: end.into() }
    }

    pub fn contains(&self, k: &[u8]) -> bool {
        if self.end.is_empty() {
            return k == self.key.as_slice();
        }
        let from_start = self.key.as_slice() == [0];
        (from_start || k >= self.key.as_slice()) && (self.end == [0] || k < self.end.as_slice())
    }

    fn is_single(&self) -> bool {
        self.end.is_empty()
    }
}

/// One operation of a txn, applied in order and atomically by [`Store::write`]. A `Put`'s
/// `value: None` keeps the key's value (`ignore_value`), `lease: None` its lease
/// (`ignore_lease`). A `Range` at revision 0 sees the txn's earlier operations.
#[derive(Debug, Clone)]
pub enum Write {
    Put { key: Vec<u8>, value: Option<Vec<u8>>, lease: Option<i64> },
    Delete(KeyRange),
    Range { range: KeyRange, revision: i64 },
}

/// What one applied operation did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The key's state before (puts), the deleted keys' states (deletes) or the keys read
    /// (ranges).
    pub kvs: Vec<KeyValue>,
    pub deleted: i64,
    /// The revision a range read at: the one before the write, or the write's own once an
    /// earlier operation of it changed something (as etcd reports it).
    pub revision: i64,
}

pub struct Store {
    db: Connection,
    rev: i64,
    compact_rev: i64,
    kvs: BTreeMap<Vec<u8>, KeyValue>,
    /// Lease id → TTL in seconds (expiry times are the server's: they restart on open, as
    /// etcd's do on a leader change).
    leases: HashMap<i64, i64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("rev", &self.rev)
            .field("keys", &self.kvs.len())
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history(
  rev INTEGER NOT NULL, sub INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
  create_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL,
  deleted INTEGER NOT NULL, PRIMARY KEY(rev, sub)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_by_key ON history(key, rev, sub);
CREATE TABLE IF NOT EXISTS leases(id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL);
";

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(SCHEMA)?;
        let meta = |name: &str| -> Result<i64> {
            Ok(db
                .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get(0))
                .optional()?
                .unwrap_or(0))
        };
        // etcd starts at revision 1.
        let rev = meta("rev")?.max(1);
        let compact_rev = meta("compact_rev")?;
        let mut kvs = BTreeMap::new();
        {
            let mut q = db.prepare(
                "SELECT key, value, create_rev, rev, version, lease, deleted FROM history ORDER BY rev, sub",
            )?;
            let rows = q.query_map([], |r| Ok((row_kv(r)?, r.get::<_, bool>(6)?)))?;
            for row in rows {
                let (kv, deleted) = row?;
                if deleted {
                    kvs.remove(&kv.key);
                } else {
                    kvs.insert(kv.key.clone(), kv);
                }
            }
        }
        let leases = {
            let mut q = db.prepare("SELECT id, ttl FROM leases")?;
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        Ok(Self { db, rev, compact_rev, kvs, leases })
    }

    pub fn revision(&self) -> i64 {
        self.rev
    }

    /// Keys in the current revision.
    pub fn key_count(&self) -> usize {
        self.kvs.len()
    }

    pub fn compact_revision(&self) -> i64 {
        self.compact_rev
    }

    /// The keys in `range` at `revision` (0: now), in key order.
    pub fn range(&self, range: &KeyRange, revision: i64) -> Result<Vec<KeyValue>> {
        if revision > self.rev {
            return Err(StoreError::FutureRevision(revision));
        }
        if revision > 0 && revision < self.compact_rev {
            return Err(StoreError::Compacted(revision));
        }
        if revision <= 0 || revision == self.rev {
            return Ok(self.current(range).cloned().collect());
        }
        // An older revision: the last change of each key at or before it.
        let mut q = self.db.prepare_cached(
            "SELECT key, value, create_rev, rev, version, lease, deleted FROM history
             WHERE rev <= ?1 ORDER BY key, rev, sub",
        )?;
        let mut at: BTreeMap<Vec<u8>, Option<KeyValue>> = BTreeMap::new();
        let rows = q.query_map([revision], |r| Ok((row_kv(r)?, r.get::<_, bool>(6)?)))?;
        for row in rows {
            let (kv, deleted) = row?;
            if range.contains(&kv.key) {
                at.insert(kv.key.clone(), (!deleted).then_some(kv));
            }
        }
        Ok(at.into_values().flatten().collect())
    }

    fn current<'a>(&'a self, range: &'a KeyRange) -> impl Iterator<Item = &'a KeyValue> + 'a {
        let single = range.is_single().then(|| self.kvs.get(&range.key)).flatten();
        let many = (!range.is_single()).then(|| {
            let from = if range.key == [0] { Vec::new() } else { range.key.clone() };
            self.kvs.range(from..).map(|(_, v)| v).take_while(|kv| range.contains(&kv.key))
        });
        single.into_iter().chain(many.into_iter().flatten())
    }

    /// The current state of one key.
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.kvs.get(key)
    }

    /// Refuses, before anything is applied, what etcd refuses in a txn.
    fn validate(&self, writes: &[Write]) -> Result<()> {
        let mut put_keys = std::collections::HashSet::new();
        for w in writes {
            if let Write::Range { revision, .. } = w {
                if *revision > self.rev {
                    return Err(StoreError::FutureRevision(*revision));
                }
                if *revision > 0 && *revision < self.compact_rev {
                    return Err(StoreError::Compacted(*revision));
                }
            }
            if let Write::Put { key, value, lease } = w {
                if !put_keys.insert(key.clone()) {
                    return Err(StoreError::DuplicateKey);
                }
                let existing = self.kvs.get(key);
                if (value.is_none() || lease.is_none()) && existing.is_none() {
                    return Err(StoreError::KeyNotFound);
                }
                if let Some(l) = lease
                    && *l != 0
                    && !self.leases.contains_key(l)
                {
                    return Err(StoreError::LeaseNotFound(*l));
                }
            }
        }
        // A put and a delete of one key are refused (or not) by the KV service, which checks
        // them as etcd does, nested txns included.
        Ok(())
    }

    /// Applies `writes` atomically at the next revision (or at none, when nothing changes).
    /// Returns the revision after and what each write did, plus the events for watchers.
    pub fn write(&mut self, writes: &[Write]) -> Result<(i64, Vec<Applied>, Vec<Event>)> {
        self.validate(writes)?;
        let rev = self.rev + 1;
        let mut sub = 0i64;
        let mut applied = Vec::with_capacity(writes.len());
        let mut events = Vec::new();
        let mut rows: Vec<(i64, KeyValue, bool)> = Vec::new();
        for w in writes {
            match w {
                Write::Put { key, value, lease } => {
                    let prev = self.kvs.get(key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone().unwrap_or_else(|| {
                            prev.as_ref().map(|p| p.value.clone()).unwrap_or_default()
                        }),
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        lease: lease.unwrap_or_else(|| prev.as_ref().map_or(0, |p| p.lease)),
                    };
                    rows.push((sub, kv.clone(), false));
                    sub += 1;
                    events.push(Event { deleted: false, kv: kv.clone(), prev: prev.clone() });
                    self.kvs.insert(key.clone(), kv);
                    applied.push(Applied { kvs: prev.into_iter().collect(), ..Applied::default() });
                }
                Write::Delete(range) => {
                    let gone: Vec<KeyValue> = self.current(range).cloned().collect();
                    for kv in &gone {
                        self.kvs.remove(&kv.key);
                        let tomb = KeyValue {
                            key: kv.key.clone(),
                            value: Vec::new(),
                            create_revision: 0,
                            mod_revision: rev,
                            version: 0,
                            lease: 0,
                        };
                        rows.push((sub, tomb.clone(), true));
                        sub += 1;
                        events.push(Event { deleted: true, kv: tomb, prev: Some(kv.clone()) });
                    }
                    let deleted = i64::try_from(gone.len()).unwrap_or(i64::MAX);
                    applied.push(Applied { kvs: gone, deleted, ..Applied::default() });
                }
                Write::Range { range, revision } => {
                    let kvs = if *revision <= 0 || *revision >= self.rev {
                        self.current(range).cloned().collect()
                    } else {
                        self.range(range, *revision)?
                    };
                    let revision = if rows.is_empty() { self.rev } else { rev };
                    applied.push(Applied { kvs, deleted: 0, revision });
                }
            }
        }
        if rows.is_empty() {
            return Ok((self.rev, applied, events));
        }
        let tx = self.db.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO history(rev, sub, key, value, create_rev, version, lease, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (sub, kv, deleted) in &rows {
                ins.execute(params![
                    rev,
                    sub,
                    kv.key,
                    kv.value,
                    kv.create_revision,
                    kv.version,
                    kv.lease,
                    deleted
                ])?;
            }
            tx.execute("INSERT OR REPLACE INTO meta(name, value) VALUES ('rev', ?1)", [rev])?;
        }
        tx.commit()?;
        self.rev = rev;
        Ok((rev, applied, events))
    }

    /// The events with revision ≥ `from` on keys in `range`, in order; for watch replay.
    pub fn events_since(&self, from: i64, range: &KeyRange) -> Result<Vec<Event>> {
        if from > 0 && from < self.compact_rev {
            return Err(StoreError::Compacted(from));
        }
        let mut q = self.db.prepare_cached(
            "SELECT key, value, create_rev, rev, version, lease, deleted FROM history
             WHERE rev >= ?1 ORDER BY rev, sub",
        )?;
        let rows = q.query_map([from], |r| Ok((row_kv(r)?, r.get::<_, bool>(6)?)))?;
        let mut last: HashMap<Vec<u8>, Option<KeyValue>> = HashMap::new();
        let mut out = Vec::new();
        for row in rows {
            let (kv, deleted) = row?;
            if !range.contains(&kv.key) {
                continue;
            }
            let prev = match last.get(&kv.key) {
                Some(p) => p.clone(),
                None => self.state_before(&kv.key, from)?,
            };
            last.insert(kv.key.clone(), (!deleted).then(|| kv.clone()));
            out.push(Event { deleted, kv, prev });
        }
        Ok(out)
    }

    /// The state of `key` just before revision `rev`, from history.
    fn state_before(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>> {
        let mut q = self.db.prepare_cached(
            "SELECT key, value, create_rev, rev, version, lease, deleted FROM history
             WHERE key = ?1 AND rev < ?2 ORDER BY rev DESC, sub DESC LIMIT 1",
        )?;
        let row = q
            .query_row(params![key, rev], |r| Ok((row_kv(r)?, r.get::<_, bool>(6)?)))
            .optional()?;
        Ok(row.and_then(|(kv, deleted)| (!deleted).then_some(kv)))
    }

    /// Forgets the history before `revision`, keeping each key's state at it.
    pub fn compact(&mut self, revision: i64) -> Result<()> {
        if revision > self.rev {
            return Err(StoreError::FutureRevision(revision));
        }
        if revision <= self.compact_rev {
            return Err(StoreError::Compacted(revision));
        }
        let tx = self.db.transaction()?;
        // A row before `revision` goes when a later row of its key is also at or before it,
        // and tombstones at or before it go too.
        tx.execute(
            "DELETE FROM history WHERE rev < ?1 AND EXISTS (
               SELECT 1 FROM history later WHERE later.key = history.key
                 AND (later.rev, later.sub) > (history.rev, history.sub) AND later.rev <= ?1)",
            [revision],
        )?;
        tx.execute("DELETE FROM history WHERE rev <= ?1 AND deleted = 1", [revision])?;
        tx.execute(
            "INSERT OR REPLACE INTO meta(name, value) VALUES ('compact_rev', ?1)",
            [revision],
        )?;
        tx.commit()?;
        self.compact_rev = revision;
        Ok(())
    }

    /// The database's size and the part of it in use, in bytes.
    pub fn db_size(&self) -> Result<(i64, i64)> {
        let pragma = |name: &str| -> Result<i64> {
            Ok(self.db.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
        };
        let (pages, free, size) =
            (pragma("page_count")?, pragma("freelist_count")?, pragma("page_size")?);
        Ok((pages * size, (pages - free) * size))
    }

    pub fn lease_grant(&mut self, id: i64, ttl: i64) -> Result<()> {
        if self.leases.contains_key(&id) {
            return Err(StoreError::LeaseExists(id));
        }
        self.db.execute("INSERT INTO leases(id, ttl) VALUES (?1, ?2)", [id, ttl])?;
        self.leases.insert(id, ttl);
        Ok(())
    }

    pub fn lease_ttl(&self, id: i64) -> Option<i64> {
        self.leases.get(&id).copied()
    }

    pub fn leases(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.leases.iter().map(|(k, v)| (*k, *v))
    }

    /// The keys attached to lease `id`.
    pub fn lease_keys(&self, id: i64) -> Vec<Vec<u8>> {
        self.kvs.values().filter(|kv| kv.lease == id).map(|kv| kv.key.clone()).collect()
    }

    /// Revokes lease `id`: its keys are deleted in one revision. Returns the revision after
    /// and the events.
    pub fn lease_revoke(&mut self, id: i64) -> Result<(i64, Vec<Event>)> {
        if !self.leases.contains_key(&id) {
            return Err(StoreError::LeaseNotFound(id));
        }
        let deletes: Vec<Write> = self
            .lease_keys(id)
            .into_iter()
            .map(|k| Write::Delete(KeyRange::new(k, Vec::new())))
            .collect();
        let (rev, _, events) = self.write(&deletes)?;
        self.db.execute("DELETE FROM leases WHERE id = ?1", [id])?;
        self.leases.remove(&id);
        Ok((rev, events))
    }
}

fn row_kv(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: r.get(0)?,
        value: r.get(1)?,
        create_revision: r.get(2)?,
        mod_revision: r.get(3)?,
        version: r.get(4)?,
        lease: r.get(5)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Write {
        Write::Put { key: k.into(), value: Some(v.into()), lease: Some(0) }
    }

    fn del(k: &str, end: &str) -> Write {
        Write::Delete(KeyRange::new(k, end))
    }

    fn all() -> KeyRange {
        KeyRange::new([0], [0])
    }

    #[test]
    fn revisions_versions_and_create_revisions_follow_etcd() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        assert_eq!(s.revision(), 1, "etcd starts at revision 1");
        assert_eq!(s.write(&[put("a", "1")]).unwrap().0, 2);
        assert_eq!(s.write(&[put("a", "2")]).unwrap().0, 3);
        let a = s.get(b"a").unwrap().clone();
        assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 3, 2));
        // A delete of nothing changes nothing.
        assert_eq!(s.write(&[del("zz", "")]).unwrap().0, 3);
        assert_eq!(s.write(&[del("a", "")]).unwrap().0, 4);
        s.write(&[put("a", "3")]).unwrap();
        let a = s.get(b"a").unwrap();
        assert_eq!((a.create_revision, a.mod_revision, a.version), (5, 5, 1), "recreated");
        // One txn, one revision, increasing sub-revisions.
        let (rev, _, events) = s.write(&[put("b", "1"), put("c", "1"), del("a", "")]).unwrap();
        assert_eq!(rev, 6);
        assert_eq!(events.len(), 3);
        assert!(matches!(s.write(&[put("b", "1"), put("b", "2")]), Err(StoreError::DuplicateKey)));
        assert_eq!(s.revision(), 6, "a refused txn applies nothing");
        assert_eq!(s.get(b"b").unwrap().value, b"1");
        // A range in a txn sees the txn's earlier operations; reads alone take no revision.
        let read = Write::Range { range: KeyRange::new("b", ""), revision: 0 };
        let (rev, applied, _) = s.write(&[put("b", "9"), read.clone()]).unwrap();
        assert_eq!((rev, applied[1].kvs[0].value.as_slice()), (7, &b"9"[..]));
        assert_eq!(s.write(&[read]).unwrap().0, 7);
    }

    #[test]
    fn ranges_at_old_revisions_and_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        s.write(&[put("k1", "a")]).unwrap(); // 2
        s.write(&[put("k2", "b")]).unwrap(); // 3
        s.write(&[put("k1", "c")]).unwrap(); // 4
        s.write(&[del("k2", "")]).unwrap(); // 5
        let vals = |rev| -> Vec<(String, String)> {
            s.range(&KeyRange::new("k", "l"), rev)
                .unwrap()
                .into_iter()
                .map(|kv| {
                    (String::from_utf8(kv.key).unwrap(), String::from_utf8(kv.value).unwrap())
                })
                .collect()
        };
        assert_eq!(vals(3), [("k1".into(), "a".into()), ("k2".into(), "b".into())]);
        assert_eq!(vals(4), [("k1".into(), "c".into()), ("k2".into(), "b".into())]);
        assert_eq!(vals(0), [("k1".into(), "c".into())]);
        assert!(matches!(s.range(&all(), 6), Err(StoreError::FutureRevision(6))));
        s.compact(4).unwrap();
        assert!(matches!(s.range(&all(), 3), Err(StoreError::Compacted(3))));
        assert_eq!(s.range(&KeyRange::new("k", "l"), 4).unwrap().len(), 2, "state at 4 kept");
        assert!(matches!(s.events_since(3, &all()), Err(StoreError::Compacted(3))));
        assert_eq!(s.events_since(4, &all()).unwrap().len(), 2, "k1 put at 4, k2 deleted at 5");
        assert!(matches!(s.compact(4), Err(StoreError::Compacted(4))));
    }

    #[test]
    fn state_and_revision_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let mut s = Store::open(&path).unwrap();
            s.lease_grant(7, 10).unwrap();
            s.write(&[Write::Put { key: "l".into(), value: Some("x".into()), lease: Some(7) }])
                .unwrap();
            s.write(&[put("a", "1"), put("b", "2")]).unwrap();
            s.write(&[del("b", "")]).unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.revision(), 4);
        assert_eq!(s.range(&all(), 0).unwrap().len(), 2);
        assert_eq!(s.lease_ttl(7), Some(10));
        let (rev, events) = s.lease_revoke(7).unwrap();
        assert_eq!((rev, events.len()), (5, 1), "a lease's keys go in one revision");
        assert!(s.get(b"l").is_none());
        assert!(matches!(s.lease_revoke(7), Err(StoreError::LeaseNotFound(7))));
    }

    #[test]
    fn put_options_ignore_value_and_lease() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db")).unwrap();
        let keep_value = Write::Put { key: "a".into(), value: None, lease: Some(0) };
        assert!(matches!(s.write(std::slice::from_ref(&keep_value)), Err(StoreError::KeyNotFound)));
        let bad_lease = Write::Put { key: "a".into(), value: Some("v".into()), lease: Some(9) };
        assert!(matches!(s.write(&[bad_lease]), Err(StoreError::LeaseNotFound(9))));
        s.lease_grant(9, 5).unwrap();
        s.write(&[Write::Put { key: "a".into(), value: Some("v".into()), lease: Some(9) }])
            .unwrap();
        s.write(&[Write::Put { key: "a".into(), value: Some("w".into()), lease: None }]).unwrap();
        assert_eq!(s.get(b"a").unwrap().lease, 9, "ignore_lease keeps the lease");
        s.write(&[keep_value]).unwrap();
        let a = s.get(b"a").unwrap();
        assert_eq!((a.value.as_slice(), a.lease, a.version), (&b"w"[..], 0, 3));
    }

    #[test]
    fn key_ranges_follow_etcd() {
        assert!(KeyRange::new("a", "").contains(b"a"));
        assert!(!KeyRange::new("a", "").contains(b"ab"));
        assert!(KeyRange::new("a", "b").contains(b"azz"));
        assert!(!KeyRange::new("a", "b").contains(b"b"));
        assert!(KeyRange::new("m", [0]).contains(b"zzz"));
        assert!(!KeyRange::new("m", [0]).contains(b"a"));
        assert!(all().contains(b""));
        assert!(all().contains(b"anything"));
    }
}
