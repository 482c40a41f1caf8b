//! The RAG vector indices (DESIGN §7), FAISS, inner product over unit vectors (cosine):
//!
//! - **features**: one vector per event (the event store's scaled flow features), labelled
//!   with the event id: "events like this one".
//! - **text**: all-MiniLM-L6-v2 embeddings of the facets of each distinct event summary (the
//!   service, fast rules and forests in words, `mld_eventstore::event::summarize`), labelled
//!   with the summary id (one label per facet): a question's topic finds summaries, the
//!   store finds their events.
//!
//! Each index is persisted beside the store as `<kind>.faiss` plus `<kind>.json` (what it
//! holds: the vectors' key, the last id, the count). Both are written to temporary files and
//! renamed, the metadata last; an index whose metadata does not match it (a crash between
//! the renames, another layout or model, a damaged file) is rebuilt from the store, and one
//! behind the store is brought up to date by adding only the newer rows.
//!
//! Small indices are exact (`IDMap,Flat`); from 20 000 vectors an inverted file
//! (`IVF<n>,Flat`, probing [`NPROBE`] lists) keeps search time flat as the store grows. The
//! index is rebuilt when the count crosses into another size band.

use std::path::{Path, PathBuf};

use faiss::index::IndexImpl;
use faiss::index::autotune::ParameterSpace;
use faiss::{Idx, Index, MetricType};
use serde::{Deserialize, Serialize};

/// Lists probed per IVF search.
pub const NPROBE: u32 = 64;

/// Below this many vectors the index is exact.
pub const EXACT_BELOW: u64 = 20_000;

/// Vectors sampled to train an IVF index's lists.
const TRAIN_SAMPLE: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {detail}")]
    Faiss { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] mld_eventstore::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Features,
    Text,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Features => "features",
            Kind::Text => "text",
        }
    }
}

/// Where the rows of an index come from.
pub trait Source {
    /// What the vectors are (a layout hash, a model id) and their length; `None` when there
    /// is nothing to index yet.
    fn key(&self) -> Result<Option<(String, usize)>, Error>;
    /// Calls `each(id, vector)` for every row of `key` with id above `after`, in id order.
    fn rows(&self, key: &str, after: i64, each: &mut dyn FnMut(i64, &[f32])) -> Result<(), Error>;
}

/// What a saved index holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub kind: Kind,
    pub key: String,
    pub dim: usize,
    /// The largest id indexed.
    pub max_id: i64,
    pub count: u64,
    /// The FAISS factory string it was built with.
    pub factory: String,
}

/// What [`VectorIndex::open`] had to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Loaded and up to date.
    Fresh,
    /// Loaded, then this many newer rows added.
    CaughtUp(u64),
    /// Rebuilt from the store, and why.
    Rebuilt(String),
    /// Nothing to index yet.
    Empty,
}

impl std::fmt::Display for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opened::Fresh => f.write_str("up to date"),
            Opened::CaughtUp(n) => write!(f, "{n} newer rows added"),
            Opened::Rebuilt(why) => write!(f, "rebuilt from the store ({why})"),
            Opened::Empty => f.write_str("nothing to index yet; built when the first rows arrive"),
        }
    }
}

pub struct VectorIndex {
    index: Option<IndexImpl>,
    meta: Meta,
    dir: PathBuf,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("meta", &self.meta)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Where the indices of the store at `store` live: `<store>.index/`.
pub fn dir_for(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".index");
    store.with_file_name(name)
}

/// The factory string for `n` vectors.
pub fn factory_for(n: u64) -> String {
    if n < EXACT_BELOW {
        return "IDMap,Flat".into();
    }
    // About 4·√n lists, in bands so that growth within a band never rebuilds.
    let lists = match n {
        ..200_000 => 256,
        200_000..2_000_000 => 1_024,
        _ => 4_096,
    };
    format!("IVF{lists},Flat")
}

fn faiss_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Faiss { path: path.into(), detail: e.to_string() }
}

impl VectorIndex {
    fn files(dir: &Path, kind: Kind) -> (PathBuf, PathBuf) {
        (dir.join(format!("{}.faiss", kind.name())), dir.join(format!("{}.json", kind.name())))
    }

    /// Loads the saved index of `kind` from `dir`, or rebuilds it from `source` when missing,
    /// damaged or of other vectors, then adds the rows it lacks. Saves nothing: see
    /// [`VectorIndex::save`].
    pub fn open(dir: &Path, kind: Kind, source: &dyn Source) -> Result<(Self, Opened), Error> {
        let Some((key, dim)) = source.key()? else {
            let meta = Meta {
                kind,
                key: String::new(),
                dim: 0,
                max_id: 0,
                count: 0,
                factory: String::new(),
            };
            return Ok((VectorIndex { index: None, meta, dir: dir.into() }, Opened::Empty));
        };
        match Self::load(dir, kind) {
            Ok(mut ix) if ix.meta.key == key && ix.meta.dim == dim => {
                let added = ix.add_from(source)?;
                if factory_for(ix.meta.count) != ix.meta.factory {
                    let why = format!("{} vectors outgrew {}", ix.meta.count, ix.meta.factory);
                    return Ok((Self::build(dir, kind, source, &key, dim)?, Opened::Rebuilt(why)));
                }
                let how = if added == 0 { Opened::Fresh } else { Opened::CaughtUp(added) };
                Ok((ix, how))
            }
            Ok(ix) => {
                let why = format!("it holds vectors of {}, the store has {key}", ix.meta.key);
                Ok((Self::build(dir, kind, source, &key, dim)?, Opened::Rebuilt(why)))
            }
            Err(why) => Ok((Self::build(dir, kind, source, &key, dim)?, Opened::Rebuilt(why))),
        }
    }

    /// The saved index, when it is whole and says what it holds.
    fn load(dir: &Path, kind: Kind) -> Result<Self, String> {
        let (index_path, meta_path) = Self::files(dir, kind);
        let text = match std::fs::read(&meta_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("none saved".into()),
            Err(e) => return Err(format!("{}: {e}", meta_path.display())),
        };
        let meta: Meta =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", meta_path.display()))?;
        let path = index_path.to_str().ok_or("index path is not UTF-8")?;
        let index =
            faiss::read_index(path).map_err(|e| format!("{}: {e}", index_path.display()))?;
        if index.ntotal() != meta.count || index.d() as usize != meta.dim || meta.kind != kind {
            return Err(format!(
                "{} holds {} vectors of length {}, its metadata says {} of {}",
                index_path.display(),
                index.ntotal(),
                index.d(),
                meta.count,
                meta.dim
            ));
        }
        let mut ix = VectorIndex { index: Some(index), meta, dir: dir.into() };
        ix.tune().map_err(|e| e.to_string())?;
        Ok(ix)
    }

    /// A new index over every row of `key` in `source`.
    pub fn build(
        dir: &Path,
        kind: Kind,
        source: &dyn Source,
        key: &str,
        dim: usize,
    ) -> Result<Self, Error> {
        let (index_path, _) = Self::files(dir, kind);
        let mut ids = Vec::new();
        let mut data = Vec::new();
        source.rows(key, 0, &mut |id, v| {
            if v.len() == dim {
                ids.push(id);
                data.extend_from_slice(v);
            }
        })?;
        let factory = factory_for(ids.len() as u64);
        let d = u32::try_from(dim).map_err(|_| faiss_err(&index_path, "vector too long"))?;
        let mut index = faiss::index_factory(d, &factory, MetricType::InnerProduct)
            .map_err(|e| faiss_err(&index_path, e))?;
        if !index.is_trained() {
            // An evenly spaced sample: the store is in time order, so this spans all of it.
            let n = ids.len();
            let step = n.div_ceil(TRAIN_SAMPLE).max(1);
            let sample: Vec<f32> =
                data.chunks_exact(dim).step_by(step).flatten().copied().collect();
            index.train(&sample).map_err(|e| faiss_err(&index_path, e))?;
        }
        let mut ix = VectorIndex {
            index: Some(index),
            meta: Meta { kind, key: key.into(), dim, max_id: 0, count: 0, factory },
            dir: dir.into(),
        };
        ix.tune()?;
        ix.add(&ids, &data)?;
        Ok(ix)
    }

    fn tune(&mut self) -> Result<(), Error> {
        self.set_nprobe(NPROBE)
    }

    /// Lists probed per search of an IVF index ([`NPROBE`] unless changed; the benchmark
    /// sweeps it). An exact index ignores it.
    pub fn set_nprobe(&mut self, nprobe: u32) -> Result<(), Error> {
        if let Some(index) = &self.index
            && self.meta.factory.starts_with("IVF")
        {
            let (path, _) = Self::files(&self.dir, self.meta.kind);
            ParameterSpace::new()
                .and_then(|p| p.set_index_parameter(index, "nprobe", nprobe))
                .map_err(|e| faiss_err(&path, e))?;
        }
        Ok(())
    }

    fn add(&mut self, ids: &[i64], data: &[f32]) -> Result<(), Error> {
        let Some(index) = &mut self.index else { return Ok(()) };
        if ids.is_empty() {
            return Ok(());
        }
        let labels: Vec<Idx> = ids.iter().map(|&i| Idx::new(i.cast_unsigned())).collect();
        let (path, _) = Self::files(&self.dir, self.meta.kind);
        index.add_with_ids(data, &labels).map_err(|e| faiss_err(&path, e))?;
        self.meta.count += ids.len() as u64;
        self.meta.max_id = self.meta.max_id.max(ids.iter().copied().max().unwrap_or(0));
        Ok(())
    }

    /// Adds the rows of `source` newer than the index; returns how many. An index opened
    /// empty ([`Opened::Empty`]) is built once the source has rows.
    pub fn add_from(&mut self, source: &dyn Source) -> Result<u64, Error> {
        if self.index.is_none() {
            let Some((key, dim)) = source.key()? else { return Ok(0) };
            *self = Self::build(&self.dir, self.meta.kind, source, &key, dim)?;
            return Ok(self.meta.count);
        }
        let dim = self.meta.dim;
        let mut ids = Vec::new();
        let mut data = Vec::new();
        source.rows(&self.meta.key, self.meta.max_id, &mut |id, v| {
            if v.len() == dim {
                ids.push(id);
                data.extend_from_slice(v);
            }
        })?;
        self.add(&ids, &data)?;
        Ok(ids.len() as u64)
    }

    /// Writes the index and then its metadata, each to a temporary file renamed into place.
    pub fn save(&self) -> Result<(), Error> {
        let Some(index) = &self.index else { return Ok(()) };
        let (index_path, meta_path) = Self::files(&self.dir, self.meta.kind);
        std::fs::create_dir_all(&self.dir)
            .map_err(|source| Error::Io { path: self.dir.clone(), source })?;
        let tmp = index_path.with_extension("faiss.tmp");
        let tmp_str = tmp.to_str().ok_or_else(|| faiss_err(&tmp, "path is not UTF-8"))?;
        faiss::write_index(index, tmp_str).map_err(|e| faiss_err(&tmp, e))?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::rename(&tmp, &index_path).map_err(io(&index_path))?;
        let meta_tmp = meta_path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| faiss_err(&meta_path, e.to_string()))?;
        std::fs::write(&meta_tmp, text).map_err(io(&meta_tmp))?;
        std::fs::rename(&meta_tmp, &meta_path).map_err(io(&meta_path))?;
        Ok(())
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The `k` nearest rows to `query` (a unit vector of the index's length): (id, cosine),
    /// best first, each id once (at its best score).
    pub fn search(&mut self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>, Error> {
        let Some(index) = &mut self.index else { return Ok(Vec::new()) };
        let (path, _) = Self::files(&self.dir, self.meta.kind);
        if query.len() != self.meta.dim {
            return Err(faiss_err(
                &path,
                format!("query of length {}, index of {}", query.len(), self.meta.dim),
            ));
        }
        if k == 0 || self.meta.count == 0 {
            return Ok(Vec::new());
        }
        let r = index.search(query, k).map_err(|e| faiss_err(&path, e))?;
        let mut out: Vec<(i64, f32)> = Vec::with_capacity(k);
        for (l, d) in r.labels.iter().zip(r.distances) {
            if let Some(id) = l.get().map(u64::cast_signed)
                && !out.iter().any(|(x, _)| *x == id)
            {
                out.push((id, d));
            }
        }
        Ok(out)
    }
}

/// The store's feature vectors, of the newest event's layout.
pub struct Features<'a>(pub &'a mld_eventstore::Store);

impl Source for Features<'_> {
    fn key(&self) -> Result<Option<(String, usize)>, Error> {
        Ok(self.0.latest_layout()?.filter(|(_, n)| *n > 0).map(|(l, n)| (format!("{l:016x}"), n)))
    }

    fn rows(&self, key: &str, after: i64, each: &mut dyn FnMut(i64, &[f32])) -> Result<(), Error> {
        let want = u64::from_str_radix(key, 16).ok();
        self.0.vectors(after, |id, layout, v| {
            if Some(layout) == want {
                each(id, v);
            }
        })?;
        Ok(())
    }
}

/// The store's summary embeddings made by one model (each the concatenated embeddings of the
/// summary's facets); summaries without one are embedded with `embed` (in memory:
/// rag-ingester stores them first, see `Store::set_embeddings`).
pub struct Texts<'a> {
    pub store: &'a mld_eventstore::Store,
    pub model: String,
    pub dim: usize,
    pub embed: &'a dyn Fn(&str) -> Vec<f32>,
}

impl Source for Texts<'_> {
    fn key(&self) -> Result<Option<(String, usize)>, Error> {
        Ok((self.store.max_summary_id()? > 0).then(|| (self.model.clone(), self.dim)))
    }

    fn rows(&self, key: &str, after: i64, each: &mut dyn FnMut(i64, &[f32])) -> Result<(), Error> {
        for s in self.store.summaries(after)? {
            match &s.embedding {
                Some((model, v)) if model == key => {
                    for facet in v.chunks_exact(self.dim) {
                        each(s.id, facet);
                    }
                }
                _ => {
                    for facet in mld_eventstore::event::facets(&s.text) {
                        each(s.id, &(self.embed)(facet));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows in memory: `(id, vector)`, all of one key.
    struct Rows(Vec<(i64, Vec<f32>)>);

    impl Source for Rows {
        fn key(&self) -> Result<Option<(String, usize)>, Error> {
            Ok(self.0.first().map(|(_, v)| ("k".to_owned(), v.len())))
        }
        fn rows(
            &self,
            _: &str,
            after: i64,
            each: &mut dyn FnMut(i64, &[f32]),
        ) -> Result<(), Error> {
            self.0.iter().filter(|(id, _)| *id > after).for_each(|(id, v)| each(*id, v));
            Ok(())
        }
    }

    fn unit(i: i64) -> Vec<f32> {
        #[expect(clippy::cast_precision_loss, reason = "small test ids")]
        let a = i as f32;
        let n = (1.0 + a * a).sqrt();
        vec![1.0 / n, a / n]
    }

    #[test]
    fn an_index_opened_empty_is_built_when_rows_arrive_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ix, how) = VectorIndex::open(dir.path(), Kind::Features, &Rows(vec![])).unwrap();
        assert_eq!(how, Opened::Empty);
        assert_eq!(ix.add_from(&Rows(vec![])).unwrap(), 0);
        let mut rows = Rows((1..=3).map(|i| (i, unit(i))).collect());
        assert_eq!(ix.add_from(&rows).unwrap(), 3);
        rows.0.push((4, unit(4)));
        assert_eq!(ix.add_from(&rows).unwrap(), 1);
        assert_eq!((ix.meta().count, ix.meta().max_id, ix.meta().dim), (4, 4, 2));
        assert_eq!(ix.search(&unit(4), 1).unwrap()[0].0, 4);
        ix.save().unwrap();
        let (ix, how) = VectorIndex::open(dir.path(), Kind::Features, &rows).unwrap();
        assert_eq!((how, ix.meta().count), (Opened::Fresh, 4));
    }
}
