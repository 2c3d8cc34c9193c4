//! Sessions and sinks shared by the replay tests.

#![allow(dead_code, reason = "each test file uses a part")]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use tape_otlp::{Signal, SignalSet};
use tape_replay::{ExportError, ExportOutcome, Progress, ReplayOptions, ReplayOutcome, Sink, replay};
use tape_seed_generator::{Generator, Params, Pattern, builtin_pattern};
use tape_session::{
    Record, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter, Timestamp,
    WriterOptions, read_session_in_time_order,
};
use tape_store::LocalStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A local store in a temporary directory.
pub fn local_store() -> (tempfile::TempDir, Arc<dyn SessionStore>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir.path()));
    (dir, store)
}

/// Replays `metadata`'s session to `sink` with `options`, with progress of
/// its own and never cancelled.
pub async fn replay_to<S: Sink>(
    store: &Arc<dyn SessionStore>,
    metadata: &SessionMetadata,
    sink: &S,
    options: &ReplayOptions,
) -> ReplayOutcome {
    replay(Arc::clone(store), metadata, sink, options, &Progress::new(), &CancellationToken::new()).await
}

/// Generates a seed session of a built-in pattern into `store`.
pub async fn seed(
    store: &dyn SessionStore,
    id: &str,
    pattern: &str,
    duration_secs: u64,
    rate: f64,
    signals: SignalSet,
) -> SessionMetadata {
    let pattern = Pattern::parse(pattern, builtin_pattern(pattern).expect("a built-in pattern")).expect("parses");
    let params = Params {
        seed: 7,
        start: tape_seed_generator::DEFAULT_START,
        duration_nanos: duration_secs * 1_000_000_000,
        rate,
        error_rate: 0.05,
        signals,
    };
    let id = SessionId::new(id).expect("a valid id");
    let metadata = SessionMetadata::new(id, SessionType::Seed, params.start, "test".to_owned());
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.expect("create");
    let mut last = params.start;
    for batch in Generator::new(&pattern, params.clone()).expect("valid params") {
        writer.append(batch.signal, batch.receive_time, batch.items, &batch.payload).await.expect("append");
        last = last.max(batch.receive_time);
    }
    writer.finish(last, SessionStatus::Completed).await.expect("finish")
}

/// Every record of a session in receive-time order.
pub async fn records(store: &dyn SessionStore, metadata: &SessionMetadata) -> Vec<(Signal, Record)> {
    read_session_in_time_order(store, metadata, |_| true).try_collect().await.expect("the session reads")
}

/// One request a [`RecordingSink`] took.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When, on Tokio's clock.
    pub at: Instant,
    /// Its signal.
    pub signal: Signal,
    /// Its bytes.
    pub payload: Bytes,
}

/// A sink that accepts everything at once and remembers when: for pacing
/// tests on paused time, where no network target can answer.
#[derive(Debug, Clone, Default)]
pub struct RecordingSink {
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl RecordingSink {
    /// What it took, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }
}

impl Sink for RecordingSink {
    async fn export(&self, signal: Signal, payload: Bytes) -> Result<ExportOutcome, ExportError> {
        self.sent.lock().unwrap().push(Sent { at: Instant::now(), signal, payload });
        Ok(ExportOutcome::default())
    }
}

/// The receive time of a record as nanoseconds.
pub fn nanos(time: Timestamp) -> u64 {
    time.unix_nanos()
}
