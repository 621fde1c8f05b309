//! Jittered exponential backoff for the retry loops that never give up.

use std::time::Duration;

use rand::Rng;

pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// Attempts since the last success, for log lines.
    pub attempts: u64,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max, next: first, attempts: 0 }
    }

    /// The next pause: the current step with ±25 % jitter, so many clients do not retry in step.
    pub fn next(&mut self) -> Duration {
        self.attempts += 1;
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step.mul_f64(rand::rng().random_range(0.75..1.25))
    }

    pub fn reset(&mut self) {
        self.next = self.first;
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let steps: Vec<_> = (0..5).map(|_| b.next()).collect();
        assert!(steps[0] >= Duration::from_millis(75) && steps[0] <= Duration::from_millis(125), "{steps:?}");
        assert!(steps[4] >= Duration::from_millis(300) && steps[4] <= Duration::from_millis(500), "{steps:?}");
        b.reset();
        assert!(b.next() <= Duration::from_millis(125));
    }
}
