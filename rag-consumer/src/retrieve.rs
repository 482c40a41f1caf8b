//! Retrieval: the store (read-only), its two vector indices and the embedding model.
//!
//! A question's filters select events in SQL; its topic, embedded, finds the nearest facets
//! of event summaries in the text index (cosine ≥ [`MIN_SIMILARITY`] and within
//! [`SIMILARITY_BAND`] of the best), and only events with one of those summaries are kept,
//! the most similar summaries first and newest first within one. A question with no topic is
//! answered from the filters alone, newest first.

use std::path::Path;

use mld_embed::Embedder;
use mld_eventstore::{Event, Filter, Store};
use mld_vindex::{Features, Kind, Opened, Texts, VectorIndex};

use crate::query::Query;

/// Summaries whose best facet is less similar than this to the topic are not relevant.
pub const MIN_SIMILARITY: f32 = 0.35;
/// Summaries within this much of the best match are kept.
pub const SIMILARITY_BAND: f32 = 0.10;
/// Facet vectors considered per question at most.
const FACETS: usize = 256;

pub struct Retriever {
    pub store: Store,
    embedder: Embedder,
    text: VectorIndex,
    features: Option<VectorIndex>,
    /// How each index was opened (for `rag status`).
    pub opened: Vec<(Kind, Opened)>,
}

/// An event and why it was retrieved.
#[derive(Debug, Clone)]
pub struct Hit {
    pub event: Event,
    /// Cosine similarity of its summary to the topic (or of its features, for `similar`);
    /// `None` when the filters alone selected it.
    pub similarity: Option<f32>,
}

impl Retriever {
    /// Opens the store read-only and loads (or, in memory, catches up or rebuilds) the text
    /// index; the feature index is loaded when first needed.
    pub fn open(store_path: &Path, model_dir: &Path) -> Result<Self, String> {
        let store = Store::open_read_only(store_path).map_err(|e| e.to_string())?;
        let embedder = Embedder::load(model_dir).map_err(|e| format!("{e} (embedding_model)"))?;
        let dir = mld_vindex::dir_for(store_path);
        let embed = |t: &str| embedder.embed(t);
        let texts =
            Texts { store: &store, model: embedder.model_id(), dim: embedder.dim(), embed: &embed };
        let (text, how) = VectorIndex::open(&dir, Kind::Text, &texts).map_err(|e| e.to_string())?;
        Ok(Retriever { store, embedder, text, features: None, opened: vec![(Kind::Text, how)] })
    }

    /// Events for a parsed question, at most `k`.
    pub fn search(&mut self, q: &Query, k: usize) -> Result<Vec<Hit>, String> {
        if q.topic.trim().is_empty() {
            let events = self.store.query(&q.filter, k).map_err(|e| e.to_string())?;
            return Ok(events.into_iter().map(|event| Hit { event, similarity: None }).collect());
        }
        let v = self.embedder.embed(&q.topic);
        let found = self.text.search(&v, FACETS).map_err(|e| e.to_string())?;
        let best = found.first().map_or(0.0, |(_, s)| *s);
        let mut hits = Vec::new();
        for (summary, sim) in found {
            if sim < MIN_SIMILARITY || sim < best - SIMILARITY_BAND || hits.len() >= k {
                break;
            }
            let f = Filter { summaries: vec![summary], ..q.filter.clone() };
            let events = self.store.query(&f, k - hits.len()).map_err(|e| e.to_string())?;
            hits.extend(events.into_iter().map(|event| Hit { event, similarity: Some(sim) }));
        }
        Ok(hits)
    }

    /// Events whose feature vectors are nearest to event `id`'s (itself excluded).
    pub fn similar(&mut self, id: i64, k: usize) -> Result<(Event, Vec<Hit>), String> {
        let by_id = Filter { ids: vec![id], ..Filter::default() };
        let target = self
            .store
            .query(&by_id, 1)
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| format!("no event {id} in {}", self.store.path().display()))?;
        if self.features.is_none() {
            let dir = mld_vindex::dir_for(self.store.path());
            let (ix, how) = VectorIndex::open(&dir, Kind::Features, &Features(&self.store))
                .map_err(|e| e.to_string())?;
            self.opened.push((Kind::Features, how));
            self.features = Some(ix);
        }
        let Some(ix) = self.features.as_mut() else { unreachable!("set above") };
        if format!("{:016x}", target.layout) != ix.meta().key {
            return Err(format!(
                "event {id} has features of another layout than the newest events; it has no \
                 comparable neighbours"
            ));
        }
        let found = ix.search(&target.vector, k + 1).map_err(|e| e.to_string())?;
        let ids: Vec<i64> = found.iter().map(|(i, _)| *i).filter(|i| *i != id).take(k).collect();
        let f = Filter { ids: ids.clone(), ..Filter::default() };
        let mut events = self.store.query(&f, ids.len()).map_err(|e| e.to_string())?;
        let mut hits = Vec::new();
        for (i, sim) in found.iter().filter(|(i, _)| *i != id).take(k) {
            if let Some(p) = events.iter().position(|e| e.id == *i) {
                hits.push(Hit { event: events.swap_remove(p), similarity: Some(*sim) });
            }
        }
        Ok((target, hits))
    }
}
