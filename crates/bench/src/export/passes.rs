//! Where the time of an export goes: passes over the session on one
//! thread, each doing one step more than the one before.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tape_files::parquet::{ROW_GROUP_ROWS, RowContext, SignalTables, Table, TableWriter};
use tape_otlp::{ExportRequest, Signal};
use tape_session::{SessionMetadata, SessionStore, UNLABELLED, read_session};

use crate::Error;
use crate::system::cpu_seconds;

/// Rows a table buffers before they are taken as a batch: the export's
/// own batch size (`ROW_GROUP_ROWS / 64` in tape-files' pipeline).
const BATCH_ROWS: usize = ROW_GROUP_ROWS / 64;

/// One pass over the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pass {
    /// The step this pass adds: `read`, `decode`, `convert` or `encode`.
    pub step: String,
    /// What the pass does in all.
    pub does: String,
    /// How long it took.
    pub seconds: f64,
    /// CPU time of the process over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Spans it saw.
    pub spans: u64,
    /// Spans a second.
    pub spans_per_second: f64,
    /// Its seconds less those of the pass before: the step's own time.
    pub step_seconds: f64,
}

/// How far a pass goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Depth {
    Read,
    Decode,
    Convert,
    Encode,
}

impl Depth {
    const ALL: [Depth; 4] = [Depth::Read, Depth::Decode, Depth::Convert, Depth::Encode];

    fn step(self) -> &'static str {
        match self {
            Depth::Read => "read",
            Depth::Decode => "decode",
            Depth::Convert => "convert",
            Depth::Encode => "encode",
        }
    }

    fn does(self) -> &'static str {
        match self {
            Depth::Read => "read the blobs, decompress them and split them into records",
            Depth::Decode => "and decode each record's OTLP protobuf",
            Depth::Convert => "and append its rows to the tables' Arrow builders, taking batches as the export does",
            Depth::Encode => "and encode the batches as Parquet (zstd), the bytes discarded",
        }
    }
}

/// Runs the four passes in turn over `metadata`'s session.
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub(super) async fn measure_passes(store: &dyn SessionStore, metadata: &SessionMetadata) -> Result<Vec<Pass>, Error> {
    let mut passes = Vec::with_capacity(Depth::ALL.len());
    let mut previous = 0.0;
    for depth in Depth::ALL {
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let spans = pass(store, metadata, depth).await?;
        let seconds = started.elapsed().as_secs_f64();
        passes.push(Pass {
            step: depth.step().to_owned(),
            does: depth.does().to_owned(),
            seconds,
            cpu_seconds: cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before),
            spans,
            spans_per_second: spans as f64 / seconds,
            step_seconds: seconds - previous,
        });
        previous = seconds;
    }
    Ok(passes)
}

/// One pass to `depth`; returns the spans it saw (by the records' counts
/// when it only reads).
async fn pass(store: &dyn SessionStore, metadata: &SessionMetadata, depth: Depth) -> Result<u64, Error> {
    let session = metadata.session_id.as_str();
    let mut tables: BTreeMap<Signal, SignalTables> = BTreeMap::new();
    let mut encoder = Encoder { encode: depth == Depth::Encode, writers: BTreeMap::new(), bytes: 0 };
    let mut spans = 0;
    let mut records = std::pin::pin!(read_session(store, metadata, |_| true));
    while let Some((signal, record)) =
        records.try_next().await.map_err(Error::session(format!("cannot read session {session}")))?
    {
        if depth == Depth::Read {
            spans += if signal == Signal::Traces { record.item_count } else { 0 };
            continue;
        }
        let request = ExportRequest::decode_protobuf(signal, &record.payload)
            .map_err(Error::files(format!("cannot decode a {signal} record of session {session}")))?;
        if depth == Depth::Decode {
            spans += if signal == Signal::Traces { request.item_count() } else { 0 };
            continue;
        }
        let signal_tables = tables.entry(signal).or_insert_with(|| SignalTables::new(signal, true));
        // The cost of a phase is the same whichever it is.
        let context = RowContext { session, receive_time: record.receive_time_unix_nano, phase: Some(UNLABELLED) };
        let rows = signal_tables.append(&request, &context);
        spans += if signal == Signal::Traces { rows } else { 0 };
        for &table in Table::of(signal) {
            if signal_tables.buffered(table) >= BATCH_ROWS
                && let Some(batch) = signal_tables.take(table)
            {
                encoder.write(table, &batch)?;
            }
        }
    }
    for (signal, signal_tables) in &mut tables {
        for &table in Table::of(*signal) {
            if let Some(batch) = signal_tables.take(table) {
                encoder.write(table, &batch)?;
            }
        }
    }
    std::hint::black_box(encoder.finish()?);
    Ok(spans)
}

/// The tables' Parquet encoders of the encode pass; the other passes drop
/// their batches.
struct Encoder {
    encode: bool,
    writers: BTreeMap<Table, TableWriter>,
    bytes: usize,
}

impl Encoder {
    fn write(&mut self, table: Table, batch: &arrow_array::RecordBatch) -> Result<(), Error> {
        if !self.encode {
            std::hint::black_box(batch);
            return Ok(());
        }
        let writer = match self.writers.entry(table) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry
                .insert(TableWriter::new(table, true).map_err(Error::files(format!("cannot start a {table} file")))?),
        };
        writer.write(batch).map_err(Error::files(format!("cannot encode rows of {table}")))?;
        self.bytes += writer.take_bytes().len();
        Ok(())
    }

    /// The bytes encoded in all.
    fn finish(self) -> Result<usize, Error> {
        let mut bytes = self.bytes;
        for (table, writer) in self.writers {
            bytes += writer.finish().map_err(Error::files(format!("cannot finish the {table} file")))?.len();
        }
        Ok(bytes)
    }
}
