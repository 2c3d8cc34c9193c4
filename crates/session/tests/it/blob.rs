//! Blob round trips, gzip compatibility and determinism.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tape_otlp::Signal;
use tape_session::blob::{DEFAULT_COMPRESSION_LEVEL, MAX_FRAME_LEN};
use tape_session::{BlobWriter, Timestamp};

use crate::support::{
    Input, decode_in_chunks, frames, gunzip, noise, read_all, records, sample_inputs, sample_payload, sha256_hex,
    write_blob,
};

/// A fixed seed and no regression files: the same cases on every run.
fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x07c0_ffee), failure_persistence: None, ..Config::default() }
}

/// Payloads of 0 to 64 KiB: noise, runs of one byte, and real OTLP.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0usize..=64 * 1024, any::<u64>()).prop_map(|(len, seed)| noise(len, seed)),
        (0usize..=64 * 1024, any::<u8>()).prop_map(|(len, byte)| vec![byte; len]),
        (0usize..3, 0u64..200).prop_map(|(signal, n)| sample_payload(Signal::ALL[signal], n).0),
    ]
}

fn item_count() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), 1u64..1_000, Just(127), Just(128), Just(16_384), 0u64..1 << 40]
}

/// Records with receive times that never go backwards, each with a flag
/// saying whether the writer finishes the gzip member after it.
fn records_and_flushes() -> impl Strategy<Value = (Vec<Input>, Vec<bool>)> {
    let record = (0u64..10_000_000_000, item_count(), payload(), any::<bool>());
    (0u64..1 << 62, prop::collection::vec(record, 0..12)).prop_map(|(start, records)| {
        let mut time = start;
        records
            .into_iter()
            .map(|(step, items, payload, flush)| {
                time += step;
                (Input::new(time, items, payload), flush)
            })
            .unzip()
    })
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..=16, 1usize..=4096, 1usize..=100_000], 1..6)
}

proptest! {
    #![proptest_config(config(40))]

    #[test]
    fn records_round_trip_and_the_summary_is_exact(
        (inputs, flushes) in records_and_flushes(),
        chunks in chunk_sizes(),
        level in prop_oneof![Just(DEFAULT_COMPRESSION_LEVEL), 0u32..=9],
    ) {
        let written = write_blob(&inputs, &flushes, level);
        let expected = records(&inputs);

        let decoded = decode_in_chunks(&written.blob, &chunks);
        prop_assert_eq!(decoded.error, None);
        prop_assert_eq!(&decoded.records, &expected);
        prop_assert_eq!(decoded.compressed_offset, written.blob.len() as u64);
        prop_assert_eq!(decoded.uncompressed_offset, written.summary.uncompressed_bytes);

        let (read, error) = read_all(written.blob.as_slice());
        prop_assert!(error.is_none(), "{:?}", error);
        prop_assert_eq!(&read, &expected);

        let frames = frames(&inputs);
        prop_assert_eq!(gunzip(&written.blob), frames.clone());

        let summary = &written.summary;
        prop_assert_eq!(summary.records, inputs.len() as u64);
        prop_assert_eq!(summary.items, inputs.iter().map(|input| input.item_count).sum::<u64>());
        let first = inputs.first().map_or(0, |input| input.receive_time);
        let last = inputs.last().map_or(0, |input| input.receive_time);
        prop_assert_eq!(summary.first_receive_time, Timestamp::from_unix_nanos(first));
        prop_assert_eq!(summary.last_receive_time, Timestamp::from_unix_nanos(last));
        prop_assert_eq!(summary.compressed_bytes, written.blob.len() as u64);
        prop_assert_eq!(summary.uncompressed_bytes, frames.len() as u64);
        prop_assert_eq!(&summary.sha256, &sha256_hex(&written.blob));

        // Everything before the end of a finished member is a valid blob on
        // its own: what a flush promises a reader of a growing blob.
        for &(count, end) in &written.member_ends {
            let prefix = decode_in_chunks(&written.blob[..end], &[]);
            prop_assert_eq!(prefix.error, None);
            prop_assert_eq!(&prefix.records[..], &expected[..count]);
        }
    }

    #[test]
    fn the_system_gzip_reads_blobs_as_the_concatenated_frames(
        (inputs, flushes) in records_and_flushes(),
    ) {
        let written = write_blob(&inputs, &flushes, DEFAULT_COMPRESSION_LEVEL);
        prop_assert_eq!(system_gunzip(&written.blob), frames(&inputs));
    }
}

/// Runs `gzip -dc` on `blob`, requiring success and silence on stderr.
fn system_gunzip(blob: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the system gzip (gzip -dc) must be installed to run this test");
    let mut stdin = child.stdin.take().unwrap();
    let blob = blob.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&blob));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(output.status.success(), "gzip -dc failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "gzip -dc warned: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}

#[test]
fn the_system_gzip_reads_a_blob_of_many_members_and_signals() {
    let mut inputs = sample_inputs(Signal::Traces, 1_767_225_600_000_000_000, 40);
    inputs.extend(sample_inputs(Signal::Logs, 1_767_225_601_000_000_000, 40));
    let flushes: Vec<bool> = (0..inputs.len()).map(|index| index % 7 == 3).collect();
    let written = write_blob(&inputs, &flushes, DEFAULT_COMPRESSION_LEVEL);
    assert!(written.member_ends.len() > 5);
    assert_eq!(system_gunzip(&written.blob), frames(&inputs));
}

#[test]
fn an_empty_blob_is_one_empty_gzip_member() {
    let (blob, summary) = BlobWriter::new(Vec::new(), DEFAULT_COMPRESSION_LEVEL).finish().unwrap();
    assert_eq!(&blob[..10], &[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x04, 0xff], "header");
    assert_eq!(&blob[blob.len() - 8..], &[0; 8], "CRC-32 and size of nothing");
    assert_eq!(blob.len(), 20);
    assert_eq!(system_gunzip(&blob), b"");
    assert_eq!((summary.records, summary.items, summary.uncompressed_bytes), (0, 0, 0));
    assert_eq!(summary.compressed_bytes, blob.len() as u64);
    assert_eq!(summary.sha256, sha256_hex(&blob));
    let decoded = decode_in_chunks(&blob, &[]);
    assert_eq!((decoded.records.len(), decoded.error), (0, None));
}

#[test]
fn every_member_header_is_the_documented_one() {
    for (level, extra_flags) in [(0, 4), (1, 4), (6, 0), (9, 2)] {
        let inputs = sample_inputs(Signal::Metrics, 1_767_225_600_000_000_000, 6);
        let written = write_blob(&inputs, &[false, true, false, false, true, false], level);
        let mut start = 0;
        for end in written.member_ends.iter().map(|&(_, end)| end).chain([written.blob.len()]) {
            assert_eq!(
                &written.blob[start..start + 10],
                &[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, extra_flags, 0xff],
                "level {level}, member at {start}"
            );
            start = end;
        }
    }
}

#[test]
fn finishing_a_member_twice_or_before_any_record_adds_nothing() {
    let inputs = sample_inputs(Signal::Logs, 1_767_225_600_000_000_000, 3);
    let plain = write_blob(&inputs, &[true, false, false], 1);
    let mut writer = BlobWriter::new(Vec::new(), 1);
    writer.finish_member().unwrap();
    for (index, input) in inputs.iter().enumerate() {
        writer.append(Timestamp::from_unix_nanos(input.receive_time), input.item_count, &input.payload).unwrap();
        if index == 0 {
            writer.finish_member().unwrap();
            writer.finish_member().unwrap();
        }
    }
    let (blob, summary) = writer.finish().unwrap();
    assert_eq!(blob, plain.blob);
    assert_eq!(summary, plain.summary);
}

#[test]
fn the_same_input_gives_byte_identical_blobs() {
    let mut inputs = sample_inputs(Signal::Traces, 1_767_225_600_000_000_000, 30);
    inputs.push(Input::new(1_767_225_700_000_000_000, 0, noise(10_000, 7)));
    let flushes: Vec<bool> = (0..inputs.len()).map(|index| index % 4 == 0).collect();
    for level in [0, DEFAULT_COMPRESSION_LEVEL, 6, 9] {
        let first = write_blob(&inputs, &flushes, level);
        let second = write_blob(&inputs, &flushes, level);
        assert_eq!(first.blob, second.blob, "level {level}");
        assert_eq!(first.summary, second.summary, "level {level}");

        // Draining the output while writing, as a session writer does,
        // changes nothing either.
        let mut writer = BlobWriter::new(Vec::new(), level);
        let mut drained = Vec::new();
        for (input, &flush) in inputs.iter().zip(&flushes) {
            writer.append(Timestamp::from_unix_nanos(input.receive_time), input.item_count, &input.payload).unwrap();
            if flush {
                writer.finish_member().unwrap();
            }
            drained.append(writer.inner_mut().unwrap());
        }
        let (rest, summary) = writer.finish().unwrap();
        drained.extend(rest);
        assert_eq!(drained, first.blob, "level {level}");
        assert_eq!(summary, first.summary, "level {level}");
    }
}

#[test]
fn a_record_over_the_frame_limit_is_refused_and_the_writer_stays_usable() {
    let mut writer = BlobWriter::new(Vec::new(), 1);
    // A record with a 10-byte item count and a 4-byte payload length has 25
    // bytes of fields besides its payload: one byte more does not fit.
    for len in [MAX_FRAME_LEN, MAX_FRAME_LEN - 24] {
        let error = writer.append(Timestamp::from_unix_nanos(1), u64::MAX, &vec![0; len]).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("64 MiB"), "{error}");
    }
    assert_eq!(writer.summary().records, 0);
    writer.append(Timestamp::from_unix_nanos(2), u64::MAX, b"fits").unwrap();
    let (blob, summary) = writer.finish().unwrap();
    assert_eq!(summary.records, 1);
    let decoded = decode_in_chunks(&blob, &[]);
    assert_eq!(decoded.error, None);
    assert_eq!(decoded.records, [Input::new(2, u64::MAX, *b"fits").record()]);
}
