//! The etcd v3 Lease service (`LeaseGrant`, `LeaseRevoke`, `LeaseKeepAlive`,
//! `LeaseTimeToLive`, `LeaseLeases`) and lease expiry.
//!
//! TTLs are persisted with the leases; deadlines are not: after a restart every lease has its
//! full TTL again, as etcd's do after a leader change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::proto::{
    PbLeaseGrantRequest, PbLeaseGrantResponse, PbLeaseKeepAliveRequest, PbLeaseKeepAliveResponse,
    PbLeaseLeasesRequest, PbLeaseLeasesResponse, PbLeaseRevokeRequest, PbLeaseRevokeResponse,
    PbLeaseService, PbLeaseStatus, PbLeaseTimeToLiveRequest, PbLeaseTimeToLiveResponse,
};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::kv::Shared;
use crate::status::Refused;

/// The longest TTL etcd grants (`lease.MaxLeaseTTL`, about 285 years).
pub const MAX_TTL_SECS: i64 = 9_000_000_000;

/// When each lease ends.
#[derive(Debug, Default)]
pub struct Deadlines(Mutex<HashMap<i64, Instant>>);

impl Deadlines {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set(&self, id: i64, ttl: i64) {
        let secs = u64::try_from(ttl).unwrap_or(0);
        self.map().insert(id, Instant::now() + Duration::from_secs(secs));
    }

    pub fn remove(&self, id: i64) {
        self.map().remove(&id);
    }

    /// Seconds left (rounded up, as etcd reports them), or `None` for an unknown lease.
    pub fn left(&self, id: i64) -> Option<i64> {
        self.map().get(&id).map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            i64::try_from(left.as_millis().div_ceil(1000)).unwrap_or(i64::MAX)
        })
    }

    /// The leases whose time is up.
    pub fn expired(&self) -> Vec<i64> {
        let now = Instant::now();
        self.map().iter().filter(|(_, d)| **d <= now).map(|(id, _)| *id).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Lease(pub Arc<Shared>);

fn new_id(shared: &Shared) -> i64 {
    let store = shared.store();
    let mut id = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            & 0x3fff_ffff_ffff_ffff,
    )
    .unwrap_or(1);
    while id == 0 || store.lease_ttl(id).is_some() {
        id = id.wrapping_add(1) & 0x3fff_ffff_ffff_ffff;
    }
    id
}

/// Revokes every lease whose time is up, deleting its keys; returns how many.
pub fn expire(shared: &Shared) -> usize {
    let expired = shared.deadlines.expired();
    for id in &expired {
        let mut store = shared.store();
        match store.lease_revoke(*id) {
            Ok((rev, events)) => {
                shared.publish(&events);
                drop(store);
                tracing::debug!(lease = id, revision = rev, keys = events.len(), "lease expired");
            }
            Err(e) => tracing::error!(lease = id, error = %e, "revoking an expired lease failed"),
        }
        shared.deadlines.remove(*id);
    }
    expired.len()
}

#[tonic::async_trait]
impl PbLeaseService for Lease {
    async fn lease_grant(
        &self,
        req: Request<PbLeaseGrantRequest>,
    ) -> Result<Response<PbLeaseGrantResponse>, Status> {
        let req = req.into_inner();
        if req.ttl > MAX_TTL_SECS {
            return Err(Refused::TooLargeTtl.into());
        }
        let id = if req.id == 0 { new_id(&self.0) } else { req.id };
        let ttl = req.ttl.max(self.0.min_ttl_secs);
        let mut store = self.0.store();
        store.lease_grant(id, ttl)?;
        self.0.deadlines.set(id, ttl);
        let rev = store.revision();
        Ok(Response::new(PbLeaseGrantResponse {
            header: self.0.header(rev),
            id,
            ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        req: Request<PbLeaseRevokeRequest>,
    ) -> Result<Response<PbLeaseRevokeResponse>, Status> {
        let id = req.into_inner().id;
        let mut store = self.0.store();
        let (rev, events) = store.lease_revoke(id)?;
        self.0.publish(&events);
        drop(store);
        self.0.deadlines.remove(id);
        Ok(Response::new(PbLeaseRevokeResponse { header: self.0.header(rev) }))
    }

    type LeaseKeepAliveStream = ReceiverStream<Result<PbLeaseKeepAliveResponse, Status>>;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<PbLeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let shared = Arc::clone(&self.0);
        tokio::spawn(async move {
            while let Ok(Some(r)) = inbound.message().await {
                // An unknown (expired, revoked) lease answers TTL 0, as etcd does.
                let (rev, ttl) = {
                    let store = shared.store();
                    (store.revision(), store.lease_ttl(r.id).unwrap_or(0))
                };
                if ttl > 0 {
                    shared.deadlines.set(r.id, ttl);
                }
                let reply = PbLeaseKeepAliveResponse { header: shared.header(rev), id: r.id, ttl };
                if tx.send(Ok(reply)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<PbLeaseTimeToLiveRequest>,
    ) -> Result<Response<PbLeaseTimeToLiveResponse>, Status> {
        let req = req.into_inner();
        let store = self.0.store();
        let rev = store.revision();
        // etcd 3.4 answers an unknown lease with TTL -1, not an error.
        let Some(granted) = store.lease_ttl(req.id) else {
            return Ok(Response::new(PbLeaseTimeToLiveResponse {
                header: self.0.header(rev),
                id: req.id,
                ttl: -1,
                granted_ttl: 0,
                keys: vec![],
            }));
        };
        let keys = if req.keys { store.lease_keys(req.id) } else { vec![] };
        drop(store);
        Ok(Response::new(PbLeaseTimeToLiveResponse {
            header: self.0.header(rev),
            id: req.id,
            ttl: self.0.deadlines.left(req.id).unwrap_or(0),
            granted_ttl: granted,
            keys,
        }))
    }

    async fn lease_leases(
        &self,
        _req: Request<PbLeaseLeasesRequest>,
    ) -> Result<Response<PbLeaseLeasesResponse>, Status> {
        let store = self.0.store();
        let mut leases: Vec<PbLeaseStatus> =
            store.leases().map(|(id, _)| PbLeaseStatus { id }).collect();
        leases.sort_by_key(|l| l.id);
        Ok(Response::new(PbLeaseLeasesResponse { header: self.0.header(store.revision()), leases }))
    }
}
