//! Rows of the `traces` table. (API surface: being written.)

use arrow_array::RecordBatch;

use super::{RowContext, Table};

/// The rows of the `traces` table being built.
pub(super) struct TracesRows {
    with_phase: bool,
}

impl TracesRows {
    pub(super) fn new(with_phase: bool) -> Self {
        TracesRows { with_phase }
    }

    pub(super) fn append(
        &mut self,
        _request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
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
