//! Blob write and read throughput, in bytes of OTLP payload.
//!
//! The workload is a realistic mix of OTLP protobuf requests from
//! `tape_otlp::sample`: traces of 8 to 64 spans, metrics of seven data points
//! of every type, logs of 4 to 24 records, about 16 MiB of payload per
//! iteration in one blob per signal. The writer finishes a gzip member every
//! ~1 MiB of frames, as a capture writer flushing each second at ~1 MiB/s
//! would, and hands the compressed bytes on (here: drops them) after each.
//! The readers get the blobs written at the default level: `BlobDecoder`
//! fed 64 KiB chunks, and `BlobReader` over a byte slice.
//!
//! Run: `cargo bench -p tape-session --bench blob`. Results, with the machine
//! they ran on, are in `docs/PERFORMANCE.md`.
#![allow(missing_docs, reason = "criterion_group! defines an undocumented public function")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tape_otlp::{ExportRequest, Signal, sample};
use tape_session::blob::DEFAULT_COMPRESSION_LEVEL;
use tape_session::{BlobDecoder, BlobReader, BlobSummary, BlobWriter, Timestamp};

/// Payload per iteration, over all three signals.
const PAYLOAD_BYTES: u64 = 16 << 20;

/// A member is finished once this many frame bytes went into it.
const MEMBER_BYTES: u64 = 1 << 20;

/// The chunk size the decoder is fed, as a store streams a blob.
const CHUNK_BYTES: usize = 64 * 1024;

/// Share of the payload per signal, in percent: traces dominate by bytes.
const SHARES: [(Signal, u64); 3] = [(Signal::Traces, 60), (Signal::Logs, 25), (Signal::Metrics, 15)];

struct Record {
    receive_time: Timestamp,
    item_count: u64,
    payload: Vec<u8>,
}

/// The records of one signal's blob, about `bytes` of payload.
fn records(signal: Signal, bytes: u64) -> Vec<Record> {
    let services = ["checkout", "payments", "inventory", "frontend", "shipping"];
    let mut records = Vec::new();
    let mut total = 0;
    let mut n = 0u64;
    while total < bytes {
        let service = services[(n % 5) as usize];
        let offset = n * 1_000_000_000;
        let request: ExportRequest = match signal {
            Signal::Traces => sample::traces(service, 8 + n * 7 % 57, offset).into(),
            Signal::Metrics => sample::metrics(service, offset).into(),
            Signal::Logs => sample::logs(service, 4 + n * 3 % 21, offset).into(),
        };
        let payload = request.encode_protobuf();
        total += payload.len() as u64;
        records.push(Record {
            receive_time: Timestamp::from_unix_nanos(sample::BASE_TIME_UNIX_NANO + n * 3_000_000),
            item_count: request.item_count(),
            payload,
        });
        n += 1;
    }
    records
}

/// Writes one blob, finishing a member every [`MEMBER_BYTES`]. With `drain`
/// the compressed bytes are dropped after each member, as a writer draining
/// to a store does; without it the whole blob is kept and returned.
fn write_blob(records: &[Record], level: u32, drain: bool) -> (Vec<u8>, BlobSummary) {
    let mut writer = BlobWriter::new(Vec::with_capacity(2 * MEMBER_BYTES as usize), level);
    let mut member_start = 0;
    for record in records {
        writer.append(record.receive_time, record.item_count, &record.payload).unwrap();
        let written = writer.summary().uncompressed_bytes;
        if written - member_start >= MEMBER_BYTES {
            writer.finish_member().unwrap();
            member_start = written;
            if drain {
                black_box(writer.inner_mut().unwrap()).clear();
            }
        }
    }
    writer.finish().unwrap()
}

/// Writes one blob as a draining writer does; see [`write_blob`].
fn write(records: &[Record], level: u32) -> BlobSummary {
    write_blob(records, level, true).1
}

/// A whole blob in memory.
fn blob(records: &[Record], level: u32) -> Vec<u8> {
    write_blob(records, level, false).0
}

fn bench_blob(criterion: &mut Criterion) {
    let workload: Vec<Vec<Record>> =
        SHARES.iter().map(|&(signal, percent)| records(signal, PAYLOAD_BYTES * percent / 100)).collect();
    let payload: u64 = workload.iter().flatten().map(|record| record.payload.len() as u64).sum();
    let requests: usize = workload.iter().map(Vec::len).sum();

    // Compression ratios, which criterion does not report.
    for level in [DEFAULT_COMPRESSION_LEVEL, 6, 9] {
        let (compressed, frames) = workload.iter().fold((0, 0), |(compressed, frames), records| {
            let summary = write(records, level);
            (compressed + summary.compressed_bytes, frames + summary.uncompressed_bytes)
        });
        let hundredths = payload * 100 / compressed;
        eprintln!(
            "level {level}: {requests} requests, {payload} bytes of payload, {frames} of frames, \
             {compressed} compressed: ratio {}.{:02} of payload",
            hundredths / 100,
            hundredths % 100
        );
    }

    let mut group = criterion.benchmark_group("blob");
    group.throughput(Throughput::Bytes(payload));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    for level in [DEFAULT_COMPRESSION_LEVEL, 6, 9] {
        group.bench_function(BenchmarkId::new("write", format!("level-{level}")), |bencher| {
            bencher.iter(|| {
                for records in &workload {
                    black_box(write(records, level));
                }
            });
        });
    }

    let blobs: Vec<Vec<u8>> = workload.iter().map(|records| blob(records, DEFAULT_COMPRESSION_LEVEL)).collect();
    group.bench_function(BenchmarkId::new("read", "decoder-64KiB-chunks"), |bencher| {
        bencher.iter(|| {
            for blob in &blobs {
                let mut decoder = BlobDecoder::new();
                for chunk in blob.chunks(CHUNK_BYTES) {
                    decoder.feed(chunk).unwrap();
                    while let Some(record) = decoder.next_record() {
                        black_box(record);
                    }
                }
                decoder.finish().unwrap();
                while let Some(record) = decoder.next_record() {
                    black_box(record);
                }
            }
        });
    });
    group.bench_function(BenchmarkId::new("read", "reader"), |bencher| {
        bencher.iter(|| {
            for blob in &blobs {
                for record in BlobReader::new(blob.as_slice()) {
                    black_box(record.unwrap());
                }
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_blob);
criterion_main!(benches);
