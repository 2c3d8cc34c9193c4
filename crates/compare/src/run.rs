//! The comparison's driver: both sessions read (the expected one through
//! the replay's selection, passes and id remapping), their items
//! partitioned (in memory, or on disk when they are larger than memory),
//! and each partition matched.

mod side;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;
use tape_session::{BlobEntry, SessionId, SessionMetadata, SessionStatus, SessionStore};
use tracing::{debug, info};

use self::side::{Counters, Replayed, Side, SideRead, Sink};
use crate::config::MAX_PARTITIONS;
use crate::partition::{PartitionWriter, read_partition};
use crate::tally::Tally;
use crate::{CompareConfig, Comparison, Error, Item, REPLAY_REPORT, SideSummary, ValidCompareConfig};

/// How much memory one partition may take (both sides' items and the
/// matching's tables) when the number of partitions is chosen from the
/// sessions' sizes: sessions under it are compared in memory, larger ones
/// in as many partitions as it takes. A partitioned comparison peaks at
/// about 64 MiB of write buffers plus three to four times this (measured
/// on high-load seeds: one partition matched while the next is read, and
/// the allocator's slack).
pub(crate) const PARTITION_MEMORY_BUDGET: u64 = 512 << 20;

/// A comparison in memory takes about this many times the bytes of both
/// sides' requests (protobuf, uncompressed): 5.3 measured on seeds of the
/// built-in patterns (decoded items, whose strings and attribute lists are
/// each an allocation, and the matching's tables), rounded up.
const MEMORY_PER_REQUEST_BYTE: u64 = 6;

/// How far a comparison got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareProgress {
    /// Records of both sessions read (on the expected side, once per
    /// pass).
    pub records_done: u64,
    /// Records to read.
    pub records_total: u64,
    /// Items read of both sessions.
    pub items_done: u64,
    /// Partitions matched.
    pub partitions_done: u32,
    /// Partitions in all.
    pub partitions_total: u32,
}

impl ValidCompareConfig {
    /// Compares the two sessions of `store`. Partition files, when needed,
    /// go into a new directory under `temp_dir` that is removed when the
    /// comparison ends (also when it fails or its future is dropped).
    /// `progress` is called as records are read and partitions matched.
    ///
    /// # Errors
    /// A session that is not in the store ([`Error::SessionNotFound`]), is
    /// still being written ([`Error::SessionActive`]) or cannot be read ([`Error::Session`]: a blob missing or corrupt); a
    /// record that is not a valid request; a replay report of another
    /// session ([`Error::ReportOfAnotherSession`]); partition files that
    /// cannot be written ([`Error::Partition`]).
    pub async fn run(
        &self,
        store: &dyn SessionStore,
        temp_dir: &Path,
        progress: &(dyn Fn(CompareProgress) + Send + Sync),
    ) -> Result<Comparison, Error> {
        let started = Instant::now();
        let config = &self.0;
        let (expected, actual) = tokio::join!(metadata(store, &config.expected), metadata(store, &config.actual));
        let (expected, actual) = (expected?, actual?);
        for metadata in [&expected, &actual] {
            if metadata.status == SessionStatus::Active {
                return Err(Error::SessionActive {
                    session: metadata.session_id.clone(),
                    finish: metadata.how_to_finish(),
                });
            }
        }
        let replayed = replayed(config, &expected)?;
        let expected_blobs: Vec<BlobEntry> =
            expected.blobs.iter().filter(|blob| replayed.selection.may_hold(blob)).cloned().collect();
        let actual_blobs: Vec<BlobEntry> =
            actual.blobs.iter().filter(|blob| config.signals.contains(blob.signal)).cloned().collect();
        let partitions = config.partitions.unwrap_or_else(|| {
            let expected_bytes = uncompressed(&expected_blobs).saturating_mul(replayed.passes);
            partitions_for(expected_bytes.saturating_add(uncompressed(&actual_blobs)))
        });
        let directory = if partitions > 1 {
            let directory = tempfile::Builder::new()
                .prefix("otlp-tape-compare-")
                .tempdir_in(temp_dir)
                .map_err(|source| Error::Partition { directory: temp_dir.display().to_string(), source })?;
            Some(Arc::new(directory))
        } else {
            None
        };
        info!(
            expected = %config.expected,
            actual = %config.actual,
            passes = replayed.passes,
            partitions,
            "Comparing sessions."
        );

        let records_total = records(&expected_blobs).saturating_mul(replayed.passes) + records(&actual_blobs);
        let counters = Arc::new(Counters::default());
        let snapshot = |partitions_done| CompareProgress {
            records_done: counters.records.load(Ordering::Relaxed),
            records_total,
            items_done: counters.items.load(Ordering::Relaxed),
            partitions_done,
            partitions_total: partitions,
        };
        let report = || progress(snapshot(0));
        // In memory, each side's vector is as large as its blobs' items
        // from the start: growing it would copy it and, for a moment, take
        // three times its size.
        let sink = |side: &'static str, items: u64| match &directory {
            Some(directory) => Sink::Files(PartitionWriter::new(
                Arc::clone(directory),
                side,
                partitions,
                config.ignore_attributes.clone(),
            )),
            None => Sink::Memory(Vec::with_capacity(usize::try_from(items).unwrap_or(0))),
        };
        let expected_items = items_in(&expected_blobs).saturating_mul(replayed.passes);
        let actual_items = items_in(&actual_blobs);
        let expected_side = Side {
            session: config.expected.clone(),
            blobs: expected_blobs,
            replayed: Some(replayed),
            sink: sink(EXPECTED, expected_items),
            counters: Arc::clone(&counters),
        };
        let actual_side = Side {
            session: config.actual.clone(),
            blobs: actual_blobs,
            replayed: None,
            sink: sink(ACTUAL, actual_items),
            counters: Arc::clone(&counters),
        };
        // Both sides end before an error returns (the other side stops
        // early): their threads hold the partition files' directory.
        let failed = AtomicBool::new(false);
        let (expected_read, actual_read) = tokio::join!(
            side::read(store, expected_side, &report, &failed),
            side::read(store, actual_side, &report, &failed)
        );
        let (expected_read, actual_read) = match (expected_read, actual_read) {
            (Ok(expected), Ok(actual)) => (expected, actual),
            (expected, actual) => {
                // The side that failed says why, not the one it stopped.
                let errors = [expected.err(), actual.err()].into_iter().flatten();
                return Err(errors.min_by_key(|error| matches!(error, Error::Stopped)).unwrap_or(Error::Stopped));
            }
        };
        let items = expected_read.counts.total() + actual_read.counts.total();
        debug!(
            items,
            file_bytes = expected_read.file_bytes + actual_read.file_bytes,
            seconds = started.elapsed().as_secs_f64(),
            "Both sessions read."
        );

        let mut tally = Tally::new(config);
        let expected_summary = summary(&expected, &expected_read);
        let actual_summary = summary(&actual, &actual_read);
        match &directory {
            None => {
                tally = match_partition(tally, expected_read.items, actual_read.items).await?;
                progress(snapshot(1));
            }
            Some(directory) => {
                let read = |partition: u32| {
                    let directory = Arc::clone(directory);
                    tokio::task::spawn_blocking(move || {
                        let expected = read_partition(directory.path(), EXPECTED, partition)?;
                        let actual = read_partition(directory.path(), ACTUAL, partition)?;
                        Ok::<_, Error>((expected, actual))
                    })
                };
                // The next partition is read while one is matched.
                let mut next = Some(read(0));
                for partition in 0..partitions {
                    let read_back = match next.take() {
                        Some(reading) => joined(reading.await).and_then(|read| read),
                        None => Err(Error::Stopped),
                    };
                    let (expected, actual) = read_back?;
                    if partition + 1 < partitions {
                        next = Some(read(partition + 1));
                    }
                    let matched = match_partition(tally, expected, actual).await;
                    tally = match matched {
                        Ok(tally) => tally,
                        Err(error) => {
                            // The partition being read ends first: it
                            // holds the directory.
                            if let Some(reading) = next.take() {
                                let _ = reading.await;
                            }
                            return Err(error);
                        }
                    };
                    progress(snapshot(partition + 1));
                }
            }
        }
        let comparison = tally.finish(expected_summary, actual_summary, config);
        drop(directory);
        let seconds = started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // a rate for people
        let items_per_second = if seconds > 0.0 { items as f64 / seconds } else { 0.0 };
        info!(
            expected = %config.expected,
            actual = %config.actual,
            passed = comparison.verdict.passed,
            items,
            seconds,
            items_per_second,
            "Comparison finished."
        );
        Ok(comparison)
    }
}

/// The file names of each side's partitions.
const EXPECTED: &str = "expected";
const ACTUAL: &str = "actual";

/// A session's metadata; a session not in the store is named as such.
async fn metadata(store: &dyn SessionStore, session: &SessionId) -> Result<SessionMetadata, Error> {
    store.read_metadata(session).await.map_err(|source| match source {
        tape_session::Error::NotFound(_) => {
            Error::SessionNotFound { session: session.clone(), location: store.location() }
        }
        source => Error::Session { session: session.clone(), source },
    })
}

/// What the replay of the report did to EXPECTED, or, without a report,
/// one pass of its compared signals as stored.
fn replayed(config: &CompareConfig, expected: &SessionMetadata) -> Result<Replayed, Error> {
    let Some(facts) = &config.replay_report else {
        return Ok(Replayed {
            selection: tape_replay::Selection { signals: config.signals, ..tape_replay::Selection::default() },
            passes: 1,
            ids: tape_replay::IdRegeneration::Never,
            id_seed: 0,
        });
    };
    facts.check_session(REPLAY_REPORT, expected)?;
    Ok(Replayed {
        selection: facts.selection(config.signals)?,
        passes: facts.passes(),
        ids: facts.id_regeneration()?,
        id_seed: facts.id_seed,
    })
}

/// Partitions for sessions of `bytes` of requests (uncompressed), so that
/// one partition's items fit [`PARTITION_MEMORY_BUDGET`].
fn partitions_for(bytes: u64) -> u32 {
    let memory = bytes.saturating_mul(MEMORY_PER_REQUEST_BYTE);
    let partitions = memory.div_ceil(PARTITION_MEMORY_BUDGET).max(1);
    u32::try_from(partitions).unwrap_or(MAX_PARTITIONS).min(MAX_PARTITIONS)
}

fn uncompressed(blobs: &[BlobEntry]) -> u64 {
    blobs.iter().map(|blob| blob.uncompressed_bytes).sum()
}

fn records(blobs: &[BlobEntry]) -> u64 {
    blobs.iter().map(|blob| blob.records).sum()
}

fn items_in(blobs: &[BlobEntry]) -> u64 {
    blobs.iter().map(|blob| blob.items).sum()
}

fn summary(metadata: &SessionMetadata, read: &SideRead) -> SideSummary {
    SideSummary {
        session_id: metadata.session_id.clone(),
        content_hash: metadata.content_hash.clone(),
        records: read.records,
        items: read.counts,
        canonical_sha256: read.canonical_sha256.clone(),
    }
}

/// Matches one partition on a blocking thread.
async fn match_partition(mut tally: Tally, expected: Vec<Item>, actual: Vec<Item>) -> Result<Tally, Error> {
    joined(
        tokio::task::spawn_blocking(move || {
            tally.partition(expected, actual);
            tally
        })
        .await,
    )
}

/// A blocking task's result; its panic goes on.
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> Result<T, Error> {
    match result {
        Ok(value) => Ok(value),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(Error::Stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_that_fit_are_one_partition_and_larger_ones_more() {
        assert_eq!(partitions_for(0), 1);
        assert_eq!(partitions_for(PARTITION_MEMORY_BUDGET / MEMORY_PER_REQUEST_BYTE), 1);
        assert_eq!(partitions_for(PARTITION_MEMORY_BUDGET / MEMORY_PER_REQUEST_BYTE + 1), 2);
        assert_eq!(partitions_for(10 << 30), 120);
        assert_eq!(partitions_for(u64::MAX), MAX_PARTITIONS);
    }
}
