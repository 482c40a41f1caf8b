//! Event ids: `UUIDv7` (RFC 9562) text, time-ordered, unique across processes by a random seed
//! and within a process by a counter.

use std::time::{SystemTime, UNIX_EPOCH};

/// Generates `UUIDv7` strings.
#[derive(Debug, Clone)]
pub struct EventIds {
    state: u64,
    last_ms: u64,
    seq: u16,
}

impl EventIds {
    /// Seeded from the operating system's random source.
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        // A failed read of the OS random source leaves the clock as the only seed: ids stay
        // unique within the process (the counter), and very likely across processes.
        if getrandom::fill(&mut seed).is_err() {
            seed = now_ms().to_le_bytes();
        }
        Self { state: u64::from_le_bytes(seed), last_ms: 0, seq: 0 }
    }

    fn next_random(&mut self) -> u64 {
        // SplitMix64.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next id, stamped with the current time.
    pub fn next_id(&mut self) -> String {
        let ms = now_ms().max(self.last_ms);
        if ms == self.last_ms {
            self.seq = self.seq.wrapping_add(1) & 0x0fff;
        } else {
            self.last_ms = ms;
            self.seq = 0;
        }
        let hi = (ms << 16) | 0x7000 | u64::from(self.seq);
        let lo = (self.next_random() >> 2) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

impl Default for EventIds {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        & 0xffff_ffff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_uuid_v7_unique_and_ordered() {
        let mut g = EventIds::new();
        let ids: Vec<String> = (0..5000).map(|_| g.next_id()).collect();
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "7", "version nibble in {id}");
            assert!("89ab".contains(&id[19..20]), "variant in {id}");
        }
        let ms_prefix: Vec<&str> = ids.iter().map(|i| &i[..13]).collect();
        assert!(ms_prefix.windows(2).all(|w| w[0] <= w[1]), "time-ordered");
    }
}
