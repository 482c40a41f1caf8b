use mld_crypto_transport::Channel;
use mld_proto::{Detection, FirewallAction, FlowEvent};

/// A bus topic: the first frame of every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `flow.v1`: [`FlowEvent`]s from the sniffer.
    Flow,
    /// `detection.v1`: [`Detection`]s from the ML detector.
    Detection,
    /// `control.v1`: [`FirewallAction`]s from the firewall agent.
    Control,
}

impl Topic {
    pub const ALL: [Topic; 3] = [Self::Flow, Self::Detection, Self::Control];

    /// The topic frame.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Flow => "flow.v1",
            Self::Detection => "detection.v1",
            Self::Control => "control.v1",
        }
    }

    /// The envelope channel (and so the key) of this topic.
    pub const fn channel(self) -> Channel {
        match self {
            Self::Flow => Channel::Flow,
            Self::Detection => Channel::Detection,
            Self::Control => Channel::Control,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message type carried on one topic.
pub trait BusMessage: prost::Message + Default + 'static {
    const TOPIC: Topic;
}

impl BusMessage for FlowEvent {
    const TOPIC: Topic = Topic::Flow;
}

impl BusMessage for Detection {
    const TOPIC: Topic = Topic::Detection;
}

impl BusMessage for FirewallAction {
    const TOPIC: Topic = Topic::Control;
}
