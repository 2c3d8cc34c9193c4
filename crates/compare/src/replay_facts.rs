//! What a comparison needs of the replay that produced ACTUAL: read from
//! the JSON report `replay --report FILE` writes (the same object the
//! control API's replay job returns), ignoring the rest of it.

use serde::{Deserialize, Deserializer, Serialize};
use tape_otlp::{IdRemap, SignalSet};
use tape_replay::{IdRegeneration, Selection, TimestampMode};
use tape_session::{SessionMetadata, Timestamp};

use crate::Error;

/// How [`ReplayFacts`] name themselves in messages when they came in a
/// comparison's config (the control API's `replayReport`, or the command
/// line's file read into it).
pub const REPLAY_REPORT: &str = "replayReport";

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
    #[serde(deserialize_with = "timestamp_mode_name")]
    pub timestamps: String,
    /// `from-second-pass`, `always` or `never`.
    #[serde(deserialize_with = "ids_name")]
    pub ids: String,
    /// The signals sent.
    pub signals: Vec<tape_otlp::Signal>,
    /// The services sent; empty for every service.
    #[serde(default)]
    pub services: Vec<String>,
    /// Records received at or after this (RFC 3339, to the nanosecond):
    /// `--from`, or the start of `--phase` (the later of the two).
    #[serde(default, deserialize_with = "time")]
    pub from: Option<String>,
    /// Records received before this (RFC 3339, to the nanosecond):
    /// `--until`, or the end of `--phase` (the earlier of the two).
    #[serde(default, deserialize_with = "time")]
    pub until: Option<String>,
    /// The shard sent (`--shard I/N`), whose items alone the replay sent;
    /// absent for the whole selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<tape_otlp::wire::Shard>,
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
    ///
    /// # Errors
    /// [`Error::ReplayReport`]: not JSON, a field missing, or a value that
    /// is not one of a report's.
    pub fn from_json(source: &str, json: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(json)
            .map_err(|error| Error::ReplayReport { source_name: source.to_owned(), message: error.to_string() })
    }

    /// Checks that the report is of `expected`: the same session id and
    /// content hash.
    ///
    /// # Errors
    /// [`Error::ReportOfAnotherSession`], naming both; `source` names the
    /// report.
    pub fn check_session(&self, source: &str, expected: &SessionMetadata) -> Result<(), Error> {
        if self.session.id == expected.session_id.as_str() && self.session.content_hash == expected.content_hash {
            return Ok(());
        }
        Err(Error::ReportOfAnotherSession {
            source_name: source.to_owned(),
            report_session: self.session.id.clone(),
            report_hash: self.session.content_hash.clone(),
            expected: expected.session_id.clone(),
            expected_hash: expected.content_hash.clone(),
        })
    }

    /// The records the replay sent, of `signals` only: its signals among
    /// `signals`, its services, its window of receive times and its shard.
    ///
    /// # Errors
    /// [`Error::ReplayReport`]: `from` or `until` is not an RFC 3339 time.
    pub fn selection(&self, signals: SignalSet) -> Result<Selection, Error> {
        let sent: SignalSet = self.options.signals.iter().copied().filter(|signal| signals.contains(*signal)).collect();
        Ok(Selection {
            signals: sent,
            services: self.options.services.clone(),
            from: self.options.from.as_deref().map(|text| Self::time("from", text)).transpose()?,
            until: self.options.until.as_deref().map(|text| Self::time("until", text)).transpose()?,
            shard: self.options.shard,
        })
    }

    /// When the replay remapped ids.
    ///
    /// # Errors
    /// [`Error::ReplayReport`]: `ids` is not one of a report's values.
    pub fn id_regeneration(&self) -> Result<IdRegeneration, Error> {
        IdRegeneration::from_name(&self.options.ids).ok_or_else(|| {
            Self::invalid(format!("options.ids: {:?} is not from-second-pass, always or never", self.options.ids))
        })
    }

    /// The id remapping of pass `pass` (from 0): none on the first pass
    /// with `from-second-pass`, none on any with `never`.
    ///
    /// # Errors
    /// [`Error::ReplayReport`]: `ids` is not one of a report's values.
    pub fn id_remap(&self, pass: u64) -> Result<Option<IdRemap>, Error> {
        Ok(match (self.id_regeneration()?, pass) {
            (IdRegeneration::Never, _) | (IdRegeneration::FromSecondPass, 0) => None,
            _ => Some(IdRemap::new(self.id_seed, pass)),
        })
    }

    /// How the replay moved timestamps.
    ///
    /// # Errors
    /// [`Error::ReplayReport`]: `timestamps` is not one of a report's
    /// values.
    pub fn timestamp_mode(&self) -> Result<TimestampMode, Error> {
        TimestampMode::from_name(&self.options.timestamps).ok_or_else(|| {
            Self::invalid(format!("options.timestamps: {:?} is not none, relative or current", self.options.timestamps))
        })
    }

    /// Passes whose items EXPECTED holds: those the replay started, at
    /// least one.
    pub fn passes(&self) -> u64 {
        self.passes.max(1)
    }

    fn time(field: &str, text: &str) -> Result<u64, Error> {
        Timestamp::parse_rfc3339(text)
            .map(Timestamp::unix_nanos)
            .ok_or_else(|| Self::invalid(format!("options.{field}: {text:?} is not an RFC 3339 time")))
    }

    fn invalid(message: String) -> Error {
        Error::ReplayReport { source_name: REPLAY_REPORT.to_owned(), message }
    }
}

fn timestamp_mode_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    match TimestampMode::from_name(&name) {
        Some(_) => Ok(name),
        None => Err(serde::de::Error::custom(format!("options.timestamps: {name:?} is not none, relative or current"))),
    }
}

fn ids_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    match IdRegeneration::from_name(&name) {
        Some(_) => Ok(name),
        None => {
            Err(serde::de::Error::custom(format!("options.ids: {name:?} is not from-second-pass, always or never")))
        }
    }
}

fn time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    if let Some(text) = &text
        && Timestamp::parse_rfc3339(text).is_none()
    {
        return Err(serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use tape_otlp::Signal;

    use super::*;

    fn report(options: serde_json::Value) -> serde_json::Value {
        let mut report = serde_json::json!({
            "session": {"id": "seed", "type": "seed", "contentHash": "abc"},
            "passes": 3, "idSeed": 42, "reason": "finished",
            "counts": {"traces": {"sentItems": 10, "rejectedItems": 1}, "metrics": {"sentItems": 0},
                       "logs": {"sentItems": 4, "failedItems": 2}, "total": {"sentItems": 14}},
            "targets": {"description": "ignored"},
        });
        report["options"] = options;
        report
    }

    fn facts(options: serde_json::Value) -> Result<ReplayFacts, Error> {
        ReplayFacts::from_json("r.json", report(options).to_string().as_bytes())
    }

    #[test]
    fn a_report_gives_the_selection_the_remapping_of_each_pass_and_the_timestamp_mode() {
        let facts = facts(serde_json::json!({
            "timestamps": "relative", "ids": "from-second-pass", "signals": ["traces", "logs"],
            "services": ["checkout"], "from": "2026-01-01T00:00:01.5Z", "until": "2026-01-01T00:00:03Z",
            "phase": "failure", "speed": "max",
        }))
        .expect("a report");
        let selection = facts.selection(SignalSet::ALL.with(Signal::Metrics)).expect("valid");
        assert_eq!(selection.signals.iter().collect::<Vec<_>>(), [Signal::Traces, Signal::Logs]);
        assert_eq!(selection.services, ["checkout"]);
        assert_eq!(selection.from, Some(1_767_225_601_500_000_000));
        assert_eq!(selection.until, Some(1_767_225_603_000_000_000));
        let only_logs: SignalSet = [Signal::Logs, Signal::Metrics].into_iter().collect();
        assert_eq!(facts.selection(only_logs).unwrap().signals.iter().collect::<Vec<_>>(), [Signal::Logs]);
        assert_eq!(facts.id_remap(0).unwrap(), None);
        assert_eq!(facts.id_remap(2).unwrap(), Some(IdRemap::new(42, 2)));
        assert_eq!(facts.timestamp_mode().unwrap(), TimestampMode::Relative);
        assert_eq!((facts.passes(), facts.counts.logs.failed_items), (3, 2));
        // It serializes to the report's shape, with only these fields.
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["options"]["from"], "2026-01-01T00:00:01.5Z");
        assert!(json.get("targets").is_none());
        assert_eq!(serde_json::from_value::<ReplayFacts>(json).unwrap(), facts);
    }

    #[test]
    fn every_pass_or_none_is_remapped_as_the_report_says() {
        let with = |ids: &str| {
            facts(serde_json::json!({"timestamps": "none", "ids": ids, "signals": ["traces"]})).expect("a report")
        };
        assert_eq!(with("always").id_remap(0).unwrap(), Some(IdRemap::new(42, 0)));
        assert_eq!(with("never").id_remap(2).unwrap(), None);
        let mut bad = with("never");
        bad.options.ids = "sometimes".to_owned();
        let message = bad.id_remap(1).unwrap_err().to_string();
        assert_eq!(
            message,
            "replay report replayReport: options.ids: \"sometimes\" is not from-second-pass, always or never"
        );
    }

    #[test]
    fn a_report_that_is_not_one_is_named() {
        for (json, expected) in [
            (
                serde_json::json!({"timestamps": "later", "ids": "never", "signals": []}),
                "options.timestamps: \"later\"",
            ),
            (serde_json::json!({"timestamps": "none", "ids": "often", "signals": []}), "options.ids: \"often\""),
            (
                serde_json::json!({"timestamps": "none", "ids": "never", "signals": [], "from": "yesterday"}),
                "\"yesterday\" is not an RFC 3339 time",
            ),
            (serde_json::json!({"ids": "never", "signals": []}), "missing field `timestamps`"),
        ] {
            let message = facts(json).unwrap_err().to_string();
            assert!(message.starts_with("replay report r.json: "), "{message}");
            assert!(message.contains(expected), "{message}");
        }
        let message = ReplayFacts::from_json("r.json", b"{not json").unwrap_err().to_string();
        assert!(message.starts_with("replay report r.json: key must be a string"), "{message}");
    }
}
