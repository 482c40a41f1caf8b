//! Property test: any sequence of KV and Lease requests, out-of-contract fields included
//! (empty keys, inverted ranges, negative and huge revisions, limits and TTLs, unknown enum
//! values, nested txns, unknown leases), goes through the services in process against a real
//! store: each gets a response or an etcd-style error (never a panic), the revision never
//! goes back, and what is on disk afterwards is exactly what the live store serves.

use std::sync::Arc;

use etcd_client::proto::{
    PbCompactionRequest, PbCompare, PbDeleteRequest, PbKvService, PbLeaseGrantRequest,
    PbLeaseRevokeRequest, PbLeaseService, PbPutRequest, PbRangeRequest, PbTargetUnion,
    PbTxnOpRequest, PbTxnRequest, PbTxnRequestOp,
};
use mld_etcd_server::kv::{Identity, Kv, Shared};
use mld_etcd_server::lease::Lease;
use mld_etcd_server::store::{KeyRange, Store};
use proptest::collection::vec;
use proptest::prelude::*;
use tonic::{Code, Request};

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"a".to_vec()),
        Just(b"ab".to_vec()),
        Just(b"b".to_vec()),
        Just(vec![0]),
        vec(any::<u8>(), 0..3),
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(-1), 1i64..30, Just(i64::MAX), Just(i64::MIN), any::<i64>()]
}

fn lease() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(5), Just(6), int()]
}

fn range() -> impl Strategy<Value = PbRangeRequest> {
    (key(), key(), int(), int(), -1i32..7, -1i32..7, any::<(bool, bool)>(), (int(), int()))
        .prop_map(|(key, range_end, limit, revision, sort_order, sort_target, (k, c), (lo, hi))| {
            PbRangeRequest {
                key,
                range_end,
                limit,
                revision,
                sort_order,
                sort_target,
                serializable: false,
                keys_only: k,
                count_only: c,
                min_mod_revision: lo,
                max_mod_revision: hi,
                min_create_revision: 0,
                max_create_revision: 0,
            }
        })
}

fn put() -> impl Strategy<Value = PbPutRequest> {
    (key(), vec(any::<u8>(), 0..3), lease(), any::<(bool, bool, bool)>()).prop_map(
        |(key, value, lease, (prev_kv, ignore_value, ignore_lease))| PbPutRequest {
            key,
            value,
            lease,
            prev_kv,
            ignore_value,
            ignore_lease,
        },
    )
}

fn delete() -> impl Strategy<Value = PbDeleteRequest> {
    (key(), key(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| PbDeleteRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn compare() -> impl Strategy<Value = PbCompare> {
    let union = prop_oneof![
        Just(None),
        int().prop_map(|v| Some(PbTargetUnion::Version(v))),
        int().prop_map(|v| Some(PbTargetUnion::CreateRevision(v))),
        int().prop_map(|v| Some(PbTargetUnion::ModRevision(v))),
        lease().prop_map(|v| Some(PbTargetUnion::Lease(v))),
        vec(any::<u8>(), 0..3).prop_map(|v| Some(PbTargetUnion::Value(v))),
    ];
    (key(), key(), -1i32..6, -1i32..5, union).prop_map(
        |(key, range_end, target, result, target_union)| PbCompare {
            key,
            range_end,
            target,
            result,
            target_union,
        },
    )
}

fn txn_of(
    ops: impl Strategy<Value = PbTxnRequestOp> + Clone,
) -> impl Strategy<Value = PbTxnRequest> {
    (vec(compare(), 0..3), vec(ops.clone(), 0..4), vec(ops, 0..4))
        .prop_map(|(compare, success, failure)| PbTxnRequest { compare, success, failure })
}

fn txn() -> impl Strategy<Value = PbTxnRequest> {
    let leaf = prop_oneof![
        Just(None),
        range().prop_map(|r| Some(PbTxnOpRequest::RequestRange(r))),
        put().prop_map(|p| Some(PbTxnOpRequest::RequestPut(p))),
        delete().prop_map(|d| Some(PbTxnOpRequest::RequestDeleteRange(d))),
    ]
    .prop_map(|request| PbTxnRequestOp { request });
    let op = leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            inner.clone(),
            txn_of(inner)
                .prop_map(|t| PbTxnRequestOp { request: Some(PbTxnOpRequest::RequestTxn(t)) }),
        ]
    });
    txn_of(op)
}

#[derive(Debug, Clone)]
enum Call {
    Range(PbRangeRequest),
    Put(PbPutRequest),
    Delete(PbDeleteRequest),
    Txn(PbTxnRequest),
    Compact(i64),
    Grant(i64, i64),
    Revoke(i64),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        2 => range().prop_map(Call::Range),
        4 => put().prop_map(Call::Put),
        1 => delete().prop_map(Call::Delete),
        4 => txn().prop_map(Call::Txn),
        1 => int().prop_map(Call::Compact),
        1 => (int(), lease()).prop_map(|(ttl, id)| Call::Grant(ttl, id)),
        1 => lease().prop_map(Call::Revoke),
    ]
}

/// Runs `calls`, checking that the revision never goes back; returns each one's outcome
/// (`Ok` or the error's code and message).
async fn run(kv: &Kv, lease: &Lease, calls: Vec<Call>) -> Vec<Result<(), (Code, String)>> {
    let mut outcomes = Vec::new();
    let mut revision = kv.0.store().revision();
    for c in calls {
        let r = match c {
            Call::Range(r) => kv.range(Request::new(r)).await.map(drop),
            Call::Put(p) => kv.put(Request::new(p)).await.map(drop),
            Call::Delete(d) => kv.delete_range(Request::new(d)).await.map(drop),
            Call::Txn(t) => kv.txn(Request::new(t)).await.map(drop),
            Call::Compact(revision) => kv
                .compact(Request::new(PbCompactionRequest { revision, physical: false }))
                .await
                .map(drop),
            Call::Grant(ttl, id) => {
                lease.lease_grant(Request::new(PbLeaseGrantRequest { ttl, id })).await.map(drop)
            }
            Call::Revoke(id) => {
                lease.lease_revoke(Request::new(PbLeaseRevokeRequest { id })).await.map(drop)
            }
        };
        outcomes.push(r.map_err(|s| (s.code(), s.message().to_owned())));
        let now = kv.0.store().revision();
        assert!(now >= revision, "the revision went back from {revision} to {now}");
        revision = now;
    }
    outcomes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn any_requests_get_answers_and_leave_the_store_consistent(calls in vec(call(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let shared = Arc::new(Shared::new(
            Store::open(&path).unwrap(),
            Identity { cluster_id: 1, member_id: 2 },
            5,
        ));
        let (kv, lease) = (Kv(shared.clone()), Lease(shared.clone()));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcomes = rt.block_on(async {
            lease.lease_grant(Request::new(PbLeaseGrantRequest { ttl: 60, id: 5 })).await.unwrap();
            lease.lease_grant(Request::new(PbLeaseGrantRequest { ttl: 60, id: 6 })).await.unwrap();
            run(&kv, &lease, calls).await
        });
        for (code, message) in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            prop_assert!(
                matches!(
                    code,
                    Code::InvalidArgument | Code::NotFound | Code::OutOfRange | Code::FailedPrecondition
                ),
                "{code:?}: {message}"
            );
            prop_assert!(message.starts_with("etcdserver: "), "{message}");
        }
        // What is on disk is what is served.
        let everything = KeyRange::new(vec![0], vec![0]);
        let live = shared.store();
        let reopened = Store::open(&path).unwrap();
        prop_assert_eq!(reopened.revision(), live.revision());
        prop_assert_eq!(reopened.range(&everything, 0).unwrap(), live.range(&everything, 0).unwrap());
        let mut leases: Vec<_> = live.leases().collect();
        let mut stored: Vec<_> = reopened.leases().collect();
        leases.sort_unstable();
        stored.sort_unstable();
        prop_assert_eq!(stored, leases);
    }
}
