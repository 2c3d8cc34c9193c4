//! Pass-through: every accepted request is sent on to an upstream OTLP
//! endpoint, without ever holding up recording.
//!
//! Requests wait in a bounded queue; when it is full, the request is not
//! forwarded and counted as failed, while the recording keeps it. A fixed
//! number of sends run at once. Which exporter does the sending is the
//! caller's choice, behind [`Upstream`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tape_otlp::Signal;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use std::future::Future;

use crate::stats::Stats;

/// Where forwarded requests go: an OTLP exporter.
#[async_trait::async_trait]
pub trait Upstream: Send + Sync {
    /// The endpoint, for messages.
    fn describe(&self) -> String;

    /// Sends one protobuf-encoded export request of `signal`, retrying as
    /// the exporter sees fit; an error says why it was not delivered.
    async fn send(&self, signal: Signal, payload: Bytes) -> Result<(), String>;
}

/// How the forwarder queues and sends.
#[derive(Debug, Clone, Copy)]
pub struct ForwardConfig {
    /// Requests waiting to be sent, at most.
    pub queue_requests: usize,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// How long the forwarder may keep sending after the capture stops;
    /// what is still unsent then is counted as failed.
    pub drain_timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig { queue_requests: 1024, concurrency: 8, drain_timeout: Duration::from_secs(10) }
    }
}

/// The receivers' handle on the forwarder.
#[derive(Clone)]
pub struct Forwarder {
    queue: mpsc::Sender<(Signal, Bytes)>,
    stats: Arc<Stats>,
}

/// The sending side of a forwarder: run it, and it ends once every
/// [`Forwarder`] handle is dropped and the queue is empty (or the drain
/// timeout passes).
pub struct ForwardTask {
    upstream: Arc<dyn Upstream>,
    config: ForwardConfig,
    queue: mpsc::Receiver<(Signal, Bytes)>,
    stats: Arc<Stats>,
}

/// Creates a forwarder to `upstream`.
pub fn forwarder(upstream: Arc<dyn Upstream>, config: ForwardConfig, stats: Arc<Stats>) -> (Forwarder, ForwardTask) {
    let (sender, queue) = mpsc::channel(config.queue_requests.max(1));
    (Forwarder { queue: sender, stats: Arc::clone(&stats) }, ForwardTask { upstream, config, queue, stats })
}

impl Forwarder {
    /// Queues a request for the upstream; never waits. A full queue counts
    /// the request as failed to forward.
    pub fn offer(&self, signal: Signal, payload: Bytes) {
        if self.queue.try_send((signal, payload)).is_err() {
            self.stats.signal(signal).forward_failed();
            debug!(%signal, "The forward queue is full; the request is recorded but not forwarded.");
        }
    }
}

impl ForwardTask {
    /// Sends queued requests until the queue closes and the sends in
    /// flight end, or until the drain timeout has passed after `stopped`
    /// completes (the receivers are gone): what is unsent then is counted
    /// as failed.
    pub async fn run(self, stopped: impl Future<Output = ()>) {
        let ForwardTask { upstream, config, mut queue, stats } = self;
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let mut sends: JoinSet<Option<String>> = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, Signal> = HashMap::new();
        let mut warned = false;
        let deadline = async {
            stopped.await;
            tokio::time::sleep(config.drain_timeout).await;
        };
        tokio::pin!(deadline);
        let mut timed_out = false;
        'queue: loop {
            let (signal, payload) = tokio::select! {
                biased;
                () = &mut deadline => { timed_out = true; break 'queue; }
                item = queue.recv() => match item {
                    Some(item) => item,
                    None => break 'queue,
                },
            };
            let slot = tokio::select! {
                biased;
                () = &mut deadline => {
                    stats.signal(signal).forward_failed();
                    timed_out = true;
                    break 'queue;
                }
                slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            while let Some(done) = sends.try_join_next_with_id() {
                reap(done, &mut in_flight, &mut warned, upstream.as_ref());
            }
            let upstream = Arc::clone(&upstream);
            let stats = Arc::clone(&stats);
            let handle = sends.spawn(async move {
                let _slot = slot;
                match upstream.send(signal, payload).await {
                    Ok(()) => {
                        stats.signal(signal).forwarded();
                        None
                    }
                    Err(message) => {
                        stats.signal(signal).forward_failed();
                        Some(message)
                    }
                }
            });
            in_flight.insert(handle.id(), signal);
        }
        if !timed_out {
            loop {
                tokio::select! {
                    biased;
                    () = &mut deadline => { timed_out = true; break; }
                    done = sends.join_next_with_id() => match done {
                        Some(done) => reap(done, &mut in_flight, &mut warned, upstream.as_ref()),
                        None => break,
                    },
                }
            }
        }
        if timed_out {
            sends.abort_all();
            let mut unsent = 0;
            while let Some(done) = sends.join_next_with_id().await {
                // A send that finished before the abort counted itself.
                if let Err(error) = done
                    && let Some(signal) = in_flight.get(&error.id())
                {
                    stats.signal(*signal).forward_failed();
                    unsent += 1;
                }
            }
            queue.close();
            while let Ok((signal, _)) = queue.try_recv() {
                stats.signal(signal).forward_failed();
                unsent += 1;
            }
            warn!(
                upstream = %upstream.describe(),
                unsent,
                "Forwarding did not finish in time after the capture stopped; the rest is counted as failed."
            );
        }
    }
}

/// Takes a finished send off the books, warning about the first failure
/// (the count says the rest).
fn reap(
    done: Result<(tokio::task::Id, Option<String>), tokio::task::JoinError>,
    in_flight: &mut HashMap<tokio::task::Id, Signal>,
    warned: &mut bool,
    upstream: &dyn Upstream,
) {
    in_flight.remove(&finished_id(&done));
    if let Ok((_, Some(message))) = done
        && !*warned
    {
        warn!(upstream = %upstream.describe(), "Forwarding failed: {message}");
        *warned = true;
    }
}

fn finished_id<T>(done: &Result<(tokio::task::Id, T), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, _)) => *id,
        Err(error) => error.id(),
    }
}
