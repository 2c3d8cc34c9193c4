//! Long-running receivers: bound once, they acknowledge (and forward) valid
//! requests while idle, and record them while a capture is attached, one
//! capture at a time.
//!
//! A capture is attached with [`Receivers::attach`], which creates its
//! session and starts its recorder; it ends when stopped, at a limit of its
//! [`RecorderConfig`], or when the store fails. Either way its session is
//! finished and the receivers go back to idle, ready for the next one.
//! Requests in flight while a capture stops are answered as by
//! [`Capture`](crate::Capture): recorded if admitted before, refused with a
//! retryable code while the session is being finished, and acknowledged
//! without recording once it is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tape_session::{SessionId, SessionMetadata, SessionStore};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::capture::{CaptureOutcome, StartError};
use crate::forward::{ForwardConfig, ForwardTask, Upstream, forwarder};
use crate::intake::{Intake, ReceiveLimits, RecorderSlot};
use crate::recorder::{QueueGauge, Recorder, RecorderConfig, StopHandle, recorder};
use crate::stats::Stats;
use crate::{grpc, http};

/// How long the receivers may take to finish the requests in flight once
/// they are asked to stop.
pub(crate) const SERVER_DRAIN: Duration = Duration::from_secs(5);

/// Where and how [`Receivers`] serve.
pub struct ReceiversConfig {
    /// Where OTLP/gRPC is served; `None` turns it off.
    pub grpc: Option<SocketAddr>,
    /// Where OTLP/HTTP is served; `None` turns it off.
    pub http: Option<SocketAddr>,
    /// The largest request accepted, after decompression.
    pub max_request_bytes: usize,
    /// How much request bodies being read may hold, and for how long.
    pub receive: ReceiveLimits,
    /// Pass-through, if any: every acknowledged request, recorded or not.
    pub forward: Option<(Arc<dyn Upstream>, ForwardConfig)>,
}

/// Why a capture could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// A capture is attached already; only one records at a time.
    #[error("a capture into session {session} is running; stop it before starting another")]
    Busy {
        /// The session of the capture attached.
        session: SessionId,
    },
    /// The session could not be created (its id is taken, or the store
    /// failed). The receivers stay idle.
    #[error(transparent)]
    Session(#[from] tape_session::Error),
    /// [`Receivers::shutdown`] has been called.
    #[error("the receivers are shut down")]
    ShutDown,
}

/// OTLP receivers that keep serving while captures come and go.
pub struct Receivers {
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    stats: Arc<Stats>,
    slot: RecorderSlot,
    state: Arc<watch::Sender<State>>,
    /// The servers and the forwarder; taken by the first shutdown.
    running: tokio::sync::Mutex<Option<(Servers, Option<Forwarding>)>>,
}

/// Which capture is attached, if any, and whether the receivers are
/// shutting down.
#[derive(Default)]
struct State {
    attached: Option<Attached>,
    shut_down: bool,
}

/// The capture attached: from its reservation in `attach` until its
/// session is finished.
struct Attached {
    session: SessionId,
    stop: StopHandle,
}

impl Receivers {
    /// Binds the receivers and serves, idle, until
    /// [`shutdown`](Receivers::shutdown). Fails with
    /// [`StartError::Bind`] or [`StartError::NoReceiver`].
    pub async fn start(config: ReceiversConfig) -> Result<Receivers, StartError> {
        let listeners = Listeners::bind(config.grpc, config.http).await?;
        let (grpc_addr, http_addr) = (listeners.grpc_addr(), listeners.http_addr());
        let stats = Arc::new(Stats::default());
        let (forwarder, forwarding) = match config.forward {
            Some((upstream, forward_config)) => {
                let (forwarder, task) = forwarder(upstream, forward_config, Arc::clone(&stats));
                (Some(forwarder), Some(Forwarding::spawn(task)))
            }
            None => (None, None),
        };
        let intake = Intake::new(None, forwarder, Arc::clone(&stats), config.max_request_bytes, config.receive);
        let slot = intake.recorder_slot();
        // The servers hold the only intakes, and with them the only
        // forwarder handles: once they end, the forwarder drains.
        let servers = Servers::spawn(listeners, intake);
        debug!(grpc = ?grpc_addr, http = ?http_addr, "OTLP receivers are listening; no capture is attached.");
        Ok(Receivers {
            grpc_addr,
            http_addr,
            stats,
            slot,
            state: Arc::new(watch::Sender::new(State::default())),
            running: tokio::sync::Mutex::new(Some((servers, forwarding))),
        })
    }

    /// Where OTLP/gRPC is served, if it is.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// Where OTLP/HTTP is served, if it is.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The counters of everything the receivers got since they started,
    /// idle or not: every capture's counts, what was acknowledged while
    /// idle (as ignored), refusals and forwarding.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The session of the capture attached, if one is.
    pub fn attached(&self) -> Option<SessionId> {
        self.state.borrow().attached.as_ref().map(|attached| attached.session.clone())
    }

    /// Creates the session described by `metadata` in `store` and records
    /// into it what the receivers get from now on, until the capture is
    /// stopped or a limit of `config` is reached.
    ///
    /// Refused with [`AttachError::Busy`] while another capture is
    /// attached, and with [`AttachError::Session`] when the session cannot
    /// be created; the receivers then stay as they were. Dropping the
    /// returned handle does not stop the capture (keep a
    /// [`StopHandle`] for that); [`shutdown`](Receivers::shutdown) does.
    pub async fn attach(
        &self,
        store: Arc<dyn SessionStore>,
        metadata: SessionMetadata,
        config: RecorderConfig,
    ) -> Result<AttachedCapture, AttachError> {
        let session_id = metadata.session_id.clone();
        let stats = Arc::new(Stats::part_of(Arc::clone(&self.stats)));
        // Nothing happens until the recording task runs.
        let (recorder, recording, stop) = recorder(store, metadata, config, Arc::clone(&stats));
        let queue = recorder.queue();
        let mut refused = None;
        self.state.send_if_modified(|state| {
            if state.shut_down {
                refused = Some(AttachError::ShutDown);
                return false;
            }
            if let Some(attached) = &state.attached {
                refused = Some(AttachError::Busy { session: attached.session.clone() });
                return false;
            }
            state.attached = Some(Attached { session: session_id.clone(), stop: stop.clone() });
            true
        });
        if let Some(error) = refused {
            return Err(error);
        }

        // The capture is reserved: from here on, whatever happens, its task
        // ends by detaching it.
        let ended = Arc::new(AtomicBool::new(false));
        let detach = Detach {
            slot: self.slot.clone(),
            recorder: recorder.clone(),
            state: Arc::clone(&self.state),
            ended: Arc::clone(&ended),
        };
        let (started, created) = oneshot::channel();
        let final_stats = Arc::clone(&stats);
        let done = tokio::spawn(async move {
            let recording = recording.run(Some(started)).await;
            // The session is finished (or was never created): the
            // receivers go idle before anyone hears of the outcome.
            drop(detach);
            let recording = recording?;
            info!(
                session = %recording.metadata.session_id,
                reason = %recording.reason,
                "Capture finished; the receivers are idle."
            );
            Ok(CaptureOutcome { recording, stats: final_stats.snapshot() })
        });
        // Should this future be dropped before it hands the capture over,
        // the capture stops rather than running on out of reach.
        let mut abandoned = StopOnDrop(Some(stop.clone()));
        match created.await {
            Ok(Ok(())) => {
                // A capture that has ended already (stopped by shutdown, or
                // a limit of zero) stays detached; its outcome says why.
                if self.slot.attach(&recorder) {
                    info!(session = %session_id, "Capture attached; recording.");
                }
                abandoned.0 = None;
                Ok(AttachedCapture { session_id, stats, queue, stop, ended, done })
            }
            Ok(Err(error)) => {
                // The task has detached the capture, or is about to.
                let _ = done.await;
                Err(AttachError::Session(error))
            }
            Err(_) => match done.await {
                Ok(Err(error)) => Err(AttachError::Session(error)),
                _ => Err(AttachError::Session(tape_session::Error::backend(
                    "the recording task ended before it started",
                    "no session",
                ))),
            },
        }
    }

    /// Stops the capture attached, if any, and waits until its session is
    /// finished; then stops the receivers, letting requests in flight
    /// finish, and lets the forwarder drain. Attaching is refused from the
    /// moment this is called. Calling it again waits for the first call to
    /// finish and does nothing more.
    pub async fn shutdown(&self) {
        let mut running = self.running.lock().await;
        let mut attached = None;
        self.state.send_modify(|state| {
            state.shut_down = true;
            attached = state.attached.as_ref().map(|attached| (attached.session.clone(), attached.stop.clone()));
        });
        if let Some((session, stop)) = attached {
            debug!(%session, "The receivers shut down: stopping the capture attached.");
            stop.stop();
        }
        // The sender lives in `self`: this cannot fail.
        let _ = self.state.subscribe().wait_for(|state| state.attached.is_none()).await;
        if let Some((servers, forwarding)) = running.take() {
            servers.drain().await;
            if let Some(forwarding) = forwarding {
                forwarding.finish().await;
            }
            debug!("OTLP receivers stopped.");
        }
    }
}

/// A capture attached to [`Receivers`].
///
/// Its [`stats`](AttachedCapture::stats) count what this capture got while
/// it was attached: requests recorded (`requests`, `items`, `bytes`),
/// acknowledged but not recorded because their signal is not selected
/// (`ignored_*`), refused because the store was behind (`throttled`), and
/// refused as invalid (`rejected`, `unrouted`). Forwarding is counted in
/// the receivers' stats only. Every count here is in the receivers' stats
/// too.
pub struct AttachedCapture {
    session_id: SessionId,
    stats: Arc<Stats>,
    queue: QueueGauge,
    stop: StopHandle,
    /// Set once the session is finished and the capture detached.
    ended: Arc<AtomicBool>,
    done: JoinHandle<Result<CaptureOutcome, tape_session::Error>>,
}

impl AttachedCapture {
    /// The session it records into.
    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    /// The capture's own live counters (see [`AttachedCapture`]).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// How full its recorder's queue is.
    pub fn queue(&self) -> &QueueGauge {
        &self.queue
    }

    /// A handle that stops the capture (it can be cloned and kept).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Asks the capture to stop; [`wait`](AttachedCapture::wait) returns
    /// once its session is finished. The receivers keep serving.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Whether the capture has ended (stopped, limit reached or failed):
    /// its session is finished and the receivers are idle again (or
    /// attached to the next capture).
    pub fn is_finished(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Waits until the capture has ended: its session is finished and the
    /// receivers are idle again. The outcome's stats are the capture's own.
    pub async fn wait(self) -> Result<CaptureOutcome, tape_session::Error> {
        match self.done.await {
            Ok(outcome) => outcome,
            Err(error) => Err(tape_session::Error::backend("the capture task failed", error)),
        }
    }
}

/// Detaches a capture when dropped: at the end of its task, however the
/// task ends.
struct Detach {
    slot: RecorderSlot,
    recorder: Recorder,
    state: Arc<watch::Sender<State>>,
    ended: Arc<AtomicBool>,
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.slot.detach(&self.recorder);
        self.ended.store(true, Ordering::Release);
        self.state.send_modify(|state| state.attached = None);
    }
}

/// Stops a capture when dropped, unless defused.
struct StopOnDrop(Option<StopHandle>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop.stop();
        }
    }
}

/// The receivers' listeners, bound.
pub(crate) struct Listeners {
    grpc: Option<TcpListener>,
    http: Option<TcpListener>,
}

impl Listeners {
    /// Binds the receivers that are on; at least one must be.
    pub(crate) async fn bind(grpc: Option<SocketAddr>, http: Option<SocketAddr>) -> Result<Listeners, StartError> {
        if grpc.is_none() && http.is_none() {
            return Err(StartError::NoReceiver);
        }
        Ok(Listeners { grpc: bind("gRPC", grpc).await?, http: bind("HTTP", http).await? })
    }

    /// Where OTLP/gRPC is served, if it is.
    pub(crate) fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// Where OTLP/HTTP is served, if it is.
    pub(crate) fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|listener| listener.local_addr().ok())
    }
}

async fn bind(protocol: &'static str, addr: Option<SocketAddr>) -> Result<Option<TcpListener>, StartError> {
    match addr {
        None => Ok(None),
        Some(addr) => {
            TcpListener::bind(addr).await.map(Some).map_err(|source| StartError::Bind { protocol, addr, source })
        }
    }
}

/// The OTLP/gRPC and OTLP/HTTP servers, running. Dropped, they stop
/// accepting and finish the requests in flight.
pub(crate) struct Servers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Serves on `listeners`, handing requests to `intake`.
    pub(crate) fn spawn(listeners: Listeners, intake: Intake) -> Servers {
        let (stop, stopped) = watch::channel(false);
        let shutdown = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let mut tasks = Vec::new();
        if let Some(listener) = listeners.grpc {
            let (intake, shutdown) = (intake.clone(), shutdown());
            tasks.push(tokio::spawn(async move {
                if let Err(error) = grpc::serve(listener, intake, shutdown).await {
                    warn!("The OTLP/gRPC receiver failed: {error}");
                }
            }));
        }
        if let Some(listener) = listeners.http {
            let shutdown = shutdown();
            tasks.push(tokio::spawn(async move {
                if let Err(error) = http::serve(listener, intake, shutdown).await {
                    warn!("The OTLP/HTTP receiver failed: {error}");
                }
            }));
        }
        Servers { stop, tasks }
    }

    /// Stops accepting and waits, up to [`SERVER_DRAIN`], for the requests
    /// in flight to be answered.
    pub(crate) async fn drain(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            if tokio::time::timeout(SERVER_DRAIN, task).await.is_err() {
                debug!("A receiver did not finish its requests in time.");
            }
        }
    }
}

/// The forwarder's sending task, running.
pub(crate) struct Forwarding {
    drain_starts: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Forwarding {
    /// Runs `task` until every forwarder handle is gone and its queue is
    /// sent, or until its drain timeout after [`finish`](Forwarding::finish)
    /// (or a drop).
    pub(crate) fn spawn(task: ForwardTask) -> Forwarding {
        let (drain_starts, started) = oneshot::channel::<()>();
        let task = tokio::spawn(task.run(async move {
            let _ = started.await;
        }));
        Forwarding { drain_starts, task }
    }

    /// Gives the forwarder its drain time from now on, and waits for it to
    /// end. Call it once the receivers, which hold the forwarder handles,
    /// are gone.
    pub(crate) async fn finish(self) {
        let _ = self.drain_starts.send(());
        let _ = self.task.await;
    }
}
