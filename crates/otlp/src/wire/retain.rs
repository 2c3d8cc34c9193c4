//! Dropping the resources of some services from a request, copying the
//! others byte for byte.

use super::{FieldAt, LEN, WireError, next_field};
use crate::Signal;

/// The resource attribute that names a service.
const SERVICE_NAME: &[u8] = b"service.name";

/// Keeps the top-level resource entries (`ResourceSpans`,
/// `ResourceMetrics` or `ResourceLogs`: field 1 of the protobuf
/// `Export*ServiceRequest` of `signal` in `bytes`) for which
/// `keep(service_name)` is true, where `service_name` is the string value
/// of the resource attribute `service.name` (the first attribute with that
/// key, as in `attributes.iter().find(..)` on the decoded resource), or
/// `None` when there is no such attribute or its value is not a string.
///
/// Returns `None` when every entry is kept, so that the caller keeps the
/// bytes it has; otherwise the new request: the kept entries and every
/// other top-level field, copied byte for byte in their order (empty when
/// the request holds nothing but resources and none is kept).
///
/// The top-level fields are checked, and in each entry the resource
/// attributes up to `service.name`; the string read must be UTF-8. What a
/// kept entry holds beyond that is copied unread. The three signals lay
/// their resources out alike, so `signal` only names what the bytes are.
pub fn retain_resources(
    signal: Signal,
    bytes: &[u8],
    mut keep: impl FnMut(Option<&str>) -> bool,
) -> Result<Option<Vec<u8>>, WireError> {
    let _ = signal;
    // The request being built once an entry is dropped, and how much of
    // `bytes` it accounts for.
    let mut retained: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut at = 0;
    loop {
        let entry_start = at;
        let Some(entry) = next_field(bytes, &mut at)? else { break };
        if entry.number != 1 {
            continue;
        }
        let (start, end) = entry.message()?;
        if keep(service_name(bytes, start, end)?) {
            continue;
        }
        let retained = retained.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
        retained.extend_from_slice(&bytes[copied..entry_start]);
        copied = at;
    }
    Ok(retained.map(|mut retained| {
        retained.extend_from_slice(&bytes[copied..]);
        retained
    }))
}

/// The `service.name` of the resource entry at `start..end` of `bytes`.
/// Its resource (field 1) may come in several copies, which a decode
/// merges: their attributes (field 1) are read in order.
fn service_name(bytes: &[u8], start: usize, end: usize) -> Result<Option<&str>, WireError> {
    let mut at = start;
    while let Some(resource) = next_field(&bytes[..end], &mut at)? {
        if resource.number != 1 {
            continue;
        }
        let (start, end) = resource.message()?;
        let mut at = start;
        while let Some(attribute) = next_field(&bytes[..end], &mut at)? {
            if attribute.number != 1 {
                continue;
            }
            let (start, end) = attribute.message()?;
            let attribute = Attribute::read(bytes, start, end)?;
            if attribute.key == SERVICE_NAME {
                let Some((start, end)) = attribute.string else { return Ok(None) };
                return std::str::from_utf8(&bytes[start..end])
                    .map(Some)
                    .map_err(|_| WireError { offset: start, message: "service.name is not valid UTF-8" });
            }
        }
    }
    Ok(None)
}

/// A `KeyValue`, as a decode reads it.
struct Attribute<'a> {
    /// The key (field 1; of several copies, the last).
    key: &'a [u8],
    /// Where the value is, when it is a string: field 1 of the `AnyValue`
    /// at field 2. Of several values (which a decode merges) and of
    /// several types of value, the last counts.
    string: Option<(usize, usize)>,
}

impl<'a> Attribute<'a> {
    fn read(bytes: &'a [u8], start: usize, end: usize) -> Result<Self, WireError> {
        let mut attribute = Attribute { key: &[], string: None };
        let mut at = start;
        while let Some(field) = next_field(&bytes[..end], &mut at)? {
            match field.number {
                1 => {
                    let (start, end) = string(field)?;
                    attribute.key = &bytes[start..end];
                }
                2 => {
                    let (start, end) = field.message()?;
                    let mut at = start;
                    while let Some(value) = next_field(&bytes[..end], &mut at)? {
                        match value.number {
                            1 => attribute.string = Some(string(value)?),
                            // Another type of value (AnyValue's oneof is 1 to 8).
                            2..=8 => attribute.string = None,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(attribute)
    }
}

/// The field must be a string (length-delimited).
fn string(field: FieldAt) -> Result<(usize, usize), WireError> {
    if field.wire_type == LEN {
        Ok((field.start, field.end))
    } else {
        Err(WireError { offset: field.start, message: "a string field has the wrong wire type" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
    use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
    use crate::proto::common::v1::any_value::Value;
    use crate::proto::logs::v1::ResourceLogs;
    use crate::proto::metrics::v1::ResourceMetrics;
    use crate::proto::resource::v1::Resource;
    use crate::proto::trace::v1::ResourceSpans;
    use crate::{ExportRequest, sample};

    /// The service name as read from a decoded resource.
    fn decoded_service_name(resource: Option<&Resource>) -> Option<&str> {
        let attribute = resource?.attributes.iter().find(|attribute| attribute.key == "service.name")?;
        match attribute.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) => Some(name),
            _ => None,
        }
    }

    fn with_attributes(attributes: Vec<crate::proto::common::v1::KeyValue>) -> Resource {
        Resource { attributes, ..Resource::default() }
    }

    /// Resources of services checkout, cart, none (no resource, a
    /// service.name that is not a string, no service.name), payment (the
    /// first of two service.name attributes) and checkout again.
    fn resources() -> Vec<Option<Resource>> {
        vec![
            Some(with_attributes(vec![sample::string_attribute("service.name", "checkout")])),
            Some(with_attributes(vec![
                sample::string_attribute("host.name", "a"),
                sample::string_attribute("service.name", "cart"),
            ])),
            None,
            Some(with_attributes(vec![sample::int_attribute("service.name", 5)])),
            Some(with_attributes(vec![sample::string_attribute("host.name", "b")])),
            Some(with_attributes(vec![
                sample::string_attribute("service.name", "payment"),
                sample::string_attribute("service.name", "other"),
            ])),
            Some(with_attributes(vec![sample::string_attribute("service.name", "checkout")])),
        ]
    }

    const NAMES: [Option<&str>; 7] =
        [Some("checkout"), Some("cart"), None, None, None, Some("payment"), Some("checkout")];

    /// A request of `signal` with one entry of sample items per resource.
    fn request(signal: Signal, resources: &[Option<Resource>]) -> ExportRequest {
        match signal {
            Signal::Traces => {
                let entry = sample::traces("x", 3, 0).resource_spans.remove(0);
                let resource_spans =
                    resources.iter().map(|resource| ResourceSpans { resource: resource.clone(), ..entry.clone() });
                ExportRequest::from(ExportTraceServiceRequest { resource_spans: resource_spans.collect() })
            }
            Signal::Metrics => {
                let entry = sample::metrics("x", 0).resource_metrics.remove(0);
                let resource_metrics =
                    resources.iter().map(|resource| ResourceMetrics { resource: resource.clone(), ..entry.clone() });
                ExportRequest::from(ExportMetricsServiceRequest { resource_metrics: resource_metrics.collect() })
            }
            Signal::Logs => {
                let entry = sample::logs("x", 2, 0).resource_logs.remove(0);
                let resource_logs =
                    resources.iter().map(|resource| ResourceLogs { resource: resource.clone(), ..entry.clone() });
                ExportRequest::from(ExportLogsServiceRequest { resource_logs: resource_logs.collect() })
            }
        }
    }

    /// The decoded request filtered as `retain_resources` filters bytes.
    fn decoded_retain(request: &ExportRequest, keep: impl Fn(Option<&str>) -> bool) -> ExportRequest {
        let mut request = request.clone();
        match &mut request {
            ExportRequest::Traces(request) => {
                request.resource_spans.retain(|entry| keep(decoded_service_name(entry.resource.as_ref())));
            }
            ExportRequest::Metrics(request) => {
                request.resource_metrics.retain(|entry| keep(decoded_service_name(entry.resource.as_ref())));
            }
            ExportRequest::Logs(request) => {
                request.resource_logs.retain(|entry| keep(decoded_service_name(entry.resource.as_ref())));
            }
        }
        request
    }

    #[test]
    fn keeps_the_resources_of_the_services_kept() {
        type Keep = fn(Option<&str>) -> bool;
        let filters: [(&str, Keep); 5] = [
            ("checkout", |name| name == Some("checkout")),
            ("not checkout", |name| name != Some("checkout")),
            ("unnamed", |name| name.is_none()),
            ("cart or payment", |name| matches!(name, Some("cart" | "payment"))),
            ("other", |name| name == Some("other")),
        ];
        for signal in Signal::ALL {
            let request = request(signal, &resources());
            let bytes = request.encode_protobuf();
            let mut seen = Vec::new();
            let all = retain_resources(signal, &bytes, |name| {
                seen.push(name.map(str::to_owned));
                true
            });
            assert_eq!(all, Ok(None), "{signal}: every resource kept");
            assert_eq!(seen, NAMES.map(|name| name.map(str::to_owned)), "{signal}");
            for (label, keep) in filters {
                let retained = retain_resources(signal, &bytes, keep).unwrap().expect("some are dropped");
                let expected = decoded_retain(&request, keep);
                assert_eq!(retained, expected.encode_protobuf(), "{signal}, {label}");
                assert_eq!(ExportRequest::decode_protobuf(signal, &retained).unwrap(), expected, "{signal}, {label}");
            }
            assert_eq!(retain_resources(signal, &bytes, |_| false), Ok(Some(Vec::new())), "{signal}");
            assert_eq!(retain_resources(signal, &[], |_| false), Ok(None), "{signal}");
        }
    }

    fn put(bytes: &mut Vec<u8>, key: u8, value: &[u8]) {
        bytes.push(key);
        bytes.push(u8::try_from(value.len()).unwrap());
        bytes.extend_from_slice(value);
    }

    /// A `KeyValue` (key 1, value 2) whose value is the `AnyValue` fields
    /// given.
    fn attribute(key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut attribute = Vec::new();
        put(&mut attribute, 0x0a, key);
        put(&mut attribute, 0x12, value);
        attribute
    }

    /// A resource entry whose resource is given in the copies given, each
    /// holding the attributes given.
    fn entry(resources: &[&[Vec<u8>]]) -> Vec<u8> {
        let mut entry = Vec::new();
        for attributes in resources {
            let mut resource = Vec::new();
            for attribute in *attributes {
                put(&mut resource, 0x0a, attribute);
            }
            put(&mut entry, 0x0a, &resource);
        }
        entry
    }

    fn string_value(value: &str) -> Vec<u8> {
        let mut any = Vec::new();
        put(&mut any, 0x0a, value.as_bytes());
        any
    }

    #[test]
    fn copies_the_other_top_level_fields_in_order() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0x28, 0x05]); // field 5, varint
        put(&mut bytes, 0x0a, &entry(&[&[attribute(b"service.name", &string_value("a"))]]));
        put(&mut bytes, 0x4a, b"unknown"); // field 9, bytes
        let dropped_at = bytes.len();
        put(&mut bytes, 0x0a, &entry(&[&[attribute(b"service.name", &string_value("b"))]]));
        let dropped_end = bytes.len();
        bytes.extend_from_slice(&[0x19, 1, 2, 3, 4, 5, 6, 7, 8]); // field 3, fixed64
        for signal in Signal::ALL {
            let retained = retain_resources(signal, &bytes, |name| name == Some("a")).unwrap().unwrap();
            assert_eq!(retained, [&bytes[..dropped_at], &bytes[dropped_end..]].concat(), "{signal}");
            let nothing = retain_resources(signal, &bytes, |_| false).unwrap().unwrap();
            assert_eq!(
                nothing,
                [&[0x28, 0x05][..], &bytes[dropped_at - 9..dropped_at], &bytes[dropped_end..]].concat()
            );
        }
    }

    #[test]
    fn reads_the_service_name_a_decode_reads() {
        let int_value = [0x18, 0x05]; // AnyValue.int_value = 5
        let cases: [(Vec<u8>, Option<&str>); 6] = [
            // The resource in two copies: a decode merges their attributes.
            (
                entry(&[
                    &[attribute(b"host.name", &string_value("h"))],
                    &[attribute(b"service.name", &string_value("late"))],
                ]),
                Some("late"),
            ),
            // The value in two copies, a string last: a decode merges them.
            (
                entry(&[&[attribute(b"service.name", &[&int_value[..], &string_value("second")].concat())]]),
                Some("second"),
            ),
            // A string, then another type of value: not a string.
            (entry(&[&[attribute(b"service.name", &[string_value("first"), int_value.to_vec()].concat())]]), None),
            // The key in two copies: the last counts.
            (entry(&[&[[attribute(b"service.name", &string_value("x")), attribute(b"", &[])].concat()]]), None),
            // ... and an empty value merges into the one before.
            (
                entry(&[&[[attribute(b"host", &string_value("x")), attribute(b"service.name", &[])].concat()]]),
                Some("x"),
            ),
            (entry(&[]), None),
        ];
        for (entry, expected) in cases {
            let mut bytes = Vec::new();
            put(&mut bytes, 0x0a, &entry);
            let mut seen = Vec::new();
            assert_eq!(
                retain_resources(Signal::Logs, &bytes, |name| {
                    seen.push(name.map(str::to_owned));
                    true
                }),
                Ok(None)
            );
            let decoded = ExportRequest::decode_protobuf(Signal::Logs, &bytes).unwrap();
            let ExportRequest::Logs(decoded) = decoded else { unreachable!() };
            let decoded = decoded_service_name(decoded.resource_logs[0].resource.as_ref()).map(str::to_owned);
            assert_eq!(seen, vec![decoded.clone()]);
            assert_eq!(decoded.as_deref(), expected);
        }
    }

    #[test]
    fn malformed_bytes_are_refused_with_their_offset() {
        let mut bytes = Vec::new();
        put(&mut bytes, 0x0a, &entry(&[&[attribute(b"service.name", &[0x0a, 0x02, 0xff, 0xfe])]]));
        assert_eq!(
            retain_resources(Signal::Traces, &bytes, |_| true),
            Err(WireError { offset: 10 + 12 + 2, message: "service.name is not valid UTF-8" })
        );
        let mut bytes = Vec::new();
        put(&mut bytes, 0x0a, &entry(&[&[vec![0x08, 0x01]]]));
        assert_eq!(
            retain_resources(Signal::Traces, &bytes, |_| true).unwrap_err().message,
            "a string field has the wrong wire type"
        );
        assert_eq!(
            retain_resources(Signal::Metrics, &[0x08, 0x01], |_| true).unwrap_err().message,
            "a message field has the wrong wire type"
        );
        for signal in Signal::ALL {
            let bytes = request(signal, &resources()).encode_protobuf();
            for cut in 0..bytes.len() {
                let retained = retain_resources(signal, &bytes[..cut], |name| name == Some("cart"));
                let decoded = ExportRequest::decode_protobuf(signal, &bytes[..cut]);
                assert_eq!(retained.is_err(), decoded.is_err(), "{signal}, cut at {cut}");
                if let (Ok(retained), Ok(decoded)) = (retained, decoded) {
                    let expected = decoded_retain(&decoded, |name| name == Some("cart"));
                    let retained =
                        retained.map_or(decoded, |bytes| ExportRequest::decode_protobuf(signal, &bytes).unwrap());
                    assert_eq!(retained, expected, "{signal}, cut at {cut}");
                }
            }
        }
    }
}
