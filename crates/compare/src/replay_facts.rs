//! What a comparison needs of the replay that produced ACTUAL: read from
//! the JSON report `replay --report FILE` writes (the same object the
//! control API's replay job returns), ignoring the rest of it.

use serde::{Deserialize, Serialize};

/// The facts of a replay report that a comparison uses: the session
/// replayed, the selection, the passes and their id remapping, the
/// timestamp mode, and what was sent. It deserializes from the report's
/// JSON and serializes back to the same shape (only these fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayFacts {
    /// The session replayed.
    pub session: ReplaySession,
    /// The replay's options.
    pub options: ReplayOptionsFacts,
    /// Passes started, the last one whole or not.
    pub passes: u64,
    /// The seed of the new ids.
    pub id_seed: u64,
    /// `finished`, `duration`, `stopped` or `failed`.
    pub reason: String,
    /// What was sent, per signal.
    pub counts: ReplayCounts,
}

/// The session of a replay report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySession {
    /// Its id.
    pub id: String,
    /// Its content hash.
    pub content_hash: String,
}

/// The options of a replay report that change what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOptionsFacts {
    /// `none`, `relative` or `current`.
    pub timestamps: String,
    /// `from-second-pass`, `always` or `never`.
    pub ids: String,
    /// The signals sent.
    pub signals: Vec<tape_otlp::Signal>,
    /// The services sent; empty for every service.
    #[serde(default)]
    pub services: Vec<String>,
    /// Records received at or after this (RFC 3339).
    #[serde(default)]
    pub from: Option<String>,
    /// Records received before this (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
}

/// Items sent per signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayCounts {
    /// Traces.
    pub traces: ReplaySignalCounts,
    /// Metrics.
    pub metrics: ReplaySignalCounts,
    /// Logs.
    pub logs: ReplaySignalCounts,
}

/// Items of one signal the replay sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySignalCounts {
    /// Items sent and accepted (wholly or partly).
    pub sent_items: u64,
    /// Items the target rejected in partial successes.
    #[serde(default)]
    pub rejected_items: u64,
    /// Items of requests that failed.
    #[serde(default)]
    pub failed_items: u64,
}

impl ReplayFacts {
    /// Reads a replay report's JSON; `source` names it in messages (a file
    /// name, or `replayReport`).
    pub fn from_json(source: &str, json: &[u8]) -> Result<Self, crate::Error> {
        serde_json::from_slice(json)
            .map_err(|error| crate::Error::ReplayReport { source_name: source.to_owned(), message: error.to_string() })
    }
}
