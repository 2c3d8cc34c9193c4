use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::pin::Pin;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use tape_otlp::Signal;

use crate::blob::{BlobDecoder, Record};
use crate::{BlobEntry, BlobKey, Error, SessionId, SessionMetadata, SessionStore, SessionType, WriterId};

/// The state of a [`read_blob`] stream.
struct State<F> {
    /// The blob's bytes.
    bytes: crate::ByteStream,
    decoder: BlobDecoder,
    corrupt: F,
    pending: Option<Error>,
    done: bool,
}

/// Streams the records of one blob. Records before any damage are yielded,
/// then an [`Error::CorruptBlob`] naming the blob and the byte offset.
pub async fn read_blob<'a>(
    store: &'a dyn SessionStore,
    session: &SessionId,
    key: &BlobKey,
) -> Result<impl Stream<Item = Result<Record, Error>> + Send + use<'a>, Error> {
    let bytes = store.open_blob(session, key).await?;
    let corrupt = {
        let (session, key) = (session.clone(), key.to_string());
        move |source| Error::CorruptBlob { session: session.clone(), key: key.clone(), source }
    };
    let state = State { bytes, decoder: BlobDecoder::new(), corrupt, pending: None, done: false };
    Ok(stream::try_unfold(state, |mut state| async move {
        loop {
            // Records decoded before any damage come out before the error.
            if let Some(record) = state.decoder.next_record() {
                return Ok(Some((record, state)));
            }
            if let Some(error) = state.pending.take() {
                return Err(error);
            }
            if state.done {
                return Ok(None);
            }
            let result = match state.bytes.next().await {
                Some(Ok(chunk)) => state.decoder.feed(&chunk),
                Some(Err(error)) => {
                    state.done = true;
                    state.pending = Some(error);
                    continue;
                }
                None => {
                    state.done = true;
                    state.decoder.finish()
                }
            };
            if let Err(error) = result {
                state.done = true;
                state.pending = Some((state.corrupt)(error));
            }
        }
    }))
}

/// The records of a session's blobs of the given signals, blob by blob in
/// metadata order, each with its signal.
pub fn read_session<'a>(
    store: &'a dyn SessionStore,
    metadata: &'a SessionMetadata,
    signals: impl Fn(Signal) -> bool + Send + 'a,
) -> impl Stream<Item = Result<(Signal, Record), Error>> + Send + 'a {
    let blobs: Vec<&BlobEntry> = metadata.blobs.iter().filter(move |blob| signals(blob.signal)).collect();
    stream::iter(blobs)
        .then(move |blob| async move {
            let records = read_blob(store, &metadata.session_id, &blob.key).await?;
            Ok::<_, Error>(records.map_ok(move |record| (blob.signal, record)))
        })
        .try_flatten()
}

/// The records of a session's blobs of the given signals merged across
/// signals (and writers) in receive-time order (records of one receive
/// time in the order traces, metrics, logs, then by writer id), each with
/// its signal. Each signal's blobs (of each writer) are read in metadata
/// order, one record ahead per signal and writer, so memory does not grow
/// with the session; see [`read_blobs_in_time_order_tagged`].
///
/// An error (a blob that cannot be opened, or is corrupt after some
/// records) is yielded where it happens, and reading goes on with that
/// signal's next blob: a caller that stops at the first error reads nothing
/// past it, one that skips damaged blobs loses only what is unreadable.
pub fn read_session_in_time_order<'a>(
    store: &'a dyn SessionStore,
    metadata: &'a SessionMetadata,
    signals: impl Fn(Signal) -> bool,
) -> impl Stream<Item = Result<(Signal, Record), Error>> + Send + 'a {
    let blobs: Vec<BlobEntry> = metadata.blobs.iter().filter(|blob| signals(blob.signal)).cloned().collect();
    read_blobs_in_time_order(store, &metadata.session_id, &blobs)
}

/// The records of the given blobs of a session merged in receive-time
/// order, as [`read_session_in_time_order`] merges them; see
/// [`read_blobs_in_time_order_tagged`], which also says whose each record
/// is.
pub fn read_blobs_in_time_order<'a>(
    store: &'a dyn SessionStore,
    session: &SessionId,
    blobs: &[BlobEntry],
) -> impl Stream<Item = Result<(Signal, Record), Error>> + Send + use<'a> {
    read_blobs_in_time_order_tagged(store, session, blobs).map_ok(|(signal, _, record)| (signal, record))
}

/// A record read from a session, with its signal and, in a session with
/// several writers, the writer whose blob holds it.
pub type TaggedRecord = (Signal, Option<WriterId>, Record);

type Lane<'a> = Pin<Box<dyn Stream<Item = Result<TaggedRecord, Error>> + Send + 'a>>;

/// The records of the given blobs of a session merged in receive-time
/// order, each with its signal and writer (`None` in a session with one
/// writer).
///
/// The blobs of one signal and one writer form a lane, read in the order
/// given (a writer writes its blobs of a signal one after the other, so
/// its records are in order within the lane); lanes overlap in time (the
/// signals of a writer, and the writers of a session) and are merged one
/// record ahead per lane, so memory grows with the lanes, not with the
/// session. Records of one receive time come in lane order: by signal
/// (traces, metrics, logs), then by writer id (no writer first). The
/// receive times of different writers are those of their hosts' clocks: a
/// skew between hosts shifts one writer's records against another's.
///
/// An error (a blob that cannot be opened, or is corrupt after some
/// records) is yielded where it happens, and reading goes on with that
/// lane's next blob: a caller that stops at the first error reads nothing
/// past it, one that skips damaged blobs loses only what is unreadable.
pub fn read_blobs_in_time_order_tagged<'a>(
    store: &'a dyn SessionStore,
    session: &SessionId,
    blobs: &[BlobEntry],
) -> impl Stream<Item = Result<TaggedRecord, Error>> + Send + use<'a> {
    let mut lane_keys: Vec<(usize, Option<WriterId>)> =
        blobs.iter().map(|blob| (blob.signal.index(), blob.key.writer().cloned())).collect();
    lane_keys.sort();
    lane_keys.dedup();
    let lanes: Vec<Option<Lane<'a>>> = lane_keys
        .into_iter()
        .map(|(signal, writer)| {
            let lane_blobs: Vec<BlobEntry> = blobs
                .iter()
                .filter(|blob| blob.signal.index() == signal && blob.key.writer() == writer.as_ref())
                .cloned()
                .collect();
            let session = session.clone();
            let lane = stream::iter(lane_blobs)
                .then(move |blob| {
                    let session = session.clone();
                    async move {
                        let records = read_blob(store, &session, &blob.key).await?;
                        let writer = blob.key.writer().cloned();
                        Ok::<_, Error>(records.map_ok(move |record| (blob.signal, writer.clone(), record)))
                    }
                })
                .try_flatten();
            Some(Box::pin(lane) as Lane<'a>)
        })
        .collect();
    let merge = Merge {
        heads: lanes.iter().map(|_| None).collect(),
        to_fill: (0..lanes.len()).collect(),
        lanes,
        earliest: BinaryHeap::new(),
    };
    stream::unfold(merge, |mut merge| async move {
        let next = merge.next().await?;
        Some((next, merge))
    })
}

/// The state of the merge of [`read_blobs_in_time_order_tagged`].
struct Merge<'a> {
    /// The lanes, in tie-break order; `None` once a lane has ended.
    lanes: Vec<Option<Lane<'a>>>,
    /// Each lane's next record, once read.
    heads: Vec<Option<TaggedRecord>>,
    /// Lanes whose next record is to be read before the next is chosen.
    to_fill: VecDeque<usize>,
    /// (receive time, lane) of every head, earliest on top.
    earliest: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Merge<'_> {
    async fn next(&mut self) -> Option<Result<TaggedRecord, Error>> {
        while let Some(&lane) = self.to_fill.front() {
            let Some(records) = self.lanes[lane].as_mut() else {
                self.to_fill.pop_front();
                continue;
            };
            match records.next().await {
                Some(Ok(record)) => {
                    self.earliest.push(Reverse((record.2.receive_time_unix_nano, lane)));
                    self.heads[lane] = Some(record);
                    self.to_fill.pop_front();
                }
                // The lane is read again on the next call: its next blob.
                Some(Err(error)) => return Some(Err(error)),
                None => {
                    self.lanes[lane] = None;
                    self.to_fill.pop_front();
                }
            }
        }
        let Reverse((_, lane)) = self.earliest.pop()?;
        self.to_fill.push_back(lane);
        self.heads[lane].take().map(Ok)
    }
}

/// Sessions found by [`list_sessions`], and those that could not be read.
#[derive(Debug, Default)]
pub struct SessionListing {
    /// Complete sessions, sorted by start time then id.
    pub sessions: Vec<SessionMetadata>,
    /// Sessions whose metadata is damaged or of an unknown version.
    pub unreadable: Vec<(SessionId, Error)>,
}

/// Reads the metadata of every complete session, optionally of one type.
/// Sessions without `metadata.json` (still being written by a first
/// writer, or abandoned) are skipped.
pub async fn list_sessions(
    store: &dyn SessionStore,
    session_type: Option<SessionType>,
) -> Result<SessionListing, Error> {
    let ids = store.list_session_ids().await?;
    let results: Vec<(SessionId, Result<SessionMetadata, Error>)> = stream::iter(ids)
        .map(|id| async move {
            let metadata = store.read_metadata(&id).await;
            (id, metadata)
        })
        .buffered(16)
        .collect()
        .await;
    let mut listing = SessionListing::default();
    for (id, result) in results {
        match result {
            Ok(metadata) if session_type.is_none_or(|wanted| metadata.session_type == wanted) => {
                listing.sessions.push(metadata);
            }
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(error) => listing.unreadable.push((id, error)),
        }
    }
    listing.sessions.sort_by(|a, b| a.start_time.cmp(&b.start_time).then_with(|| a.session_id.cmp(&b.session_id)));
    Ok(listing)
}
