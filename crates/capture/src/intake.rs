//! What the receivers hand every valid request to: the recorder, when a
//! recording is attached, and the forwarder, when pass-through is on.

use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use tape_otlp::Signal;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::forward::Forwarder;
use crate::recorder::{Recorder, Refusal};
use crate::stats::Stats;

/// Requests read and decoded at once, over both receivers, at most: with
/// the request size limit, this bounds the memory of requests not yet
/// queued (64 × 16 MiB at the defaults in the worst case). Beyond it,
/// clients are told to retry (HTTP 503, gRPC `UNAVAILABLE`).
pub const MAX_REQUESTS_IN_FLIGHT: usize = 64;

/// Shared by the gRPC and HTTP receivers.
#[derive(Clone)]
pub struct Intake {
    recorder: RecorderSlot,
    forwarder: Option<Forwarder>,
    stats: Arc<Stats>,
    max_request_bytes: usize,
    in_flight: Arc<Semaphore>,
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
    /// `max_request_bytes` after decompression.
    pub fn new(
        recorder: Option<Recorder>,
        forwarder: Option<Forwarder>,
        stats: Arc<Stats>,
        max_request_bytes: usize,
    ) -> Self {
        Intake {
            recorder: RecorderSlot { recorder: Arc::new(RwLock::new(recorder)) },
            forwarder,
            stats,
            max_request_bytes,
            in_flight: Arc::new(Semaphore::new(MAX_REQUESTS_IN_FLIGHT)),
        }
    }

    /// The handle that attaches and detaches this intake's recorder (for
    /// every clone of it).
    pub(crate) fn recorder_slot(&self) -> RecorderSlot {
        self.recorder.clone()
    }

    /// A slot for one request being read, or `None` when
    /// [`MAX_REQUESTS_IN_FLIGHT`] are: the request is then refused unread.
    pub fn begin_request(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.in_flight).try_acquire_owned().ok()
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
