//! `otlp-tape capture`: receive live OTLP and record it into a session.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde::Serialize;
use tape_capture::{
    Capture, CaptureConfig, CaptureEndpoints, CaptureSettings, ReceiveLimits, SignalSnapshot, StartError, Stats,
    StatsSnapshot, StopReason,
};
use tape_otlp::Signal;
use tape_session::{SealOutcome, SessionId, SessionStatus, SessionStore, Timestamp, WriterId};

use tape_store::{SpooledStore, StoreLocation};

use crate::cli::{CaptureArgs, OutputFormat, ReceiveArgs};
use crate::env;
use crate::output::{human_bytes, note, print_json};

/// What a capture recorded, for the summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptureSummary {
    session_id: SessionId,
    status: SessionStatus,
    reason: String,
    store: String,
    start: Timestamp,
    end: Option<Timestamp>,
    duration_seconds: f64,
    items: tape_session::SignalCounts,
    requests: tape_session::SignalCounts,
    size_bytes: u64,
    blobs: usize,
    content_hash: String,
    received: StatsSnapshot,
    forward: Option<String>,
    /// The writer this capture was, when it joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    writer_id: Option<WriterId>,
    /// When it joined: what sealing the session did as it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    seal: Option<SealSummary>,
}

/// What sealing a joined session did as its writer stopped.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SealSummary {
    /// `sealed` (by this writer), `alreadySealed` (by another) or
    /// `writersActive`.
    outcome: &'static str,
    /// The session's writers, when it is sealed.
    writers: usize,
    /// The writers still active, when it is not.
    active_writers: Vec<WriterId>,
}

impl SealSummary {
    fn of(outcome: &SealOutcome) -> Self {
        match outcome {
            SealOutcome::Sealed(metadata) => {
                SealSummary { outcome: "sealed", writers: metadata.writers.len(), active_writers: Vec::new() }
            }
            SealOutcome::AlreadySealed(metadata) => {
                SealSummary { outcome: "alreadySealed", writers: metadata.writers.len(), active_writers: Vec::new() }
            }
            SealOutcome::WritersActive(active) => {
                SealSummary { outcome: "writersActive", writers: 0, active_writers: active.clone() }
            }
        }
    }
}

/// Exit code of a capture refused before it started because of what it
/// was asked (a session that cannot be joined, a writer id in use).
const EXIT_REFUSED: u8 = 2;

/// Prints `error` as `main` does and exits with [`EXIT_REFUSED`].
fn refused(error: &anyhow::Error) -> ExitCode {
    crate::output::print_error(error);
    ExitCode::from(EXIT_REFUSED)
}

/// `capture`
pub async fn run(
    location: &StoreLocation,
    store: Arc<dyn SessionStore>,
    args: CaptureArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let (plan, config) = capture_config(&args)?;
    let now = tape_capture::now();
    let id = plan.session_id(now);
    let writer = plan.writer_id().cloned();
    let spool_dir = crate::store::spool_dir(args.spool_dir.as_deref());
    // A joining writer locks (session, writer): writers of one session
    // may share a host and a spool directory.
    let _lock = match &writer {
        None => match tape_store::try_lock(&spool_dir, &id)? {
            Some(lock) => lock,
            None => return Err(anyhow!("session {id} is being captured by another running otlp-tape")),
        },
        Some(writer) => match tape_store::try_lock_writer(&spool_dir, &id, writer)? {
            Some(lock) => lock,
            None => {
                return Ok(refused(&anyhow!(
                    "writer {writer} of session {id} is being captured by another running otlp-tape on this host; \
                     give every writer its own --writer-id"
                )));
            }
        },
    };
    // On S3 the open blobs are spooled to local files, so that a crash
    // loses no more than on a local store; spool files a crashed capture
    // left behind are recovered first.
    let store: Arc<dyn SessionStore> = if matches!(location, StoreLocation::S3 { .. }) {
        recover_spool(&store, &spool_dir).await?;
        Arc::new(SpooledStore::new(store, spool_dir.clone()))
    } else {
        store
    };
    let metadata = plan.metadata(id.clone(), now, &endpoints(&args));

    let mut stop_signals = crate::signals::StopSignals::register()?;
    let location = store.location();
    let capture = match Capture::start(Arc::clone(&store), metadata, config).await {
        Ok(capture) => capture,
        Err(error) => {
            let refusal = join_refusal(&error, writer.as_ref());
            let error =
                anyhow::Error::new(error).context(format!("cannot start capturing into session {id} in {location}"));
            return match refusal {
                Some(refusal) => Ok(refused(&error.context(refusal))),
                None => Err(error),
            };
        }
    };
    let mut listening = Vec::new();
    if let Some(addr) = capture.grpc_addr() {
        listening.push(format!("OTLP/gRPC on {addr}"));
    }
    if let Some(addr) = capture.http_addr() {
        listening.push(format!("OTLP/HTTP on {addr}"));
    }
    // Started on port 0, a script learns the ports from one
    // machine-readable line first on stdout, as serve prints it.
    let chosen_port = [args.grpc.0, args.http.0].into_iter().flatten().any(|addr| addr.port() == 0);
    if chosen_port {
        println!(
            "{}",
            serde_json::json!({
                "grpc": capture.grpc_addr().map(|addr| addr.to_string()),
                "http": capture.http_addr().map(|addr| addr.to_string()),
            })
        );
    }
    match &writer {
        Some(writer) => note(format!(
            "Capturing into session {id} in {location} as writer {writer} (joined): {}.",
            listening.join(", ")
        )),
        None => note(format!("Capturing into session {id} in {location}: {}.", listening.join(", "))),
    }
    if let Some(forward) = &args.forward.url {
        note(format!("Forwarding every accepted request to {forward} ({}).", args.forward.protocol));
    }
    note("Stop with Ctrl-C (or SIGTERM); the session is finished and summarised.");

    let started = Instant::now();
    let progress = (!args.no_progress && std::io::stderr().is_terminal() && format == OutputFormat::Text)
        .then(|| tokio::spawn(show_progress(Arc::clone(capture.stats()), started)));
    let stopper = capture.stop_handle();
    // A second signal gives up finishing a session the store cannot take.
    let signals = tokio::spawn(async move {
        loop {
            stop_signals.next().await;
            stopper.stop();
        }
    });
    let outcome = capture.wait().await;
    signals.abort();
    if let Some(progress) = progress {
        progress.abort();
        eprint!("\r\x1b[2K");
    }
    let outcome = outcome.with_context(|| format!("the capture into session {id} failed"))?;
    let metadata = &outcome.recording.metadata;
    let summary = CaptureSummary {
        session_id: metadata.session_id.clone(),
        status: metadata.status,
        reason: outcome.recording.reason.to_string(),
        store: location.clone(),
        start: metadata.start_time,
        end: metadata.end_time,
        duration_seconds: started.elapsed().as_secs_f64(),
        items: metadata.item_counts(),
        requests: metadata.request_counts,
        size_bytes: metadata.total_size_bytes,
        blobs: metadata.blobs.len(),
        content_hash: metadata.content_hash.clone(),
        received: outcome.stats,
        forward: args.forward.url.clone(),
        writer_id: outcome.recording.writer.clone(),
        seal: outcome.recording.seal.as_ref().map(SealSummary::of),
    };
    let failed = matches!(outcome.recording.reason, StopReason::Failed(_));
    if format == OutputFormat::Json {
        print_json(&summary)?;
    } else {
        print_summary(&summary);
    }
    if failed {
        return Err(anyhow!("the capture into session {id} failed: {}", summary.reason));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &CaptureSummary) {
    println!("{}", summary.session_id);
    note(format!(
        "Captured session {} ({}, {}) in {}: {}.",
        summary.session_id,
        summary.status,
        summary.reason,
        crate::output::seconds(summary.duration_seconds),
        crate::output::session_contents(&summary.items, &summary.requests, summary.size_bytes, summary.blobs),
    ));
    let total = summary.received.total();
    note(format!(
        "  Refused: {} rejected as invalid, {} throttled (told to retry), {} to unknown paths or with the wrong method; ignored (signal not recorded): {} requests.",
        total.rejected, total.throttled, summary.received.unrouted, total.ignored_requests
    ));
    for signal in Signal::ALL {
        let one = summary.received.signal(signal);
        if *one != SignalSnapshot::default() {
            note(format!(
                "    {:<7}  {} requests, {} {}; {} rejected, {} throttled",
                signal.as_str(),
                one.requests,
                one.items,
                signal.item_noun(),
                one.rejected,
                one.throttled
            ));
        }
    }
    if let (Some(writer), Some(seal)) = (&summary.writer_id, &summary.seal) {
        let id = &summary.session_id;
        let writers = crate::output::count(seal.writers, "writer", "writers");
        note(match seal.outcome {
            "sealed" => format!("  Writer {writer} was the last to stop and sealed the session ({writers})."),
            "alreadySealed" => format!("  Writer {writer} stopped; the session is sealed ({writers})."),
            // Every writer stopped, but another sealer's marker stood in the
            // way past the wait: one that crashed (or hangs) while sealing.
            _ if seal.active_writers.is_empty() => format!(
                "  Writer {writer} stopped, and so has every writer, but the session is not sealed: another process \
                 held the seal marker (writers/.seal) and did not finish; if it stopped, `otlp-tape sessions seal \
                 {id}` seals the session."
            ),
            _ => format!(
                "  Writer {writer} stopped; the session stays active while {} {} ({}): the last to stop seals it, or \
                 `otlp-tape sessions seal {id}` (after `sessions repair {id} --writer W` for one that crashed).",
                crate::output::count(seal.active_writers.len(), "writer", "writers"),
                if seal.active_writers.len() == 1 { "writes" } else { "write" },
                seal.active_writers.iter().map(WriterId::as_str).collect::<Vec<_>>().join(", "),
            ),
        });
    }
    if let Some(forward) = &summary.forward {
        note(format!(
            "  Forwarded to {forward}: {} requests delivered, {} failed.",
            total.forwarded, total.forward_failed
        ));
    }
    note(format!("  Stored in {}", summary.store));
    note(format!("  Explore with: otlp-tape sessions show {}", summary.session_id));
}

/// The capture's settings as its flags give them (the environment's
/// `CAPTURE_*` variables are read when they are checked).
fn settings(args: &CaptureArgs) -> CaptureSettings {
    CaptureSettings {
        session_id: args.session_id.clone(),
        description: args.description.clone(),
        diagnostic_session_id: args.diagnostic_session_id.clone(),
        flags: args.flags.clone(),
        signals: Some(args.signals),
        max_size_mb: args.max_size_mb,
        max_duration: args.max_duration,
        durable: args.durable,
        compression_level: args.compression_level,
        queue_size_mb: Some(args.queue_size_mb),
        flush_interval: Some(args.flush_interval),
        blob_max_age: Some(args.blob_max_age),
        blob_max_size_mb: Some(args.blob_max_size_mb),
        join: args.join,
        writer_id: args.writer_id.clone(),
    }
}

/// What refuses a joining capture because of what it was asked: a session
/// that cannot be joined, a writer id that joined before.
fn join_refusal(error: &StartError, writer: Option<&WriterId>) -> Option<String> {
    let (StartError::Session(error), Some(writer)) = (error, writer) else { return None };
    match error {
        tape_session::Error::FileExists { session, file } => Some(format!(
            "writer {writer} has joined session {session} already ({file} exists): two writers with the same writer \
             id; give every writer its own --writer-id"
        )),
        tape_session::Error::SessionNotJoinable { session, .. } => Some(format!(
            "writer {writer} cannot join session {session}: only an active session of several writers can be joined"
        )),
        _ => None,
    }
}

/// The host's name, for a joining writer's id and manifest: `HOSTNAME`,
/// else `/etc/hostname`.
fn host_name() -> Option<String> {
    env::variable(env::HOSTNAME).or_else(|| {
        std::fs::read_to_string("/etc/hostname").ok().map(|name| name.trim().to_owned()).filter(|name| !name.is_empty())
    })
}

/// Where the capture of `args` receives and forwards, for its metadata.
fn endpoints(args: &CaptureArgs) -> CaptureEndpoints {
    CaptureEndpoints {
        grpc: args.grpc.0,
        http: args.http.0,
        forward: args.forward.url.clone().map(|url| (url, args.forward.protocol.clone())),
    }
}

/// The capture's checked settings and its configuration, from its flags
/// and the environment.
fn capture_config(args: &CaptureArgs) -> anyhow::Result<(tape_capture::CapturePlan, CaptureConfig)> {
    let plan = settings(args).validate(env::variable)?;
    let mut plan = if args.join { plan.on_host(host_name()) } else { plan };
    if let Some(join) = &mut plan.recorder.join {
        join.heartbeat = Duration::from_nanos(args.heartbeat);
    }
    let max_request_bytes = tape_capture::max_request_bytes(args.max_request_size_mb)?;
    let forward = crate::forward::forward_config(&args.forward)?;
    let config = CaptureConfig {
        grpc: args.grpc.0,
        http: args.http.0,
        max_request_bytes,
        receive: receive_limits(&args.receive, max_request_bytes)?,
        recorder: plan.recorder.clone(),
        forward,
    };
    Ok((plan, config))
}

/// How the receivers read request bodies, from `--receive-budget-mb` and
/// `--request-read-timeout`; the budget must hold the largest request.
pub(crate) fn receive_limits(args: &ReceiveArgs, max_request_bytes: usize) -> anyhow::Result<ReceiveLimits> {
    Ok(tape_capture::receive_limits(args.receive_budget_mb, args.request_read_timeout, max_request_bytes)?)
}

/// Redraws one status line on the terminal every second.
async fn show_progress(stats: Arc<Stats>, started: Instant) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last_items = 0;
    loop {
        ticker.tick().await;
        let total = stats.snapshot().total();
        let rate = total.items.saturating_sub(last_items);
        last_items = total.items;
        eprint!(
            "\r\x1b[2K{:>6.0}s  {} requests  {} items  {}  {rate} items/s  {} rejected  {} throttled",
            started.elapsed().as_secs_f64(),
            total.requests,
            total.items,
            human_bytes(total.bytes),
            total.rejected,
            total.throttled,
        );
    }
}

/// Repairs every session with spool files left by a capture that is no
/// longer running, so that what it flushed reaches the store, and says so.
pub(crate) async fn recover_spool(store: &Arc<dyn SessionStore>, spool_dir: &std::path::Path) -> anyhow::Result<()> {
    for recovered in tape_store::recover_spool(store, spool_dir, tape_capture::now()).await? {
        match &recovered.writer {
            None => note(format!(
                "Recovered spool files of session {} left by a capture that stopped:\n{}",
                recovered.session_id, recovered.report
            )),
            Some(writer) => note(format!(
                "Recovered spool files of writer {writer} of session {} left by a capture that stopped:\n{}",
                recovered.session_id, recovered.report
            )),
        }
    }
    Ok(())
}
