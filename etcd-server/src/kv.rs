//! The etcd v3 KV service (`Range`, `Put`, `DeleteRange`, `Txn`, `Compact`) on the [`Store`].

use std::sync::{Arc, Mutex, MutexGuard};

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbCompare, PbCompareTarget, PbDeleteRequest,
    PbDeleteResponse, PbKeyValue, PbKvService, PbPutRequest, PbPutResponse, PbRangeRequest,
    PbRangeResponse, PbRangeStreamResponse, PbResponseHeader, PbResponseOp, PbTargetUnion,
    PbTxnOpRequest, PbTxnOpResponse, PbTxnRequest, PbTxnResponse,
};
use tonic::{Request, Response, Status};

use crate::status::Refused;
use crate::store::{Applied, Event, KeyRange, KeyValue, Store, Write};
use crate::watch::Batch;

/// The most operations one txn may hold (etcd's default `--max-txn-ops`).
pub const MAX_TXN_OPS: usize = 128;

/// Identity reported in every response header.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: u64,
}

/// What the services share.
#[derive(Debug)]
pub struct Shared {
    pub store: Mutex<Store>,
    pub id: Identity,
    pub deadlines: crate::lease::Deadlines,
    /// Shortest TTL granted (`min_lease_ttl_secs`).
    pub min_ttl_secs: i64,
    /// Live changes for watchers, one batch per revision, sent while the store is locked so
    /// that batches go out in revision order.
    pub changes: tokio::sync::broadcast::Sender<Arc<Batch>>,
}

impl Shared {
    pub fn new(store: Store, id: Identity, min_ttl_secs: i64) -> Self {
        let deadlines = crate::lease::Deadlines::default();
        for (lease, ttl) in store.leases() {
            deadlines.set(lease, ttl);
        }
        let (changes, _) = tokio::sync::broadcast::channel(4096);
        Self { store: Mutex::new(store), id, deadlines, min_ttl_secs, changes }
    }

    /// Applies `writes` to the locked `store` and publishes their events to live watchers
    /// before the lock is released, so that watchers see revisions in order.
    pub fn commit(
        &self,
        store: &mut Store,
        writes: &[Write],
    ) -> Result<(i64, Vec<Applied>), Status> {
        let (rev, applied, events) = store.write(writes)?;
        self.publish(&events);
        Ok((rev, applied))
    }

    /// Publishes the events of one write to live watchers (call it with the store locked).
    pub fn publish(&self, events: &[Event]) {
        if let Some(first) = events.first() {
            let batch = Batch { revision: first.kv.mod_revision, events: events.to_vec() };
            // No watcher: nothing to do.
            let _ = self.changes.send(Arc::new(batch));
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Batch>> {
        self.changes.subscribe()
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store as the last committed write left it.
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn header(&self, revision: i64) -> Option<PbResponseHeader> {
        Some(PbResponseHeader {
            cluster_id: self.id.cluster_id,
            member_id: self.id.member_id,
            revision,
            raft_term: 1,
        })
    }
}

pub fn to_pb(kv: KeyValue, keys_only: bool) -> PbKeyValue {
    PbKeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: if keys_only { Vec::new() } else { kv.value },
        lease: kv.lease,
    }
}

#[derive(Debug, Clone)]
pub struct Kv(pub Arc<Shared>);

/// Sorting, filtering, limiting and counting of a range result, as etcd does them.
fn shape(req: &PbRangeRequest, mut kvs: Vec<KeyValue>) -> (Vec<KeyValue>, i64, bool) {
    // etcd counts the range before the revision filters (a fact the compatibility test pins).
    let count = i64::try_from(kvs.len()).unwrap_or(i64::MAX);
    kvs.retain(|kv| {
        (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
            && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
    });
    // SortOrder: 0 none, 1 ascend, 2 descend; SortTarget: 0 key, 1 version, 2 create, 3 mod,
    // 4 value. A target other than the key with no order sorts ascending, as etcd does.
    let order = match (req.sort_order, req.sort_target) {
        (0, 0) => 0,
        (0, _) => 1,
        (o, _) => o,
    };
    if order != 0 {
        match req.sort_target {
            1 => kvs.sort_by_key(|kv| kv.version),
            2 => kvs.sort_by_key(|kv| kv.create_revision),
            3 => kvs.sort_by_key(|kv| kv.mod_revision),
            4 => kvs.sort_by(|a, b| a.value.cmp(&b.value)),
            _ => kvs.sort_by(|a, b| a.key.cmp(&b.key)),
        }
        if order == 2 {
            kvs.reverse();
        }
    }
    let more = req.limit > 0 && kvs.len() > usize::try_from(req.limit).unwrap_or(usize::MAX);
    if more {
        kvs.truncate(usize::try_from(req.limit).unwrap_or(usize::MAX));
    }
    (kvs, count, more)
}

fn range_response(
    shared: &Shared,
    req: &PbRangeRequest,
    kvs: Vec<KeyValue>,
    rev: i64,
) -> PbRangeResponse {
    let (kvs, count, more) = shape(req, kvs);
    PbRangeResponse {
        header: shared.header(rev),
        kvs: if req.count_only {
            Vec::new()
        } else {
            kvs.into_iter().map(|kv| to_pb(kv, req.keys_only)).collect()
        },
        more,
        count,
    }
}

fn put_response(
    shared: &Shared,
    req: &PbPutRequest,
    prev: Vec<KeyValue>,
    rev: i64,
) -> PbPutResponse {
    PbPutResponse {
        header: shared.header(rev),
        prev_kv: if req.prev_kv {
            prev.into_iter().next().map(|kv| to_pb(kv, false))
        } else {
            None
        },
    }
}

fn delete_response(
    shared: &Shared,
    req: &PbDeleteRequest,
    done: Applied,
    rev: i64,
) -> PbDeleteResponse {
    PbDeleteResponse {
        header: shared.header(rev),
        deleted: done.deleted,
        prev_kvs: if req.prev_kv {
            done.kvs.into_iter().map(|kv| to_pb(kv, false)).collect()
        } else {
            vec![]
        },
    }
}

fn need_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() { Err(Refused::EmptyKey.into()) } else { Ok(()) }
}

fn put_write(p: &PbPutRequest) -> Write {
    Write::Put {
        key: p.key.clone(),
        value: (!p.ignore_value).then(|| p.value.clone()),
        lease: (!p.ignore_lease).then_some(p.lease),
    }
}

/// Whether `cmp` holds for one key's state (`None`: the key does not exist, where etcd
/// compares version, create and mod revisions and lease as 0, and a value never matches).
fn holds(cmp: &PbCompare, kv: Option<&KeyValue>) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (PbCompareTarget::try_from(cmp.target), &cmp.target_union) {
        (Ok(PbCompareTarget::Version), Some(PbTargetUnion::Version(v))) => {
            Some(kv.map_or(0, |k| k.version).cmp(v))
        }
        (Ok(PbCompareTarget::Create), Some(PbTargetUnion::CreateRevision(v))) => {
            Some(kv.map_or(0, |k| k.create_revision).cmp(v))
        }
        (Ok(PbCompareTarget::Mod), Some(PbTargetUnion::ModRevision(v))) => {
            Some(kv.map_or(0, |k| k.mod_revision).cmp(v))
        }
        (Ok(PbCompareTarget::Lease), Some(PbTargetUnion::Lease(v))) => {
            Some(kv.map_or(0, |k| k.lease).cmp(v))
        }
        (Ok(PbCompareTarget::Value), Some(PbTargetUnion::Value(v))) => {
            kv.map(|k| k.value.as_slice().cmp(v.as_slice()))
        }
        // A target with no value of its kind compares as etcd's zero value.
        (Ok(PbCompareTarget::Value), None) => kv.map(|k| k.value.as_slice().cmp(&[][..])),
        (Ok(PbCompareTarget::Version), None) => Some(kv.map_or(0, |k| k.version).cmp(&0)),
        (Ok(PbCompareTarget::Create), None) => Some(kv.map_or(0, |k| k.create_revision).cmp(&0)),
        (Ok(PbCompareTarget::Mod), None) => Some(kv.map_or(0, |k| k.mod_revision).cmp(&0)),
        (Ok(PbCompareTarget::Lease), None) => Some(kv.map_or(0, |k| k.lease).cmp(&0)),
        _ => None,
    };
    // CompareResult: 0 equal, 1 greater, 2 less, 3 not equal.
    match (ord, cmp.result) {
        (Some(o), 0) => o == Ordering::Equal,
        (Some(o), 1) => o == Ordering::Greater,
        (Some(o), 2) => o == Ordering::Less,
        (Some(o), 3) => o != Ordering::Equal,
        _ => false,
    }
}

/// A compare over a key (or a key range) holds when it holds for every key in it; with no
/// key, as in etcd, it is checked against a missing key (which no value matches).
fn compare_holds(store: &Store, cmp: &PbCompare) -> Result<bool, Status> {
    let kvs = store.range(&KeyRange::new(cmp.key.clone(), cmp.range_end.clone()), 0)?;
    if kvs.is_empty() {
        return Ok(holds(cmp, None));
    }
    Ok(kvs.iter().all(|kv| holds(cmp, Some(kv))))
}

#[tonic::async_trait]
impl PbKvService for Kv {
    async fn range(
        &self,
        req: Request<PbRangeRequest>,
    ) -> Result<Response<PbRangeResponse>, Status> {
        let req = req.into_inner();
        need_key(&req.key)?;
        let store = self.0.store();
        let kvs =
            store.range(&KeyRange::new(req.key.clone(), req.range_end.clone()), req.revision)?;
        let rev = store.revision();
        drop(store);
        Ok(Response::new(range_response(&self.0, &req, kvs, rev)))
    }

    type RangeStreamStream =
        tonic::codegen::tokio_stream::Empty<Result<PbRangeStreamResponse, Status>>;

    async fn range_stream(
        &self,
        _req: Request<PbRangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        Err(Refused::Unsupported("RangeStream", "not part of the etcd 3.4 API this server speaks")
            .into())
    }

    async fn put(&self, req: Request<PbPutRequest>) -> Result<Response<PbPutResponse>, Status> {
        let req = req.into_inner();
        need_key(&req.key)?;
        let (rev, applied) = self.0.commit(&mut self.0.store(), &[put_write(&req)])?;
        let prev = applied.into_iter().next().unwrap_or_default().kvs;
        Ok(Response::new(put_response(&self.0, &req, prev, rev)))
    }

    async fn delete_range(
        &self,
        req: Request<PbDeleteRequest>,
    ) -> Result<Response<PbDeleteResponse>, Status> {
        let req = req.into_inner();
        need_key(&req.key)?;
        let range = KeyRange::new(req.key.clone(), req.range_end.clone());
        let (rev, applied) = self.0.commit(&mut self.0.store(), &[Write::Delete(range)])?;
        let done = applied.into_iter().next().unwrap_or_default();
        Ok(Response::new(delete_response(&self.0, &req, done, rev)))
    }

    async fn txn(&self, req: Request<PbTxnRequest>) -> Result<Response<PbTxnResponse>, Status> {
        let req = req.into_inner();
        if req.compare.len().max(req.success.len()).max(req.failure.len()) > MAX_TXN_OPS {
            return Err(Refused::TooManyOps.into());
        }
        let mut store = self.0.store();
        let mut succeeded = true;
        for c in &req.compare {
            if !compare_holds(&store, c)? {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded { &req.success } else { &req.failure };
        let mut writes = Vec::with_capacity(ops.len());
        for op in ops {
            writes.push(match &op.request {
                Some(PbTxnOpRequest::RequestRange(r)) => {
                    need_key(&r.key)?;
                    Write::Range {
                        range: KeyRange::new(r.key.clone(), r.range_end.clone()),
                        revision: r.revision,
                    }
                }
                Some(PbTxnOpRequest::RequestPut(p)) => {
                    need_key(&p.key)?;
                    put_write(p)
                }
                Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                    need_key(&d.key)?;
                    Write::Delete(KeyRange::new(d.key.clone(), d.range_end.clone()))
                }
                Some(PbTxnOpRequest::RequestTxn(_)) => {
                    return Err(Refused::Unsupported("a nested txn", "not implemented yet").into());
                }
                None => return Err(Refused::EmptyTxnOp.into()),
            });
        }
        let (rev, applied) = self.0.commit(&mut store, &writes)?;
        drop(store);
        let mut responses = Vec::with_capacity(ops.len());
        for (op, done) in ops.iter().zip(applied) {
            let response = match &op.request {
                Some(PbTxnOpRequest::RequestRange(r)) => {
                    PbTxnOpResponse::ResponseRange(range_response(&self.0, r, done.kvs, rev))
                }
                Some(PbTxnOpRequest::RequestPut(p)) => {
                    PbTxnOpResponse::ResponsePut(put_response(&self.0, p, done.kvs, rev))
                }
                Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                    PbTxnOpResponse::ResponseDeleteRange(delete_response(&self.0, d, done, rev))
                }
                _ => continue,
            };
            responses.push(PbResponseOp { response: Some(response) });
        }
        Ok(Response::new(PbTxnResponse { header: self.0.header(rev), succeeded, responses }))
    }

    async fn compact(
        &self,
        req: Request<PbCompactionRequest>,
    ) -> Result<Response<PbCompactionResponse>, Status> {
        let mut store = self.0.store();
        store.compact(req.into_inner().revision)?;
        let rev = store.revision();
        Ok(Response::new(PbCompactionResponse { header: self.0.header(rev) }))
    }
}
