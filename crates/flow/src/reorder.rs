//! Merging the records of several capture sources into timestamp order.
//!
//! Each source (an XDP ring, an `AF_PACKET` reader) delivers its own packets in order, but
//! two sources reach the engine in batches: a reply that arrived on the WAN interface can be
//! read before its request from the LAN interface, and the engine would take the replier for
//! the initiator. [`Reorder`] holds records for a short time and releases them oldest first,
//! once every source has been read past their timestamp.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::record::{OwnedRecord, PacketRecord};

struct Held {
    ts_ns: u64,
    /// Arrival order, so that records with equal timestamps keep it.
    seq: u64,
    rec: OwnedRecord,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts_ns, self.seq).cmp(&(other.ts_ns, other.seq))
    }
}

/// A bounded min-heap of records by capture time.
pub struct Reorder {
    heap: BinaryHeap<Reverse<Held>>,
    seq: u64,
    capacity: usize,
    forced: u64,
    late: u64,
    released_up_to: u64,
}

impl Reorder {
    /// A buffer that holds at most `capacity` records; beyond that the oldest is released
    /// early (counted in [`Reorder::forced`]).
    pub fn new(capacity: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
            capacity: capacity.max(1),
            forced: 0,
            late: 0,
            released_up_to: 0,
        }
    }

    /// Adds `rec`; when full, hands the oldest record to `out` first.
    pub fn push(&mut self, rec: &PacketRecord<'_>, out: &mut impl FnMut(&PacketRecord<'_>)) {
        if self.heap.len() >= self.capacity
            && let Some(Reverse(oldest)) = self.heap.pop()
        {
            self.forced += 1;
            self.released_up_to = self.released_up_to.max(oldest.ts_ns);
            out(&oldest.rec.record());
        }
        if rec.ts_ns < self.released_up_to {
            self.late += 1;
        }
        self.seq += 1;
        self.heap.push(Reverse(Held {
            ts_ns: rec.ts_ns,
            seq: self.seq,
            rec: OwnedRecord::new(rec),
        }));
    }

    /// Hands every record stamped at or before `up_to_ns` to `out`, oldest first. The caller
    /// promises that every source has been read up to that time.
    pub fn release(&mut self, up_to_ns: u64, out: &mut impl FnMut(&PacketRecord<'_>)) {
        while self.heap.peek().is_some_and(|Reverse(h)| h.ts_ns <= up_to_ns) {
            let Some(Reverse(h)) = self.heap.pop() else { break };
            out(&h.rec.record());
        }
        self.released_up_to = self.released_up_to.max(up_to_ns);
    }

    /// Hands every held record to `out`, oldest first (at shutdown).
    pub fn drain(&mut self, out: &mut impl FnMut(&PacketRecord<'_>)) {
        self.release(u64::MAX, out);
    }

    /// Capture time of the oldest held record.
    pub fn oldest_ns(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(h)| h.ts_ns)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Records released before their time because the buffer was full.
    pub fn forced(&self) -> u64 {
        self.forced
    }

    /// Records that arrived stamped before something already released (held back too
    /// briefly): they still reach the engine, but out of order.
    pub fn late(&self) -> u64 {
        self.late
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn rec(ts_ns: u64, source: u8, head: &[u8]) -> PacketRecord<'_> {
        PacketRecord {
            ts_ns,
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, source)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
            proto: 17,
            src_port: 53,
            dst_port: 5353,
            ip_len: 28,
            ip_header_len: 20,
            l4_header_len: 8,
            payload_len: 0,
            tcp_flags: 0,
            tcp_window: 0,
            payload_head: head,
            source,
        }
    }

    fn collect(out: &mut Vec<(u64, u8, Vec<u8>)>) -> impl FnMut(&PacketRecord<'_>) + '_ {
        |r| out.push((r.ts_ns, r.source, r.payload_head.to_vec()))
    }

    #[test]
    fn two_sources_read_in_batches_come_out_in_time_order() {
        let mut r = Reorder::new(100);
        let mut out = Vec::new();
        // Source 1 (WAN) is read first and holds the reply (ts 20) to source 0's request (10).
        r.push(&rec(20, 1, b"reply"), &mut collect(&mut out));
        r.push(&rec(30, 1, b""), &mut collect(&mut out));
        r.push(&rec(10, 0, b"request"), &mut collect(&mut out));
        r.push(&rec(25, 0, b""), &mut collect(&mut out));
        assert!(out.is_empty());
        r.release(25, &mut collect(&mut out));
        assert_eq!(
            out,
            vec![(10, 0, b"request".to_vec()), (20, 1, b"reply".to_vec()), (25, 0, vec![])]
        );
        assert_eq!((r.len(), r.oldest_ns()), (1, Some(30)));
        r.drain(&mut collect(&mut out));
        assert_eq!(out.last().unwrap().0, 30);
        assert!(r.is_empty());
        assert_eq!((r.forced(), r.late()), (0, 0));
    }

    #[test]
    fn equal_timestamps_keep_arrival_order() {
        let mut r = Reorder::new(100);
        let mut out = Vec::new();
        for source in [3, 1, 2] {
            r.push(&rec(7, source, b""), &mut collect(&mut out));
        }
        r.drain(&mut collect(&mut out));
        assert_eq!(out.iter().map(|o| o.1).collect::<Vec<_>>(), vec![3, 1, 2]);
    }

    #[test]
    fn a_full_buffer_releases_its_oldest_and_counts_it_and_late_records_are_counted() {
        let mut r = Reorder::new(2);
        let mut out = Vec::new();
        r.push(&rec(5, 0, b""), &mut collect(&mut out));
        r.push(&rec(9, 0, b""), &mut collect(&mut out));
        r.push(&rec(7, 1, b""), &mut collect(&mut out));
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), vec![5]);
        assert_eq!(r.forced(), 1);
        r.release(8, &mut collect(&mut out));
        r.push(&rec(6, 1, b""), &mut collect(&mut out));
        assert_eq!(r.late(), 1);
        r.drain(&mut collect(&mut out));
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), vec![5, 7, 6, 9]);
    }

    #[test]
    fn payload_heads_survive_the_wait_cut_to_the_record_limit() {
        let long = vec![0xab; crate::record::PAYLOAD_HEAD + 50];
        let mut r = Reorder::new(10);
        let mut out = Vec::new();
        r.push(&rec(1, 0, &long), &mut collect(&mut out));
        r.drain(&mut collect(&mut out));
        assert_eq!(out[0].2, long[..crate::record::PAYLOAD_HEAD]);
    }
}
