//! Deterministic synthetic OTLP for otlp-tape seed sessions.
//!
//! This crate is pure: no I/O, no wall clock. Everything random comes from
//! one [`SeedRng`] seeded by the caller, and every floating-point function
//! comes from `libm`, so the same seed gives the same bits on every
//! machine.
//!
//! This is the foundation of the seed generator: its random source, latency
//! distributions and phase timeline. Pattern files and the generator that
//! walks them build on it.
//!
//! ```no_run
//! use tape_seed_generator::{Latency, SeedRng};
//!
//! let mut rng = SeedRng::new(42);
//! let latency = Latency::log_normal(40_000_000, 250_000_000)?;
//! let nanos = latency.sample(&mut rng);
//! # Ok::<(), tape_seed_generator::LatencyError>(())
//! ```

mod latency;
mod phases;
mod random;

pub use latency::{Latency, LatencyError};
pub use phases::{Phase, PhaseError, Timeline};
pub use random::SeedRng;
