//! When records are sent: at their recorded offsets divided by the speed,
//! and no faster than a rate limit in items per second.

use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

/// How fast a session is replayed relative to how it was recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Recorded offsets divided by this positive factor: 2 is twice as fast.
    Factor(f64),
    /// As fast as the target accepts.
    Max,
}

impl std::fmt::Display for Speed {
    /// `max`, or the factor as given: `1`, `0.5`, `10`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Factor(factor) => write!(f, "{factor}"),
            Speed::Max => f.pad("max"),
        }
    }
}

impl FromStr for Speed {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match text.parse::<f64>() {
            Ok(factor) if factor.is_finite() && factor > 0.0 => Ok(Speed::Factor(factor)),
            _ => Err("expected a factor above 0 such as 0.5, 1 or 10, or max".to_owned()),
        }
    }
}

/// Maps recorded receive times to the instants their records are due.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    first_receive_nanos: u64,
    start: Instant,
    speed: Speed,
}

impl Pacer {
    /// A pacer whose first record, received at `first_receive_nanos`, is
    /// due at `start`.
    pub fn new(first_receive_nanos: u64, start: Instant, speed: Speed) -> Self {
        Pacer { first_receive_nanos, start, speed }
    }

    /// When the record received at `receive_nanos` is due; `None` at
    /// [`Speed::Max`]. A record received before the first is due at once.
    pub fn due(&self, receive_nanos: u64) -> Option<Instant> {
        let Speed::Factor(factor) = self.speed else { return None };
        let offset = receive_nanos.saturating_sub(self.first_receive_nanos);
        #[allow(clippy::cast_precision_loss)] // nanoseconds: exact up to 104 days
        let scaled = Duration::from_secs_f64(offset as f64 / 1e9 / factor);
        Some(self.start + scaled)
    }

    /// Waits until the record received at `receive_nanos` is due.
    pub async fn wait(&self, receive_nanos: u64) {
        if let Some(due) = self.due(receive_nanos) {
            tokio::time::sleep_until(due).await;
        }
    }
}

/// A smooth cap on items per second: each item takes `1 / rate` of a
/// second, so a request of `n` items is sent once the items before it have
/// had their time, and the average over the run is exact. There is no
/// burst allowance beyond one request: time lost to a slow target (more
/// than [`RateLimiter::SLACK`]) is not made up.
#[derive(Debug, Clone, Copy)]
pub struct RateLimiter {
    nanos_per_item: f64,
    next_free: Option<Instant>,
}

impl RateLimiter {
    /// How late a request may go and still be booked from the time it was
    /// due, so that wake-up latency does not add up over a run.
    pub const SLACK: Duration = Duration::from_millis(5);

    /// A limit of `items_per_second` (positive).
    pub fn new(items_per_second: f64) -> Self {
        RateLimiter { nanos_per_item: 1e9 / items_per_second, next_free: None }
    }

    /// When the next request may go, as of `now`.
    pub fn ready_at(&self, now: Instant) -> Instant {
        self.next_free.map_or(now, |free| free.max(now))
    }

    /// Books `items` to go at `now` if they may; `false` if it is too soon.
    pub fn try_book(&mut self, now: Instant, items: u64) -> bool {
        let start = match self.next_free {
            Some(free) if free > now => return false,
            Some(free) if now - free <= Self::SLACK => free,
            _ => now,
        };
        #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // item counts and whole nanoseconds
        let cost = Duration::from_nanos((items as f64 * self.nanos_per_item).round() as u64);
        self.next_free = Some(start + cost);
        true
    }

    /// Waits until `items` more items may be sent, and books them.
    pub async fn acquire(&mut self, items: u64) {
        loop {
            tokio::time::sleep_until(self.ready_at(Instant::now())).await;
            if self.try_book(Instant::now(), items) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_and_bad_ones_are_refused() {
        assert_eq!("2".parse::<Speed>(), Ok(Speed::Factor(2.0)));
        assert_eq!(" max ".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("0.1".parse::<Speed>(), Ok(Speed::Factor(0.1)));
        for bad in ["0", "-1", "fast", "NaN", "inf"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn records_go_at_their_offsets_divided_by_the_speed() {
        let start = Instant::now();
        let pacer = Pacer::new(1_000_000_000, start, Speed::Factor(2.0));
        let mut sent = Vec::new();
        for receive in [1_000_000_000, 2_000_000_000, 4_000_000_000, 4_000_000_000] {
            pacer.wait(receive).await;
            sent.push(start.elapsed());
        }
        let expected = [0, 500, 1500, 1500].map(Duration::from_millis);
        assert_eq!(sent, expected);
        // Late records go at once, and max speed never waits.
        pacer.wait(1_500_000_000).await;
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        let max = Pacer::new(0, Instant::now(), Speed::Max);
        assert_eq!(max.due(3_600_000_000_000), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_is_smooth_and_exact_over_the_run() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1000.0);
        let mut sent = Vec::new();
        for _ in 0..20 {
            limiter.acquire(100).await;
            sent.push(start.elapsed());
        }
        // 100 items at 1000/s: one request every 100 ms, the first at once.
        let expected: Vec<_> = (0..20).map(|n| Duration::from_millis(100 * n)).collect();
        assert_eq!(sent, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn time_lost_to_a_slow_target_is_not_made_up_in_a_burst() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10.0);
        limiter.acquire(1).await;
        // The target took a second; the next request goes now, not in a
        // burst of the ten the limit would have allowed meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
        limiter.acquire(1).await;
        limiter.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_millis(1100));
    }
}
