//! The etcd v3 Watch service: a stream carries any number of watches; each replays history
//! from its start revision and then follows live changes, with no gap and no duplicate
//! between the two (it subscribes to live changes before reading history and skips what the
//! replay already sent). The changes of one revision arrive in one response, in order.

use std::sync::Arc;

use etcd_client::proto::{
    PbEvent, PbResponseHeader, PbWatchRequest, PbWatchRequestUnion, PbWatchResponse, PbWatchService,
};
use tokio::sync::{broadcast, mpsc};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::kv::{Shared, to_pb};
use crate::store::{Event, KeyRange};

/// The changes of one revision, as published to live watchers.
#[derive(Debug)]
pub struct Batch {
    pub revision: i64,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone)]
pub struct Watch {
    pub shared: Arc<Shared>,
    /// How often a watch created with `progress_notify` gets an empty response carrying the
    /// revision it is synced to (etcd's `--experimental-watch-progress-notify-interval`).
    pub progress_every: std::time::Duration,
}

type Out = mpsc::Sender<Result<PbWatchResponse, Status>>;

struct Spec {
    id: i64,
    range: KeyRange,
    start: i64,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress: Option<std::time::Duration>,
}

impl Spec {
    fn response(
        &self,
        header: Option<PbResponseHeader>,
        events: &[Event],
    ) -> Option<PbWatchResponse> {
        let events: Vec<PbEvent> = events
            .iter()
            .filter(|e| self.range.contains(&e.kv.key))
            .filter(|e| !(e.deleted && self.no_delete || !e.deleted && self.no_put))
            .map(|e| PbEvent {
                r#type: i32::from(e.deleted),
                kv: Some(to_pb(e.kv.clone(), false)),
                prev_kv: if self.prev_kv {
                    e.prev.clone().map(|kv| to_pb(kv, false))
                } else {
                    None
                },
            })
            .collect();
        (!events.is_empty()).then(|| PbWatchResponse {
            header,
            watch_id: self.id,
            events,
            ..Default::default()
        })
    }
}

/// Sends history from the watch's start revision, then live batches, until the client goes
/// or the watch is cancelled. `created_at` is the revision when the watch was created (its
/// live subscription was taken before): with no start revision it follows from there.
async fn follow(
    shared: Arc<Shared>,
    spec: Spec,
    out: Out,
    mut live: broadcast::Receiver<Arc<Batch>>,
    created_at: i64,
) {
    let mut sent_up_to = if spec.start > 0 && spec.start <= created_at {
        let (now, compact, replay) = {
            let store = shared.store();
            (
                store.revision(),
                store.compact_revision(),
                store.events_since(spec.start, &spec.range),
            )
        };
        match replay {
            Ok(events) => {
                // History goes in one response, as etcd sends a catch-up.
                if let Some(r) = spec.response(shared.header(now), &events)
                    && out.send(Ok(r)).await.is_err()
                {
                    return;
                }
                now
            }
            Err(crate::store::StoreError::Compacted(_)) => {
                let _ = out
                    .send(Ok(PbWatchResponse {
                        header: shared.header(now),
                        watch_id: spec.id,
                        canceled: true,
                        compact_revision: compact,
                        cancel_reason: "etcdserver: mvcc: required revision has been compacted"
                            .into(),
                        ..Default::default()
                    }))
                    .await;
                return;
            }
            Err(e) => {
                let _ = out.send(Err(e.into())).await;
                return;
            }
        }
    } else {
        // From now on, or from a future revision.
        created_at.max(spec.start - 1)
    };
    let mut progress = spec.progress.map(|every| {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    });
    loop {
        let received = tokio::select! {
            r = live.recv() => r,
            () = async { progress.as_mut().expect("guarded").tick().await; }, if progress.is_some() => {
                // Only when every committed change has reached this watch: then the revision
                // it reports holds all the events the watcher will ever get up to it.
                let synced = {
                    let store = shared.store();
                    live.is_empty().then(|| store.revision())
                };
                if let Some(rev) = synced {
                    sent_up_to = sent_up_to.max(rev);
                    let notify = PbWatchResponse { header: shared.header(rev), watch_id: spec.id, ..Default::default() };
                    if out.send(Ok(notify)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
        };
        match received {
            Ok(batch) => {
                if batch.revision <= sent_up_to {
                    continue;
                }
                sent_up_to = batch.revision;
                if let Some(r) = spec.response(shared.header(batch.revision), &batch.events)
                    && out.send(Ok(r)).await.is_err()
                {
                    return;
                }
            }
            // Fell behind the live channel: catch up from history, then go on live.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                shared.metrics.watch_lagged.inc();
                let (now, caught_up) = {
                    let store = shared.store();
                    (store.revision(), store.events_since(sent_up_to + 1, &spec.range))
                };
                let events = match caught_up {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = out.send(Err(e.into())).await;
                        return;
                    }
                };
                if let Some(r) = spec.response(shared.header(now), &events)
                    && out.send(Ok(r)).await.is_err()
                {
                    return;
                }
                sent_up_to = now;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The watches of one stream.
struct Streamed {
    shared: Arc<Shared>,
    tx: Out,
    progress_every: std::time::Duration,
    watches: std::collections::HashMap<i64, tokio::task::JoinHandle<()>>,
    next_id: i64,
}

impl Streamed {
    /// Answers one request; false when the client is gone.
    async fn handle(&mut self, r: PbWatchRequest) -> bool {
        let shared = &self.shared;
        match r.request_union {
            Some(PbWatchRequestUnion::CreateRequest(c)) => {
                let id = if c.watch_id > 0 { c.watch_id } else { self.next_id };
                self.next_id = self.next_id.max(id + 1);
                let spec = Spec {
                    id,
                    range: KeyRange::new(c.key, c.range_end),
                    start: c.start_revision,
                    prev_kv: c.prev_kv,
                    no_put: c.filters.contains(&0),
                    no_delete: c.filters.contains(&1),
                    progress: c.progress_notify.then_some(self.progress_every),
                };
                // Subscribe before answering, so nothing after the answer is missed.
                let live = shared.subscribe();
                let rev = shared.store().revision();
                let created = PbWatchResponse {
                    header: shared.header(rev),
                    watch_id: id,
                    created: true,
                    ..Default::default()
                };
                if self.tx.send(Ok(created)).await.is_err() {
                    return false;
                }
                let task =
                    tokio::spawn(follow(Arc::clone(shared), spec, self.tx.clone(), live, rev));
                self.watches.insert(id, task);
                shared.metrics.watches_created.inc();
            }
            Some(PbWatchRequestUnion::CancelRequest(c)) => {
                if let Some(task) = self.watches.remove(&c.watch_id) {
                    task.abort();
                }
                let rev = shared.store().revision();
                let _ = self
                    .tx
                    .send(Ok(PbWatchResponse {
                        header: shared.header(rev),
                        watch_id: c.watch_id,
                        canceled: true,
                        ..Default::default()
                    }))
                    .await;
            }
            Some(PbWatchRequestUnion::ProgressRequest(_)) => {
                let rev = shared.store().revision();
                let _ = self
                    .tx
                    .send(Ok(PbWatchResponse {
                        header: shared.header(rev),
                        watch_id: -1,
                        ..Default::default()
                    }))
                    .await;
            }
            None => {}
        }
        true
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        for (_, task) in self.watches.drain() {
            task.abort();
        }
        self.shared.metrics.watch_streams.dec();
    }
}

#[tonic::async_trait]
impl PbWatchService for Watch {
    type WatchStream = ReceiverStream<Result<PbWatchResponse, Status>>;

    /// The stream's first request is answered before the call returns (and so before the
    /// response headers go out), as etcd does: a client that waits for the headers, as
    /// `etcd-client` does, then has its first watch in place, and a write it makes next is
    /// seen. Answering later lost such a write now and then (the watch was created after it).
    async fn watch(
        &self,
        req: Request<Streaming<PbWatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(256);
        self.shared.metrics.watch_streams.inc();
        let mut streamed = Streamed {
            shared: Arc::clone(&self.shared),
            tx,
            progress_every: self.progress_every,
            watches: std::collections::HashMap::new(),
            next_id: 0,
        };
        let first = inbound.message().await;
        if let Ok(Some(r)) = first
            && streamed.handle(r).await
        {
            tokio::spawn(async move {
                while let Ok(Some(r)) = inbound.message().await {
                    if !streamed.handle(r).await {
                        break;
                    }
                }
            });
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
