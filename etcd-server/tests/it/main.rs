//! etcd-server against a real etcd (Debian's `etcd-server` package, 3.4): the same client-level
//! scenario, through the `etcd-client` crate, runs against both on free loopback ports, and
//! the two traces (revisions, versions, values, counts, errors with their codes and messages)
//! must be equal. Cluster and member ids and raft terms are left out of the traces.
#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::many_single_char_names,
    clippy::float_cmp,
    reason = "test"
)]

mod admin;
mod compat;
mod control;
mod durability;
mod etcdctl;
mod malformed;
mod requests;
mod server;
mod tls;
