//! The conformance checks of the files of sessions with several writers:
//! manifests and the seal marker (`docs/FORMAT.md` section 11).

use bytes::Bytes;
use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{BlobKey, Error, SessionFile, SessionStore, WriteMode, WriterId};

use super::{START, unique_id};

fn writer(id: &str) -> WriterId {
    WriterId::new(id).unwrap()
}

/// A file written create-only is written once: the second write fails with
/// `FileExists` naming the session and file, and leaves the first bytes.
/// Replace replaces whole; delete is idempotent; a deleted file can be
/// created again.
pub async fn files_are_created_once_and_replaced(store: &dyn SessionStore) {
    let id = unique_id("files");
    store.create_session(&id).await.expect("create the session");
    let manifest = SessionFile::WriterManifest(writer("node-1-a1"));
    assert_eq!(store.read_file(&id, &manifest).await.expect("read"), None, "a manifest before it is written");

    let first = Bytes::from_static(b"{\"first\":1}\n");
    store.write_file(&id, &manifest, first.clone(), WriteMode::CreateNew).await.expect("create the manifest");
    match store.write_file(&id, &manifest, Bytes::from_static(b"{}"), WriteMode::CreateNew).await {
        Err(Error::FileExists { session, file }) => {
            assert_eq!(session, id);
            assert_eq!(file, "writers/node-1-a1.json");
        }
        other => panic!("a second create-only write of a manifest: {other:?}"),
    }
    assert_eq!(store.read_file(&id, &manifest).await.expect("read"), Some(first), "a refused write changed the file");

    let second = Bytes::from_static(b"{\"second\":2}\n");
    store.write_file(&id, &manifest, second.clone(), WriteMode::Replace).await.expect("replace the manifest");
    assert_eq!(store.read_file(&id, &manifest).await.expect("read"), Some(second), "replace");

    let seal = SessionFile::Seal;
    store.write_file(&id, &seal, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.expect("create the marker");
    assert!(
        matches!(store.write_file(&id, &seal, Bytes::new(), WriteMode::CreateNew).await, Err(Error::FileExists { .. })),
        "a second seal marker was created"
    );
    store.delete_file(&id, &seal).await.expect("delete the marker");
    store.delete_file(&id, &seal).await.expect("delete a marker that is not there");
    assert_eq!(store.read_file(&id, &seal).await.expect("read"), None, "the marker after delete");
    store.write_file(&id, &seal, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.expect("create it again");
    store.delete_session(&id).await.expect("delete");
}

/// `list_writers` names the writers with a manifest, sorted, and not the
/// seal marker.
pub async fn writers_are_listed_sorted(store: &dyn SessionStore) {
    let id = unique_id("writers");
    store.create_session(&id).await.expect("create the session");
    assert!(store.list_writers(&id).await.expect("list").is_empty(), "writers of a new session");
    for name in ["node-2-b", "node-10-a", "edge-1"] {
        let file = SessionFile::WriterManifest(writer(name));
        store.write_file(&id, &file, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.expect("write");
    }
    store.write_file(&id, &SessionFile::Seal, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.expect("seal");
    let listed = store.list_writers(&id).await.expect("list");
    assert_eq!(listed, vec![writer("edge-1"), writer("node-10-a"), writer("node-2-b")], "list_writers");
    store.delete_file(&id, &SessionFile::WriterManifest(writer("node-10-a"))).await.expect("delete a manifest");
    assert_eq!(store.list_writers(&id).await.expect("list"), vec![writer("edge-1"), writer("node-2-b")]);
    store.delete_session(&id).await.expect("delete");
}

/// Deleting a session removes its writer files; a session that is not
/// there has none to read, write or list.
pub async fn delete_removes_writer_files(store: &dyn SessionStore) {
    let id = unique_id("delete-writers");
    let file = SessionFile::WriterManifest(writer("node-1"));
    assert!(matches!(store.read_file(&id, &file).await, Err(Error::NotFound(_))), "read_file of a missing session");
    assert!(
        matches!(store.write_file(&id, &file, Bytes::new(), WriteMode::CreateNew).await, Err(Error::NotFound(_))),
        "write_file to a missing session"
    );
    assert!(matches!(store.list_writers(&id).await, Err(Error::NotFound(_))), "list_writers of a missing session");

    store.create_session(&id).await.expect("create the session");
    store.write_file(&id, &file, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.expect("write");
    store.write_file(&id, &SessionFile::Seal, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.expect("seal");
    store.delete_session(&id).await.expect("delete");
    assert!(matches!(store.list_writers(&id).await, Err(Error::NotFound(_))), "writers after delete");
    store.create_session(&id).await.expect("reuse the id");
    assert!(store.list_writers(&id).await.expect("list").is_empty(), "a manifest survived delete");
    assert_eq!(store.read_file(&id, &SessionFile::Seal).await.expect("read"), None, "the marker survived delete");
    store.delete_session(&id).await.expect("delete again");
}

/// Blobs under writer keys round-trip, are listed with their writer, and a
/// commit of a taken writer key is refused, keeping the first bytes.
pub async fn writer_blobs_are_never_overwritten(store: &dyn SessionStore) {
    let id = unique_id("writer-blobs");
    store.create_session(&id).await.expect("create the session");
    let first = writer("node-1");
    let second = writer("node-2");
    let key = BlobKey::for_writer(Signal::Traces, START, &first, "000001").unwrap();
    let other = BlobKey::for_writer(Signal::Traces, START, &second, "000001").unwrap();
    for (key, bytes) in [(&key, &b"first writer"[..]), (&other, &b"second writer"[..])] {
        let mut sink = store.create_blob(&id, key).await.expect("create a blob");
        sink.write(Bytes::from(bytes.to_vec())).await.expect("write");
        sink.commit().await.expect("commit");
    }
    let listed = store.list_blobs(&id).await.expect("list blobs");
    assert_eq!(listed, vec![key.clone(), other.clone()], "blobs of two writers with the same blob id");
    assert_eq!(listed[0].writer(), Some(&first), "the writer of a listed key");

    let mut sink = store.create_blob(&id, &key).await.expect("create a blob");
    sink.write(Bytes::from_static(b"overwrite")).await.expect("write");
    assert!(matches!(sink.commit().await, Err(Error::BlobExists { .. })), "a commit replaced a writer's blob");
    let bytes: Vec<Bytes> = store.open_blob(&id, &key).await.expect("open").try_collect().await.expect("read");
    assert_eq!(bytes.concat(), b"first writer", "the first writer's blob changed");
    store.delete_session(&id).await.expect("delete");
}
