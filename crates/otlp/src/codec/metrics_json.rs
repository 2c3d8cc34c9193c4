//! OTLP/JSON metrics, checked as strictly as protobuf.
//!
//! `opentelemetry-proto` reads three oneofs of the metrics protos through
//! `#[serde(flatten)]` on an `Option`: a metric's data (gauge, sum,
//! histogram, exponential histogram, summary) and the value of a number
//! data point and of an exemplar (`asDouble`, `asInt`). serde turns any
//! error inside a flattened `Option` into `None`, so one bad data point
//! (`{"doubleValue":true}` in an attribute, a negative or fractional
//! timestamp, `"key":[]`) made the whole metric decode with no data, and a
//! bad value (`"asDouble":true`) a point with no value; and two members of
//! a oneof decoded to one of them. [`check`] reads the request's JSON again
//! and refuses each of these with the path of the member at fault, and
//! sets each point's and exemplar's value from the JSON, as the
//! specification's mapping reads it (numbers, or for `asDouble` the
//! strings `"NaN"`, `"Infinity"` and `"-Infinity"`; for `asInt` a decimal
//! string or an integer).

use serde::Deserialize;
use serde_json::Value as Json;

use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::metrics::v1::metric::Data;
use crate::proto::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, Sum, Summary, SummaryDataPoint, exemplar, number_data_point,
};

/// The JSON names of a metric's kinds of data, in the order of the oneof.
const DATA: [&str; 5] = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"];

/// Checks the OTLP/JSON metrics request `bytes`, which decoded to
/// `request`, as the module says, and fixes the values of `request`'s
/// points and exemplars. The error is the message for the client.
pub(super) fn check(bytes: &[u8], request: &mut ExportMetricsServiceRequest) -> Result<(), String> {
    let json: Json = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    let resources = request.resource_metrics.iter_mut().zip(elements(&json, "resourceMetrics"));
    for (r, (resource, resource_json)) in resources.enumerate() {
        let scopes = resource.scope_metrics.iter_mut().zip(elements(resource_json, "scopeMetrics"));
        for (s, (scope, scope_json)) in scopes.enumerate() {
            for (m, (metric, metric_json)) in scope.metrics.iter_mut().zip(elements(scope_json, "metrics")).enumerate()
            {
                let path = || format!("resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]");
                check_metric(metric, metric_json, &path)?;
            }
        }
    }
    Ok(())
}

/// The elements of the array `key` of the object `json` (none when it is
/// absent or null; the typed decode has refused anything else).
fn elements<'a>(json: &'a Json, key: &str) -> impl Iterator<Item = &'a Json> {
    json.get(key).and_then(Json::as_array).into_iter().flatten()
}

fn present<'a>(json: &'a Json, key: &str) -> Option<&'a Json> {
    json.get(key).filter(|value| !value.is_null())
}

fn check_metric(metric: &mut Metric, json: &Json, path: &dyn Fn() -> String) -> Result<(), String> {
    let mut kinds = DATA.iter().filter_map(|kind| present(json, kind).map(|value| (*kind, value)));
    let Some((kind, data_json)) = kinds.next() else {
        return Ok(());
    };
    if let Some((second, _)) = kinds.next() {
        return Err(format!("{}: has both {kind} and {second}; a metric has one kind of data", path()));
    }
    let decoded_kind = match &metric.data {
        Some(Data::Gauge(_)) => Some("gauge"),
        Some(Data::Sum(_)) => Some("sum"),
        Some(Data::Histogram(_)) => Some("histogram"),
        Some(Data::ExponentialHistogram(_)) => Some("exponentialHistogram"),
        Some(Data::Summary(_)) => Some("summary"),
        None => None,
    };
    let path = || format!("{}.{kind}", path());
    if decoded_kind != Some(kind) {
        // The decoder dropped the data: read it alone to say why.
        return Err(data_error(kind, data_json, &path));
    }
    let points = |json| elements(json, "dataPoints").enumerate();
    match &mut metric.data {
        Some(Data::Gauge(Gauge { data_points }) | Data::Sum(Sum { data_points, .. })) => {
            for (point, (i, point_json)) in data_points.iter_mut().zip(points(data_json)) {
                let path = || format!("{}.dataPoints[{i}]", path());
                point.value = number(point_json, &path)?.map(|value| match value {
                    Number::Double(value) => number_data_point::Value::AsDouble(value),
                    Number::Int(value) => number_data_point::Value::AsInt(value),
                });
                check_exemplars(&mut point.exemplars, point_json, &path)?;
            }
        }
        Some(Data::Histogram(histogram)) => {
            for (point, (i, point_json)) in histogram.data_points.iter_mut().zip(points(data_json)) {
                check_exemplars(&mut point.exemplars, point_json, &|| format!("{}.dataPoints[{i}]", path()))?;
            }
        }
        Some(Data::ExponentialHistogram(histogram)) => {
            for (point, (i, point_json)) in histogram.data_points.iter_mut().zip(points(data_json)) {
                check_exemplars(&mut point.exemplars, point_json, &|| format!("{}.dataPoints[{i}]", path()))?;
            }
        }
        Some(Data::Summary(_)) | None => {}
    }
    Ok(())
}

fn check_exemplars(exemplars: &mut [Exemplar], point: &Json, path: &dyn Fn() -> String) -> Result<(), String> {
    for (i, (exemplar, json)) in exemplars.iter_mut().zip(elements(point, "exemplars")).enumerate() {
        exemplar.value = number(json, &|| format!("{}.exemplars[{i}]", path()))?.map(|value| match value {
            Number::Double(value) => exemplar::Value::AsDouble(value),
            Number::Int(value) => exemplar::Value::AsInt(value),
        });
    }
    Ok(())
}

/// Why the data `json` of kind `kind` does not decode, narrowed to the
/// first data point that does not.
fn data_error(kind: &str, json: &Json, path: &dyn Fn() -> String) -> String {
    fn first_error<T: for<'de> Deserialize<'de>, P: for<'de> Deserialize<'de>>(
        json: &Json,
        path: &dyn Fn() -> String,
    ) -> String {
        for (i, point) in elements(json, "dataPoints").enumerate() {
            if let Err(error) = P::deserialize(point) {
                return format!("{}.dataPoints[{i}]: {error}", path());
            }
        }
        match T::deserialize(json) {
            Err(error) => format!("{}: {error}", path()),
            Ok(_) => format!("{}: not a valid metric data", path()),
        }
    }
    match kind {
        "gauge" => first_error::<Gauge, NumberDataPoint>(json, path),
        "sum" => first_error::<Sum, NumberDataPoint>(json, path),
        "histogram" => first_error::<Histogram, HistogramDataPoint>(json, path),
        "exponentialHistogram" => first_error::<ExponentialHistogram, ExponentialHistogramDataPoint>(json, path),
        _ => first_error::<Summary, SummaryDataPoint>(json, path),
    }
}

enum Number {
    Double(f64),
    Int(i64),
}

/// The value of a number data point or exemplar: `asDouble` or `asInt`,
/// at most one of them.
fn number(json: &Json, path: &dyn Fn() -> String) -> Result<Option<Number>, String> {
    match (present(json, "asDouble"), present(json, "asInt")) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(format!("{}: has both asDouble and asInt; a value is one of them", path())),
        (Some(value), None) => {
            let double = match value {
                Json::Number(number) => number.as_f64(),
                Json::String(text) => match text.as_str() {
                    "NaN" => Some(f64::NAN),
                    "Infinity" => Some(f64::INFINITY),
                    "-Infinity" => Some(f64::NEG_INFINITY),
                    _ => None,
                },
                _ => None,
            };
            double.map(|double| Some(Number::Double(double))).ok_or_else(|| {
                format!(
                    "{}.asDouble: {value} is not a number (a JSON number, \"NaN\", \"Infinity\" or \"-Infinity\")",
                    path()
                )
            })
        }
        (None, Some(value)) => {
            let int = match value {
                Json::Number(number) => number.as_i64(),
                Json::String(text) => text.parse::<i64>().ok(),
                _ => None,
            };
            int.map(|int| Some(Number::Int(int))).ok_or_else(|| {
                format!("{}.asInt: {value} is not a 64-bit integer (a JSON integer or a decimal string)", path())
            })
        }
    }
}
