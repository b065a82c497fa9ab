//! Raw bytes as every binary artifact kind: header checks, limits, checksum, decoding.
#![no_main]
use fold_ml::artifact::{decode, peek_arch, Kind};
use fold_ml::job::checkpoint::Checkpoint;
use fold_ml::nova::{CompressedSnark, VerifierKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let arch = peek_arch(Kind::Proof, data).unwrap_or([7u8; 32]);
    let _ = decode::<Vec<CompressedSnark>>(Kind::Proof, &arch, data);
    let _ = decode::<Vec<VerifierKey>>(Kind::VerifierKey, &arch, data);
    let _ = decode::<Checkpoint>(Kind::Checkpoint, &arch, data);
});
