//! Seeding: a deterministic session generated from a scenario pattern into
//! a [`SessionStore`](tape_session::SessionStore), as fast as the machine
//! can or, live, in real time while each request is also sent to an OTLP
//! target; its phases as annotations (and to ClickHouse when configured);
//! and verifying a stored session, which regenerates a seed session from
//! its parameters and compares it record by record.
//!
//! A seed has the shape of every component: a [`SeedConfig`] (serde, the
//! body of `POST /api/v1/seeds`, built from the flags by `otlp-tape seed`)
//! is checked by [`SeedConfig::validate`] into a [`CheckedSeed`] (the
//! pattern read, the parameters checked, the number of traces known), and
//! [`run`] generates it, returning a [`SeedSummary`]; a run stopped by its
//! token fails with an error whose [`SeedError::is_stopped`] is true.
//! [`verify`] returns a [`VerifyReport`]; [`patterns`] lists and shows the
//! built-in patterns.
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore) -> Result<(), tape_seed::SeedError> {
//! use tokio_util::sync::CancellationToken;
//!
//! let config: tape_seed::SeedConfig =
//!     serde_json::from_str(r#"{"pattern": "payment-failure", "duration": "30s", "seed": 42}"#).unwrap();
//! let seed = config.validate()?;
//! println!("{} traces", seed.traces());
//! let summary = tape_seed::run(store, &seed, None, None, &CancellationToken::new()).await?;
//! let report = tape_seed::verify(store, &summary.session_id).await.unwrap();
//! assert!(report.problems.is_empty());
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
pub mod patterns;
mod run;
mod verify;

pub use config::{CheckedSeed, DEFAULT_PATTERN, Preset, SeedConfig, Start};
pub use error::{PatternError, SeedError};
pub use patterns::{DEFAULT_ERROR_RATE, DEFAULT_RATE};
pub use run::{
    GENERATOR, LIVE_CONCURRENCY, LIVE_PARAMETER, LIVE_STOPPED_EARLY_PARAMETER, LiveOptions, LiveStart, LiveSummary,
    OnLiveStart, SeedSummary, generate_session, run,
};
pub use verify::{Difference, Regeneration, VerifyReport, regenerate, verify};
