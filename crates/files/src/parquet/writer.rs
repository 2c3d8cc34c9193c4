//! Encoding one table's record batches as a Parquet file.

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema};
use bytes::Bytes;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion};

use super::Table;

/// Rows per row group: large enough for scans to read long runs, small
/// enough that a row group of the widest table stays well under a hundred
/// megabytes in memory while it is encoded.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;

/// A Parquet file of one table being encoded. Bytes come out as row
/// groups are finished ([`TableWriter::take_bytes`]) and with the footer
/// ([`TableWriter::finish`]); what has come out, in order, is the file.
pub struct TableWriter {
    table: Table,
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
}

impl TableWriter {
    /// A new file of `table`, with or without the `Phase` column.
    pub fn new(table: Table, with_phase: bool) -> Result<Self, parquet::errors::ParquetError> {
        let schema = table.schema(with_phase);
        let properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(format!("otlp-tape {}", env!("CARGO_PKG_VERSION")));
        let properties = tune_columns(properties, &schema)?.build();
        let writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties))?;
        Ok(TableWriter { table, writer, rows: 0 })
    }

    /// The table.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Encodes `batch`; a row group that fills up is finished.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), parquet::errors::ParquetError> {
        self.writer.write(batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The bytes of the file finished since the last call (whole row
    /// groups); empty while a row group is being filled.
    pub fn take_bytes(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.writer.inner_mut()))
    }

    /// Finishes the last row group and writes the footer; returns the
    /// bytes not yet taken.
    pub fn finish(self) -> Result<Bytes, parquet::errors::ParquetError> {
        let bytes = self.writer.into_inner()?;
        Ok(Bytes::from(bytes))
    }
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter").field("table", &self.table).field("rows", &self.rows).finish_non_exhaustive()
    }
}

/// What a column holds, for its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    /// Trace and span ids: random hex, no dictionary (it would only fill
    /// up); `DELTA_BYTE_ARRAY` stores the repeats of a trace id in
    /// consecutive spans as a shared prefix. No statistics: the minimum
    /// and maximum of random ids prune nothing.
    Id,
    /// Timestamps and durations: `DELTA_BINARY_PACKED`, which stores
    /// nearby times in a few bits each (measured smaller than a dictionary
    /// on `high-load`, and faster).
    Time,
    /// Attributes, lists and free text (`TraceState`, `StatusMessage`,
    /// `Body`): dictionary encoded (attribute keys and most values repeat),
    /// no statistics (queries do not prune on them, and computing them
    /// per value took a third of the writer's time).
    Nested,
    /// Every other column: dictionary encoded, page statistics.
    Plain,
}

/// The kind of the leaf column at `path` (its parts: the table's field
/// first).
fn column_kind(schema: &Schema, path: &[String]) -> ColumnKind {
    let Some(name) = path.first() else { return ColumnKind::Plain };
    let Ok(field) = schema.field_with_name(name) else { return ColumnKind::Plain };
    let item = match field.data_type() {
        DataType::List(item) => item.data_type(),
        other => other,
    };
    if name.ends_with("TraceId") || name.ends_with("SpanId") {
        ColumnKind::Id
    } else if matches!(item, DataType::Timestamp(_, _)) || name == "Duration" {
        ColumnKind::Time
    } else if path.len() > 1 || ["TraceState", "StatusMessage", "Body"].contains(&name.as_str()) {
        ColumnKind::Nested
    } else {
        ColumnKind::Plain
    }
}

/// Sets each leaf column's encoding, dictionary and statistics by its
/// kind ([`column_kind`]).
fn tune_columns(
    mut properties: WriterPropertiesBuilder,
    schema: &Schema,
) -> Result<WriterPropertiesBuilder, parquet::errors::ParquetError> {
    let leaves = ArrowSchemaConverter::new().convert(schema)?;
    for column in leaves.columns() {
        let path = column.path().clone();
        properties = match column_kind(schema, path.parts()) {
            ColumnKind::Id => properties
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path.clone(), Encoding::DELTA_BYTE_ARRAY)
                .set_column_statistics_enabled(path, EnabledStatistics::None),
            ColumnKind::Time => properties
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED),
            ColumnKind::Nested => properties.set_column_statistics_enabled(path, EnabledStatistics::None),
            ColumnKind::Plain => properties,
        };
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_tuned_by_kind() {
        let schema = Table::Traces.schema(true);
        let kind =
            |path: &[&str]| column_kind(&schema, &path.iter().map(|part| (*part).to_owned()).collect::<Vec<_>>());
        assert_eq!(kind(&["TraceId"]), ColumnKind::Id);
        assert_eq!(kind(&["ParentSpanId"]), ColumnKind::Id);
        assert_eq!(kind(&["Links.SpanId", "list", "element"]), ColumnKind::Id);
        assert_eq!(kind(&["Timestamp"]), ColumnKind::Time);
        assert_eq!(kind(&["Duration"]), ColumnKind::Time);
        assert_eq!(kind(&["Events.Timestamp", "list", "element"]), ColumnKind::Time);
        assert_eq!(kind(&["ReceiveTime"]), ColumnKind::Time);
        assert_eq!(kind(&["ResourceAttributes", "key_value", "key"]), ColumnKind::Nested);
        assert_eq!(kind(&["StatusMessage"]), ColumnKind::Nested);
        assert_eq!(kind(&["ServiceName"]), ColumnKind::Plain);
        assert_eq!(kind(&["Phase"]), ColumnKind::Plain);
        let schema = Table::MetricsGauge.schema(false);
        let kind =
            |path: &[&str]| column_kind(&schema, &path.iter().map(|part| (*part).to_owned()).collect::<Vec<_>>());
        assert_eq!(kind(&["Exemplars.TraceId", "list", "element"]), ColumnKind::Id);
        assert_eq!(kind(&["TimeUnix"]), ColumnKind::Time);
        assert_eq!(kind(&["Value"]), ColumnKind::Plain);
    }
}
