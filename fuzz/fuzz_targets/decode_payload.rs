//! Arbitrary payloads sealed in a valid envelope (right magic, version and checksum), so
//! that the bincode decoders of proofs and checkpoints see every input.
#![no_main]
use fold_ml::artifact::{decode, Kind};
use fold_ml::job::checkpoint::Checkpoint;
use fold_ml::nova::CompressedSnark;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[allow(dead_code)]
mod common;
use common::seal;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<Vec<CompressedSnark>>(Kind::Proof, &[7u8; 32], &seal(b"FOLDMLPF", &[7u8; 32], data));
    let _ = decode::<Checkpoint>(Kind::Checkpoint, &[7u8; 32], &seal(b"FOLDMLCK", &[7u8; 32], data));
});
