//! Mutated statements against a genuine proof: must never panic, and never accept a
//! statement that says something else than the genuine one.
#![no_main]
use fold_ml::statement::Statement;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

fuzz_target!(|data: &[u8]| {
    let g = common::genuine();
    let Ok(s) = serde_json::from_slice::<Statement>(data) else { return };
    if fold_ml::verify::verify_proof(&s, &g.proof, &[&g.vk]).is_ok() {
        let same = s.segments == g.statement.segments
            && s.num_layers == g.statement.num_layers
            && s.model_commitment == g.statement.model_commitment
            && s.input.commitment == g.statement.input.commitment
            && s.output.commitment == g.statement.output.commitment;
        assert!(same, "a different statement was accepted: {s:?}");
    }
});
