//! The training-data reader: a session's records labelled with the phases
//! they fall in, by receive time.

use std::sync::Arc;

use futures::{Stream, TryStreamExt, stream};
use tape_otlp::Signal;
use tape_session::{Error, Record, SessionMetadata, SessionStore, UNLABELLED};
pub use tape_session::{Phase, PhaseError, PhasesError, phases_of, session_phases};

/// Which part of the training data a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// A phase, by name.
    Phase(Arc<str>),
    /// Outside every phase.
    Unlabelled,
}

impl Label {
    /// The phase's name, or `unlabelled`.
    pub fn name(&self) -> &str {
        match self {
            Label::Phase(name) => name,
            Label::Unlabelled => UNLABELLED,
        }
    }
}

/// A record with the label of a phase it falls in.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The phase, or [`Label::Unlabelled`].
    pub label: Label,
    /// The record's signal.
    pub signal: Signal,
    /// The record, as stored.
    pub record: Record,
}

/// The records of a session in receive-time order, each paired with the
/// phase whose range holds its receive time and that pairs with its writer
/// (in a merged session, a source's phases label that source's records
/// only). A record in no phase comes once as [`Label::Unlabelled`]; a
/// record in overlapping phases comes once for each of them. Memory does
/// not grow with the session.
pub fn by_phase<'a>(
    store: &'a dyn SessionStore,
    metadata: &'a SessionMetadata,
    phases: &'a [Phase],
) -> impl Stream<Item = Result<Labelled, Error>> + Send + 'a {
    let names: Vec<Arc<str>> = phases.iter().map(|phase| Arc::from(phase.name.as_str())).collect();
    tape_session::read_blobs_in_time_order_tagged(store, &metadata.session_id, &metadata.blobs)
        .map_ok(move |(signal, writer, record)| {
            let time = record.receive_time();
            let mut labels: Vec<Label> = phases
                .iter()
                .zip(&names)
                .filter(|(phase, _)| phase.labels(time, writer.as_ref()))
                .map(|(_, name)| Label::Phase(Arc::clone(name)))
                .collect();
            if labels.is_empty() {
                labels.push(Label::Unlabelled);
            }
            stream::iter(labels.into_iter().map(move |label| Ok(Labelled { label, signal, record: record.clone() })))
        })
        .try_flatten()
}
