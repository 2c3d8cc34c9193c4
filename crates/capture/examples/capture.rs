//! Records the OTLP sent to 127.0.0.1:4317 (gRPC) and 127.0.0.1:4318 (HTTP)
//! for a minute into a session under `./sessions`, without the command line:
//! `cargo run -p tape-capture --example capture`.

use std::sync::Arc;

use tape_capture::{Capture, CaptureConfig, CaptureEndpoints, CaptureSettings, DEFAULT_MAX_REQUEST_BYTES};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings: CaptureSettings = serde_json::from_str(r#"{"description": "example", "maxDuration": "60s"}"#)?;
    let plan = settings.validate(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))?;
    let (grpc, http) = (Some("127.0.0.1:4317".parse()?), Some("127.0.0.1:4318".parse()?));
    let now = tape_capture::now();
    let metadata = plan.metadata(plan.session_id(now), now, &CaptureEndpoints { grpc, http, forward: None });
    let receive = tape_capture::ReceiveLimits::default();
    let config = CaptureConfig {
        grpc,
        http,
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        receive,
        recorder: plan.recorder,
        forward: None,
    };
    let capture = Capture::start(Arc::new(tape_store::LocalStore::new(".")), metadata, config).await?;
    let outcome = capture.wait().await?;
    let metadata = &outcome.recording.metadata;
    println!(
        "{}: {} requests, {} bytes",
        metadata.session_id,
        metadata.request_counts.total(),
        metadata.total_size_bytes
    );
    Ok(())
}
