//! `fold-ml plan`: cut a job into shards and fix every cut before any proving.

use super::{write_secrets, Shard, ShardPlan, ShardSecrets, MAX_SHARDS, PLAN_FILE};
use crate::error::Error;
use crate::job::events::{EventLog, JobEvent};
use crate::job::manifest::{model_file, LoadedModel};
use crate::job::secret::JobSecret;
use crate::job::{identity, JobRequest};
use crate::model::{Architecture, ModelSource};
use crate::prove::plan::{estimate_steps, step_constraints, Estimate};
use crate::prove::{bad, check_model_and_input};
use crate::statement::Link;
use ff::Field;
use fold_ml_circuits::commit::activation_commitment_native;
use fold_ml_circuits::gadgets::commit::model_update_native;
use fold_ml_circuits::layer::block_native;
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::write_atomic;
use rand_core::OsRng;
use std::path::Path;

/// Where each shard runs: `(segment, first layer in it, layers)`, input to output.
type Cut = (usize, usize, usize);

/// Cuts `segments` (each `(layers, architecture, primary constraints per fold)`, the last
/// from [`step_constraints`]) into `shards` shards: every segment
/// boundary is a cut, and the remaining shards go one at a time to the segment whose
/// shards are the most work each (estimated from its step size and step count), which is
/// then split into near-equal runs of whole steps. A shard never splits a step (K layers,
/// or a block's tiles), so every shard folds the same steps the unsharded job would.
pub fn cuts(segments: &[(usize, &Architecture, usize)], shards: usize) -> Result<Vec<Cut>, String> {
    if shards < segments.len() {
        return Err(format!(
            "the model has {} segments (one architecture each), so at least {} shards: a shard proves one \
             architecture. Plan {} shards and run fewer at a time (Slurm: --array=0-{}%M for M machines)",
            segments.len(),
            segments.len(),
            segments.len(),
            segments.len() - 1
        ));
    }
    if shards > MAX_SHARDS {
        return Err(format!("at most {MAX_SHARDS} shards"));
    }
    // Whole steps per segment (a block's tiles count as one), and the estimated work of one.
    let units: Vec<usize> = segments.iter().map(|(n, a, _)| n.div_ceil(a.layers_per_step)).collect();
    let work: Vec<f64> = segments.iter().map(|(_, a, c)| (c * a.tiles()) as f64).collect();
    let mut split = vec![1usize; segments.len()];
    for _ in segments.len()..shards {
        let each = |j: usize| units[j] as f64 * work[j] / split[j] as f64;
        let best = (0..segments.len()).filter(|&j| split[j] < units[j]).max_by(|&a, &b| each(a).total_cmp(&each(b)));
        match best {
            Some(j) => split[j] += 1,
            None => {
                let steps: usize = units.iter().sum();
                return Err(format!("the model folds in {steps} steps: at most {steps} shards"));
            }
        }
    }
    let mut out = Vec::with_capacity(shards);
    for (j, (&(layers, arch, _), &parts)) in segments.iter().zip(&split).enumerate() {
        let k = arch.layers_per_step;
        let mut first = 0;
        for p in 0..parts {
            let end_unit = units[j] * (p + 1) / parts;
            let end = (end_unit * k).min(layers);
            out.push((j, first, end - first));
            first = end;
        }
    }
    Ok(out)
}

/// What `plan` wrote.
pub struct Planned {
    /// The plan.
    pub plan: ShardPlan,
    /// Seconds the native run took.
    pub native_seconds: f64,
    /// The estimated cost of proving each shard on the reference machine
    /// ([`crate::prove::plan::estimate_steps`]'s cost model; an estimate, never an input).
    pub estimates: Vec<Estimate>,
}

/// Plans the job `req` in `dir` as `shards` shards: runs the model natively once, fixes
/// every cut's state and opening, and writes the plan, the secrets, the model file and the
/// job secret. Refuses a directory that already holds a job.
pub fn plan(dir: &Path, req: &JobRequest, shards: usize) -> Result<Planned, Error> {
    let what = dir.display().to_string();
    if dir.join(PLAN_FILE).exists() || dir.join("manifest.json").exists() {
        return Err(bad(&what, "already holds a job; choose another --job".into()));
    }
    req.check_layers_per_step()?;
    let loaded = req.load_model(dir, true)?;
    let model = loaded.source();
    let input = req.input.clone().ok_or_else(|| bad("input", "a plan needs the input".into()))?;
    check_model_and_input(model, &input)?;
    let archs = req.checked_architectures(model, None)?;
    let input_blind = req.new_input_blind()?;
    let segments = model.segments();
    let sizes: Vec<(usize, &Architecture, usize)> =
        segments.iter().zip(&archs).map(|(s, a)| (s.num_layers(), a, step_constraints(a))).collect();
    let cuts = cuts(&sizes, shards).map_err(|reason| bad("--shards", reason))?;

    let t = std::time::Instant::now();
    let mut blinds = vec![input_blind];
    blinds.extend((1..cuts.len()).map(|_| F::random(OsRng)));
    blinds.push(F::random(OsRng));
    let (shard_list, starts) = run_natively(model, &archs, &cuts, &input, &blinds)?;
    let native_seconds = t.elapsed().as_secs_f64();

    let input_commitment = shard_list[0].start.activations;
    let job = identity(&req.model, &archs, model, input_commitment, req.public_input, String::new());
    let plan = ShardPlan::new(job, req.checkpoint_every, shard_list);
    fold_ml_verify::fsutil::create_private_dir(dir)?;
    if let LoadedModel::Network(net) = &loaded {
        net.write(&model_file(dir))?;
    }
    JobSecret::new(input, input_blind).write(dir)?;
    write_secrets(dir, &plan, &ShardSecrets { starts, blinds })?;
    let json = serde_json::to_vec_pretty(&plan).expect("a plan serializes");
    write_atomic(&dir.join(PLAN_FILE), &json, false)?;
    EventLog::new(dir).append(JobEvent::Started { layers: plan.job.num_layers, segments: plan.shards.len() })?;
    let estimates = cuts.iter().map(|&(j, _, layers)| estimate_steps(sizes[j].2, archs[j].steps(layers))).collect();
    Ok(Planned { plan, native_seconds, estimates })
}

/// Runs the model natively block by block, recording at each cut the public state and
/// the activations: the shards, and the activations each starts from.
fn run_natively(
    model: &dyn ModelSource,
    archs: &[Architecture],
    cuts: &[Cut],
    input: &[u8],
    blinds: &[F],
) -> Result<(Vec<Shard>, Vec<Vec<u8>>), Error> {
    let salt = model.salt();
    let segments = model.segments();
    let mut acc = fold_ml_circuits::commit::model_start();
    let mut activations = input.to_vec();
    let (mut shards, mut starts) = (Vec::new(), Vec::new());
    let mut offset = 0;
    for (i, &(j, first, layers)) in cuts.iter().enumerate() {
        let (seg, block) = (segments[j], &archs[j].block);
        let start = Link {
            model: acc,
            activations: activation_commitment_native(&activations, block.input_layout(), blinds[i]),
        };
        starts.push(activations.clone());
        let updates = seg.spec().updates();
        let stages = block.num_stages();
        for b in (first..first + layers).step_by(stages) {
            let weights: Vec<_> = (b..b + stages).map(|l| seg.layer(l)).collect();
            activations = block_native(block, &activations, &weights)
                .map_err(|e| bad(&format!("model layer {}", offset + b - first), e.to_string()))?;
            for (l, w) in weights.iter().enumerate() {
                acc = model_update_native(acc, &updates[(b + l) % updates.len()], salt, &w.weights, &w.bias);
            }
        }
        let end = Link {
            model: acc,
            activations: activation_commitment_native(&activations, block.output_layout(), blinds[i + 1]),
        };
        shards.push(Shard { segment: j, first, layers, offset, start, end });
        offset += layers;
    }
    Ok((shards, starts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fold_ml_circuits::layer::BlockSpec;
    use fold_ml_circuits::synthetic::SyntheticModel;

    fn arch(k: usize) -> Architecture {
        Architecture::new(BlockSpec::layer(SyntheticModel::dense(16, 1, 0).unwrap().spec()), k)
    }

    #[test]
    fn cuts_split_whole_steps_and_keep_segment_boundaries() {
        let (a4, a1) = (arch(4), arch(1));
        let (c4, c1) = (step_constraints(&a4), step_constraints(&a1));
        // 64 layers at 4 per step: 16 steps in 4 shards of 4 steps each
        assert_eq!(cuts(&[(64, &a4, c4)], 4).unwrap(), vec![(0, 0, 16), (0, 16, 16), (0, 32, 16), (0, 48, 16)]);
        // a partial last step stays whole and last
        assert_eq!(cuts(&[(10, &a4, c4)], 2).unwrap(), vec![(0, 0, 4), (0, 4, 6)]);
        // every segment is a shard; extra shards go to the most work per shard
        let c = cuts(&[(8, &a1, c1), (64, &a4, c4)], 3).unwrap();
        assert_eq!(c, vec![(0, 0, 8), (1, 0, 32), (1, 32, 32)]);
        for shards in 1..=16 {
            let c = cuts(&[(64, &a4, c4)], shards).unwrap();
            assert_eq!(c.len(), shards);
            assert_eq!(c.iter().map(|s| s.2).sum::<usize>(), 64, "{shards} shards cover every layer");
            assert!(c.iter().all(|s| s.1 % 4 == 0 && s.2 > 0), "{c:?} cuts at step boundaries");
        }
        assert!(cuts(&[(64, &a4, c4)], 17).unwrap_err().contains("at most 16 shards"));
        assert!(cuts(&[(8, &a1, c1), (8, &a1, c1)], 1).unwrap_err().contains("at least 2 shards"));
    }
}
