//! OTLP/gRPC: a unary `Export` call of the signal's collector service,
//! whose request message is the stored protobuf bytes, sent as they are.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::uri::PathAndQuery;
use http_body_util::BodyExt as _;
use prost::Message;
use tape_otlp::Signal;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::rpc::{self, ExportResponse};
use super::tls::AcceptAnyCertificate;
use super::{Compression, ExportOutcome, ExporterConfig, append_cause, display_duration, error_chain, parse_endpoint};
use crate::error::{ConfigError, ExportError};

pub(super) struct GrpcExporter {
    endpoint: String,
    target: Endpoint,
    /// Made on the first export, so that building an exporter needs no
    /// Tokio runtime; it connects on first use and reconnects as needed.
    channel: OnceLock<Channel>,
    metadata: MetadataMap,
    compression: Compression,
    timeout: Duration,
}

impl GrpcExporter {
    pub(super) fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        let url = parse_endpoint(&config.endpoint)?;
        let invalid = |reason: String| ConfigError::Endpoint { endpoint: config.endpoint.clone(), reason };
        let origin = origin(config, &url)?;
        let mut target = Endpoint::from_shared(origin)
            .map_err(|error| invalid(error_chain(&error)))?
            .user_agent(concat!("otlp-tape/", env!("CARGO_PKG_VERSION")))
            .map_err(|error| invalid(error_chain(&error)))?
            .connect_timeout(config.timeout);
        if url.scheme() == "https" {
            let tls = ClientTlsConfig::new();
            let tls_error = |error: tonic::transport::Error| ConfigError::Tls { reason: error_chain(&error) };
            target = if config.tls.insecure_skip_verify {
                target.tls_config_with_verifier(tls, Arc::new(AcceptAnyCertificate::new())).map_err(tls_error)?
            } else if let Some(path) = &config.tls.ca_file {
                let pem = std::fs::read(path).map_err(|source| ConfigError::CaFile { path: path.clone(), source })?;
                if !pem.windows(27).any(|window| window == b"-----BEGIN CERTIFICATE-----") {
                    return Err(ConfigError::Tls {
                        reason: format!("the CA file {} holds no PEM certificate", path.display()),
                    });
                }
                target.tls_config(tls.ca_certificate(Certificate::from_pem(pem))).map_err(tls_error)?
            } else {
                target.tls_config(tls.with_native_roots()).map_err(tls_error)?
            };
        }
        Ok(GrpcExporter {
            endpoint: config.endpoint.clone(),
            target,
            channel: OnceLock::new(),
            metadata: metadata(&config.headers)?,
            compression: config.compression,
            timeout: config.timeout,
        })
    }

    pub(super) async fn export(&self, signal: Signal, payload: Bytes) -> Result<ExportOutcome, ExportError> {
        let failed = |what: String| format!("export of {signal} to {} failed: {what}", self.endpoint);
        let channel = self.channel.get_or_init(|| self.target.connect_lazy()).clone();
        let gzip = self.compression == Compression::Gzip;
        // tonic compresses at gzip level 6 only: the request is compressed
        // here, at the fast level, and the channel marks it compressed.
        let payload = if gzip {
            match super::gzip(&payload) {
                Ok(compressed) => Bytes::from(compressed),
                Err(error) => return Err(ExportError::permanent(failed(format!("cannot gzip the request: {error}")))),
            }
        } else {
            payload
        };
        let channel = PreCompressed { channel, gzip };
        let mut client = tonic::client::Grpc::new(channel).accept_compressed(CompressionEncoding::Gzip);
        let mut request = tonic::Request::new(payload);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(self.timeout);

        let call = async {
            client.ready().await.map_err(|error| Status::unavailable(error_chain(error.as_ref())))?;
            client.unary(request, PathAndQuery::from_static(export_path(signal)), RawRequestCodec).await
        };
        let timed_out = || {
            ExportError::retryable(
                failed(format!("no response within the timeout of {}", display_duration(self.timeout))),
                None,
            )
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner().into_outcome()),
            // tonic's own deadline (the request's grpc-timeout, or the
            // connect timeout) can fire a moment before ours: the same
            // timeout, said the same way.
            Ok(Err(status))
                if status.code() == tonic::Code::DeadlineExceeded
                    || (status.code() == tonic::Code::Cancelled && status.message().contains("Timeout expired")) =>
            {
                Err(timed_out())
            }
            Ok(Err(status)) => Err(classify(&status, failed)),
            Err(_) => Err(timed_out()),
        }
    }
}

/// Checks the endpoint and the headers of `config`, as
/// [`GrpcExporter::new`] does, without building a channel.
pub(super) fn validate(config: &ExporterConfig) -> Result<(), ConfigError> {
    origin(config, &parse_endpoint(&config.endpoint)?)?;
    metadata(&config.headers)?;
    Ok(())
}

/// The `scheme://host[:port]` the channel connects to: the endpoint `url`
/// (parsed from `config`), which must have no path, query or credentials.
fn origin(config: &ExporterConfig, url: &reqwest::Url) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Endpoint { endpoint: config.endpoint.clone(), reason };
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        let query = url.query().map(|query| format!("?{query}")).unwrap_or_default();
        return Err(invalid(format!(
            "an OTLP/gRPC endpoint has no path, the service path is fixed; drop {:?}",
            format!("{}{query}", url.path())
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the URL are not sent over gRPC; pass them as headers".to_owned()));
    }
    let host = url.host_str().unwrap_or_default();
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// The method path of the signal's `Export` call.
fn export_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    }
}

fn metadata(headers: &[(String, String)]) -> Result<MetadataMap, ConfigError> {
    let mut map = MetadataMap::with_capacity(headers.len());
    for (name, value) in headers {
        let invalid = |reason: &str| ConfigError::Header { name: name.clone(), reason: reason.to_owned() };
        let key = AsciiMetadataKey::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
            .map_err(|_| invalid("not a valid gRPC metadata key (binary `-bin` keys are not supported)"))?;
        // gRPC's ASCII values are printable ASCII, stricter than HTTP's.
        let printable = value.trim().bytes().all(|byte| (b' '..=b'~').contains(&byte));
        let value = AsciiMetadataValue::try_from(value.trim())
            .ok()
            .filter(|_| printable)
            .ok_or_else(|| invalid("the value holds characters gRPC metadata cannot carry (printable ASCII only)"))?;
        map.append(key, value);
    }
    Ok(map)
}

/// Classifies a gRPC status per the OTLP specification: the transient
/// codes are retryable, honouring a `google.rpc.RetryInfo` delay;
/// RESOURCE_EXHAUSTED is retryable only when the server sent such a delay
/// (it means the server can recover); every other code is permanent.
fn classify(status: &Status, failed: impl Fn(String) -> String) -> ExportError {
    let mut what = format!("gRPC status {}", code_name(status.code()));
    let mut message = status.message().to_owned();
    if let Some(source) = std::error::Error::source(status) {
        append_cause(&mut message, error_chain(source));
    }
    if !message.is_empty() {
        what.push_str(": ");
        what.push_str(&message);
    }
    // tonic's words for an answer that is HTTP without gRPC in it, as an
    // OTLP/HTTP receiver gives to a gRPC path (404 with its own body).
    if message.contains("while receiving response with status") {
        what.push_str(
            " (the target answered as a plain HTTP server: if it is an OTLP/HTTP endpoint, such as port 4318, \
             send with the protocol http/protobuf)",
        );
    }
    let retry_delay = rpc::retry_delay(status.details());
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => ExportError::retryable(failed(what), retry_delay),
        Code::ResourceExhausted if retry_delay.is_some() => ExportError::retryable(failed(what), retry_delay),
        _ => ExportError::permanent(failed(what)),
    }
}

/// The canonical name of a gRPC status code, as the gRPC and OTLP
/// specifications write it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The codec of an `Export` call whose request is already encoded: the
/// encoder copies the bytes as they are, the decoder reads the
/// `Export*ServiceResponse`.
#[derive(Debug, Clone, Copy, Default)]
struct RawRequestCodec;

/// A channel for requests whose message the exporter has gzipped already
/// (`gzip`): it sets the message's compressed flag and `grpc-encoding`,
/// as tonic does for what it compresses itself.
#[derive(Clone)]
struct PreCompressed {
    channel: Channel,
    gzip: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Request<tonic::body::Body>> for PreCompressed {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.channel.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        // The channel that was made ready serves this call.
        let ready = self.channel.clone();
        let mut channel = std::mem::replace(&mut self.channel, ready);
        if !self.gzip {
            return Box::pin(async move { channel.call(request).await.map_err(Into::into) });
        }
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let mut framed = BytesMut::from(body.collect().await?.to_bytes());
            // The gRPC message header: a compressed flag, then the length.
            if let Some(flag) = framed.first_mut() {
                *flag = 1;
            }
            parts.headers.insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
            let body = tonic::body::Body::new(http_body_util::Full::new(framed.freeze()));
            channel.call(http::Request::from_parts(parts, body)).await.map_err(Into::into)
        })
    }
}

impl Codec for RawRequestCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, destination: &mut EncodeBuf<'_>) -> Result<(), Status> {
        destination.reserve(item.len());
        destination.put_slice(&item);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = ExportResponse;
    type Error = Status;

    fn decode(&mut self, source: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, Status> {
        ExportResponse::decode(source)
            .map(Some)
            .map_err(|error| Status::internal(format!("the export response does not decode: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> impl Fn(String) -> String {
        |what| format!("export failed: {what}")
    }

    #[test]
    fn transient_codes_are_retryable() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            let error = classify(&Status::new(code, "try later"), failed());
            assert_eq!(error.kind, crate::ExportErrorKind::Retryable { retry_after: None }, "{code:?}");
            assert!(error.message.contains(code_name(code)), "{}", error.message);
        }
    }

    #[test]
    fn other_codes_are_permanent() {
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Unimplemented,
            Code::Internal,
            Code::ResourceExhausted,
        ] {
            let error = classify(&Status::new(code, "no"), failed());
            assert_eq!(error.kind, crate::ExportErrorKind::Permanent, "{code:?}");
        }
    }

    #[test]
    fn retry_info_makes_resource_exhausted_retryable() {
        let details = rpc::encode_status_with_retry_delay(8, Duration::from_secs(2));
        let status = Status::with_details(Code::ResourceExhausted, "slow down", details.into());
        let error = classify(&status, failed());
        assert_eq!(error.kind, crate::ExportErrorKind::Retryable { retry_after: Some(Duration::from_secs(2)) });
        assert_eq!(error.message, "export failed: gRPC status RESOURCE_EXHAUSTED: slow down");
    }

    #[test]
    fn endpoints_with_a_path_are_refused() {
        let config = ExporterConfig::new("http://localhost:4317/v1/traces", crate::Protocol::Grpc);
        let error = GrpcExporter::new(&config).err().unwrap();
        assert!(error.to_string().contains("\"/v1/traces\""), "{error}");
        let config = ExporterConfig::new("http://localhost:4317/", crate::Protocol::Grpc);
        assert!(GrpcExporter::new(&config).is_ok());
    }

    #[test]
    fn invalid_metadata_is_a_config_error() {
        assert!(matches!(
            metadata(&[("key-bin".to_owned(), "x".to_owned())]),
            Err(ConfigError::Header { ref name, .. }) if name == "key-bin"
        ));
        assert!(metadata(&[("x".to_owned(), "caf\u{e9}".to_owned())]).is_err());
        let map = metadata(&[("Authorization".to_owned(), "Bearer t".to_owned())]).unwrap();
        assert_eq!(map.get("authorization").unwrap(), "Bearer t");
    }
}
