//! The wire-level work of a replay, per span: shifting every timestamp and
//! remapping every id of a request in place, and finding its newest
//! timestamp (for `--timestamps current`). `otlp-tape bench replay`
//! measures the whole replay path. The cut of a request to one shard of
//! three (`replay --shard 1/3`). And the check of a capture's receivers,
//! beside counting and a full decode.

#![allow(missing_docs, reason = "criterion_group! defines an undocumented public function")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tape_otlp::{ExportRequest, IdRemap, Signal, sample, wire};

fn rewrite(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    let spans = 1_000;
    let mut bytes = ExportRequest::from(sample::traces("checkout", spans, 0)).encode_protobuf();
    let remap = IdRemap::new(7, 1);
    group.throughput(Throughput::Elements(spans));
    let mut delta = 1_000;
    group.bench_function(format!("rewrite_in_place, shift and remap ({spans} spans)"), |b| {
        b.iter(|| {
            delta = -delta;
            wire::rewrite_in_place(Signal::Traces, &mut bytes, delta, Some(&remap)).unwrap();
        });
    });
    group.bench_function(format!("newest_timestamp ({spans} spans)"), |b| {
        b.iter(|| wire::newest_timestamp(Signal::Traces, std::hint::black_box(&bytes)).unwrap());
    });
    // A request of 125 traces cut to a third of them, copied.
    let shard = wire::Shard::new(1, 3).unwrap();
    group.bench_function(format!("cut_to_shard 1/3 ({spans} spans)"), |b| {
        b.iter(|| wire::cut_to_shard(Signal::Traces, std::hint::black_box(&bytes), shard).unwrap());
    });
    // What a capture's receivers do to every request: check it as the full
    // decoder would (validate_request), against counting only the path down
    // to the items (count_items) and decoding it in full.
    group.bench_function(format!("validate_request ({spans} spans)"), |b| {
        b.iter(|| wire::validate_request(Signal::Traces, std::hint::black_box(&bytes)).unwrap());
    });
    group.bench_function(format!("count_items ({spans} spans)"), |b| {
        b.iter(|| wire::count_items(Signal::Traces, std::hint::black_box(&bytes)).unwrap());
    });
    group.bench_function(format!("decode_protobuf ({spans} spans)"), |b| {
        b.iter(|| ExportRequest::decode_protobuf(Signal::Traces, std::hint::black_box(&bytes)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
