//! Mutated proofs against a genuine statement: the input is the proof payload, sealed with
//! a valid header and checksum so that the decoder and the SNARK verifier themselves are
//! exercised. Must never panic, and never accept anything but the genuine proof.
#![no_main]
use fold_ml::artifact::{decode, encode, Kind};
use fold_ml::nova::CompressedSnark;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let g = common::genuine();
    let arch = g.statement.architectures_digest();
    let sealed = common::seal(b"FOLDMLPF", &arch, data);
    let Ok(snark) = decode::<Vec<CompressedSnark>>(Kind::Proof, &arch, &sealed) else { return };
    if fold_ml::verify::verify_proof(&g.statement, &sealed, &[&g.vk]).is_ok() {
        let canonical = encode(Kind::Proof, &arch, &snark).expect("encodes");
        assert_eq!(canonical, g.proof, "a proof other than the genuine one was accepted");
    }
});
