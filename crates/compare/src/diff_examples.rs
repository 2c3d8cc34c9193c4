//! The example differences a comparison lists: per signal and kind
//! (missing, unexpected, duplicate, changed) the first ones in an order
//! of the items' identities (not of the partitions or of reading), then
//! taken from every kind in turn.

use std::collections::BinaryHeap;

use crate::diff::Change;
use crate::diff_values::ShownValue;
use crate::match_keys::{ContentHash, Ids, span_key};
use crate::{Difference, Item, ItemBody, MAX_DIFFERENCES};

/// How an item differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// Expected, not delivered.
    Missing,
    /// Delivered, not expected.
    Unexpected,
    /// Delivered again.
    Duplicate,
    /// Delivered with differences.
    Changed,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Unexpected => "unexpected",
            Kind::Duplicate => "duplicate",
            Kind::Changed => "changed",
        }
    }
}

/// Where an example sorts: by the item's ids (or content), pass, record
/// and time.
type Order = (Ids, u64, u64, u64);

#[derive(Debug)]
struct Candidate {
    order: Order,
    difference: Difference,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order.cmp(&other.order)
    }
}

/// The first examples of each signal and kind.
#[derive(Debug, Default)]
pub(crate) struct Examples {
    kept: [[BinaryHeap<Candidate>; 4]; 3],
}

impl Examples {
    /// Keeps `item` (an expected one, or a delivered one when unexpected)
    /// as an example of `kind` if it is among the first of its signal and
    /// kind; `actual` and `changes` give a changed item's details.
    pub(crate) fn offer(&mut self, kind: Kind, item: &Item, actual: Option<&Item>, changes: &[Change<'_>]) {
        let order = order(item);
        let heap = &mut self.kept[item.signal().index()][kind as usize];
        if heap.len() >= MAX_DIFFERENCES && heap.peek().is_some_and(|last| last.order <= order) {
            return;
        }
        let difference = difference(kind, item, actual, changes);
        heap.push(Candidate { order, difference });
        if heap.len() > MAX_DIFFERENCES {
            heap.pop();
        }
    }

    /// At most [`MAX_DIFFERENCES`] examples, taken from every signal and
    /// kind in turn, listed by signal, kind and order.
    pub(crate) fn into_differences(self) -> Vec<Difference> {
        let mut lists: Vec<Vec<Candidate>> = self.kept.into_iter().flatten().map(BinaryHeap::into_sorted_vec).collect();
        let mut taken: Vec<Vec<Candidate>> = lists.iter().map(|_| Vec::new()).collect();
        let mut count = 0;
        'rounds: loop {
            let mut any = false;
            for (list, taken) in lists.iter_mut().zip(&mut taken) {
                if count == MAX_DIFFERENCES {
                    break 'rounds;
                }
                if !list.is_empty() {
                    taken.push(list.remove(0));
                    count += 1;
                    any = true;
                }
            }
            if !any {
                break;
            }
        }
        taken.into_iter().flatten().map(|candidate| candidate.difference).collect()
    }
}

fn order(item: &Item) -> Order {
    let time = crate::diff::primary_time(item);
    let ident = match &item.body {
        ItemBody::Span(span) => span_key(&span.trace_id, &span.span_id),
        ItemBody::Log(record) if item.trace_id().is_some() => span_key(&record.trace_id, &record.span_id),
        ItemBody::Log(record) => {
            let body = crate::match_keys::value_hash(record.body.as_ref());
            content_ident(ContentHash::default().text(&item.scope.service).number(body).finish())
        }
        ItemBody::Point(point) => {
            content_ident(ContentHash::default().text(&item.scope.service).text(&point.name).finish())
        }
    };
    (ident, item.origin.pass, item.origin.record, time)
}

/// Items without ids sort after those with ids, by a hash of their
/// content.
fn content_ident(hash: u64) -> Ids {
    (u128::MAX, hash)
}

fn difference(kind: Kind, item: &Item, actual: Option<&Item>, changes: &[Change<'_>]) -> Difference {
    let (name, trace_id, span_id) = match &item.body {
        ItemBody::Span(span) => {
            (span.name.clone(), Some(hex::encode(&span.trace_id)), Some(hex::encode(&span.span_id)))
        }
        ItemBody::Log(record) => {
            let ids = item.trace_id().map(|_| (hex::encode(&record.trace_id), hex::encode(&record.span_id)));
            let body = match record.body.as_ref().and_then(|body| body.value.as_ref()) {
                Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(text)) => {
                    crate::diff_values::shortened(text).to_owned()
                }
                _ => ShownValue(record.body.as_ref()).to_string(),
            };
            let (trace, span) = ids.unzip();
            (body, trace, span)
        }
        ItemBody::Point(point) => (point.name.clone(), None, None),
    };
    let mut details: Vec<String> = changes.iter().map(ToString::to_string).collect();
    details.dedup();
    if let (Some(actual), Kind::Changed) = (actual, kind)
        && actual.scope.service != item.scope.service
    {
        details.push(format!("delivered by service {:?}", actual.scope.service));
    }
    let expected_side = matches!(kind, Kind::Missing | Kind::Changed);
    Difference {
        signal: item.signal(),
        kind: kind.name(),
        service: item.scope.service.clone(),
        name,
        trace_id,
        span_id,
        pass: expected_side.then_some(item.origin.pass),
        details,
    }
}
