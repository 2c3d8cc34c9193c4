use tape_store::LocalStore;

#[tokio::test]
async fn local_directory_store_conforms() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    tape_testkit::conformance::run(&store).await;
}

#[tokio::test]
async fn local_store_leaves_no_temporary_files_and_lists_only_sessions() {
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    tape_testkit::conformance::records_round_trip_byte_for_byte(&store).await;
    // A stray file and a directory that is not a valid id are not sessions.
    std::fs::write(root.path().join("sessions/notes.txt"), "x").unwrap();
    std::fs::create_dir(root.path().join("sessions/not an id")).unwrap();
    let ids = tape_session::SessionStore::list_session_ids(&store).await.unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let leftovers: Vec<_> = walk(root.path()).into_iter().filter(|path| path.contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn list_writers_ignores_names_that_are_not_manifests() {
    use bytes::Bytes;
    use tape_session::{SessionFile, SessionId, SessionStore, WriteMode, WriterId};
    let root = tempfile::tempdir().unwrap();
    let store = LocalStore::new(root.path());
    let id = SessionId::new("junk-writers").unwrap();
    store.create_session(&id).await.unwrap();
    let writer = WriterId::new("node-1").unwrap();
    let file = SessionFile::WriterManifest(writer.clone());
    store.write_file(&id, &file, Bytes::from_static(b"{}\n"), WriteMode::CreateNew).await.unwrap();
    let dir = root.path().join("sessions/junk-writers/writers");
    // Temporary files, editor copies, ids that break the rules, a directory.
    for junk in [".node-2.json.tmp-0123456789abcdef", "node-3.json~", "Node-4.json", "-x.json", "notes.txt"] {
        std::fs::write(dir.join(junk), "x").unwrap();
    }
    std::fs::create_dir(dir.join("node-5.json")).unwrap();
    assert_eq!(store.list_writers(&id).await.unwrap(), vec![writer]);
    let leftovers: Vec<_> = walk(root.path())
        .into_iter()
        .filter(|path| path.contains(".tmp-") && !path.contains("0123456789abcdef"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}
