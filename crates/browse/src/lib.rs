//! What the web UI shows of a stored session besides its metadata and
//! timeline (which are `tape-session`'s): the traces of a window of
//! receive time ([`traces`]) and one trace whole ([`trace`]).
//!
//! Both read the session's trace blobs through the `SessionStore` trait,
//! decode the spans of the records in the window, and group them by trace
//! id; what they hold in memory is bounded by the query's limits.

mod error;
mod read;
mod trace;
mod traces;
mod value;

pub use error::Error;
pub use trace::{Link, SpanEvent, SpanStatus, SpanView, Trace, TraceQuery, trace};
pub use traces::{MAX_TRACES, TraceList, TraceSummary, TracesQuery, traces};
