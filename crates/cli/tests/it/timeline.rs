//! Session timelines (`timeline.json`) as the commands that write sessions
//! leave them, and as `tape_session::timeline` reads, rebuilds and keeps
//! them: seeded and captured sessions, stale, broken and missing files, a
//! session still being recorded, a full disk, and `bench timeline`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use opentelemetry::KeyValue;
use opentelemetry::trace::Status;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanExporter as _;
use tape_otlp::{ExportRequest, Signal};
use tape_session::{
    SessionId, SessionStatus, SessionStore, SessionType, SessionWriter, Timeline, TimelineBuilder, TimelineRow,
    WriterOptions, read_session, timeline,
};
use tape_store::LocalStore;
use tape_testkit::conformance::{new_metadata, sample_records};
use tape_testkit::tmpfs::Tmpfs;

use crate::disk_full::spawn_capture;
use crate::serve::spans_with_status;

fn id(id: &str) -> SessionId {
    SessionId::new(id).unwrap()
}

/// The timeline of session `id` in the local store at `store`, through
/// `tape_session::timeline`.
async fn timeline_of(store: &Path, session: &str) -> Timeline {
    timeline(&LocalStore::new(store), &id(session)).await.unwrap()
}

/// The session's `timeline.json` as kept, if any.
fn kept(store: &Path, session: &str) -> Option<Timeline> {
    let path = store.join("sessions").join(session).join("timeline.json");
    std::fs::read(path).ok().map(|bytes| serde_json::from_slice(&bytes).unwrap())
}

/// The timeline of session `id` counted from its blobs decoded in full:
/// items per signal and spans with status code 2 per second.
async fn decoded_timeline(store: &Path, session: &str) -> Timeline {
    let store = LocalStore::new(store);
    let metadata = store.read_metadata(&id(session)).await.unwrap();
    let records: Vec<_> = read_session(&store, &metadata, |_| true).try_collect().await.unwrap();
    let mut builder = TimelineBuilder::new();
    for (signal, record) in records {
        let request = ExportRequest::decode_protobuf(signal, &record.payload).unwrap();
        let errors = match &request {
            ExportRequest::Traces(traces) => traces
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .flat_map(|scope| &scope.spans)
                .filter(|span| span.status.as_ref().is_some_and(|status| status.code == 2))
                .count() as u64,
            _ => 0,
        };
        builder.add(signal, record.receive_time(), request.item_count(), errors);
    }
    builder.build(metadata.session_id.clone(), metadata.content_hash.clone())
}

/// The metadata's item counts as `(traces, metrics, logs)`.
async fn item_counts(store: &Path, session: &str) -> (u64, u64, u64) {
    let counts = LocalStore::new(store).read_metadata(&id(session)).await.unwrap().item_counts();
    (counts.get(Signal::Traces), counts.get(Signal::Metrics), counts.get(Signal::Logs))
}

fn totals(timeline: &Timeline) -> (u64, u64, u64) {
    let TimelineRow { traces, metrics, logs, .. } = timeline.totals();
    (traces, metrics, logs)
}

fn seed(store: &Path, session: &str, extra: &[&str]) {
    crate::tape(store)
        .args(["seed", "--pattern", "basic-topology", "--seed", "7", "--session-id", session])
        .args(extra)
        .assert()
        .success();
}

#[tokio::test]
async fn a_seeded_session_keeps_the_timeline_its_blobs_give() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "seeded", &["--duration", "30s"]);
    let kept = kept(dir.path(), "seeded").expect("seed kept no timeline.json");
    let decoded = decoded_timeline(dir.path(), "seeded").await;
    assert_eq!(kept, decoded, "the kept timeline is not what the blobs hold");
    assert_eq!(totals(&kept), item_counts(dir.path(), "seeded").await);
    assert!(kept.totals().error_spans > 0, "basic-topology with seed 7 has failed spans");
    assert!(kept.rows.windows(2).all(|pair| pair[0].second < pair[1].second), "rows not ascending");
    assert!(kept.rows.len() >= 25, "a 30 s session over {} seconds", kept.rows.len());
    assert_eq!(timeline_of(dir.path(), "seeded").await, kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_ends_with_the_timeline_of_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut capturing = spawn_capture(dir.path(), dir.path(), &["--session-id", "captured"]);
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", capturing.http))
        .build()
        .unwrap();
    exporter
        .set_resource(&Resource::builder_empty().with_attributes([KeyValue::new("service.name", "checkout")]).build());
    let (mut acknowledged, mut failed) = (0, 0);
    for batch in 0..20 {
        let spans = spans_with_status(12, batch, |n| if n % 3 == 0 { Status::error("declined") } else { Status::Ok });
        exporter.export(spans).await.expect("the capture refused a batch");
        acknowledged += 12;
        failed += 4;
    }
    let pid = capturing.child.id();
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let exit = crate::wait_within(pid, Duration::from_mins(1), "capture did not stop on SIGTERM", move || {
        capturing.child.wait().unwrap()
    });
    assert!(exit.success(), "{exit}");

    let kept = kept(dir.path(), "captured").expect("the capture kept no timeline.json");
    let totals = kept.totals();
    assert_eq!((totals.traces, totals.error_spans), (acknowledged, failed), "{kept:?}");
    assert_eq!(kept, decoded_timeline(dir.path(), "captured").await);
    assert_eq!(timeline_of(dir.path(), "captured").await, kept);
}

#[tokio::test]
async fn a_missing_broken_or_stale_timeline_is_built_again_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "kept", &["--duration", "10s"]);
    let path = dir.path().join("sessions/kept/timeline.json");
    let original = std::fs::read(&path).unwrap();
    let good: Timeline = serde_json::from_slice(&original).unwrap();
    let mut other_version: serde_json::Value = serde_json::from_slice(&original).unwrap();
    other_version["version"] = 99.into();
    let mut stale = good.clone();
    stale.content_hash = "0".repeat(64);
    stale.rows.truncate(1);
    let cases: [(&str, Option<Vec<u8>>); 5] = [
        ("missing", None),
        ("not json", Some(b"{\"rows\": [".to_vec())),
        ("empty", Some(Vec::new())),
        ("another version", Some(serde_json::to_vec(&other_version).unwrap())),
        ("stale", Some(stale.to_json())),
    ];
    for (case, contents) in cases {
        match contents {
            Some(contents) => std::fs::write(&path, contents).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        assert_eq!(timeline_of(dir.path(), "kept").await, good, "{case}");
        assert_eq!(std::fs::read(&path).unwrap(), original, "{case}: the rebuilt timeline was not kept");
    }
}

/// Writes session `id` into the store at `root` and stops as after
/// SIGKILL: its metadata says `active`, its blobs are partial.
async fn crash(root: &Path, session: &str) {
    let store: Arc<dyn SessionStore> = Arc::new(LocalStore::new(root));
    let metadata = new_metadata(id(session), SessionType::Capture);
    let options = WriterOptions { announce: true, max_blob_bytes: 8 * 1024, ..WriterOptions::default() };
    let mut writer = SessionWriter::create(store.as_ref(), metadata, options).await.unwrap();
    for (signal, record) in &sample_records() {
        writer.append(*signal, record.receive_time(), record.item_count, &record.payload).await.unwrap();
    }
    writer.flush().await.unwrap();
    std::mem::forget(writer);
}

#[tokio::test]
async fn an_active_sessions_timeline_is_built_not_kept_and_built_again_after_repair() {
    let dir = tempfile::tempdir().unwrap();
    crash(dir.path(), "crashed").await;
    let store = LocalStore::new(dir.path());
    let active = store.read_metadata(&id("crashed")).await.unwrap();
    assert_eq!(active.status, SessionStatus::Active);
    let built = timeline_of(dir.path(), "crashed").await;
    assert_eq!(totals(&built), item_counts(dir.path(), "crashed").await);
    assert_eq!(store.read_timeline(&id("crashed")).await.unwrap(), None, "an active session's timeline was kept");

    // One kept while it was active (as an older program might have) is
    // stale once the repair changes the content hash.
    store.write_timeline(&id("crashed"), Bytes::from(built.to_json())).await.unwrap();
    let repair = crate::tape_in(dir.path())
        .env_remove("OTLP_TAPE_SPOOL_DIR")
        .args(["sessions", "repair", "crashed"])
        .output()
        .unwrap();
    assert!(repair.status.success(), "{}", String::from_utf8_lossy(&repair.stderr));
    let repaired = store.read_metadata(&id("crashed")).await.unwrap();
    assert_ne!(repaired.content_hash, active.content_hash);
    let rebuilt = timeline_of(dir.path(), "crashed").await;
    assert_eq!(rebuilt.content_hash, repaired.content_hash);
    assert_eq!(totals(&rebuilt), item_counts(dir.path(), "crashed").await);
    assert!(rebuilt.totals().traces > 0, "the repair recovered no spans");
    assert_eq!(rebuilt, decoded_timeline(dir.path(), "crashed").await);
    assert_eq!(kept(dir.path(), "crashed"), Some(rebuilt), "the rebuilt timeline was not kept");
}

/// Bytes a file takes on a tmpfs: whole pages.
fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(4096) * 4096
}

#[tokio::test]
async fn a_full_disk_when_the_timeline_is_written_keeps_the_session_and_the_next_read_builds_it() {
    // The same session (same seed) on an ordinary disk first, for its sizes:
    // two hours at a low rate, so that its timeline (a row a second) is
    // larger than its metadata.
    let args = ["--duration", "2h", "--rate", "1"];
    let sizing = tempfile::tempdir().unwrap();
    seed(sizing.path(), "full", &args);
    let session = sizing.path().join("sessions/full");
    let size = |name: &str| std::fs::metadata(session.join(name)).unwrap().len();
    let blobs: u64 = crate::files_under(&session.join("raw"))
        .iter()
        .map(|file| pages(std::fs::metadata(session.join("raw").join(file)).unwrap().len()))
        .sum();
    let (metadata_bytes, timeline_bytes) = (size("metadata.json"), size("timeline.json"));
    assert!(
        timeline_bytes > 4 * pages(metadata_bytes) + 64 * 1024,
        "timeline {timeline_bytes} B, metadata {metadata_bytes} B"
    );

    let tmpfs = Tmpfs::mount(&format!("{}k", (2 * blobs + timeline_bytes) / 1024 + 1024));
    let store = tmpfs.path();
    // Room for the blobs and the metadata (and the directories), not for the timeline.
    let filler = tmpfs.fill(blobs + pages(metadata_bytes) + 48 * 1024);
    let output = crate::tape(store)
        .args(["seed", "--pattern", "basic-topology", "--seed", "7", "--session-id", "full"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Cannot write the timeline"), "{stderr}");
    assert!(kept(store, "full").is_none(), "a timeline.json was left");
    let metadata = LocalStore::new(store).read_metadata(&id("full")).await.unwrap();
    assert_eq!(metadata.status, SessionStatus::Completed);
    crate::tape(store).args(["sessions", "verify", "full"]).assert().success();

    std::fs::remove_file(&filler).unwrap();
    let rebuilt = timeline_of(store, "full").await;
    assert_eq!(Some(&rebuilt), kept(sizing.path(), "full").as_ref(), "not the timeline of the same session");
    assert_eq!(kept(store, "full"), Some(rebuilt), "the rebuilt timeline was not kept");
}

#[test]
fn bench_timeline_measures_a_session_and_finds_its_timelines_agree() {
    let report = crate::bench::bench_report(&["timeline", "--gb", "0.0005", "--runs", "2"]);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert!(report["session"]["storedBytes"].as_u64().unwrap() >= 500_000, "{report}");
    assert_eq!(report["open"]["runs"], 2);
    assert!(report["timelineRows"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["builder"]["records"], report["session"]["requests"], "{report}");
    for field in ["medianSeconds", "timelineSeconds"] {
        assert!(report["open"][field].as_f64().unwrap() > 0.0, "{field}: {report}");
    }
    assert!(report["rebuild"]["seconds"].as_f64().unwrap() > 0.0, "{report}");

    let store = tempfile::tempdir().unwrap();
    crate::fails(crate::tape(store.path()).args(["bench", "timeline", "--gb", "0"]), &["--gb is 0"]);
}
