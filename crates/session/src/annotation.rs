//! Annotations: labels on a time range of a session, such as the phases of
//! a seed scenario, kept in the session's `annotations.jsonl`.
//!
//! An [`Annotation`] is one row of the ClickHouse `annotations` table: its
//! camelCase JSON fields are the table's snake_case columns
//! (`session_id`, `annotation_type`, `annotation_key`, `annotation_value`,
//! `time_range_start`, `time_range_end`, `created_at`, `created_by`). In the
//! file the value is a JSON value; in the table it is that value's JSON text
//! ([`Annotation::value_text`]).

use serde::{Deserialize, Serialize};

use crate::{PhaseEntry, SessionId, Timestamp};

/// The name of the annotations file in a session.
pub const ANNOTATIONS_FILE: &str = "annotations.jsonl";
/// The `annotationType` of phase annotations.
pub const PHASE_ANNOTATION_TYPE: &str = "test";
/// The start of the `annotationKey` of phase annotations, followed by the
/// phase's name: `test.phase.baseline`.
pub const PHASE_KEY_PREFIX: &str = "test.phase.";
/// The label of records outside every phase; no phase may take this name.
pub const UNLABELLED: &str = "unlabelled";

/// The longest phase name of a merged session (`<source>/<name>`, after
/// merges of merges `<source>/<source>/<name>`), so that its directory in
/// a by-phase export (`Phase=` and the name) stays a valid file name.
const MAX_QUALIFIED_PHASE_NAME_LEN: usize = 240;

/// Checks that `name` can name a phase: 1 to 64 letters, digits, `_` or
/// `-`, and not [`UNLABELLED`]; in a merged session, such a name after the
/// id of the source session and `/` (`seed-a/failure`), at most 240
/// characters in all. Phase names become directory names in a by-phase
/// export ([`phase_directory`]), so nothing that could leave or escape a
/// directory (`..`, a backslash, a leading `.`) is allowed.
pub fn check_phase_name(name: &str) -> Result<(), String> {
    if let Some((source, rest)) = name.split_once('/') {
        if name.len() > MAX_QUALIFIED_PHASE_NAME_LEN {
            return Err(format!("phase name {name:?} is longer than {MAX_QUALIFIED_PHASE_NAME_LEN} characters"));
        }
        if SessionId::new(source).is_err() || source.starts_with('.') {
            return Err(format!(
                "phase name {name:?} may only hold letters, digits, '_' and '-' (after the source session's id and \
                 '/' in a merged session)"
            ));
        }
        return check_phase_name(rest).map_err(|message| format!("phase name {name:?}: {message}"));
    }
    if name.is_empty() {
        return Err("a phase name cannot be empty".to_owned());
    }
    if name.len() > 64 {
        return Err(format!("phase name {name:?} is longer than 64 characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("phase name {name:?} may only hold letters, digits, '_' and '-'"));
    }
    if name == UNLABELLED {
        return Err(format!("phase name {UNLABELLED:?} is reserved for records outside every phase"));
    }
    Ok(())
}

/// The directory of a phase in a by-phase export: its name, with each `/`
/// of a merged session's `<source>/<name>` made `.` (`seed-a.failure`),
/// one directory per phase. A plain phase name has no `.`, so no two
/// phases share a directory.
pub fn phase_directory(name: &str) -> String {
    name.replace('/', ".")
}

/// A label on a time range of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// What kind of annotation it is: `test` for phases.
    pub annotation_type: String,
    /// What it says, as a dotted key: `test.phase.<name>` for phases.
    pub annotation_key: String,
    /// Details, any JSON value (an object for phases).
    pub annotation_value: serde_json::Value,
    /// Start of the time range it covers.
    pub time_range_start: Timestamp,
    /// End of the time range it covers (exclusive), not before its start.
    pub time_range_end: Timestamp,
    /// When it was made.
    pub created_at: Timestamp,
    /// Who or what made it, such as `otlp-tape seed`.
    pub created_by: String,
}

impl Annotation {
    /// The annotation of a phase of `session_id`: type `test`, key
    /// `test.phase.<name>`, the phase's time range, and as value
    /// `{"sessionId", "phase", "flags", "description"}`.
    pub fn phase(
        session_id: &SessionId,
        phase: &PhaseEntry,
        description: &str,
        created_at: Timestamp,
        created_by: impl Into<String>,
    ) -> Self {
        Annotation {
            session_id: session_id.clone(),
            annotation_type: PHASE_ANNOTATION_TYPE.to_owned(),
            annotation_key: format!("{PHASE_KEY_PREFIX}{}", phase.name),
            annotation_value: serde_json::json!({
                "sessionId": session_id,
                "phase": phase.name,
                "flags": phase.flags,
                "description": description,
            }),
            time_range_start: phase.start,
            time_range_end: phase.end,
            created_at,
            created_by: created_by.into(),
        }
    }

    /// The phase's name, when this is a phase annotation.
    pub fn phase_name(&self) -> Option<&str> {
        if self.annotation_type == PHASE_ANNOTATION_TYPE {
            self.annotation_key.strip_prefix(PHASE_KEY_PREFIX)
        } else {
            None
        }
    }

    /// The value as compact JSON text: the `annotation_value` column.
    pub fn value_text(&self) -> String {
        self.annotation_value.to_string()
    }

    /// What makes two annotations the same, as 64 hex digits: a SHA-256 of
    /// the session, type, key, time range and value (not of who made it or
    /// when). Pushing an annotation whose identity is already in ClickHouse
    /// adds nothing, and adding it to a session again is refused.
    pub fn identity(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in [
            self.session_id.as_str().as_bytes(),
            self.annotation_type.as_bytes(),
            self.annotation_key.as_bytes(),
            &self.time_range_start.unix_nanos().to_be_bytes(),
            &self.time_range_end.unix_nanos().to_be_bytes(),
            self.value_text().as_bytes(),
        ] {
            // Each part is preceded by its length, so no two different
            // annotations hash the same bytes.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hex::encode(hasher.finalize())
    }

    /// Checks what every annotation must be: of `session`, with a type and
    /// a key, a time range whose end is not before its start, and for a
    /// phase annotation a name that [`check_phase_name`] accepts.
    pub fn check(&self, session: &SessionId) -> Result<(), String> {
        if &self.session_id != session {
            return Err(format!("the annotation belongs to session {}, not {session}", self.session_id));
        }
        if self.annotation_type.is_empty() {
            return Err("annotationType is empty".to_owned());
        }
        if self.annotation_key.is_empty() {
            return Err("annotationKey is empty".to_owned());
        }
        if self.time_range_end < self.time_range_start {
            return Err(format!(
                "the time range is inverted: timeRangeEnd {} is before timeRangeStart {}",
                self.time_range_end, self.time_range_start
            ));
        }
        if let Some(name) = self.phase_name() {
            check_phase_name(name)?;
        }
        Ok(())
    }
}

/// A line of `annotations.jsonl` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ANNOTATIONS_FILE} line {line}: {message}")]
pub struct AnnotationError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The contents of `annotations.jsonl`: each annotation as one line of
/// compact JSON, each line ended by a line feed.
pub fn to_jsonl(annotations: &[Annotation]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for annotation in annotations {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_writer(&mut bytes, annotation).unwrap_or_default();
        bytes.push(b'\n');
    }
    bytes
}

/// Reads the `annotations.jsonl` of `session`: one JSON object per line
/// (blank lines are skipped). Every annotation must name `session` and
/// have a time range whose end is not before its start.
pub fn parse_jsonl(session: &SessionId, bytes: &[u8]) -> Result<Vec<Annotation>, AnnotationError> {
    let mut annotations = Vec::new();
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let error = |message: String| AnnotationError { line: index + 1, message };
        let Ok(text) = std::str::from_utf8(line) else {
            return Err(error("the line is not UTF-8 text".to_owned()));
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let annotation: Annotation = serde_json::from_str(text).map_err(|cause| error(cause.to_string()))?;
        annotation.check(session).map_err(error)?;
        annotations.push(annotation);
    }
    Ok(annotations)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const START: u64 = 1_767_225_600_000_000_000;
    const SECOND: u64 = 1_000_000_000;

    fn session() -> SessionId {
        "seed-payment-failure-1".parse().unwrap()
    }

    fn phases() -> Vec<Annotation> {
        [
            ("baseline", 0, 10, vec![]),
            ("failure", 10, 20, vec!["payment-failure".to_owned()]),
            ("rampdown", 20, 30, vec![]),
        ]
        .into_iter()
        .map(|(name, from, to, flags)| {
            let entry = PhaseEntry {
                name: name.to_owned(),
                start: Timestamp::from_unix_nanos(START + from * SECOND),
                end: Timestamp::from_unix_nanos(START + to * SECOND),
                flags,
                source: None,
                writer: None,
            };
            Annotation::phase(&session(), &entry, "what happens", Timestamp::from_unix_nanos(START), "otlp-tape seed")
        })
        .collect()
    }

    #[test]
    fn a_phase_annotation_has_the_earlier_systems_shape() {
        let annotation = &phases()[1];
        let value: serde_json::Value = serde_json::to_value(annotation).unwrap();
        assert_eq!(
            value,
            json!({
                "sessionId": "seed-payment-failure-1",
                "annotationType": "test",
                "annotationKey": "test.phase.failure",
                "annotationValue": {
                    "sessionId": "seed-payment-failure-1",
                    "phase": "failure",
                    "flags": ["payment-failure"],
                    "description": "what happens",
                },
                "timeRangeStart": "2026-01-01T00:00:10Z",
                "timeRangeEnd": "2026-01-01T00:00:20Z",
                "createdAt": "2026-01-01T00:00:00Z",
                "createdBy": "otlp-tape seed",
            })
        );
        assert_eq!(annotation.phase_name(), Some("failure"));
        let value: serde_json::Value = serde_json::from_str(&annotation.value_text()).unwrap();
        assert_eq!(value["phase"], "failure");
    }

    #[test]
    fn annotations_round_trip_through_jsonl() {
        let annotations = phases();
        let bytes = to_jsonl(&annotations);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with("}\n"));
        assert!(text.lines().all(|line| line.starts_with("{\"sessionId\":\"seed-payment-failure-1\"")), "{text}");
        assert_eq!(parse_jsonl(&session(), &bytes).unwrap(), annotations);
        // The same annotations give the same bytes.
        assert_eq!(to_jsonl(&phases()), bytes);
        assert_eq!(to_jsonl(&[]), b"");
        assert_eq!(parse_jsonl(&session(), b"").unwrap(), []);
    }

    #[test]
    fn blank_lines_and_crlf_are_accepted_and_unknown_fields_ignored() {
        let annotations = phases();
        let mut value = serde_json::to_value(&annotations[0]).unwrap();
        value["addedLater"] = json!(true);
        let text = format!("\n{value}\r\n\n");
        assert_eq!(parse_jsonl(&session(), text.as_bytes()).unwrap(), annotations[..1]);
    }

    #[test]
    fn errors_name_the_line() {
        let good = String::from_utf8(to_jsonl(&phases()[..1])).unwrap();
        let cases = [
            (format!("{good}not json\n"), 2, "expected"),
            (format!("{good}{{\"sessionId\": \"x\"}}\n"), 2, "missing field"),
            (format!("{good}\n[1, 2]\n"), 3, "invalid type"),
            (good.replace("2026-01-01T00:00:10Z", "yesterday"), 1, "invalid RFC 3339 time"),
            (good.replace("seed-payment-failure-1", "../etc"), 1, "invalid session id"),
            (
                good.replace("\"annotationKey\":\"test.phase.baseline\"", "\"annotationKey\":\"\""),
                1,
                "annotationKey is empty",
            ),
        ];
        for (text, line, expected) in cases {
            let error = parse_jsonl(&session(), text.as_bytes()).unwrap_err();
            assert_eq!(error.line, line, "{error}");
            assert!(error.to_string().starts_with(&format!("annotations.jsonl line {line}: ")), "{error}");
            assert!(error.message.contains(expected), "{error}");
        }
        let error = parse_jsonl(&session(), b"\xff\xfe\n").unwrap_err();
        assert_eq!((error.line, error.message.as_str()), (1, "the line is not UTF-8 text"));
    }

    #[test]
    fn an_annotation_of_another_session_is_refused() {
        let bytes = to_jsonl(&phases());
        let other: SessionId = "another-session".parse().unwrap();
        let error = parse_jsonl(&other, &bytes).unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("belongs to session seed-payment-failure-1, not another-session"), "{error}");
    }

    #[test]
    fn an_inverted_time_range_is_refused_and_an_empty_one_accepted() {
        let mut annotations = phases();
        annotations[2].time_range_end = annotations[2].time_range_start;
        assert!(parse_jsonl(&session(), &to_jsonl(&annotations)).is_ok());
        annotations[2].time_range_end = Timestamp::from_unix_nanos(START);
        let error = parse_jsonl(&session(), &to_jsonl(&annotations)).unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.message.contains("inverted"), "{error}");
    }

    #[test]
    fn phase_names_that_could_escape_a_directory_are_refused() {
        for name in ["baseline", "payment_failure", "ramp-down-2", &"x".repeat(64), "seed.a_1/failure", "c/seed-a/x"] {
            assert_eq!(check_phase_name(name), Ok(()), "{name}");
        }
        for (name, expected) in [
            ("", "cannot be empty"),
            ("../etc", "may only hold"),
            ("a/", "cannot be empty"),
            ("../b", "may only hold"),
            ("./b", "may only hold"),
            (".x/b", "may only hold"),
            ("a/../b", "may only hold"),
            ("a/b/..", "may only hold"),
            ("a/unlabelled", "reserved"),
            ("a\\b", "may only hold"),
            (".hidden", "may only hold"),
            ("..", "may only hold"),
            ("with space", "may only hold"),
            ("unlabelled", "reserved"),
            (&"x".repeat(65), "longer than 64"),
        ] {
            let error = check_phase_name(name).unwrap_err();
            assert!(error.contains(expected), "{name}: {error}");
        }
        let mut annotation = phases().remove(0);
        annotation.annotation_key = "test.phase.../../etc".to_owned();
        let error = parse_jsonl(&session(), &to_jsonl(&[annotation])).unwrap_err();
        assert!(error.message.contains("may only hold"), "{error}");
    }

    #[test]
    fn identity_ignores_who_and_when_but_not_what() {
        let annotation = phases().remove(1);
        let identity = annotation.identity();
        assert_eq!(identity.len(), 64);
        let mut other = annotation.clone();
        other.created_by = "someone else".to_owned();
        other.created_at = Timestamp::from_unix_nanos(0);
        assert_eq!(other.identity(), identity);
        let edits: [fn(&mut Annotation); 5] = [
            |a| a.annotation_key.push('x'),
            |a| a.annotation_type.push('x'),
            |a| a.time_range_start = Timestamp::from_unix_nanos(a.time_range_start.unix_nanos() + 1),
            |a| a.time_range_end = Timestamp::from_unix_nanos(a.time_range_end.unix_nanos() + 1),
            |a| a.annotation_value = json!({"phase": "failure"}),
        ];
        for edit in edits {
            let mut edited = annotation.clone();
            edit(&mut edited);
            assert_ne!(edited.identity(), identity, "{edited:?}");
        }
    }

    #[test]
    fn only_test_phase_keys_are_phases() {
        let mut annotation = phases().remove(0);
        assert_eq!(annotation.phase_name(), Some("baseline"));
        annotation.annotation_type = "deployment".to_owned();
        assert_eq!(annotation.phase_name(), None);
        annotation.annotation_type = "test".to_owned();
        annotation.annotation_key = "test.run".to_owned();
        assert_eq!(annotation.phase_name(), None);
    }
}
