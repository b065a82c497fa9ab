//! A genuine small proof, made once per fuzzing process.
use fold_ml::job::manifest::{CheckpointPolicy, ModelRecord};
use fold_ml::job::{self, JobRequest};
use fold_ml::nova::VerifierKey;
use fold_ml::statement::Statement;
use std::sync::OnceLock;

pub struct Genuine {
    pub statement: Statement,
    pub proof: Vec<u8>,
    pub vk: VerifierKey,
}

pub fn genuine() -> &'static Genuine {
    static G: OnceLock<Genuine> = OnceLock::new();
    G.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let model = ModelRecord::Synthetic { channels: 1, size: 4, kernel: 3, layers: 2, seed: 0 };
        let input = fold_ml_circuits::synthetic::SyntheticModel::conv(1, 4, 3, 2, 0).expect("valid").default_input();
        let req = JobRequest {
            model,
            model_file: None,
            input: Some(input),
            public_input: false, // a fresh statement: no other genuine proof of it exists
            input_blind: None,
            cache_dir: dir.join("cache"),
            checkpoint_every: CheckpointPolicy::Layers(100),
            restart: false,
            layers_per_step: Some(1),
            fold_budget: None,
            keys_in_memory: None,
            memory_limit_mib: None,
        };
        job::run(&dir.join("job"), &req, &mut |_| {}).expect("proving succeeds");
        let statement: Statement =
            serde_json::from_slice(&std::fs::read(dir.join("job/statement.json")).expect("statement")).expect("json");
        let proof = std::fs::read(dir.join("job/proof.bin")).expect("proof");
        let vk = fold_ml_verify::keys::verifier_key(&dir.join("cache"), &statement.segments[0].architecture).expect("key");
        Genuine { statement, proof, vk }
    })
}

/// Wraps `payload` in a valid artifact header (magic, version, architecture, length,
/// checksum).
pub fn seal(magic: &[u8; 8], arch: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&fold_ml::artifact::FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(arch);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fold_ml::artifact::checksum(payload));
    out.extend_from_slice(payload);
    out
}
