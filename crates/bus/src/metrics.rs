//! Bus counters, registered under `<component registry>_bus_*`. Counter handles are resolved
//! once, so counting costs an atomic add, not a label lookup.

use mld_crypto_transport::RejectReason;
use mld_telemetry::prometheus_client::metrics::counter::Counter;
use mld_telemetry::prometheus_client::metrics::family::Family;
use mld_telemetry::prometheus_client::registry::Registry;

use crate::Topic;

type Labels = Vec<(&'static str, &'static str)>;

fn family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

fn per_topic(family: &Family<Labels, Counter>) -> [Counter; 3] {
    Topic::ALL.map(|t| family.get_or_create(&vec![("topic", t.as_str())]).clone())
}

#[derive(Debug, Clone)]
pub(crate) struct PublisherMetrics {
    pub(crate) sent: [Counter; 3],
    pub(crate) sent_bytes: [Counter; 3],
    pub(crate) dropped: [Counter; 3],
}

impl PublisherMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let bus = registry.sub_registry_with_prefix("bus");
        Self {
            sent: per_topic(&family(
                bus,
                "published_messages",
                "Messages handed to ZeroMQ for delivery",
            )),
            sent_bytes: per_topic(&family(
                bus,
                "published_bytes",
                "Bytes of sealed envelopes published",
            )),
            dropped: per_topic(&family(
                bus,
                "dropped_messages",
                "Messages dropped because a subscriber queue was at its high-water mark",
            )),
        }
    }
}

/// Rejection labels beyond the envelope's own reasons.
pub(crate) const REJECT_FRAMES: &str = "frames";
pub(crate) const REJECT_TOPIC: &str = "topic";
pub(crate) const REJECT_DECODE: &str = "decode";

#[derive(Debug, Clone)]
pub(crate) struct SubscriberMetrics {
    pub(crate) received: Counter,
    pub(crate) lost: Counter,
    pub(crate) late: Counter,
    /// Indexed like [`SubscriberMetrics::reasons`].
    pub(crate) rejected: Vec<Counter>,
}

impl SubscriberMetrics {
    /// Every rejection label, in a fixed order.
    pub(crate) fn reasons() -> impl Iterator<Item = &'static str> {
        [REJECT_FRAMES, REJECT_TOPIC, REJECT_DECODE]
            .into_iter()
            .chain(RejectReason::ALL.iter().map(|r| r.as_str()))
    }

    pub(crate) fn register(registry: &mut Registry, topic: Topic) -> Self {
        let bus = registry.sub_registry_with_prefix("bus");
        let t = topic.as_str();
        let one = |f: &Family<Labels, Counter>| f.get_or_create(&vec![("topic", t)]).clone();
        let rejected = family(bus, "rejected_messages", "Messages rejected, by reason");
        Self {
            received: one(&family(
                bus,
                "received_messages",
                "Messages accepted (authentic, new, decodable)",
            )),
            lost: one(&family(
                bus,
                "lost_messages",
                "Messages missing from sender sequences (gaps)",
            )),
            late: one(&family(
                bus,
                "late_messages",
                "Messages that arrived after a later one, already counted in a gap",
            )),
            rejected: Self::reasons()
                .map(|reason| {
                    rejected.get_or_create(&vec![("topic", t), ("reason", reason)]).clone()
                })
                .collect(),
        }
    }

    pub(crate) fn reject(&self, reason: &str) {
        if let Some(i) = Self::reasons().position(|r| r == reason) {
            self.rejected[i].inc();
        }
    }
}
