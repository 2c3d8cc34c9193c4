//! The local store and the spool on a real full disk (a small tmpfs): a
//! failed write leaves the file as it was and can be made again once there
//! is space, a commit never puts a short blob under its key, and
//! `metadata.json` is replaced whole or not at all.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use tape_session::{BlobKey, SessionId, SessionMetadata, SessionStore, SessionType, Timestamp};
use tape_store::{LocalStore, SpooledStore};
use tape_testkit::tmpfs::Tmpfs;

fn chunk(n: u8) -> Bytes {
    Bytes::from(vec![n; 48 * 1024])
}

fn key() -> BlobKey {
    BlobKey::new(tape_otlp::Signal::Traces, Timestamp::from_unix_nanos(1_767_225_600_000_000_000), "000001").unwrap()
}

async fn new_session(store: &dyn SessionStore, id: &SessionId) -> SessionMetadata {
    store.create_session(id).await.unwrap();
    let metadata = SessionMetadata::new(id.clone(), SessionType::Capture, Timestamp::from_unix_nanos(1), "t".into());
    store.write_metadata(&metadata).await.unwrap();
    metadata
}

/// Writes chunks into a blob of `store` until the disk is full, frees it,
/// writes the refused chunk again and one more, commits, and checks the
/// blob holds exactly the chunks that were written, in order.
async fn fill_then_commit(store: &dyn SessionStore, id: &SessionId, tmpfs: &Tmpfs) {
    let filler = tmpfs.fill(256 * 1024);
    let mut sink = store.create_blob(id, &key()).await.unwrap();
    let mut written = Vec::new();
    let mut refused = None;
    for n in 0..=255u8 {
        match sink.write(chunk(n)).await {
            Ok(()) => written.push(chunk(n)),
            Err(error) => {
                let message = format!("{error}: {}", std::error::Error::source(&error).unwrap());
                assert!(message.contains("No space left on device"), "{message}");
                refused = Some(n);
                break;
            }
        }
    }
    let refused = refused.expect("the disk never filled");
    assert!(!written.is_empty(), "not one chunk fit");
    // Once more while full: still refused, still nothing torn.
    assert!(sink.write(chunk(refused)).await.is_err());
    std::fs::remove_file(filler).unwrap();
    // tmpfs may take a moment to count the freed pages; a writer tries again.
    let mut attempts = 0;
    while let Err(error) = sink.write(chunk(refused)).await {
        attempts += 1;
        assert!(attempts < 200, "the write still fails with space free: {error}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    written.push(chunk(refused));
    sink.write(chunk(200)).await.unwrap();
    written.push(chunk(200));
    sink.commit().await.unwrap();
    let stored: Vec<Bytes> = store.open_blob(id, &key()).await.unwrap().try_collect().await.unwrap();
    assert_eq!(stored.concat(), written.concat(), "the blob is every chunk written, whole, in order");
    assert!(store.list_partial_blobs(id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_local_blob_write_refused_by_a_full_disk_can_be_made_again() {
    let tmpfs = Tmpfs::mount("2m");
    let store = LocalStore::new(tmpfs.path());
    let id = SessionId::new("full").unwrap();
    new_session(&store, &id).await;
    fill_then_commit(&store, &id, &tmpfs).await;
}

#[tokio::test]
async fn a_spool_file_write_refused_by_a_full_disk_can_be_made_again() {
    let tmpfs = Tmpfs::mount("2m");
    let inner_dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn SessionStore> = Arc::new(LocalStore::new(inner_dir.path()));
    let store = SpooledStore::new(inner, tmpfs.path().join("spool"));
    let id = SessionId::new("spooled").unwrap();
    new_session(&store, &id).await;
    fill_then_commit(&store, &id, &tmpfs).await;
}

#[tokio::test]
async fn metadata_json_is_replaced_whole_or_not_at_all_on_a_full_disk() {
    let tmpfs = Tmpfs::mount("1m");
    let store = LocalStore::new(tmpfs.path());
    let id = SessionId::new("meta").unwrap();
    let metadata = new_session(&store, &id).await;
    let before = std::fs::read(tmpfs.path().join("sessions/meta/metadata.json")).unwrap();
    let filler = tmpfs.fill(0);
    let mut bigger = metadata.clone();
    bigger.description = Some("a much longer description ".repeat(2000));
    let error = store.write_metadata(&bigger).await.unwrap_err();
    assert!(error.to_string().contains("metadata.json"), "{error}");
    assert_eq!(std::fs::read(tmpfs.path().join("sessions/meta/metadata.json")).unwrap(), before);
    assert_eq!(store.read_metadata(&id).await.unwrap(), metadata);
    let leftovers: Vec<_> = std::fs::read_dir(tmpfs.path().join("sessions/meta")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "a temporary file was left: {leftovers:?}");
    let error = store.write_annotations(&id, Bytes::from(vec![b'x'; 100_000])).await.unwrap_err();
    assert!(error.to_string().contains("annotations.jsonl"), "{error}");
    assert_eq!(store.read_annotations(&id).await.unwrap(), None);
    std::fs::remove_file(filler).unwrap();
    store.write_metadata(&bigger).await.unwrap();
    assert_eq!(store.read_metadata(&id).await.unwrap(), bigger);
}
