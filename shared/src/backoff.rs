//! Capped exponential backoff with full jitter: the one retry pacing of every component (worker store and
//! Redis retries, DynamoDB call retries, the SSE Pub/Sub resubscription).

use std::time::Duration;

use rand::Rng;

/// Backoff state: `base × 2^attempt`, capped, with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(50), Duration::from_secs(5))
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay: uniformly random in `[ceiling/2, ceiling]` where the ceiling doubles up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.delay_after(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// The delay after `failures` failed attempts (0: before the first retry), without changing state:
    /// for callers that count attempts themselves.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << failures.min(16))
            .min(self.cap);
        let half = ceiling / 2;
        let jitter_ms = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }

    /// Start over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_under_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(200));
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(10));
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(200)));
        assert!(delays[11] >= Duration::from_millis(100));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(10));
    }
}
