//! Outside input never panics a parser: arbitrary bytes and damaged valid
//! blobs give records and then at most one error, and OTLP decoders refuse
//! garbage with an error.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tape_otlp::{Encoding, ExportRequest, Signal};

use crate::support::{decode_in_chunks, read_all, sample_inputs, write_blob};

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x0bad_b10b), failure_persistence: None, ..Config::default() }
}

/// A valid blob of three members, to damage.
fn valid_blob() -> Vec<u8> {
    let inputs = sample_inputs(Signal::Logs, 1_767_225_600_000_000_000, 6);
    write_blob(&inputs, &[false, true, false, true, false, false], 1).blob
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..600) {
        let decoded = decode_in_chunks(&bytes, &[chunk]);
        // Random bytes are almost never a blob; whatever they are, the
        // decoder answers with records or an error, never a panic.
        prop_assert!(decoded.records.len() <= bytes.len());
        let _ = read_all(bytes.as_slice());
    }

    #[test]
    fn damaged_blobs_yield_a_prefix_then_an_error(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let original = valid_blob();
        let intact = decode_in_chunks(&original, &[4096]).records;
        let mut blob = original.clone();
        for (index, byte) in &edits {
            let at = index.index(blob.len());
            blob[at] ^= byte | 1;
        }
        if truncate {
            blob.truncate(cut.index(blob.len()));
        }
        let decoded = decode_in_chunks(&blob, &[977]);
        // Records come out as they decompress, before the member's CRC is
        // checked; a damaged record may come out, but never without the
        // error that follows it. Intact records stay intact.
        for (got, want) in decoded.records.iter().zip(&intact) {
            if got != want {
                prop_assert!(decoded.error.is_some(), "a changed record came out without an error");
            }
        }
    }

    #[test]
    fn otlp_decoders_refuse_garbage_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for signal in Signal::ALL {
            let _ = ExportRequest::decode(signal, Encoding::Protobuf, &bytes);
            let _ = ExportRequest::decode(signal, Encoding::Json, &bytes);
        }
    }

    #[test]
    fn otlp_json_decoder_survives_damaged_json(cut in any::<prop::sample::Index>(), byte in any::<u8>(), at in any::<prop::sample::Index>()) {
        let request = ExportRequest::from(tape_otlp::sample::metrics("checkout", 5));
        let mut json = request.encode_json().unwrap();
        let index = at.index(json.len());
        json[index] = byte;
        json.truncate(cut.index(json.len() + 1));
        let _ = ExportRequest::decode(Signal::Metrics, Encoding::Json, &json);
    }
}
