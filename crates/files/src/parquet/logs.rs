//! Rows of the `logs` table. (API surface: being written.)

use arrow_array::RecordBatch;

use super::{RowContext, Table};

/// The rows of the `logs` table being built.
pub(super) struct LogsRows {
    with_phase: bool,
}

impl LogsRows {
    pub(super) fn new(with_phase: bool) -> Self {
        LogsRows { with_phase }
    }

    pub(super) fn append(
        &mut self,
        _request: &opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
        _context: &RowContext<'_>,
    ) -> u64 {
        todo!("{}", self.with_phase)
    }

    pub(super) fn buffered(&self, _table: Table) -> usize {
        todo!()
    }

    pub(super) fn take(&mut self, _table: Table) -> Option<RecordBatch> {
        todo!()
    }
}
