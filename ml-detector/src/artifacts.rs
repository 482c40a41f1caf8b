//! Sealed alert artifacts: each SUSPICIOUS or MALICIOUS Detection, protobuf-encoded and sealed
//! on the `artifact` channel (DESIGN §4.1), in `<dir>/<detection id>.mld`.
//!
//! A file is written under a temporary name and renamed, so a reader sees whole artifacts or
//! none; temporary files left by a crash are removed at start. Detection ids are `UUIDv7`, so
//! names sort by time, and only the newest `max_files` artifacts are kept. Files are synced per
//! artifact (`every_line` flushing) or together at each flush.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mld_crypto_transport::{Channel, KeyRing, OpenError, Opener, Sealer};
use mld_proto::Detection;
use prost::Message;

use crate::logfile::context;

const EXT: &str = "mld";
const TMP_EXT: &str = "mld.tmp";
/// Unsynced files held before a flush is forced.
const MAX_UNSYNCED: usize = 1024;

/// What the store has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub written: u64,
    pub deleted: u64,
    pub errors: u64,
}

/// The artifact directory.
pub struct ArtifactStore {
    dir: PathBuf,
    sealer: Sealer,
    max_files: usize,
    /// Artifact names, oldest first.
    names: VecDeque<String>,
    unsynced: Vec<File>,
    sync_each: bool,
    buf: Vec<u8>,
    stats: Stats,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("dir", &self.dir)
            .field("files", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl ArtifactStore {
    /// Opens `dir` (creating it), removes temporary files and applies the cap.
    pub fn open(
        dir: &Path,
        ring: Arc<KeyRing>,
        max_files: u32,
        sync_each: bool,
    ) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).map_err(|e| context(e, "cannot create", dir))?;
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| context(e, "cannot list", dir))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(TMP_EXT) {
                let path = dir.join(&name);
                fs::remove_file(&path).map_err(|e| context(e, "cannot remove", &path))?;
            } else if name.ends_with(&format!(".{EXT}")) {
                names.push(name);
            }
        }
        names.sort_unstable();
        let mut store = Self {
            dir: dir.to_owned(),
            sealer: Sealer::new(ring, Channel::Artifact)?,
            max_files: max_files as usize,
            names: names.into(),
            unsynced: Vec::new(),
            sync_each,
            buf: Vec::new(),
            stats: Stats::default(),
        };
        store.prune()?;
        Ok(store)
    }

    pub const fn stats(&self) -> Stats {
        self.stats
    }

    /// Artifacts in the directory.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Seals and writes `d`; returns its path.
    pub fn write(&mut self, d: &Detection) -> anyhow::Result<PathBuf> {
        let r = self.write_inner(d);
        if r.is_err() {
            self.stats.errors += 1;
        }
        r
    }

    fn write_inner(&mut self, d: &Detection) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            !d.detection_id.is_empty()
                && d.detection_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "detection id {:?} cannot be a file name",
            d.detection_id
        );
        self.buf.clear();
        d.encode(&mut self.buf)?;
        let sealed = self.sealer.seal(&self.buf)?;
        let name = format!("{}.{EXT}", d.detection_id);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{}.{TMP_EXT}", d.detection_id));
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(&sealed)?;
            if self.sync_each {
                f.sync_data()?;
            }
            fs::rename(&tmp, &path)?;
            Ok(f)
        });
        let file = match written {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(context(e, "cannot write artifact", &path).into());
            }
        };
        if self.sync_each {
            self.sync_dir()?;
        } else {
            self.unsynced.push(file);
        }
        self.names.push_back(name);
        self.stats.written += 1;
        self.prune()?;
        if self.unsynced.len() >= MAX_UNSYNCED {
            self.flush()?;
        }
        Ok(path)
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| context(e, "cannot sync", &self.dir))
    }

    /// Syncs the artifacts written since the last flush, and the directory.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        for f in self.unsynced.drain(..) {
            f.sync_data().map_err(|e| context(e, "cannot sync an artifact in", &self.dir))?;
        }
        self.sync_dir()
    }

    fn prune(&mut self) -> io::Result<()> {
        while self.names.len() > self.max_files {
            let Some(old) = self.names.pop_front() else { break };
            let path = self.dir.join(old);
            match fs::remove_file(&path) {
                Ok(()) => self.stats.deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(context(e, "cannot delete", &path)),
            }
        }
        Ok(())
    }
}

/// Why an artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid artifact for these keys: {source}")]
    Open { path: PathBuf, source: OpenError },
    #[error("{path}: the sealed payload is not a Detection: {source}")]
    Decode { path: PathBuf, source: prost::DecodeError },
}

/// Opens one artifact file with `ring`.
pub fn read(path: &Path, ring: Arc<KeyRing>) -> Result<Detection, ReadError> {
    let bytes = fs::read(path).map_err(|source| ReadError::Io { path: path.to_owned(), source })?;
    // A fresh opener per file: each artifact stands alone (no replay window across files).
    let opened = Opener::new(ring, Channel::Artifact)
        .open(&bytes)
        .map_err(|source| ReadError::Open { path: path.to_owned(), source })?;
    Detection::decode(opened.payload.as_slice())
        .map_err(|source| ReadError::Decode { path: path.to_owned(), source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn det(id: &str) -> Detection {
        Detection { detection_id: id.into(), final_score: 0.9, ..Detection::default() }
    }

    #[test]
    fn artifacts_round_trip_are_capped_and_reject_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ring = mld_test_utils::key_ring(3, 1);
        let mut store = ArtifactStore::open(dir.path(), Arc::clone(&ring), 3, false).unwrap();
        let mut paths = Vec::new();
        for i in 0..5 {
            paths.push(store.write(&det(&format!("0190-{i}"))).unwrap());
        }
        store.flush().unwrap();
        assert_eq!((store.len(), store.stats().deleted), (3, 2));
        assert!(!paths[1].exists() && paths[2].exists());
        let back = read(&paths[4], Arc::clone(&ring)).unwrap();
        assert_eq!(back, det("0190-4"));
        let wrong = read(&paths[4], mld_test_utils::key_ring(4, 1)).unwrap_err();
        assert!(matches!(wrong, ReadError::Open { .. }), "{wrong}");
        // A bad id never becomes a path.
        assert!(store.write(&det("../x")).is_err());
        assert_eq!(store.stats().errors, 1);
        // Reopening finds the three, removes a leftover temporary file, keeps the cap.
        fs::write(dir.path().join("0190-9.mld.tmp"), b"torn").unwrap();
        drop(store);
        let store = ArtifactStore::open(dir.path(), ring, 2, true).unwrap();
        assert_eq!(store.len(), 2);
        assert!(!dir.path().join("0190-9.mld.tmp").exists() && !paths[2].exists());
    }

    #[test]
    fn a_tampered_artifact_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let ring = mld_test_utils::key_ring(3, 1);
        let mut store = ArtifactStore::open(dir.path(), Arc::clone(&ring), 10, true).unwrap();
        let path = store.write(&det("0190-1")).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(read(&path, ring), Err(ReadError::Open { .. })));
    }
}
