//! `sessions repair` on sessions left by a writer that was killed: on the
//! store itself, and with blobs spooled to a spool directory.

use std::path::Path;
use std::sync::Arc;

use tape_session::{SessionId, SessionStore, SessionType, SessionWriter, WriterOptions};
use tape_store::{LocalStore, SpooledStore};
use tape_testkit::conformance::{new_metadata, sample_records};

use crate::{fails_with, succeeds, tape_json};

/// Records flushed before the crash; the rest follow without a flush.
const FLUSHED: usize = 30;

/// Writes a session `id` into the store at `root` (its blobs spooled under
/// `spool` when given) and stops as after SIGKILL: the writer is never
/// dropped, so its open blobs stay partial.
fn crash(root: &Path, spool: Option<&Path>, id: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let local: Arc<dyn SessionStore> = Arc::new(LocalStore::new(root));
        let store = match spool {
            Some(spool) => Arc::new(SpooledStore::new(local, spool.to_owned())),
            None => local,
        };
        let metadata = new_metadata(SessionId::new(id).unwrap(), SessionType::Capture);
        let options = WriterOptions { announce: true, max_blob_bytes: 8 * 1024, ..WriterOptions::default() };
        let mut writer = SessionWriter::create(store.as_ref(), metadata, options).await.unwrap();
        for (n, (signal, record)) in sample_records().iter().enumerate() {
            writer.append(*signal, record.receive_time(), record.item_count, &record.payload).await.unwrap();
            if n + 1 == FLUSHED {
                writer.flush().await.unwrap();
            }
        }
        std::mem::forget(writer);
    });
}

/// `otlp-tape` in `dir`, with no spool directory from the environment.
fn tape_in(dir: &Path) -> assert_cmd::Command {
    let mut command = crate::tape_in(dir);
    command.env_remove("OTLP_TAPE_SPOOL_DIR");
    command
}

#[test]
fn repair_finishes_a_crashed_session_and_says_what_it_recovered() {
    let dir = tempfile::tempdir().unwrap();
    crash(dir.path(), None, "crashed");
    assert_eq!(tape_json(dir.path(), &["sessions", "show", "crashed"])["status"], "active");

    succeeds(
        tape_in(dir.path()).args(["sessions", "repair", "crashed"]),
        &["Repaired session crashed: active -> completed", "recovered raw/", "After:"],
    );
    let metadata = tape_json(dir.path(), &["sessions", "show", "crashed"]);
    assert_eq!(metadata["status"], "completed");
    assert!(metadata["requestCounts"]["traces"].as_u64().unwrap() >= (FLUSHED / 3) as u64, "{metadata}");
    tape_in(dir.path()).args(["sessions", "verify", "crashed"]).assert().success();

    succeeds(
        tape_in(dir.path()).args(["sessions", "repair", "crashed"]),
        &["Session crashed is completed, with no partial or unlisted blobs: nothing to repair."],
    );
}

#[test]
fn repair_salvages_spooled_blobs_from_the_default_or_given_spool_directory() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join(".otlp-tape/spool");
    std::fs::create_dir_all(&spool).unwrap();
    crash(dir.path(), Some(&spool), "spooled");
    let report = tape_in(dir.path()).args(["--output", "json", "sessions", "repair", "spooled"]).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let partials = report["partialBlobs"].as_array().unwrap();
    assert!(partials.iter().any(|partial| partial["outcome"] == "committed"), "{report}");
    assert_eq!(report["statusBefore"], "active");
    assert_eq!(report["statusAfter"], "completed");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "spool files left");

    // --spool-dir names another directory.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    crash(dir.path(), Some(&elsewhere), "spooled-elsewhere");
    succeeds(
        tape_in(dir.path()).args(["sessions", "repair", "spooled-elsewhere", "--spool-dir"]).arg(&elsewhere),
        &["recovered raw/"],
    );
    tape_in(dir.path()).args(["sessions", "verify", "spooled-elsewhere"]).assert().success();
}

#[test]
fn repair_of_a_bad_or_unknown_id_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(tape_in(dir.path()).args(["sessions", "repair", "not/an id"]), 2, &["invalid session id \"not/an id\""]);
    fails_with(tape_in(dir.path()).args(["sessions", "repair", "missing"]), 1, &["session missing not found"]);

    // A session that was never announced has no metadata.json to repair from.
    std::fs::create_dir_all(dir.path().join("sessions/unannounced")).unwrap();
    fails_with(
        tape_in(dir.path()).args(["sessions", "repair", "unannounced"]),
        1,
        &["cannot repair session unannounced", "no metadata.json"],
    );
}
