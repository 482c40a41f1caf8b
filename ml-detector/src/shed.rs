//! Overload by design (DESIGN §4): when the daemon falls behind its input, it sheds the
//! optional outputs of BENIGN detections first. Every flow is still scored and published;
//! SUSPICIOUS and MALICIOUS records are always written.
//!
//! "Behind" is read from the bus itself: the next flow event was already queued when the
//! loop asked for it, `after` times in a row. The first time the loop finds the queue empty
//! it has caught up, and shedding stops.

/// Whether the daemon is behind its input.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    after: u32,
    streak: u32,
    shedding: bool,
    /// Times shedding started.
    pub episodes: u64,
}

impl Backlog {
    /// Sheds after `after` queued events in a row; 0 never sheds.
    pub fn new(after: u32) -> Self {
        Self { after, streak: 0, shedding: false, episodes: 0 }
    }

    /// The next event was already waiting.
    pub fn queued(&mut self) {
        self.streak = self.streak.saturating_add(1);
        if self.after > 0 && self.streak >= self.after && !self.shedding {
            self.shedding = true;
            self.episodes += 1;
        }
    }

    /// The queue was empty: the daemon has caught up.
    pub fn caught_up(&mut self) {
        self.streak = 0;
        self.shedding = false;
    }

    pub fn shedding(&self) -> bool {
        self.shedding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_after_a_run_of_queued_events_until_the_queue_empties() {
        let mut b = Backlog::new(3);
        b.queued();
        b.queued();
        assert!(!b.shedding());
        b.caught_up();
        b.queued();
        b.queued();
        assert!(!b.shedding(), "the run started again");
        b.queued();
        assert!(b.shedding());
        b.queued();
        assert_eq!(b.episodes, 1);
        b.caught_up();
        assert!(!b.shedding());
        let mut never = Backlog::new(0);
        for _ in 0..10_000 {
            never.queued();
        }
        assert!(!never.shedding());
    }
}
