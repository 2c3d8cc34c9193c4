//! Retention's execution on a real local store: deleting the plan,
//! skipping unreadable sessions, reporting failed deletions.

use std::collections::HashSet;

use tape_session::retention::{Decision, RetentionPolicy, prune};
use tape_session::{Error, SessionId, SessionMetadata, SessionStatus, SessionStore, SessionType, Timestamp};
use tape_store::LocalStore;

const NOW: u64 = 1_800_000_000 * 1_000_000_000;
const DAY_NANOS: u64 = 86_400_000_000_000;

/// A completed session that started `days` ago, lasted an hour and takes `size` bytes.
fn session(id: &str, session_type: SessionType, days: u64, size: u64) -> SessionMetadata {
    let start = Timestamp::from_unix_nanos(NOW - days * DAY_NANOS);
    let mut metadata = SessionMetadata::new(SessionId::new(id).unwrap(), session_type, start, "test".to_owned());
    metadata.finish(Timestamp::from_unix_nanos(start.unix_nanos() + 3_600_000_000_000), SessionStatus::Completed);
    metadata.total_size_bytes = size;
    metadata
}

/// Ten capture sessions, `c1` (oldest, 100 days ago) to `c10` (10 days ago), of 100 bytes each.
fn ten() -> Vec<SessionMetadata> {
    (1..=10).map(|n| session(&format!("c{n:02}"), SessionType::Capture, 110 - n * 10, 100)).collect()
}

fn ids(decisions: &[Decision]) -> Vec<&str> {
    decisions.iter().map(|decision| decision.session_id.as_str()).collect()
}

/// A local store whose deletion of one session fails.
#[derive(Debug)]
struct FailingStore {
    inner: LocalStore,
    failing: SessionId,
}

#[async_trait::async_trait]
impl tape_session::StoreLayer for FailingStore {
    fn inner(&self) -> &dyn SessionStore {
        &self.inner
    }

    async fn delete_session(&self, id: &SessionId) -> Result<(), Error> {
        if *id == self.failing {
            return Err(Error::backend(
                format!("cannot delete session {id}"),
                std::io::Error::other("the disk said no"),
            ));
        }
        self.inner.delete_session(id).await
    }
}

async fn store_with(dir: &std::path::Path, sessions: Vec<SessionMetadata>) -> LocalStore {
    let store = LocalStore::new(dir);
    for metadata in sessions {
        store.create_session(&metadata.session_id).await.unwrap();
        store.write_metadata(&metadata).await.unwrap();
    }
    store
}

#[tokio::test]
async fn a_failed_deletion_is_reported_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let inner = store_with(dir.path(), ten().into_iter().take(3).collect()).await;
    let store = FailingStore { inner, failing: SessionId::new("c02").unwrap() };
    let policy = RetentionPolicy { max_total_bytes: Some(0), ..RetentionPolicy::default() };
    let now = Timestamp::from_unix_nanos(NOW);
    let report = prune(&store, &policy, now, &HashSet::new(), false).await.unwrap();
    assert!(!report.is_success());
    assert_eq!(ids(&report.deleted), ["c01", "c03"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].decision.session_id.as_str(), "c02");
    assert!(report.failed[0].error.contains("the disk said no"), "{}", report.failed[0].error);
    assert_eq!(report.freed_bytes, 200);
    let left = store.list_session_ids().await.unwrap();
    assert_eq!(left, [SessionId::new("c02").unwrap()]);
}

#[tokio::test]
async fn prune_deletes_the_plan_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), ten().into_iter().take(4).collect()).await;
    let broken = SessionId::new("broken").unwrap();
    store.create_session(&broken).await.unwrap();
    std::fs::write(dir.path().join("sessions/broken/metadata.json"), "{").unwrap();
    let policy = RetentionPolicy { keep_last: Some(1), ..RetentionPolicy::default() };
    let protected: HashSet<SessionId> = [SessionId::new("c01").unwrap()].into();
    let now = Timestamp::from_unix_nanos(NOW);

    let dry = prune(&store, &policy, now, &protected, true).await.unwrap();
    assert_eq!(ids(&dry.deleted), ["c02", "c03"]);
    assert_eq!((dry.kept, dry.freed_bytes, dry.stored_bytes), (2, 200, 400));
    assert_eq!(store.list_session_ids().await.unwrap().len(), 5);

    let report = prune(&store, &policy, now, &protected, false).await.unwrap();
    assert!(report.is_success());
    assert_eq!(ids(&report.deleted), ["c02", "c03"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].session_id, broken);
    let left: Vec<String> = store.list_session_ids().await.unwrap().iter().map(|id| id.as_str().to_owned()).collect();
    assert_eq!(left, ["broken", "c01", "c04"]);

    let refused = prune(&store, &RetentionPolicy::default(), now, &protected, false).await.unwrap_err();
    assert!(refused.to_string().contains("older-than"), "{refused}");
}
