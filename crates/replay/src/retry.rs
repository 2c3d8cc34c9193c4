//! Retrying exports per the OTLP specification: retryable failures are sent
//! again after an exponential backoff with full jitter, or after the delay
//! the target asked for; permanent failures are not.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tape_otlp::Signal;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::Sink;
use crate::error::{ExportError, ExportErrorKind};
use crate::exporter::ExportOutcome;

/// How [`export_with_retry`] retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delivery in all, the first one included; 1 (or 0) means no retry.
    /// Default 5.
    pub max_attempts: u32,
    /// The backoff ceiling after the first failure; it doubles after each
    /// further failure. Default 1 s.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling. Default 30 s. A delay the target asks
    /// for (`Retry-After`, `RetryInfo`) is honoured even when longer.
    pub max_backoff: Duration,
    /// No attempt starts later than this after the first one began.
    /// Default 5 min.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_elapsed: Duration::from_mins(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub const NO_RETRY: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        max_elapsed: Duration::ZERO,
    };

    /// The backoff ceiling after `failures` failed attempts (1 for the
    /// first): `initial_backoff × 2^(failures − 1)`, at most `max_backoff`.
    /// The wait is drawn uniformly between zero and the ceiling.
    pub fn backoff_ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1);
        self.initial_backoff.saturating_mul(2_u32.saturating_pow(doublings)).min(self.max_backoff)
    }
}

/// Exports `payload` with `exporter` (an [`Exporter`](crate::Exporter) or
/// another [`Sink`]), retrying retryable failures as
/// `policy` says, and returns the first success or the last error. A
/// permanent error returns at once. Waits use Tokio's clock, so tests can
/// pause time.
pub async fn export_with_retry<S: Sink + ?Sized>(
    exporter: &S,
    policy: &RetryPolicy,
    signal: Signal,
    payload: Bytes,
) -> Result<ExportOutcome, ExportError> {
    retry(policy, full_jitter, &CancellationToken::new(), || exporter.export(signal, payload.clone())).await.result
}

/// How a request sent with retries ended.
#[derive(Debug)]
pub(crate) struct Delivery<T> {
    /// The first success, or the last error.
    pub result: Result<T, ExportError>,
    /// Delivery made, the first included.
    pub attempts: u32,
    /// A stop came while the request could still be retried: the last
    /// error is retryable and the request is neither sent nor failed.
    pub interrupted: bool,
}

/// [`export_with_retry`] that gives up when `stop` is cancelled: a retry
/// wait ends at once, and no further attempt starts.
pub(crate) async fn export_until_stopped<S: Sink + ?Sized>(
    exporter: &S,
    policy: &RetryPolicy,
    stop: &CancellationToken,
    signal: Signal,
    payload: Bytes,
) -> Delivery<ExportOutcome> {
    retry(policy, full_jitter, stop, || exporter.export(signal, payload.clone())).await
}

/// A wait drawn uniformly from zero to `ceiling` ("full jitter"), so that
/// clients that failed together do not retry together.
fn full_jitter(ceiling: Duration) -> Duration {
    if ceiling.is_zero() {
        return Duration::ZERO;
    }
    rand::rng().random_range(Duration::ZERO..=ceiling)
}

/// The retry loop, with the jitter given so tests can make waits exact.
/// An attempt under way when `stop` is cancelled runs on (the caller
/// bounds it); a retryable failure after the stop is not retried and
/// comes back `interrupted`.
async fn retry<T, F, Attempt>(
    policy: &RetryPolicy,
    mut jitter: impl FnMut(Duration) -> Duration,
    stop: &CancellationToken,
    mut attempt: F,
) -> Delivery<T>
where
    F: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, ExportError>>,
{
    let start = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0_u32;
    let end = |result, attempts, interrupted| Delivery { result, attempts, interrupted };
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(value) => return end(Ok(value), attempts, false),
            Err(error) => error,
        };
        let ExportErrorKind::Retryable { retry_after } = error.kind else {
            return end(Err(error), attempts, false);
        };
        if stop.is_cancelled() {
            return end(Err(error), attempts, true);
        }
        if attempts >= max_attempts {
            return end(Err(give_up(error, attempts, None)), attempts, false);
        }
        let delay = retry_after.unwrap_or_else(|| jitter(policy.backoff_ceiling(attempts)));
        if start.elapsed() + delay > policy.max_elapsed {
            return end(Err(give_up(error, attempts, Some(policy.max_elapsed))), attempts, false);
        }
        tracing::debug!(
            attempt = attempts,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error.message,
            "Export failed; retrying."
        );
        tokio::select! {
            () = stop.cancelled() => return end(Err(error), attempts, true),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// The last error, saying why there is no further attempt.
fn give_up(mut error: ExportError, attempts: u32, limit: Option<Duration>) -> ExportError {
    let plural = if attempts == 1 { "attempt" } else { "attempts" };
    // Writing to a `String` cannot fail.
    let _ = match limit {
        Some(limit) => write!(
            error.message,
            " (gave up after {attempts} {plural}: the next would start after the retry limit of {})",
            crate::exporter::display_duration(limit)
        ),
        None if attempts > 1 => write!(error.message, " (gave up after {attempts} {plural})"),
        None => Ok(()),
    };
    error
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn policy(max_attempts: u32, initial_ms: u64, max_ms: u64, max_elapsed_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            max_elapsed: Duration::from_millis(max_elapsed_ms),
        }
    }

    /// An attempt function that fails with `errors` in turn, then succeeds.
    fn script(errors: Vec<ExportError>) -> (Cell<usize>, impl Fn(&Cell<usize>) -> Result<u32, ExportError>) {
        (Cell::new(0), move |calls: &Cell<usize>| {
            let call = calls.get();
            calls.set(call + 1);
            match errors.get(call) {
                Some(error) => Err(error.clone()),
                None => Ok(7),
            }
        })
    }

    /// Runs `retry` under `policy` with waits at their ceilings, no stop and
    /// attempts that fail with `errors` in turn: the result, how many
    /// attempts were made and how long it took.
    async fn run_script(policy: &RetryPolicy, errors: Vec<ExportError>) -> (Result<u32, ExportError>, usize, Duration) {
        let (calls, attempt) = script(errors);
        let start = Instant::now();
        let result =
            retry(policy, |ceiling| ceiling, &CancellationToken::new(), || async { attempt(&calls) }).await.result;
        (result, calls.get(), start.elapsed())
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let policy = policy(10, 100, 300, 10_000);
        let ceilings: Vec<u128> = (1..=5).map(|failures| policy.backoff_ceiling(failures).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 300, 300, 300]);
        assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_millis(300));
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling() {
        let ceiling = Duration::from_millis(50);
        let draws: Vec<Duration> = (0..200).map(|_| full_jitter(ceiling)).collect();
        assert!(draws.iter().all(|draw| *draw <= ceiling));
        assert!(draws.iter().any(|draw| *draw != draws[0]), "the waits are not random");
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_retried_with_exponential_backoff() {
        let (result, calls, elapsed) =
            run_script(&policy(5, 100, 300, 10_000), vec![ExportError::retryable("down", None); 10]).await;
        let error = result.unwrap_err();
        assert_eq!(calls, 5);
        assert_eq!(elapsed, Duration::from_millis(100 + 200 + 300 + 300));
        assert_eq!(error.message, "down (gave up after 5 attempts)");
        assert!(error.is_retryable());
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_the_target_asks_for_is_honoured() {
        let asked = Duration::from_secs(7);
        let (value, calls, elapsed) =
            run_script(&policy(3, 100, 300, 60_000), vec![ExportError::retryable("busy", Some(asked))]).await;
        assert_eq!(value.unwrap(), 7);
        assert_eq!(calls, 2);
        assert_eq!(elapsed, asked);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let (result, calls, elapsed) =
            run_script(&policy(5, 100, 300, 10_000), vec![ExportError::permanent("bad request")]).await;
        let error = result.unwrap_err();
        assert_eq!((calls, elapsed), (1, Duration::ZERO));
        assert_eq!(error.message, "bad request");
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_after_the_elapsed_limit() {
        let (result, calls, elapsed) =
            run_script(&policy(10, 1_000, 60_000, 2_500), vec![ExportError::retryable("down", None); 10]).await;
        let error = result.unwrap_err();
        // Waits of 1 s then 2 s: the third attempt would start at 3 s.
        assert_eq!((calls, elapsed), (2, Duration::from_secs(1)));
        assert!(
            error.message.ends_with("(gave up after 2 attempts: the next would start after the retry limit of 2.5s)")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jittered_waits_stay_under_their_ceilings() {
        let (calls, attempt) = script(vec![ExportError::retryable("down", None); 3]);
        let start = Instant::now();
        let value =
            retry(&policy(5, 100, 300, 10_000), full_jitter, &CancellationToken::new(), || async { attempt(&calls) })
                .await
                .result;
        assert_eq!(value.unwrap(), 7);
        assert_eq!(calls.get(), 4);
        assert!(start.elapsed() <= Duration::from_millis(100 + 200 + 300));
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_means_one_attempt() {
        let (result, calls, _) = run_script(&RetryPolicy::NO_RETRY, vec![ExportError::retryable("down", None)]).await;
        let error = result.unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(error, ExportError::retryable("down", None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_retry_wait_at_once_and_starts_no_attempt() {
        let (calls, attempt) = script(vec![ExportError::retryable("down", None); 10_000]);
        let stop = CancellationToken::new();
        let start = Instant::now();
        let stopping = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            stop.cancel();
        };
        // A minute between attempts, and thousands of them.
        let policy = policy(10_000, 60_000, 60_000, 3_600_000);
        let (attempts, ()) =
            tokio::join!(retry(&policy, |ceiling| ceiling, &stop, || async { attempt(&calls) }), stopping);
        assert_eq!(start.elapsed(), Duration::from_secs(3), "the wait ended with the stop");
        assert_eq!((calls.get(), attempts.attempts, attempts.interrupted), (1, 1, true));
        assert_eq!(attempts.result.unwrap_err(), ExportError::retryable("down", None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retryable_failure_after_a_stop_is_interrupted_not_failed() {
        let (calls, attempt) = script(vec![ExportError::retryable("down", None); 3]);
        let stop = CancellationToken::new();
        stop.cancel();
        let attempts = retry(&policy(1, 0, 0, 0), |ceiling| ceiling, &stop, || async { attempt(&calls) }).await;
        assert_eq!((calls.get(), attempts.interrupted), (1, true));
        let (calls, attempt) = script(vec![ExportError::permanent("bad")]);
        let attempts = retry(&policy(5, 0, 0, 0), |ceiling| ceiling, &stop, || async { attempt(&calls) }).await;
        assert_eq!((calls.get(), attempts.interrupted), (1, false), "a permanent failure is a failure");
    }
}
