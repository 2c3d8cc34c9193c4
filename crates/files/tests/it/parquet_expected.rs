//! The rows a request should give, worked out from the decoded OTLP field
//! by field, independently of the row builders.

// Integer values become doubles as the exporter's float64(v) makes them.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tape_files::parquet::{RowContext, Table};
use tape_otlp::ExportRequest;
use tape_otlp::proto::common::v1::any_value::Value;
use tape_otlp::proto::common::v1::{AnyValue, KeyValue};
use tape_otlp::proto::metrics::v1::{Exemplar, exemplar, metric, number_data_point};
use tape_otlp::proto::resource::v1::Resource;

use crate::parquet_tables::{Cell, Row};

fn text(value: &str) -> Cell {
    Cell::Str(value.to_owned())
}

fn int(value: impl Into<i128>) -> Cell {
    Cell::Int(value.into())
}

fn float(value: f64) -> Cell {
    Cell::Float(value.to_bits())
}

fn id(bytes: &[u8]) -> Cell {
    if bytes.iter().all(|byte| *byte == 0) { text("") } else { Cell::Str(hex::encode(bytes)) }
}

/// A double as Go's `float64AsString`, for the plain-notation values the
/// fixtures hold (the unit tests cover the rest).
fn number(value: f64) -> String {
    if value == 0.0 || (1e-6..1e21).contains(&value.abs()) {
        format!("{value}")
    } else if value.abs() >= 1e21 {
        format!("{value:e}").replace('e', "e+")
    } else {
        format!("{value:e}")
    }
}

fn json(value: Option<&Value>) -> serde_json::Value {
    match value {
        None | Some(Value::StringValueStrindex(_)) => serde_json::Value::Null,
        Some(Value::StringValue(text)) => text.clone().into(),
        Some(Value::BoolValue(flag)) => (*flag).into(),
        Some(Value::IntValue(number)) => (*number).into(),
        Some(Value::DoubleValue(number)) => {
            assert!(number.fract() != 0.0, "fixtures keep whole doubles out of JSON (serde_json writes 2.0)");
            (*number).into()
        }
        Some(Value::BytesValue(bytes)) => STANDARD.encode(bytes).into(),
        Some(Value::ArrayValue(array)) => array.values.iter().map(|item| json(item.value.as_ref())).collect(),
        Some(Value::KvlistValue(list)) => serde_json::Value::Object(
            list.values
                .iter()
                .map(|pair| (pair.key.clone(), json(pair.value.as_ref().and_then(|v| v.value.as_ref()))))
                .collect(),
        ),
    }
}

/// pdata's `AsString`.
fn render(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        None | Some(Value::StringValueStrindex(_)) => String::new(),
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::DoubleValue(value)) => number(*value),
        Some(Value::BytesValue(bytes)) => STANDARD.encode(bytes),
        Some(nested) => json(Some(nested)).to_string(),
    }
}

fn map(attributes: &[KeyValue]) -> Cell {
    let mut entries = BTreeMap::new();
    for pair in attributes {
        entries.insert(pair.key.clone(), render(pair.value.as_ref()));
    }
    Cell::Map(entries.into_iter().collect())
}

fn service(resource: Option<&Resource>) -> Cell {
    let attributes = resource.map_or(&[][..], |resource| &resource.attributes);
    match attributes
        .iter()
        .rev()
        .find(|pair| pair.key == "service.name")
        .and_then(|pair| pair.value.as_ref()?.value.as_ref())
    {
        Some(Value::StringValue(name)) => text(name),
        _ => text(""),
    }
}

fn context(row: &mut Row, context: &RowContext<'_>, with_phase: bool) {
    row.push(text(context.session));
    row.push(int(context.receive_time));
    if with_phase {
        row.push(text(context.phase.expect("a phase")));
    }
}

fn list<T>(items: &[T], f: impl Fn(&T) -> Cell) -> Cell {
    Cell::List(items.iter().map(f).collect())
}

/// The rows each table should hold for `request`.
pub fn rows(request: &ExportRequest, row_context: &RowContext<'_>, with_phase: bool) -> BTreeMap<Table, Vec<Row>> {
    let mut tables: BTreeMap<Table, Vec<Row>> = BTreeMap::new();
    match request {
        ExportRequest::Traces(request) => {
            for resource_spans in &request.resource_spans {
                let resource = resource_spans.resource.as_ref();
                for scope_spans in &resource_spans.scope_spans {
                    let scope = scope_spans.scope.clone().unwrap_or_default();
                    for span in &scope_spans.spans {
                        let kinds = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"];
                        let status = span.status.clone().unwrap_or_default();
                        let codes = ["Unset", "Ok", "Error"];
                        let mut row = vec![
                            int(span.start_time_unix_nano),
                            id(&span.trace_id),
                            id(&span.span_id),
                            id(&span.parent_span_id),
                            text(&span.trace_state),
                            text(&span.name),
                            usize::try_from(span.kind)
                                .ok()
                                .and_then(|kind| kinds.get(kind))
                                .map_or_else(|| Cell::Str(span.kind.to_string()), |kind| text(kind)),
                            service(resource),
                            map(resource.map_or(&[][..], |resource| &resource.attributes)),
                            text(&scope.name),
                            text(&scope.version),
                            map(&span.attributes),
                            int(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano)),
                            usize::try_from(status.code)
                                .ok()
                                .and_then(|code| codes.get(code))
                                .map_or_else(|| Cell::Str(status.code.to_string()), |code| text(code)),
                            text(&status.message),
                            list(&span.events, |event| int(event.time_unix_nano)),
                            list(&span.events, |event| text(&event.name)),
                            list(&span.events, |event| map(&event.attributes)),
                            list(&span.links, |link| id(&link.trace_id)),
                            list(&span.links, |link| id(&link.span_id)),
                            list(&span.links, |link| text(&link.trace_state)),
                            list(&span.links, |link| map(&link.attributes)),
                        ];
                        context(&mut row, row_context, with_phase);
                        tables.entry(Table::Traces).or_default().push(row);
                    }
                }
            }
        }
        ExportRequest::Logs(request) => {
            for resource_logs in &request.resource_logs {
                let resource = resource_logs.resource.as_ref();
                for scope_logs in &resource_logs.scope_logs {
                    let scope = scope_logs.scope.clone().unwrap_or_default();
                    for record in &scope_logs.log_records {
                        let time = if record.time_unix_nano == 0 {
                            record.observed_time_unix_nano
                        } else {
                            record.time_unix_nano
                        };
                        let mut row = vec![
                            int(time),
                            id(&record.trace_id),
                            id(&record.span_id),
                            int(record.flags & 0xff),
                            text(&record.severity_text),
                            int(record.severity_number & 0xff),
                            service(resource),
                            Cell::Str(render(record.body.as_ref())),
                            text(&resource_logs.schema_url),
                            map(resource.map_or(&[][..], |resource| &resource.attributes)),
                            text(&scope_logs.schema_url),
                            text(&scope.name),
                            text(&scope.version),
                            map(&scope.attributes),
                            map(&record.attributes),
                            text(&record.event_name),
                        ];
                        context(&mut row, row_context, with_phase);
                        tables.entry(Table::Logs).or_default().push(row);
                    }
                }
            }
        }
        ExportRequest::Metrics(request) => {
            for resource_metrics in &request.resource_metrics {
                let resource = resource_metrics.resource.as_ref();
                for scope_metrics in &resource_metrics.scope_metrics {
                    let scope = scope_metrics.scope.clone().unwrap_or_default();
                    for metric in &scope_metrics.metrics {
                        let common = |attributes: &[KeyValue], start: u64, time: u64| {
                            vec![
                                map(resource.map_or(&[][..], |resource| &resource.attributes)),
                                text(&resource_metrics.schema_url),
                                text(&scope.name),
                                text(&scope.version),
                                map(&scope.attributes),
                                int(scope.dropped_attributes_count),
                                text(&scope_metrics.schema_url),
                                service(resource),
                                text(&metric.name),
                                text(&metric.description),
                                text(&metric.unit),
                                map(attributes),
                                int(start),
                                int(time),
                            ]
                        };
                        metric_rows(metric.data.as_ref(), &common, &mut tables, row_context, with_phase);
                    }
                }
            }
        }
    }
    tables
}

fn exemplars(row: &mut Row, exemplars: &[Exemplar]) {
    row.push(list(exemplars, |exemplar| map(&exemplar.filtered_attributes)));
    row.push(list(exemplars, |exemplar| int(exemplar.time_unix_nano)));
    row.push(list(exemplars, |exemplar| {
        float(match exemplar.value {
            Some(exemplar::Value::AsDouble(value)) => value,
            Some(exemplar::Value::AsInt(value)) => value as f64,
            None => 0.0,
        })
    }));
    row.push(list(exemplars, |exemplar| id(&exemplar.span_id)));
    row.push(list(exemplars, |exemplar| id(&exemplar.trace_id)));
}

fn optional(value: Option<f64>) -> Cell {
    value.map_or(Cell::Null, float)
}

fn metric_rows(
    data: Option<&metric::Data>,
    common: &dyn Fn(&[KeyValue], u64, u64) -> Row,
    tables: &mut BTreeMap<Table, Vec<Row>>,
    row_context: &RowContext<'_>,
    with_phase: bool,
) {
    let mut push = |table: Table, mut row: Row| {
        context(&mut row, row_context, with_phase);
        tables.entry(table).or_default().push(row);
    };
    match data {
        None => {}
        Some(metric::Data::Gauge(gauge)) => {
            for point in &gauge.data_points {
                let mut row = common(&point.attributes, point.start_time_unix_nano, point.time_unix_nano);
                row.push(float(number_value(point.value)));
                row.push(int(point.flags));
                exemplars(&mut row, &point.exemplars);
                push(Table::MetricsGauge, row);
            }
        }
        Some(metric::Data::Sum(sum)) => {
            for point in &sum.data_points {
                let mut row = common(&point.attributes, point.start_time_unix_nano, point.time_unix_nano);
                row.push(float(number_value(point.value)));
                row.push(int(point.flags));
                exemplars(&mut row, &point.exemplars);
                row.push(int(sum.aggregation_temporality));
                row.push(Cell::Bool(sum.is_monotonic));
                push(Table::MetricsSum, row);
            }
        }
        Some(metric::Data::Histogram(histogram)) => {
            for point in &histogram.data_points {
                let mut row = common(&point.attributes, point.start_time_unix_nano, point.time_unix_nano);
                row.push(int(point.count));
                row.push(float(point.sum.unwrap_or(0.0)));
                row.push(list(&point.bucket_counts, |count| int(*count)));
                row.push(list(&point.explicit_bounds, |bound| float(*bound)));
                exemplars(&mut row, &point.exemplars);
                row.extend([int(point.flags), optional(point.min), optional(point.max)]);
                row.push(int(histogram.aggregation_temporality));
                push(Table::MetricsHistogram, row);
            }
        }
        Some(metric::Data::ExponentialHistogram(histogram)) => {
            for point in &histogram.data_points {
                let mut row = common(&point.attributes, point.start_time_unix_nano, point.time_unix_nano);
                row.extend([
                    int(point.count),
                    float(point.sum.unwrap_or(0.0)),
                    int(point.scale),
                    int(point.zero_count),
                ]);
                for buckets in [&point.positive, &point.negative] {
                    let buckets = buckets.clone().unwrap_or_default();
                    row.push(int(buckets.offset));
                    row.push(list(&buckets.bucket_counts, |count| int(*count)));
                }
                exemplars(&mut row, &point.exemplars);
                row.extend([int(point.flags), optional(point.min), optional(point.max)]);
                row.push(int(histogram.aggregation_temporality));
                push(Table::MetricsExponentialHistogram, row);
            }
        }
        Some(metric::Data::Summary(summary)) => {
            for point in &summary.data_points {
                let mut row = common(&point.attributes, point.start_time_unix_nano, point.time_unix_nano);
                row.extend([int(point.count), float(point.sum)]);
                row.push(list(&point.quantile_values, |quantile| float(quantile.quantile)));
                row.push(list(&point.quantile_values, |quantile| float(quantile.value)));
                row.push(int(point.flags));
                push(Table::MetricsSummary, row);
            }
        }
    }
}

fn number_value(value: Option<number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(value)) => value,
        Some(number_data_point::Value::AsInt(value)) => value as f64,
        None => 0.0,
    }
}
