//! An append-only log of records (JSON lines, or length-prefixed binary records) with size- and
//! time-based rotation and retention.
//!
//! - Records are written whole: a batch of complete records goes to the file in one
//!   `write_all`, and a failed write is cut back to the last whole record (`set_len`), its
//!   records dropped and counted. A crash in the middle of a write can still leave a torn last
//!   record; [`open`] cuts it off (and says so), so readers only ever see whole records.
//! - Flushing: every line (`write` + `fdatasync` per line) or on an interval (lines are
//!   buffered, written when 256 KiB are pending and at each [`RotatingLog::flush`], which also
//!   syncs). The buffer is bounded, so memory stays flat.
//! - Rotation: before a line would take the file past `max_bytes`, and at a flush once the file
//!   is `max_age` old, `<stem>.<ext>` is renamed to `<stem>.<UTC time>.<ext>` (names sort by
//!   time) and a new file is started; only the newest `retain` rotated files are kept.
//!
//! [`open`]: RotatingLog::open
#![forbid(unsafe_code)]

pub mod time;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::time::{compact_timestamp, unix_ns};

/// Pending bytes that are written without waiting for the flush interval.
const WRITE_AT: usize = 256 * 1024;

/// How records are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Each record ends with a newline (JSON lines).
    Lines,
    /// Each record is a big-endian `u32` length and that many bytes.
    LengthPrefixed,
}

/// How a log rotates and flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub max_bytes: u64,
    pub max_age: Duration,
    /// Rotated files kept.
    pub retain: u32,
    /// fdatasync after every line (else at each flush).
    pub sync_every_line: bool,
}

/// What a log has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub lines: u64,
    pub bytes: u64,
    pub rotations: u64,
    /// Lines lost to failed writes.
    pub dropped_lines: u64,
    pub write_errors: u64,
    /// Bytes of a torn last line cut off when the file was opened.
    pub repaired_bytes: u64,
    /// Rotated files deleted by retention.
    pub deleted_files: u64,
}

/// One rotating log file.
#[derive(Debug)]
pub struct RotatingLog {
    dir: PathBuf,
    stem: &'static str,
    ext: &'static str,
    framing: Framing,
    settings: Settings,
    file: File,
    /// Bytes of whole lines in the file.
    size: u64,
    opened_at: SystemTime,
    pending: Vec<u8>,
    pending_lines: u64,
    unsynced: bool,
    stats: Stats,
}

/// Logs hold network metadata: owner read-write, group read (a SIEM shipper's group), no one
/// else.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).read(true).append(true).mode(0o640).open(path)
}

/// `e` with what was being done to which path.
#[allow(clippy::needless_pass_by_value, reason = "used as map_err(|e| context(e, ..))")]
pub fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Cuts `file` back to the end of its last whole record; returns the bytes removed.
fn cut_torn_tail(file: &File, len: u64, framing: Framing) -> io::Result<u64> {
    if framing == Framing::LengthPrefixed {
        let mut pos = 0u64;
        let mut head = [0u8; 4];
        while pos + 4 <= len {
            file.read_exact_at(&mut head, pos)?;
            let next = pos + 4 + u64::from(u32::from_be_bytes(head));
            if next > len {
                break;
            }
            pos = next;
        }
        if pos < len {
            file.set_len(pos)?;
        }
        return Ok(len - pos);
    }
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
            }
            return Ok(len - keep);
        }
        end = start;
    }
    file.set_len(0)?;
    Ok(len)
}

impl RotatingLog {
    /// Opens (or creates) `dir/<stem>.<ext>` for appending, creating `dir`, and cuts off a torn
    /// last record left by a crash.
    pub fn open(
        dir: &Path,
        stem: &'static str,
        ext: &'static str,
        framing: Framing,
        settings: Settings,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir).map_err(|e| context(e, "cannot create the log directory", dir))?;
        let path = dir.join(format!("{stem}.{ext}"));
        let file = open_append(&path).map_err(|e| context(e, "cannot open", &path))?;
        let meta = file.metadata().map_err(|e| context(e, "cannot stat", &path))?;
        let repaired = cut_torn_tail(&file, meta.len(), framing)
            .map_err(|e| context(e, "cannot repair", &path))?;
        if repaired > 0 {
            tracing::warn!(file = %path.display(), bytes = repaired, "cut off a torn last record (the previous run stopped in the middle of a write)");
        }
        let size = meta.len() - repaired;
        // An existing file keeps its age; where the file system has no birth time, it starts now.
        let opened_at = if size > 0 {
            meta.created().unwrap_or_else(|_| SystemTime::now())
        } else {
            SystemTime::now()
        };
        Ok(Self {
            dir: dir.to_owned(),
            stem,
            ext,
            framing,
            settings,
            file,
            size,
            opened_at,
            pending: Vec::new(),
            pending_lines: 0,
            unsynced: false,
            stats: Stats { repaired_bytes: repaired, ..Stats::default() },
        })
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.{}", self.stem, self.ext))
    }

    pub const fn stats(&self) -> Stats {
        self.stats
    }

    /// Appends `count` complete records (lines ending with a newline, or length-prefixed
    /// records). An error means these records (and any still pending) were dropped and
    /// counted; the log stays usable.
    pub fn append(&mut self, lines: &[u8], count: u64, now: SystemTime) -> io::Result<()> {
        debug_assert!(
            self.framing != Framing::Lines || lines.last() == Some(&b'\n'),
            "whole lines only"
        );
        let held = self.size + self.pending.len() as u64;
        if held > 0 && held + lines.len() as u64 > self.settings.max_bytes {
            self.rotate(now)?;
        }
        self.pending.extend_from_slice(lines);
        self.pending_lines += count;
        if self.settings.sync_every_line {
            self.write_pending(true)
        } else if self.pending.len() >= WRITE_AT {
            self.write_pending(false)
        } else {
            Ok(())
        }
    }

    /// Writes what is pending, syncs it, and rotates a file that has reached its age.
    pub fn flush(&mut self, now: SystemTime) -> io::Result<()> {
        self.write_pending(true)?;
        let age = now.duration_since(self.opened_at).unwrap_or_default();
        if self.size > 0 && age >= self.settings.max_age {
            self.rotate(now)?;
        }
        Ok(())
    }

    fn write_pending(&mut self, sync: bool) -> io::Result<()> {
        if !self.pending.is_empty() {
            if let Err(e) = self.file.write_all(&self.pending) {
                // Whatever part made it to the file is cut off again: no partial line stays.
                let _ = self.file.set_len(self.size);
                self.stats.dropped_lines += self.pending_lines;
                self.stats.write_errors += 1;
                self.pending.clear();
                self.pending_lines = 0;
                return Err(context(e, "cannot write", &self.path()));
            }
            self.size += self.pending.len() as u64;
            self.stats.bytes += self.pending.len() as u64;
            self.stats.lines += self.pending_lines;
            self.pending.clear();
            self.pending_lines = 0;
            self.unsynced = true;
            if self.pending.capacity() > 4 * WRITE_AT {
                self.pending.shrink_to(WRITE_AT);
            }
        }
        if sync && self.unsynced {
            self.file.sync_data().map_err(|e| {
                self.stats.write_errors += 1;
                context(e, "cannot sync", &self.path())
            })?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Renames the current file to its rotated name, starts a new one and applies retention.
    fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        self.write_pending(true)?;
        let current = self.path();
        let mut ns = unix_ns(now);
        let target = loop {
            let candidate =
                self.dir.join(format!("{}.{}.{}", self.stem, compact_timestamp(ns), self.ext));
            if !candidate.exists() {
                break candidate;
            }
            ns += 1_000;
        };
        fs::rename(&current, &target).map_err(|e| context(e, "cannot rotate", &current))?;
        self.file = open_append(&current).map_err(|e| context(e, "cannot open", &current))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| context(e, "cannot sync", &self.dir))?;
        self.size = 0;
        self.opened_at = now;
        self.stats.rotations += 1;
        tracing::info!(file = %target.display(), "rotated");
        self.prune()
    }

    /// The rotated files of this log, oldest first.
    pub fn rotated(&self) -> io::Result<Vec<PathBuf>> {
        let prefix = format!("{}.", self.stem);
        let suffix = format!(".{}", self.ext);
        let current = format!("{}.{}", self.stem, self.ext);
        let mut names: Vec<String> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix) && n.ends_with(&suffix) && *n != current)
            .collect();
        names.sort_unstable();
        Ok(names.into_iter().map(|n| self.dir.join(n)).collect())
    }

    /// Deletes the oldest rotated files beyond `retain`.
    fn prune(&mut self) -> io::Result<()> {
        let files = self.rotated().map_err(|e| context(e, "cannot list", &self.dir))?;
        let excess = files.len().saturating_sub(self.settings.retain as usize);
        for old in &files[..excess] {
            fs::remove_file(old).map_err(|e| context(e, "cannot delete", old))?;
            self.stats.deleted_files += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_hours(1);

    fn settings(max_bytes: u64, retain: u32) -> Settings {
        Settings { max_bytes, max_age: HOUR, retain, sync_every_line: false }
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
    }

    #[test]
    fn rotates_by_size_keeps_whole_lines_and_applies_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            RotatingLog::open(dir.path(), "events", "jsonl", Framing::Lines, settings(100, 2))
                .unwrap();
        let t0 = SystemTime::now();
        for i in 0..30u32 {
            let line = format!("{{\"n\":{i:04}}}\n"); // 11 bytes
            log.append(line.as_bytes(), 1, t0 + Duration::from_secs(u64::from(i))).unwrap();
        }
        log.flush(t0 + Duration::from_secs(30)).unwrap();
        // 9 lines (99 bytes) fit in 100; 30 lines make 3 full files and one of 3 lines.
        let rotated = log.rotated().unwrap();
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        assert_eq!(log.stats().rotations, 3);
        assert_eq!(log.stats().deleted_files, 1);
        assert_eq!(log.stats().lines, 30);
        let kept: Vec<String> =
            rotated.iter().chain([&log.path()]).flat_map(|p| lines(p)).collect();
        let expected: Vec<String> = (9..30).map(|i| format!("{{\"n\":{i:04}}}")).collect();
        assert_eq!(kept, expected, "the newest lines, in order, none split");
        for p in &rotated {
            assert!(fs::metadata(p).unwrap().len() <= 100);
        }
    }

    #[test]
    fn rotates_by_age_at_a_flush_but_not_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            RotatingLog::open(dir.path(), "eve", "json", Framing::Lines, settings(1 << 20, 5))
                .unwrap();
        let t0 = SystemTime::now();
        log.flush(t0 + 2 * HOUR).unwrap();
        assert_eq!(log.stats().rotations, 0, "an empty file is not rotated");
        log.append(b"{}\n", 1, t0).unwrap();
        log.flush(t0 + HOUR / 2).unwrap();
        assert_eq!(log.stats().rotations, 0);
        log.flush(t0 + 3 * HOUR).unwrap();
        assert_eq!(log.stats().rotations, 1);
        assert_eq!(log.rotated().unwrap().len(), 1);
        assert_eq!(fs::metadata(log.path()).unwrap().len(), 0);
    }

    #[test]
    fn a_torn_last_line_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        let mut log =
            RotatingLog::open(dir.path(), "events", "jsonl", Framing::Lines, settings(1 << 20, 5))
                .unwrap();
        assert_eq!(log.stats().repaired_bytes, 5);
        log.append(b"{\"d\":4}\n", 1, SystemTime::now()).unwrap();
        log.flush(SystemTime::now()).unwrap();
        assert_eq!(lines(&path), ["{\"a\":1}", "{\"b\":2}", "{\"d\":4}"]);
        // A file with no newline at all is emptied.
        fs::write(&path, b"garbage").unwrap();
        let log =
            RotatingLog::open(dir.path(), "events", "jsonl", Framing::Lines, settings(1 << 20, 5))
                .unwrap();
        assert_eq!((log.stats().repaired_bytes, fs::metadata(&path).unwrap().len()), (7, 0));
    }

    #[test]
    fn a_torn_length_prefixed_record_is_cut_off_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.mld");
        let mut bytes = Vec::new();
        for r in [&b"abc"[..], b"", b"defgh"] {
            bytes.extend_from_slice(&u32::try_from(r.len()).unwrap().to_be_bytes());
            bytes.extend_from_slice(r);
        }
        let whole = bytes.len() as u64;
        bytes.extend_from_slice(&[0, 0, 0, 9, b'x']); // a record cut short
        fs::write(&path, &bytes).unwrap();
        let log = RotatingLog::open(
            dir.path(),
            "alerts",
            "mld",
            Framing::LengthPrefixed,
            settings(1 << 20, 5),
        )
        .unwrap();
        assert_eq!(log.stats().repaired_bytes, 5);
        assert_eq!(fs::metadata(&path).unwrap().len(), whole);
    }

    #[test]
    fn interval_mode_buffers_until_flush_and_every_line_mode_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            RotatingLog::open(dir.path(), "a", "jsonl", Framing::Lines, settings(1 << 20, 5))
                .unwrap();
        log.append(b"1\n", 1, SystemTime::now()).unwrap();
        assert_eq!(fs::metadata(log.path()).unwrap().len(), 0);
        log.flush(SystemTime::now()).unwrap();
        assert_eq!(fs::metadata(log.path()).unwrap().len(), 2);
        let every = Settings { sync_every_line: true, ..settings(1 << 20, 5) };
        let mut log = RotatingLog::open(dir.path(), "b", "jsonl", Framing::Lines, every).unwrap();
        log.append(b"1\n", 1, SystemTime::now()).unwrap();
        assert_eq!(fs::metadata(log.path()).unwrap().len(), 2);
    }

    #[test]
    fn a_failed_write_drops_whole_lines_and_the_log_goes_on() {
        // /dev/full fails every write with ENOSPC: the lines are dropped and counted.
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            RotatingLog::open(dir.path(), "x", "jsonl", Framing::Lines, settings(1 << 20, 5))
                .unwrap();
        log.file = OpenOptions::new().append(true).open("/dev/full").unwrap();
        log.append(b"1\n2\n", 2, SystemTime::now()).unwrap();
        let e = log.flush(SystemTime::now()).unwrap_err();
        assert!(e.to_string().contains("cannot write"), "{e}");
        assert_eq!((log.stats().dropped_lines, log.stats().write_errors), (2, 1));
        assert_eq!(log.stats().lines, 0);
        log.flush(SystemTime::now()).unwrap();
    }
}
