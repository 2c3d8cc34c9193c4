//! The generator: walks a pattern on a virtual clock and yields encoded
//! OTLP requests in receive-time order.
//!
//! Traces arrive at `rate` per second: trace `i` starts at a uniformly
//! random point of the `i`-th slot of `1/rate` seconds, so a session has
//! exactly `floor(duration × rate)` traces. Each trace draws from its own
//! random stream (`fork(i + 1)` of the seed), so one trace's draws never
//! shift another's. A span is exported in the batch of the second (of
//! virtual time) in which it ends, each service sending its own requests
//! just before the end of that second; metrics are exported every
//! `metrics.interval` and once more at the end, cumulative from the
//! session's start. Latency follows the phase in force when a span starts,
//! failure the phase in which it is received.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tape_otlp::{Signal, SignalSet};
use tape_session::Timestamp;

use crate::metrics::MetricState;
use crate::pattern::{Node, Pattern, Protocol, SpanKind, StatusAttribute};
use crate::wire::{self, SpanFields, SpanTemplate};
use crate::{SeedRng, Timeline};

/// Virtual time between two exports of a service's spans and logs.
pub const TICK_NANOS: u64 = 1_000_000_000;
/// The most spans or log records in one request, as an SDK's batch
/// processor would send.
pub const MAX_ITEMS_PER_REQUEST: usize = 512;
/// The instrumentation scope of everything generated.
pub const SCOPE_NAME: &str = "otlp-tape-seed";
/// Version of the generator's output. Sessions made by another version are
/// not expected to regenerate bit for bit.
pub const GENERATOR_VERSION: u64 = 1;
/// The fixed start used when none is given, so that `--seed` alone is
/// reproducible: 2026-01-01T00:00:00Z.
pub const DEFAULT_START: Timestamp = Timestamp::from_unix_nanos(1_767_225_600_000_000_000);
/// The most traces one session may have.
pub const MAX_TRACES: u64 = 1_000_000_000;
/// Receive times of one second's requests are staggered by service: this
/// many nanoseconds apart.
const SERVICE_STAGGER_NANOS: u64 = 1_000;
/// A second's requests are received this long before the second ends, so
/// that a record received in a phase holds what ended in that phase.
const EXPORT_LEAD_NANOS: u64 = 1_000_000;

/// The second (of the session) in whose export something that happens
/// `offset` nanoseconds into the session is sent.
fn second_of(offset: u64) -> u64 {
    (offset + EXPORT_LEAD_NANOS) / TICK_NANOS
}

/// When the requests of second `index` are received, as an offset into the
/// session: just before the second ends.
fn export_offset(index: u64) -> u64 {
    (index + 1) * TICK_NANOS - EXPORT_LEAD_NANOS
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The seed of every random draw.
    pub seed: u64,
    /// The session's start on the virtual clock.
    pub start: Timestamp,
    /// Length of the session in nanoseconds; traces start within it.
    pub duration_nanos: u64,
    /// Traces per second.
    pub rate: f64,
    /// Error probability of spans whose pattern does not give their own.
    pub error_rate: f64,
    /// The signals to write.
    pub signals: SignalSet,
}

/// Parameters that cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    /// Rate not above zero.
    #[error("the rate must be a number of traces per second above 0, not {0}")]
    Rate(f64),
    /// Zero duration.
    #[error("the duration must be above zero")]
    Duration,
    /// Error rate outside 0..1.
    #[error("the error rate must be between 0 and 1 (0.05 is 5 %), not {0}")]
    ErrorRate(f64),
    /// No signal selected.
    #[error("at least one signal must be selected (traces, metrics, logs)")]
    NoSignals,
    /// Too many traces.
    #[error("{0} traces is more than the {MAX_TRACES} one session may hold; lower the rate or the duration")]
    TooManyTraces(u64),
    /// A session that would end after the year 2262.
    #[error("the session would end after the latest time OTLP can carry")]
    TooLate,
}

impl Params {
    /// Checks the parameters and returns the number of traces they give.
    pub fn check(&self) -> Result<u64, ParamsError> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(ParamsError::Rate(self.rate));
        }
        if self.duration_nanos == 0 {
            return Err(ParamsError::Duration);
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(ParamsError::ErrorRate(self.error_rate));
        }
        if self.signals.is_empty() {
            return Err(ParamsError::NoSignals);
        }
        // An hour of slack after the end for the last spans.
        if self
            .start
            .unix_nanos()
            .checked_add(self.duration_nanos)
            .and_then(|end| end.checked_add(7_200 * TICK_NANOS))
            .is_none()
        {
            return Err(ParamsError::TooLate);
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
        let traces = libm::floor(self.duration_nanos as f64 * self.rate / 1e9);
        #[allow(clippy::cast_precision_loss)] // 10^9 is exact
        if traces > MAX_TRACES as f64 {
            #[allow(clippy::cast_sign_loss)]
            return Err(ParamsError::TooManyTraces(traces as u64));
        }
        #[allow(clippy::cast_sign_loss)]
        Ok(traces as u64)
    }
}

/// One encoded request with its receive time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// When the request is received, on the virtual clock.
    pub receive_time: Timestamp,
    /// Its signal.
    pub signal: Signal,
    /// Spans, data points or log records in it.
    pub items: u64,
    /// The `Export*ServiceRequest`, protobuf-encoded.
    pub payload: Vec<u8>,
}

/// A phase laid out on the session's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseWindow {
    /// Its name.
    pub name: String,
    /// Its start.
    pub start: Timestamp,
    /// Its end (exclusive).
    pub end: Timestamp,
    /// Feature flags in force.
    pub flags: Vec<String>,
    /// Its description.
    pub description: String,
}

/// How a node behaves in one phase.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    /// Probability of failing on its own; `None` when it cannot.
    error_probability: Option<f64>,
    /// Latency factor at the phase's start and end.
    factor: (f64, f64),
}

/// A generated span, kept until its second is exported.
#[derive(Debug, Clone)]
pub(crate) struct SpanRecord {
    pub node: u32,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub remote_parent: bool,
    pub start: u64,
    pub end: u64,
    pub status_code: Option<i64>,
    /// Why it failed: its own error, or a failed call.
    pub failure: Failure,
    /// Boxed: few spans have one, and every span is kept until exported.
    pub link: Option<Box<([u8; 16], [u8; 8])>>,
}

/// Whether and why a span failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    None,
    Own,
    Propagated,
}

/// A log record to write, kept until its second is exported.
#[derive(Debug, Clone)]
pub(crate) struct LogRecordPlan {
    pub node: u32,
    /// Index into the node's log templates, or `None` for the error log of
    /// a failure.
    pub template: Option<u16>,
    pub time: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub duration: u64,
    pub status_code: Option<i64>,
}

/// A request waiting to be encoded.
#[derive(Debug)]
enum Queued {
    Spans { service: usize, receive_time: Timestamp, spans: Vec<SpanRecord> },
    Logs { service: usize, receive_time: Timestamp, logs: Vec<LogRecordPlan> },
    Ready(Batch),
}

#[derive(Debug, Default)]
struct Second {
    spans: Vec<SpanRecord>,
    logs: Vec<LogRecordPlan>,
}

/// The outcome of one span for its caller.
struct Outcome {
    end: u64,
    /// Whether the failure reaches the caller.
    failed: bool,
    /// The span's response status.
    status_code: Option<i64>,
}

/// The generator; an iterator of [`Batch`]es in receive-time order.
#[derive(Debug)]
pub struct Generator<'p> {
    pattern: &'p Pattern,
    params: Params,
    timeline: Timeline,
    root: SeedRng,
    traces: u64,
    next_trace: u64,
    slot_nanos: f64,
    total_weight: u64,
    behaviour: Vec<Vec<Behaviour>>,
    templates: Vec<SpanTemplate>,
    resources: Vec<Vec<u8>>,
    scope: Vec<u8>,
    /// Seconds not yet exported; the front is second `next_second`.
    pending: VecDeque<Second>,
    next_second: u64,
    /// The second after which no trace starts.
    last_second: u64,
    metrics: MetricState,
    out: VecDeque<Queued>,
    scratch: Vec<u8>,
    spans_generated: u64,
    finished: bool,
    /// Set by the caller to stop; checked before each trace and each batch.
    stop: Option<Arc<AtomicBool>>,
}

impl<'p> Generator<'p> {
    /// A generator of `pattern` with `params`.
    pub fn new(pattern: &'p Pattern, params: Params) -> Result<Self, ParamsError> {
        let traces = params.check()?;
        let timeline = pattern.timeline(params.duration_nanos);
        let behaviour = timeline
            .phases()
            .iter()
            .map(|(phase, _, _)| {
                pattern
                    .nodes
                    .iter()
                    .map(|node| {
                        let mut behaviour = Behaviour {
                            error_probability: node
                                .error
                                .as_ref()
                                .map(|error| error.probability.unwrap_or(params.error_rate)),
                            factor: (1.0, 1.0),
                        };
                        for effect in node.effects.iter().filter(|effect| phase.flags.contains(&effect.flag)) {
                            if let Some(p) = effect.error_probability {
                                behaviour.error_probability = Some(p);
                            }
                            if let Some((from, to)) = effect.latency_factor {
                                behaviour.factor = (behaviour.factor.0 * from, behaviour.factor.1 * to);
                            }
                        }
                        behaviour
                    })
                    .collect()
            })
            .collect();
        let templates = pattern
            .nodes
            .iter()
            .map(|node| {
                let status_key = match node.status_attribute {
                    StatusAttribute::None => None,
                    StatusAttribute::Http => Some("http.response.status_code"),
                    StatusAttribute::Grpc => Some("rpc.grpc.status_code"),
                };
                SpanTemplate::new(&node.name, node.kind as u64, &node.attributes, status_key)
            })
            .collect();
        let resources = pattern.services.iter().map(|service| wire::resource(&service.resource)).collect();
        let metrics = MetricState::new(pattern, params.start.unix_nanos());
        Ok(Generator {
            pattern,
            timeline,
            root: SeedRng::new(params.seed),
            traces,
            next_trace: 0,
            slot_nanos: 1e9 / params.rate,
            total_weight: pattern.entrypoints.iter().map(|entry| u64::from(entry.weight)).sum(),
            behaviour,
            templates,
            resources,
            scope: wire::scope(SCOPE_NAME),
            pending: VecDeque::new(),
            next_second: 0,
            last_second: params.duration_nanos.div_ceil(TICK_NANOS),
            metrics,
            out: VecDeque::new(),
            scratch: Vec::with_capacity(1024),
            spans_generated: 0,
            finished: false,
            stop: None,
            params,
        })
    }

    /// Stops the generator once `stop` is set: the iterator then ends
    /// before its next trace or batch, however many traces are left. One
    /// trace is the most it generates after `stop` is set.
    #[must_use]
    pub fn stop_when(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| stop.load(Ordering::Relaxed))
    }

    /// The number of traces the session will have.
    pub fn trace_count(&self) -> u64 {
        self.traces
    }

    /// Spans generated so far (whether or not traces are written).
    pub fn spans_generated(&self) -> u64 {
        self.spans_generated
    }

    /// The phases laid out on the session's clock.
    pub fn phases(&self) -> Vec<PhaseWindow> {
        let start = self.params.start.unix_nanos();
        self.timeline
            .phases()
            .iter()
            .map(|(phase, from, to)| PhaseWindow {
                name: phase.name.clone(),
                start: Timestamp::from_unix_nanos(start + from),
                end: Timestamp::from_unix_nanos(start + to),
                flags: phase.flags.clone(),
                description: phase.description.clone(),
            })
            .collect()
    }

    fn generate_trace(&mut self, index: u64) {
        let pattern = self.pattern;
        let mut rng = self.root.fork(index + 1);
        #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]
        let offset = (((index as f64) + rng.unit()) * self.slot_nanos) as u64;
        let offset = offset.min(self.params.duration_nanos - 1);
        self.export_until(second_of(offset));
        let mut pick = rng.below(self.total_weight);
        let entry = pattern
            .entrypoints
            .iter()
            .find(|entry| {
                let weight = u64::from(entry.weight);
                if pick < weight {
                    true
                } else {
                    pick -= weight;
                    false
                }
            })
            .expect("the pick is below the total weight");
        let trace_id = rng.trace_id();
        let start = self.params.start.unix_nanos() + offset;
        self.span(&mut rng, entry.root, start, trace_id, None, None);
    }

    /// The phase in force at `offset` into the session, and how far into it
    /// (0 to 1); offsets past the end belong to the last phase.
    fn phase_at(&self, offset: u64) -> (usize, f64) {
        let phases = self.timeline.phases();
        let index = phases.iter().position(|(_, _, end)| offset < *end).unwrap_or(phases.len() - 1);
        let (_, from, to) = phases[index];
        #[allow(clippy::cast_precision_loss)]
        let progress = (offset.saturating_sub(from) as f64 / (to - from) as f64).min(1.0);
        (index, progress)
    }

    /// Generates the span of `node` and its subtree, starting at `start`.
    fn span(
        &mut self,
        rng: &mut SeedRng,
        node_index: usize,
        start: u64,
        trace_id: [u8; 16],
        parent: Option<([u8; 8], usize)>,
        link: Option<([u8; 16], [u8; 8])>,
    ) -> Outcome {
        let pattern = self.pattern;
        let node = &pattern.nodes[node_index];
        let session_start = self.params.start.unix_nanos();
        // Latency follows the phase in force when the span starts...
        let (phase, progress) = self.phase_at(start - session_start);
        let behaviour = self.behaviour[phase][node_index];
        let span_id = rng.span_id();
        let factor = behaviour.factor.0 + (behaviour.factor.1 - behaviour.factor.0) * progress;
        let own = scale(node.latency.sample(rng), factor);
        let before = own / 4;
        let first_child = start + before;
        let mut children_end = first_child;
        // The first failed call that reaches this span, with its status.
        let mut failed_child: Option<Option<i64>> = None;
        let mut deferred = Vec::new();
        for &child in &node.children {
            for _ in 0..pattern.nodes[child].repeat {
                if pattern.nodes[child].async_delay.is_some() {
                    deferred.push(child);
                    continue;
                }
                let child_start = if node.parallel { first_child } else { children_end };
                let outcome = self.span(rng, child, child_start, trace_id, Some((span_id, node.service)), None);
                children_end = children_end.max(outcome.end);
                if failed_child.is_none() && outcome.failed {
                    failed_child = Some(outcome.status_code);
                }
            }
        }
        let end = children_end + (own - before);
        // ...and failure the phase in which it is reported, so that a record
        // received in a phase shows that phase's behaviour (what training
        // data labelled by receive time needs).
        let (reported_in, _) = self.phase_at(export_offset(second_of(end - session_start)));
        let own_failure = self.behaviour[reported_in][node_index].error_probability.is_some_and(|p| rng.chance(p));
        let failure = match (own_failure, failed_child) {
            (true, _) => Failure::Own,
            (false, Some(_)) => Failure::Propagated,
            (false, None) => Failure::None,
        };
        let status_code = status_code(node, failure, failed_child.flatten());
        self.record(node_index, node, trace_id, span_id, parent, start, end, failure, status_code, link);
        for child in deferred {
            let delay = pattern.nodes[child].async_delay.expect("deferred children are async").sample(rng);
            let consumer_trace = rng.trace_id();
            self.span(rng, child, end + delay, consumer_trace, None, Some((trace_id, span_id)));
        }
        let propagates = failure != Failure::None && node.error.as_ref().is_none_or(|error| error.propagate);
        Outcome { end, failed: propagates, status_code }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        node_index: usize,
        node: &Node,
        trace_id: [u8; 16],
        span_id: [u8; 8],
        parent: Option<([u8; 8], usize)>,
        start: u64,
        end: u64,
        failure: Failure,
        status_code: Option<i64>,
        link: Option<([u8; 16], [u8; 8])>,
    ) {
        self.spans_generated += 1;
        let session_start = self.params.start.unix_nanos();
        let node_id = node_index as u32;
        let log_at = |time: u64, template: Option<u16>| LogRecordPlan {
            node: node_id,
            template,
            time,
            trace_id,
            span_id,
            duration: end - start,
            status_code,
        };
        let mut logs = Vec::new();
        for (index, template) in node.logs.iter().enumerate() {
            let time = match template.on {
                crate::LogWhen::Start => start,
                crate::LogWhen::End => end,
                crate::LogWhen::Ok if failure == Failure::None => end,
                crate::LogWhen::Error if failure != Failure::None => end,
                crate::LogWhen::Ok | crate::LogWhen::Error => continue,
            };
            logs.push(log_at(time, Some(index as u16)));
        }
        if failure == Failure::Own && node.error.as_ref().is_some_and(|error| error.log) {
            logs.push(log_at(end, None));
        }
        let record = SpanRecord {
            node: node_id,
            trace_id,
            span_id,
            parent_span_id: parent.map(|(id, _)| id),
            remote_parent: parent.is_some_and(|(_, service)| service != node.service),
            start,
            end,
            status_code,
            failure,
            link: link.map(Box::new),
        };
        let second = self.second_mut(second_of(end - session_start));
        second.spans.push(record);
        for log in logs {
            let index = second_of(log.time - session_start);
            self.second_mut(index).logs.push(log);
        }
    }

    fn second_mut(&mut self, second: u64) -> &mut Second {
        let index = usize::try_from(second - self.next_second).expect("pending seconds fit in memory");
        if index >= self.pending.len() {
            self.pending.resize_with(index + 1, Second::default);
        }
        &mut self.pending[index]
    }

    /// Exports every second before `second`.
    fn export_until(&mut self, second: u64) {
        while self.next_second < second {
            let contents = self.pending.pop_front().unwrap_or_default();
            let index = self.next_second;
            self.next_second += 1;
            self.export_second(index, contents);
        }
    }

    /// Queues the requests of second `index`, to be encoded one at a time
    /// as they are taken, so that only one encoded request is held.
    fn export_second(&mut self, index: u64, second: Second) {
        let pattern = self.pattern;
        let session_start = self.params.start.unix_nanos();
        let time = session_start + export_offset(index);
        for span in &second.spans {
            self.metrics.observe(pattern, span);
        }
        let last = self.is_last_second(index);
        self.finished = last;
        let metrics_due = ((index + 1) * TICK_NANOS).is_multiple_of(pattern.metrics.interval_nanos) || last;
        let metrics = if metrics_due { self.export_metrics(time) } else { Vec::new() };
        let services = pattern.services.len();
        let mut spans_by_service: Vec<Vec<SpanRecord>> = vec![Vec::new(); services];
        if self.params.signals.contains(Signal::Traces) {
            for span in second.spans {
                spans_by_service[pattern.nodes[span.node as usize].service].push(span);
            }
        }
        let mut logs_by_service: Vec<Vec<LogRecordPlan>> = vec![Vec::new(); services];
        if self.params.signals.contains(Signal::Logs) {
            for log in second.logs {
                logs_by_service[pattern.nodes[log.node as usize].service].push(log);
            }
        }
        let mut metrics = metrics.into_iter().peekable();
        for (service, (spans, logs)) in spans_by_service.into_iter().zip(logs_by_service).enumerate() {
            let stagger = (service as u64 * SERVICE_STAGGER_NANOS).min(EXPORT_LEAD_NANOS - 1);
            let receive_time = Timestamp::from_unix_nanos(time + stagger);
            for spans in chunks(spans) {
                self.out.push_back(Queued::Spans { service, receive_time, spans });
            }
            while let Some((_, items, payload)) = metrics.next_if(|(of, _, _)| *of == service) {
                if self.params.signals.contains(Signal::Metrics) {
                    self.out.push_back(Queued::Ready(Batch { receive_time, signal: Signal::Metrics, items, payload }));
                }
            }
            for logs in chunks(logs) {
                self.out.push_back(Queued::Logs { service, receive_time, logs });
            }
        }
    }

    /// Encodes a queued request.
    fn encode(&mut self, queued: Queued) -> Batch {
        match queued {
            Queued::Ready(batch) => batch,
            Queued::Spans { service, receive_time, spans } => {
                let payload = self.encode_spans(service, &spans);
                Batch { receive_time, signal: Signal::Traces, items: spans.len() as u64, payload }
            }
            Queued::Logs { service, receive_time, logs } => {
                let payload = crate::logs::encode(self.pattern, service, &logs);
                Batch { receive_time, signal: Signal::Logs, items: logs.len() as u64, payload }
            }
        }
    }

    /// Whether second `index` is the last: every trace has started and no
    /// span is pending.
    fn is_last_second(&self, index: u64) -> bool {
        self.next_trace >= self.traces
            && index + 1 >= self.last_second
            && self.pending.iter().all(|second| second.spans.is_empty() && second.logs.is_empty())
    }

    /// The metrics requests due at `time`: (service, items, payload).
    fn export_metrics(&mut self, time: u64) -> Vec<(usize, u64, Vec<u8>)> {
        let in_flight = self.in_flight(time);
        self.metrics.export(self.pattern, time, &in_flight)
    }

    /// Server spans in progress at `time`, per service: those pending that
    /// started before it.
    fn in_flight(&self, time: u64) -> Vec<u64> {
        let mut counts = vec![0; self.pattern.services.len()];
        for span in self.pending.iter().flat_map(|second| &second.spans) {
            let node = &self.pattern.nodes[span.node as usize];
            if node.kind == SpanKind::Server && span.start < time {
                counts[node.service] += 1;
            }
        }
        counts
    }

    fn encode_spans(&mut self, service: usize, spans: &[SpanRecord]) -> Vec<u8> {
        let pattern = self.pattern;
        let mut encoded = Vec::with_capacity(spans.len() * 256);
        for span in spans {
            let node = &pattern.nodes[span.node as usize];
            let error = match span.failure {
                Failure::None => None,
                Failure::Own | Failure::Propagated => {
                    Some(node.error.as_ref().map_or("a downstream call failed", |error| error.message.as_str()))
                }
            };
            let exception = match span.failure {
                Failure::Own => node.error.as_ref().and_then(|error| error.exception.as_deref()),
                Failure::None | Failure::Propagated => None,
            };
            let fields = SpanFields {
                trace_id: &span.trace_id,
                span_id: &span.span_id,
                parent_span_id: span.parent_span_id.as_ref(),
                flags: if span.remote_parent { 0x301 } else { 0x101 },
                start: span.start,
                end: span.end,
                status_code: span.status_code,
                error,
                exception,
                link: span.link.as_deref().map(|(trace, span)| (trace, span)),
            };
            wire::put_span(&mut encoded, &mut self.scratch, &self.templates[span.node as usize], &fields);
        }
        let mut request = Vec::new();
        wire::put_resource_spans(&mut request, &self.resources[service], &self.scope, &encoded);
        request
    }
}

/// `items` in requests of at most [`MAX_ITEMS_PER_REQUEST`], each holding
/// only its own items.
fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut items = items.into_iter();
    std::iter::from_fn(|| {
        let chunk: Vec<T> = items.by_ref().take(MAX_ITEMS_PER_REQUEST).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
    .collect()
}

/// The response status a span reports.
fn status_code(node: &Node, failure: Failure, child_status: Option<i64>) -> Option<i64> {
    let failed_code = |default: i64| {
        node.error.as_ref().map_or_else(
            || match (node.protocol, child_status) {
                (Protocol::Http, Some(code)) if (400..600).contains(&code) => code,
                _ => default,
            },
            |error| error.status_code,
        )
    };
    match (node.status_attribute, failure) {
        (StatusAttribute::None, _) => None,
        (StatusAttribute::Http, Failure::None) => Some(200),
        (StatusAttribute::Grpc, Failure::None) => Some(0),
        (StatusAttribute::Http, _) => Some(failed_code(500)),
        (StatusAttribute::Grpc, _) => Some(failed_code(2)),
    }
}

#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn scale(nanos: u64, factor: f64) -> u64 {
    if (factor - 1.0).abs() < f64::EPSILON { nanos } else { libm::round(nanos as f64 * factor).max(1.0) as u64 }
}

impl Iterator for Generator<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        loop {
            if self.stopped() {
                self.finished = true;
                self.out.clear();
                return None;
            }
            if let Some(queued) = self.out.pop_front() {
                return Some(self.encode(queued));
            }
            if self.finished {
                return None;
            }
            if self.next_trace < self.traces {
                let index = self.next_trace;
                self.generate_trace(index);
                self.next_trace += 1;
            } else {
                // Every trace has started: export what is left, one second
                // at a time so that the output stays small.
                self.export_until(self.next_second + 1);
            }
        }
    }
}

/// The session's parameters as recorded in its metadata.
pub fn parameters(pattern: &Pattern, params: &Params) -> BTreeMap<String, serde_json::Value> {
    use serde_json::json;
    let signals: Vec<&str> = params.signals.iter().map(Signal::as_str).collect();
    BTreeMap::from([
        ("generator".to_owned(), json!("otlp-tape seed")),
        ("generatorVersion".to_owned(), json!(GENERATOR_VERSION)),
        ("pattern".to_owned(), json!(pattern.name)),
        ("patternSha256".to_owned(), json!(pattern.source_sha256())),
        ("patternSource".to_owned(), json!(pattern.source)),
        ("seed".to_owned(), json!(params.seed)),
        ("start".to_owned(), json!(params.start.to_string())),
        ("duration".to_owned(), json!(crate::format_duration(params.duration_nanos))),
        ("durationNanos".to_owned(), json!(params.duration_nanos)),
        ("rate".to_owned(), json!(params.rate)),
        ("errorRate".to_owned(), json!(params.error_rate)),
        ("signals".to_owned(), json!(signals.join(","))),
    ])
}

/// The pattern and parameters recorded by [`parameters`], to generate a
/// session again. The recorded YAML must hash to the recorded SHA-256.
pub fn from_parameters(parameters: &BTreeMap<String, serde_json::Value>) -> Result<(Pattern, Params), String> {
    let field = |name: &str| parameters.get(name).ok_or_else(|| format!("the parameter {name} is missing"));
    let text = |name: &str| {
        field(name)?.as_str().map(str::to_owned).ok_or_else(|| format!("the parameter {name} is not a string"))
    };
    let unsigned =
        |name: &str| field(name)?.as_u64().ok_or_else(|| format!("the parameter {name} is not a whole number"));
    let float = |name: &str| field(name)?.as_f64().ok_or_else(|| format!("the parameter {name} is not a number"));

    let source = text("patternSource")?;
    let name = parameters.get("pattern").and_then(serde_json::Value::as_str).unwrap_or("patternSource");
    let pattern =
        Pattern::parse(name, &source).map_err(|error| format!("the recorded pattern does not read: {error}"))?;
    let sha256 = text("patternSha256")?;
    if sha256 != pattern.source_sha256() {
        return Err(format!("patternSource hashes to {}, but patternSha256 says {sha256}", pattern.source_sha256()));
    }
    let start = text("start")?;
    let params = Params {
        seed: unsigned("seed")?,
        start: Timestamp::parse_rfc3339(&start)
            .ok_or_else(|| format!("the parameter start {start:?} is not a time"))?,
        duration_nanos: unsigned("durationNanos")?,
        rate: float("rate")?,
        error_rate: float("errorRate")?,
        signals: text("signals")?.parse().map_err(|error| format!("the parameter signals: {error}"))?,
    };
    Ok((pattern, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters from the default start, with an error rate of 5 %.
    fn params(seed: u64, duration_nanos: u64, rate: f64, signals: SignalSet) -> Params {
        Params { seed, start: DEFAULT_START, duration_nanos, rate, error_rate: 0.05, signals }
    }

    #[test]
    fn a_stop_ends_generation_before_the_next_trace() {
        let pattern = Pattern::parse("p", crate::builtin_pattern("basic-topology").unwrap()).unwrap();
        // 10^9 traces in the first second: the first batch would need them all.
        let params = params(1, 1_000_000_000, 1e9, SignalSet::ALL);
        let stop = Arc::new(AtomicBool::new(false));
        let mut generator = Generator::new(&pattern, params.clone()).unwrap().stop_when(Arc::clone(&stop));
        stop.store(true, Ordering::Relaxed);
        assert_eq!(generator.next(), None);
        assert_eq!(generator.spans_generated(), 0);
        assert_eq!(generator.next(), None, "it stays stopped");

        // Stopped between two batches of an ordinary session.
        let params = Params { rate: 50.0, duration_nanos: 10_000_000_000, ..params };
        let all = Generator::new(&pattern, params.clone()).unwrap().count();
        let stop = Arc::new(AtomicBool::new(false));
        let mut generator = Generator::new(&pattern, params).unwrap().stop_when(Arc::clone(&stop));
        let first: Vec<Batch> = generator.by_ref().take(3).collect();
        assert_eq!(first.len(), 3);
        stop.store(true, Ordering::Relaxed);
        assert_eq!(generator.next(), None);
        assert!(all > 3, "{all}");
    }

    #[test]
    fn recorded_parameters_give_back_the_pattern_and_parameters() {
        let pattern = Pattern::parse("p", crate::builtin_pattern("payment-failure").unwrap()).unwrap();
        let params = params(42, 12_345_678_901, 0.1 + 0.2, "traces,logs".parse().unwrap());
        let recorded = parameters(&pattern, &params);
        let json = serde_json::to_string(&recorded).unwrap();
        let (again, params_again) = from_parameters(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(again, pattern);
        assert_eq!(params_again, params);

        let mut edited = recorded.clone();
        edited.insert("patternSource".to_owned(), serde_json::json!(format!("{}\n# edited", pattern.source)));
        assert!(from_parameters(&edited).unwrap_err().contains("hashes to"));
        let mut missing = recorded;
        missing.remove("seed");
        assert!(from_parameters(&missing).unwrap_err().contains("seed is missing"));
    }
}
