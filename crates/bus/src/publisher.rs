use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mld_crypto_transport::{KeyRing, Sealer};
use mld_telemetry::prometheus_client::registry::Registry;

use crate::error::socket_err;
use crate::metrics::PublisherMetrics;
use crate::{BusError, BusMessage, Topic, ffi};

/// How a publisher binds.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Endpoint to bind; `tcp://127.0.0.1:*` picks a free port (see [`Publisher::endpoint`]).
    pub endpoint: String,
    /// Messages queued per subscriber before new ones are dropped.
    pub send_hwm: u32,
    /// How long queued messages may still be sent when the publisher is dropped; dropping the
    /// last publisher of a context waits up to this long for them.
    pub linger: Duration,
}

impl PublisherOptions {
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self { endpoint: endpoint.into(), send_hwm: 100_000, linger: Duration::from_secs(1) }
    }
}

/// What became of a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Publish {
    /// Queued for every matching subscriber.
    Sent,
    /// A subscriber queue was full; dropped and counted.
    Dropped,
}

/// Totals over every topic, from the publisher's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    pub sent: u64,
    pub dropped: u64,
}

/// Publishes sealed messages on an XPUB socket without ever blocking.
pub struct Publisher {
    socket: zmq::Socket,
    endpoint: String,
    ring: Arc<KeyRing>,
    sealers: [Option<Sealer>; 3],
    metrics: PublisherMetrics,
    subscriptions: HashSet<Vec<u8>>,
    since_drain: u32,
    /// Dropped after `socket` (fields drop in order): when this is the context's last handle,
    /// dropping the publisher waits up to `linger` for queued messages to be sent, instead of
    /// losing them when the process exits right after.
    _context: zmq::Context,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// Subscription notices are read this often (in messages published).
const DRAIN_EVERY: u32 = 256;

impl Publisher {
    /// Binds a publisher and registers its counters in `registry`.
    pub fn bind(
        ctx: &zmq::Context,
        ring: Arc<KeyRing>,
        options: &PublisherOptions,
        registry: &mut Registry,
    ) -> Result<Self, BusError> {
        let ep = options.endpoint.as_str();
        let mut socket = ctx.socket(zmq::XPUB).map_err(socket_err("socket", ep))?;
        ffi::set_xpub_nodrop(&mut socket).map_err(socket_err("set XPUB_NODROP", ep))?;
        socket.set_xpub_verbose(true).map_err(socket_err("set XPUB_VERBOSE", ep))?;
        let hwm = i32::try_from(options.send_hwm).unwrap_or(i32::MAX);
        socket.set_sndhwm(hwm).map_err(socket_err("set SNDHWM", ep))?;
        let linger = i32::try_from(options.linger.as_millis()).unwrap_or(i32::MAX);
        socket.set_linger(linger).map_err(socket_err("set LINGER", ep))?;
        socket.bind(ep).map_err(socket_err("bind", ep))?;
        let endpoint = socket
            .get_last_endpoint()
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| options.endpoint.clone());
        tracing::info!(endpoint = %endpoint, send_hwm = options.send_hwm, "bus publisher bound");
        Ok(Self {
            socket,
            endpoint,
            ring,
            sealers: [None, None, None],
            metrics: PublisherMetrics::register(registry),
            subscriptions: HashSet::new(),
            since_drain: 0,
            _context: ctx.clone(),
        })
    }

    /// The bound endpoint, with a wildcard port resolved.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Seals and publishes `message` on its topic; never blocks.
    pub fn publish<M: BusMessage>(&mut self, message: &M) -> Result<Publish, BusError> {
        self.publish_encoded(M::TOPIC, &message.encode_to_vec())
    }

    /// Seals and publishes an already encoded message of `topic`.
    pub fn publish_encoded(&mut self, topic: Topic, payload: &[u8]) -> Result<Publish, BusError> {
        self.since_drain += 1;
        if self.since_drain >= DRAIN_EVERY {
            self.drain_subscriptions();
        }
        let envelope = self
            .sealer(topic)?
            .seal(payload)
            .map_err(|source| BusError::Seal { topic: topic.as_str(), source })?;
        self.send(topic, &envelope)
    }

    /// Sends a pre-sealed envelope as is (replays and tests; daemons use [`Self::publish`]).
    pub fn send_sealed(&mut self, topic: Topic, envelope: &[u8]) -> Result<Publish, BusError> {
        self.send(topic, envelope)
    }

    fn send(&mut self, topic: Topic, envelope: &[u8]) -> Result<Publish, BusError> {
        let i = topic.index();
        let frames: [&[u8]; 2] = [topic.as_str().as_bytes(), envelope];
        match self.socket.send_multipart(frames, zmq::DONTWAIT) {
            Ok(()) => {
                self.metrics.sent[i].inc();
                self.metrics.sent_bytes[i].inc_by(envelope.len() as u64);
                Ok(Publish::Sent)
            }
            Err(zmq::Error::EAGAIN) => {
                self.metrics.dropped[i].inc();
                Ok(Publish::Dropped)
            }
            Err(e) => {
                Err(BusError::Socket { op: "send", endpoint: self.endpoint.clone(), source: e })
            }
        }
    }

    fn sealer(&mut self, topic: Topic) -> Result<&mut Sealer, BusError> {
        let slot = &mut self.sealers[topic.index()];
        if slot.is_none() {
            let sealer = Sealer::new(Arc::clone(&self.ring), topic.channel())
                .map_err(|source| BusError::Seal { topic: topic.as_str(), source })?;
            tracing::debug!(topic = %topic, sender_id = format!("{:016x}", sealer.sender_id()), "new sender");
            *slot = Some(sealer);
        }
        Ok(slot.as_mut().expect("set above"))
    }

    /// Reads pending subscription notices (XPUB delivers them as messages).
    fn drain_subscriptions(&mut self) {
        self.since_drain = 0;
        // Bounded, so that a peer flooding the socket cannot stall publishing.
        for _ in 0..1_024 {
            let Ok(notice) = self.socket.recv_bytes(zmq::DONTWAIT) else { break };
            match notice.split_first() {
                Some((1, topic)) => {
                    tracing::debug!(topic = %String::from_utf8_lossy(topic), "subscriber joined");
                    self.subscriptions.insert(topic.to_vec());
                }
                Some((0, topic)) => {
                    tracing::debug!(topic = %String::from_utf8_lossy(topic), "last subscriber left");
                    self.subscriptions.remove(topic);
                }
                _ => {}
            }
        }
    }

    /// Waits until some subscriber has subscribed to `topic` (or a prefix of it), so that
    /// nothing published afterwards is lost to `ZeroMQ`'s "slow joiner" window.
    pub fn wait_for_subscriber(
        &mut self,
        topic: Topic,
        timeout: Duration,
    ) -> Result<bool, BusError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            self.drain_subscriptions();
            let t = topic.as_str().as_bytes();
            if self.subscriptions.iter().any(|s| t.starts_with(s)) {
                return Ok(true);
            }
            let left = crate::time_left(deadline);
            if left.is_zero() {
                return Ok(false);
            }
            let ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX).max(1);
            self.socket.poll(zmq::POLLIN, ms).map_err(socket_err("poll", &self.endpoint))?;
        }
    }

    /// Totals over every topic.
    pub fn stats(&self) -> PublisherStats {
        PublisherStats {
            sent: self
                .metrics
                .sent
                .iter()
                .map(mld_telemetry::prometheus_client::metrics::counter::Counter::get)
                .sum(),
            dropped: self
                .metrics
                .dropped
                .iter()
                .map(mld_telemetry::prometheus_client::metrics::counter::Counter::get)
                .sum(),
        }
    }
}
