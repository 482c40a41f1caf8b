use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_crypto_transport::{KeyRing, OpenError, Opener};
use mld_telemetry::RateLimit;
use mld_telemetry::prometheus_client::registry::Registry;

use crate::error::socket_err;
use crate::metrics::{REJECT_DECODE, REJECT_FRAMES, REJECT_TOPIC, SubscriberMetrics};
use crate::{BusError, BusMessage};

/// How a subscriber connects.
#[derive(Debug, Clone)]
pub struct SubscriberOptions {
    /// Publisher endpoints.
    pub connect: Vec<String>,
    /// Messages queued before the subscriber stops reading from the network, which makes
    /// publishers drop (and count) instead.
    pub recv_hwm: u32,
}

impl SubscriberOptions {
    pub fn new<S: Into<String>>(connect: impl IntoIterator<Item = S>) -> Self {
        Self { connect: connect.into_iter().map(Into::into).collect(), recv_hwm: 100_000 }
    }
}

/// An accepted message with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<M> {
    pub message: M,
    pub sender_id: u64,
    pub seq: u64,
    pub key_epoch: u32,
}

/// The subscriber's accounting so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Messages returned by [`Subscriber::recv`].
    pub received: u64,
    /// Sequence numbers skipped by senders' messages (lost in transit or dropped upstream).
    pub lost: u64,
    /// Messages that arrived after a later one (already counted in `lost`).
    pub late: u64,
    /// Rejected messages by reason (only reasons seen at least once).
    pub rejected: BTreeMap<&'static str, u64>,
}

/// Receives, authenticates and decodes the messages of one topic.
pub struct Subscriber<M: BusMessage> {
    socket: zmq::Socket,
    endpoints: String,
    opener: Opener,
    metrics: SubscriberMetrics,
    misconfig_log: RateLimit,
    reject_log: RateLimit,
    _message: PhantomData<fn() -> M>,
}

impl<M: BusMessage> std::fmt::Debug for Subscriber<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("topic", &M::TOPIC)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

const LOG_PERIOD: Duration = Duration::from_secs(10);

impl<M: BusMessage> Subscriber<M> {
    /// Connects to every endpoint, subscribes to `M`'s topic and registers the counters.
    pub fn connect(
        ctx: &zmq::Context,
        ring: Arc<KeyRing>,
        options: &SubscriberOptions,
        registry: &mut Registry,
    ) -> Result<Self, BusError> {
        let endpoints = options.connect.join(",");
        let socket = ctx.socket(zmq::SUB).map_err(socket_err("socket", &endpoints))?;
        let hwm = i32::try_from(options.recv_hwm).unwrap_or(i32::MAX);
        socket.set_rcvhwm(hwm).map_err(socket_err("set RCVHWM", &endpoints))?;
        socket.set_linger(0).map_err(socket_err("set LINGER", &endpoints))?;
        socket
            .set_subscribe(M::TOPIC.as_str().as_bytes())
            .map_err(socket_err("subscribe", &endpoints))?;
        for ep in &options.connect {
            socket.connect(ep).map_err(socket_err("connect", ep))?;
        }
        tracing::info!(topic = %M::TOPIC, endpoints = %endpoints, recv_hwm = options.recv_hwm, "bus subscriber connected");
        Ok(Self {
            socket,
            endpoints,
            opener: Opener::new(ring, M::TOPIC.channel()),
            metrics: SubscriberMetrics::register(registry, M::TOPIC),
            misconfig_log: RateLimit::new(LOG_PERIOD),
            reject_log: RateLimit::new(LOG_PERIOD),
            _message: PhantomData,
        })
    }

    /// The next accepted message, waiting at most `timeout`; `None` when none arrived.
    /// Rejected messages are counted and skipped.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Received<M>>, BusError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = crate::time_left(deadline);
            let ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
            let ready =
                self.socket.poll(zmq::POLLIN, ms).map_err(socket_err("poll", &self.endpoints))?;
            if ready == 0 {
                return Ok(None);
            }
            let frames = match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN) => continue,
                Err(e) => {
                    return Err(BusError::Socket {
                        op: "recv",
                        endpoint: self.endpoints.clone(),
                        source: e,
                    });
                }
            };
            if let Some(received) = self.accept(&frames) {
                return Ok(Some(received));
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }

    fn accept(&mut self, frames: &[Vec<u8>]) -> Option<Received<M>> {
        let [topic, envelope] = frames else {
            self.reject(REJECT_FRAMES, None);
            return None;
        };
        if topic.as_slice() != M::TOPIC.as_str().as_bytes() {
            self.reject(REJECT_TOPIC, None);
            return None;
        }
        let opened = match self.opener.open(envelope) {
            Ok(opened) => opened,
            Err(e) => {
                // Authentic but unusable: the sequence numbers it skipped are still lost.
                self.metrics.lost.inc_by(e.seq_gap());
                self.reject(e.reason().as_str(), Some(&e));
                return None;
            }
        };
        // Authentic: its sequence number counts even if the payload does not decode.
        self.metrics.lost.inc_by(opened.seq.gap);
        if opened.seq.late {
            self.metrics.late.inc();
        }
        let Ok(message) = M::decode(opened.payload.as_slice()) else {
            self.reject(REJECT_DECODE, None);
            return None;
        };
        self.metrics.received.inc();
        Some(Received {
            message,
            sender_id: opened.header.sender_id,
            seq: opened.header.seq,
            key_epoch: opened.header.key_epoch,
        })
    }

    fn reject(&mut self, reason: &'static str, error: Option<&OpenError>) {
        self.metrics.reject(reason);
        let misconfig = error.is_some_and(|e| e.reason().is_misconfiguration());
        let limit = if misconfig { &mut self.misconfig_log } else { &mut self.reject_log };
        if let Some(suppressed) = limit.allow() {
            let error = error.map(ToString::to_string).unwrap_or_default();
            if misconfig {
                tracing::warn!(
                    topic = %M::TOPIC, reason, error, suppressed,
                    "rejected bus message: sender and receiver disagree on keys, key epoch or version (misconfiguration)"
                );
            } else {
                tracing::warn!(topic = %M::TOPIC, reason, error, suppressed, "rejected bus message");
            }
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> SubscriberStats {
        let rejected = SubscriberMetrics::reasons()
            .zip(&self.metrics.rejected)
            .filter(|(_, c)| c.get() > 0)
            .map(|(r, c)| (r, c.get()))
            .collect();
        SubscriberStats {
            received: self.metrics.received.get(),
            lost: self.metrics.lost.get(),
            late: self.metrics.late.get(),
            rejected,
        }
    }
}
