//! The annotations and phases a merged session carries from its sources:
//! each annotation labelled with its source, each phase named
//! `<source>/<name>` and paired with the source's writers.

use serde_json::{Map, Value, json};

use super::{MERGE_CREATOR, MergeError, Source};
use crate::{
    Annotation, PHASE_ANNOTATION_TYPE, PHASE_KEY_PREFIX, PhaseEntry, SessionId, Timestamp, WriterId, check_phase_name,
};

/// The annotations and the metadata phases of the new session `into`, in
/// the order of the sources. A source whose phases are in its metadata
/// only (no phase annotation) gets phase annotations made from them, so
/// that the new session's annotations give every source's phases.
pub(super) fn carry(
    into: &SessionId,
    sources: &[Source],
    now: Timestamp,
) -> Result<(Vec<Annotation>, Vec<PhaseEntry>), MergeError> {
    let mut annotations = Vec::new();
    let mut phases = Vec::new();
    for source in sources {
        let id = &source.metadata.session_id;
        let invalid = |message: String| MergeError::Source { session: id.clone(), message };
        let every_writer: Vec<WriterId> = source.writers.values().cloned().collect();
        let map_writer = |original: &WriterId| {
            source.writers.get(&Some(original.clone())).cloned().ok_or_else(|| {
                invalid(format!("a phase names writer {original}, which has no blobs and no entry in metadata.json"))
            })
        };
        for entry in &source.metadata.phases {
            let name = qualified(id, &entry.name).map_err(&invalid)?;
            let writer = match (&entry.writer, &every_writer[..]) {
                (Some(original), _) => Some(map_writer(original)?),
                (None, [only]) => Some(only.clone()),
                (None, _) => None,
            };
            phases.push(PhaseEntry { name, source: Some(id.clone()), writer, ..entry.clone() });
        }
        let has_phase_annotations = source.annotations.iter().any(|annotation| annotation.phase_name().is_some());
        for annotation in &source.annotations {
            let mut carried = annotation.clone();
            carried.session_id = into.clone();
            let mut value = labelled(id, annotation.annotation_value.clone());
            if let Some(name) = annotation.phase_name() {
                let name = qualified(id, name).map_err(&invalid)?;
                let writers = match value.get("writers").and_then(Value::as_array) {
                    Some(originals) => originals
                        .iter()
                        .map(|original| {
                            let original = original.as_str().and_then(|text| WriterId::new(text).ok());
                            original.ok_or_else(|| invalid(format!("phase {name}: writers holds a bad writer id")))
                        })
                        .map(|original| original.and_then(|original| map_writer(&original)))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => every_writer.clone(),
                };
                carried.annotation_key = format!("{PHASE_KEY_PREFIX}{name}");
                value["phase"] = json!(name);
                value["writers"] = json!(writers);
            }
            carried.annotation_value = value;
            annotations.push(carried);
        }
        if !has_phase_annotations {
            let made = phases.iter().filter(|phase| phase.source.as_ref() == Some(id));
            annotations.extend(made.map(|phase| Annotation {
                session_id: into.clone(),
                annotation_type: PHASE_ANNOTATION_TYPE.to_owned(),
                annotation_key: format!("{PHASE_KEY_PREFIX}{}", phase.name),
                annotation_value: json!({
                    "sessionId": id,
                    "phase": phase.name,
                    "flags": phase.flags,
                    "source": id,
                    "writers": phase.writer.as_ref().map_or_else(|| every_writer.clone(), |writer| vec![writer.clone()]),
                }),
                time_range_start: phase.start,
                time_range_end: phase.end,
                created_at: now,
                created_by: MERGE_CREATOR.to_owned(),
            }));
        }
    }
    phases.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.name.cmp(&b.name)));
    Ok((annotations, phases))
}

/// `<source>/<name>`, checked as a phase name.
fn qualified(source: &SessionId, name: &str) -> Result<String, String> {
    let name = format!("{source}/{name}");
    check_phase_name(&name)?;
    Ok(name)
}

/// An annotation's value with its source: an object gets `"source"` (the
/// source's id, or `<source>/<earlier source>` when the annotation came
/// into the source by an earlier merge); any other value becomes
/// `{"source": ..., "value": <the value>}`.
fn labelled(source: &SessionId, value: Value) -> Value {
    match value {
        Value::Object(mut object) => {
            let label = match object.get("source") {
                None => source.to_string(),
                Some(Value::String(earlier)) => format!("{source}/{earlier}"),
                Some(_) => {
                    let mut wrapped = Map::new();
                    wrapped.insert("source".to_owned(), json!(source));
                    wrapped.insert("value".to_owned(), Value::Object(object));
                    return Value::Object(wrapped);
                }
            };
            object.insert("source".to_owned(), json!(label));
            Value::Object(object)
        }
        value => json!({ "source": source, "value": value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_labelled_with_their_source() {
        let source: SessionId = "seed-a".parse().unwrap();
        assert_eq!(labelled(&source, json!({"phase": "x"})), json!({"phase": "x", "source": "seed-a"}));
        assert_eq!(labelled(&source, json!({"source": "older"})), json!({"source": "seed-a/older"}));
        assert_eq!(labelled(&source, json!("text")), json!({"source": "seed-a", "value": "text"}));
        assert_eq!(labelled(&source, json!({"source": 7})), json!({"source": "seed-a", "value": {"source": 7}}));
    }

    #[test]
    fn phase_names_take_their_source() {
        let source: SessionId = "seed-a".parse().unwrap();
        assert_eq!(qualified(&source, "failure").unwrap(), "seed-a/failure");
        let long: SessionId = "x".repeat(128).parse().unwrap();
        assert_eq!(qualified(&long, "failure").unwrap(), format!("{}/failure", "x".repeat(128)));
        let error = qualified(&long, &format!("{long}/{}", "y".repeat(64))).unwrap_err();
        assert!(error.contains("longer than"), "{error}");
    }
}
