//! Rows of the `logs` table: one per log record, as the Collector's
//! ClickHouse exporter writes `otel_logs`.

use arrow_array::builder::{StringBuilder, TimestampNanosecondBuilder, UInt8Builder};
use arrow_array::{ArrayRef, RecordBatch};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::attributes::{
    AttributesBuilder, ContextColumns, RenderedAttributes, append_attributes, append_id, append_value,
    attributes_builder, finish, nanos, record_batch, service_name, timestamp_builder,
};
use super::{RowContext, Table};

/// The rows of the `logs` table being built.
pub(super) struct LogsRows {
    with_phase: bool,
    rows: usize,
    columns: Box<Columns>,
}

/// The builders of the table's columns.
struct Columns {
    timestamp: TimestampNanosecondBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    trace_flags: UInt8Builder,
    severity_text: StringBuilder,
    severity_number: UInt8Builder,
    service_name: StringBuilder,
    body: StringBuilder,
    resource_schema_url: StringBuilder,
    resource_attributes: AttributesBuilder,
    scope_schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attributes: AttributesBuilder,
    log_attributes: AttributesBuilder,
    event_name: StringBuilder,
    context: ContextColumns,
}

/// What the log records of one scope share.
struct Shared<'a> {
    service: &'a str,
    resource: &'a RenderedAttributes,
    resource_schema_url: &'a str,
    scope: &'a RenderedAttributes,
    scope_schema_url: &'a str,
    scope_name: &'a str,
    scope_version: &'a str,
}

impl LogsRows {
    pub(super) fn new(with_phase: bool) -> Self {
        let columns = Columns {
            timestamp: timestamp_builder(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            trace_flags: UInt8Builder::new(),
            severity_text: StringBuilder::new(),
            severity_number: UInt8Builder::new(),
            service_name: StringBuilder::new(),
            body: StringBuilder::new(),
            resource_schema_url: StringBuilder::new(),
            resource_attributes: attributes_builder(),
            scope_schema_url: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            scope_attributes: attributes_builder(),
            log_attributes: attributes_builder(),
            event_name: StringBuilder::new(),
            context: ContextColumns::new(with_phase),
        };
        LogsRows { with_phase, rows: 0, columns: Box::new(columns) }
    }

    pub(super) fn append(&mut self, request: &ExportLogsServiceRequest, context: &RowContext<'_>) -> u64 {
        let before = self.rows;
        for resource_logs in &request.resource_logs {
            let attributes = resource_logs.resource.as_ref().map_or(&[][..], |resource| &resource.attributes);
            let resource = RenderedAttributes::new(attributes);
            for scope_logs in &resource_logs.scope_logs {
                let scope = scope_logs.scope.as_ref();
                let scope_attributes = RenderedAttributes::new(scope.map_or(&[][..], |scope| &scope.attributes));
                let shared = Shared {
                    service: service_name(attributes),
                    resource: &resource,
                    resource_schema_url: &resource_logs.schema_url,
                    scope: &scope_attributes,
                    scope_schema_url: &scope_logs.schema_url,
                    scope_name: scope.map_or("", |scope| &scope.name),
                    scope_version: scope.map_or("", |scope| &scope.version),
                };
                for record in &scope_logs.log_records {
                    self.append_record(record, &shared);
                }
            }
        }
        let appended = self.rows - before;
        self.columns.context.append_n(context, appended);
        appended as u64
    }

    fn append_record(&mut self, record: &LogRecord, shared: &Shared<'_>) {
        let time = if record.time_unix_nano == 0 { record.observed_time_unix_nano } else { record.time_unix_nano };
        self.columns.timestamp.append_value(nanos(time));
        append_id(&mut self.columns.trace_id, &record.trace_id);
        append_id(&mut self.columns.span_id, &record.span_id);
        // The low bytes, as the exporter's uint8 conversions keep them.
        self.columns.trace_flags.append_value(record.flags.to_le_bytes()[0]);
        self.columns.severity_text.append_value(&record.severity_text);
        self.columns.severity_number.append_value(record.severity_number.to_le_bytes()[0]);
        self.columns.service_name.append_value(shared.service);
        append_value(&mut self.columns.body, record.body.as_ref());
        self.columns.resource_schema_url.append_value(shared.resource_schema_url);
        shared.resource.append_to(&mut self.columns.resource_attributes);
        self.columns.scope_schema_url.append_value(shared.scope_schema_url);
        self.columns.scope_name.append_value(shared.scope_name);
        self.columns.scope_version.append_value(shared.scope_version);
        shared.scope.append_to(&mut self.columns.scope_attributes);
        append_attributes(&mut self.columns.log_attributes, &record.attributes);
        self.columns.event_name.append_value(&record.event_name);
        self.rows += 1;
    }

    pub(super) fn buffered(&self, table: Table) -> usize {
        if table == Table::Logs { self.rows } else { 0 }
    }

    pub(super) fn take(&mut self, table: Table) -> Option<RecordBatch> {
        if table != Table::Logs || self.rows == 0 {
            return None;
        }
        self.rows = 0;
        let mut columns: Vec<ArrayRef> = vec![
            finish(&mut self.columns.timestamp),
            finish(&mut self.columns.trace_id),
            finish(&mut self.columns.span_id),
            finish(&mut self.columns.trace_flags),
            finish(&mut self.columns.severity_text),
            finish(&mut self.columns.severity_number),
            finish(&mut self.columns.service_name),
            finish(&mut self.columns.body),
            finish(&mut self.columns.resource_schema_url),
            finish(&mut self.columns.resource_attributes),
            finish(&mut self.columns.scope_schema_url),
            finish(&mut self.columns.scope_name),
            finish(&mut self.columns.scope_version),
            finish(&mut self.columns.scope_attributes),
            finish(&mut self.columns.log_attributes),
            finish(&mut self.columns.event_name),
        ];
        self.columns.context.finish_into(&mut columns);
        Some(record_batch(Table::Logs.schema(self.with_phase), columns))
    }
}
