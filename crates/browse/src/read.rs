//! What both queries share: the session's metadata (refused while it is
//! being recorded), the window of receive times, and the decoded trace
//! requests of the records in it.

use std::ops::ControlFlow;
use std::pin::pin;

use futures::TryStreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tape_otlp::Signal;
use tape_session::{
    BlobEntry, SessionId, SessionMetadata, SessionStatus, SessionStore, TimeBound, Timestamp, Window, WriterId,
    read_blobs_in_time_order_tagged,
};

use crate::Error;

/// The session's metadata; [`Error::Active`] while it is being recorded
/// (its metadata lags behind its blobs).
pub(crate) async fn metadata(store: &dyn SessionStore, session: &SessionId) -> Result<SessionMetadata, Error> {
    let metadata = store.read_metadata(session).await?;
    if metadata.status == SessionStatus::Active {
        return Err(Error::Active(session.clone()));
    }
    Ok(metadata)
}

/// The window `[from, until)` as `tape_session::window` resolves it
/// (bounds left open stay open); the queries' `validate` has refused an
/// empty one already.
pub(crate) fn window(
    metadata: &SessionMetadata,
    from: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Window, Error> {
    tape_session::window(metadata.start_time, from.map(TimeBound::At), until.map(TimeBound::At), None)
        .map_err(|error| Error::Invalid(error.to_string()))
}

/// The first and the instant after the last receive time of the session:
/// its start time and its end time, widened to hold every record.
pub(crate) fn extent(metadata: &SessionMetadata) -> (Timestamp, Timestamp) {
    let first = metadata.blobs.iter().map(|blob| blob.first_receive_time).min();
    let last = metadata.blobs.iter().map(|blob| blob.last_receive_time).max();
    let start = first.map_or(metadata.start_time, |first| first.min(metadata.start_time));
    let after_last = last.map(|last| Timestamp::from_unix_nanos(last.unix_nanos().saturating_add(1)));
    let end = match (metadata.end_time, after_last) {
        (Some(end), Some(after)) => end.max(after),
        (Some(end), None) => end,
        (None, Some(after)) => after,
        (None, None) => start,
    };
    (start, end.max(start))
}

/// Calls `visit` with the receive time and the decoded request of every
/// trace record received in `window`, first received first, until it
/// breaks. Only the blobs whose receive times meet the window are read.
///
/// # Errors
/// A blob that cannot be read or is corrupt (the store's error names it),
/// or a record that is not a traces request ([`Error::Payload`]).
pub(crate) async fn visit_requests(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    window: Window,
    mut visit: impl FnMut(u64, ExportTraceServiceRequest) -> ControlFlow<()>,
) -> Result<(), Error> {
    let blobs: Vec<BlobEntry> = metadata
        .blobs
        .iter()
        .filter(|blob| {
            blob.signal == Signal::Traces
                && window.overlaps(blob.first_receive_time.unix_nanos(), blob.last_receive_time.unix_nanos())
        })
        .cloned()
        .collect();
    // The blobs of several writers overlap in time: the reader merges them
    // in receive-time order.
    let mut records = pin!(read_blobs_in_time_order_tagged(store, &metadata.session_id, &blobs));
    while let Some((_, writer, record)) = records.try_next().await? {
        let time = record.receive_time_unix_nano;
        if !window.contains(time) {
            continue;
        }
        let request = ExportTraceServiceRequest::decode(record.payload).map_err(|source| Error::Payload {
            session: metadata.session_id.clone(),
            blob: blob_holding(&blobs, writer.as_ref(), time),
            source,
        })?;
        if visit(time, request).is_break() {
            return Ok(());
        }
    }
    Ok(())
}

/// The key of the blob of `writer` that holds the record received at
/// `time`, for messages.
fn blob_holding(blobs: &[BlobEntry], writer: Option<&WriterId>, time: u64) -> String {
    blobs
        .iter()
        .find(|blob| {
            blob.key.writer() == writer
                && (blob.first_receive_time.unix_nanos()..=blob.last_receive_time.unix_nanos()).contains(&time)
        })
        .map_or_else(|| format!("(a traces blob holding receive time {time})"), |blob| blob.key.to_string())
}

/// A trace id as 16 bytes, or `None` when it is not 16 bytes long (such
/// spans belong to no trace that can be listed).
pub(crate) fn trace_key(id: &[u8]) -> Option<[u8; 16]> {
    id.try_into().ok()
}
