//! The RAG event store (DESIGN §7): every Detection, as its event-log line
//! (`docs/EVENT_SCHEMA.md`), in `SQLite` (WAL) with indexed columns for time, hosts, ports,
//! verdict and scores, its feature vector and a one-sentence description.
//!
//! Writes are idempotent (a detection id is stored once, whatever re-delivers it) and atomic
//! per batch: a batch and the backfill position it reached commit in one transaction, so a
//! crash loses nothing acknowledged and a resumed backfill stores nothing twice.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = mld_eventstore::Store::open(&dir.path().join("events.db")).unwrap();
//! assert_eq!(store.count().unwrap(), 0);
//! let r = store.insert_lines(&["not json"], None).unwrap();
//! assert_eq!((r.inserted, r.rejected.len()), (0, 1));
//! ```

pub mod event;
pub mod fixture;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

pub use event::{DETECTORS, Event, LineError, Verdict};

/// Schema migrations, applied in order; `PRAGMA user_version` is how many have run.
const MIGRATIONS: [&str; 2] = [
    r"
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    detection_id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    sensor_id TEXT NOT NULL,
    detected_at REAL NOT NULL,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL,
    src_ip TEXT NOT NULL,
    src_port INTEGER NOT NULL,
    dst_ip TEXT NOT NULL,
    dst_port INTEGER NOT NULL,
    proto INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    final_score REAL NOT NULL,
    fast_score REAL NOT NULL,
    ml_score REAL NOT NULL,
    ddos REAL NOT NULL,
    ransomware REAL NOT NULL,
    traffic REAL NOT NULL,
    internal REAL NOT NULL,
    authoritative TEXT NOT NULL,
    fast_rules TEXT NOT NULL,
    reasons TEXT NOT NULL,
    file TEXT,
    vector BLOB NOT NULL,
    layout INTEGER NOT NULL,
    description TEXT NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX events_time ON events (last_ts);
CREATE INDEX events_src ON events (src_ip, last_ts);
CREATE INDEX events_dst ON events (dst_ip, last_ts);
CREATE INDEX events_dst_port ON events (dst_port, last_ts);
CREATE INDEX events_verdict ON events (verdict, last_ts);
CREATE INDEX events_score ON events (final_score);
CREATE TABLE sources (
    path TEXT PRIMARY KEY,
    offset INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
",
    // 2: each event points at its summary (the description without addresses, ports and
    // times, see `event::summarize`); summaries carry the text embedding the text index is
    // built from. Rows stored before this migration get theirs in `fill_summaries`.
    r"
CREATE TABLE summaries (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE,
    model TEXT,
    embedding BLOB
);
ALTER TABLE events ADD COLUMN summary_id INTEGER REFERENCES summaries (id);
CREATE INDEX events_summary ON events (summary_id, last_ts);
",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: the event store is locked by another process (waited {waited:?})")]
    Locked { path: PathBuf, waited: Duration },
    #[error("{path}: not an event store or corrupt ({detail})")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: no event store here (run rag-ingester first)")]
    Missing { path: PathBuf },
    #[error(
        "{path}: schema version {found} is newer than this build reads ({known}); upgrade the suite"
    )]
    Newer { path: PathBuf, found: i64, known: usize },
    #[error(
        "{path}: schema version {found} is older than this build reads ({known}); start \
         rag-ingester (or run `rag-ingester backfill`) once to upgrade it"
    )]
    Older { path: PathBuf, found: i64, known: usize },
    #[error("{path}: cannot create its folder: {source}")]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
}

/// How long a writer waits for another's lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What one [`Store::insert_lines`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Inserted {
    pub inserted: usize,
    /// Detection ids already stored (re-delivery).
    pub duplicates: usize,
    /// (index in the batch, why).
    pub rejected: Vec<(usize, LineError)>,
}

/// The event store.
pub struct Store {
    db: Connection,
    path: PathBuf,
    busy: Duration,
}

/// Query filters (all optional; conditions combine with AND, values within one with OR).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Unix seconds; an event is in range when its flow's last packet is.
    pub since: Option<f64>,
    pub until: Option<f64>,
    /// Either endpoint.
    pub hosts: Vec<String>,
    /// Either port.
    pub ports: Vec<u16>,
    pub verdicts: Vec<Verdict>,
    /// Forests ([`DETECTORS`]) that scored the event at 0.5 or more.
    pub detectors: Vec<String>,
    /// Fast rule ids or their prefixes (`scan` matches `scan.ports`).
    pub rules: Vec<String>,
    pub min_score: Option<f64>,
    /// Store ids.
    pub ids: Vec<i64>,
    /// Summary ids (what the text index finds).
    pub summaries: Vec<i64>,
}

const COLUMNS: &str = "id, detection_id, event_id, sensor_id, detected_at, first_ts, last_ts, \
    src_ip, src_port, dst_ip, dst_port, proto, verdict, final_score, fast_score, ml_score, \
    ddos, ransomware, traffic, internal, authoritative, fast_rules, reasons, file, vector, \
    layout, description, coalesce(summary_id, 0)";

impl Store {
    /// Opens (creating it and its folder when missing) the store at `path` for writing and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| Error::Folder { path: path.into(), source })?;
        }
        let db = Connection::open(path).map_err(|e| classify(path, BUSY_TIMEOUT, e))?;
        let mut s = Self { db, path: path.into(), busy: BUSY_TIMEOUT };
        s.setup(true)?;
        Ok(s)
    }

    /// Opens an existing store read-only (the `rag` CLI).
    pub fn open_read_only(path: &Path) -> Result<Self, Error> {
        if !path.exists() {
            return Err(Error::Missing { path: path.into() });
        }
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, BUSY_TIMEOUT, e))?;
        let mut s = Self { db, path: path.into(), busy: BUSY_TIMEOUT };
        s.setup(false)?;
        Ok(s)
    }

    fn setup(&mut self, write: bool) -> Result<(), Error> {
        let path = self.path.clone();
        let err = |e| classify(&path, BUSY_TIMEOUT, e);
        self.db.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let version: i64 =
            self.db.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        let known = MIGRATIONS.len();
        if usize::try_from(version).is_ok_and(|v| v > known) {
            return Err(Error::Newer { path, found: version, known });
        }
        if !write {
            if version == 0 {
                return Err(Error::Missing { path });
            }
            if usize::try_from(version).is_ok_and(|v| v < known) {
                return Err(Error::Older { path, found: version, known });
            }
            return Ok(());
        }
        self.db.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        self.db.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        let tx = self.db.transaction().map_err(err)?;
        let start = usize::try_from(version).unwrap_or(0);
        for (i, m) in MIGRATIONS.iter().enumerate().skip(start) {
            tx.execute_batch(m).map_err(err)?;
            tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(i64::MAX))
                .map_err(err)?;
        }
        if start < 2 {
            fill_summaries(&tx).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// How long to wait for another writer's lock before [`Error::Locked`] (default
    /// [`BUSY_TIMEOUT`]).
    pub fn set_busy_timeout(&mut self, d: Duration) -> Result<(), Error> {
        self.busy = d;
        self.db.busy_timeout(d).map_err(|e| self.err(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        classify(&self.path, self.busy, e)
    }

    /// Stores a batch of event-log lines in one transaction (with `source`, the backfill
    /// position `(file, byte offset)` the batch reaches, saved in the same transaction).
    /// Lines already stored (same detection id) are counted, not stored again; lines that do
    /// not parse are returned, not stored.
    pub fn insert_lines<S: AsRef<str>>(
        &mut self,
        lines: &[S],
        source: Option<(&str, u64)>,
    ) -> Result<Inserted, Error> {
        let mut out = Inserted::default();
        let (path, busy) = (self.path.clone(), self.busy);
        let err = |e| classify(&path, busy, e);
        let tx = self.db.transaction().map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (detection_id, event_id, sensor_id, detected_at, \
                     first_ts, last_ts, src_ip, src_port, dst_ip, dst_port, proto, verdict, \
                     final_score, fast_score, ml_score, ddos, ransomware, traffic, internal, \
                     authoritative, fast_rules, reasons, file, vector, layout, description, line, \
                     summary_id) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                     ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28) \
                     ON CONFLICT (detection_id) DO NOTHING",
                )
                .map_err(err)?;
            for (i, line) in lines.iter().enumerate() {
                let line = line.as_ref().trim_end();
                let e = match event::parse(line) {
                    Ok(e) => e,
                    Err(why) => {
                        out.rejected.push((i, why));
                        continue;
                    }
                };
                let vector: Vec<u8> = e.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                let summary = summary_id(&tx, &event::summarize(&e)).map_err(err)?;
                let n = insert
                    .execute(params![
                        e.detection_id,
                        e.event_id,
                        e.sensor_id,
                        e.detected_at,
                        e.first_ts,
                        e.last_ts,
                        e.src_ip,
                        e.src_port,
                        e.dst_ip,
                        e.dst_port,
                        e.proto,
                        e.verdict.as_str(),
                        e.final_score,
                        e.fast_score,
                        e.ml_score,
                        e.ml_scores[0],
                        e.ml_scores[1],
                        e.ml_scores[2],
                        e.ml_scores[3],
                        e.authoritative,
                        e.fast_rules.join(" "),
                        e.reasons.join("\n"),
                        e.file,
                        vector,
                        e.layout.cast_signed(),
                        e.description,
                        line,
                        summary,
                    ])
                    .map_err(err)?;
                if n == 1 {
                    out.inserted += 1;
                } else {
                    out.duplicates += 1;
                }
            }
            if let Some((file, offset)) = source {
                tx.execute(
                    "INSERT INTO sources (path, offset, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (path) DO UPDATE SET offset = ?2, updated_at = ?3",
                    params![file, offset.cast_signed(), now()],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// The byte offset a backfill of `file` reached (0 when never read).
    pub fn source_offset(&self, file: &str) -> Result<u64, Error> {
        let o: Option<i64> = self
            .db
            .query_row("SELECT offset FROM sources WHERE path = ?1", [file], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(o.map_or(0, i64::cast_unsigned))
    }

    pub fn count(&self) -> Result<u64, Error> {
        let n: i64 = self
            .db
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n.cast_unsigned())
    }

    /// The largest id stored (0 when empty): vector indices compare it with their own.
    pub fn max_id(&self) -> Result<i64, Error> {
        self.db
            .query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Events matching `f`, newest first, at most `limit`.
    pub fn query(&self, f: &Filter, limit: usize) -> Result<Vec<Event>, Error> {
        let mut conds: Vec<String> = vec!["1".into()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |v: rusqlite::types::Value| {
            args.push(v);
            format!("?{}", args.len())
        };
        if let Some(t) = f.since {
            conds.push(format!("last_ts >= {}", arg(t.into())));
        }
        if let Some(t) = f.until {
            conds.push(format!("last_ts < {}", arg(t.into())));
        }
        if let Some(s) = f.min_score {
            conds.push(format!("final_score >= {}", arg(s.into())));
        }
        let any = |parts: Vec<String>| format!("({})", parts.join(" OR "));
        if !f.hosts.is_empty() {
            let parts = f
                .hosts
                .iter()
                .map(|h| {
                    let p = arg(h.clone().into());
                    format!("src_ip = {p} OR dst_ip = {p}")
                })
                .collect();
            conds.push(any(parts));
        }
        if !f.ports.is_empty() {
            let parts = f
                .ports
                .iter()
                .map(|&port| {
                    let p = arg(i64::from(port).into());
                    format!("dst_port = {p} OR src_port = {p}")
                })
                .collect();
            conds.push(any(parts));
        }
        if !f.verdicts.is_empty() {
            let parts = f
                .verdicts
                .iter()
                .map(|v| format!("verdict = {}", arg(v.as_str().to_owned().into())));
            conds.push(any(parts.collect()));
        }
        if !f.detectors.is_empty() {
            // Column names come from DETECTORS, never from the caller.
            let parts = f
                .detectors
                .iter()
                .filter_map(|d| DETECTORS.iter().find(|k| k.eq_ignore_ascii_case(d)))
                .map(|k| format!("{k} >= 0.5"))
                .collect::<Vec<_>>();
            conds.push(any(if parts.is_empty() { vec!["0".into()] } else { parts }));
        }
        if !f.rules.is_empty() {
            let parts = f
                .rules
                .iter()
                .map(|r| {
                    let p = arg(r.clone().into());
                    format!("(' ' || fast_rules || ' ') LIKE '% ' || {p} || '%'")
                })
                .collect();
            conds.push(any(parts));
        }
        if !f.ids.is_empty() {
            let parts = f.ids.iter().map(|&id| format!("id = {}", arg(id.into()))).collect();
            conds.push(any(parts));
        }
        if !f.summaries.is_empty() {
            let parts =
                f.summaries.iter().map(|&id| format!("summary_id = {}", arg(id.into()))).collect();
            conds.push(any(parts));
        }
        let limit = arg(limit_arg(limit));
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE {} ORDER BY last_ts DESC, id DESC LIMIT {limit}",
            conds.join(" AND ")
        );
        let mut st = self.db.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// The stored event-log line of an event.
    pub fn line(&self, id: i64) -> Result<Option<String>, Error> {
        self.db
            .query_row("SELECT line FROM events WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Calls `each` with (id, layout, vector) for every event with id above `after`, in id
    /// order: what vector indices are built from.
    pub fn vectors(&self, after: i64, mut each: impl FnMut(i64, u64, &[f32])) -> Result<(), Error> {
        let mut st = self
            .db
            .prepare("SELECT id, layout, vector FROM events WHERE id > ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([after]).map_err(|e| self.err(e))?;
        let mut v = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = r.get(0).map_err(|e| self.err(e))?;
            let layout: i64 = r.get(1).map_err(|e| self.err(e))?;
            let blob = r.get_ref(2).map_err(|e| self.err(e))?.as_blob().unwrap_or_default();
            v.clear();
            v.extend(floats(blob));
            each(id, layout.cast_unsigned(), &v);
        }
        Ok(())
    }
}

/// The id of a summary text, stored when new.
fn summary_id(tx: &rusqlite::Transaction<'_>, text: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO summaries (text) VALUES (?1) \
         ON CONFLICT (text) DO UPDATE SET text = excluded.text RETURNING id",
    )?
    .query_row([text], |r| r.get(0))
}

/// Gives events stored before migration 2 their summary (from their stored line).
fn fill_summaries(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let todo: Vec<(i64, String)> = tx
        .prepare("SELECT id, line FROM events WHERE summary_id IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, line) in todo {
        // Stored lines parsed when they were stored; one that no longer does keeps no summary.
        let Ok(e) = event::parse(&line) else { continue };
        let s = summary_id(tx, &event::summarize(&e))?;
        tx.execute("UPDATE events SET summary_id = ?1 WHERE id = ?2", [s, id])?;
    }
    Ok(())
}

/// A summary: the description without addresses, ports and times, shared by many events.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub id: i64,
    pub text: String,
    /// The embedding and the model that made it, when one has.
    pub embedding: Option<(String, Vec<f32>)>,
}

impl Store {
    /// The layout and length of the newest event's vector (`None` when empty): the layout a
    /// feature index holds.
    pub fn latest_layout(&self) -> Result<Option<(u64, usize)>, Error> {
        self.db
            .query_row(
                "SELECT layout, length(vector) / 4 FROM events ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    let n: i64 = r.get(1)?;
                    Ok((r.get::<_, i64>(0)?.cast_unsigned(), usize::try_from(n).unwrap_or(0)))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Summaries with id above `after`, in id order.
    pub fn summaries(&self, after: i64) -> Result<Vec<Summary>, Error> {
        let mut st = self
            .db
            .prepare("SELECT id, text, model, embedding FROM summaries WHERE id > ?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        st.query_map([after], |r| {
            let model: Option<String> = r.get(2)?;
            let blob: Option<Vec<u8>> = r.get(3)?;
            Ok(Summary {
                id: r.get(0)?,
                text: r.get(1)?,
                embedding: model.zip(blob).map(|(m, b)| (m, floats(&b).collect())),
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<Result<_, _>>()
        .map_err(|e| self.err(e))
    }

    /// (id, text) of the summaries without an embedding from `model`, in id order.
    pub fn summaries_to_embed(&self, model: &str) -> Result<Vec<(i64, String)>, Error> {
        let mut st = self
            .db
            .prepare(
                "SELECT id, text FROM summaries WHERE model IS NULL OR model != ?1 \
                 OR embedding IS NULL ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([model], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// The largest summary id (0 when none).
    pub fn max_summary_id(&self) -> Result<i64, Error> {
        self.db
            .query_row("SELECT coalesce(max(id), 0) FROM summaries", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Stores embeddings made by `model` for summaries, in one transaction.
    pub fn set_embeddings(&mut self, model: &str, rows: &[(i64, Vec<f32>)]) -> Result<(), Error> {
        let (path, busy) = (self.path.clone(), self.busy);
        let err = |e| classify(&path, busy, e);
        let tx = self.db.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached("UPDATE summaries SET model = ?1, embedding = ?2 WHERE id = ?3")
                .map_err(err)?;
            for (id, v) in rows {
                let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                st.execute(params![model, blob, id]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}

fn limit_arg(limit: usize) -> rusqlite::types::Value {
    i64::try_from(limit).unwrap_or(i64::MAX).into()
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let verdict: String = r.get(12)?;
    let rules: String = r.get(21)?;
    let reasons: String = r.get(22)?;
    let blob: Vec<u8> = r.get(24)?;
    let layout: i64 = r.get(25)?;
    Ok(Event {
        id: r.get(0)?,
        detection_id: r.get(1)?,
        event_id: r.get(2)?,
        sensor_id: r.get(3)?,
        detected_at: r.get(4)?,
        first_ts: r.get(5)?,
        last_ts: r.get(6)?,
        src_ip: r.get(7)?,
        src_port: r.get(8)?,
        dst_ip: r.get(9)?,
        dst_port: r.get(10)?,
        proto: r.get(11)?,
        verdict: Verdict::parse(&verdict).unwrap_or(Verdict::Benign),
        final_score: r.get(13)?,
        fast_score: r.get(14)?,
        ml_score: r.get(15)?,
        ml_scores: [r.get(16)?, r.get(17)?, r.get(18)?, r.get(19)?],
        authoritative: r.get(20)?,
        fast_rules: rules.split_whitespace().map(str::to_owned).collect(),
        reasons: reasons.lines().map(str::to_owned).filter(|s| !s.is_empty()).collect(),
        file: r.get(23)?,
        vector: floats(&blob).collect(),
        layout: layout.cast_unsigned(),
        description: r.get(26)?,
        summary_id: r.get(27)?,
    })
}

/// A stored vector (little-endian f32s).
fn floats(blob: &[u8]) -> impl Iterator<Item = f32> + '_ {
    blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Maps `SQLite`'s errors to what an operator can act on.
fn classify(path: &Path, waited: Duration, e: rusqlite::Error) -> Error {
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Locked { path, waited },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            Error::Corrupt { path, detail: e.to_string() }
        }
        _ => Error::Sqlite { path, source: e },
    }
}
