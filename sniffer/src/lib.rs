//! `sniffer`: captures packets, builds flows, CICFlowMeter features and per-host context,
//! runs the fast detector and publishes sealed `FlowEvent`s on `flow.v1` (DESIGN §2, §5).
//!
//! Capture paths, all producing the same [`mld_flow::record::PacketRecord`]s for one
//! [`mld_flow::engine::Engine`]:
//! - **XDP** ([`xdp`]): the C program in `sniffer-ebpf/` parses L2-L4 in the kernel and hands
//!   compact records to userspace through a ring buffer, counting every drop reason per CPU;
//!   native mode with a fallback to generic mode.
//! - **`AF_PACKET`** ([`afpacket`]): a raw socket per interface, used when XDP cannot attach
//!   (and said so in the log).
//! - **capture files** (`--pcap FILE...`): pcap or pcapng, timestamps from the file, as fast
//!   as possible or `--realtime`; each file is a capture of its own.
//!
//! Events go to the bus (unless `--no-publish`) and, with `--jsonl FILE|-`, to JSON lines.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mld_bus::Publisher;
use mld_config::common::ValidEtcd;
use mld_config::daemons::sniffer::Sniffer as Valid;
use mld_control::restart_only;
use mld_crypto_transport::KeyRing;
use mld_daemon::{Control, Daemon, DaemonError, Membership, RunContext};
use mld_flow::engine::{Engine, EngineConfig, SourceInfo};
use mld_proto::{CaptureMode, InterfaceRole};
use mld_telemetry::prometheus_client::registry::Registry;

pub mod afpacket;
pub mod live;
pub mod metrics;
pub mod pipeline;
pub mod xdp;

use metrics::Metrics;
use pipeline::{JsonlOut, Sink};

/// This daemon's config (raw form); its validated form is `<Config as DaemonConfig>::Valid`.
pub use mld_config::daemons::sniffer::SnifferConfig as Config;

/// The binary's name.
pub const NAME: &str = "sniffer";

/// One line for `--help`.
pub const ABOUT: &str = "Captures packets (XDP, AF_PACKET or pcap files), builds flows, CICFlowMeter features and host context, runs the fast detector and publishes sealed FlowEvents on flow.v1";

/// How this run gets its packets and where its events go.
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// Read these pcap/pcapng files instead of the configured interfaces, then exit. Each
    /// file is a capture of its own (its flows end with it; host context starts empty).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub pcap: Vec<PathBuf>,
    /// With --pcap: release packets at their recorded pace instead of as fast as possible.
    #[arg(long, requires = "pcap")]
    pub realtime: bool,
    /// Also write every flow event as one JSON line to FILE (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Do not publish on the bus (offline use; no root secret needed).
    #[arg(long)]
    pub no_publish: bool,
    /// With --pcap and publishing: wait up to SECS (default 10) for a `flow.v1` subscriber
    /// before reading, and refuse to run (exit 69) when none came, rather than publish the
    /// capture to nobody; 0 publishes at once, subscriber or not.
    #[arg(long, value_name = "SECS")]
    pub wait_for_subscriber: Option<u64>,
}

/// How long `--pcap` waits for a `flow.v1` subscriber when `--wait-for-subscriber` is not given.
pub const DEFAULT_SUBSCRIBER_WAIT_SECS: u64 = 10;

/// The daemon.
pub struct SnifferDaemon {
    config: Valid,
    flags: Flags,
    sink: Sink,
    /// The bus key ring (none with `--no-publish`), which follows etcd's key epoch.
    ring: Option<Arc<KeyRing>>,
}

impl SnifferDaemon {
    fn engine(&self, sources: Vec<SourceInfo>) -> Engine {
        Engine::new(EngineConfig::from_sniffer(&self.config), sources)
    }
}

/// Loads the root secret and opens the `flow.v1` publisher.
fn publisher(
    config: &Valid,
    registry: &mut Registry,
) -> Result<(Publisher, Arc<KeyRing>), DaemonError> {
    let ring = mld_daemon::key_ring(&config.transport)?;
    let publisher = mld_daemon::bus_publisher(
        &zmq::Context::new(),
        Arc::clone(&ring),
        &config.publish,
        mld_bus::Topic::Flow,
        registry,
    )?;
    Ok((publisher, ring))
}

impl Daemon for SnifferDaemon {
    const NAME: &'static str = NAME;
    const ABOUT: &'static str = ABOUT;
    type Config = Config;
    type Flags = Flags;

    fn metrics_listen(config: &Valid) -> Option<SocketAddr> {
        config.metrics.listen
    }

    fn setup(config: Valid, flags: Flags, registry: &mut Registry) -> Result<Self, DaemonError> {
        if flags.pcap.is_empty() && config.interfaces.is_empty() {
            return Err(DaemonError::failure(anyhow::anyhow!(
                "nothing to capture: the config lists no interfaces and no --pcap files were given"
            )));
        }
        let (publisher, ring) = if flags.no_publish {
            (None, None)
        } else {
            let (p, r) = publisher(&config, registry)?;
            (Some(p), Some(r))
        };
        let jsonl =
            flags.jsonl.as_deref().map(JsonlOut::open).transpose().map_err(DaemonError::failure)?;
        let metrics = Metrics::register(registry);
        Ok(Self { sink: Sink::new(publisher, jsonl, metrics), config, flags, ring })
    }

    async fn run(self, ctx: RunContext) -> Result<(), DaemonError> {
        mld_daemon::run_blocking(ctx, "capture", move |stop, readiness| self.work(stop, readiness))
            .await
    }

    fn etcd(config: &Valid) -> Option<&ValidEtcd> {
        Some(&config.etcd)
    }

    fn instance(config: &Valid) -> String {
        config.sensor_id.clone()
    }

    /// Registers, follows the key epoch, and applies a new config's fast-detector thresholds,
    /// cool-down and internal networks while running (the capture loop takes them within a
    /// tick); every other field changes only at restart.
    fn control(&mut self) -> Membership<Valid> {
        let Some(ring) = self.ring.as_ref().map(Arc::clone) else {
            return Membership::Standalone {
                why: "--no-publish loads no root secret, and configs in etcd are sealed with it",
            };
        };
        let running = self.config.clone();
        let to_loop = self.sink.reloader();
        let apply = move |new: &Valid| {
            restart_only("sensor_id", &running.sensor_id, &new.sensor_id)?;
            restart_only("interfaces", &running.interfaces, &new.interfaces)?;
            restart_only("capture", &running.capture, &new.capture)?;
            restart_only("flow_table.capacity", &running.flow_capacity, &new.flow_capacity)?;
            restart_only("flow_table.shards", &running.flow_shards, &new.flow_shards)?;
            restart_only("flow_table.idle_timeout_secs", &running.idle_timeout, &new.idle_timeout)?;
            restart_only(
                "flow_table.active_timeout_secs",
                &running.active_timeout,
                &new.active_timeout,
            )?;
            restart_only("host_context.window_secs", &running.context_window, &new.context_window)?;
            restart_only("host_context.max_hosts", &running.max_hosts, &new.max_hosts)?;
            restart_only("publish", &running.publish, &new.publish)?;
            restart_only("metrics", &running.metrics, &new.metrics)?;
            restart_only("etcd", &running.etcd, &new.etcd)?;
            restart_only("transport", &running.transport, &new.transport)?;
            to_loop.send(new.clone()).map_err(|_| "the capture loop has stopped".to_owned())
        };
        Membership::Join(Control { ring, apply: Box::new(apply) })
    }
}

impl SnifferDaemon {
    fn work(
        mut self,
        stop: &AtomicBool,
        readiness: &mld_telemetry::Readiness,
    ) -> Result<(), DaemonError> {
        if self.flags.pcap.is_empty() {
            return live::run(&self.config, &mut self.sink, stop, readiness);
        }
        if !self.config.interfaces.is_empty() {
            tracing::info!(
                "--pcap given: reading files, not capturing on the configured interfaces"
            );
        }
        if let Some(p) = &mut self.sink.publisher {
            let secs = self.flags.wait_for_subscriber.unwrap_or(DEFAULT_SUBSCRIBER_WAIT_SECS);
            let subscribed = p
                .wait_for_subscriber(mld_bus::Topic::Flow, Duration::from_secs(secs))
                .map_err(|e| DaemonError::unavailable(anyhow::Error::new(e)))?;
            match (subscribed, secs) {
                (true, _) => {}
                (false, 0) => tracing::warn!(
                    bind = self.config.publish.bind.as_str(),
                    "no flow.v1 subscriber yet; publishing anyway (--wait-for-subscriber 0): events sent before one connects are lost"
                ),
                (false, _) => {
                    return Err(DaemonError::unavailable(anyhow::anyhow!(
                        "no flow.v1 subscriber connected to {} within {secs} s: the capture's events would go to nobody; start ml-detector first (its subscribe.connect), wait longer with --wait-for-subscriber SECS, publish anyway with --wait-for-subscriber 0, or read offline with --no-publish --jsonl FILE",
                        self.config.publish.bind.as_str()
                    )));
                }
            }
        }
        let source = SourceInfo {
            interface: "pcap".to_owned(),
            role: InterfaceRole::Unspecified,
            mode: CaptureMode::Pcap,
        };
        let mut engine = self.engine(vec![source]);
        readiness.set(true);
        pipeline::run_pcaps(
            &self.flags.pcap,
            self.flags.realtime,
            &mut engine,
            &mut self.sink,
            stop,
        )
        .map(|_| ())
        .map_err(DaemonError::failure)
    }
}
