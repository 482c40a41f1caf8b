//! One module per daemon config. Field docs become the descriptions in `docs/config/`.

pub mod etcd_server;
pub mod firewall_agent;
pub mod ml_detector;
pub mod rag;
pub mod rag_ingester;
pub mod sniffer;
