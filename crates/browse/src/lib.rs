//! What the web UI shows of a stored session besides its metadata and
//! timeline (which are `tape-session`'s): the traces of a window of
//! receive time ([`traces`]) and one trace whole ([`trace`]).
//!
//! Both read the session's trace blobs through the `SessionStore` trait,
//! decode the spans of the records in the window, and group them by trace
//! id; what they hold in memory is bounded by the query's limits. A
//! session still being recorded is refused ([`Error::Active`]): its
//! metadata lags behind its blobs.
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore) -> Result<(), Box<dyn std::error::Error>> {
//! use tape_browse::{TraceQuery, TracesQuery, trace, traces};
//!
//! let session: tape_session::SessionId = "checkout-2026-11-22".parse()?;
//! let query = TracesQuery {
//!     session: session.clone(),
//!     from: tape_session::Timestamp::parse_rfc3339("2026-11-22T10:00:00Z"),
//!     until: tape_session::Timestamp::parse_rfc3339("2026-11-22T10:01:00Z"),
//!     limit: 100,
//!     service: None,
//!     errors_only: true,
//! };
//! for row in traces(store, &query).await?.traces {
//!     let whole = trace(store, &TraceQuery { session: session.clone(), trace_id: row.trace_id, from: None, until: None }).await?;
//!     println!("{} spans", whole.spans.len());
//! }
//! # Ok(()) }
//! ```

mod error;
mod read;
mod trace;
mod traces;
mod value;

pub use error::Error;
pub use trace::{Link, SpanEvent, SpanStatus, SpanView, Trace, TraceQuery, trace};
pub use traces::{MAX_TRACES, TraceList, TraceSummary, TracesQuery, traces};
