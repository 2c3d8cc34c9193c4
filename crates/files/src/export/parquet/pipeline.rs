//! The two threads of a Parquet export: one decodes records and builds
//! rows ([`SignalTables`]), the other encodes the rows as Parquet files
//! ([`TableWriter`]). Bounded channels join them to each other and to the
//! async task that reads the records and writes the bytes, so that memory
//! does not grow with the session; an error travels down the pipeline to
//! that task, and a task that stops makes the threads stop (their sends
//! fail).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use arrow_array::RecordBatch;
use bytes::Bytes;
use tape_otlp::Signal;
use tape_session::{Phase, SessionId, TaggedRecord};
use tokio::sync::mpsc;

use super::super::by_phase::Counts;
use super::super::select::label;
use crate::Error;
use crate::parquet::{ROW_GROUP_ROWS, RowContext, SignalTables, Table, TableWriter};

/// Rows of a table handed from the rows to the encoder at a time: a small
/// part of a row group, so that rows buffered for many files (a phase's
/// tables each) stay small.
const BATCH_ROWS: usize = ROW_GROUP_ROWS / 64;

/// A file of the export: its label (by phase: an index into the labels'
/// names; otherwise none) and its table.
pub(super) type FileKey = (Option<usize>, Table);

/// The files' names relative to the output directory: `traces.parquet`,
/// by phase `Phase=<name>/traces.parquet`.
#[derive(Debug, Clone)]
pub(super) struct FileNames(pub(super) Arc<[String]>);

impl FileNames {
    /// The name of the file `key`.
    pub(super) fn of(&self, (label, table): FileKey) -> String {
        match label {
            Some(label) => format!("Phase={}/{}", self.0[label], table.file_name()),
            None => table.file_name(),
        }
    }
}

/// What the decode thread learnt besides the rows.
#[derive(Debug, Default)]
pub(super) struct Summary {
    /// Requests and items per label.
    pub(super) labels: Vec<Counts>,
    /// Requests with rows in each file.
    pub(super) requests: BTreeMap<FileKey, u64>,
}

/// From the decode thread to the encode thread.
pub(super) enum ToEncoder {
    /// Rows of a file.
    Batch(FileKey, RecordBatch),
    /// Every row was handed over.
    Done(Summary),
    /// Decoding failed.
    Failed(Error),
}

/// From the encode thread to the task that writes.
pub(super) enum FromEncoder {
    /// The next bytes of a file.
    Bytes(FileKey, Bytes),
    /// A file is complete, with this many rows.
    Finished(FileKey, u64),
    /// Every file is complete.
    Done(Summary),
    /// Decoding or encoding failed.
    Failed(Error),
}

/// What the decode thread needs of the export.
pub(super) struct Decoder {
    /// The session.
    pub(super) session: SessionId,
    /// The session's phases.
    pub(super) phases: Vec<Phase>,
    /// The labels' names: the phases', then `unlabelled`.
    pub(super) names: Vec<String>,
    /// Hive-partitioned by phase: a file per label, without the `Phase`
    /// column.
    pub(super) by_phase: bool,
}

impl Decoder {
    /// Decodes the records that come in chunks into rows handed to the
    /// encoder, until the chunks end; then hands over the rest and the
    /// summary.
    pub(super) fn run(self, mut chunks: mpsc::Receiver<Vec<TaggedRecord>>, encoder: &SyncSender<ToEncoder>) {
        let mut tables: BTreeMap<(Option<usize>, Signal), SignalTables> = BTreeMap::new();
        let mut summary = Summary { labels: vec![Counts::default(); self.names.len()], requests: BTreeMap::new() };
        let mut labels = Vec::new();
        while let Some(chunk) = chunks.blocking_recv() {
            for (signal, writer, record) in chunk {
                label(&self.phases, record.receive_time_unix_nano, writer.as_ref(), &mut labels);
                for &label in &labels {
                    summary.labels[label].requests.add(signal, 1);
                    summary.labels[label].items.add(signal, record.item_count);
                    let (key, phase) =
                        if self.by_phase { (Some(label), None) } else { (None, Some(self.names[label].as_str())) };
                    let rows = tables.entry((key, signal)).or_insert_with(|| SignalTables::new(signal, !self.by_phase));
                    let mut before = [0; Table::ALL.len()];
                    for (before, table) in before.iter_mut().zip(Table::of(signal)) {
                        *before = rows.buffered(*table);
                    }
                    let context = RowContext {
                        session: self.session.as_str(),
                        receive_time: record.receive_time_unix_nano,
                        phase,
                    };
                    if let Err(source) = rows.append_encoded(signal, &record.payload, &context) {
                        let error = Error::UndecodableRecord {
                            session: self.session.clone(),
                            signal,
                            received: record.receive_time().to_string(),
                            source,
                        };
                        let _ = encoder.send(ToEncoder::Failed(error));
                        return;
                    }
                    for (table, before) in Table::of(signal).iter().zip(before) {
                        let buffered = rows.buffered(*table);
                        if buffered > before {
                            *summary.requests.entry((key, *table)).or_default() += 1;
                        }
                        if buffered >= BATCH_ROWS
                            && let Some(batch) = rows.take(*table)
                            && encoder.send(ToEncoder::Batch((key, *table), batch)).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }
        for ((key, signal), rows) in &mut tables {
            for table in Table::of(*signal) {
                if let Some(batch) = rows.take(*table)
                    && encoder.send(ToEncoder::Batch((*key, *table), batch)).is_err()
                {
                    return;
                }
            }
        }
        let _ = encoder.send(ToEncoder::Done(summary));
    }
}

/// Encodes the batches that come from the decode thread as Parquet files
/// and hands their bytes on as they are ready; `name` gives a file's name
/// for messages.
pub(super) fn encode(
    batches: &Receiver<ToEncoder>,
    out: &mpsc::Sender<FromEncoder>,
    with_phase: bool,
    names: &FileNames,
) {
    let mut writers: BTreeMap<FileKey, TableWriter> = BTreeMap::new();
    let fail = |error: Error| {
        let _ = out.blocking_send(FromEncoder::Failed(error));
    };
    let encoding = |key: FileKey| move |source| Error::Encode { file: names.of(key), source };
    loop {
        let Ok(message) = batches.recv() else {
            return fail(Error::Worker { thread: "decode" });
        };
        match message {
            ToEncoder::Batch(key, batch) => {
                let writer = match writers.entry(key) {
                    std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::btree_map::Entry::Vacant(entry) => {
                        match TableWriter::new(key.1, with_phase).map_err(encoding(key)) {
                            Ok(writer) => entry.insert(writer),
                            Err(error) => return fail(error),
                        }
                    }
                };
                if let Err(error) = writer.write(&batch).map_err(encoding(key)) {
                    return fail(error);
                }
                let bytes = writer.take_bytes();
                if !bytes.is_empty() && out.blocking_send(FromEncoder::Bytes(key, bytes)).is_err() {
                    return;
                }
            }
            ToEncoder::Done(summary) => {
                for (key, writer) in writers {
                    let rows = writer.rows();
                    let bytes = match writer.finish().map_err(encoding(key)) {
                        Ok(bytes) => bytes,
                        Err(error) => return fail(error),
                    };
                    if out.blocking_send(FromEncoder::Bytes(key, bytes)).is_err()
                        || out.blocking_send(FromEncoder::Finished(key, rows)).is_err()
                    {
                        return;
                    }
                }
                let _ = out.blocking_send(FromEncoder::Done(summary));
                return;
            }
            ToEncoder::Failed(error) => return fail(error),
        }
    }
}
