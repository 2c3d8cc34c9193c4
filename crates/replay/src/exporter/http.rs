//! OTLP/HTTP: `POST <endpoint>/v1/<signal>` with a protobuf or OTLP/JSON
//! body, per the OTLP specification.

use std::io::Read;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use prost::Message;
use tape_otlp::{Encoding, ExportRequest, Signal};

use super::rpc::{ExportResponse, RpcStatus};
use super::{Compression, ExportOutcome, ExporterConfig, Protocol, display_duration, error_chain, parse_endpoint};
use crate::error::{ConfigError, ExportError};

/// The most of a response body read into an error message.
const MAX_MESSAGE_CHARS: usize = 512;

/// The largest response body decompressed; a response is a few bytes.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

pub(super) struct HttpExporter {
    encoding: Encoding,
    compression: Compression,
    timeout: Duration,
    client: reqwest::Client,
    /// The URL of each signal, in the order of [`Signal::ALL`].
    urls: [reqwest::Url; 3],
}

impl HttpExporter {
    pub(super) fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        let base = parse_endpoint(&config.endpoint)?;
        let urls =
            Signal::ALL.map(|signal| if config.append_signal_path { signal_url(&base, signal) } else { base.clone() });
        let encoding = if config.protocol == Protocol::HttpJson { Encoding::Json } else { Encoding::Protobuf };

        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("otlp-tape/", env!("CARGO_PKG_VERSION")))
            .default_headers(header_map(&config.headers)?)
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        if base.scheme() == "https" {
            if config.tls.insecure_skip_verify {
                builder = builder.tls_danger_accept_invalid_certs(true);
            } else if let Some(path) = &config.tls.ca_file {
                let pem = std::fs::read(path).map_err(|source| ConfigError::CaFile { path: path.clone(), source })?;
                let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| ConfigError::Tls {
                    reason: format!("the CA file {} holds no valid PEM certificate: {error}", path.display()),
                })?;
                if certificates.is_empty() {
                    return Err(ConfigError::Tls {
                        reason: format!("the CA file {} holds no PEM certificate", path.display()),
                    });
                }
                builder = builder.tls_certs_only(certificates);
            }
        }
        let client = builder.build().map_err(|error| ConfigError::Client { reason: error_chain(&error) })?;
        Ok(HttpExporter { encoding, compression: config.compression, timeout: config.timeout, client, urls })
    }

    fn url(&self, signal: Signal) -> &reqwest::Url {
        &self.urls[signal.index()]
    }

    pub(super) async fn export(&self, signal: Signal, payload: Bytes) -> Result<ExportOutcome, ExportError> {
        let url = self.url(signal);
        let failed = |what: String| format!("export of {signal} to {url} failed: {what}");

        let body = match self.encoding {
            Encoding::Protobuf => payload,
            Encoding::Json => {
                let request = ExportRequest::decode_protobuf(signal, &payload).map_err(|error| {
                    ExportError::permanent(failed(format!("the payload cannot be sent as OTLP/JSON: {error}")))
                })?;
                let json = request.encode_json().map_err(|error| ExportError::permanent(failed(error.to_string())))?;
                Bytes::from(json)
            }
        };
        let mut request = self.client.post(url.clone()).header(CONTENT_TYPE, self.encoding.content_type());
        request = match self.compression {
            Compression::Gzip => {
                let compressed = super::gzip(&body)
                    .map_err(|error| ExportError::permanent(failed(format!("cannot gzip the body: {error}"))))?;
                request.header(CONTENT_ENCODING, "gzip").body(compressed)
            }
            Compression::None => request.body(body),
        };

        let response = request.send().await.map_err(|error| self.transport_error(&failed, &error))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|error| self.transport_error(&failed, &error))?;
        let body = decompress(&headers, &body);

        if status.is_success() {
            return Ok(read_success(signal, &headers, &body));
        }
        let mut what = format!("HTTP {status}");
        if let Some(message) = error_message(&headers, &body) {
            what.push_str(": ");
            what.push_str(&message);
        }
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => {
                let retry_after = headers
                    .get(RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| parse_retry_after(value, SystemTime::now()));
                ExportError::retryable(failed(what), retry_after)
            }
            _ => ExportError::permanent(failed(what)),
        })
    }

    /// A request that got no response: retryable (the target may come
    /// back), except a request that could not even be built.
    fn transport_error(&self, failed: &impl Fn(String) -> String, error: &reqwest::Error) -> ExportError {
        let what = if error.is_timeout() {
            format!("no response within the timeout of {}", display_duration(self.timeout))
        } else {
            // The outermost message repeats the URL the caller's message
            // names already; its sources say what went wrong.
            let cause = std::error::Error::source(error).map_or_else(|| error.to_string(), error_chain);
            let mut what = if error.is_connect() { format!("cannot connect: {cause}") } else { cause };
            // hyper's words for an HTTP/2 frame where an HTTP/1.1 response
            // belongs, as an OTLP/gRPC receiver answers.
            if what.contains("received unexpected message from connection") {
                what.push_str(
                    " (the target answered in HTTP/2 only: if it is an OTLP/gRPC endpoint, such as port 4317, \
                     send with the protocol grpc)",
                );
            }
            what
        };
        if error.is_builder() {
            ExportError::permanent(failed(what))
        } else {
            ExportError::retryable(failed(what), None)
        }
    }
}

/// Checks the endpoint and the headers of `config`, as
/// [`HttpExporter::new`] does, without building a client.
pub(super) fn validate(config: &ExporterConfig) -> Result<(), ConfigError> {
    parse_endpoint(&config.endpoint)?;
    header_map(&config.headers)?;
    Ok(())
}

/// The URL of `signal` under the base endpoint: the signal's path appended
/// to the base's path, so that `http://host:4318` gives
/// `http://host:4318/v1/traces` and `https://host/otlp/` gives
/// `https://host/otlp/v1/traces`.
pub(super) fn signal_url(base: &reqwest::Url, signal: Signal) -> reqwest::Url {
    let mut url = base.clone();
    let path = format!("{}{}", base.path().trim_end_matches('/'), signal.http_path());
    url.set_path(&path);
    url
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let invalid = |reason: String| ConfigError::Header { name: name.clone(), reason };
        let header_name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| invalid("not a valid HTTP header name".to_owned()))?;
        let header_value = HeaderValue::from_str(value.trim())
            .map_err(|_| invalid("the value holds characters an HTTP header cannot carry".to_owned()))?;
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// The response body, gunzipped when the target gzipped it. A body that
/// does not gunzip is kept as it is: it only feeds messages.
fn decompress(headers: &HeaderMap, body: &Bytes) -> Bytes {
    let gzipped = headers
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("gzip"));
    if !gzipped {
        return body.clone();
    }
    let mut out = Vec::new();
    match flate2::read::MultiGzDecoder::new(body.as_ref()).take(MAX_RESPONSE_BYTES).read_to_end(&mut out) {
        Ok(_) => Bytes::from(out),
        Err(_) => body.clone(),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The partial success of a 2xx response. A body that does not decode is
/// not an error: the target accepted the request.
fn read_success(signal: Signal, headers: &HeaderMap, body: &[u8]) -> ExportOutcome {
    if body.is_empty() {
        return ExportOutcome::default();
    }
    let outcome = if is_json(headers) {
        json_partial_success(signal, body)
    } else {
        ExportResponse::decode(body).ok().map(ExportResponse::into_outcome)
    };
    outcome.unwrap_or_else(|| {
        tracing::debug!(%signal, bytes = body.len(), "The export response did not decode; counting the request as accepted.");
        ExportOutcome::default()
    })
}

/// The partial success of an OTLP/JSON `Export*ServiceResponse`. Field
/// names are lowerCamelCase (snake_case accepted too); the 64-bit count is
/// a string or a number.
fn json_partial_success(signal: Signal, body: &[u8]) -> Option<ExportOutcome> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let Some(partial) = object.get("partialSuccess").or_else(|| object.get("partial_success")) else {
        return Some(ExportOutcome::default());
    };
    let (camel, snake) = match signal {
        Signal::Traces => ("rejectedSpans", "rejected_spans"),
        Signal::Metrics => ("rejectedDataPoints", "rejected_data_points"),
        Signal::Logs => ("rejectedLogRecords", "rejected_log_records"),
    };
    let rejected = match partial.get(camel).or_else(|| partial.get(snake)) {
        None | Some(serde_json::Value::Null) => 0,
        Some(serde_json::Value::Number(number)) => number.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(text)) => text.trim().parse::<u64>().unwrap_or(0),
        Some(_) => return None,
    };
    let message = partial
        .get("errorMessage")
        .or_else(|| partial.get("error_message"))
        .and_then(serde_json::Value::as_str)
        .filter(|message| !message.is_empty())
        .map(str::to_owned);
    Some(ExportOutcome { rejected_items: rejected, message })
}

/// The message of an error response: the `google.rpc.Status` message of a
/// protobuf or JSON body, else the start of a text body.
fn error_message(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let message = if is_json(headers) {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| value.get("message").and_then(serde_json::Value::as_str).map(str::to_owned))
    } else {
        RpcStatus::decode(body).ok().map(|status| status.message)
    };
    let message = message
        .filter(|message| !message.trim().is_empty())
        .or_else(|| std::str::from_utf8(body).ok().map(str::to_owned))?;
    let message = message.trim();
    if message.is_empty() {
        return None;
    }
    Some(message.chars().take(MAX_MESSAGE_CHARS).collect())
}

/// A `Retry-After` value: delay seconds, or an HTTP date (a date in the
/// past means no wait).
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_paths_are_appended_to_the_base_path() {
        let cases = [
            ("http://localhost:4318", "http://localhost:4318/v1/traces"),
            ("http://localhost:4318/", "http://localhost:4318/v1/traces"),
            ("https://gateway.example.com/otlp", "https://gateway.example.com/otlp/v1/traces"),
            ("https://gateway.example.com/otlp/", "https://gateway.example.com/otlp/v1/traces"),
        ];
        for (base, expected) in cases {
            let url = signal_url(&reqwest::Url::parse(base).unwrap(), Signal::Traces);
            assert_eq!(url.as_str(), expected, "{base}");
        }
        let base = reqwest::Url::parse("http://localhost:4318/a").unwrap();
        assert_eq!(signal_url(&base, Signal::Metrics).path(), "/a/v1/metrics");
        assert_eq!(signal_url(&base, Signal::Logs).path(), "/a/v1/logs");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_485); // 2015-10-21T07:28:05Z
        assert_eq!(parse_retry_after("150", now), Some(Duration::from_secs(150)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(25)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn json_partial_success_reads_strings_and_numbers() {
        let body = br#"{"partialSuccess":{"rejectedSpans":"4","errorMessage":"too old"}}"#;
        assert_eq!(
            json_partial_success(Signal::Traces, body),
            Some(ExportOutcome { rejected_items: 4, message: Some("too old".to_owned()) })
        );
        let body = br#"{"partial_success":{"rejected_log_records":2}}"#;
        assert_eq!(json_partial_success(Signal::Logs, body), Some(ExportOutcome { rejected_items: 2, message: None }));
        assert_eq!(json_partial_success(Signal::Metrics, b"{}"), Some(ExportOutcome::default()));
        assert_eq!(json_partial_success(Signal::Metrics, b"[1]"), None);
    }

    #[test]
    fn error_messages_come_from_the_status_body() {
        let mut headers = HeaderMap::new();
        let status = RpcStatus { code: 3, message: "bad body".to_owned(), details: Vec::new() };
        assert_eq!(error_message(&headers, &status.encode_to_vec()).as_deref(), Some("bad body"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert_eq!(error_message(&headers, br#"{"code":3,"message":"bad json"}"#).as_deref(), Some("bad json"));
        assert_eq!(error_message(&headers, b"plain words").as_deref(), Some("plain words"));
        assert_eq!(error_message(&headers, b"").as_deref(), None);
    }

    #[test]
    fn invalid_headers_are_config_errors() {
        let error = header_map(&[("bad header".to_owned(), "x".to_owned())]).unwrap_err();
        assert!(matches!(error, ConfigError::Header { ref name, .. } if name == "bad header"), "{error}");
        let error = header_map(&[("x-token".to_owned(), "line\nbreak".to_owned())]).unwrap_err();
        assert!(matches!(error, ConfigError::Header { .. }), "{error}");
        assert_eq!(header_map(&[("X-Token".to_owned(), "abc".to_owned())]).unwrap()["x-token"], "abc");
    }
}
