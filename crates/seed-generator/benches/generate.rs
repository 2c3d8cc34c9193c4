//! Generation throughput of the pure generator: spans per second encoded to
//! OTLP protobuf, before compression and storage. `otlp-tape bench seed`
//! measures the whole path to a compressed session on disk.

#![allow(missing_docs, reason = "criterion_group! defines an undocumented public function")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tape_otlp::SignalSet;
use tape_seed_generator::{DEFAULT_START, Generator, Params, Pattern, builtin_pattern};

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    for name in ["basic-topology", "high-load", "payment-failure"] {
        let pattern = Pattern::parse(name, builtin_pattern(name).unwrap()).unwrap();
        let params = Params {
            seed: 42,
            start: DEFAULT_START,
            duration_nanos: 10_000_000_000,
            rate: 1_000.0,
            error_rate: 0.05,
            signals: SignalSet::ALL,
        };
        let mut generator = Generator::new(&pattern, params.clone()).unwrap();
        generator.by_ref().for_each(drop);
        let spans = generator.spans_generated();
        group.throughput(Throughput::Elements(spans));
        group.bench_function(format!("{name} ({spans} spans)"), |b| {
            b.iter(|| {
                let mut bytes = 0;
                for batch in Generator::new(&pattern, params.clone()).unwrap() {
                    bytes += batch.payload.len();
                }
                bytes
            });
        });
    }
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
