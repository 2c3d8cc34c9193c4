//! Parquet export: a session's records as tables in the schema of the
//! Collector's ClickHouse exporter ([`schema`]), one row per span, log
//! record or data point.
//!
//! - [`SignalTables`] turns decoded requests into rows, buffered per table
//!   as Arrow arrays until [`SignalTables::take`] hands them out as a
//!   record batch;
//! - [`TableWriter`] encodes record batches of one table as a Parquet file
//!   (zstd, row groups sized for scanning, statistics) and hands out the
//!   file's bytes as they are ready, so that the caller streams them into
//!   a local file or an S3 upload.

pub mod schema;
mod writer;

mod attributes;
mod logs;
mod metrics;
mod traces;

use arrow_array::RecordBatch;
use tape_otlp::{ExportRequest, Signal};

pub use self::schema::Table;
pub use self::writer::{ROW_GROUP_ROWS, TableWriter};

/// What every row of one record shares besides the record's contents.
#[derive(Debug, Clone, Copy)]
pub struct RowContext<'a> {
    /// The session's id (`SessionId`).
    pub session: &'a str,
    /// The record's receive time, unix nanoseconds (`ReceiveTime`).
    pub receive_time: u64,
    /// The phase (`Phase`); `None` for tables written without the column
    /// (a Hive-partitioned export, where the directory names the phase).
    pub phase: Option<&'a str>,
}

/// The rows of one signal's tables being built: one table for traces and
/// for logs, five for metrics (one per point type).
pub struct SignalTables {
    rows: Rows,
}

enum Rows {
    Traces(traces::TracesRows),
    Logs(logs::LogsRows),
    Metrics(metrics::MetricsRows),
}

impl SignalTables {
    /// Empty tables of `signal`, with or without the `Phase` column.
    pub fn new(signal: Signal, with_phase: bool) -> Self {
        let rows = match signal {
            Signal::Traces => Rows::Traces(traces::TracesRows::new(with_phase)),
            Signal::Logs => Rows::Logs(logs::LogsRows::new(with_phase)),
            Signal::Metrics => Rows::Metrics(metrics::MetricsRows::new(with_phase)),
        };
        SignalTables { rows }
    }

    /// Appends the rows of one request: a row per span, log record or data
    /// point. Returns the rows appended.
    ///
    /// # Panics
    /// When the request is of another signal than the tables.
    pub fn append(&mut self, request: &ExportRequest, context: &RowContext<'_>) -> u64 {
        match (&mut self.rows, request) {
            (Rows::Traces(rows), ExportRequest::Traces(request)) => rows.append(request, context),
            (Rows::Logs(rows), ExportRequest::Logs(request)) => rows.append(request, context),
            (Rows::Metrics(rows), ExportRequest::Metrics(request)) => rows.append(request, context),
            _ => panic!("a {} request appended to the tables of another signal", request.signal()),
        }
    }

    /// Appends the rows of one request of `signal` given as its protobuf
    /// bytes: the same rows as [`SignalTables::append`] of the decoded
    /// request. Traces are read straight from the bytes; other signals,
    /// and trace requests the direct reader leaves to prost, are decoded
    /// with prost first. Returns the rows appended.
    ///
    /// # Errors
    /// When the bytes are not a valid request of `signal`; nothing is
    /// appended then.
    ///
    /// # Panics
    /// When `signal` is another signal than the tables'.
    pub fn append_encoded(
        &mut self,
        signal: Signal,
        payload: &[u8],
        context: &RowContext<'_>,
    ) -> Result<u64, tape_otlp::Error> {
        if let (Rows::Traces(rows), Signal::Traces) = (&mut self.rows, signal)
            && let Ok(appended) = rows.append_encoded(payload, context)
        {
            return Ok(appended);
        }
        let request = ExportRequest::decode_protobuf(signal, payload)?;
        Ok(self.append(&request, context))
    }

    /// Rows buffered in `table`, not yet taken.
    pub fn buffered(&self, table: Table) -> usize {
        match &self.rows {
            Rows::Traces(rows) => rows.buffered(table),
            Rows::Logs(rows) => rows.buffered(table),
            Rows::Metrics(rows) => rows.buffered(table),
        }
    }

    /// The rows buffered in `table` as one record batch in the table's
    /// schema, leaving the table empty; `None` when nothing is buffered.
    pub fn take(&mut self, table: Table) -> Option<RecordBatch> {
        match &mut self.rows {
            Rows::Traces(rows) => rows.take(table),
            Rows::Logs(rows) => rows.take(table),
            Rows::Metrics(rows) => rows.take(table),
        }
    }
}
