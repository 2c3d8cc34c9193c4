//! Reading one side: its blobs' bytes fetched from the store here, and
//! decompressed, decoded, selected, remapped, hashed and partitioned on a
//! blocking thread of the side's own (one per side: two cores, two sides).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use tape_otlp::{IdRemap, Signal};
use tape_replay::{IdRegeneration, Selected, Selection};
use tape_session::{BlobDecoder, BlobEntry, BlobError, Record, SessionId, SessionStore, SignalCounts, Timestamp};
use tokio::sync::mpsc;

use crate::canonical::CanonicalHash;
use crate::extract::{extract, for_each_pass};
use crate::partition::PartitionWriter;
use crate::{Error, Item, Origin};

/// Chunks of blob bytes in flight from the store to a side's thread.
const CHUNKS_IN_FLIGHT: usize = 16;

/// What the replay did to the expected side's records.
#[derive(Debug, Clone)]
pub(super) struct Replayed {
    /// The records it sent.
    pub selection: Selection,
    /// Passes, at least one.
    pub passes: u64,
    /// Which passes got new ids.
    pub ids: IdRegeneration,
    /// The seed of the new ids.
    pub id_seed: u64,
}

impl Replayed {
    fn remap(&self, pass: u64) -> Option<IdRemap> {
        match (self.ids, pass) {
            (IdRegeneration::Never, _) | (IdRegeneration::FromSecondPass, 0) => None,
            _ => Some(IdRemap::new(self.id_seed, pass)),
        }
    }
}

/// Where a side's items go.
#[derive(Debug)]
pub(super) enum Sink {
    /// Kept in memory: one partition.
    Memory(Vec<Item>),
    /// Into partition files.
    Files(PartitionWriter),
}

/// Counts both sides' threads add to, for progress.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Records read (on the expected side, once per pass).
    pub records: AtomicU64,
    /// Items read.
    pub items: AtomicU64,
}

/// One side to read.
#[derive(Debug)]
pub(super) struct Side {
    /// The session.
    pub session: SessionId,
    /// Its blobs to read, in order.
    pub blobs: Vec<BlobEntry>,
    /// The replay, on the expected side.
    pub replayed: Option<Replayed>,
    /// Where its items go.
    pub sink: Sink,
    /// Progress.
    pub counters: Arc<Counters>,
}

/// A side read.
#[derive(Debug)]
pub(super) struct SideRead {
    /// Its items, unless they went to files.
    pub items: Vec<Item>,
    /// Records read (expected side: the records the replay sent, once per
    /// pass).
    pub records: u64,
    /// Items per signal.
    pub counts: SignalCounts,
    /// The canonical SHA-256.
    pub canonical_sha256: String,
    /// Bytes written to partition files.
    pub file_bytes: u64,
}

enum Message {
    Chunk(Bytes),
    EndOfBlob,
    Finished,
}

/// Reads `side` from `store`, calling `report` as chunks go to its thread.
/// Stops early, with [`Error::Stopped`], when `failed` is set (the other
/// side failed); sets it when this side fails. Returns only when the
/// side's thread has ended, so that a failed comparison leaves nothing
/// behind.
pub(super) async fn read(
    store: &dyn SessionStore,
    side: Side,
    report: &(dyn Fn() + Sync),
    failed: &AtomicBool,
) -> Result<SideRead, Error> {
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (session, blobs) = (side.session.clone(), side.blobs.clone());
    let worker = tokio::task::spawn_blocking(move || Worker::new(side).run(receiver));
    let fed = feed(store, &session, &blobs, &sender, report, failed).await;
    drop(sender);
    let outcome = match worker.await {
        Ok(outcome) => outcome,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(Error::Stopped),
    };
    // A store that failed says why before the thread that stopped for it.
    let outcome = fed.and(outcome);
    if outcome.is_err() {
        failed.store(true, Ordering::Relaxed);
    }
    outcome
}

/// Sends the bytes of every blob, in order, to the side's thread; stops
/// early (without an error) when the thread has stopped.
async fn feed(
    store: &dyn SessionStore,
    session: &SessionId,
    blobs: &[BlobEntry],
    sender: &mpsc::Sender<Message>,
    report: &(dyn Fn() + Sync),
    other_failed: &AtomicBool,
) -> Result<(), Error> {
    let failed = |source| Error::Session { session: session.clone(), source };
    for blob in blobs {
        let mut bytes = store.open_blob(session, &blob.key).await.map_err(failed)?;
        while let Some(chunk) = bytes.next().await {
            // Without the last message, the thread stops.
            if other_failed.load(Ordering::Relaxed)
                || sender.send(Message::Chunk(chunk.map_err(failed)?)).await.is_err()
            {
                return Ok(());
            }
            report();
        }
        if sender.send(Message::EndOfBlob).await.is_err() {
            return Ok(());
        }
    }
    // A closed channel here means the thread already failed: it says why.
    let _ = sender.send(Message::Finished).await;
    report();
    Ok(())
}

/// A side's thread.
struct Worker {
    side: Side,
    hash: CanonicalHash,
    counts: SignalCounts,
    /// Records read, the index of the next one.
    read: u64,
    /// Records selected, each once.
    selected: u64,
    base: Vec<Item>,
}

impl Worker {
    fn new(side: Side) -> Self {
        Worker {
            side,
            hash: CanonicalHash::default(),
            counts: SignalCounts::default(),
            read: 0,
            selected: 0,
            base: Vec::new(),
        }
    }

    fn run(mut self, mut receiver: mpsc::Receiver<Message>) -> Result<SideRead, Error> {
        let mut blob = 0;
        let mut decoder = BlobDecoder::new();
        loop {
            let end = match receiver.blocking_recv() {
                None => return Err(Error::Stopped),
                Some(Message::Chunk(bytes)) => {
                    decoder.feed(&bytes).map_err(|error| self.corrupt(blob, error))?;
                    false
                }
                Some(Message::EndOfBlob) => {
                    decoder.finish().map_err(|error| self.corrupt(blob, error))?;
                    true
                }
                Some(Message::Finished) => break,
            };
            let signal = self.side.blobs.get(blob).map_or(Signal::Traces, |entry| entry.signal);
            while let Some(record) = decoder.next_record() {
                self.record(signal, record)?;
            }
            if end {
                blob += 1;
                decoder = BlobDecoder::new();
            }
        }
        let passes = self.side.replayed.as_ref().map_or(1, |replayed| replayed.passes);
        let (items, file_bytes) = match self.side.sink {
            Sink::Memory(items) => (items, 0),
            Sink::Files(writer) => (Vec::new(), writer.finish()?),
        };
        Ok(SideRead {
            items,
            records: self.selected * passes,
            counts: self.counts,
            canonical_sha256: self.hash.finish(),
            file_bytes,
        })
    }

    fn corrupt(&self, blob: usize, source: BlobError) -> Error {
        let key = self.side.blobs.get(blob).map_or_else(String::new, |entry| entry.key.to_string());
        let session = self.side.session.clone();
        Error::Session { session: session.clone(), source: tape_session::Error::CorruptBlob { session, key, source } }
    }

    fn record(&mut self, signal: Signal, record: Record) -> Result<(), Error> {
        // Progress is added once a record (both sides' threads add to it:
        // once an item, they would contend for it).
        let before = self.counts.total();
        let placed = self.place_record(signal, record);
        self.side.counters.items.fetch_add(self.counts.total() - before, Ordering::Relaxed);
        placed
    }

    fn place_record(&mut self, signal: Signal, record: Record) -> Result<(), Error> {
        let Record { receive_time_unix_nano: receive, item_count, payload } = record;
        let origin = Origin { pass: 0, record: self.read };
        self.read += 1;
        let undecodable = |message: String| Error::UndecodableRecord {
            session: self.side.session.clone(),
            signal,
            received: Timestamp::from_unix_nanos(receive).to_string(),
            message,
        };
        let Some(replayed) = self.side.replayed.take() else {
            self.side.counters.records.fetch_add(1, Ordering::Relaxed);
            self.selected += 1;
            let mut base = std::mem::take(&mut self.base);
            extract(signal, &payload, origin, &mut base).map_err(|error| undecodable(error.to_string()))?;
            let placed = base.drain(..).try_for_each(|item| self.place(item));
            self.base = base;
            return placed;
        };
        let placed = self.replayed(&replayed, signal, (origin, receive, item_count), payload);
        self.side.replayed = Some(replayed);
        placed
    }

    /// An expected record: selected, and its items placed once per pass.
    fn replayed(
        &mut self,
        replayed: &Replayed,
        signal: Signal,
        (origin, receive, item_count): (Origin, u64, u64),
        payload: Bytes,
    ) -> Result<(), Error> {
        let undecodable = |message: String| Error::UndecodableRecord {
            session: self.side.session.clone(),
            signal,
            received: Timestamp::from_unix_nanos(receive).to_string(),
            message,
        };
        self.side.counters.records.fetch_add(replayed.passes, Ordering::Relaxed);
        let payload = match replayed.selection.apply(signal, receive, payload, item_count) {
            Selected::Skip => return Ok(()),
            Selected::Invalid(error) => return Err(undecodable(error.to_string())),
            Selected::Send { payload, .. } => payload,
        };
        self.selected += 1;
        let mut base = Vec::new();
        extract(signal, &payload, origin, &mut base).map_err(|error| undecodable(error.to_string()))?;
        for_each_pass(base, replayed.passes, |pass| replayed.remap(pass), |item| self.place(item))
    }

    fn place(&mut self, mut item: Item) -> Result<(), Error> {
        self.hash.add(&mut item);
        self.counts.add(item.signal(), 1);
        match &mut self.side.sink {
            Sink::Memory(items) => {
                items.push(item);
                Ok(())
            }
            Sink::Files(writer) => writer.write(&item),
        }
    }
}
