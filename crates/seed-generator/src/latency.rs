use crate::SeedRng;

/// The standard normal quantile of 0.99.
const Z_99: f64 = 2.326_347_874_040_841;

/// How long an operation takes, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always the same.
    Fixed(u64),
    /// Log-normal, given by its median and its 99th percentile, the way
    /// latency is usually described.
    LogNormal {
        /// ln of the median.
        mu: f64,
        /// Spread: ln(p99 / median) / z(0.99).
        sigma: f64,
    },
}

/// A latency that cannot be sampled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LatencyError {
    /// The median is zero.
    #[error("a latency median must be above zero")]
    ZeroMedian,
    /// The p99 is below the median.
    #[error("a latency p99 ({p99} ns) must not be below its median ({median} ns)")]
    P99BelowMedian {
        /// The median given.
        median: u64,
        /// The p99 given.
        p99: u64,
    },
}

impl Latency {
    /// A log-normal latency with this `median` and `p99`, in nanoseconds.
    #[allow(clippy::cast_precision_loss)] // nanoseconds below 2^53 are exact
    pub fn log_normal(median: u64, p99: u64) -> Result<Self, LatencyError> {
        if median == 0 {
            return Err(LatencyError::ZeroMedian);
        }
        if p99 < median {
            return Err(LatencyError::P99BelowMedian { median, p99 });
        }
        let mu = libm::log(median as f64);
        let sigma = (libm::log(p99 as f64) - mu) / Z_99;
        Ok(Latency::LogNormal { mu, sigma })
    }

    /// One draw, in nanoseconds, at least 1. A log-normal draw takes two
    /// uniform numbers (Box–Muller), so the number of draws per sample is
    /// fixed and streams stay aligned.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn sample(&self, rng: &mut SeedRng) -> u64 {
        match *self {
            Latency::Fixed(nanos) => nanos,
            Latency::LogNormal { mu, sigma } => {
                // 1 - unit() is in (0, 1], so the logarithm is finite.
                let radius = libm::sqrt(-2.0 * libm::log(1.0 - rng.unit()));
                let normal = radius * libm::cos(2.0 * core::f64::consts::PI * rng.unit());
                let nanos = libm::round(libm::exp(mu + sigma * normal));
                // Far tails are capped at an hour: an operation of a seed
                // session never outlasts the session.
                nanos.clamp(1.0, 3.6e12) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99_are_what_was_asked() {
        let latency = Latency::log_normal(40_000_000, 250_000_000).unwrap();
        let mut rng = SeedRng::new(3);
        let mut draws: Vec<u64> = (0..200_000).map(|_| latency.sample(&mut rng)).collect();
        draws.sort_unstable();
        let median = draws[draws.len() / 2];
        let p99 = draws[draws.len() * 99 / 100];
        assert!((38_000_000..42_000_000).contains(&median), "median {median}");
        assert!((235_000_000..265_000_000).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn equal_median_and_p99_is_constant() {
        let latency = Latency::log_normal(5_000, 5_000).unwrap();
        let mut rng = SeedRng::new(9);
        assert!((0..100).all(|_| latency.sample(&mut rng) == 5_000));
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(Latency::log_normal(0, 10), Err(LatencyError::ZeroMedian));
        assert_eq!(Latency::log_normal(10, 5), Err(LatencyError::P99BelowMedian { median: 10, p99: 5 }));
    }
}
