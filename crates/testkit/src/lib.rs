//! Test helpers for otlp-tape: the store conformance suite, an
//! in-process S3 server and a real ClickHouse server.
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore) {
//! tape_testkit::conformance::run(store).await;
//! # }
//! ```

pub mod clickhouse;
pub mod conformance;
pub mod otlp_target;
pub mod s3;
pub mod tmpfs;
