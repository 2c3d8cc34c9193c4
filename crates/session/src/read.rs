use futures::{Stream, StreamExt, TryStreamExt, stream};
use tape_otlp::Signal;

use crate::blob::{BlobDecoder, Record};
use crate::{BlobEntry, BlobKey, Error, SessionId, SessionMetadata, SessionStore, SessionType};

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
/// signals in receive-time order (records of one receive time in the order
/// traces, metrics, logs), each with its signal. Each signal's blobs are
/// read in metadata order, one record ahead per signal, so memory does not
/// grow with the session.
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
/// order, as [`read_session_in_time_order`] merges them; each signal's
/// blobs are read in the order given.
pub fn read_blobs_in_time_order<'a>(
    store: &'a dyn SessionStore,
    session: &SessionId,
    blobs: &[BlobEntry],
) -> impl Stream<Item = Result<(Signal, Record), Error>> + Send + use<'a> {
    type Lane<'a> = std::pin::Pin<Box<dyn Stream<Item = Result<(Signal, Record), Error>> + Send + 'a>>;
    let lanes: Vec<Lane<'a>> = Signal::ALL
        .into_iter()
        .map(|signal| {
            let lane_blobs: Vec<BlobEntry> = blobs.iter().filter(|blob| blob.signal == signal).cloned().collect();
            let session = session.clone();
            let lane = stream::iter(lane_blobs)
                .then(move |blob| {
                    let session = session.clone();
                    async move {
                        let records = read_blob(store, &session, &blob.key).await?;
                        Ok::<_, Error>(records.map_ok(move |record| (blob.signal, record)))
                    }
                })
                .try_flatten();
            Box::pin(lane) as Lane<'a>
        })
        .collect();
    let heads: Vec<Option<(Signal, Record)>> = lanes.iter().map(|_| None).collect();
    stream::unfold((lanes, heads), |(mut lanes, mut heads)| async move {
        // Fill every empty head; a lane that ends is dropped.
        let mut lane = 0;
        while lane < lanes.len() {
            if heads[lane].is_none() {
                match lanes[lane].next().await {
                    Some(Ok(record)) => heads[lane] = Some(record),
                    Some(Err(error)) => return Some((Err(error), (lanes, heads))),
                    None => {
                        drop(lanes.remove(lane));
                        heads.remove(lane);
                        continue;
                    }
                }
            }
            lane += 1;
        }
        // Lanes are in signal order, so the first of equal times wins.
        let earliest = heads
            .iter()
            .enumerate()
            .filter_map(|(lane, head)| head.as_ref().map(|(_, record)| (record.receive_time_unix_nano, lane)))
            .min()?
            .1;
        let next = heads[earliest].take()?;
        Some((Ok(next), (lanes, heads)))
    })
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
