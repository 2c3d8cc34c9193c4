//! Rows of the `traces` table: one per span, as the Collector's ClickHouse
//! exporter writes `otel_traces`.

use std::fmt::Write as _;

use arrow_array::builder::{ListBuilder, StringBuilder, TimestampNanosecondBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::DataType;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::attributes::{
    AttributesBuilder, ContextColumns, RenderedAttributes, append_attributes, append_id, attributes_builder, finish,
    list_builder, nanos, record_batch, service_name, timestamp_builder,
};
use super::{RowContext, Table, schema};

mod wire;

use self::wire::Invalid;

/// The rows of the `traces` table being built.
pub(super) struct TracesRows {
    with_phase: bool,
    rows: usize,
    columns: Box<Columns>,
}

/// The builders of the table's columns.
struct Columns {
    timestamp: TimestampNanosecondBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    parent_span_id: StringBuilder,
    trace_state: StringBuilder,
    span_name: StringBuilder,
    span_kind: StringBuilder,
    service_name: StringBuilder,
    resource_attributes: AttributesBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    span_attributes: AttributesBuilder,
    duration: UInt64Builder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    events_timestamp: ListBuilder<TimestampNanosecondBuilder>,
    events_name: ListBuilder<StringBuilder>,
    events_attributes: ListBuilder<AttributesBuilder>,
    links_trace_id: ListBuilder<StringBuilder>,
    links_span_id: ListBuilder<StringBuilder>,
    links_trace_state: ListBuilder<StringBuilder>,
    links_attributes: ListBuilder<AttributesBuilder>,
    context: ContextColumns,
}

/// A span's scalar fields, wherever they were read from.
struct SpanRow<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    trace_state: &'a str,
    name: &'a str,
    kind: i32,
    start: u64,
    end: u64,
    status_code: i32,
    status_message: &'a str,
}

/// What the spans of one scope share.
struct Shared<'a> {
    service: &'a str,
    resource: &'a RenderedAttributes,
    scope_name: &'a str,
    scope_version: &'a str,
}

impl TracesRows {
    pub(super) fn new(with_phase: bool) -> Self {
        let columns = Columns {
            timestamp: timestamp_builder(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            parent_span_id: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            span_name: StringBuilder::new(),
            span_kind: StringBuilder::new(),
            service_name: StringBuilder::new(),
            resource_attributes: attributes_builder(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            span_attributes: attributes_builder(),
            duration: UInt64Builder::new(),
            status_code: StringBuilder::new(),
            status_message: StringBuilder::new(),
            events_timestamp: list_builder(timestamp_builder(), schema::timestamp()),
            events_name: list_builder(StringBuilder::new(), DataType::Utf8),
            events_attributes: list_builder(attributes_builder(), schema::attributes()),
            links_trace_id: list_builder(StringBuilder::new(), DataType::Utf8),
            links_span_id: list_builder(StringBuilder::new(), DataType::Utf8),
            links_trace_state: list_builder(StringBuilder::new(), DataType::Utf8),
            links_attributes: list_builder(attributes_builder(), schema::attributes()),
            context: ContextColumns::new(with_phase),
        };
        TracesRows { with_phase, rows: 0, columns: Box::new(columns) }
    }

    pub(super) fn append(&mut self, request: &ExportTraceServiceRequest, context: &RowContext<'_>) -> u64 {
        let before = self.rows;
        for resource_spans in &request.resource_spans {
            let attributes = resource_spans.resource.as_ref().map_or(&[][..], |resource| &resource.attributes);
            let resource = RenderedAttributes::new(attributes);
            for scope_spans in &resource_spans.scope_spans {
                let scope = scope_spans.scope.as_ref();
                let shared = Shared {
                    service: service_name(attributes),
                    resource: &resource,
                    scope_name: scope.map_or("", |scope| &scope.name),
                    scope_version: scope.map_or("", |scope| &scope.version),
                };
                for span in &scope_spans.spans {
                    self.append_span(span, &shared);
                }
            }
        }
        let appended = self.rows - before;
        self.columns.context.append_n(context, appended);
        appended as u64
    }

    fn append_span(&mut self, span: &Span, shared: &Shared<'_>) {
        let (status_code, status_message) =
            span.status.as_ref().map_or((0, ""), |status| (status.code, status.message.as_str()));
        let row = SpanRow {
            trace_id: &span.trace_id,
            span_id: &span.span_id,
            parent_span_id: &span.parent_span_id,
            trace_state: &span.trace_state,
            name: &span.name,
            kind: span.kind,
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
            status_code,
            status_message,
        };
        append_attributes(&mut self.columns.span_attributes, &span.attributes);
        for event in &span.events {
            self.columns.events_timestamp.values().append_value(nanos(event.time_unix_nano));
            self.columns.events_name.values().append_value(&event.name);
            append_attributes(self.columns.events_attributes.values(), &event.attributes);
        }
        for link in &span.links {
            append_id(self.columns.links_trace_id.values(), &link.trace_id);
            append_id(self.columns.links_span_id.values(), &link.span_id);
            self.columns.links_trace_state.values().append_value(&link.trace_state);
            append_attributes(self.columns.links_attributes.values(), &link.attributes);
        }
        self.close_span(&row, shared);
    }

    /// Appends the span's columns besides its attributes, events and
    /// links (appended before), and closes its event and link lists.
    fn close_span(&mut self, span: &SpanRow<'_>, shared: &Shared<'_>) {
        self.columns.timestamp.append_value(nanos(span.start));
        append_id(&mut self.columns.trace_id, span.trace_id);
        append_id(&mut self.columns.span_id, span.span_id);
        append_id(&mut self.columns.parent_span_id, span.parent_span_id);
        self.columns.trace_state.append_value(span.trace_state);
        self.columns.span_name.append_value(span.name);
        if let Some(kind) = span_kind(span.kind) {
            self.columns.span_kind.append_value(kind);
        } else {
            let _ = write!(self.columns.span_kind, "{}", span.kind);
            self.columns.span_kind.append_value("");
        }
        self.columns.service_name.append_value(shared.service);
        shared.resource.append_to(&mut self.columns.resource_attributes);
        self.columns.scope_name.append_value(shared.scope_name);
        self.columns.scope_version.append_value(shared.scope_version);
        self.columns.duration.append_value(span.end.saturating_sub(span.start));
        let code = span.status_code;
        if let Some(code) = status_code(code) {
            self.columns.status_code.append_value(code);
        } else {
            let _ = write!(self.columns.status_code, "{code}");
            self.columns.status_code.append_value("");
        }
        self.columns.status_message.append_value(span.status_message);
        self.columns.events_timestamp.append(true);
        self.columns.events_name.append(true);
        self.columns.events_attributes.append(true);
        self.columns.links_trace_id.append(true);
        self.columns.links_span_id.append(true);
        self.columns.links_trace_state.append(true);
        self.columns.links_attributes.append(true);
        self.rows += 1;
    }

    /// Appends the rows of an `ExportTraceServiceRequest` read straight
    /// from its protobuf bytes, the same rows [`TracesRows::append`]
    /// appends for the decoded request. On [`Invalid`] (bytes the walker
    /// does not read exactly as prost does, valid or not) nothing is
    /// appended, and the caller decodes the request with prost instead.
    pub(super) fn append_encoded(&mut self, payload: &[u8], context: &RowContext<'_>) -> Result<u64, Invalid> {
        wire::walk(payload, None)?;
        let before = self.rows;
        // The same walk over the same bytes: it cannot fail now.
        wire::walk(payload, Some(self)).expect("the payload was walked once without an error");
        let appended = self.rows - before;
        self.columns.context.append_n(context, appended);
        Ok(appended as u64)
    }

    pub(super) fn buffered(&self, table: Table) -> usize {
        if table == Table::Traces { self.rows } else { 0 }
    }

    pub(super) fn take(&mut self, table: Table) -> Option<RecordBatch> {
        if table != Table::Traces || self.rows == 0 {
            return None;
        }
        self.rows = 0;
        let mut columns: Vec<ArrayRef> = vec![
            finish(&mut self.columns.timestamp),
            finish(&mut self.columns.trace_id),
            finish(&mut self.columns.span_id),
            finish(&mut self.columns.parent_span_id),
            finish(&mut self.columns.trace_state),
            finish(&mut self.columns.span_name),
            finish(&mut self.columns.span_kind),
            finish(&mut self.columns.service_name),
            finish(&mut self.columns.resource_attributes),
            finish(&mut self.columns.scope_name),
            finish(&mut self.columns.scope_version),
            finish(&mut self.columns.span_attributes),
            finish(&mut self.columns.duration),
            finish(&mut self.columns.status_code),
            finish(&mut self.columns.status_message),
            finish(&mut self.columns.events_timestamp),
            finish(&mut self.columns.events_name),
            finish(&mut self.columns.events_attributes),
            finish(&mut self.columns.links_trace_id),
            finish(&mut self.columns.links_span_id),
            finish(&mut self.columns.links_trace_state),
            finish(&mut self.columns.links_attributes),
        ];
        self.columns.context.finish_into(&mut columns);
        Some(record_batch(Table::Traces.schema(self.with_phase), columns))
    }
}

/// pdata's `SpanKind.String()`; `None` for a number OTLP does not define.
fn span_kind(kind: i32) -> Option<&'static str> {
    Some(match kind {
        0 => "Unspecified",
        1 => "Internal",
        2 => "Server",
        3 => "Client",
        4 => "Producer",
        5 => "Consumer",
        _ => return None,
    })
}

/// pdata's `StatusCode.String()`; `None` for a number OTLP does not define.
fn status_code(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "Unset",
        1 => "Ok",
        2 => "Error",
        _ => return None,
    })
}
