//! What the receivers hand every valid request to: the recorder, when a
//! recording is running, and the forwarder, when pass-through is on.

use std::sync::Arc;

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
    recorder: Option<Recorder>,
    forwarder: Option<Forwarder>,
    stats: Arc<Stats>,
    max_request_bytes: usize,
    in_flight: Arc<Semaphore>,
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
            recorder,
            forwarder,
            stats,
            max_request_bytes,
            in_flight: Arc::new(Semaphore::new(MAX_REQUESTS_IN_FLIGHT)),
        }
    }

    /// A slot for one request being read, or `None` when
    /// [`MAX_REQUESTS_IN_FLIGHT`] are: the request is then refused unread.
    pub fn begin_request(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.in_flight).try_acquire_owned().ok()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The largest request accepted, after decompression.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// Records (and forwards) a valid request of `signal` with `items`
    /// items, protobuf-encoded in `payload`. Forwarding happens only once
    /// the request is acknowledged, so upstream gets what the session has.
    pub async fn accept(&self, signal: Signal, items: u64, payload: Bytes) -> Result<(), Refusal> {
        match &self.recorder {
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
