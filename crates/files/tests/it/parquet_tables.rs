//! Building and writing Parquet tables, and reading them back with the
//! `parquet` crate's Arrow reader as plain rows of cells.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampNanosecondType, UInt8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tape_files::parquet::{RowContext, SignalTables, Table, TableWriter};
use tape_otlp::{ExportRequest, Signal};

/// One value of a row, whatever its column's type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// A null (only `Min` and `Max` may hold one).
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer, and timestamps as unix nanoseconds.
    Int(i128),
    /// A double, by its bits.
    Float(u64),
    /// A string.
    Str(String),
    /// A map's entries, sorted.
    Map(Vec<(String, String)>),
    /// A list.
    List(Vec<Cell>),
}

/// A row: its cells in column order.
pub type Row = Vec<Cell>;

/// A request and the context of its rows.
pub type Record = (ExportRequest, RowContext<'static>);

/// Builds the tables of `records` with `SignalTables`, taking a batch
/// whenever `batch_rows` rows are buffered, writes each table with a
/// `TableWriter` and returns the files' bytes. Tables without rows have no
/// file.
pub fn write_tables(records: &[Record], with_phase: bool, batch_rows: usize) -> BTreeMap<Table, Vec<u8>> {
    let mut files = BTreeMap::new();
    for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
        let mut tables = SignalTables::new(signal, with_phase);
        let mut writers: BTreeMap<Table, (TableWriter, Vec<u8>)> = Table::of(signal)
            .iter()
            .map(|table| (*table, (TableWriter::new(*table, with_phase).expect("a writer"), Vec::new())))
            .collect();
        let mut drain = |tables: &mut SignalTables, at_least: usize| {
            for (table, (writer, bytes)) in &mut writers {
                if tables.buffered(*table) >= at_least.max(1) {
                    let batch = tables.take(*table).expect("rows are buffered");
                    assert_eq!(tables.buffered(*table), 0);
                    assert_eq!(batch.schema(), table.schema(with_phase), "{table}: the batch's schema");
                    writer.write(&batch).expect("writes");
                    bytes.extend_from_slice(&writer.take_bytes());
                } else {
                    assert!(tables.buffered(*table) > 0 || tables.take(*table).is_none());
                }
            }
        };
        for (request, context) in records.iter().filter(|(request, _)| request.signal() == signal) {
            let appended = tables.append(request, context);
            assert_eq!(appended, request.item_count(), "rows of a {signal} request");
            drain(&mut tables, batch_rows);
        }
        drain(&mut tables, 1);
        for (table, (writer, mut bytes)) in writers {
            let rows = writer.rows();
            bytes.extend_from_slice(&writer.finish().expect("finishes"));
            if rows > 0 {
                files.insert(table, bytes);
            }
        }
    }
    files
}

/// The rows of a Parquet file of `table`, checking that the file's schema
/// is the table's.
pub fn read_rows(table: Table, with_phase: bool, bytes: &[u8]) -> Vec<Row> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes)).expect("a Parquet file");
    let expected = table.schema(with_phase);
    assert_eq!(builder.schema().fields(), expected.fields(), "{table}: the file's schema");
    let metadata = builder.metadata().clone();
    assert!(metadata.file_metadata().created_by().is_some_and(|by| by.starts_with("otlp-tape")));
    // Statistics on the columns queries filter on: top-level ones but the
    // ids and free text; none on attributes, lists and ids.
    for group in metadata.row_groups() {
        for column in group.columns() {
            let parts = column.column_path().parts();
            let filtered = parts.len() == 1
                && !parts[0].ends_with("TraceId")
                && !parts[0].ends_with("SpanId")
                && !["TraceState", "StatusMessage", "Body"].contains(&parts[0].as_str());
            let timestamps = parts[0].ends_with("Timestamp") || parts[0].ends_with("TimeUnix");
            assert_eq!(
                column.statistics().is_some(),
                filtered || timestamps,
                "{table}: statistics of {}",
                column.column_path()
            );
        }
    }
    let mut rows = Vec::new();
    for batch in builder.build().expect("a reader") {
        rows.extend(batch_rows(&batch.expect("a batch")));
    }
    rows
}

fn batch_rows(batch: &RecordBatch) -> Vec<Row> {
    (0..batch.num_rows()).map(|row| batch.columns().iter().map(|column| cell(column.as_ref(), row)).collect()).collect()
}

fn cell(array: &dyn Array, row: usize) -> Cell {
    if array.is_null(row) {
        return Cell::Null;
    }
    match array.data_type() {
        DataType::Utf8 => Cell::Str(array.as_string::<i32>().value(row).to_owned()),
        DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
        DataType::UInt8 => Cell::Int(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt32 => Cell::Int(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => Cell::Int(array.as_primitive::<UInt64Type>().value(row).into()),
        DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row).to_bits()),
        DataType::Timestamp(TimeUnit::Nanosecond, Some(zone)) if zone.as_ref() == "UTC" => {
            Cell::Int(array.as_primitive::<TimestampNanosecondType>().value(row).into())
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            let mut pairs: Vec<(String, String)> =
                (0..entries.len()).map(|n| (keys.value(n).to_owned(), values.value(n).to_owned())).collect();
            pairs.sort();
            let before = pairs.len();
            pairs.dedup_by(|a, b| a.0 == b.0);
            assert_eq!(pairs.len(), before, "a map with a repeated key");
            Cell::Map(pairs)
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            Cell::List((0..items.len()).map(|n| cell(items.as_ref(), n)).collect())
        }
        other => panic!("no column has the type {other}"),
    }
}
