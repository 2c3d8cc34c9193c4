//! A session's phases: the time ranges named by its phase annotations
//! (`annotations.jsonl`), else by its metadata.

use serde::Serialize;

use crate::{
    Annotation, Error, SessionId, SessionMetadata, SessionStore, Timestamp, WriterId, check_phase_name, parse_jsonl,
};

/// A phase of a session: a name and the time ranges it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    /// Its name, such as `failure`.
    pub name: String,
    /// The time ranges it covers, each `[start, end)`, by start. A phase
    /// has one range unless several annotations give the same name.
    pub ranges: Vec<(Timestamp, Timestamp)>,
    /// Feature flags on during the phase (from the annotation's value).
    pub flags: Vec<String>,
    /// What happens in it (from the annotation's value), if said.
    pub description: Option<String>,
    /// The writers whose records it labels, sorted; empty: every record.
    /// In a merged session a source's phases label its own writers'
    /// records only (the annotation's `writers`, the metadata phase's
    /// `writer` or `source`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writers: Vec<WriterId>,
}

impl Phase {
    /// Whether `time` falls in one of its ranges.
    pub fn contains(&self, time: Timestamp) -> bool {
        self.ranges.iter().any(|(start, end)| *start <= time && time < *end)
    }

    /// Whether it labels the records of `writer` (`None`: a record of a
    /// session with one writer): every writer's, unless it names writers.
    pub fn pairs_with(&self, writer: Option<&WriterId>) -> bool {
        self.writers.is_empty() || writer.is_some_and(|writer| self.writers.binary_search(writer).is_ok())
    }

    /// Whether it labels a record of `writer` received at `time`.
    pub fn labels(&self, time: Timestamp, writer: Option<&WriterId>) -> bool {
        self.contains(time) && self.pairs_with(writer)
    }

    /// Its first instant.
    pub fn start(&self) -> Timestamp {
        self.ranges.iter().map(|range| range.0).min().unwrap_or(Timestamp::from_unix_nanos(0))
    }

    /// The instant after its last range.
    pub fn end(&self) -> Timestamp {
        self.ranges.iter().map(|range| range.1).max().unwrap_or(Timestamp::from_unix_nanos(0))
    }
}

/// An annotation that cannot be a phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: {message}")]
pub struct PhaseError {
    /// Its key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The phases given by `annotations` (those of type `test` with a key
/// `test.phase.<name>`), in order of their first start. Annotations with
/// the same name make one phase with several ranges.
pub fn phases_of(annotations: &[Annotation]) -> Result<Vec<Phase>, PhaseError> {
    let mut phases: Vec<Phase> = Vec::new();
    for annotation in annotations {
        let Some(name) = annotation.phase_name() else { continue };
        let error = |message: String| PhaseError { key: annotation.annotation_key.clone(), message };
        check_phase_name(name).map_err(error)?;
        if annotation.time_range_end < annotation.time_range_start {
            return Err(error("its time range is inverted".to_owned()));
        }
        let range = (annotation.time_range_start, annotation.time_range_end);
        if let Some(phase) = phases.iter_mut().find(|phase| phase.name == name) {
            phase.ranges.push(range);
            phase.ranges.sort();
            continue;
        }
        let value = &annotation.annotation_value;
        let flags = value
            .get("flags")
            .and_then(serde_json::Value::as_array)
            .map(|flags| flags.iter().filter_map(|flag| flag.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let description = value.get("description").and_then(serde_json::Value::as_str).map(str::to_owned);
        let mut writers = Vec::new();
        if let Some(listed) = value.get("writers") {
            let bad = || error("its value's writers is not a list of writer ids".to_owned());
            for writer in listed.as_array().ok_or_else(bad)? {
                writers.push(writer.as_str().and_then(|text| WriterId::new(text).ok()).ok_or_else(bad)?);
            }
            writers.sort();
            writers.dedup();
        }
        phases.push(Phase { name: name.to_owned(), ranges: vec![range], flags, description, writers });
    }
    phases.sort_by_key(Phase::start);
    Ok(phases)
}

/// Why a session's phases cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PhasesError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// An annotation or a phase of the metadata is not valid.
    #[error("session {session}: {message}")]
    Invalid {
        /// The session.
        session: SessionId,
        /// What is wrong.
        message: String,
    },
}

/// The phases of a session: those of its `annotations.jsonl` (phases added
/// by an operator included), else those of its metadata.
pub async fn session_phases(store: &dyn SessionStore, metadata: &SessionMetadata) -> Result<Vec<Phase>, PhasesError> {
    let id = &metadata.session_id;
    let invalid = |message: String| PhasesError::Invalid { session: id.clone(), message };
    if let Some(bytes) = store.read_annotations(id).await? {
        let annotations = parse_jsonl(id, &bytes).map_err(|error| invalid(error.to_string()))?;
        let phases = phases_of(&annotations).map_err(|error| invalid(error.to_string()))?;
        if !phases.is_empty() {
            return Ok(phases);
        }
    }
    let mut phases = Vec::new();
    for entry in &metadata.phases {
        check_phase_name(&entry.name).map_err(|message| invalid(format!("metadata.json: {message}")))?;
        let mut writers: Vec<WriterId> = match (&entry.writer, &entry.source) {
            (Some(writer), _) => vec![writer.clone()],
            (None, Some(source)) => metadata
                .writers
                .iter()
                .filter(|writer| writer.source.as_ref() == Some(source))
                .map(|writer| writer.writer_id.clone())
                .collect(),
            (None, None) => Vec::new(),
        };
        writers.sort();
        phases.push(Phase {
            name: entry.name.clone(),
            ranges: vec![(entry.start, entry.end)],
            flags: entry.flags.clone(),
            description: None,
            writers,
        });
    }
    phases.sort_by_key(Phase::start);
    Ok(phases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PhaseEntry;
    use serde_json::json;

    const SECOND: u64 = 1_000_000_000;

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_nanos(1_767_225_600 * SECOND + seconds * SECOND)
    }

    fn phase(name: &str, from: u64, to: u64) -> Annotation {
        let session: SessionId = "s1".parse().unwrap();
        let entry = PhaseEntry {
            name: name.to_owned(),
            start: at(from),
            end: at(to),
            flags: vec!["f".to_owned()],
            source: None,
            writer: None,
        };
        Annotation::phase(&session, &entry, "about it", at(0), "test")
    }

    #[test]
    fn phases_come_from_phase_annotations_only() {
        let mut other = phase("x", 0, 5);
        other.annotation_type = "deployment".to_owned();
        let phases = phases_of(&[phase("failure", 10, 20), other, phase("baseline", 0, 10)]).unwrap();
        let names: Vec<&str> = phases.iter().map(|phase| phase.name.as_str()).collect();
        assert_eq!(names, ["baseline", "failure"]);
        assert_eq!(phases[1].flags, ["f"]);
        assert_eq!(phases[1].description.as_deref(), Some("about it"));
        assert!(phases[1].contains(at(10)));
        assert!(phases[1].contains(at(19)));
        assert!(!phases[1].contains(at(20)));
    }

    #[test]
    fn annotations_with_one_name_make_one_phase_with_several_ranges() {
        let phases = phases_of(&[phase("incident", 30, 40), phase("incident", 5, 8)]).unwrap();
        assert_eq!(phases.len(), 1);
        assert_eq!(phases[0].ranges, [(at(5), at(8)), (at(30), at(40))]);
        assert_eq!((phases[0].start(), phases[0].end()), (at(5), at(40)));
        assert!(phases[0].contains(at(6)) && phases[0].contains(at(35)) && !phases[0].contains(at(20)));
    }

    #[test]
    fn a_phase_name_with_path_characters_is_refused() {
        let mut bad = phase("x", 0, 5);
        bad.annotation_key = "test.phase.../escape".to_owned();
        let error = phases_of(&[bad]).unwrap_err();
        assert_eq!(error.key, "test.phase.../escape");
        assert!(error.message.contains("may only hold"), "{error}");
        let mut reserved = phase("x", 0, 5);
        reserved.annotation_key = "test.phase.unlabelled".to_owned();
        assert!(phases_of(&[reserved]).unwrap_err().message.contains("reserved"));
        let mut inverted = phase("x", 5, 0);
        inverted.annotation_value = json!({});
        assert!(phases_of(&[inverted]).unwrap_err().message.contains("inverted"));
    }
}
