//! The etcd v3 KV service (`Range`, `Put`, `DeleteRange`, `Txn`, `Compact`) on the [`Store`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbCompare, PbCompareTarget, PbDeleteRequest,
    PbDeleteResponse, PbKeyValue, PbKvService, PbPutRequest, PbPutResponse, PbRangeRequest,
    PbRangeResponse, PbRangeStreamResponse, PbResponseHeader, PbResponseOp, PbTargetUnion,
    PbTxnOpRequest, PbTxnOpResponse, PbTxnRequest, PbTxnRequestOp, PbTxnResponse,
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
    pub metrics: crate::metrics::Metrics,
}

impl Shared {
    pub fn new(store: Store, id: Identity, min_ttl_secs: i64) -> Self {
        let deadlines = crate::lease::Deadlines::default();
        for (lease, ttl) in store.leases() {
            deadlines.set(lease, ttl);
        }
        let (changes, _) = tokio::sync::broadcast::channel(4096);
        let metrics = crate::metrics::Metrics::default();
        Self { store: Mutex::new(store), id, deadlines, min_ttl_secs, changes, metrics }
    }

    /// Applies `writes` to the locked `store` and publishes their events to live watchers
    /// before the lock is released, so that watchers see revisions in order.
    pub fn commit(
        &self,
        store: &mut Store,
        writes: &[Write],
    ) -> Result<(i64, Vec<Applied>), Status> {
        let started = std::time::Instant::now();
        let (rev, applied, events) = store.write(writes)?;
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
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
    header: Option<PbResponseHeader>,
    req: &PbRangeRequest,
    kvs: Vec<KeyValue>,
) -> PbRangeResponse {
    let (kvs, count, more) = shape(req, kvs);
    PbRangeResponse {
        header,
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
    header: Option<PbResponseHeader>,
    req: &PbPutRequest,
    prev: Vec<KeyValue>,
) -> PbPutResponse {
    PbPutResponse {
        header,
        prev_kv: if req.prev_kv {
            prev.into_iter().next().map(|kv| to_pb(kv, false))
        } else {
            None
        },
    }
}

fn delete_response(
    header: Option<PbResponseHeader>,
    req: &PbDeleteRequest,
    done: Applied,
) -> PbDeleteResponse {
    PbDeleteResponse {
        header,
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

/// etcd's `checkRangeRequest`: a key, and a sort target it knows (etcd 3.4 itself crashes on
/// an unknown target; 3.5 refuses it like this; an unknown sort order means no sorting).
fn check_range(r: &PbRangeRequest) -> Result<(), Status> {
    need_key(&r.key)?;
    if !(0..=4).contains(&r.sort_target) {
        return Err(Refused::InvalidSortOption.into());
    }
    Ok(())
}

/// etcd's `checkPutRequest`.
fn check_put(p: &PbPutRequest) -> Result<(), Status> {
    need_key(&p.key)?;
    if p.ignore_value && !p.value.is_empty() {
        return Err(Refused::ValueProvided.into());
    }
    if p.ignore_lease && p.lease != 0 {
        return Err(Refused::LeaseProvided.into());
    }
    Ok(())
}

/// etcd's `checkTxnRequest`: the op count (a nested txn gets what its parent leaves), compare
/// keys, then every op of both branches, nested txns included.
fn check_txn(t: &PbTxnRequest, max_ops: usize) -> Result<(), Status> {
    let ops = t.compare.len().max(t.success.len()).max(t.failure.len());
    if ops > max_ops {
        return Err(Refused::TooManyOps.into());
    }
    for c in &t.compare {
        need_key(&c.key)?;
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(PbTxnOpRequest::RequestRange(r)) => check_range(r)?,
            Some(PbTxnOpRequest::RequestPut(p)) => check_put(p)?,
            Some(PbTxnOpRequest::RequestDeleteRange(d)) => need_key(&d.key)?,
            Some(PbTxnOpRequest::RequestTxn(n)) => check_txn(n, max_ops - ops)?,
            None => return Err(Refused::EmptyTxnOp.into()),
        }
    }
    Ok(())
}

/// A deleted interval as etcd's overlap check sees it: `[key, range_end)` taken literally,
/// or the key alone (so etcd's "from key" end `\0` covers nothing here, as there).
fn deletes(key: &[u8], end: &[u8], k: &[u8]) -> bool {
    if end.is_empty() { k == key } else { key <= k && k < end }
}

/// A deleted `(key, range_end)`.
type Interval = (Vec<u8>, Vec<u8>);

/// etcd's `checkIntervals`: within one branch (and the nested txns it holds) no key is put
/// twice, or put and deleted, except that the two branches of one nested txn may put the
/// same key. Returns the branch's puts and deleted intervals.
fn check_intervals(ops: &[PbTxnRequestOp]) -> Result<(HashSet<Vec<u8>>, Vec<Interval>), Status> {
    let duplicate = || Status::from(Refused::DuplicateKey);
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                Some((d.key.clone(), d.range_end.clone()))
            }
            _ => None,
        })
        .collect();
    let deleted =
        |dels: &[(Vec<u8>, Vec<u8>)], k: &[u8]| dels.iter().any(|(a, b)| deletes(a, b, k));
    let mut puts = HashSet::new();
    for op in ops {
        let Some(PbTxnOpRequest::RequestTxn(n)) = &op.request else { continue };
        let (then_puts, then_dels) = check_intervals(&n.success)?;
        let (else_puts, else_dels) = check_intervals(&n.failure)?;
        for k in &then_puts {
            if puts.contains(k) || deleted(&dels, k) {
                return Err(duplicate());
            }
            puts.insert(k.clone());
        }
        for k in else_puts {
            if (puts.contains(&k) && !then_puts.contains(&k)) || deleted(&dels, &k) {
                return Err(duplicate());
            }
            puts.insert(k);
        }
        dels.extend(then_dels);
        dels.extend(else_dels);
    }
    for op in ops {
        let Some(PbTxnOpRequest::RequestPut(p)) = &op.request else { continue };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return Err(duplicate());
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

fn put_write(p: &PbPutRequest) -> Write {
    Write::Put {
        key: p.key.clone(),
        value: (!p.ignore_value).then(|| p.value.clone()),
        lease: (!p.ignore_lease).then_some(p.lease),
    }
}

/// Whether `cmp` holds for one key's state, as etcd's `compareKV` decides it: the target's
/// value comes from the union when it is of the target's kind and is the zero value
/// otherwise; an unknown target compares equal and an unknown result holds.
fn holds(cmp: &PbCompare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let int = |got: i64| -> Ordering {
        let want = match (&cmp.target_union, PbCompareTarget::try_from(cmp.target)) {
            (Some(PbTargetUnion::Version(v)), Ok(PbCompareTarget::Version))
            | (Some(PbTargetUnion::CreateRevision(v)), Ok(PbCompareTarget::Create))
            | (Some(PbTargetUnion::ModRevision(v)), Ok(PbCompareTarget::Mod))
            | (Some(PbTargetUnion::Lease(v)), Ok(PbCompareTarget::Lease)) => *v,
            _ => 0,
        };
        got.cmp(&want)
    };
    let ord = match PbCompareTarget::try_from(cmp.target) {
        Ok(PbCompareTarget::Value) => match &cmp.target_union {
            Some(PbTargetUnion::Value(v)) => kv.value.as_slice().cmp(v.as_slice()),
            _ => kv.value.as_slice().cmp(&[][..]),
        },
        Ok(PbCompareTarget::Version) => int(kv.version),
        Ok(PbCompareTarget::Create) => int(kv.create_revision),
        Ok(PbCompareTarget::Mod) => int(kv.mod_revision),
        Ok(PbCompareTarget::Lease) => int(kv.lease),
        Err(_) => Ordering::Equal,
    };
    // CompareResult: 0 equal, 1 greater, 2 less, 3 not equal.
    match cmp.result {
        0 => ord == Ordering::Equal,
        1 => ord == Ordering::Greater,
        2 => ord == Ordering::Less,
        3 => ord != Ordering::Equal,
        _ => true,
    }
}

/// A compare over a key (or a key range) holds when it holds for every key in it; over no
/// key, as in etcd, a value compare fails and any other is made against a missing key
/// (version, revisions and lease 0).
fn compare_holds(store: &Store, cmp: &PbCompare) -> Result<bool, Status> {
    let kvs = store.range(&KeyRange::new(cmp.key.clone(), cmp.range_end.clone()), 0)?;
    if kvs.is_empty() {
        return Ok(cmp.target != PbCompareTarget::Value as i32 && holds(cmp, &KeyValue::default()));
    }
    Ok(kvs.iter().all(|kv| holds(cmp, kv)))
}

/// The branches a txn takes, nested txns included, decided (as etcd does) on the state before
/// any of its operations apply.
struct Path {
    succeeded: bool,
    /// Per operation of the branch taken: the path of a nested txn.
    nested: Vec<Option<Path>>,
}

impl Path {
    fn choose(store: &Store, t: &PbTxnRequest) -> Result<Self, Status> {
        let mut succeeded = true;
        for c in &t.compare {
            if !compare_holds(store, c)? {
                succeeded = false;
                break;
            }
        }
        let nested = branch(t, succeeded)
            .iter()
            .map(|op| match &op.request {
                Some(PbTxnOpRequest::RequestTxn(n)) => Self::choose(store, n).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { succeeded, nested })
    }

    /// The writes along the path, in order.
    fn writes(&self, t: &PbTxnRequest, out: &mut Vec<Write>) {
        for (op, nested) in branch(t, self.succeeded).iter().zip(&self.nested) {
            match (&op.request, nested) {
                (Some(PbTxnOpRequest::RequestRange(r)), _) => out.push(Write::Range {
                    range: KeyRange::new(r.key.clone(), r.range_end.clone()),
                    revision: r.revision,
                }),
                (Some(PbTxnOpRequest::RequestPut(p)), _) => out.push(put_write(p)),
                (Some(PbTxnOpRequest::RequestDeleteRange(d)), _) => {
                    out.push(Write::Delete(KeyRange::new(d.key.clone(), d.range_end.clone())));
                }
                (Some(PbTxnOpRequest::RequestTxn(n)), Some(path)) => path.writes(n, out),
                _ => {}
            }
        }
    }

    /// The response, taking what each write did from `applied` in the order of
    /// [`Self::writes`]. As in etcd, the responses inside carry only the revision each
    /// operation saw (a nested txn's not even that): the member's identity is in the
    /// outermost header, `header`.
    fn response(
        &self,
        header: Option<PbResponseHeader>,
        t: &PbTxnRequest,
        applied: &mut impl Iterator<Item = Applied>,
        rev: i64,
    ) -> PbTxnResponse {
        let at = |revision| Some(PbResponseHeader { revision, ..Default::default() });
        let mut responses = Vec::with_capacity(self.nested.len());
        for (op, nested) in branch(t, self.succeeded).iter().zip(&self.nested) {
            let response = match (&op.request, nested) {
                (Some(PbTxnOpRequest::RequestTxn(n)), Some(path)) => PbTxnOpResponse::ResponseTxn(
                    path.response(Some(PbResponseHeader::default()), n, applied, rev),
                ),
                (Some(request), _) => {
                    let done = applied.next().unwrap_or_default();
                    match request {
                        PbTxnOpRequest::RequestRange(r) => PbTxnOpResponse::ResponseRange(
                            range_response(at(done.revision), r, done.kvs),
                        ),
                        PbTxnOpRequest::RequestPut(p) => {
                            PbTxnOpResponse::ResponsePut(put_response(at(rev), p, done.kvs))
                        }
                        PbTxnOpRequest::RequestDeleteRange(d) => {
                            PbTxnOpResponse::ResponseDeleteRange(delete_response(at(rev), d, done))
                        }
                        PbTxnOpRequest::RequestTxn(_) => continue,
                    }
                }
                (None, _) => continue,
            };
            responses.push(PbResponseOp { response: Some(response) });
        }
        PbTxnResponse { header, succeeded: self.succeeded, responses }
    }
}

fn branch(t: &PbTxnRequest, succeeded: bool) -> &[PbTxnRequestOp] {
    if succeeded { &t.success } else { &t.failure }
}

#[tonic::async_trait]
impl PbKvService for Kv {
    async fn range(
        &self,
        req: Request<PbRangeRequest>,
    ) -> Result<Response<PbRangeResponse>, Status> {
        let req = req.into_inner();
        check_range(&req)?;
        let store = self.0.store();
        let kvs =
            store.range(&KeyRange::new(req.key.clone(), req.range_end.clone()), req.revision)?;
        let rev = store.revision();
        drop(store);
        Ok(Response::new(range_response(self.0.header(rev), &req, kvs)))
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
        check_put(&req)?;
        let (rev, applied) = self.0.commit(&mut self.0.store(), &[put_write(&req)])?;
        let prev = applied.into_iter().next().unwrap_or_default().kvs;
        Ok(Response::new(put_response(self.0.header(rev), &req, prev)))
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
        Ok(Response::new(delete_response(self.0.header(rev), &req, done)))
    }

    async fn txn(&self, req: Request<PbTxnRequest>) -> Result<Response<PbTxnResponse>, Status> {
        let req = req.into_inner();
        check_txn(&req, MAX_TXN_OPS)?;
        check_intervals(&req.success)?;
        check_intervals(&req.failure)?;
        let mut store = self.0.store();
        let path = Path::choose(&store, &req)?;
        let mut writes = Vec::new();
        path.writes(&req, &mut writes);
        let (rev, applied) = self.0.commit(&mut store, &writes)?;
        drop(store);
        Ok(Response::new(path.response(self.0.header(rev), &req, &mut applied.into_iter(), rev)))
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
