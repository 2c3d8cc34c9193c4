//! The control API of otlp-tape (`otlp-tape serve`): OTLP receivers that
//! record while a capture runs, and an HTTP API (`docs/API.md`,
//! `docs/openapi.json`) that lists and deletes sessions, starts and stops
//! captures, replays, seeds and exports, prunes by a retention policy and
//! shows Prometheus metrics, and compares two sessions.
//!
//! The API is a thin front over the components: a request body is
//! deserialized directly into the component's `Config` (a capture's into
//! `tape_capture`'s, a replay's into [`tape_replay::ReplayConfig`], a
//! seed's into `tape_seed::SeedConfig`, an export's into
//! `tape_files::ExportConfig`, a comparison's into
//! `tape_compare::CompareConfig`), validated as the command line
//! validates it, and run as a job. A config's fields are exactly what the
//! API accepts, so a body that names a file of this host (`report`,
//! `checkpoint`) is refused as an unknown option; see [`request`].
//!
//! `serve`'s own settings are a [`ServeConfig`]; [`ServeConfig::validate`]
//! checks them into [`ServeSettings`]; [`Server::start`] binds, and
//! [`Server::run`] serves until its shutdown token is cancelled, then
//! finishes captures and stops replays (their reports written), seeds,
//! exports and comparisons. The caller picks the store, the pass-through and where exports
//! write (an opener of output directories), passes the
//! environment the components read (`OTEL_EXPORTER_OTLP_*`, `CAPTURE_*`,
//! `CLICKHOUSE_*`) as a lookup, and says where warnings go ([`Host`]).
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn tape_session::SessionStore>) -> Result<(), tape_server::Error> {
//! use std::sync::Arc;
//!
//! use tape_server::{Host, Server, ServeConfig};
//! use tokio_util::sync::CancellationToken;
//!
//! let config: ServeConfig = serde_json::from_str(r#"{"api": "127.0.0.1:8080", "maxConcurrentReplays": 2}"#)
//!     .expect("a valid config");
//! let settings = config.validate()?;
//! let host = Host {
//!     forward: None,
//!     env: Arc::new(|name| std::env::var(name).ok().filter(|value| !value.is_empty())),
//!     warn: Arc::new(|warning| eprintln!("{warning}")),
//!     open_output: Arc::new(|out| Ok(Box::new(tape_store::LocalOutputDir::new(out)))),
//!     temp_dir: std::env::temp_dir(),
//! };
//! let server = Server::start(store, settings, host).await?;
//! println!("the control API is on http://{}", server.addresses().api);
//! let shutdown = CancellationToken::new();
//! let stop = shutdown.clone();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     stop.cancel();
//! });
//! server.run(shutdown).await?;
//! # Ok(())
//! # }
//! ```

mod api;
mod browse;
mod captures;
mod compares;
mod config;
mod error;
mod events;
mod exports;
mod limits;
mod merge;
mod metrics;
mod replays;
pub mod request;
mod seal;
mod seeds;
mod server;
mod sessions;
mod state;
mod web;

use std::sync::Arc;

pub use config::{ServeConfig, ServeSettings};
pub use error::Error;
pub use limits::AllowedTarget;
pub use server::{Addresses, Server};

/// How the server reads environment variables: a lookup by name (the
/// process environment in `serve`, a map in tests); `None` for a variable
/// that is unset or empty.
pub type Environment = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the process around the server gives it besides the store.
pub struct Host {
    /// The pass-through of every acknowledged request, if any: where the
    /// receivers forward (`--forward`), chosen by the caller.
    pub forward: Option<(Arc<dyn tape_capture::Upstream>, tape_capture::ForwardConfig)>,
    /// The environment the components read: the replay targets'
    /// `OTEL_EXPORTER_OTLP_*` and `REPLAY_DEFAULT_*`, `CAPTURE_*`,
    /// `CLICKHOUSE_*`.
    pub env: Environment,
    /// Tells the operator a warning of a job, such as annotations that did
    /// not reach ClickHouse (`serve` prints it on stderr as it is).
    pub warn: Arc<dyn Fn(&str) + Send + Sync>,
    /// Opens the directory an export job writes into, chosen by the caller
    /// (a local directory or an S3 prefix).
    pub open_output: OutputOpener,
    /// Where compare jobs put their partition files, each in a new
    /// directory removed when it ends (`serve` gives the system's
    /// temporary directory).
    pub temp_dir: std::path::PathBuf,
}

/// Opens the directory of an export from its `out`: `s3://<bucket>/<prefix>`
/// or a local path (for exports started through the API, already resolved
/// under serve's export directory). The error is a message for the client.
pub type OutputOpener = Arc<dyn Fn(&str) -> Result<Box<dyn tape_session::OutputDir>, String> + Send + Sync>;
