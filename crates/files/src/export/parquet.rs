//! Export as Parquet tables into any [`OutputDir`]: one file per table with
//! rows (`traces.parquet`, `metrics_sum.parquet`, ...) with a `Phase`
//! column, or by phase `Phase=<name>/<table>.parquet` (Hive partitioning,
//! without the column) and `labels.json`.
//!
//! The records are read on the caller's task; a thread decodes them into
//! rows and another encodes the rows (see `pipeline`); the bytes are written
//! into the output's sinks as row groups finish. Every sink is committed
//! only once every file is whole, `labels.json` last; any error aborts
//! them all, so nothing partial is left.

mod pipeline;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use futures::TryStreamExt;
use tape_session::{BlobSink, OutputDir, SessionMetadata, SessionStore, TaggedRecord};
use tokio::sync::mpsc;

use self::pipeline::{Decoder, FileKey, FileNames, FromEncoder, Summary};
use super::by_phase::{FileEntry, LABELS_FILE, Labels, labels};
use super::select::{Progress, Selection};
use super::{ExportConfig, ExportProgress, ExportedTables, TableFile};
use crate::parquet::Table;
use crate::{Error, FileFormat};

/// Records handed to the decode thread at a time, at most: as many as
/// reach [`CHUNK_BYTES`] of requests, up to this count. Requests of a busy
/// capture hold hundreds of spans, so the bytes, not the count, keep the
/// records in flight small.
const CHUNK_RECORDS: usize = 256;
/// Bytes of requests handed to the decode thread at a time, about.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks of records and pieces of files in flight between the task and
/// the threads.
const CHANNEL_DEPTH: usize = 4;

/// Exports the selected records as Parquet tables into `output`.
pub(super) async fn run(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    selection: &Selection,
    config: &ExportConfig,
    output: &dyn OutputDir,
    report: &(dyn Fn(ExportProgress) + Send + Sync),
) -> Result<ExportedTables, Error> {
    let names = FileNames(selection.directories.clone().into());
    let candidates = candidates(selection, config.by_phase, &names);
    if !config.force {
        for name in &candidates {
            if output.exists(name).await.map_err(|source| output_error(output, name, source))? {
                return Err(Error::Exists { path: output.describe(name) });
            }
        }
    }

    let progress = Progress::new(report, selection.records_total());
    let mut sinks: BTreeMap<FileKey, Pending> = BTreeMap::new();
    let written = write(store, metadata, selection, config, output, &progress, &mut sinks, &names).await;
    let summary = match written {
        Ok(summary) => summary,
        Err(error) => {
            abort(sinks).await;
            return Err(Error::ExportFailed { session: config.session.clone(), source: Box::new(error) });
        }
    };

    let files: Vec<TableFile> = sinks
        .iter()
        .map(|(key, pending)| TableFile {
            table: key.1.name(),
            file: names.of(*key),
            rows: pending.rows,
            bytes: pending.bytes,
        })
        .collect();
    let manifest = config.by_phase.then(|| manifest(metadata, selection, &summary, &sinks, &names));
    commit(output, sinks, manifest.as_ref(), &names)
        .await
        .map_err(|error| Error::ExportFailed { session: config.session.clone(), source: Box::new(error) })?;
    if config.force {
        // Files of an earlier export that this one did not write.
        for name in candidates.iter().filter(|name| !files.iter().any(|file| &file.file == *name)) {
            if name != LABELS_FILE {
                output.remove(name).await.map_err(|source| output_error(output, name, source))?;
            }
        }
    }
    progress.report();
    let rows: u64 = files.iter().map(|file| file.rows).sum();
    tracing::info!(session = %config.session, files = files.len(), rows, location = %output.location(), "Parquet export finished.");
    Ok(ExportedTables { session_id: config.session.clone(), location: output.location(), files, labels: manifest })
}

/// A file being written: its sink and what went into it.
struct Pending {
    sink: Box<dyn BlobSink>,
    rows: u64,
    bytes: u64,
}

/// Every file the export could write, whether or not it gets rows: the
/// selected signals' tables (by phase: in every label's directory), and
/// `labels.json`.
fn candidates(selection: &Selection, by_phase: bool, names: &FileNames) -> Vec<String> {
    let tables: Vec<Table> =
        Table::ALL.into_iter().filter(|table| selection.signals.contains(table.signal())).collect();
    let labels: Vec<Option<usize>> = if by_phase { (0..selection.names.len()).map(Some).collect() } else { vec![None] };
    let mut files: Vec<String> =
        labels.iter().flat_map(|label| tables.iter().map(|table| names.of((*label, *table)))).collect();
    if by_phase {
        files.push(LABELS_FILE.to_owned());
    }
    files
}

fn output_error(output: &dyn OutputDir, name: &str, source: tape_session::Error) -> Error {
    Error::Output { file: output.describe(name), source: Box::new(source) }
}

/// Reads the records, runs the pipeline and writes the files' bytes into
/// new sinks in `sinks`, without committing them; returns the decode
/// thread's summary.
#[allow(clippy::too_many_arguments)] // one call site, the pieces of one export
async fn write(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    selection: &Selection,
    config: &ExportConfig,
    output: &dyn OutputDir,
    progress: &Progress<'_>,
    sinks: &mut BTreeMap<FileKey, Pending>,
    names: &FileNames,
) -> Result<Summary, Error> {
    let (chunks, chunks_received) = mpsc::channel::<Vec<TaggedRecord>>(CHANNEL_DEPTH);
    let (batches, batches_received) = std::sync::mpsc::sync_channel(CHANNEL_DEPTH);
    let (pieces, mut pieces_received) = mpsc::channel::<FromEncoder>(CHANNEL_DEPTH * 4);
    let decoder = Decoder {
        session: metadata.session_id.clone(),
        phases: selection.phases.clone(),
        names: selection.names.clone(),
        by_phase: config.by_phase,
    };
    std::thread::Builder::new()
        .name("otlp-tape-export-decode".to_owned())
        .spawn(move || decoder.run(chunks_received, &batches))
        .map_err(|_| Error::Worker { thread: "decode" })?;
    let with_phase = !config.by_phase;
    let encode_names = names.clone();
    std::thread::Builder::new()
        .name("otlp-tape-export-encode".to_owned())
        .spawn(move || pipeline::encode(&batches_received, &pieces, with_phase, &encode_names))
        .map_err(|_| Error::Worker { thread: "encode" })?;

    let read = async move {
        let mut records = std::pin::pin!(selection.records(store, metadata, progress));
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while let Some(record) = records.try_next().await? {
            bytes += record.2.payload.len();
            chunk.push(record);
            if (chunk.len() == CHUNK_RECORDS || bytes >= CHUNK_BYTES)
                && chunks.send(std::mem::take(&mut chunk)).await.is_err()
            {
                // The pipeline stopped; the writing side says why.
                return Ok(());
            }
            if chunk.is_empty() {
                bytes = 0;
            }
        }
        if !chunk.is_empty() {
            let _ = chunks.send(chunk).await;
        }
        Ok::<_, Error>(())
    };
    let written = async {
        loop {
            match pieces_received.recv().await {
                Some(FromEncoder::Bytes(key, bytes)) => {
                    let pending = match sinks.entry(key) {
                        Entry::Occupied(entry) => entry.into_mut(),
                        Entry::Vacant(entry) => {
                            let name = names.of(key);
                            let sink =
                                output.create(&name).await.map_err(|source| output_error(output, &name, source))?;
                            entry.insert(Pending { sink, rows: 0, bytes: 0 })
                        }
                    };
                    let len = bytes.len() as u64;
                    pending.sink.write(bytes).await.map_err(|source| output_error(output, &names.of(key), source))?;
                    pending.bytes += len;
                    progress.wrote(len);
                }
                Some(FromEncoder::Finished(key, rows)) => {
                    if let Some(pending) = sinks.get_mut(&key) {
                        pending.rows = rows;
                    }
                }
                Some(FromEncoder::Done(summary)) => return Ok(summary),
                Some(FromEncoder::Failed(Error::Encode { file, source })) => {
                    return Err(Error::Encode { file: output.describe(&file), source });
                }
                Some(FromEncoder::Failed(error)) => return Err(error),
                None => return Err(Error::Worker { thread: "encode" }),
            }
        }
    };
    let ((), summary) = futures::future::try_join(read, written).await?;
    Ok(summary)
}

/// Aborts every sink; what was written is discarded.
async fn abort(sinks: BTreeMap<FileKey, Pending>) {
    for pending in sinks.into_values() {
        let _ = pending.sink.abort().await;
    }
}

/// Commits every file, then `labels.json`; when a commit fails, aborts the
/// rest and removes what was committed.
async fn commit(
    output: &dyn OutputDir,
    sinks: BTreeMap<FileKey, Pending>,
    manifest: Option<&Labels>,
    names: &FileNames,
) -> Result<(), Error> {
    let mut committed: Vec<String> = Vec::new();
    let mut sinks = sinks.into_iter();
    let mut result = Ok(());
    for (key, pending) in sinks.by_ref() {
        let name = names.of(key);
        if let Err(source) = pending.sink.commit().await {
            result = Err(output_error(output, &name, source));
            break;
        }
        committed.push(name);
    }
    if result.is_ok()
        && let Some(manifest) = manifest
    {
        result = write_labels(output, manifest).await;
    }
    if result.is_err() {
        abort(sinks.collect()).await;
        for name in &committed {
            let _ = output.remove(name).await;
        }
    }
    result
}

/// Writes `labels.json` and commits it.
async fn write_labels(output: &dyn OutputDir, manifest: &Labels) -> Result<(), Error> {
    let text = serde_json::to_vec_pretty(manifest)?;
    let mut sink = output.create(LABELS_FILE).await.map_err(|source| output_error(output, LABELS_FILE, source))?;
    if let Err(source) = sink.write(text.into()).await {
        let _ = sink.abort().await;
        return Err(output_error(output, LABELS_FILE, source));
    }
    sink.commit().await.map_err(|source| output_error(output, LABELS_FILE, source))
}

/// `labels.json` of a Parquet export by phase.
fn manifest(
    metadata: &SessionMetadata,
    selection: &Selection,
    summary: &Summary,
    sinks: &BTreeMap<FileKey, Pending>,
    names: &FileNames,
) -> Labels {
    labels(metadata, &selection.phases, FileFormat::Parquet, |index, name| {
        let files = sinks
            .iter()
            .filter(|((label, _), _)| *label == Some(index))
            .map(|(key, pending)| FileEntry {
                signal: key.1.signal(),
                table: Some(key.1.name()),
                file: names.of(*key),
                requests: summary.requests.get(key).copied().unwrap_or(0),
                items: pending.rows,
            })
            .collect();
        (
            format!("Phase={}", tape_session::phase_directory(name)),
            summary.labels.get(index).copied().unwrap_or_default(),
            files,
        )
    })
}
