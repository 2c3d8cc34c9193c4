//! Deterministic synthetic OTLP for otlp-tape seed sessions.
//!
//! This crate is pure: no I/O, no wall clock. Everything random comes from
//! one [`SeedRng`] seeded by the caller, and every floating-point function
//! comes from `libm`, so the same seed gives the same bits on every
//! machine.
//!
//! A [`Pattern`] (a YAML file; `docs/PATTERNS.md` documents it) describes
//! services, call trees and phases. The generator walks it on a virtual
//! clock and yields encoded OTLP requests with their receive times, ready to
//! be written to a session.
//!
//! ```no_run
//! use tape_seed_generator::{Latency, SeedRng};
//!
//! let mut rng = SeedRng::new(42);
//! let latency = Latency::log_normal(40_000_000, 250_000_000)?;
//! let nanos = latency.sample(&mut rng);
//! # Ok::<(), tape_seed_generator::LatencyError>(())
//! ```

mod builtin;

mod generator;
mod latency;
mod logs;
mod metrics;
mod pattern;
mod phases;
mod proto;
mod random;
mod spec;
mod wire;

pub use builtin::{BUILTIN_PATTERNS, builtin_pattern};
pub use generator::{
    Batch, DEFAULT_START, GENERATOR_VERSION, Generator, MAX_ITEMS_PER_REQUEST, MAX_TRACES, Params, ParamsError,
    PhaseWindow, SCOPE_NAME, TICK_NANOS, from_parameters, parameters,
};
pub use latency::{Latency, LatencyError};
pub use metrics::DURATION_BUCKETS;
pub use pattern::{
    Attributes, DEFAULT_METRICS_INTERVAL_NANOS, Effect, Entrypoint, ErrorBehaviour, Gauge, GaugeKind, LogTemplate,
    LogWhen, MAX_DEPTH, MAX_SPANS_PER_TRACE, Metrics, Node, Pattern, PatternError, Piece, Protocol, Service, SpanKind,
    StatusAttribute, Value,
};
pub use phases::{Phase, PhaseError, Timeline};
pub use random::SeedRng;
pub use tape_session::{format_duration, parse_duration};
