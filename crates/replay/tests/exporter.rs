//! The OTLP exporters against a real OTLP/gRPC and OTLP/HTTP target.

use std::time::Duration;

use bytes::Bytes;
use tape_otlp::{ExportRequest, Signal, sample};
use tape_replay::{
    Compression, ConfigError, ExportErrorKind, ExportOutcome, Exporter, ExporterConfig, Protocol, RetryPolicy, Targets,
    TlsOptions, export_with_retry,
};
use tape_testkit::otlp_target::{Failure, OtlpTarget, OtlpTargetOptions, Transport};

const PROTOCOLS: [Protocol; 3] = [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson];

/// A stored request of `signal`: protobuf `Export*ServiceRequest` bytes.
fn payload(signal: Signal) -> Bytes {
    let request = match signal {
        Signal::Traces => ExportRequest::from(sample::traces("checkout", 12, 0)),
        Signal::Metrics => ExportRequest::from(sample::metrics("checkout", 0)),
        Signal::Logs => ExportRequest::from(sample::logs("checkout", 5, 0)),
    };
    Bytes::from(request.encode_protobuf())
}

async fn start() -> OtlpTarget {
    OtlpTarget::start(OtlpTargetOptions::default()).await
}

fn config(target: &OtlpTarget, protocol: Protocol) -> ExporterConfig {
    let endpoint = match protocol {
        Protocol::Grpc => target.grpc_endpoint(),
        Protocol::HttpProtobuf | Protocol::HttpJson => target.http_endpoint(),
    };
    ExporterConfig::new(endpoint, protocol)
}

fn exporter(target: &OtlpTarget, protocol: Protocol) -> Exporter {
    Exporter::new(config(target, protocol)).unwrap()
}

fn transport(protocol: Protocol) -> Transport {
    match protocol {
        Protocol::Grpc => Transport::Grpc,
        Protocol::HttpProtobuf => Transport::HttpProtobuf,
        Protocol::HttpJson => Transport::HttpJson,
    }
}

/// The failure of `protocol`'s transport that the OTLP specification calls
/// retryable without a delay.
fn unavailable(protocol: Protocol) -> Failure {
    match protocol {
        Protocol::Grpc => Failure::Grpc(tonic::Code::Unavailable, None),
        Protocol::HttpProtobuf | Protocol::HttpJson => Failure::Http(503, None),
    }
}

/// A retry policy with waits short enough for real sockets.
fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn every_protocol_and_signal_delivers_the_payload() {
    let target = start().await;
    let mut sent = 0;
    for protocol in PROTOCOLS {
        let exporter = exporter(&target, protocol);
        for signal in Signal::ALL {
            let payload = payload(signal);
            let outcome = exporter.export(signal, payload.clone()).await.unwrap();
            assert_eq!(outcome, ExportOutcome::default(), "{protocol} {signal}");
            sent += 1;

            let received = target.wait_for(sent).await.pop().unwrap();
            assert_eq!((received.signal, received.transport), (signal, transport(protocol)), "{protocol} {signal}");
            if protocol == Protocol::HttpJson {
                assert_eq!(received.request(), ExportRequest::decode_protobuf(signal, &payload).unwrap());
                assert_eq!(received.header("content-type"), Some("application/json"));
            } else {
                assert_eq!(received.body, payload, "{protocol} {signal}: the bytes changed on the way");
            }
            match protocol {
                Protocol::Grpc => assert!(received.path.ends_with("/Export"), "{}", received.path),
                Protocol::HttpProtobuf | Protocol::HttpJson => assert_eq!(received.path, signal.http_path()),
            }
        }
    }
    assert_eq!(target.attempts(), 9);
}

#[tokio::test]
async fn gzip_is_sent_only_when_enabled() {
    let target = start().await;
    let mut sent = 0;
    for protocol in PROTOCOLS {
        for compression in [Compression::None, Compression::Gzip] {
            let mut config = config(&target, protocol);
            config.compression = compression;
            let payload = payload(Signal::Logs);
            Exporter::new(config).unwrap().export(Signal::Logs, payload.clone()).await.unwrap();
            sent += 1;

            let received = target.wait_for(sent).await.pop().unwrap();
            assert_eq!(received.gzip, compression == Compression::Gzip, "{protocol} {compression:?}");
            assert_eq!(received.request(), ExportRequest::decode_protobuf(Signal::Logs, &payload).unwrap());
        }
    }
}

#[tokio::test]
async fn configured_headers_arrive() {
    let target = start().await;
    for (sent, protocol) in PROTOCOLS.into_iter().enumerate() {
        let mut config = config(&target, protocol);
        config.headers =
            vec![("X-Tenant".to_owned(), "blue".to_owned()), ("authorization".to_owned(), "Bearer t0k3n".to_owned())];
        Exporter::new(config).unwrap().export(Signal::Traces, payload(Signal::Traces)).await.unwrap();

        let received = target.wait_for(sent + 1).await.pop().unwrap();
        assert_eq!(received.header("x-tenant"), Some("blue"), "{protocol}");
        assert_eq!(received.header("authorization"), Some("Bearer t0k3n"), "{protocol}");
        let user_agent = received.header("user-agent").unwrap_or_default();
        assert!(user_agent.starts_with("otlp-tape/"), "{protocol}: {user_agent}");
    }
}

#[tokio::test]
async fn partial_success_is_counted() {
    let target = start().await;
    target.partial_success(3);
    for protocol in PROTOCOLS {
        let exporter = exporter(&target, protocol);
        for signal in Signal::ALL {
            let outcome = exporter.export(signal, payload(signal)).await.unwrap();
            assert_eq!(outcome.rejected_items, 3, "{protocol} {signal}");
            let message = outcome.message.unwrap_or_default();
            assert!(message.contains("injected"), "{protocol} {signal}: {message:?}");
        }
    }
    target.partial_success(0);
    for protocol in PROTOCOLS {
        let outcome = exporter(&target, protocol).export(Signal::Metrics, payload(Signal::Metrics)).await.unwrap();
        assert_eq!(outcome, ExportOutcome::default(), "{protocol}");
    }
}

#[tokio::test]
async fn http_503_with_retry_after_is_retryable_with_the_delay() {
    let target = start().await;
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        target.fail_next(1, Failure::Http(503, Some(Duration::from_secs(7))));
        let error = exporter(&target, protocol).export(Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
        assert_eq!(error.kind, ExportErrorKind::Retryable { retry_after: Some(Duration::from_secs(7)) }, "{protocol}");
        let url = format!("{}/v1/traces", target.http_endpoint());
        assert!(error.message.contains(&url), "{protocol}: {}", error.message);
        assert!(error.message.contains("503"), "{protocol}: {}", error.message);
        // The server's `google.rpc.Status` message, read in either encoding.
        assert!(error.message.contains("injected by the OTLP test target"), "{protocol}: {}", error.message);
    }
    assert!(target.received().is_empty());
}

#[tokio::test]
async fn http_429_and_gateway_errors_are_retryable() {
    let target = start().await;
    let exporter = exporter(&target, Protocol::HttpProtobuf);
    for status in [429, 502, 503, 504] {
        target.fail_next(1, Failure::Http(status, None));
        let error = exporter.export(Signal::Metrics, payload(Signal::Metrics)).await.unwrap_err();
        assert_eq!(error.kind, ExportErrorKind::Retryable { retry_after: None }, "{status}");
        assert!(error.message.contains(&status.to_string()), "{}", error.message);
    }
    target.fail_next(1, Failure::Http(429, Some(Duration::from_secs(2))));
    let error = exporter.export(Signal::Metrics, payload(Signal::Metrics)).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn http_400_and_other_errors_are_permanent() {
    let target = start().await;
    let exporter = exporter(&target, Protocol::HttpProtobuf);
    for status in [400, 401, 403, 404, 413, 500] {
        target.fail_next(1, Failure::Http(status, Some(Duration::from_secs(1))));
        let error = exporter.export(Signal::Logs, payload(Signal::Logs)).await.unwrap_err();
        assert_eq!(error.kind, ExportErrorKind::Permanent, "{status}: {}", error.message);
        assert!(error.message.contains(&format!("HTTP {status}")), "{}", error.message);
    }
}

#[tokio::test]
async fn grpc_unavailable_is_retryable() {
    let target = start().await;
    target.fail_next(1, Failure::Grpc(tonic::Code::Unavailable, None));
    let error = exporter(&target, Protocol::Grpc).export(Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
    assert_eq!(error.kind, ExportErrorKind::Retryable { retry_after: None });
    assert!(error.message.contains(target.grpc_endpoint()), "{}", error.message);
    assert!(error.message.contains("UNAVAILABLE"), "{}", error.message);
}

#[tokio::test]
async fn grpc_resource_exhausted_with_retry_info_is_retryable_with_its_delay() {
    let target = start().await;
    let delay = Duration::from_millis(1500);
    target.fail_next(1, Failure::Grpc(tonic::Code::ResourceExhausted, Some(delay)));
    let error = exporter(&target, Protocol::Grpc).export(Signal::Logs, payload(Signal::Logs)).await.unwrap_err();
    assert_eq!(error.kind, ExportErrorKind::Retryable { retry_after: Some(delay) });
    assert!(error.message.contains("RESOURCE_EXHAUSTED"), "{}", error.message);
}

#[tokio::test]
async fn grpc_resource_exhausted_without_retry_info_is_permanent() {
    let target = start().await;
    let exporter = exporter(&target, Protocol::Grpc);
    for code in [tonic::Code::ResourceExhausted, tonic::Code::InvalidArgument, tonic::Code::Unauthenticated] {
        target.fail_next(1, Failure::Grpc(code, None));
        let error = exporter.export(Signal::Metrics, payload(Signal::Metrics)).await.unwrap_err();
        assert_eq!(error.kind, ExportErrorKind::Permanent, "{code:?}: {}", error.message);
    }
}

#[tokio::test]
async fn export_with_retry_recovers_after_two_failures() {
    let target = start().await;
    for (sent, protocol) in PROTOCOLS.into_iter().enumerate() {
        let attempts_before = target.attempts();
        target.fail_next(2, unavailable(protocol));
        let exporter = exporter(&target, protocol);
        let outcome = export_with_retry(&exporter, &quick_retries(5), Signal::Traces, payload(Signal::Traces)).await;
        assert_eq!(outcome.unwrap(), ExportOutcome::default(), "{protocol}");
        assert_eq!(target.attempts() - attempts_before, 3, "{protocol}");
        assert_eq!(target.wait_for(sent + 1).await.len(), sent + 1, "{protocol}");
    }
}

#[tokio::test]
async fn export_with_retry_gives_up_after_max_attempts() {
    let target = start().await;
    target.fail_next(5, Failure::Http(503, None));
    let exporter = exporter(&target, Protocol::HttpProtobuf);
    let error = export_with_retry(&exporter, &quick_retries(3), Signal::Logs, payload(Signal::Logs)).await.unwrap_err();
    assert!(error.is_retryable());
    assert!(error.message.ends_with("(gave up after 3 attempts)"), "{}", error.message);
    assert_eq!(target.attempts(), 3);
    assert!(target.received().is_empty());
}

#[tokio::test]
async fn export_with_retry_stops_at_a_permanent_error() {
    let target = start().await;
    target.fail_next(1, Failure::Grpc(tonic::Code::InvalidArgument, None));
    let exporter = exporter(&target, Protocol::Grpc);
    let error =
        export_with_retry(&exporter, &quick_retries(5), Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
    assert_eq!(error.kind, ExportErrorKind::Permanent);
    assert_eq!(target.attempts(), 1);
}

#[tokio::test]
async fn a_dead_endpoint_is_a_retryable_connection_error_naming_the_endpoint() {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    for protocol in PROTOCOLS {
        let exporter = Exporter::new(ExporterConfig::new(&endpoint, protocol)).unwrap();
        let error = exporter.export(Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
        assert_eq!(error.kind, ExportErrorKind::Retryable { retry_after: None }, "{protocol}: {}", error.message);
        assert!(error.message.contains(&endpoint), "{protocol}: {}", error.message);
        let lowercase = error.message.to_lowercase();
        assert!(lowercase.contains("connect"), "{protocol}: {}", error.message);
    }
}

#[tokio::test]
async fn an_endpoint_of_the_other_transport_is_named_in_the_error() {
    let target = start().await;
    let grpc_to_http = ExporterConfig::new(target.http_endpoint(), Protocol::Grpc);
    let error = Exporter::new(grpc_to_http).unwrap().export(Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
    assert!(error.message.contains("if it is an OTLP/HTTP endpoint"), "{}", error.message);
    assert!(error.message.contains("the protocol http/protobuf"), "{}", error.message);
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let http_to_grpc = ExporterConfig::new(target.grpc_endpoint(), protocol);
        let error =
            Exporter::new(http_to_grpc).unwrap().export(Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
        assert!(error.message.contains("if it is an OTLP/gRPC endpoint"), "{protocol}: {}", error.message);
        assert!(error.message.contains("the protocol grpc"), "{protocol}: {}", error.message);
    }
    assert_eq!(target.attempts(), 0, "neither request reached a receiver of its transport");
}

#[tokio::test]
async fn a_target_that_does_not_answer_in_time_is_retryable() {
    let target = start().await;
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        target.fail_next(1, Failure::Stall);
        let mut config = config(&target, protocol);
        config.timeout = Duration::from_millis(200);
        let error = Exporter::new(config).unwrap().export(Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
        assert_eq!(error.kind, ExportErrorKind::Retryable { retry_after: None }, "{protocol}: {}", error.message);
        assert!(error.message.contains("no response within the timeout of 200ms"), "{protocol}: {}", error.message);
    }
}

#[tokio::test]
async fn a_stopped_target_refuses_connections() {
    let target = start().await;
    let exporters: Vec<Exporter> = PROTOCOLS.into_iter().map(|protocol| exporter(&target, protocol)).collect();
    for exporter in &exporters {
        exporter.export(Signal::Logs, payload(Signal::Logs)).await.unwrap();
    }
    target.shutdown().await;
    for exporter in &exporters {
        let error = exporter.export(Signal::Logs, payload(Signal::Logs)).await.unwrap_err();
        assert!(error.is_retryable(), "{}: {}", exporter.protocol(), error.message);
    }
}

#[tokio::test]
async fn the_http_base_path_is_kept() {
    let target = start().await;
    let endpoint = format!("{}/gateway/otlp/", target.http_endpoint());
    let exporter = Exporter::new(ExporterConfig::new(endpoint, Protocol::HttpProtobuf)).unwrap();
    exporter.export(Signal::Metrics, payload(Signal::Metrics)).await.unwrap();
    assert_eq!(target.wait_for(1).await[0].path, "/gateway/otlp/v1/metrics");
}

#[tokio::test]
async fn clones_share_one_exporter_across_tasks() {
    let target = start().await;
    for protocol in PROTOCOLS {
        let exporter = exporter(&target, protocol);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let exporter = exporter.clone();
                tokio::spawn(async move { exporter.export(Signal::Traces, payload(Signal::Traces)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
    assert_eq!(target.wait_for(24).await.len(), 24);
}

#[tokio::test]
async fn a_payload_that_is_not_a_request_cannot_be_sent_as_json() {
    let target = start().await;
    let exporter = exporter(&target, Protocol::HttpJson);
    let error = exporter.export(Signal::Traces, Bytes::from_static(b"\xff\xff\xff")).await.unwrap_err();
    assert_eq!(error.kind, ExportErrorKind::Permanent);
    assert!(error.message.contains("OTLP/JSON"), "{}", error.message);
    assert_eq!(target.attempts(), 0);
}

#[test]
fn bad_configurations_are_config_errors() {
    for protocol in PROTOCOLS {
        for endpoint in ["not a url", "ftp://localhost:4317", "localhost:4318", "http://"] {
            let error = Exporter::new(ExporterConfig::new(endpoint, protocol)).unwrap_err();
            assert!(matches!(error, ConfigError::Endpoint { .. }), "{protocol} {endpoint}: {error}");
            assert!(error.to_string().contains(endpoint), "{error}");
        }

        let mut config = ExporterConfig::new("http://localhost:4318", protocol);
        config.headers = vec![("bad header".to_owned(), "value".to_owned())];
        let error = Exporter::new(config).unwrap_err();
        assert!(matches!(error, ConfigError::Header { .. }), "{protocol}: {error}");

        let mut config = ExporterConfig::new("https://localhost:4318", protocol);
        config.tls = TlsOptions { ca_file: Some("missing-ca.pem".into()), insecure_skip_verify: false };
        let error = Exporter::new(config).unwrap_err();
        assert!(matches!(error, ConfigError::CaFile { .. }), "{protocol}: {error}");
    }
    let error = "http/xml".parse::<Protocol>().unwrap_err();
    assert!(matches!(error, ConfigError::Protocol(_)), "{error}");
}

#[test]
fn insecure_https_is_accepted_for_every_protocol() {
    for protocol in PROTOCOLS {
        let mut config = ExporterConfig::new("https://localhost:4318", protocol);
        config.tls.insecure_skip_verify = true;
        let exporter = Exporter::new(config).unwrap();
        assert_eq!(exporter.protocol(), protocol);
    }
}

/// An OTLP/HTTP configuration that sends to `url` exactly, as
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and its siblings do.
fn exact(url: String, protocol: Protocol) -> ExporterConfig {
    let mut config = ExporterConfig::new(url, protocol);
    config.append_signal_path = false;
    config
}

#[tokio::test]
async fn an_exact_http_url_is_used_as_it_is() {
    let target = start().await;
    let mut sent = 0;
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        for signal in Signal::ALL {
            for path in [signal.http_path().to_owned(), format!("/ingest/otlp{}", signal.http_path())] {
                let url = format!("{}{path}", target.http_endpoint());
                let exporter = Exporter::new(exact(url, protocol)).unwrap();
                exporter.export(signal, payload(signal)).await.unwrap();
                sent += 1;
                let received = target.wait_for(sent).await.pop().unwrap();
                assert_eq!((received.signal, received.path.as_str()), (signal, path.as_str()), "{protocol}");
            }
        }
    }
}

#[tokio::test]
async fn a_wrong_exact_path_gets_the_targets_404_as_a_permanent_error() {
    let target = start().await;
    // A typo, and a base URL given as an exact one.
    for url in [format!("{}/v1/trace", target.http_endpoint()), target.http_endpoint().to_owned()] {
        let exporter = Exporter::new(exact(url.clone(), Protocol::HttpProtobuf)).unwrap();
        let error = exporter.export(Signal::Traces, payload(Signal::Traces)).await.unwrap_err();
        assert_eq!(error.kind, ExportErrorKind::Permanent, "{url}: {}", error.message);
        assert!(error.message.contains("HTTP 404"), "{url}: {}", error.message);
        assert!(error.message.contains(&url), "{url}: {}", error.message);
    }
    assert!(target.received().is_empty());
}

#[tokio::test]
async fn grpc_ignores_append_signal_path() {
    let target = start().await;
    let exporter = Exporter::new(exact(target.grpc_endpoint().to_owned(), Protocol::Grpc)).unwrap();
    for signal in Signal::ALL {
        exporter.export(signal, payload(signal)).await.unwrap();
    }
    let received = target.wait_for(3).await;
    assert!(received.iter().all(|request| request.transport == Transport::Grpc));
}

#[tokio::test]
async fn targets_send_each_signal_through_its_own_exporter() {
    let target = start().await;
    let traces = config(&target, Protocol::Grpc);
    let metrics = config(&target, Protocol::HttpJson);
    let logs = exact(format!("{}/custom/v1/logs", target.http_endpoint()), Protocol::HttpProtobuf);
    let targets = Targets::new(traces, metrics, logs).unwrap();
    assert!(!targets.is_single());
    for signal in Signal::ALL {
        targets.clone().export(signal, payload(signal)).await.unwrap();
    }
    let received = target.wait_for(3).await;
    let routes: Vec<_> = received.iter().map(|request| (request.signal, request.transport)).collect();
    assert_eq!(
        routes,
        [
            (Signal::Traces, Transport::Grpc),
            (Signal::Metrics, Transport::HttpJson),
            (Signal::Logs, Transport::HttpProtobuf)
        ]
    );
    assert_eq!(received[2].path, "/custom/v1/logs");
    let description = targets.describe();
    assert!(description.starts_with(&format!("traces: {} (grpc), metrics: ", target.grpc_endpoint())), "{description}");
    assert!(description.ends_with("/custom/v1/logs (http/protobuf)"), "{description}");
}

#[tokio::test]
async fn targets_with_equal_configurations_share_one_exporter() {
    let target = start().await;
    for protocol in PROTOCOLS {
        let config = config(&target, protocol);
        let targets = Targets::new(config.clone(), config.clone(), config.clone()).unwrap();
        assert!(targets.is_single(), "{protocol}");
        let traces = targets.exporter(Signal::Traces);
        assert!(Signal::ALL.iter().all(|&signal| targets.exporter(signal).shares_connections_with(traces)));
        assert_eq!(targets.describe(), format!("{} ({protocol})", config.endpoint));
        for signal in Signal::ALL {
            targets.export(signal, payload(signal)).await.unwrap();
        }
    }
    assert_eq!(target.wait_for(9).await.len(), 9);
}
