use std::time::{Duration, Instant};

/// Lets one event through per period and counts the ones held back.
///
/// ```
/// use std::time::Duration;
/// let mut limit = mld_telemetry::RateLimit::new(Duration::from_secs(10));
/// assert_eq!(limit.allow(), Some(0)); // first: log it
/// assert_eq!(limit.allow(), None);    // within the period: suppressed, counted
/// ```
#[derive(Debug, Clone)]
pub struct RateLimit {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(period: Duration) -> Self {
        Self { period, last: None, suppressed: 0 }
    }

    /// `Some(number suppressed since the last allowed event)` when this event may be logged.
    pub fn allow(&mut self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    pub fn allow_at(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_period_with_suppressed_count() {
        let mut limit = RateLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limit.allow_at(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(limit.allow_at(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(25)), Some(1));
    }
}
