//! Rows of the `metrics_*` table. (API surface: being written.)

use arrow_array::RecordBatch;

use super::{RowContext, Table};

/// The rows of the five `metrics_*` tables being built.
pub(super) struct MetricsRows {
    with_phase: bool,
}

impl MetricsRows {
    pub(super) fn new(with_phase: bool) -> Self {
        MetricsRows { with_phase }
    }

    pub(super) fn append(
        &mut self,
        _request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
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
