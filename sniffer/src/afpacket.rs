//! The fallback capture path when XDP cannot attach: libpcap on Linux, which reads an
//! `AF_PACKET` socket (`TPACKET_V3` ring). One thread per interface parses frames with the
//! same parser as the pcap path and hands owned records to the engine thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use mld_flow::packet::{LinkType, parse};
use mld_flow::record::{OwnedRecord, PacketRecord};

/// Per-interface counters of the fallback path.
#[derive(Debug, Default)]
pub struct AfPacketCounters {
    pub frames: AtomicU64,
    pub skipped: AtomicU64,
    /// The engine thread fell behind: records dropped at the hand-over.
    pub queue_full: AtomicU64,
}

pub struct AfPacketCapture {
    pub iface: String,
    pub counters: Arc<AfPacketCounters>,
    thread: JoinHandle<()>,
    wake: pcap::BreakLoop,
}

impl AfPacketCapture {
    /// Wakes the reader (blocked in libpcap, which may wait for a packet past its timeout
    /// while the interface carries traffic) and waits for it to end. `stop` must be set.
    pub fn join(self) {
        self.wake.breakloop();
        let _ = self.thread.join();
    }
}

/// Opens `iface` and starts its reader thread, which sends records tagged `source` to `tx`
/// until `stop` is set.
pub fn start(
    iface: &str,
    source: u8,
    tx: SyncSender<OwnedRecord>,
    stop: Arc<AtomicBool>,
) -> Result<AfPacketCapture, pcap::Error> {
    let mut cap = pcap::Capture::from_device(iface)?
        .promisc(true)
        .immediate_mode(true)
        .snaplen(65_535)
        .buffer_size(16 << 20)
        .timeout(100)
        .open()?;
    // Ingress only, like XDP: in gateway mode a forwarded packet is then seen once (arriving
    // on one interface), not twice (leaving by the other as well).
    cap.direction(pcap::Direction::In)?;
    let link = LinkType(u32::try_from(cap.get_datalink().0).unwrap_or(0));
    let wake = cap.breakloop_handle();
    let counters = Arc::new(AfPacketCounters::default());
    let c = counters.clone();
    let name = iface.to_owned();
    let thread = std::thread::Builder::new()
        .name(format!("afpacket-{iface}"))
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let packet = match cap.next_packet() {
                    Ok(p) => p,
                    Err(pcap::Error::TimeoutExpired) => continue,
                    // pcap_breakloop: `join` woke us to stop.
                    Err(pcap::Error::NoMorePackets) => return,
                    Err(e) => {
                        tracing::error!(iface = %name, "AF_PACKET capture stopped: {e}");
                        return;
                    }
                };
                c.frames.fetch_add(1, Ordering::Relaxed);
                let h = packet.header;
                let ts = u64::try_from(h.ts.tv_sec).unwrap_or(0) * 1_000_000_000
                    + u64::try_from(h.ts.tv_usec).unwrap_or(0) * 1_000;
                let Ok(p) = parse(link, packet.data) else {
                    c.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let rec = PacketRecord::from_packet(ts, &p, packet.data, source);
                match tx.try_send(OwnedRecord::new(&rec)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        c.queue_full.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
        })
        .map_err(|e| pcap::Error::IoError(e.kind()))?;
    Ok(AfPacketCapture { iface: iface.to_owned(), counters, thread, wake })
}

/// The hand-over queue between reader threads and the engine.
pub fn queue() -> (SyncSender<OwnedRecord>, Receiver<OwnedRecord>) {
    sync_channel(65_536)
}
