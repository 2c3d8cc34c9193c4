//! A writer repaired or sealed under it while it still runs: an operator
//! on another host (another spool directory) runs `sessions repair
//! --writer` against a live writer. It is refused while the writer's
//! heartbeat is fresh; forced, the writer loses nothing it acknowledged.

use std::time::Instant;

use super::*;

impl Shared<'_> {
    /// Writer `writer`'s manifest of session `session`, as stored.
    fn manifest(&self, session: &str, writer: &str) -> Value {
        let path = self.s3.bucket_dir().join(PREFIX).join("sessions").join(session).join("writers");
        serde_json::from_slice(&std::fs::read(path.join(format!("{writer}.json"))).unwrap()).unwrap()
    }

    /// Polls (bounded) until writer `writer`'s manifest satisfies `check`.
    async fn await_manifest(&self, session: &str, writer: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let manifest = self.manifest(session, writer);
            if check(&manifest) {
                return manifest;
            }
            assert!(Instant::now() < deadline, "{what}: {manifest}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_writer_repaired_from_another_host_is_refused_and_forced_loses_nothing() {
    let (s3, dir) = s3_and_dir().await;
    let shared = shared(&s3, dir.path());
    // No heartbeat within the test: one between the forced repair's manifest
    // write and its seal would keep the session active (the writer is seen
    // again), and this test wants it sealed under the writer.
    let live = shared.spawn("live", "live", &["--durable", "--heartbeat", "1h"]);
    let mut acknowledged = live.feed(0, 3).await;
    // Another host: another spool directory, where the writer's lock is unknown.
    let elsewhere = dir.path().join("elsewhere");
    let elsewhere = elsewhere.to_str().unwrap();
    let refused = shared.run(&["sessions", "repair", "live", "--writer", "live", "--spool-dir", elsewhere]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.contains("cannot repair writer live of session live: it looks alive")
            && message.contains("(host ")
            && message.contains(" s ago")
            && message.contains("--force"),
        "{message}"
    );
    assert_eq!(shared.metadata("live")["status"], "active", "a refused repair changes nothing");
    assert_eq!(shared.manifest("live", "live")["status"], "active");

    // Forced: the session is sealed under the running writer.
    let forced = shared.run(&["sessions", "repair", "live", "--writer", "live", "--force", "--spool-dir", elsewhere]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(shared.metadata("live")["status"], "completed");
    assert_eq!(shared.manifest("live", "live")["repaired"], true);
    acknowledged.extend(live.feed(1, 3).await);
    signal("TERM", &[live.pid()]);
    let (status, summary, stderr) = live.wait();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("sealing it again"), "{stderr}");
    assert_eq!(summary.unwrap()["seal"]["outcome"], "sealed");
    assert_eq!(shared.manifest("live", "live")["repaired"], json!(null), "the writer's own final manifest");

    let metadata = shared.metadata("live");
    assert_eq!(metadata["status"], "completed", "{metadata}");
    assert_eq!(metadata["capturedTraces"], acknowledged.len() as u64, "{metadata}");
    assert_eq!(sorted(shared.stored_spans("live").await), sorted(acknowledged));
    let verify = shared.run(&["sessions", "verify", "live"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_writer_heartbeats_its_manifest_and_a_bad_heartbeat_is_refused() {
    let (s3, dir) = s3_and_dir().await;
    let shared = shared(&s3, dir.path());
    let idle = shared.spawn("idle", "idle", &["--heartbeat", "50ms"]);
    let joined = shared.manifest("idle", "idle")["updatedAt"].as_str().unwrap().to_owned();
    // Nothing is sent, yet the manifest is written again, stamped later.
    let beat = shared
        .await_manifest("idle", "idle", "no heartbeat", |manifest| manifest["updatedAt"].as_str() != Some(&joined))
        .await;
    let time = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap();
    assert!(time(beat["updatedAt"].as_str().unwrap()) > time(&joined), "{beat} after {joined}");
    assert_eq!(beat["status"], "active");
    signal("TERM", &[idle.pid()]);
    let (status, summary, stderr) = idle.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(summary.unwrap()["seal"]["outcome"], "sealed");

    let zero = shared.run(&["capture", "--join", "--session-id", "idle-2", "--heartbeat", "0s"]);
    let message = String::from_utf8_lossy(&zero.stderr);
    assert_eq!(zero.status.code(), Some(2), "{message}");
    assert!(message.contains("--heartbeat") && message.contains("longer than zero"), "{message}");
    let no_writer = shared.run(&["sessions", "repair", "idle", "--force"]);
    assert_eq!(no_writer.status.code(), Some(2), "--force needs --writer");
}
