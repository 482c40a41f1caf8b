//! The message bus: `ZeroMQ` PUB/SUB carrying `topic + sealed envelope` (DESIGN.md §4.2).
//!
//! Each message is two frames: the topic (`flow.v1`, `detection.v1`, `control.v1`) and a
//! sealed envelope ([`mld_crypto_transport`]) of the prost encoding of the topic's message
//! type ([`BusMessage`]). Publishers bind, subscribers connect.
//!
//! Nothing is lost silently:
//! - The [`Publisher`] never blocks its caller. It is an XPUB socket with `ZMQ_XPUB_NODROP`,
//!   so a subscriber queue at its high-water mark makes the send fail at once instead of
//!   dropping in silence; the publisher then drops the message and counts it
//!   (`bus_dropped_messages_total`). A plain PUB socket would drop without telling anyone.
//! - Every envelope carries the sender's sequence number, so the [`Subscriber`] sees gaps and
//!   counts them as lost (`bus_lost_messages_total`); with one subscriber, its lost count equals
//!   the publisher's drop count exactly. Rejected messages (bad frames, wrong topic, every
//!   envelope rejection reason, undecodable protobuf) are counted by reason, and rejections
//!   that point at misconfiguration (wrong key, epoch, version) are logged, rate-limited.
//!
//! Limits: with `ZMQ_XPUB_NODROP`, one slow subscriber makes the publisher drop for every
//! subscriber of that message (libzmq checks all matching pipes), so give slow consumers their
//! own high-water mark headroom. Messages published before a subscriber has connected are not
//! delivered to it and are not counted as lost: a sender's first message seen starts its count.
//! Sockets are not thread-safe: use one publisher or subscriber per thread. Each publisher and
//! subscriber registers its counters once: give a second one in the same process its own
//! sub-registry (`registry.sub_registry_with_prefix(..)`), or the metric names collide.
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use mld_bus::{Publisher, PublisherOptions, Subscriber, SubscriberOptions};
//! use mld_crypto_transport::{KeyRing, RootSecret};
//! use mld_proto::Detection;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ctx = zmq::Context::new();
//! let ring = Arc::new(KeyRing::new(RootSecret::load("/etc/mldefender/root.key".as_ref())?, 1));
//! let mut registry = mld_telemetry::component_registry("ml-detector");
//! let mut publisher = Publisher::bind(&ctx, Arc::clone(&ring), &PublisherOptions::new("tcp://127.0.0.1:5572"), &mut registry)?;
//! let mut subscriber = Subscriber::<Detection>::connect(&ctx, ring, &SubscriberOptions::new(["tcp://127.0.0.1:5572"]), &mut registry)?;
//! publisher.publish(&Detection::default())?;
//! if let Some(received) = subscriber.recv(Duration::from_millis(100))? {
//!     println!("{:?}", received.message.verdict());
//! }
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

mod error;
mod ffi;
mod metrics;
mod publisher;
mod subscriber;
mod topic;

pub use error::BusError;
pub use publisher::{Publish, Publisher, PublisherOptions, PublisherStats};
pub use subscriber::{Received, Subscriber, SubscriberOptions, SubscriberStats};
pub use topic::{BusMessage, Topic};
pub use zmq::Context;

/// Time left until `deadline`; `None` (a timeout too large to add to now) never ends.
fn time_left(deadline: Option<std::time::Instant>) -> std::time::Duration {
    deadline.map_or(std::time::Duration::MAX, |d| {
        d.saturating_duration_since(std::time::Instant::now())
    })
}
