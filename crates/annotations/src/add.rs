//! Adding an annotation to a session, such as an incident an operator
//! marks in a capture: [`AddAnnotationConfig`] (the control API's
//! `POST /api/v1/sessions/{id}/annotations` body, the flags of
//! `otlp-tape annotations add`), checked against the session by
//! [`AddAnnotationConfig::validate`], and [`add_annotation`], which writes
//! it to the session's `annotations.jsonl` and pushes it to ClickHouse when
//! one is configured.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tape_session::{
    Annotation, PHASE_ANNOTATION_TYPE, PHASE_KEY_PREFIX, SessionId, SessionMetadata, SessionStore, TimeBound,
    Timestamp, check_phase_name, format_duration, to_jsonl,
};

use crate::clickhouse::ClickHouseConfig;
use crate::session::{ClickHouseReport, SessionAnnotationsError, push_and_report, session_annotations};

/// Who adds an annotation when [`AddAnnotationConfig::created_by`] is not given.
pub const DEFAULT_CREATED_BY: &str = "otlp-tape";

/// An annotation to add, as people describe it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddAnnotationConfig {
    /// Its key: `test.phase.<name>` makes a phase (the name: letters,
    /// digits, `_` and `-`).
    pub key: String,
    /// Start of its range: an offset into the session (`30s`, `1m30s`, `90`)
    /// or an RFC 3339 time.
    #[serde(deserialize_with = "time_bound")]
    pub from: TimeBound,
    /// End of its range (exclusive), in the same forms.
    #[serde(deserialize_with = "time_bound")]
    pub until: TimeBound,
    /// Its value, any JSON; default for a phase `{"sessionId", "phase",
    /// "flags": [], "description"}`, else `{"description"}` when a
    /// description is given, else `{}`.
    #[serde(default)]
    pub value: Option<Value>,
    /// Its type; default `test` for `test.*` keys, else the key's first part.
    #[serde(default, rename = "type")]
    pub annotation_type: Option<String>,
    /// What it is about (goes into the default value).
    #[serde(default)]
    pub description: Option<String>,
    /// Who adds it; default [`DEFAULT_CREATED_BY`] (each front sets its own:
    /// the command line `otlp-tape annotations add`, the control API
    /// `otlp-tape serve`).
    #[serde(default)]
    pub created_by: Option<String>,
}

fn time_bound<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TimeBound, D::Error> {
    tape_session::config::parsed(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("expected an offset into the session or an RFC 3339 time"))
}

/// Why an annotation was not added; the message names the flag (the
/// control API's field of the same name).
#[derive(Debug, thiserror::Error)]
pub enum AddAnnotationError {
    /// `--value` (text) is not JSON.
    #[error("--value is not JSON: {message}: {text}")]
    ValueNotJson {
        /// What was given.
        text: String,
        /// What the JSON parser said.
        message: String,
    },
    /// The key is empty, too long or has spaces.
    #[error("--key {0:?} must be 1 to 256 characters without spaces, such as test.phase.incident")]
    Key(String),
    /// The key is a phase with an invalid name.
    #[error("--key {key}: {message}")]
    PhaseName {
        /// The key.
        key: String,
        /// What is wrong with the phase name.
        message: String,
    },
    /// The type is given but empty.
    #[error("--type cannot be empty")]
    EmptyType,
    /// A phase's type is not [`PHASE_ANNOTATION_TYPE`].
    #[error("--key {key} is a phase, whose type is {PHASE_ANNOTATION_TYPE}, not {annotation_type}")]
    PhaseType {
        /// The key.
        key: String,
        /// The type given.
        annotation_type: String,
    },
    /// The range is empty or backwards.
    #[error("--until {until} ({end}) must be after --from {from} ({start})")]
    EmptyRange {
        /// `from` as given.
        from: TimeBound,
        /// `until` as given.
        until: TimeBound,
        /// `from` resolved.
        start: Timestamp,
        /// `until` resolved.
        end: Timestamp,
    },
    /// The range is not within the session.
    #[error(
        "the range {start} .. {end} is outside session {id}, which spans {session_start} .. {session_end} ({span}){ending}; \
         give --from and --until as offsets such as 10s, or as times within it",
        span = span(*.session_start, *.session_end),
        ending = if *.still_recorded { " (it is still being recorded)" } else { "" },
    )]
    OutsideSession {
        /// The session.
        id: SessionId,
        /// The range's start.
        start: Timestamp,
        /// The range's end.
        end: Timestamp,
        /// The session's start.
        session_start: Timestamp,
        /// The session's end (now, while it is being recorded).
        session_end: Timestamp,
        /// Whether the session has no end time yet.
        still_recorded: bool,
    },
    /// The annotation breaks a rule of the session format.
    #[error("the annotation is not valid: {0}")]
    Invalid(String),
    /// The session's metadata could not be read (or it does not exist).
    #[error(transparent)]
    Session(Box<tape_session::Error>),
    /// The session's annotations could not be read.
    #[error(transparent)]
    Read(Box<SessionAnnotationsError>),
    /// The session's annotations could not be written.
    #[error("cannot write the annotations of session {id} in {location}")]
    Write {
        /// The session.
        id: SessionId,
        /// The store's location.
        location: String,
        /// What the store said.
        #[source]
        source: Box<tape_session::Error>,
    },
}

impl AddAnnotationError {
    /// The store's own error behind this one, when the store failed (a
    /// missing session is [`tape_session::Error::NotFound`]), so that a
    /// front can answer it as the store's.
    pub fn store_error(&self) -> Option<&tape_session::Error> {
        match self {
            AddAnnotationError::Session(error) => Some(error),
            AddAnnotationError::Read(error) => match error.as_ref() {
                SessionAnnotationsError::Read { source, .. } => Some(source),
                SessionAnnotationsError::Invalid { .. } => None,
            },
            AddAnnotationError::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How long a session from `start` to `end` lasts, as written.
fn span(start: Timestamp, end: Timestamp) -> String {
    format_duration(end.unix_nanos().saturating_sub(start.unix_nanos()))
}

/// The value of `--value`, JSON text, or an error that quotes it.
pub fn parse_value_text(text: &str) -> Result<Value, AddAnnotationError> {
    serde_json::from_str(text)
        .map_err(|error| AddAnnotationError::ValueNotJson { text: text.to_owned(), message: error.to_string() })
}

impl AddAnnotationConfig {
    /// The annotation for the session of `metadata`, made at `now`, or what
    /// is wrong with it: the key, the type, the range (which must lie within
    /// the session: until `now` while it is being recorded), in that order.
    pub fn validate(self, metadata: &SessionMetadata, now: Timestamp) -> Result<Annotation, AddAnnotationError> {
        let id = &metadata.session_id;
        let key = self.key.trim().to_owned();
        if key.is_empty() || key.len() > 256 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddAnnotationError::Key(key));
        }
        let phase = key.strip_prefix(PHASE_KEY_PREFIX);
        if let Some(name) = phase {
            check_phase_name(name).map_err(|message| AddAnnotationError::PhaseName { key: key.clone(), message })?;
        }
        let annotation_type = match self.annotation_type {
            Some(kind) if kind.trim().is_empty() => return Err(AddAnnotationError::EmptyType),
            Some(kind) => kind,
            None if key.starts_with("test.") => PHASE_ANNOTATION_TYPE.to_owned(),
            None => key.split('.').next().unwrap_or_default().to_owned(),
        };
        if phase.is_some() && annotation_type != PHASE_ANNOTATION_TYPE {
            return Err(AddAnnotationError::PhaseType { key, annotation_type });
        }

        let start = Timestamp::from_unix_nanos(self.from.resolve(metadata.start_time));
        let end = Timestamp::from_unix_nanos(self.until.resolve(metadata.start_time));
        if end <= start {
            return Err(AddAnnotationError::EmptyRange { from: self.from, until: self.until, start, end });
        }
        let session_end = metadata.end_time.unwrap_or(now).max(metadata.start_time);
        if start < metadata.start_time || end > session_end {
            return Err(AddAnnotationError::OutsideSession {
                id: id.clone(),
                start,
                end,
                session_start: metadata.start_time,
                session_end,
                still_recorded: metadata.end_time.is_none(),
            });
        }

        let annotation_value = match (self.value, phase) {
            (Some(value), _) => value,
            (None, Some(name)) => serde_json::json!({
                "sessionId": id,
                "phase": name,
                "flags": [],
                "description": self.description.unwrap_or_default(),
            }),
            (None, None) => match self.description {
                Some(description) => serde_json::json!({ "description": description }),
                None => serde_json::json!({}),
            },
        };
        let annotation = Annotation {
            session_id: id.clone(),
            annotation_type,
            annotation_key: key,
            annotation_value,
            time_range_start: start,
            time_range_end: end,
            created_at: now,
            created_by: self.created_by.unwrap_or_else(|| DEFAULT_CREATED_BY.to_owned()),
        };
        annotation.check(id).map_err(AddAnnotationError::Invalid)?;
        Ok(annotation)
    }
}

/// What [`add_annotation`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOutcome {
    /// The session.
    pub session_id: SessionId,
    /// The annotation.
    pub annotation: Annotation,
    /// False when the session held the same annotation already.
    pub added: bool,
    /// The push to ClickHouse, when one is configured; a failed push is a
    /// report with an error (see [`ClickHouseReport::warning`]), not an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickHouseReport>,
}

/// Adds the annotation `config` describes to session `id` at `now` (unless
/// the session has it already) and pushes it to `clickhouse` when given.
pub async fn add_annotation(
    store: &dyn SessionStore,
    id: &SessionId,
    config: AddAnnotationConfig,
    clickhouse: Option<ClickHouseConfig>,
    now: Timestamp,
) -> Result<AddOutcome, AddAnnotationError> {
    let metadata = store.read_metadata(id).await.map_err(|error| AddAnnotationError::Session(Box::new(error)))?;
    let annotation = config.validate(&metadata, now)?;
    let mut annotations =
        session_annotations(store, id).await.map_err(|error| AddAnnotationError::Read(Box::new(error)))?;
    let identity = annotation.identity();
    let added = !annotations.iter().any(|known| known.identity() == identity);
    if added {
        annotations.push(annotation.clone());
        store.write_annotations(id, Bytes::from(to_jsonl(&annotations))).await.map_err(|source| {
            AddAnnotationError::Write { id: id.clone(), location: store.location(), source: Box::new(source) }
        })?;
    }
    let clickhouse = match clickhouse {
        None => None,
        Some(config) => Some(push_and_report(config, id, std::slice::from_ref(&annotation)).await),
    };
    Ok(AddOutcome { session_id: id.clone(), annotation, added, clickhouse })
}

#[cfg(test)]
mod tests {
    use tape_session::{SessionStatus, SessionType};

    use super::*;

    const START: u64 = 1_767_225_600_000_000_000;

    fn metadata(ended: bool) -> SessionMetadata {
        let id = SessionId::new("c-1").unwrap();
        let mut metadata =
            SessionMetadata::new(id, SessionType::Capture, Timestamp::from_unix_nanos(START), "test".to_owned());
        if ended {
            metadata.finish(Timestamp::from_unix_nanos(START + 60_000_000_000), SessionStatus::Completed);
        }
        metadata
    }

    fn config(json: &str) -> AddAnnotationConfig {
        serde_json::from_str(json).unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_nanos(START + 120_000_000_000)
    }

    #[test]
    fn a_phase_gets_its_type_and_default_value() {
        let annotation = config(r#"{"key": "test.phase.incident", "from": "10s", "until": 20, "description": "boom"}"#)
            .validate(&metadata(true), now())
            .unwrap();
        assert_eq!(annotation.annotation_type, PHASE_ANNOTATION_TYPE);
        assert_eq!(annotation.time_range_start, Timestamp::from_unix_nanos(START + 10_000_000_000));
        assert_eq!(annotation.time_range_end, Timestamp::from_unix_nanos(START + 20_000_000_000));
        assert_eq!(
            annotation.annotation_value,
            serde_json::json!({"sessionId": "c-1", "phase": "incident", "flags": [], "description": "boom"})
        );
        assert_eq!(annotation.created_by, DEFAULT_CREATED_BY);
        let other = config(r#"{"key": "deploy.v2", "from": "1s", "until": "2s", "value": [1], "createdBy": "me"}"#)
            .validate(&metadata(true), now())
            .unwrap();
        assert_eq!((other.annotation_type.as_str(), other.created_by.as_str()), ("deploy", "me"));
        assert_eq!(other.annotation_value, serde_json::json!([1]));
    }

    #[test]
    fn bad_annotations_name_the_flag() {
        for (json, ended, expected) in [
            (r#"{"key": "a b", "from": 1, "until": 2}"#, true, "--key \"a b\" must be 1 to 256 characters"),
            (r#"{"key": "test.phase.a.b", "from": 1, "until": 2}"#, true, "--key test.phase.a.b: "),
            (r#"{"key": "x", "type": " ", "from": 1, "until": 2}"#, true, "--type cannot be empty"),
            (r#"{"key": "test.phase.p", "type": "x", "from": 1, "until": 2}"#, true, "is a phase, whose type is test"),
            (r#"{"key": "x", "from": 2, "until": 1}"#, true, "--until 1s (2026-01-01T00:00:01"),
            (r#"{"key": "x", "from": 1, "until": 90}"#, true, "which spans 2026-01-01T00:00:00"),
            (r#"{"key": "x", "from": 1, "until": 130}"#, false, "(it is still being recorded)"),
        ] {
            let error = config(json).validate(&metadata(ended), now()).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let error = serde_json::from_str::<AddAnnotationConfig>(r#"{"key": "x", "from": "soon", "until": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("RFC 3339"), "{error}");
        let error = parse_value_text("{x").unwrap_err().to_string();
        assert!(error.starts_with("--value is not JSON: ") && error.ends_with(": {x"), "{error}");
    }
}
