//! The two vector indices (`mld_vindex`) kept beside the store: the feature index gets every
//! committed event; the text index every new summary, embedded once here and stored with it
//! so the `rag` CLI never has to. The store stays the record: an index that fails to update
//! or save is rebuilt from it at the next start (or by `rag-ingester reindex`).

use std::time::{Duration, Instant};

use mld_embed::Embedder;
use mld_eventstore::Store;
use mld_vindex::{Features, Kind, Opened, Texts, VectorIndex};

/// How often a changed index is written out while running.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);

pub use mld_vindex::dir_for;

pub struct Indices {
    embedder: Embedder,
    features: VectorIndex,
    text: VectorIndex,
    changed: Option<Instant>,
}

impl Indices {
    /// Embeds the summaries that lack an embedding, then loads both indices (rebuilding a
    /// missing or stale one) and saves what changed. `progress` hears what is happening.
    pub fn open(
        store: &mut Store,
        embedder: Embedder,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Self, String> {
        let dir = dir_for(store.path());
        let n = embed_missing(store, &embedder, progress)?;
        if n > 0 {
            progress(&format!("embedded {n} new summaries"));
        }
        let embed = |t: &str| embedder.embed(t);
        let (features, how_f) =
            VectorIndex::open(&dir, Kind::Features, &Features(store)).map_err(|e| e.to_string())?;
        let texts = Texts { store, model: embedder.model_id(), dim: embedder.dim(), embed: &embed };
        let (text, how_t) =
            VectorIndex::open(&dir, Kind::Text, &texts).map_err(|e| e.to_string())?;
        for (ix, how) in [(&features, &how_f), (&text, &how_t)] {
            let m = ix.meta();
            progress(&format!(
                "{} index: {} vectors ({}), {how}",
                m.kind.name(),
                m.count,
                m.factory
            ));
        }
        let ix = Indices { embedder, features, text, changed: None };
        if how_f != Opened::Fresh || how_t != Opened::Fresh {
            ix.save()?;
        }
        Ok(ix)
    }

    /// After a commit: embeds new summaries and adds new rows to both indices. Returns the
    /// rows added.
    pub fn update(&mut self, store: &mut Store) -> Result<u64, String> {
        embed_missing(store, &self.embedder, &mut |_| {})?;
        let embed = |t: &str| self.embedder.embed(t);
        let mut added = self.features.add_from(&Features(store)).map_err(|e| e.to_string())?;
        let texts = Texts {
            store,
            model: self.embedder.model_id(),
            dim: self.embedder.dim(),
            embed: &embed,
        };
        added += self.text.add_from(&texts).map_err(|e| e.to_string())?;
        if added > 0 {
            self.changed.get_or_insert_with(Instant::now);
        }
        Ok(added)
    }

    /// Saves when something changed at least [`SAVE_EVERY`] ago (or now, with `force`).
    pub fn save_if_due(&mut self, force: bool) -> Result<bool, String> {
        match self.changed {
            Some(t) if force || t.elapsed() >= SAVE_EVERY => {
                self.save()?;
                self.changed = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn save(&self) -> Result<(), String> {
        self.features.save().map_err(|e| e.to_string())?;
        self.text.save().map_err(|e| e.to_string())
    }

    pub fn counts(&self) -> (u64, u64) {
        (self.features.meta().count, self.text.meta().count)
    }
}

/// Embeds and stores every summary without an embedding from this model.
fn embed_missing(
    store: &mut Store,
    embedder: &Embedder,
    progress: &mut dyn FnMut(&str),
) -> Result<usize, String> {
    let model = embedder.model_id();
    let todo = store.summaries_to_embed(&model).map_err(|e| e.to_string())?;
    let mut done = Vec::with_capacity(todo.len());
    let mut last = Instant::now();
    for (i, s) in todo.iter().enumerate() {
        let v: Vec<f32> =
            mld_eventstore::event::facets(&s.1).flat_map(|f| embedder.embed(f)).collect();
        done.push((s.0, v));
        if last.elapsed() >= Duration::from_secs(1) {
            progress(&format!("embedding summaries: {}/{}", i + 1, todo.len()));
            last = Instant::now();
        }
    }
    store.set_embeddings(&model, &done).map_err(|e| e.to_string())?;
    Ok(done.len())
}
