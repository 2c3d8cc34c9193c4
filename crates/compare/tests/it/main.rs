//! The comparison driver against real sessions in a real local store:
//! seeded by the generator, copied re-batched, replayed through a real
//! OTLP target.

mod driver;
mod rebatch;
mod replayed;

use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use tape_compare::{CompareConfig, Comparison, Error};
use tape_otlp::{Signal, SignalSet};
use tape_seed_generator::{Generator, Params, Pattern, builtin_pattern};
use tape_session::{
    Record, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter, Timestamp,
    WriterOptions, read_session,
};
use tape_store::LocalStore;

/// A local store in a temporary directory, and a directory for partition
/// files beside it.
pub struct Fixture {
    /// The directory of the store and of the partition files.
    pub dir: tempfile::TempDir,
    /// The store.
    pub store: Arc<dyn SessionStore>,
}

impl Default for Fixture {
    /// An empty store.
    fn default() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("temp")).expect("a directory for partition files");
        let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(dir.path().join("store")));
        Fixture { dir, store }
    }
}

impl Fixture {
    /// Where partition files go.
    pub fn temp(&self) -> std::path::PathBuf {
        self.dir.path().join("temp")
    }

    /// Compares with `config`'s options.
    pub async fn compare(&self, config: CompareConfig) -> Result<Comparison, Error> {
        config.validate()?.run(self.store.as_ref(), &self.temp(), &|_| {}).await
    }
}

/// Entries in a directory.
pub fn entries(directory: &Path) -> usize {
    std::fs::read_dir(directory).expect("the directory reads").count()
}

/// A session id.
pub fn id(text: &str) -> SessionId {
    SessionId::new(text).expect("a valid id")
}

/// Generates a seed session of a built-in pattern into `store`.
pub async fn seed(store: &dyn SessionStore, session: &str, pattern: &str, seconds: u64, rate: f64) -> SessionMetadata {
    let pattern = Pattern::parse(pattern, builtin_pattern(pattern).expect("a built-in pattern")).expect("parses");
    let params = Params {
        seed: 11,
        start: tape_seed_generator::DEFAULT_START,
        duration_nanos: seconds * 1_000_000_000,
        rate,
        error_rate: 0.05,
        signals: SignalSet::ALL,
    };
    let batches = Generator::new(&pattern, params.clone()).expect("valid parameters");
    let records = batches.map(|batch| {
        let record = Record {
            receive_time_unix_nano: batch.receive_time.unix_nanos(),
            item_count: batch.items,
            payload: batch.payload.into(),
        };
        (batch.signal, record)
    });
    write_session(store, session, SessionType::Seed, params.start, records).await
}

/// Writes `records` as a new session.
pub async fn write_session(
    store: &dyn SessionStore,
    session: &str,
    session_type: SessionType,
    start: Timestamp,
    records: impl IntoIterator<Item = (Signal, Record)>,
) -> SessionMetadata {
    let metadata = SessionMetadata::new(id(session), session_type, start, "test".to_owned());
    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.expect("created");
    let mut last = start;
    for (signal, record) in records {
        let received = record.receive_time();
        writer.append(signal, received, record.item_count, &record.payload).await.expect("appended");
        last = last.max(received);
    }
    writer.finish(last, SessionStatus::Completed).await.expect("finished")
}

/// Every record of a session, blob by blob.
pub async fn records(store: &dyn SessionStore, metadata: &SessionMetadata) -> Vec<(Signal, Record)> {
    read_session(store, metadata, |_| true).try_collect().await.expect("the session reads")
}

/// Asserts that `comparison` passed with every expected item identical.
pub fn assert_identical(comparison: &Comparison) {
    assert!(comparison.verdict.passed, "{:?}", comparison.verdict);
    assert_eq!(comparison.signals.len(), 3);
    for signal in &comparison.signals {
        let counts = signal.counts;
        assert!(counts.expected > 0, "{:?}", signal.signal);
        assert_eq!((counts.identical, counts.delivered), (counts.expected, counts.expected), "{signal:?}");
        assert_eq!((counts.changed, counts.missing, counts.unexpected), (0, 0, 0), "{signal:?}");
    }
    assert_eq!(comparison.expected.items, comparison.actual.items);
}
