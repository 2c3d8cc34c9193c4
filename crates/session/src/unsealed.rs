//! What a reader says of a session of several writers that is not sealed:
//! its `metadata.json` lists no blob until then (the writers' blobs are in
//! their manifests), so replaying or exporting it would find nothing, or a
//! part of what the writers are still recording.

use crate::{SessionId, SessionMetadata, SessionStatus, SessionStore, error_chain, read_manifests};

/// Whether `metadata` is of a session of several writers not sealed yet.
pub fn is_unsealed(metadata: &SessionMetadata) -> bool {
    metadata.has_writers() && metadata.status == SessionStatus::Active
}

/// Why session `id` of several writers is not sealed and what seals it, in
/// a sentence: the writers still active (and how to finish one that
/// crashed), or, when every writer has stopped, `sessions seal`.
pub async fn unsealed_advice(store: &dyn SessionStore, id: &SessionId) -> String {
    let manifests = match read_manifests(store, id).await {
        Ok(manifests) => manifests,
        Err(error) => return format!("its writers cannot be read: {}", error_chain(&error)),
    };
    let active: Vec<String> = manifests
        .iter()
        .filter(|manifest| manifest.status == SessionStatus::Active)
        .map(|manifest| manifest.writer_id.to_string())
        .collect();
    if active.is_empty() {
        return format!(
            "every one of its {} writers has stopped, but none sealed it: `otlp-tape sessions seal {id}` does",
            manifests.len()
        );
    }
    format!(
        "writers still active: {}; the last to stop seals it (one that crashed is finished by `otlp-tape sessions \
         repair {id} --writer W` on its host), or `otlp-tape sessions seal {id}` once none is",
        active.join(", ")
    )
}
