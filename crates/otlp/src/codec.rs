mod metrics_json;

use std::fmt;
use std::str::FromStr;

use prost::Message;

use crate::Error;
use crate::Signal;
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;

/// How an OTLP message is written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`).
    Protobuf,
    /// OTLP/JSON, the specification's JSON mapping (`application/json`).
    Json,
}

impl Encoding {
    /// The HTTP content type of the encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "OTLP/JSON",
        })
    }
}

impl FromStr for Encoding {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "protobuf" | "proto" | "application/x-protobuf" => Ok(Encoding::Protobuf),
            "json" | "application/json" => Ok(Encoding::Json),
            other => Err(format!("unknown encoding {other:?}: expected protobuf or json")),
        }
    }
}

/// One decoded `Export*ServiceRequest` of any signal.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportRequest {
    /// An `ExportTraceServiceRequest`.
    Traces(ExportTraceServiceRequest),
    /// An `ExportMetricsServiceRequest`.
    Metrics(ExportMetricsServiceRequest),
    /// An `ExportLogsServiceRequest`.
    Logs(ExportLogsServiceRequest),
}

impl ExportRequest {
    /// Decodes `bytes` as the request of `signal` in `encoding`.
    ///
    /// OTLP/JSON follows the specification's mapping: unknown fields are
    /// ignored, 64-bit integers are accepted as strings or numbers, trace and
    /// span ids are hex strings. A value of the wrong type anywhere, or two
    /// members of a metric's oneofs (its kind of data, a point's value),
    /// refuses the whole request: nothing is dropped.
    pub fn decode(signal: Signal, encoding: Encoding, bytes: &[u8]) -> Result<Self, Error> {
        match encoding {
            Encoding::Protobuf => Self::decode_protobuf(signal, bytes),
            Encoding::Json => Self::decode_json(signal, bytes),
        }
    }

    /// Decodes protobuf `bytes` as the request of `signal`.
    pub fn decode_protobuf(signal: Signal, bytes: &[u8]) -> Result<Self, Error> {
        let wrap = |source| Error::Protobuf { signal, source };
        Ok(match signal {
            Signal::Traces => Self::Traces(ExportTraceServiceRequest::decode(bytes).map_err(wrap)?),
            Signal::Metrics => Self::Metrics(ExportMetricsServiceRequest::decode(bytes).map_err(wrap)?),
            Signal::Logs => Self::Logs(ExportLogsServiceRequest::decode(bytes).map_err(wrap)?),
        })
    }

    /// Decodes OTLP/JSON `bytes` as the request of `signal`.
    pub fn decode_json(signal: Signal, bytes: &[u8]) -> Result<Self, Error> {
        let wrap = |source| Error::Json { signal, source };
        // serde would read a struct from a JSON array too; OTLP/JSON
        // requests are objects.
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(wrap(serde::de::Error::custom("an OTLP/JSON request must be a JSON object")));
        }
        Ok(match signal {
            Signal::Traces => Self::Traces(serde_json::from_slice(bytes).map_err(wrap)?),
            Signal::Metrics => {
                let mut request = serde_json::from_slice(bytes).map_err(wrap)?;
                metrics_json::check(bytes, &mut request).map_err(|message| wrap(serde::de::Error::custom(message)))?;
                Self::Metrics(request)
            }
            Signal::Logs => Self::Logs(serde_json::from_slice(bytes).map_err(wrap)?),
        })
    }

    /// The signal of the request.
    pub fn signal(&self) -> Signal {
        match self {
            Self::Traces(_) => Signal::Traces,
            Self::Metrics(_) => Signal::Metrics,
            Self::Logs(_) => Signal::Logs,
        }
    }

    /// Encodes the request in `encoding`.
    pub fn encode(&self, encoding: Encoding) -> Result<Vec<u8>, Error> {
        match encoding {
            Encoding::Protobuf => Ok(self.encode_protobuf()),
            Encoding::Json => self.encode_json(),
        }
    }

    /// Encodes the request as protobuf.
    pub fn encode_protobuf(&self) -> Vec<u8> {
        match self {
            Self::Traces(request) => request.encode_to_vec(),
            Self::Metrics(request) => request.encode_to_vec(),
            Self::Logs(request) => request.encode_to_vec(),
        }
    }

    /// Encodes the request as OTLP/JSON on one line.
    pub fn encode_json(&self) -> Result<Vec<u8>, Error> {
        let result = match self {
            Self::Traces(request) => serde_json::to_vec(request),
            Self::Metrics(request) => serde_json::to_vec(request),
            Self::Logs(request) => serde_json::to_vec(request),
        };
        result.map_err(|error| Error::Encode {
            signal: self.signal(),
            encoding: Encoding::Json,
            message: error.to_string(),
        })
    }

    /// The number of items in the request: spans, metric data points or log records.
    pub fn item_count(&self) -> u64 {
        match self {
            Self::Traces(request) => crate::count::spans(request),
            Self::Metrics(request) => crate::count::data_points(request),
            Self::Logs(request) => crate::count::log_records(request),
        }
    }
}

impl From<ExportTraceServiceRequest> for ExportRequest {
    fn from(request: ExportTraceServiceRequest) -> Self {
        Self::Traces(request)
    }
}

impl From<ExportMetricsServiceRequest> for ExportRequest {
    fn from(request: ExportMetricsServiceRequest) -> Self {
        Self::Metrics(request)
    }
}

impl From<ExportLogsServiceRequest> for ExportRequest {
    fn from(request: ExportLogsServiceRequest) -> Self {
        Self::Logs(request)
    }
}
