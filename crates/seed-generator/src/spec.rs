//! The pattern file as written: YAML, read with serde. `docs/PATTERNS.md`
//! documents every field. Values that can be checked on their own
//! (durations, latencies, probabilities, severities) are checked while
//! reading, so their errors carry a line and column; checks that need the
//! whole file happen in [`crate::pattern`], which points back into the file
//! with [`locate`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use tape_session::parse_duration;

/// A whole pattern file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatternSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub session_type: Option<SessionTypeSpec>,
    #[serde(default)]
    pub defaults: DefaultsSpec,
    #[serde(default)]
    pub resource: BTreeMap<String, AttributeValue>,
    pub services: Vec<ServiceSpec>,
    pub phases: Vec<PhaseSpec>,
    pub entrypoints: Vec<EntrypointSpec>,
    #[serde(default)]
    pub metrics: MetricsSpec,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SessionTypeSpec {
    Seed,
    Training,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsSpec {
    pub duration: Option<DurationSpec>,
    pub rate: Option<PositiveNumber>,
    pub error_rate: Option<Probability>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceSpec {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PhaseSpec {
    pub name: String,
    pub duration: DurationSpec,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntrypointSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
    pub span: NodeSpec,
}

fn one() -> u32 {
    1
}

/// One span of a call tree, with the spans it calls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSpec {
    pub service: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<KindSpec>,
    #[serde(default)]
    pub latency: Option<LatencySpec>,
    #[serde(default)]
    pub http: Option<HttpSpec>,
    #[serde(default)]
    pub rpc: Option<RpcSpec>,
    #[serde(default)]
    pub db: Option<DbSpec>,
    #[serde(default)]
    pub messaging: Option<MessagingSpec>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[serde(default)]
    pub error: Option<ErrorSpec>,
    #[serde(default)]
    pub when: BTreeMap<String, EffectSpec>,
    #[serde(default)]
    pub logs: Vec<LogSpec>,
    #[serde(default)]
    pub repeat: Option<u32>,
    #[serde(default)]
    pub parallel: bool,
    #[serde(default, rename = "async")]
    pub async_: Option<AsyncSpec>,
    #[serde(default)]
    pub children: Vec<NodeSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindSpec {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSpec {
    pub method: String,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RpcSpec {
    #[serde(default = "grpc")]
    pub system: String,
    pub service: String,
    pub method: String,
}

fn grpc() -> String {
    "grpc".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DbSpec {
    pub system: String,
    pub operation: String,
    #[serde(default)]
    pub collection: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessagingSpec {
    pub system: String,
    pub destination: String,
    pub operation: MessagingOperation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MessagingOperation {
    Send,
    Receive,
    Process,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorSpec {
    #[serde(default)]
    pub probability: Option<Probability>,
    #[serde(default)]
    pub status_code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub exception: Option<String>,
    #[serde(default = "yes")]
    pub propagate: bool,
    #[serde(default = "yes")]
    pub log: bool,
}

fn yes() -> bool {
    true
}

/// What a feature flag changes about a span while a phase sets it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EffectSpec {
    #[serde(default)]
    pub error_probability: Option<Probability>,
    #[serde(default)]
    pub latency_factor: Option<FactorSpec>,
}

/// A latency factor: a constant, or a ramp across the phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FactorSpec {
    pub from: f64,
    pub to: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSpec {
    #[serde(default)]
    pub on: LogOn,
    #[serde(default)]
    pub severity: Option<Severity>,
    pub body: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// When a log record is written for a span.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogOn {
    /// When the span starts.
    Start,
    /// When the span ends, whatever its outcome.
    #[default]
    End,
    /// When the span ends without error.
    Ok,
    /// When the span ends with an error.
    Error,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AsyncSpec {
    pub delay: LatencySpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsSpec {
    #[serde(default)]
    pub interval: Option<DurationSpec>,
    #[serde(default)]
    pub requests: Option<bool>,
    #[serde(default)]
    pub gauges: Vec<GaugeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GaugeSpec {
    pub service: String,
    pub name: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub value: GaugeValue,
    #[serde(default)]
    pub capacity: Option<PositiveNumber>,
    #[serde(default)]
    pub base: Option<f64>,
}

/// What a gauge measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GaugeValue {
    /// The share of the interval the service was busy serving requests.
    Utilization,
    /// The service's server spans in progress at the export time.
    InFlight,
}

/// An attribute value as YAML writes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum AttributeValue {
    Bool(bool),
    Int(i64),
    Double(f64),
    String(String),
}

/// A duration in nanoseconds, written `250ms`, `10s`, `1m30s`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationSpec(pub u64);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "a duration such as 250ms, 10s or 1m30s", |text| match parse_duration(text)? {
            0 => Err(format!("duration {text:?} must be above zero")),
            nanos => Ok(DurationSpec(nanos)),
        })
    }
}

/// Reads a string and checks it inside the visitor, so that serde_yaml
/// gives a failed check the string's own line, column and field path
/// (an error raised after `String::deserialize` returns would get those of
/// the enclosing mapping).
fn checked_str<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    expecting: &'static str,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct StrVisitor<F>(&'static str, F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for StrVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            (self.1)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(StrVisitor(expecting, check))
}

/// Reads a number and checks it inside the visitor; see [`checked_str`].
fn checked_number<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    expecting: &'static str,
    check: impl FnOnce(f64) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct NumberVisitor<F>(&'static str, F);
    impl<T, F: FnOnce(f64) -> Result<T, String>> Visitor<'_> for NumberVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
            (self.1)(value).map_err(E::custom)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
            self.visit_f64(value as f64)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
            self.visit_f64(value as f64)
        }
    }
    deserializer.deserialize_f64(NumberVisitor(expecting, check))
}

/// A latency: a fixed duration (`30ms`), or `{median: 30ms, p99: 200ms}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LatencySpec {
    Fixed(u64),
    LogNormal { median: u64, p99: u64 },
}

impl<'de> Deserialize<'de> for LatencySpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LatencyVisitor;
        impl<'de> Visitor<'de> for LatencyVisitor {
            type Value = LatencySpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 30ms, or {median: 30ms, p99: 200ms}")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<LatencySpec, E> {
                parse_duration(text).map(LatencySpec::Fixed).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LatencySpec, A::Error> {
                let (mut median, mut p99) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "median" => &mut median,
                        "p99" => &mut p99,
                        other => return Err(de::Error::unknown_field(other, &["median", "p99"])),
                    };
                    *slot = Some(map.next_value::<DurationSpec>()?.0);
                }
                let median = median.ok_or_else(|| de::Error::missing_field("median"))?;
                let p99 = p99.ok_or_else(|| de::Error::missing_field("p99"))?;
                if p99 < median {
                    return Err(de::Error::custom("p99 must not be below the median"));
                }
                Ok(LatencySpec::LogNormal { median, p99 })
            }
        }
        deserializer.deserialize_any(LatencyVisitor)
    }
}

impl<'de> Deserialize<'de> for FactorSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FactorVisitor;
        impl<'de> Visitor<'de> for FactorVisitor {
            type Value = FactorSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a positive number such as 3, or a ramp {from: 1, to: 4}")
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<FactorSpec, E> {
                positive(value).map(|value| FactorSpec { from: value, to: value }).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<FactorSpec, E> {
                #[allow(clippy::cast_precision_loss)]
                self.visit_f64(value as f64)
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<FactorSpec, E> {
                #[allow(clippy::cast_precision_loss)]
                self.visit_f64(value as f64)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FactorSpec, A::Error> {
                let (mut from, mut to) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "from" => &mut from,
                        "to" => &mut to,
                        other => return Err(de::Error::unknown_field(other, &["from", "to"])),
                    };
                    *slot = Some(map.next_value::<PositiveNumber>()?.0);
                }
                Ok(FactorSpec {
                    from: from.ok_or_else(|| de::Error::missing_field("from"))?,
                    to: to.ok_or_else(|| de::Error::missing_field("to"))?,
                })
            }
        }
        deserializer.deserialize_any(FactorVisitor)
    }
}

fn positive(value: f64) -> Result<f64, String> {
    if value.is_finite() && value > 0.0 { Ok(value) } else { Err(format!("{value} is not a positive number")) }
}

/// A finite number above zero.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PositiveNumber(pub f64);

impl<'de> Deserialize<'de> for PositiveNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_number(deserializer, "a positive number", |value| positive(value).map(PositiveNumber))
    }
}

/// A probability, from 0 to 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probability(pub f64);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_number(deserializer, "a probability from 0 to 1", |value| {
            if (0.0..=1.0).contains(&value) {
                Ok(Probability(value))
            } else {
                Err(format!("probability {value} is outside 0..1 (write 0.75 for 75 %)"))
            }
        })
    }
}

/// A log severity, by its OpenTelemetry short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Severity {
    pub number: i32,
    pub text: &'static str,
}

/// The OpenTelemetry log data model's short names and their base numbers.
pub(crate) const SEVERITIES: [(&str, i32); 6] =
    [("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17), ("FATAL", 21)];

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "a severity: TRACE, DEBUG, INFO, WARN, ERROR or FATAL", |text| {
            SEVERITIES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(text))
                .map(|&(text, number)| Severity { number, text })
                .ok_or_else(|| format!("unknown severity {text:?}; expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL"))
        })
    }
}

/// One step of a path into the YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(&'static str),
    Name(String),
    Index(usize),
}

/// Reads `text` again down to the value at `path` and fails there with
/// `message`, so that the error carries that value's line and column.
/// Returns `None` when the path is not in the document.
pub(crate) fn locate(text: &str, path: &[Step], message: &str) -> Option<serde_yaml::Error> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    Locate { path, message }.deserialize(deserializer).err()
}

struct Locate<'a> {
    path: &'a [Step],
    message: &'a str,
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Locate<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() { Err(E::custom(self.message)) } else { Ok(()) }
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.here()?;
        // A name chosen by the user (a flag in `when`) is wrong as a key, so
        // the error points at the key rather than at its value.
        let fail_at_key = match self.path {
            [Step::Name(name)] => Some((name.as_str(), self.message)),
            _ => None,
        };
        while let Some(key) = map.next_key_seed(KeySeed { fail_at_key })? {
            let wanted = match &self.path[0] {
                Step::Key(name) => key == *name,
                Step::Name(name) => key == *name,
                Step::Index(_) => false,
            };
            if wanted {
                return map.next_value_seed(Locate { path: &self.path[1..], message: self.message });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.here()?;
        let mut index = 0;
        loop {
            if self.path[0] == Step::Index(index) {
                return seq.next_element_seed(Locate { path: &self.path[1..], message: self.message }).map(drop);
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
}

/// Reads a mapping key, failing with the message if it is the one sought.
#[derive(Clone, Copy)]
struct KeySeed<'a> {
    fail_at_key: Option<(&'a str, &'a str)>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        checked_str(deserializer, "a mapping key", |key| match self.fail_at_key {
            Some((name, message)) if key == name => Err(message.to_owned()),
            _ => Ok(key.to_owned()),
        })
    }
}
