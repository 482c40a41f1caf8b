/// How many sequence numbers behind the newest one a [`ReplayWindow`] remembers.
pub const REPLAY_WINDOW: u64 = 4096;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// A sliding window of accepted sequence numbers for one sender (RFC 6479 style bitmap).
///
/// Sequence numbers newer than any seen are accepted and report the gap they jumped over;
/// older ones are accepted once if they are still inside the window ("late", i.e. reordered),
/// rejected as duplicates if already seen, and rejected as too old behind the window.
/// The first number seen from a sender starts the window and reports no gap: a receiver that
/// joins late cannot know what it was not meant to see.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    newest: Option<u64>,
    bits: [u64; WORDS],
}

/// What accepting a sequence number revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqAccepted {
    /// Sequence numbers skipped between the previous newest and this one (lost, unless they
    /// arrive late).
    pub gap: u64,
    /// This number was older than the newest: it arrived out of order, after being counted in
    /// an earlier gap.
    pub late: bool,
}

/// Why a sequence number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRejected {
    /// Already accepted once.
    Duplicate,
    /// Behind the window; `newest` is the newest number accepted.
    TooOld { newest: u64 },
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    pub const fn new() -> Self {
        Self { newest: None, bits: [0; WORDS] }
    }

    /// The newest sequence number accepted so far.
    pub const fn newest(&self) -> Option<u64> {
        self.newest
    }

    /// Whether `seq` would be accepted, without recording it.
    pub fn check(&self, seq: u64) -> Result<(), SeqRejected> {
        let Some(newest) = self.newest else {
            return Ok(());
        };
        if seq > newest {
            return Ok(());
        }
        if newest - seq >= REPLAY_WINDOW {
            return Err(SeqRejected::TooOld { newest });
        }
        if self.is_set(seq) { Err(SeqRejected::Duplicate) } else { Ok(()) }
    }

    /// Records `seq` if it is acceptable.
    pub fn accept(&mut self, seq: u64) -> Result<SeqAccepted, SeqRejected> {
        self.check(seq)?;
        let accepted = match self.newest {
            None => {
                self.newest = Some(seq);
                SeqAccepted { gap: 0, late: false }
            }
            Some(newest) if seq > newest => {
                let advance = seq - newest;
                if advance >= REPLAY_WINDOW {
                    self.bits = [0; WORDS];
                } else {
                    for s in newest + 1..=seq {
                        self.clear(s);
                    }
                }
                self.newest = Some(seq);
                SeqAccepted { gap: advance - 1, late: false }
            }
            Some(_) => SeqAccepted { gap: 0, late: true },
        };
        self.set(seq);
        Ok(accepted)
    }

    fn slot(seq: u64) -> (usize, u64) {
        let bit = seq % REPLAY_WINDOW;
        // bit / 64 < WORDS, so the cast is lossless on every target.
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn is_set(&self, seq: u64) -> bool {
        let (word, mask) = Self::slot(seq);
        self.bits[word] & mask != 0
    }

    fn set(&mut self, seq: u64) {
        let (word, mask) = Self::slot(seq);
        self.bits[word] |= mask;
    }

    fn clear(&mut self, seq: u64) {
        let (word, mask) = Self::slot(seq);
        self.bits[word] &= !mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(clippy::unnecessary_wraps, reason = "table entries are Results")]
    const fn ok(gap: u64, late: bool) -> Result<SeqAccepted, SeqRejected> {
        Ok(SeqAccepted { gap, late })
    }

    #[test]
    fn in_order_sequence_has_no_gaps() {
        let mut w = ReplayWindow::new();
        for seq in 0..10_000 {
            assert_eq!(w.accept(seq), ok(0, false), "seq {seq}");
        }
    }

    #[test]
    fn first_number_starts_the_window_without_a_gap() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(1_000), ok(0, false));
        assert_eq!(w.accept(1_001), ok(0, false));
    }

    #[test]
    fn table_of_gaps_duplicates_reordering_and_age() {
        let mut w = ReplayWindow::new();
        let cases: &[(u64, Result<SeqAccepted, SeqRejected>)] = &[
            (10, ok(0, false)),
            (11, ok(0, false)),
            (11, Err(SeqRejected::Duplicate)),
            (15, ok(3, false)),
            (13, ok(0, true)),
            (13, Err(SeqRejected::Duplicate)),
            (10, Err(SeqRejected::Duplicate)),
            (9, ok(0, true)),
            (15 + REPLAY_WINDOW, ok(REPLAY_WINDOW - 1, false)),
            (15, Err(SeqRejected::TooOld { newest: 15 + REPLAY_WINDOW })),
            (16, ok(0, true)),
            (14, Err(SeqRejected::TooOld { newest: 15 + REPLAY_WINDOW })),
        ];
        for (i, (seq, expected)) in cases.iter().enumerate() {
            assert_eq!(w.accept(*seq), *expected, "case {i}: seq {seq}");
        }
    }

    #[test]
    fn a_large_jump_forgets_everything_behind_the_window() {
        let mut w = ReplayWindow::new();
        for seq in 0..100 {
            w.accept(seq).unwrap();
        }
        assert_eq!(w.accept(100 + 10 * REPLAY_WINDOW), ok(10 * REPLAY_WINDOW, false));
        // Slots reused by the wrap must not look "seen".
        assert_eq!(w.accept(101 + 9 * REPLAY_WINDOW), ok(0, true));
        assert_eq!(w.accept(99), Err(SeqRejected::TooOld { newest: 100 + 10 * REPLAY_WINDOW }));
    }

    #[test]
    fn ring_slots_are_cleared_when_the_window_slides() {
        let mut w = ReplayWindow::new();
        w.accept(0).unwrap();
        w.accept(REPLAY_WINDOW - 1).unwrap();
        // seq REPLAY_WINDOW reuses slot 0, which held seq 0: it must be accepted.
        assert_eq!(w.accept(REPLAY_WINDOW), ok(0, false));
        assert_eq!(w.accept(REPLAY_WINDOW), Err(SeqRejected::Duplicate));
        assert_eq!(w.accept(0), Err(SeqRejected::TooOld { newest: REPLAY_WINDOW }));
    }

    #[test]
    fn max_sequence_number_does_not_overflow() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(u64::MAX - 1), ok(0, false));
        assert_eq!(w.accept(u64::MAX), ok(0, false));
        assert_eq!(w.accept(u64::MAX), Err(SeqRejected::Duplicate));
    }
}
