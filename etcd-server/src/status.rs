//! Every error etcd-server returns, mapped in this one place to the gRPC code and message etcd
//! itself returns (clients, `etcd-client` and `etcdctl` among them, match on the messages).

use tonic::{Code, Status};

use crate::store::StoreError;

/// A request refused before it reaches the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    EmptyKey,
    TooManyOps,
    /// A txn op with no request (etcd answers "key not found").
    EmptyTxnOp,
    ValueProvided,
    LeaseProvided,
    InvalidSortOption,
    /// A txn branch puts a key twice, or puts and deletes it.
    DuplicateKey,
    TooLargeTtl,
    /// Part of the API this server does not serve (named), with why.
    Unsupported(&'static str, &'static str),
}

fn etcd(code: Code, message: &str) -> Status {
    Status::new(code, format!("etcdserver: {message}"))
}

impl From<Refused> for Status {
    fn from(r: Refused) -> Self {
        match r {
            Refused::EmptyKey => etcd(Code::InvalidArgument, "key is not provided"),
            Refused::TooManyOps => {
                etcd(Code::InvalidArgument, "too many operations in txn request")
            }
            Refused::EmptyTxnOp => etcd(Code::InvalidArgument, "key not found"),
            Refused::ValueProvided => etcd(Code::InvalidArgument, "value is provided"),
            Refused::LeaseProvided => etcd(Code::InvalidArgument, "lease is provided"),
            Refused::InvalidSortOption => etcd(Code::InvalidArgument, "invalid sort option"),
            Refused::DuplicateKey => {
                etcd(Code::InvalidArgument, "duplicate key given in txn request")
            }
            Refused::TooLargeTtl => etcd(Code::OutOfRange, "too large lease TTL"),
            Refused::Unsupported(what, why) => {
                Status::new(Code::Unimplemented, format!("{what} is not supported: {why}"))
            }
        }
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::FutureRevision(_) => {
                etcd(Code::OutOfRange, "mvcc: required revision is a future revision")
            }
            StoreError::Compacted(_) => {
                etcd(Code::OutOfRange, "mvcc: required revision has been compacted")
            }
            StoreError::KeyNotFound => etcd(Code::InvalidArgument, "key not found"),
            StoreError::LeaseNotFound(_) => etcd(Code::NotFound, "requested lease not found"),
            StoreError::LeaseExists(_) => etcd(Code::FailedPrecondition, "lease already exists"),
            StoreError::DuplicateKey => {
                etcd(Code::InvalidArgument, "duplicate key given in txn request")
            }
            StoreError::Sqlite(e) => {
                tracing::error!(error = %e, "store failure");
                etcd(Code::Unavailable, "storage failure")
            }
        }
    }
}
