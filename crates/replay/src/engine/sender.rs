//! [`Sender`]: requests sent to a [`Sink`] with bounded concurrency, each
//! with retries, and what became of each counted into a [`Progress`]. The
//! replay engine sends through it, and so does `seed --live`.

use std::pin::Pin;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tape_otlp::Signal;
use tokio_util::sync::CancellationToken;

use super::{Progress, Sink};
use crate::error::ExportError;
use crate::exporter::ExportOutcome;
use crate::retry::{RetryPolicy, export_until_stopped};

/// What became of a request.
#[derive(Debug)]
pub enum SendOutcome {
    /// The target accepted it, wholly or in part.
    Sent(ExportOutcome),
    /// It failed: a permanent error, or its retries ran out.
    Failed(ExportError),
    /// The sender's halt came while it could still be retried: neither
    /// sent nor failed, and not counted.
    Interrupted(ExportError),
}

/// A request the sender finished with.
#[derive(Debug)]
pub struct Completed {
    /// The caller's tag of the request (the replay engine's record index).
    pub tag: u64,
    /// Its signal.
    pub signal: Signal,
    /// Items in it.
    pub items: u64,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// What became of it.
    pub outcome: SendOutcome,
}

type InFlight<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = Completed> + Send + 'a>>>;

/// Sends requests to a sink, at most `concurrency` at a time, each with
/// the retry policy's retries, and counts what became of each into a
/// [`Progress`]: sent (items and rejected items), failed (items, and the
/// error as its last error) and retries, per signal.
///
/// The caller decides when to send (see [`Sender::has_room`]) and takes
/// the completions with [`Sender::next`], so that it can wait for other
/// things meanwhile. Cancelling `halt` ends every retry wait at once: a
/// request still retryable then ends [`SendOutcome::Interrupted`].
pub struct Sender<'a, S: Sink + ?Sized> {
    sink: &'a S,
    retry: &'a RetryPolicy,
    halt: &'a CancellationToken,
    progress: &'a Progress,
    concurrency: usize,
    in_flight: InFlight<'a>,
}

impl<'a, S: Sink + ?Sized> Sender<'a, S> {
    /// A sender to `sink` with at most `concurrency` requests in flight
    /// (at least 1), counting into `progress`.
    pub fn new(
        sink: &'a S,
        retry: &'a RetryPolicy,
        halt: &'a CancellationToken,
        progress: &'a Progress,
        concurrency: usize,
    ) -> Self {
        Sender { sink, retry, halt, progress, concurrency: concurrency.max(1), in_flight: FuturesUnordered::new() }
    }

    /// Requests in flight (sent or waiting to be retried).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether no request is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Whether another request may be sent without going over the
    /// concurrency.
    pub fn has_room(&self) -> bool {
        self.in_flight.len() < self.concurrency
    }

    /// The most requests in flight.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Sends a request of `items` items (with retries), tagged `tag`. It
    /// does not wait: the caller keeps to the concurrency with
    /// [`Sender::has_room`].
    pub fn send(&mut self, tag: u64, signal: Signal, items: u64, payload: Bytes)
    where
        S: 'a,
    {
        let (sink, retry, halt) = (self.sink, self.retry, self.halt);
        self.in_flight.push(Box::pin(async move {
            let delivery = export_until_stopped(sink, retry, halt, signal, payload).await;
            let outcome = match delivery.result {
                Ok(outcome) => SendOutcome::Sent(outcome),
                Err(error) if delivery.interrupted => SendOutcome::Interrupted(error),
                Err(error) => SendOutcome::Failed(error),
            };
            Completed { tag, signal, items, attempts: delivery.attempts, outcome }
        }));
    }

    /// The next request to finish, counted; `None` (at once) when none is
    /// in flight.
    pub async fn next(&mut self) -> Option<Completed> {
        let completed = self.in_flight.next().await?;
        let Completed { signal, items, attempts, .. } = completed;
        let retries = u64::from(attempts.saturating_sub(1));
        self.progress.retried(signal, retries);
        match &completed.outcome {
            SendOutcome::Sent(outcome) => {
                self.progress.sent(signal, items, outcome.rejected_items);
                self.progress.ended(signal, items, 0, retries);
            }
            SendOutcome::Failed(error) => {
                self.progress.failed(signal, items, error.message.clone());
                self.progress.ended(signal, 0, 1, retries);
            }
            SendOutcome::Interrupted(_) => self.progress.ended(signal, 0, 0, retries),
        }
        Some(completed)
    }

    /// Gives up on the requests in flight, uncounted; returns how many
    /// there were.
    pub fn abandon(&mut self) -> u64 {
        let abandoned = self.in_flight.len() as u64;
        self.in_flight.clear();
        abandoned
    }
}
