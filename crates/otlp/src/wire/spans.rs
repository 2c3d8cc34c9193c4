//! Spans and error spans of a trace request, counted on the wire.

use std::cell::Cell;

use super::{Field, VARINT, WireError, for_each_field, message, next_field, varint, walk, well_formed};

/// `Span.status` (a `Status` message).
const SPAN_STATUS: u64 = 15;
/// `Status.code` (a `StatusCode` enum).
const STATUS_CODE: u64 = 3;
/// `STATUS_CODE_ERROR`.
const STATUS_CODE_ERROR: u64 = 2;

/// The spans of a trace request, and how many of them have the status
/// code `STATUS_CODE_ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanCount {
    /// Every span, as [`count_items`](super::count_items) counts them.
    pub spans: u64,
    /// The spans whose status code is `STATUS_CODE_ERROR` (2).
    pub error_spans: u64,
}

/// Counts the spans of a protobuf `ExportTraceServiceRequest` and those
/// with an error status, checking what [`count_items`](super::count_items)
/// checks and, in every span, that its status is a well-formed message
/// whose code is a varint. When a span holds its status more than once,
/// the messages merge as protobuf merges them: the last code wins.
///
/// ```
/// use tape_otlp::{ExportRequest, sample, wire};
///
/// // The sample marks every tenth span as failed.
/// let bytes = ExportRequest::Traces(sample::traces("checkout", 20, 0)).encode_protobuf();
/// let count = wire::count_spans(&bytes)?;
/// assert_eq!((count.spans, count.error_spans), (20, 2));
/// # Ok::<(), wire::WireError>(())
/// ```
///
/// # Errors
/// The bytes are not a trace request.
pub fn count_spans(bytes: &[u8]) -> Result<SpanCount, WireError> {
    let error_spans = Cell::new(0);
    // ScopeSpans.scope is field 1, ScopeSpans.spans field 2.
    let spans = walk(bytes, &|scope, base| {
        let mut count = 0;
        for_each_field(scope, base, |field| {
            match field.number {
                1 => well_formed(message(&field)?, field.offset)?,
                2 => {
                    if span_failed(&field)? {
                        error_spans.set(error_spans.get() + 1);
                    }
                    count += 1;
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(count)
    })?;
    Ok(SpanCount { spans, error_spans: error_spans.get() })
}

/// Whether the span in `field` has the status code `STATUS_CODE_ERROR`;
/// checks that the span is well formed on the way.
fn span_failed(field: &Field<'_>) -> Result<bool, WireError> {
    let mut code = 0;
    for_each_field(message(field)?, field.offset, |span_field| {
        if span_field.number == SPAN_STATUS {
            // Every occurrence merges into one status: the last code wins.
            if let Some(last) = status_code(message(&span_field)?, span_field.offset)? {
                code = last;
            }
        }
        Ok(())
    })?;
    Ok(code == STATUS_CODE_ERROR)
}

/// The last `Status.code` in the status message `bytes` (which starts at
/// `base` in the request), which must be a varint; `None` when it has none.
fn status_code(bytes: &[u8], base: usize) -> Result<Option<u64>, WireError> {
    let rebase = |error: WireError| WireError { offset: base + error.offset, ..error };
    let mut code = None;
    let mut at = 0;
    loop {
        let field_start = at;
        let Some(field) = next_field(bytes, &mut at).map_err(rebase)? else { break };
        if field.number == STATUS_CODE {
            if field.wire_type != VARINT {
                return Err(WireError {
                    offset: base + field_start,
                    message: "a status code field has the wrong wire type",
                });
            }
            // A varint field keeps no bytes: read the key and the value again.
            let mut value_at = field_start;
            varint(bytes, &mut value_at).map_err(rebase)?;
            code = Some(varint(bytes, &mut value_at).map_err(rebase)?);
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::trace::v1::{Span, Status};
    use crate::{ExportRequest, Signal, sample, wire};

    fn traces(spans: u64) -> Vec<u8> {
        ExportRequest::Traces(sample::traces("checkout", spans, 0)).encode_protobuf()
    }

    #[test]
    fn counts_the_spans_count_items_counts_and_the_failed_ones() {
        for spans in [0, 1, 9, 10, 25, 100] {
            let bytes = traces(spans);
            let count = count_spans(&bytes).unwrap();
            assert_eq!(Ok(count.spans), wire::count_items(Signal::Traces, &bytes));
            assert_eq!(count.error_spans, spans / 10, "{spans} spans");
        }
        assert_eq!(count_spans(&[]), Ok(SpanCount::default()));
    }

    #[test]
    fn only_status_code_error_counts() {
        let mut request = sample::traces("checkout", 4, 0);
        let spans = &mut request.resource_spans[0].scope_spans[0].spans;
        for (span, code) in spans.iter_mut().zip([0, 1, 2, 3]) {
            span.status = Some(Status { code, message: String::new() });
        }
        spans.push(Span { status: None, ..spans[0].clone() });
        let bytes = ExportRequest::Traces(request).encode_protobuf();
        assert_eq!(count_spans(&bytes), Ok(SpanCount { spans: 5, error_spans: 1 }));
    }

    #[test]
    fn the_last_status_code_wins() {
        // A span holding two statuses: error, then ok (protobuf merges them).
        let span = [
            &[0x7a, 0x02, 0x18, 0x02][..], // status { code: 2 }
            &[0x7a, 0x02, 0x18, 0x01][..], // status { code: 1 }
        ];
        let ok_last: Vec<u8> = span.concat();
        let error_last: Vec<u8> = [span[1], span[0]].concat();
        for (span, errors) in [(ok_last, 0), (error_last, 1)] {
            let bytes = wrap(&wrap(&wrap(&span, 0x12), 0x12), 0x0a);
            assert_eq!(count_spans(&bytes), Ok(SpanCount { spans: 1, error_spans: errors }));
        }
    }

    /// `bytes` as a length-delimited field with one-byte `tag`.
    fn wrap(bytes: &[u8], tag: u8) -> Vec<u8> {
        let mut wrapped = vec![tag, u8::try_from(bytes.len()).unwrap()];
        wrapped.extend_from_slice(bytes);
        wrapped
    }

    #[test]
    fn what_is_not_a_request_is_refused_not_counted() {
        let bytes = traces(30);
        for cut in 1..bytes.len() {
            let wire = count_spans(&bytes[..cut]);
            match ExportRequest::decode_protobuf(Signal::Traces, &bytes[..cut]) {
                Ok(decoded) => assert_eq!(wire.map(|count| count.spans), Ok(decoded.item_count()), "cut at {cut}"),
                Err(_) => assert!(wire.is_err(), "cut at {cut}"),
            }
        }
        // A status code that is not a varint.
        let span = [0x7a, 0x02, 0x1a, 0x00];
        let bytes = wrap(&wrap(&wrap(&span, 0x12), 0x12), 0x0a);
        assert_eq!(count_spans(&bytes).unwrap_err().message, "a status code field has the wrong wire type");
        // A status that is not a message.
        let span = [0x78, 0x02];
        let bytes = wrap(&wrap(&wrap(&span, 0x12), 0x12), 0x0a);
        assert_eq!(count_spans(&bytes).unwrap_err().message, "a message field has the wrong wire type");
    }
}
