//! Test helpers for otlp-tape: the store conformance suite, an
//! in-process S3 server, a real ClickHouse server, a real OTLP target, a
//! real re-batching OTLP pipeline and a real headless browser.
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore) {
//! tape_testkit::conformance::run(store).await;
//! # }
//! ```

pub mod browser;
pub mod clickhouse;
pub mod conformance;
pub mod otlp_target;
pub mod rebatcher;
pub mod s3;
pub mod tmpfs;
