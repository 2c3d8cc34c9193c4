//! Pass-through (`--forward`) of `capture` and `serve`: the replay
//! crate's exporter behind tape-capture's `Upstream`, which this binary
//! picks and hands to the capture and to the server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use tape_capture::{ForwardConfig, Upstream};
use tape_otlp::Signal;

use crate::cli::ForwardArgs;

/// Pass-through (`--forward` and its options): the exporter and the
/// queue, or `None` without `--forward`.
pub fn forward_config(args: &ForwardArgs) -> anyhow::Result<Option<(Arc<dyn Upstream>, ForwardConfig)>> {
    let Some(url) = args.url.as_deref() else { return Ok(None) };
    let protocol: tape_replay::Protocol =
        args.protocol.parse().map_err(|error| anyhow!("invalid --forward-protocol: {error}"))?;
    let config = tape_replay::ExporterConfig {
        endpoint: url.to_owned(),
        append_signal_path: true,
        protocol,
        headers: args.headers.clone(),
        compression: tape_replay::Compression::Gzip,
        timeout: Duration::from_nanos(args.timeout),
        tls: tape_replay::TlsOptions::default(),
    };
    let exporter = tape_replay::Exporter::new(config).with_context(|| format!("invalid --forward {url}"))?;
    let upstream: Arc<dyn Upstream> = Arc::new(ForwardExporter { exporter, endpoint: url.to_owned() });
    Ok(Some((upstream, ForwardConfig { queue_requests: args.queue.max(1), ..ForwardConfig::default() })))
}

/// Pass-through with the replay crate's exporter: a few quick retries,
/// since a forwarded request must not wait long in the queue.
struct ForwardExporter {
    exporter: tape_replay::Exporter,
    endpoint: String,
}

#[async_trait::async_trait]
impl Upstream for ForwardExporter {
    fn describe(&self) -> String {
        self.endpoint.clone()
    }

    async fn send(&self, signal: Signal, payload: Bytes) -> Result<(), String> {
        let policy = tape_replay::RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
        };
        tape_replay::export_with_retry(&self.exporter, &policy, signal, payload)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}
