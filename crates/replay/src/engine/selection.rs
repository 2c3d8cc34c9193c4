//! Which records of a session a replay sends: signals, services, a
//! window of receive times, and a shard.

use std::fmt;

use bytes::Bytes;
use tape_otlp::wire::{Shard, ShardCut};
use tape_otlp::{Signal, SignalSet, wire};
use tape_session::BlobEntry;

/// What part of a session a replay sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Signals sent; the others are not read.
    pub signals: SignalSet,
    /// Services sent, by the resource attribute `service.name`; empty
    /// means every service. Resources of other services are cut out of
    /// each request, and a request left with none is not sent.
    pub services: Vec<String>,
    /// Records received at or after this time (unix nanoseconds).
    pub from: Option<u64>,
    /// Records received before this time (unix nanoseconds).
    pub until: Option<u64>,
    /// Only the items of this shard (`--shard I/N`): each request is cut
    /// on the wire after the services cut (see
    /// [`tape_otlp::wire::cut_to_shard`]), and a request left with none is
    /// not sent. The cut is a function of the stored items alone, so N
    /// replays of one selection send disjoint parts whose union is the
    /// whole.
    pub shard: Option<Shard>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection { signals: SignalSet::ALL, services: Vec::new(), from: None, until: None, shard: None }
    }
}

/// What became of a record under a [`Selection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    /// Sent: the payload (cut to the selected services and shard) and its
    /// items.
    Send {
        /// The request's protobuf bytes.
        payload: Bytes,
        /// Items in `payload`.
        items: u64,
        /// The request before the shard cut, when the cut left out part of
        /// it: `--timestamps current` moves a shard's part as of the whole
        /// request's newest timestamp, as one process moves it.
        uncut: Option<Bytes>,
    },
    /// Outside the selection.
    Skip,
    /// The payload is not a valid request of its signal, so it cannot be
    /// cut to the selected services.
    Invalid(wire::WireError),
}

impl Selection {
    /// Whether a blob may hold selected records: its signal is selected
    /// and its receive times meet the window.
    pub fn may_hold(&self, blob: &BlobEntry) -> bool {
        self.signals.contains(blob.signal)
            && self.from.is_none_or(|from| blob.last_receive_time.unix_nanos() >= from)
            && self.until.is_none_or(|until| blob.first_receive_time.unix_nanos() < until)
    }

    /// Whether a record received at `receive_nanos` is in the window.
    pub fn in_window(&self, receive_nanos: u64) -> bool {
        self.from.is_none_or(|from| receive_nanos >= from) && self.until.is_none_or(|until| receive_nanos < until)
    }

    /// Applies the selection to a record of `signal`.
    pub fn apply(&self, signal: Signal, receive_nanos: u64, payload: Bytes, items: u64) -> Selected {
        if !self.signals.contains(signal) || !self.in_window(receive_nanos) {
            return Selected::Skip;
        }
        let (payload, items) = match self.cut_to_services(signal, payload, items) {
            Selected::Send { payload, items, .. } => (payload, items),
            other => return other,
        };
        let Some(shard) = self.shard else { return Selected::Send { payload, items, uncut: None } };
        match wire::cut_to_shard(signal, &payload, shard) {
            Ok(ShardCut::Whole) => Selected::Send { payload, items, uncut: None },
            Ok(ShardCut::Part { payload: part, items }) => {
                Selected::Send { payload: Bytes::from(part), items, uncut: Some(payload) }
            }
            Ok(ShardCut::Empty) => Selected::Skip,
            Err(error) => Selected::Invalid(error),
        }
    }

    /// The record cut to the selected services.
    fn cut_to_services(&self, signal: Signal, payload: Bytes, items: u64) -> Selected {
        if self.services.is_empty() {
            return Selected::Send { payload, items, uncut: None };
        }
        let kept = wire::retain_resources(signal, &payload, |service| {
            service.is_some_and(|name| self.services.iter().any(|wanted| wanted == name))
        });
        match kept {
            Ok(None) => Selected::Send { payload, items, uncut: None },
            Ok(Some(cut)) if cut.is_empty() => Selected::Skip,
            Ok(Some(cut)) => match wire::count_items(signal, &cut) {
                Ok(0) => Selected::Skip,
                Ok(items) => Selected::Send { payload: Bytes::from(cut), items, uncut: None },
                Err(error) => Selected::Invalid(error),
            },
            Err(error) => Selected::Invalid(error),
        }
    }
}

impl fmt::Display for Selection {
    /// The selection in words, for plans and reports: `traces, metrics,
    /// logs; services checkout, payment; received from ... until ...;
    /// shard 1/3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.signals)?;
        if !self.services.is_empty() {
            write!(f, "; services {}", self.services.join(", "))?;
        }
        let time = |nanos: u64| tape_session::Timestamp::from_unix_nanos(nanos).to_string();
        match (self.from, self.until) {
            (Some(from), Some(until)) => write!(f, "; received from {} until {}", time(from), time(until)),
            (Some(from), None) => write!(f, "; received from {}", time(from)),
            (None, Some(until)) => write!(f, "; received before {}", time(until)),
            (None, None) => Ok(()),
        }?;
        match self.shard {
            Some(shard) => write!(f, "; shard {shard}"),
            None => Ok(()),
        }
    }
}
