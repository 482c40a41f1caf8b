//! Sealed alert artifacts: each SUSPICIOUS or MALICIOUS Detection, protobuf-encoded and sealed
//! on the `artifact` channel (DESIGN §4.1), appended to `alerts.mld` as a length-prefixed
//! record (big-endian `u32` length, then the envelope).
//!
//! One append per alert, not one file: a flood flags tens of thousands of flows a minute, and a
//! file per alert cost six times the detector's throughput and an inode each. The file rotates
//! and is retained like the event log ([`mld_logfile`]), a torn last record is cut off at
//! start, and `ml-detector artifact --config FILE alerts*.mld` opens them with the
//! deployment's keys. Anyone without the root secret learns only record sizes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use mld_crypto_transport::{Channel, KeyRing, OpenError, Opener, Sealer};
use mld_proto::Detection;
use prost::Message;

use mld_logfile::{Framing, RotatingLog, Settings, Stats};

/// The artifact log.
pub struct AlertLog {
    log: RotatingLog,
    sealer: Sealer,
    buf: Vec<u8>,
    record: Vec<u8>,
}

impl std::fmt::Debug for AlertLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertLog").field("path", &self.log.path()).finish_non_exhaustive()
    }
}

impl AlertLog {
    /// Opens `dir/alerts.mld` (creating `dir`); records are sealed with `ring`.
    pub fn open(dir: &Path, ring: Arc<KeyRing>, settings: Settings) -> anyhow::Result<Self> {
        Ok(Self {
            log: RotatingLog::open(dir, "alerts", "mld", Framing::LengthPrefixed, settings)?,
            sealer: Sealer::new(ring, Channel::Artifact)?,
            buf: Vec::new(),
            record: Vec::new(),
        })
    }

    /// Seals and appends `d`.
    pub fn write(&mut self, d: &Detection, now: SystemTime) -> anyhow::Result<()> {
        self.buf.clear();
        d.encode(&mut self.buf)?;
        let sealed = self.sealer.seal(&self.buf)?;
        self.record.clear();
        self.record.extend_from_slice(&u32::try_from(sealed.len())?.to_be_bytes());
        self.record.extend_from_slice(&sealed);
        self.log.append(&self.record, 1, now)?;
        Ok(())
    }

    /// Writes and syncs what is pending; rotates by age.
    pub fn flush(&mut self, now: SystemTime) -> io::Result<()> {
        self.log.flush(now)
    }

    pub const fn stats(&self) -> Stats {
        self.log.stats()
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.log.path()
    }
}

/// Why an artifact file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: record {index} is cut short (a torn write, or not an artifact file)")]
    Truncated { path: PathBuf, index: usize },
    #[error("{path}: record {index} is not a valid artifact for these keys: {source}")]
    Open { path: PathBuf, index: usize, source: OpenError },
    #[error("{path}: record {index}: the sealed payload is not a Detection: {source}")]
    Decode { path: PathBuf, index: usize, source: prost::DecodeError },
}

/// Opens every record of an artifact file with `ring`, in order.
pub fn read(path: &Path, ring: &Arc<KeyRing>) -> Result<Vec<Detection>, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io { path: path.to_owned(), source })?;
    let mut out = Vec::new();
    let mut rest = bytes.as_slice();
    // One opener per file: its records come from few senders with rising sequence numbers;
    // a restarted detector is a new sender.
    let mut opener = Opener::new(Arc::clone(ring), Channel::Artifact);
    while !rest.is_empty() {
        let index = out.len();
        let truncated = || ReadError::Truncated { path: path.to_owned(), index };
        let (head, body) = rest.split_at_checked(4).ok_or_else(truncated)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let (envelope, next) = body.split_at_checked(len).ok_or_else(truncated)?;
        let opened = opener.open(envelope).map_err(|source| ReadError::Open {
            path: path.to_owned(),
            index,
            source,
        })?;
        let d = Detection::decode(opened.payload.as_slice())
            .map_err(|source| ReadError::Decode { path: path.to_owned(), index, source })?;
        out.push(d);
        rest = next;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn det(id: &str) -> Detection {
        Detection { detection_id: id.into(), final_score: 0.9, ..Detection::default() }
    }

    fn settings() -> Settings {
        Settings {
            max_bytes: 1 << 20,
            max_age: std::time::Duration::from_hours(1),
            retain: 3,
            sync_every_line: false,
        }
    }

    #[test]
    fn artifacts_round_trip_and_other_keys_or_tampering_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ring = mld_test_utils::key_ring(3, 1);
        let mut log = AlertLog::open(dir.path(), Arc::clone(&ring), settings()).unwrap();
        let now = SystemTime::now();
        for i in 0..5 {
            log.write(&det(&format!("0190-{i}")), now).unwrap();
        }
        log.flush(now).unwrap();
        let path = log.path();
        let back = read(&path, &ring).unwrap();
        assert_eq!(back, (0..5).map(|i| det(&format!("0190-{i}"))).collect::<Vec<_>>());
        // A second run appends as a new sender; the file still reads whole.
        drop(log);
        let mut log = AlertLog::open(dir.path(), Arc::clone(&ring), settings()).unwrap();
        log.write(&det("0190-5"), now).unwrap();
        log.flush(now).unwrap();
        assert_eq!(read(&path, &ring).unwrap().len(), 6);

        let wrong = read(&path, &mld_test_utils::key_ring(4, 1)).unwrap_err();
        assert!(matches!(wrong, ReadError::Open { index: 0, .. }), "{wrong}");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let e = read(&path, &ring).unwrap_err();
        assert!(matches!(e, ReadError::Open { index: 5, .. }), "{e}");
        bytes.truncate(last);
        fs::write(&path, &bytes).unwrap();
        let e = read(&path, &ring).unwrap_err();
        assert!(matches!(e, ReadError::Truncated { index: 5, .. }), "{e}");
    }
}
