//! The proving driver: streams the model one layer at a time into Nova IVC, then
//! compresses. Memory holds one layer's witness, the folded instance and the parameters,
//! whatever the depth.

use crate::artifact::{self, Kind};
use crate::error::Error;
use crate::model::{Architecture, LayerSource};
use crate::nova::{CompressedSnark, RecursiveSnark};
use crate::params::{self, ProverKeys};
use crate::statement::{InputStatement, ModelCommitment, Statement};
use ff::Field;
use fold_ml_circuits::commit::{activation_commitment_native, model_iv_native};
use fold_ml_circuits::layer::{LayerStep, LayerWitness};
use fold_ml_circuits::quant::check_activations;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::F;
use rand_core::OsRng;
use std::path::PathBuf;
use std::time::Instant;

/// What to prove.
pub struct ProveRequest<'a> {
    /// The model, streamed.
    pub model: &'a dyn LayerSource,
    /// Input activations (`[0, 127]`, the layer's input layout).
    pub input: Vec<u8>,
    /// Publish the input in the statement (else only a hiding commitment to it).
    pub public_input: bool,
    /// Parameter cache directory.
    pub cache_dir: PathBuf,
}

/// Progress reported while proving.
#[derive(Clone, Debug)]
pub enum Event {
    /// Parameters are ready.
    KeysReady {
        /// Loaded from the cache (else set up now).
        cached: bool,
        /// Seconds it took.
        seconds: f64,
        /// Constraints per fold (primary, secondary).
        constraints: (usize, usize),
    },
    /// A layer was folded.
    Folded {
        /// Layers folded so far.
        done: usize,
        /// Total layers.
        total: usize,
    },
    /// Compression started.
    Compressing,
}

/// Wall-clock seconds of each phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Parameter setup or load.
    pub setup: f64,
    /// Folding all layers.
    pub fold: f64,
    /// Compression.
    pub compress: f64,
    /// Self-check of the compressed proof.
    pub self_check: f64,
}

/// A finished proof.
pub struct Proven {
    /// The public statement.
    pub statement: Statement,
    /// `proof.bin` bytes.
    pub proof: Vec<u8>,
    /// `vk.bin` bytes.
    pub vk: Vec<u8>,
    /// The blind of the input commitment (secret: it opens the commitment).
    pub input_blind: F,
    /// Phase timings.
    pub timings: Timings,
    /// Constraints per fold (primary, secondary).
    pub constraints: (usize, usize),
}

fn bad(what: &str, reason: String) -> Error {
    Error::BadInput {
        what: what.into(),
        reason,
    }
}

/// Checks that a model and input can be proven, before any expensive work.
pub fn check_request(req: &ProveRequest<'_>) -> Result<(), Error> {
    let spec = req.model.spec();
    if req.model.num_layers() == 0 {
        return Err(bad("--layers", "a model needs at least one layer".into()));
    }
    if spec.shape.num_inputs() != spec.shape.num_outputs() {
        return Err(bad(
            "model",
            "layers whose input and output sizes differ cannot be stacked".into(),
        ));
    }
    if req.input.len() != spec.shape.num_inputs() {
        return Err(bad(
            "input",
            format!(
                "has {} values, the model takes {}",
                req.input.len(),
                spec.shape.num_inputs()
            ),
        ));
    }
    check_activations(&req.input).map_err(|e| bad("input", e.to_string()))
}

/// Proves `req`, reporting progress through `on_event`.
pub fn prove(req: &ProveRequest<'_>, on_event: &mut dyn FnMut(Event)) -> Result<Proven, Error> {
    check_request(req)?;
    let spec = req.model.spec();
    let n = req.model.num_layers();
    let arch = Architecture::new(spec);
    let ProverKeys {
        pp,
        pk,
        vk,
        cached,
        seconds,
    } = params::prover_keys(&req.cache_dir, &arch)?;
    let constraints = pp.num_constraints();
    on_event(Event::KeysReady {
        cached,
        seconds,
        constraints,
    });
    let mut timings = Timings {
        setup: seconds,
        ..Timings::default()
    };

    let input_blind = if req.public_input {
        F::ZERO
    } else {
        F::random(OsRng)
    };
    let z0 = StepState {
        layer: 0,
        model: model_iv_native(req.model.salt()),
        activations: activation_commitment_native(&req.input, input_blind),
    };
    let fold_start = Instant::now();
    let (mut z, mut acts, mut blind_in) = (z0, req.input.clone(), input_blind);
    let mut snark: Option<RecursiveSnark> = None;
    for i in 0..n {
        // The last output is public: committed with blind 0. Others are hidden.
        let blind_out = if i + 1 == n {
            F::ZERO
        } else {
            F::random(OsRng)
        };
        let witness = LayerWitness {
            input: acts,
            params: req.model.layer(i),
            blind_in,
            blind_out,
        };
        let step = LayerStep::new(spec, witness)
            .map_err(|e| bad(&format!("model layer {i}"), e.to_string()))?;
        let at_layer = |source| Error::AtLayer { layer: i, source };
        match snark.as_mut() {
            None => {
                let mut s = RecursiveSnark::new(&pp, &step, &z0.to_vec()).map_err(at_layer)?;
                // Nova's constructor already ran step 0; its first prove_step only counts it.
                s.prove_step(&pp, &step).map_err(at_layer)?;
                snark = Some(s);
            }
            Some(s) => s.prove_step(&pp, &step).map_err(at_layer)?,
        }
        z = step.next_state(&z);
        acts = step.output().to_vec();
        blind_in = blind_out;
        on_event(Event::Folded {
            done: i + 1,
            total: n,
        });
    }
    timings.fold = fold_start.elapsed().as_secs_f64();
    let snark = snark.expect("at least one layer was folded");
    if snark.outputs() != z.to_vec().as_slice() {
        return Err(Error::Nova {
            stage: "folding",
            source: nova_snark::errors::NovaError::InvalidStepOutputLength,
        });
    }

    on_event(Event::Compressing);
    let start = Instant::now();
    let compressed = CompressedSnark::prove(&pp, &pk, &snark).map_err(|source| Error::Nova {
        stage: "compression",
        source,
    })?;
    timings.compress = start.elapsed().as_secs_f64();

    let statement = Statement::new(
        arch.clone(),
        n,
        ModelCommitment {
            iv: z0.model,
            last: z.model,
        },
        InputStatement {
            commitment: z0.activations,
            values: req.public_input.then(|| req.input.clone()),
        },
        acts,
    );
    let proof = artifact::encode(Kind::Proof, &arch.digest(), &compressed).map_err(|reason| {
        Error::Artifact {
            path: "proof.bin".into(),
            reason,
        }
    })?;
    // Self-check before anything is written: a proof that does not verify is a bug.
    let start = Instant::now();
    crate::verify::verify_proof(&statement, &proof, &vk).map_err(|e| Error::Nova {
        stage: "self-check of the compressed proof",
        source: nova_snark::errors::NovaError::ProofVerifyError {
            reason: e.to_string(),
        },
    })?;
    timings.self_check = start.elapsed().as_secs_f64();
    let vk = params::encode_vk(&arch, &vk)?;
    Ok(Proven {
        statement,
        proof,
        vk,
        input_blind,
        timings,
        constraints,
    })
}
