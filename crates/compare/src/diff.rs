//! The differences between an expected item and the delivered one it was
//! matched with: attributes by location and key, the other fields, and
//! the timestamp shift.

use std::fmt;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::diff_points::point_parts;
use crate::diff_values::{ShownValue, diff_attributes, same_value};
use crate::{ChangeKind, Item, ItemBody, Location, Scope};

/// One difference of a pair; it borrows from the items, so finding one
/// allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    /// An attribute added, removed or changed.
    Attribute {
        /// Where.
        location: Location,
        /// Its key.
        key: &'a str,
        /// What happened.
        kind: ChangeKind,
        /// The expected value.
        from: Option<&'a AnyValue>,
        /// The delivered value.
        to: Option<&'a AnyValue>,
    },
    /// Another field changed.
    Field {
        /// Its name in the comparison's field changes.
        field: &'static str,
        /// Whether the changes are counted by value (`from` → `to`).
        by_value: bool,
        /// The expected value, as details show it.
        from: Text<'a>,
        /// The delivered value.
        to: Text<'a>,
    },
}

/// A value of a field, shown without allocating until it is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Text<'a> {
    /// Not shown.
    None,
    /// A string from an item, quoted.
    Str(&'a str),
    /// A name.
    Name(&'static str),
    /// A number.
    Number(i128),
    /// A floating-point number.
    Float(f64),
    /// Nanoseconds.
    Nanos(i128),
    /// Bytes, in hex.
    Bytes(&'a [u8]),
    /// An attribute value or log body.
    Value(Option<&'a AnyValue>),
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Text::None => Ok(()),
            Text::Str(text) => write!(f, "{:?}", crate::diff_values::shortened(text)),
            Text::Name(name) => f.write_str(name),
            Text::Number(number) => write!(f, "{number}"),
            Text::Float(number) => write!(f, "{number}"),
            Text::Nanos(nanos) => write!(f, "{nanos} ns"),
            Text::Bytes([]) => f.write_str("(none)"),
            Text::Bytes(bytes) => f.write_str(&hex::encode(bytes)),
            Text::Value(value) => ShownValue(value).fmt(f),
        }
    }
}

impl Text<'_> {
    /// The value as a field change counts it.
    pub(crate) fn counted(&self) -> String {
        match *self {
            Text::Str(text) => crate::diff_values::shortened(text).to_owned(),
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Change::Attribute { location, key, kind, from, to } => {
                write!(f, "{} attribute {key} ", location.noun())?;
                match kind {
                    ChangeKind::Removed => write!(f, "removed (was {})", ShownValue(from)),
                    ChangeKind::Added => write!(f, "added ({})", ShownValue(to)),
                    ChangeKind::Changed => write!(f, "changed {} -> {}", ShownValue(from), ShownValue(to)),
                }
            }
            Change::Field { field, from: Text::None, to: Text::None, .. } => write!(f, "{field} differs"),
            Change::Field { field: "timestamps", from: Text::Nanos(allowed), to: Text::Nanos(moved), .. } => {
                write!(f, "timestamps moved {moved} ns, not {allowed} ns as its record")
            }
            Change::Field { field, from, to, .. } => write!(f, "{field} {from} -> {to}"),
        }
    }
}

/// `time` moved by `delta` as the replay moves it: zero (unset) stays
/// zero; the result saturates inside `1..=u64::MAX`.
pub(crate) fn shifted(time: u64, delta: i64) -> u64 {
    if time == 0 { 0 } else { time.saturating_add_signed(delta).max(1) }
}

/// The time an item's shift is read from: a span's start, a log record's
/// time (its observed time when it has none), a data point's time.
pub(crate) fn primary_time(item: &Item) -> u64 {
    match &item.body {
        ItemBody::Span(span) => span.start_time_unix_nano,
        ItemBody::Log(record) if record.time_unix_nano != 0 => record.time_unix_nano,
        ItemBody::Log(record) => record.observed_time_unix_nano,
        ItemBody::Point(point) => point_parts(point).time,
    }
}

/// How far a delivered item moved from its expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Neither has a time.
    Unset,
    /// One has a time and the other has none.
    Lost,
    /// Delivered minus expected, in nanoseconds.
    By(i64),
}

/// How far `actual` moved from `expected`.
pub(crate) fn moved(expected: &Item, actual: &Item) -> Moved {
    let (from, to) = match (&expected.body, &actual.body) {
        // Both log records by the same time field.
        (ItemBody::Log(e), ItemBody::Log(a)) if e.time_unix_nano == 0 && a.time_unix_nano == 0 => {
            (e.observed_time_unix_nano, a.observed_time_unix_nano)
        }
        (ItemBody::Log(e), ItemBody::Log(a)) => (e.time_unix_nano, a.time_unix_nano),
        _ => (primary_time(expected), primary_time(actual)),
    };
    match (from, to) {
        (0, 0) => Moved::Unset,
        (0, _) | (_, 0) => Moved::Lost,
        (from, to) => {
            let delta = i128::from(to) - i128::from(from);
            Moved::By(i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX }))
        }
    }
}

/// Finds the differences of pairs, leaving out the ignored keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Differ<'c> {
    /// Attribute keys left out everywhere.
    pub(crate) ignore: &'c [String],
    /// Whether the replay shifted timestamps: then the start times of
    /// cumulative series are checked by series
    /// ([`SeriesStarts`](crate::diff_points::SeriesStarts)), not by shift.
    pub(crate) series_starts: bool,
}

pub(crate) fn field<'a>(field: &'static str, from: Text<'a>, to: Text<'a>) -> Change<'a> {
    Change::Field { field, by_value: false, from, to }
}

pub(crate) fn counted<'a>(field: &'static str, from: Text<'a>, to: Text<'a>) -> Change<'a> {
    Change::Field { field, by_value: true, from, to }
}

impl Differ<'_> {
    /// The differences of two items' resources and scopes.
    pub(crate) fn scopes<'a>(&self, expected: &'a Scope, actual: &'a Scope, out: &mut Vec<Change<'a>>) {
        let (e, a) = (&expected.resource, &actual.resource);
        diff_attributes(Location::Resource, &e.attributes, &a.attributes, self.ignore, out);
        if e.dropped_attributes_count != a.dropped_attributes_count {
            let (from, to) = (e.dropped_attributes_count, a.dropped_attributes_count);
            out.push(field("droppedCounts", Text::Number(from.into()), Text::Number(to.into())));
        }
        if expected.resource_schema_url != actual.resource_schema_url {
            out.push(field(
                "resource",
                Text::Str(&expected.resource_schema_url),
                Text::Str(&actual.resource_schema_url),
            ));
        }
        let (e, a) = (&expected.scope, &actual.scope);
        diff_attributes(Location::Scope, &e.attributes, &a.attributes, self.ignore, out);
        if e.name != a.name || e.version != a.version {
            let (from, to) = if e.name == a.name { (&e.version, &a.version) } else { (&e.name, &a.name) };
            out.push(counted("scope", Text::Str(from), Text::Str(to)));
        }
        if e.dropped_attributes_count != a.dropped_attributes_count {
            let (from, to) = (e.dropped_attributes_count, a.dropped_attributes_count);
            out.push(field("droppedCounts", Text::Number(from.into()), Text::Number(to.into())));
        }
        if expected.scope_schema_url != actual.scope_schema_url {
            out.push(field("scope", Text::Str(&expected.scope_schema_url), Text::Str(&actual.scope_schema_url)));
        }
    }

    /// The differences of two items themselves (not their resources and
    /// scopes), with the delivered one's timestamps expected `delta` later.
    pub(crate) fn bodies<'a>(&self, expected: &'a Item, actual: &'a Item, delta: i64, out: &mut Vec<Change<'a>>) {
        match (&expected.body, &actual.body) {
            (ItemBody::Span(e), ItemBody::Span(a)) => self.spans(e, a, delta, out),
            (ItemBody::Log(e), ItemBody::Log(a)) => self.logs(e, a, delta, out),
            (ItemBody::Point(e), ItemBody::Point(a)) => self.points(e, a, delta, out),
            _ => out.push(field("signal", Text::None, Text::None)),
        }
    }

    fn spans<'a>(&self, e: &'a Span, a: &'a Span, delta: i64, out: &mut Vec<Change<'a>>) {
        if e.name != a.name {
            out.push(counted("name", Text::Str(&e.name), Text::Str(&a.name)));
        }
        if e.kind != a.kind {
            out.push(counted("kind", span_kind(e.kind), span_kind(a.kind)));
        }
        let code = |span: &Span| span.status.as_ref().map_or(0, |status| status.code);
        if code(e) != code(a) {
            out.push(counted("status", status_code(code(e)), status_code(code(a))));
        }
        let message = |span: &'a Span| span.status.as_ref().map_or("", |status| status.message.as_str());
        if message(e) != message(a) {
            out.push(field("statusMessage", Text::Str(message(e)), Text::Str(message(a))));
        }
        if e.trace_state != a.trace_state {
            out.push(field("traceState", Text::Str(&e.trace_state), Text::Str(&a.trace_state)));
        }
        if e.parent_span_id != a.parent_span_id {
            out.push(field("parentSpanId", Text::Bytes(&e.parent_span_id), Text::Bytes(&a.parent_span_id)));
        }
        if e.flags != a.flags {
            out.push(field("flags", Text::Number(e.flags.into()), Text::Number(a.flags.into())));
        }
        let dropped =
            |span: &Span| (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count);
        if dropped(e) != dropped(a) {
            out.push(field("droppedCounts", Text::None, Text::None));
        }
        diff_attributes(Location::Span, &e.attributes, &a.attributes, self.ignore, out);
        if e.events.len() == a.events.len() {
            for (x, y) in e.events.iter().zip(&a.events) {
                if x.name != y.name {
                    out.push(field("events", Text::Str(&x.name), Text::Str(&y.name)));
                } else if shifted(x.time_unix_nano, delta) != y.time_unix_nano {
                    out.push(field("events", Text::None, Text::None));
                } else if x.dropped_attributes_count != y.dropped_attributes_count {
                    out.push(field("droppedCounts", Text::None, Text::None));
                }
                diff_attributes(Location::Event, &x.attributes, &y.attributes, self.ignore, out);
            }
        } else {
            out.push(field("events", Text::Number(e.events.len() as i128), Text::Number(a.events.len() as i128)));
        }
        if e.links.len() == a.links.len() {
            for (x, y) in e.links.iter().zip(&a.links) {
                let ids = |link: &'a opentelemetry_proto::tonic::trace::v1::span::Link| {
                    (&link.trace_id, &link.span_id, &link.trace_state, link.flags, link.dropped_attributes_count)
                };
                if ids(x) != ids(y) {
                    out.push(field("links", Text::None, Text::None));
                }
                diff_attributes(Location::Link, &x.attributes, &y.attributes, self.ignore, out);
            }
        } else {
            out.push(field("links", Text::Number(e.links.len() as i128), Text::Number(a.links.len() as i128)));
        }
        if shifted(e.end_time_unix_nano, delta) != a.end_time_unix_nano {
            let duration = |span: &Span| i128::from(span.end_time_unix_nano) - i128::from(span.start_time_unix_nano);
            out.push(field("duration", Text::Nanos(duration(e)), Text::Nanos(duration(a))));
        }
    }

    fn logs<'a>(&self, e: &'a LogRecord, a: &'a LogRecord, delta: i64, out: &mut Vec<Change<'a>>) {
        if !same_value(e.body.as_ref(), a.body.as_ref()) {
            out.push(field("body", Text::Value(e.body.as_ref()), Text::Value(a.body.as_ref())));
        }
        if e.severity_number != a.severity_number {
            out.push(counted("severity", severity(e.severity_number), severity(a.severity_number)));
        }
        if e.severity_text != a.severity_text {
            out.push(counted("severityText", Text::Str(&e.severity_text), Text::Str(&a.severity_text)));
        }
        diff_attributes(Location::Log, &e.attributes, &a.attributes, self.ignore, out);
        if e.flags != a.flags {
            out.push(field("flags", Text::Number(e.flags.into()), Text::Number(a.flags.into())));
        }
        if e.event_name != a.event_name {
            out.push(counted("eventName", Text::Str(&e.event_name), Text::Str(&a.event_name)));
        }
        if e.dropped_attributes_count != a.dropped_attributes_count {
            let (from, to) = (e.dropped_attributes_count, a.dropped_attributes_count);
            out.push(field("droppedCounts", Text::Number(from.into()), Text::Number(to.into())));
        }
        // The caller checked the time the shift was read from (the time
        // when either has one); the observed time moves by the same delta.
        if (e.time_unix_nano != 0 || a.time_unix_nano != 0)
            && shifted(e.observed_time_unix_nano, delta) != a.observed_time_unix_nano
        {
            let (from, to) = (e.observed_time_unix_nano, a.observed_time_unix_nano);
            out.push(field("timestamps", Text::Number(from.into()), Text::Number(to.into())));
        }
    }
}

fn span_kind(kind: i32) -> Text<'static> {
    const NAMES: [&str; 6] = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"];
    usize::try_from(kind)
        .ok()
        .and_then(|kind| NAMES.get(kind))
        .map_or(Text::Number(kind.into()), |name| Text::Name(name))
}

fn status_code(code: i32) -> Text<'static> {
    const NAMES: [&str; 3] = ["Unset", "Ok", "Error"];
    usize::try_from(code)
        .ok()
        .and_then(|code| NAMES.get(code))
        .map_or(Text::Number(code.into()), |name| Text::Name(name))
}

fn severity(number: i32) -> Text<'static> {
    SeverityNumber::try_from(number).map_or(Text::Number(number.into()), |severity| {
        let name = severity.as_str_name();
        Text::Name(name.strip_prefix("SEVERITY_NUMBER_").unwrap_or(name))
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use tape_otlp::sample;

    use super::*;
    use crate::match_samples::items;

    fn details(expected: &Item, actual: &Item, ignore: &[String]) -> Vec<String> {
        let mut changes = Vec::new();
        let differ = Differ { ignore, series_starts: false };
        differ.scopes(&expected.scope, &actual.scope, &mut changes);
        let delta = match moved(expected, actual) {
            Moved::By(delta) => delta,
            Moved::Unset | Moved::Lost => 0,
        };
        differ.bodies(expected, actual, delta, &mut changes);
        changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_span_pair_tells_every_field_that_differs() {
        // Span 9 has an error status, an event and a link.
        let expected = items(sample::traces("checkout", 10, 0), crate::Origin::default()).remove(9);
        let mut actual = expected.clone();
        assert!(details(&expected, &actual, &[]).is_empty());
        let ItemBody::Span(span) = &mut actual.body else { unreachable!() };
        span.name = "GET /api".to_owned();
        span.status.as_mut().unwrap().code = StatusCode::Ok as i32;
        span.attributes.retain(|attribute| attribute.key != "server.address");
        span.attributes.push(sample::string_attribute("http.route", "/api"));
        span.end_time_unix_nano += 1_000;
        span.events[0].attributes.clear();
        span.links[0].attributes[0] = sample::string_attribute("link.reason", "redirect");
        assert_eq!(
            details(&expected, &actual, &[]),
            [
                "name \"GET /api/orders/4\" -> \"GET /api\"",
                "status Error -> Ok",
                "span attribute http.route added (\"/api\")",
                "span attribute server.address removed (was \"orders.internal\")",
                "event attribute exception.type removed (was \"TimeoutError\")",
                "link attribute link.reason changed \"retry\" -> \"redirect\"",
                "duration 770000 ns -> 771000 ns",
            ]
        );
        let ignore = ["http.route".to_owned(), "server.address".to_owned(), "exception.type".to_owned()];
        assert_eq!(details(&expected, &actual, &ignore).len(), 4);
    }

    #[test]
    fn a_log_pair_moved_as_a_whole_differs_only_in_what_changed() {
        let expected = items(sample::logs("checkout", 10, 0), crate::Origin::default()).remove(9);
        let mut actual = expected.clone();
        let ItemBody::Log(record) = &mut actual.body else { unreachable!() };
        record.time_unix_nano += 5_000;
        record.observed_time_unix_nano += 5_000;
        record.severity_number = SeverityNumber::Warn as i32;
        record.body = Some(AnyValue {
            value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                "order 9 late".to_owned(),
            )),
        });
        assert_eq!(moved(&expected, &actual), Moved::By(5_000));
        assert_eq!(
            details(&expected, &actual, &[]),
            ["body \"order 9 processed\" -> \"order 9 late\"", "severity ERROR -> WARN"]
        );
        let ItemBody::Log(record) = &mut actual.body else { unreachable!() };
        record.observed_time_unix_nano += 1;
        record.time_unix_nano = 0;
        assert_eq!(moved(&expected, &actual), Moved::Lost);
    }
}
