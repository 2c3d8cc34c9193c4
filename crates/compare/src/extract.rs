//! Records into items: a request decoded and split into its spans, log
//! records or data points, each with its resource and scope; on the
//! expected side after the replay's selection and the id remapping of
//! each pass.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, Metric, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tape_otlp::{IdRemap, Signal};

use crate::{Item, ItemBody, Origin, Point, PointValue, Scope};

/// The service of a resource without a `service.name` string.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// Decodes `payload`, a protobuf `Export*ServiceRequest` of `signal`, and
/// appends its items to `items`, each with `origin`. The items of one
/// resource and scope share one [`Scope`].
pub(crate) fn extract(
    signal: Signal,
    payload: &[u8],
    origin: Origin,
    items: &mut Vec<Item>,
) -> Result<(), prost::DecodeError> {
    match signal {
        Signal::Traces => {
            for resource_spans in ExportTraceServiceRequest::decode(payload)?.resource_spans {
                let resource = resource_spans.resource.unwrap_or_default();
                let service = service_of(&resource);
                for scope_spans in resource_spans.scope_spans {
                    let scope = scope_of(
                        &resource,
                        &resource_spans.schema_url,
                        scope_spans.scope,
                        scope_spans.schema_url,
                        &service,
                    );
                    let spans = scope_spans.spans.into_iter();
                    items.extend(spans.map(|span| Item {
                        origin,
                        scope: Arc::clone(&scope),
                        body: ItemBody::Span(span),
                    }));
                }
            }
        }
        Signal::Logs => {
            for resource_logs in ExportLogsServiceRequest::decode(payload)?.resource_logs {
                let resource = resource_logs.resource.unwrap_or_default();
                let service = service_of(&resource);
                for scope_logs in resource_logs.scope_logs {
                    let scope = scope_of(
                        &resource,
                        &resource_logs.schema_url,
                        scope_logs.scope,
                        scope_logs.schema_url,
                        &service,
                    );
                    let records = scope_logs.log_records.into_iter();
                    items.extend(records.map(|record| Item {
                        origin,
                        scope: Arc::clone(&scope),
                        body: ItemBody::Log(record),
                    }));
                }
            }
        }
        Signal::Metrics => {
            for resource_metrics in ExportMetricsServiceRequest::decode(payload)?.resource_metrics {
                let resource = resource_metrics.resource.unwrap_or_default();
                let service = service_of(&resource);
                for scope_metrics in resource_metrics.scope_metrics {
                    let scope = scope_of(
                        &resource,
                        &resource_metrics.schema_url,
                        scope_metrics.scope,
                        scope_metrics.schema_url,
                        &service,
                    );
                    for metric in scope_metrics.metrics {
                        push_points(metric, |point| {
                            items.push(Item { origin, scope: Arc::clone(&scope), body: ItemBody::Point(point) });
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// The `service.name` of a resource (its string value), else
/// [`UNKNOWN_SERVICE`].
pub(crate) fn service_of(resource: &Resource) -> String {
    service_name(&resource.attributes).unwrap_or(UNKNOWN_SERVICE).to_owned()
}

fn service_name(attributes: &[KeyValue]) -> Option<&str> {
    attributes.iter().find(|attribute| attribute.key == "service.name").and_then(|attribute| {
        match attribute.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(name) => Some(name.as_str()),
            _ => None,
        }
    })
}

fn scope_of(
    resource: &Resource,
    resource_schema_url: &str,
    scope: Option<InstrumentationScope>,
    scope_schema_url: String,
    service: &str,
) -> Arc<Scope> {
    Arc::new(Scope {
        resource: resource.clone(),
        resource_schema_url: resource_schema_url.to_owned(),
        scope: scope.unwrap_or_default(),
        scope_schema_url,
        service: service.to_owned(),
    })
}

/// Calls `push` with each data point of `metric`, with the metric's name,
/// description, unit and aggregation fields.
pub(crate) fn push_points(metric: Metric, mut push: impl FnMut(Point)) {
    let Metric { name, description, unit, data, .. } = metric;
    let point = |value| Point { name: name.clone(), description: description.clone(), unit: unit.clone(), value };
    match data {
        None => {}
        Some(metric::Data::Gauge(gauge)) => {
            gauge.data_points.into_iter().for_each(|data_point| push(point(PointValue::Gauge(data_point))));
        }
        Some(metric::Data::Sum(sum)) => {
            let (temporality, monotonic) = (sum.aggregation_temporality, sum.is_monotonic);
            for data_point in sum.data_points {
                push(point(PointValue::Sum { point: data_point, temporality, monotonic }));
            }
        }
        Some(metric::Data::Histogram(histogram)) => {
            let temporality = histogram.aggregation_temporality;
            for data_point in histogram.data_points {
                push(point(PointValue::Histogram { point: data_point, temporality }));
            }
        }
        Some(metric::Data::ExponentialHistogram(histogram)) => {
            let temporality = histogram.aggregation_temporality;
            for data_point in histogram.data_points {
                push(point(PointValue::ExponentialHistogram { point: data_point, temporality }));
            }
        }
        Some(metric::Data::Summary(summary)) => {
            summary.data_points.into_iter().for_each(|data_point| push(point(PointValue::Summary(data_point))));
        }
    }
}

/// Maps every trace and span id of `item` through `remap`, as the replay
/// did on the wire ([`tape_otlp::ExportRequest::remap_ids`]): span, parent
/// and link ids of spans, the ids of log records, the ids of exemplars.
pub(crate) fn remap_ids(item: &mut Item, remap: &IdRemap) {
    match &mut item.body {
        ItemBody::Span(span) => {
            remap.trace_id(&mut span.trace_id);
            remap.span_id(&mut span.span_id);
            remap.span_id(&mut span.parent_span_id);
            for link in &mut span.links {
                remap.trace_id(&mut link.trace_id);
                remap.span_id(&mut link.span_id);
            }
        }
        ItemBody::Log(record) => {
            remap.trace_id(&mut record.trace_id);
            remap.span_id(&mut record.span_id);
        }
        ItemBody::Point(point) => {
            let exemplars: &mut [Exemplar] = match &mut point.value {
                PointValue::Gauge(point) | PointValue::Sum { point, .. } => &mut point.exemplars,
                PointValue::Histogram { point, .. } => &mut point.exemplars,
                PointValue::ExponentialHistogram { point, .. } => &mut point.exemplars,
                PointValue::Summary(_) => &mut [],
            };
            for exemplar in exemplars {
                remap.trace_id(&mut exemplar.trace_id);
                remap.span_id(&mut exemplar.span_id);
            }
        }
    }
}

/// The items of one expected record for every pass: `base` (pass 0's
/// origin, the recorded ids) once per pass with that pass's `origin.pass`
/// and its id remapping applied, handed to `each` (which may stop it with
/// an error).
pub(crate) fn for_each_pass<E>(
    base: Vec<Item>,
    passes: u64,
    remap: impl Fn(u64) -> Option<IdRemap>,
    mut each: impl FnMut(Item) -> Result<(), E>,
) -> Result<(), E> {
    for pass in 0..passes {
        let remap = remap(pass);
        let mut place = |mut item: Item| {
            item.origin.pass = pass;
            if let Some(remap) = &remap {
                remap_ids(&mut item, remap);
            }
            each(item)
        };
        if pass + 1 == passes {
            // The last pass takes the decoded items themselves.
            return base.into_iter().try_for_each(place);
        }
        base.iter().cloned().try_for_each(&mut place)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tape_otlp::{ExportRequest, sample};

    use super::*;

    fn items(request: &ExportRequest) -> Vec<Item> {
        let mut items = Vec::new();
        extract(request.signal(), &request.encode_protobuf(), Origin { pass: 0, record: 3 }, &mut items)
            .expect("a valid request");
        items
    }

    #[test]
    fn every_item_of_a_request_comes_out_with_its_resource_and_scope() {
        for request in [
            ExportRequest::Traces(sample::traces("checkout", 6, 1_000)),
            ExportRequest::Metrics(sample::metrics("payment", 1_000)),
            ExportRequest::Logs(sample::logs("checkout", 4, 1_000)),
        ] {
            let items = items(&request);
            assert_eq!(items.len() as u64, request.item_count(), "{}", request.signal());
            assert!(items.iter().all(|item| item.signal() == request.signal() && item.origin.record == 3));
            assert!(items.iter().all(|item| Arc::ptr_eq(&item.scope, &items[0].scope)), "one resource, one scope");
            assert!(items[0].scope.service == "checkout" || items[0].scope.service == "payment");
        }
    }

    #[test]
    fn a_resource_without_a_service_name_string_is_unknown_service() {
        let mut request = sample::logs("checkout", 1, 0);
        let attributes = &mut request.resource_logs[0].resource.as_mut().unwrap().attributes;
        attributes.retain(|attribute| attribute.key != "service.name");
        assert_eq!(items(&ExportRequest::Logs(request.clone()))[0].scope.service, UNKNOWN_SERVICE);
        request.resource_logs[0].resource = None;
        assert_eq!(items(&ExportRequest::Logs(request))[0].scope.service, UNKNOWN_SERVICE);
    }

    #[test]
    fn passes_remap_ids_as_the_replay_does_on_the_wire() {
        let request = ExportRequest::Traces(sample::traces("checkout", 5, 0));
        let base = items(&request);
        let mut passes: Vec<Item> = Vec::new();
        let remap = |pass: u64| (pass > 0).then(|| IdRemap::new(42, pass));
        for_each_pass(base, 3, remap, |item| {
            passes.push(item);
            Ok::<(), ()>(())
        })
        .expect("no error");
        assert_eq!(passes.len(), 15);
        for pass in 0..3_u64 {
            let mut sent = request.clone();
            if let Some(remap) = remap(pass) {
                sent.remap_ids(&remap);
            }
            let mut expected = items(&sent);
            for item in &mut expected {
                item.origin.pass = pass;
            }
            let of_pass: Vec<Item> = passes.iter().filter(|item| item.origin.pass == pass).cloned().collect();
            assert_eq!(of_pass, expected, "pass {pass}");
        }
    }

    #[test]
    fn not_a_request_is_a_decode_error() {
        let mut items = Vec::new();
        assert!(extract(Signal::Traces, &[0x0a, 0xff], Origin::default(), &mut items).is_err());
        assert!(items.is_empty());
    }
}
