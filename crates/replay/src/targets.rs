//! Where each signal goes: one [`Exporter`] per signal, shared between
//! signals whose configurations are equal.
//!
//! The OTLP specification lets every signal have its own endpoint,
//! protocol, headers and TLS settings (`OTEL_EXPORTER_OTLP_TRACES_*` and
//! its metrics and logs siblings). [`Targets`] holds the three exporters
//! and picks the one of each request's signal; when the configurations
//! are the same, as they usually are, the three signals share one
//! exporter and so one connection pool (HTTP) or channel (gRPC).

use std::fmt;

use bytes::Bytes;
use tape_otlp::Signal;

use crate::error::{ConfigError, ExportError};
use crate::exporter::{ExportOutcome, Exporter, ExporterConfig};

/// One exporter per signal. Cloning is cheap: clones share the exporters.
///
/// ```no_run
/// # async fn example(payload: bytes::Bytes) -> Result<(), Box<dyn std::error::Error>> {
/// use tape_otlp::Signal;
/// use tape_replay::{ExporterConfig, Protocol, Targets};
///
/// let base = ExporterConfig::new("http://localhost:4318", Protocol::HttpProtobuf);
/// // Logs go to their own exact URL; traces and metrics share one exporter.
/// let mut logs = ExporterConfig::new("http://logs.example.com:4318/ingest", Protocol::HttpProtobuf);
/// logs.append_signal_path = false;
/// let targets = Targets::new(base.clone(), base, logs)?;
/// eprintln!("replaying to {}", targets.describe());
/// targets.export(Signal::Logs, payload).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Targets {
    /// The exporter of each signal, in the order of [`Signal::ALL`].
    exporters: [Exporter; 3],
}

impl Targets {
    /// Builds the exporters of traces, metrics and logs from their
    /// configurations, one exporter for each distinct configuration. The
    /// error is that of the first configuration, in that order, that
    /// cannot work. Nothing connects until the first export.
    pub fn new(traces: ExporterConfig, metrics: ExporterConfig, logs: ExporterConfig) -> Result<Targets, ConfigError> {
        let traces = Exporter::new(traces)?;
        let metrics = reuse_or_build(&[&traces], metrics)?;
        let logs = reuse_or_build(&[&traces, &metrics], logs)?;
        Ok(Targets { exporters: [traces, metrics, logs] })
    }

    /// One exporter, built from `config`, for every signal.
    pub fn single(config: ExporterConfig) -> Result<Targets, ConfigError> {
        Ok(Targets::from(Exporter::new(config)?))
    }

    /// The exporter of `signal`.
    pub fn exporter(&self, signal: Signal) -> &Exporter {
        &self.exporters[signal.index()]
    }

    /// Sends one `Export*ServiceRequest` of `signal`, given as protobuf
    /// bytes, once, with the signal's exporter; see [`Exporter::export`].
    pub async fn export(&self, signal: Signal, payload: Bytes) -> Result<ExportOutcome, ExportError> {
        self.exporter(signal).export(signal, payload).await
    }

    /// Whether every signal goes through one exporter.
    pub fn is_single(&self) -> bool {
        let [traces, metrics, logs] = &self.exporters;
        traces.shares_connections_with(metrics) && traces.shares_connections_with(logs)
    }

    /// Where the signals go, for messages: `http://localhost:4318
    /// (http/protobuf)` when every signal goes to the same endpoint over
    /// the same protocol, else one entry per signal, such as
    /// `traces: http://localhost:4318 (http/protobuf), metrics: ..., logs: ...`.
    pub fn describe(&self) -> String {
        let [traces, metrics, logs] = Signal::ALL.map(|signal| describe_exporter(self.exporter(signal)));
        if traces == metrics && traces == logs {
            return traces;
        }
        format!("traces: {traces}, metrics: {metrics}, logs: {logs}")
    }
}

impl From<Exporter> for Targets {
    /// Every signal through `exporter`.
    fn from(exporter: Exporter) -> Self {
        Targets { exporters: [exporter.clone(), exporter.clone(), exporter] }
    }
}

impl fmt::Debug for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            return f.debug_tuple("Targets").field(&self.exporters[0]).finish();
        }
        let [traces, metrics, logs] = &self.exporters;
        f.debug_struct("Targets").field("traces", traces).field("metrics", metrics).field("logs", logs).finish()
    }
}

/// A clone of the exporter of `existing` built from `config`, if any, else
/// a new exporter.
fn reuse_or_build(existing: &[&Exporter], config: ExporterConfig) -> Result<Exporter, ConfigError> {
    match existing.iter().find(|exporter| *exporter.config() == config) {
        Some(exporter) => Ok((*exporter).clone()),
        None => Exporter::new(config),
    }
}

/// `endpoint (protocol)`.
fn describe_exporter(exporter: &Exporter) -> String {
    format!("{} ({})", exporter.endpoint(), exporter.protocol())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;

    fn http(endpoint: &str) -> ExporterConfig {
        ExporterConfig::new(endpoint, Protocol::HttpProtobuf)
    }

    #[test]
    fn equal_configurations_share_one_exporter() {
        let targets = Targets::new(http("http://a:4318"), http("http://a:4318"), http("http://a:4318")).unwrap();
        assert!(targets.is_single());
        assert!(targets.exporter(Signal::Traces).shares_connections_with(targets.exporter(Signal::Logs)));
        assert_eq!(targets.describe(), "http://a:4318 (http/protobuf)");
    }

    #[test]
    fn logs_reuse_the_metrics_exporter_when_only_traces_differ() {
        let targets = Targets::new(http("http://a:4318"), http("http://b:4318"), http("http://b:4318")).unwrap();
        assert!(!targets.is_single());
        let [traces, metrics, logs] = Signal::ALL.map(|signal| targets.exporter(signal));
        assert!(!traces.shares_connections_with(metrics));
        assert!(metrics.shares_connections_with(logs));
        assert_eq!(
            targets.describe(),
            "traces: http://a:4318 (http/protobuf), metrics: http://b:4318 (http/protobuf), \
             logs: http://b:4318 (http/protobuf)"
        );
    }

    #[test]
    fn settings_other_than_the_endpoint_make_separate_exporters_described_once() {
        let mut gzip = http("http://a:4318");
        gzip.compression = crate::Compression::Gzip;
        let targets = Targets::new(http("http://a:4318"), gzip, http("http://a:4318")).unwrap();
        let [traces, metrics, logs] = Signal::ALL.map(|signal| targets.exporter(signal));
        assert!(!traces.shares_connections_with(metrics));
        assert!(traces.shares_connections_with(logs));
        assert_eq!(targets.describe(), "http://a:4318 (http/protobuf)");
    }

    #[test]
    fn the_first_bad_configuration_is_the_error() {
        let error = Targets::new(http("http://a:4318"), http("not a url"), http("ftp://b")).unwrap_err();
        assert!(matches!(error, ConfigError::Endpoint { ref endpoint, .. } if endpoint == "not a url"), "{error}");
    }

    #[test]
    fn single_and_from_use_one_exporter_for_every_signal() {
        let targets = Targets::single(ExporterConfig::new("http://a:4317", Protocol::Grpc)).unwrap();
        assert!(targets.is_single());
        assert_eq!(targets.describe(), "http://a:4317 (grpc)");
        assert!(targets.clone().exporter(Signal::Metrics).shares_connections_with(targets.exporter(Signal::Traces)));
        let exporter = Exporter::new(http("http://a:4318")).unwrap();
        assert!(Targets::from(exporter.clone()).exporter(Signal::Logs).shares_connections_with(&exporter));
    }
}
