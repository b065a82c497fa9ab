//! A job's checkpoints as proofs of a prefix of the model: loading one with everything
//! needed to check it (`verify-checkpoint`), and compressing it into a shareable proof of
//! the first K layers whose output stays committed (`compress --at K`).

use super::error::JobError;
use super::events::{EventLog, JobEvent};
use super::manifest::Manifest;
use super::secret::JobSecret;
use super::{
    checkpoint, finish, finished_segments, offsets, read_manifest, state_of, verify_checkpoint_proof, z0_of,
    Checkpoint, SegmentDone,
};
use crate::error::Error;
use crate::prove::keys::{self, ProverKeys};
use crate::prove::{bad, compress_segment};
use crate::statement::{InputStatement, Statement};
use fold_ml_circuits::state::StepState;
use fold_ml_verify::fsutil::write_atomic;
use std::path::Path;

/// A job's checkpoint, loaded and checked.
pub struct LoadedCheckpoint {
    /// The job's manifest.
    pub manifest: Manifest,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its segment's keys.
    pub keys: ProverKeys,
    /// Its segment's start state.
    pub z0: StepState,
    /// The finished segments before it.
    pub before: Vec<SegmentDone>,
}

/// Loads the checkpoint of a job at `at` layers of the model (or the newest one) and
/// checks everything but its recursive proof ([`verify_checkpoint_proof`]).
pub fn load_checkpoint(dir: &Path, cache: &Path, at: Option<usize>) -> Result<LoadedCheckpoint, Error> {
    let manifest = read_manifest(dir)?;
    let loaded = manifest.job.model.load(dir)?;
    let model = loaded.source();
    let secret = JobSecret::read(dir)?;
    // Only a checkpoint between layers proves a prefix of the model.
    let files: Vec<_> =
        checkpoint::list(dir).into_iter().filter(|((_, t), _)| *t == 0).map(|((k, _), p)| (k, p)).collect();
    let (k, path) = match at {
        Some(k) => files
            .into_iter()
            .find(|(n, _)| *n == k)
            .ok_or_else(|| JobError::NoCheckpointAt { dir: dir.into(), layers: k })?,
        None => files.into_iter().next().ok_or_else(|| bad(&dir.display().to_string(), "has no checkpoint".into()))?,
    };
    let offsets = offsets(model);
    let segments = model.segments();
    let j = (0..segments.len())
        .rev()
        .find(|&j| k > offsets[j])
        .filter(|&j| k <= offsets[j] + segments[j].num_layers())
        .ok_or_else(|| checkpoint::corrupted(&path, format!("{k} layers is beyond the model")))?;
    let arch = &manifest.job.architectures[j];
    let keys = keys::prover_keys(cache, arch)?;
    let ckpt = checkpoint::read(&path, &arch.digest())?;
    ckpt.check(&manifest.job.digest(), j, offsets[j], segments[j].num_layers(), arch)
        .map_err(|r| checkpoint::corrupted(&path, r))?;
    if offsets[j] + ckpt.layers_done != k {
        return Err(checkpoint::corrupted(
            &path,
            format!("file name says {k} layers, content says {}", offsets[j] + ckpt.layers_done),
        ));
    }
    let before: Vec<SegmentDone> = finished_segments(dir, &manifest)?.into_iter().take(j).collect();
    let z0 = match before.last() {
        _ if j == 0 => z0_of(&manifest.job.architectures, &secret.input, secret.input_blind),
        Some(d) if before.len() == j => state_of(&d.end),
        _ => return Err(bad(&dir.display().to_string(), format!("lacks the finished segments before segment {j}"))),
    };
    Ok(LoadedCheckpoint { manifest, checkpoint: ckpt, keys, z0, before })
}

/// Compresses the checkpoint at `at` layers into a shareable zero-knowledge proof of that
/// prefix of the model (output committed, not revealed), written to `out`.
pub fn compress_checkpoint(dir: &Path, cache: &Path, at: usize, out: &Path) -> Result<Statement, Error> {
    let LoadedCheckpoint { manifest, checkpoint: ckpt, keys, z0, before } = load_checkpoint(dir, cache, Some(at))?;
    let arch = &manifest.job.architectures[ckpt.segment];
    verify_checkpoint_proof(&keys.pp, &ckpt, arch, &z0)
        .map_err(|r| checkpoint::corrupted(&dir.join("checkpoints"), r))?;
    let secret = JobSecret::read(dir)?;
    let input = InputStatement {
        commitment: z0_of(&manifest.job.architectures, &secret.input, secret.input_blind).activations,
        values: manifest.job.public_input.then_some(secret.input),
    };
    let proof = compress_segment(&keys.pp, &keys.pk, &ckpt.snark)?;
    let vk = Some((arch.clone(), keys::verifier_key_of(&keys.pp)?));
    let last = Some((ckpt.layers_done, ckpt.state.as_slice(), proof));
    let (statement, _, _) = finish(out, cache, &manifest.job.architectures, before, last, vk, input, None)?;
    // The prefix's output stays committed under the checkpoint's random blind; its opening
    // is kept with the job's secrets, so the owner can reveal it later.
    let opening = dir.join("openings").join(format!("prefix-{at}.json"));
    let json = serde_json::json!({
        "layers": at,
        "commitment": crate::field::to_hex(&statement.output.commitment),
        "blind": crate::field::to_hex(&ckpt.blind),
        "values": ckpt.activations,
    });
    fold_ml_verify::fsutil::create_private_dir(opening.parent().expect("has a parent"))?;
    write_atomic(&opening, &serde_json::to_vec_pretty(&json).expect("serializes"), true)?;
    EventLog::new(dir).append(JobEvent::PrefixCompressed {
        layers: at,
        out: out.file_name().map(|f| f.to_string_lossy().into_owned()),
    })?;
    Ok(statement)
}
