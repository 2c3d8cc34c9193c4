//! `bench capture-memory`: the resident memory of a capture process (peak,
//! and after the load) under many concurrent large uploads.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tape_otlp::Signal;
use tape_replay::{Exporter, ExporterConfig, Protocol};
use tokio::time::Instant;

use crate::capture::trace_requests;
use crate::error::{ensure, invalid_if};
use crate::system::{cpus, process_memory, temp_dir};
use crate::{Error, Host, Step, Valid};

/// How long an upload waits before it is sent again after a retryable
/// refusal: shorter than the capture's `Retry-After` of 1 s, so that the
/// load stays on.
const UPLOAD_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Where the uploads of `bench capture-memory` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf.
    Http,
    /// Half of the uploads each, gRPC first.
    Both,
}

impl UploadProtocol {
    /// `grpc`, `http` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadProtocol::Grpc => "grpc",
            UploadProtocol::Http => "http",
            UploadProtocol::Both => "both",
        }
    }
}

/// How `bench capture-memory` loads the capture process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureMemoryBenchConfig {
    /// Uploads sent at once; default 64.
    pub uploads: usize,
    /// Size of each upload (one OTLP trace request, protobuf), in MiB; default 15.
    pub upload_size_mb: u64,
    /// Where the uploads go; default both.
    pub protocol: UploadProtocol,
    /// How long after the last upload is acknowledged the memory is read
    /// again, in nanoseconds; default 3 s.
    pub settle_nanos: u64,
    /// The otlp-tape binary whose `capture` is measured, run as
    /// `BINARY --store DIR --output json capture ...`; default: this
    /// process's own program.
    pub binary: Option<PathBuf>,
}

impl Default for CaptureMemoryBenchConfig {
    fn default() -> Self {
        CaptureMemoryBenchConfig {
            uploads: 64,
            upload_size_mb: 15,
            protocol: UploadProtocol::Both,
            settle_nanos: 3_000_000_000,
            binary: None,
        }
    }
}

/// What `bench capture-memory` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureMemoryBench {
    /// The binary whose `capture` was measured.
    pub binary: String,
    /// `grpc`, `http` or `both` (half of the uploads each, gRPC first).
    pub protocol: String,
    /// Uploads sent at once.
    pub uploads: usize,
    /// Bytes of each upload.
    pub upload_bytes: usize,
    /// Spans in each upload.
    pub spans_per_upload: u64,
    /// Resident memory of the capture process once it listens, before the load.
    pub idle_rss_bytes: u64,
    /// Peak resident memory of the capture process (Linux `VmHWM`).
    pub peak_rss_bytes: u64,
    /// Resident memory of the capture process `settle` after the last upload was acknowledged.
    pub after_load_rss_bytes: u64,
    /// The settle time, in seconds.
    pub settle_seconds: f64,
    /// From the first upload sent to the last acknowledged.
    pub seconds: f64,
    /// Refusals with a retryable code, each upload sent again after a pause.
    pub retryable_refusals: u64,
    /// Requests the finished session holds: every upload, once.
    pub recorded_requests: u64,
    /// CPUs of this machine.
    pub cpus: usize,
}

impl crate::Report for CaptureMemoryBench {
    /// Fails unless the capture recorded every upload once.
    fn check(&self) -> Result<(), Error> {
        ensure(self.recorded_requests == self.uploads as u64, || {
            format!(
                "the capture recorded {} requests of the {} uploads it acknowledged",
                self.recorded_requests, self.uploads
            )
        })
    }
}

impl CaptureMemoryBenchConfig {
    /// Checks the config; the messages name the flags.
    pub fn validate(self) -> Result<Valid<Self>, Error> {
        invalid_if(self.uploads == 0, || "--uploads must be at least 1".to_owned())?;
        invalid_if(self.upload_size_mb == 0, || "--upload-size-mb must be more than zero".to_owned())?;
        Ok(Valid(self))
    }
}

impl Valid<CaptureMemoryBenchConfig> {
    /// Runs a capture process into a temporary local store, loads it, reads
    /// its memory, and stops it with SIGTERM. The report is returned even
    /// when an upload went missing: [`Report::check`](crate::Report::check) says so.
    #[allow(clippy::cast_precision_loss)] // sizes are for reading
    pub async fn run(&self, host: &impl Host) -> Result<CaptureMemoryBench, Error> {
        let config = &self.0;
        let binary = match &config.binary {
            Some(path) => path.clone(),
            None => {
                std::env::current_exe().map_err(Error::io("cannot find this otlp-tape binary to run a capture with"))?
            }
        };
        let upload_bytes = usize::try_from(config.upload_size_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        let (payload, spans_per_upload) = upload_of_size(host, upload_bytes).await?;
        let dir = temp_dir("session")?;
        let (grpc_port, http_port) = (free_port()?, free_port()?);
        let mut child = tokio::process::Command::new(&binary)
            .arg("--store")
            .arg(dir.path())
            .args(["--output", "json", "capture", "--session-id", "bench-memory", "--no-progress"])
            .args(["--grpc", &format!("127.0.0.1:{grpc_port}"), "--http", &format!("127.0.0.1:{http_port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(Error::io(format!("cannot run {}", binary.display())))?;
        let pid = child.id().ok_or_else(|| Error::Measurement("the capture process ended at once".to_owned()))?;
        wait_until_listening(&[grpc_port, http_port]).await?;
        let idle_rss_bytes = process_memory(pid, "VmRSS:")
            .ok_or_else(|| Error::Measurement("cannot read the capture process's memory".to_owned()))?;
        host.step(Step::Uploads {
            uploads: config.uploads,
            upload_bytes: payload.len() as u64,
            spans_per_upload,
            protocol: config.protocol.as_str(),
            binary: &binary,
            pid,
        });

        let started = Instant::now();
        let mut senders = Vec::new();
        for upload in 0..config.uploads {
            let grpc = match config.protocol {
                UploadProtocol::Grpc => true,
                UploadProtocol::Http => false,
                UploadProtocol::Both => upload < config.uploads / 2,
            };
            let (endpoint, protocol) = if grpc {
                (format!("http://127.0.0.1:{grpc_port}"), Protocol::Grpc)
            } else {
                (format!("http://127.0.0.1:{http_port}"), Protocol::HttpProtobuf)
            };
            let mut exporter = ExporterConfig::new(endpoint, protocol);
            exporter.timeout = Duration::from_mins(2);
            let exporter = Exporter::new(exporter).map_err(|source| Error::Exporter {
                context: "cannot make an exporter for the uploads".to_owned(),
                source,
            })?;
            let payload = payload.clone();
            senders.push(tokio::spawn(async move { upload_until_accepted(&exporter, payload).await }));
        }
        let mut retryable_refusals = 0;
        let mut failure = None;
        for sender in senders {
            match sender.await {
                Ok(Ok(refusals)) => retryable_refusals += refusals,
                Ok(Err(error)) => failure = failure.or(Some(error)),
                Err(error) => {
                    failure = failure.or(Some(Error::Measurement(format!("an upload stopped unexpectedly: {error}"))));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let settle = Duration::from_nanos(config.settle_nanos);
        tokio::time::sleep(settle).await;
        let after_load_rss_bytes = process_memory(pid, "VmRSS:");
        let peak_rss_bytes = process_memory(pid, "VmHWM:");
        // SIGTERM: the capture finishes its session and prints its summary.
        let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        let output = tokio::time::timeout(Duration::from_mins(2), async {
            let mut stdout = Vec::new();
            if let Some(mut out) = child.stdout.take() {
                tokio::io::AsyncReadExt::read_to_end(&mut out, &mut stdout).await?;
            }
            child.wait().await?;
            std::io::Result::Ok(stdout)
        })
        .await
        .map_err(|_| Error::Measurement("the capture did not finish within 2 minutes of SIGTERM".to_owned()))?
        .map_err(Error::io("cannot read the capture's summary"))?;
        if let Some(error) = failure {
            return Err(error);
        }
        let summary: serde_json::Value = serde_json::from_slice(&output).map_err(|source| Error::Json {
            context: "the capture's summary is not the JSON it should be".to_owned(),
            source,
        })?;
        let recorded_requests = summary["requests"]["traces"].as_u64().unwrap_or_default();
        Ok(CaptureMemoryBench {
            binary: binary.display().to_string(),
            protocol: config.protocol.as_str().to_owned(),
            uploads: config.uploads,
            upload_bytes: payload.len(),
            spans_per_upload,
            idle_rss_bytes,
            peak_rss_bytes: peak_rss_bytes
                .ok_or_else(|| Error::Measurement("cannot read the capture process's peak memory".to_owned()))?,
            after_load_rss_bytes: after_load_rss_bytes
                .ok_or_else(|| Error::Measurement("cannot read the capture process's memory".to_owned()))?,
            settle_seconds: settle.as_secs_f64(),
            seconds,
            retryable_refusals,
            recorded_requests,
            cpus: cpus(),
        })
    }
}

/// One trace request of at least `bytes` bytes: the benchmark pattern's
/// requests one after another (a protobuf message's repeated fields
/// concatenate), and its spans.
async fn upload_of_size(host: &impl Host, bytes: usize) -> Result<(Bytes, u64), Error> {
    let requests = trace_requests(host, 2000).await?;
    let mut payload = Vec::with_capacity(bytes + 64 * 1024);
    let mut spans = 0;
    for request in requests.iter().cycle() {
        if payload.len() >= bytes {
            break;
        }
        payload.extend_from_slice(&request.payload);
        spans += request.spans;
    }
    Ok((Bytes::from(payload), spans))
}

/// Sends `payload` until it is accepted, pausing after each retryable
/// refusal; returns how many there were.
async fn upload_until_accepted(exporter: &Exporter, payload: Bytes) -> Result<u64, Error> {
    let started = Instant::now();
    let mut refusals = 0;
    loop {
        match exporter.export(Signal::Traces, payload.clone()).await {
            Ok(_) => return Ok(refusals),
            Err(error) if error.is_retryable() && started.elapsed() < Duration::from_mins(5) => {
                refusals += 1;
                tokio::time::sleep(UPLOAD_RETRY_PAUSE).await;
            }
            Err(source) => {
                return Err(Error::Export { context: "the capture did not accept an upload".to_owned(), source });
            }
        }
    }
}

/// A loopback port free now.
fn free_port() -> Result<u16, Error> {
    let listener =
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::io("cannot find a free port"))?;
    Ok(listener.local_addr().map_err(Error::io("cannot find a free port"))?.port())
}

/// Waits until something listens on each of `ports` on loopback.
async fn wait_until_listening(ports: &[u16]) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for &port in ports {
        while tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.is_err() {
            ensure(Instant::now() < deadline, || format!("the capture did not listen on port {port} within 30 s"))?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}
