//! What the receivers hand every valid request to: the recorder, when a
//! recording is attached, and the forwarder, when pass-through is on; and
//! the limits on reading request bodies, which each receiver applies.
//!
//! A request body is held in memory while it arrives. Each receiver has a
//! [`ReceiveBudget`] of bytes for the bodies it is reading, taken chunk by
//! chunk as the bytes arrive and given back once the request is decoded:
//! a client that stalls holds only the bytes it sent, for at most the read
//! timeout, and a body that does not fit in the budget is refused with a
//! retryable code instead of waiting. gRPC and HTTP have a budget each, so
//! a flood on one does not starve the other.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tape_otlp::Signal;
use tokio::sync::Semaphore;

use crate::forward::Forwarder;
use crate::recorder::{Recorder, Refusal};
use crate::stats::Stats;

/// The default [`ReceiveLimits::budget_bytes`]: 48 MiB per receiver.
pub const DEFAULT_RECEIVE_BUDGET_BYTES: usize = 48 * 1024 * 1024;

/// The default [`ReceiveLimits::read_timeout`]: 30 s.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How much request bodies may hold, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveLimits {
    /// Bytes of request bodies being read at once, per receiver (gRPC and
    /// HTTP each have this much): taken as bytes arrive, given back once a
    /// request is decoded. A body that would pass it is refused with a
    /// retryable code (HTTP 503 with `Retry-After`, gRPC `UNAVAILABLE`).
    /// At least the largest request, so that one always fits.
    pub budget_bytes: usize,
    /// The longest a request's body may take to arrive, from the moment its
    /// headers are read; a body still incomplete then is refused (HTTP 408,
    /// gRPC `DEADLINE_EXCEEDED`) and its bytes given back.
    pub read_timeout: Duration,
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        ReceiveLimits { budget_bytes: DEFAULT_RECEIVE_BUDGET_BYTES, read_timeout: DEFAULT_READ_TIMEOUT }
    }
}

/// Bytes of request bodies one receiver may hold while reading them.
#[derive(Debug, Clone)]
pub struct ReceiveBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl ReceiveBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Self {
        ReceiveBudget { bytes: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))), total }
    }

    /// The bytes of the whole budget.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The bytes not held by any request now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// An empty hold on this budget, for one request's body.
    pub fn hold(&self) -> Held {
        Held { bytes: Arc::clone(&self.bytes), held: 0 }
    }
}

/// The bytes of a budget one request holds; given back when dropped.
#[derive(Debug)]
pub struct Held {
    bytes: Arc<Semaphore>,
    held: usize,
}

impl Held {
    /// Takes `bytes` more from the budget, without waiting: `false` when
    /// the budget does not have them (the request should then be refused,
    /// which gives back what it holds).
    pub fn take(&mut self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let Ok(count) = u32::try_from(bytes) else {
            return false;
        };
        match self.bytes.try_acquire_many(count) {
            Ok(permit) => {
                permit.forget();
                self.held += bytes;
                true
            }
            Err(_) => false,
        }
    }

    /// Whether a request may start being read: the budget has `needed`
    /// bytes free now (without taking them). Checked when its first bytes
    /// arrive, with the size it announces, so that a full budget's room goes
    /// to the requests being read rather than to new ones; a client that
    /// stalls still holds only what it sent.
    pub fn admit(&self, needed: usize) -> bool {
        self.bytes.available_permits() >= needed
    }

    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.held
    }

    /// Gives back everything held.
    pub fn release(&mut self) {
        if self.held > 0 {
            self.bytes.add_permits(self.held);
            self.held = 0;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

/// Shared by the gRPC and HTTP receivers.
#[derive(Clone)]
pub struct Intake {
    recorder: RecorderSlot,
    forwarder: Option<Forwarder>,
    stats: Arc<Stats>,
    max_request_bytes: usize,
    read_timeout: Duration,
    grpc_budget: ReceiveBudget,
    http_budget: ReceiveBudget,
}

/// The recorder an intake and its clones hand requests to, if any; it can
/// be attached and detached while the receivers run.
#[derive(Clone, Default)]
pub(crate) struct RecorderSlot {
    recorder: Arc<RwLock<Option<Recorder>>>,
}

impl RecorderSlot {
    /// The recorder now, if any. The lock is never held across an await.
    fn current(&self) -> Option<Recorder> {
        self.recorder.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Hands requests to `recorder` from now on, unless it has already
    /// stopped: returns whether it was attached. Checked under the lock
    /// [`detach`](RecorderSlot::detach) takes, so a recording that ends at
    /// the same time is never left attached.
    pub(crate) fn attach(&self, recorder: &Recorder) -> bool {
        let mut slot = self.recorder.write().unwrap_or_else(PoisonError::into_inner);
        if recorder.is_stopping() {
            return false;
        }
        *slot = Some(recorder.clone());
        true
    }

    /// Stops handing requests to `recorder`, if it is the one attached.
    pub(crate) fn detach(&self, recorder: &Recorder) {
        let mut slot = self.recorder.write().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|attached| attached.is_same(recorder)) {
            *slot = None;
        }
    }
}

impl Intake {
    /// An intake that records with `recorder` (none: acknowledge without
    /// recording) and forwards with `forwarder`, refusing requests over
    /// `max_request_bytes` after decompression, and reading bodies within
    /// `limits`. A budget smaller than `max_request_bytes` is raised to it,
    /// so that the largest request fits.
    pub fn new(
        recorder: Option<Recorder>,
        forwarder: Option<Forwarder>,
        stats: Arc<Stats>,
        max_request_bytes: usize,
        limits: ReceiveLimits,
    ) -> Self {
        let budget = limits.budget_bytes.max(max_request_bytes);
        Intake {
            recorder: RecorderSlot { recorder: Arc::new(RwLock::new(recorder)) },
            forwarder,
            stats,
            max_request_bytes,
            read_timeout: limits.read_timeout,
            grpc_budget: ReceiveBudget::new(budget),
            http_budget: ReceiveBudget::new(budget),
        }
    }

    /// The handle that attaches and detaches this intake's recorder (for
    /// every clone of it).
    pub(crate) fn recorder_slot(&self) -> RecorderSlot {
        self.recorder.clone()
    }

    /// The budget of the bodies the gRPC receiver is reading.
    pub fn grpc_budget(&self) -> &ReceiveBudget {
        &self.grpc_budget
    }

    /// The budget of the bodies the HTTP receiver is reading.
    pub fn http_budget(&self) -> &ReceiveBudget {
        &self.http_budget
    }

    /// The longest a request's body may take to arrive.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// The counters to count a request in now: the attached recorder's
    /// (which may count into the intake's too), or the intake's when no
    /// recorder is attached.
    pub fn stats(&self) -> Arc<Stats> {
        match self.recorder.current() {
            Some(recorder) => Arc::clone(recorder.stats()),
            None => Arc::clone(&self.stats),
        }
    }

    /// The largest request accepted, after decompression.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Records (and forwards) a valid request of `signal` with `items`
    /// items, protobuf-encoded in `payload`. Forwarding happens only once
    /// the request is acknowledged, so upstream gets what the session has.
    pub async fn accept(&self, signal: Signal, items: u64, payload: Bytes) -> Result<(), Refusal> {
        match self.recorder.current() {
            Some(recorder) => {
                recorder.submit(signal, items, payload.clone()).await?;
            }
            None => self.stats.signal(signal).ignored(items),
        }
        if let Some(forwarder) = &self.forwarder {
            forwarder.offer(signal, payload);
        }
        Ok(())
    }
}
