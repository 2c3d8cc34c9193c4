//! `serve`'s run: the OTLP receivers, idle until a capture starts, the
//! control API over them, the retention loop, and the shutdown that
//! finishes captures and stops replays and seeds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tape_capture::{Receivers, ReceiversConfig};
use tape_session::SessionStore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ServeSettings;
use crate::metrics::{MeteredStore, StoreCounters};
use crate::state::{Job, State, lock};
use crate::{Error, Host, api};

/// How long the control API may take to close after the stop before the
/// requests still open are cut; replays stop meanwhile (within their
/// drain timeout), so that serve exits within 10 s.
const API_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a started server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// The control API.
    pub api: SocketAddr,
    /// OTLP/gRPC, unless off.
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP, unless off.
    pub http: Option<SocketAddr>,
}

/// A started server: its receivers and the API's socket are bound, the
/// retention policy applied once; [`run`](Server::run) serves.
pub struct Server {
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    addresses: Addresses,
    max_body_bytes: usize,
    retention_interval: Option<Duration>,
}

impl Server {
    /// Binds the receivers and the API over `store`, with what `host`
    /// gives (the pass-through, the environment, where warnings go).
    /// Applies the retention policy once if it has an interval.
    pub async fn start(store: Arc<dyn SessionStore>, settings: ServeSettings, host: Host) -> Result<Server, Error> {
        let Host { forward, env, warn, open_output, temp_dir } = host;
        let store_counters = Arc::new(StoreCounters::default());
        let store: Arc<dyn SessionStore> = Arc::new(MeteredStore::new(store, Arc::clone(&store_counters)));
        let receivers = Receivers::start(ReceiversConfig {
            grpc: settings.grpc,
            http: settings.http,
            max_request_bytes: settings.max_request_bytes,
            receive: settings.receive,
            forward,
        })
        .await
        .map_err(|source| Error::Receivers { source })?;
        let api = settings.api;
        let listener = tokio::net::TcpListener::bind(api).await.map_err(|source| Error::Listen { api, source })?;
        let addresses = Addresses {
            api: listener.local_addr().map_err(|source| Error::Listen { api, source })?,
            grpc: receivers.grpc_addr(),
            http: receivers.http_addr(),
        };
        let state = Arc::new(State {
            store,
            receivers,
            store_counters,
            token: settings.token,
            reports_dir: settings.reports_dir,
            captures: Mutex::default(),
            replays: Mutex::default(),
            replay_totals: Mutex::default(),
            seeds: Mutex::default(),
            tasks: tokio_util::task::TaskTracker::new(),
            capture_tasks: tokio_util::task::TaskTracker::new(),
            ended: tokio::sync::watch::channel(0).0,
            shutting_down: CancellationToken::new(),
            retention: settings.retention,
            spool_dir: settings.spool_dir,
            limits: settings.limits,
            env,
            warn,
            export_dir: settings.export_dir,
            open_output,
            exports: Mutex::default(),
            compares: Mutex::default(),
            temp_dir,
        });
        // The policy applies at once, then every interval.
        if settings.retention_interval.is_some() {
            apply_retention(&state).await;
        }
        Ok(Server {
            state,
            listener,
            addresses,
            max_body_bytes: settings.max_body_bytes,
            retention_interval: settings.retention_interval,
        })
    }

    /// Where it listens.
    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// Serves until `shutdown` is cancelled, then finishes the captures,
    /// stops the replays (their reports are written) and the seeds (their
    /// partial sessions removed), and closes the receivers.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let Server { state, listener, max_body_bytes, retention_interval, .. } = self;
        let retention_task =
            retention_interval.map(|interval| tokio::spawn(retention_loop(Arc::clone(&state), interval)));

        let stopping = Arc::clone(&state);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stopping.shutting_down.cancel();
            // Replays stop now, not once the API is closed: a client waiting
            // on one (`?wait=`) gets its answer, and the API closes sooner.
            stopping.stop_jobs();
        });

        let router = api::router(Arc::clone(&state), max_body_bytes);
        let shutting_down = state.shutting_down.clone();
        let graceful =
            axum::serve(listener, router).with_graceful_shutdown(async move { shutting_down.cancelled().await });
        // Requests still open some time after the stop (a long `?wait=`) are
        // cut, so that serve exits within 10 s of SIGTERM.
        let shutting_down = state.shutting_down.clone();
        let served = tokio::select! {
            served = graceful => served,
            () = async {
                shutting_down.cancelled().await;
                tokio::time::sleep(API_CLOSE_TIMEOUT).await;
            } => {
                warn!("Closing the control API with requests still open.");
                Ok(())
            }
        };
        if let Some(task) = retention_task {
            task.abort();
        }
        shut_down(&state).await;
        served.map_err(|source| Error::Serve { source })
    }
}

/// Stops everything still running: replays (their reports are written),
/// seeds (stopped, their partial sessions removed), the capture (its
/// session is finished), then the receivers.
async fn shut_down(state: &Arc<State>) {
    state.stop_jobs();
    state.tasks.close();
    state.tasks.wait().await;
    for job in lock(&state.captures).values() {
        job.stop();
    }
    state.capture_tasks.close();
    state.capture_tasks.wait().await;
    state.receivers.shutdown().await;
}

/// Applies the retention policy every `interval`, after the first time.
async fn retention_loop(state: Arc<State>, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        ticks.tick().await;
        apply_retention(&state).await;
    }
}

/// Applies the retention policy once; never to sessions being captured or
/// replayed. Each deletion is logged by the pruning itself.
async fn apply_retention(state: &State) {
    let Some(policy) = &state.retention else { return };
    let protected = state.busy_sessions();
    match tape_session::retention::prune(state.store.as_ref(), policy, tape_capture::now(), &protected, false).await {
        Ok(report) => info!(
            "Retention: deleted {} sessions ({} bytes), kept {}, {} failed.",
            report.deleted.len(),
            report.freed_bytes,
            report.kept,
            report.failed.len()
        ),
        Err(error) => warn!("Retention failed: {}", tape_session::error_chain(&error)),
    }
}
