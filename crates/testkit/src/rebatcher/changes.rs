//! What a rebatcher loses and changes on purpose, and the counting of it.

use std::collections::HashMap;

use tape_otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use tape_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use tape_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use tape_otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use tape_otlp::proto::resource::v1::Resource;

use super::RebatchCounts;
use tape_otlp::Signal;

/// The changes a rebatcher makes (none by default).
#[derive(Debug, Clone, Default)]
pub(super) struct Changes {
    /// Spans dropped on their own, in percent, by a hash of the span id.
    pub drop_span_percent: u8,
    /// Traces dropped whole, in percent, by a hash of the trace id.
    pub drop_trace_percent: u8,
    /// A resource attribute set on every resource.
    pub resource_attribute: Option<(String, String)>,
    /// A span attribute deleted from every span.
    pub deleted_span_attribute: Option<String>,
}

/// Salts of the hashes, so that the spans dropped singly do not follow
/// the traces dropped whole.
const SPAN_SALT: u8 = 0x5a;
const TRACE_SALT: u8 = 0xc3;

impl Changes {
    /// Drops and changes spans of `request` and counts it, with each
    /// span's fate in `traces`.
    pub fn apply_to_traces(
        &self,
        request: &mut ExportTraceServiceRequest,
        counts: &mut RebatchCounts,
        traces: &mut TraceTally,
    ) {
        for resource in &mut request.resource_spans {
            self.change_resource(&mut resource.resource, Signal::Traces, counts);
            for scope in &mut resource.scope_spans {
                scope.spans.retain_mut(|span| {
                    let fate = traces.0.entry(span.trace_id.clone()).or_default();
                    fate.spans += 1;
                    if fate.spans == 1 {
                        fate.dropped_whole = chosen(TRACE_SALT, &span.trace_id, self.drop_trace_percent);
                    }
                    if fate.dropped_whole {
                        counts.spans_dropped_with_traces += 1;
                        return false;
                    }
                    if chosen(SPAN_SALT, &span.span_id, self.drop_span_percent) {
                        counts.spans_dropped_singly += 1;
                        return false;
                    }
                    fate.kept += 1;
                    if let Some(key) = &self.deleted_span_attribute {
                        let before = span.attributes.len();
                        span.attributes.retain(|attribute| &attribute.key != key);
                        counts.spans_changed += u64::from(span.attributes.len() != before);
                    }
                    true
                });
            }
        }
    }

    /// Changes the resources of `request` and counts it.
    pub fn apply_to_metrics(&self, request: &mut ExportMetricsServiceRequest, counts: &mut RebatchCounts) {
        for resource in &mut request.resource_metrics {
            self.change_resource(&mut resource.resource, Signal::Metrics, counts);
        }
    }

    /// Changes the resources of `request` and counts it.
    pub fn apply_to_logs(&self, request: &mut ExportLogsServiceRequest, counts: &mut RebatchCounts) {
        for resource in &mut request.resource_logs {
            self.change_resource(&mut resource.resource, Signal::Logs, counts);
        }
    }

    /// Sets the resource attribute, when there is one to set.
    fn change_resource(&self, resource: &mut Option<Resource>, signal: Signal, counts: &mut RebatchCounts) {
        let Some((key, value)) = &self.resource_attribute else { return };
        let value = Some(AnyValue { value: Some(any_value::Value::StringValue(value.clone())) });
        let attributes = &mut resource.get_or_insert_with(Resource::default).attributes;
        match attributes.iter_mut().find(|attribute| &attribute.key == key) {
            Some(attribute) => attribute.value = value,
            None => attributes.push(KeyValue { key: key.clone(), value, ..KeyValue::default() }),
        }
        counts.resources_changed.add(signal, 1);
    }
}

/// Each trace id's fate so far.
#[derive(Debug, Default)]
pub(super) struct TraceTally(HashMap<Vec<u8>, TraceFate>);

#[derive(Debug, Default)]
struct TraceFate {
    /// Spans received.
    spans: u64,
    /// Spans kept (to be forwarded).
    kept: u64,
    /// Whether the trace is dropped whole.
    dropped_whole: bool,
}

impl TraceTally {
    /// Sets the trace counts of `counts`.
    pub fn count_into(&self, counts: &mut RebatchCounts) {
        let fates = self.0.values();
        counts.traces_received = self.0.len() as u64;
        counts.traces_dropped_whole = fates.clone().filter(|fate| fate.dropped_whole).count() as u64;
        counts.traces_dropped = fates.clone().filter(|fate| fate.kept == 0).count() as u64;
        counts.traces_incomplete = fates.filter(|fate| fate.kept > 0 && fate.kept < fate.spans).count() as u64;
    }
}

/// Whether `id` falls in the `percent` % chosen by a hash (FNV-1a, salted
/// with `salt`): the same ids every time.
fn chosen(salt: u8, id: &[u8], percent: u8) -> bool {
    if percent == 0 {
        return false;
    }
    let hash = std::iter::once(&salt)
        .chain(id)
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3));
    hash % 100 < u64::from(percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_the_share_asked_for_is_chosen_and_always_the_same() {
        let ids: Vec<Vec<u8>> = (0..10_000).map(tape_otlp::sample::span_id).collect();
        let chosen_ids = |percent| ids.iter().filter(|id| chosen(SPAN_SALT, id, percent)).count();
        assert_eq!(chosen_ids(0), 0);
        assert_eq!(chosen_ids(100), ids.len());
        let tenth = chosen_ids(10);
        assert!((800..1_200).contains(&tenth), "{tenth} of 10000");
        assert_eq!(chosen_ids(10), tenth);
    }
}
