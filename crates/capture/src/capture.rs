//! A running capture: receivers, recorder and forwarder wired together,
//! started and stopped as one.

use std::net::SocketAddr;
use std::sync::Arc;

use tape_session::{SessionMetadata, SessionStore};
use tokio::task::JoinHandle;

use crate::forward::{ForwardConfig, Upstream, forwarder};
use crate::intake::{Intake, ReceiveLimits};
use crate::receivers::{Forwarding, Listeners, Servers};
use crate::recorder::{RecorderConfig, RecordingOutcome, StopHandle, recorder};
use crate::stats::{Stats, StatsSnapshot};

/// Everything a capture needs besides the store and the session.
pub struct CaptureConfig {
    /// Where OTLP/gRPC is served; `None` turns it off.
    pub grpc: Option<SocketAddr>,
    /// Where OTLP/HTTP is served; `None` turns it off.
    pub http: Option<SocketAddr>,
    /// The largest request accepted, after decompression.
    pub max_request_bytes: usize,
    /// How much request bodies being read may hold, and for how long.
    pub receive: ReceiveLimits,
    /// How the session is written.
    pub recorder: RecorderConfig,
    /// Pass-through, if any.
    pub forward: Option<(Arc<dyn Upstream>, ForwardConfig)>,
}

/// Why a capture (or [`Receivers`](crate::Receivers)) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen for OTLP/{protocol} on {addr}: {source}")]
    Bind {
        /// `gRPC` or `HTTP`.
        protocol: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The session could not be created (its id is taken, or the store
    /// failed). Not returned by [`Receivers::start`](crate::Receivers::start).
    #[error(transparent)]
    Session(#[from] tape_session::Error),
    /// Neither receiver is on.
    #[error("both receivers are off; turn on OTLP/gRPC or OTLP/HTTP")]
    NoReceiver,
}

/// A capture that is running.
pub struct Capture {
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    stats: Arc<Stats>,
    stop: StopHandle,
    done: JoinHandle<Result<CaptureOutcome, tape_session::Error>>,
}

/// How a capture ended (a [`Capture`] or an
/// [`AttachedCapture`](crate::AttachedCapture)).
#[derive(Debug, Clone)]
pub struct CaptureOutcome {
    /// The session as finished, and why it ended.
    pub recording: RecordingOutcome,
    /// The counters at the end, forwarding included.
    pub stats: StatsSnapshot,
}

impl Capture {
    /// Binds the receivers and starts recording into a new session
    /// described by `metadata` (its id must be free in `store`).
    pub async fn start(
        store: Arc<dyn SessionStore>,
        metadata: SessionMetadata,
        config: CaptureConfig,
    ) -> Result<Capture, StartError> {
        let listeners = Listeners::bind(config.grpc, config.http).await?;
        let (grpc_addr, http_addr) = (listeners.grpc_addr(), listeners.http_addr());

        let stats = Arc::new(Stats::default());
        let (recorder, recording, stop) = recorder(store, metadata, config.recorder, Arc::clone(&stats));
        let (forwarder, forwarding) = match config.forward {
            Some((upstream, forward_config)) => {
                let (forwarder, task) = forwarder(upstream, forward_config, Arc::clone(&stats));
                (Some(forwarder), Some(Forwarding::spawn(task)))
            }
            None => (None, None),
        };
        let intake =
            Intake::new(Some(recorder), forwarder, Arc::clone(&stats), config.max_request_bytes, config.receive);
        let servers = Servers::spawn(listeners, intake);
        let final_stats = Arc::clone(&stats);
        let (started, created) = tokio::sync::oneshot::channel();
        let done = tokio::spawn(async move {
            let outcome = recording.run(Some(started)).await;
            // The recording no longer admits anything; the receivers answer
            // what is in flight with a retryable code and stop.
            servers.drain().await;
            // Every forwarder handle was held by the receivers: now the
            // forwarder drains its queue and ends, and gets its drain time
            // from now on.
            if let Some(forwarding) = forwarding {
                forwarding.finish().await;
            }
            Ok(CaptureOutcome { recording: outcome?, stats: final_stats.snapshot() })
        });
        match created.await {
            Ok(Ok(())) => Ok(Capture { grpc_addr, http_addr, stats, stop, done }),
            Ok(Err(error)) => {
                let _ = done.await;
                Err(StartError::Session(error))
            }
            Err(_) => match done.await {
                Ok(Err(error)) => Err(StartError::Session(error)),
                _ => Err(StartError::Session(tape_session::Error::backend(
                    "the recording task ended before it started",
                    "no session",
                ))),
            },
        }
    }

    /// Where OTLP/gRPC is served, if it is.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// Where OTLP/HTTP is served, if it is.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The live counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// A handle that stops the capture (it can be cloned and kept).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Asks the capture to stop; [`wait`](Capture::wait) returns once the
    /// session is finished.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Whether the capture has ended (stopped, limit reached or failed).
    pub fn is_finished(&self) -> bool {
        self.done.is_finished()
    }

    /// Waits until the capture has ended and its session is finished.
    pub async fn wait(self) -> Result<CaptureOutcome, tape_session::Error> {
        match self.done.await {
            Ok(outcome) => outcome,
            Err(error) => Err(tape_session::Error::backend("the capture task failed", error)),
        }
    }
}
