//! Encoding one table's record batches as a Parquet file.

use std::io;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

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
        let properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(format!("otlp-tape {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), table.schema(with_phase), Some(properties))?;
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

/// An error of the Parquet encoder as an I/O error, for messages that name
/// the file.
pub(crate) fn to_io(error: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(Arc::new(error).to_string())
}
