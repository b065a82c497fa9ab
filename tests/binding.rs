//! What a statement binds: the chain start, the verifier keys, the model and input
//! commitments, and the bounds on hostile statements. Each test forges what an adversary
//! would (a suffix proof, a relabelled key for another circuit, another input) and checks
//! that the verifier says no.

mod common;

use common::*;
use ff::Field;
use fold_ml::artifact::{self, Kind};
use fold_ml::error::VerifyError;
use fold_ml::model::Architecture;
use fold_ml::nova::{CompressedSnark, RecursiveSnark, E1, E2, S1, S2};
use fold_ml::prove::keys;
use fold_ml::statement::{InputStatement, OutputStatement, SegmentStatement, Statement};
use fold_ml::verify::{verify_dir, Expected};
use fold_ml::F;
use fold_ml_circuits::commit::{activation_commitment_native, model_start, Layout};
use fold_ml_circuits::layer::{BlockSpec, LayerStep, LayerWitness};
use fold_ml_circuits::reference::NativeRun;
use fold_ml_circuits::state::StepState;
use fold_ml_circuits::step::Step;
use nova_snark::frontend::{num::AllocatedNum, ConstraintSystem, SynthesisError};
use nova_snark::traits::circuit::StepCircuit;
use std::path::Path;

fn read_statement(dir: &Path) -> Statement {
    serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap()
}

fn write_dir(name: &str, statement: &Statement, proof: &[u8]) -> std::path::PathBuf {
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("statement.json"), serde_json::to_vec_pretty(statement).unwrap()).unwrap();
    std::fs::write(dir.join("proof.bin"), proof).unwrap();
    dir
}

fn verdict(dir: &Path) -> Result<Statement, VerifyError> {
    verify_dir(dir, &cache(), &Expected::default()).expect("files are readable")
}

#[test]
fn a_suffix_proof_cannot_pass_as_the_whole_model() {
    // The prover holds the model (weights and salt). It proves layers k+1..N only, from
    // activations of its choice, starting at the honest running commitment after k layers:
    // the old statement format let it publish that value as the chain's start.
    let (n, k) = (3usize, 1usize);
    let m = model_of(&small(n, 0));
    let spec = m.spec();
    let mut run = NativeRun::start(BlockSpec::layer(spec), m.default_input(), F::ONE, m.salt()).unwrap();
    for i in 0..k {
        run.apply(&m.layer(i), F::ONE).unwrap();
    }
    let honest_full = read_statement(&reference_job());
    let chosen: Vec<u8> = vec![127; spec.num_inputs()];
    let blind = F::from(5);
    let z0 = StepState {
        layer: 0,
        model: run.state().model,
        activations: activation_commitment_native(&chosen, Layout::whole(spec.input_dims()), blind),
    };
    let arch = Architecture::new(BlockSpec::layer(spec), 1);
    let keys = keys::prover_keys(&cache(), &arch).unwrap();
    let (mut acts, mut b_in, mut z) = (chosen.clone(), blind, z0);
    let mut snark: Option<RecursiveSnark> = None;
    for i in k..n {
        let b_out = F::from(100 + i as u64);
        let w =
            LayerWitness { input: acts, layer_weights: m.layer(i), blind_in: b_in, blind_out: b_out, salt: m.salt() };
        let step = LayerStep::new(spec, w).unwrap();
        let circuit = Step::Layer(step.clone());
        let s = snark.get_or_insert_with(|| RecursiveSnark::new(&keys.pp, &circuit, &z0.to_vec()).unwrap());
        s.prove_step(&keys.pp, &circuit).unwrap();
        z = step.next_state(&z);
        (acts, b_in) = (step.output().to_vec(), b_out);
    }
    assert_eq!(z.model, honest_full.model_commitment, "the suffix reaches the published commitment");
    let compressed = CompressedSnark::prove(&keys.pp, &keys.pk, snark.as_ref().unwrap()).unwrap();
    let steps = n - k;
    assert!(
        compressed.verify(&keys::verifier_key_of(&keys.pp).unwrap(), steps, &z0.to_vec()).is_ok(),
        "a real proof from the chosen start"
    );
    let statement = Statement::new(
        vec![SegmentStatement::new(arch, steps)],
        vec![],
        honest_full.model_commitment,
        InputStatement { commitment: z0.activations, values: None },
        OutputStatement { commitment: z.activations, values: Some(acts), blind: Some(b_in), class: None },
    );
    statement.check().expect("well-formed");
    let proof = artifact::encode(Kind::Proof, &statement.architectures_digest(), &vec![compressed]).unwrap();
    let dir = write_dir("suffix", &statement, &proof);
    let v = verdict(&dir);
    assert!(matches!(v, Err(VerifyError::ProofInvalid { segment: 0, .. })), "{v:?}");
}

/// An arity-3 step circuit whose outputs are free witnesses: a key for it, relabelled
/// with an honest architecture's digest, would let anyone "prove" any final state.
#[derive(Clone, Debug)]
struct FreeOutputs(StepState);

impl StepCircuit<F> for FreeOutputs {
    fn arity(&self) -> usize {
        3
    }
    fn synthesize<CS: ConstraintSystem<F>>(
        &self,
        cs: &mut CS,
        _z: &[AllocatedNum<F>],
    ) -> Result<Vec<AllocatedNum<F>>, SynthesisError> {
        self.0
            .to_vec()
            .into_iter()
            .enumerate()
            .map(|(i, v)| AllocatedNum::alloc(cs.namespace(|| format!("z{i}")), || Ok(v)))
            .collect()
    }
}

#[test]
fn a_proof_of_another_circuit_is_rejected_whatever_key_is_planted() {
    let job = reference_job();
    let honest = read_statement(&job);
    // The forger claims another output for the same model and input.
    let claimed: Vec<u8> = vec![127; honest.output.values.as_ref().unwrap().len()];
    let blind = F::from(9);
    let mut forged = honest.clone();
    forged.output = OutputStatement {
        commitment: activation_commitment_native(&claimed, honest.output_layout(), blind),
        values: Some(claimed),
        blind: Some(blind),
        class: None,
    };
    let target = forged.zn(0);
    let circuit = FreeOutputs(target);
    type Pp = nova_snark::nova::PublicParams<E1, E2, FreeOutputs>;
    type Rs = nova_snark::nova::RecursiveSNARK<E1, E2, FreeOutputs>;
    type Cs = nova_snark::nova::CompressedSNARK<E1, E2, FreeOutputs, S1, S2>;
    use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
    let pp = Pp::setup(&circuit, &*S1::ck_floor(), &*S2::ck_floor()).unwrap();
    let z0 = forged.z0(0).to_vec();
    let mut rs = Rs::new(&pp, &circuit, &z0).unwrap();
    for _ in 0..forged.num_layers {
        rs.prove_step(&pp, &circuit).unwrap();
    }
    let (pk, vk) = Cs::setup(&pp).unwrap();
    let snark = Cs::prove(&pp, &pk, &rs).unwrap();
    assert_eq!(snark.verify(&vk, forged.num_layers, &z0).unwrap(), target.to_vec(), "the forgery is real");

    let digest = forged.architectures_digest();
    let proof = artifact::encode(Kind::Proof, &digest, &vec![snark]).unwrap();
    let dir = write_dir("forged-key", &forged, &proof);
    // The verifier checks it with the key it derives for the architecture: rejected.
    let v = verdict(&dir);
    assert!(matches!(v, Err(VerifyError::ProofInvalid { segment: 0, .. })), "{v:?}");
    let (code, _, err) = run(&verify_bin(), &[dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    // The forged key planted in a prover parameter cache (which may be shared or copied)
    // under the architecture's name is never read by the verifier (a cache of its own
    // here: the other tests of this binary share theirs).
    let arch = &forged.segments[0].architecture;
    let shared = scratch().join("planted-cache");
    let planted = shared.join(arch.short_id()).join("vk.bin");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, artifact::encode(Kind::VerifierKey, &arch.digest(), &vk).unwrap()).unwrap();
    let v = verify_dir(&dir, &shared, &Expected::default()).expect("files are readable");
    assert!(matches!(v, Err(VerifyError::ProofInvalid { segment: 0, .. })), "{v:?}");
    assert!(verdict(&job).is_ok());
}

#[test]
fn public_values_cannot_be_recomputed_from_the_weights_alone() {
    // Someone who knows every weight and spec (a public pretrained checkpoint) but not the
    // salt cannot test them against the statement: neither the final commitment nor a
    // running value after one more layer can be recomputed.
    let job = reference_job();
    let s = read_statement(&job);
    let m = model_of(&small(3, 0));
    let with_salt = |salt: F| {
        fold_ml_circuits::reference::model_commitment(salt, (0..3).map(|i| (m.spec().update_at(0, 1), m.layer(i))))
    };
    assert_eq!(with_salt(m.salt()), s.model_commitment, "the holder of the salt recomputes it");
    for guess in [F::ZERO, F::ONE, model_start(), s.input.commitment] {
        assert_ne!(with_salt(guess), s.model_commitment);
    }
    // between two public running values (a link and the next), the salt is needed too
    let mut run = NativeRun::start(BlockSpec::layer(m.spec()), m.default_input(), F::ONE, m.salt()).unwrap();
    run.apply(&m.layer(0), F::ONE).unwrap();
    let before = run.state().model;
    run.apply(&m.layer(1), F::ONE).unwrap();
    let (spec, p) = (m.spec().update_at(0, 1), m.layer(1));
    let update = |salt| fold_ml_circuits::commit::model_update_native(before, &spec, salt, &p.weights, &p.bias);
    assert_eq!(update(m.salt()), run.state().model);
    assert_ne!(update(F::ZERO), run.state().model);
}

#[test]
fn model_commitment_covers_the_architecture_and_the_verifier_checks_it() {
    // same weights (same seed and kernel), another image size: another function
    let commit = |size: &str| {
        let (code, out, err) = fold_ml(&["commit", "--layers", "4", "--size", size]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["model_commitment"].as_str().unwrap().to_string()
    };
    assert_ne!(commit("28"), commit("14"));
    let job = reference_job();
    let d = job.to_str().unwrap();
    let (code, out, _) = fold_ml(&["commit", "--layers", "3", "--size", "5", "--channels", "1"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let published = v["model_commitment"].as_str().unwrap();
    assert!(v["covers"].as_str().unwrap().contains("spec"));
    let verify = &verify_bin();
    let (code, out, err) = run(verify, &[d, "--model-commitment", published]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(published) && out.contains("architecture digest") && out.contains("committed input"), "{out}");
    let (code, _, err) = run(verify, &[d, "--model-commitment", &commit("14")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("model commitment"), "{err}");
    assert_eq!(run(verify, &[d, "--model-commitment", "0x12"]).0, 2);
}

#[test]
fn the_input_owners_commitment_binds_the_prover() {
    let dir = scratch().join("owner");
    std::fs::create_dir_all(&dir).unwrap();
    let input: Vec<u8> = (0..25).map(|i| (i * 5) as u8).collect();
    let input_file = dir.join("x.json");
    std::fs::write(&input_file, serde_json::to_vec(&input).unwrap()).unwrap();
    let model = ["--layers", "2", "--size", "5", "--channels", "1"];
    let commit_file = dir.join("x.commitment.json");
    let mut args = vec!["commit-input", input_file.to_str().unwrap()];
    args.extend(model);
    args.extend(["--out", commit_file.to_str().unwrap()]);
    let (code, out, err) = fold_ml(&args);
    assert_eq!(code, 0, "{err}");
    let published = out.trim().to_string();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&commit_file).unwrap().permissions().mode() & 0o777, 0o600);

    // the prover cannot use the owner's commitment with another input
    let other_file = dir.join("y.json");
    let other: Vec<u8> = input.iter().map(|&a| 127 - a).collect();
    std::fs::write(&other_file, serde_json::to_vec(&other).unwrap()).unwrap();
    let job = dir.join("job");
    let prove = |input: &Path| {
        let mut a =
            vec!["prove", "--input", input.to_str().unwrap(), "--input-commitment", commit_file.to_str().unwrap()];
        a.extend(model);
        a.extend(["--job", job.to_str().unwrap(), "--layers-per-step", "1"]);
        fold_ml(&a)
    };
    let (code, _, err) = prove(&other_file);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not the committed one"), "{err}");
    let (code, _, err) = prove(&input_file);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fold_ml::field::to_hex(&read_statement(&job).input.commitment), published);

    let verify = &verify_bin();
    let j = job.to_str().unwrap();
    assert_eq!(run(verify, &[j, "--input-commitment", &published]).0, 0);
    // another commitment of the very same input (another blind) is another statement
    let again = dir.join("again.json");
    let mut args2 = vec!["commit-input", input_file.to_str().unwrap()];
    args2.extend(model);
    args2.extend(["--out", again.to_str().unwrap()]);
    let (_, other_commitment, _) = fold_ml(&args2);
    assert_ne!(other_commitment.trim(), published);
    let (code, _, err) = run(verify, &[j, "--input-commitment", other_commitment.trim()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("input commitment"), "{err}");
}

#[test]
fn hostile_statements_are_rejected_before_any_key_work() {
    let job = reference_job();
    let honest = read_statement(&job);
    let mut json: serde_json::Value = serde_json::to_value(&honest).unwrap();
    // huge shapes: a verifier that derived a key first would run out of memory
    let stage = &mut json["segments"][0]["architecture"]["block"]["stages"][0];
    stage["shape"]["conv"]["channels_in"] = (1u64 << 40).into();
    stage["shape"]["conv"]["height"] = (1u64 << 30).into();
    let dir = scratch().join("oversized");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(job.join("proof.bin"), dir.join("proof.bin")).unwrap();
    std::fs::write(dir.join("statement.json"), serde_json::to_vec(&json).unwrap()).unwrap();
    let fresh_cache = scratch().join("empty-cache");
    let start = std::time::Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kib=%M", &verify_bin(), dir.to_str().unwrap()])
        .env("FOLD_ML_CACHE", &fresh_cache)
        .output()
        .expect("/usr/bin/time runs");
    let seconds = start.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("REJECTED") && err.contains("segment 0"), "{err}");
    let kib: u64 = err.lines().find_map(|l| l.strip_prefix("maxrss_kib=")).unwrap().trim().parse().unwrap();
    assert!(kib < 100 * 1024, "peak {kib} KiB");
    assert!(seconds < 1.0, "{seconds} s");
    assert!(!fresh_cache.exists(), "no key was derived");

    // unknown fields, an old version, another circuit version
    let reject = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = serde_json::to_value(&honest).unwrap();
        edit(&mut v);
        let d = scratch().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(job.join("proof.bin"), d.join("proof.bin")).unwrap();
        std::fs::write(d.join("statement.json"), serde_json::to_vec(&v).unwrap()).unwrap();
        let (code, _, err) = verify_cli(&d);
        assert_eq!(code, 1, "{name}: {err}");
        err
    };
    reject("unknown-top", &|v| v["comment"] = "trust me".into());
    reject("unknown-nested", &|v| v["segments"][0]["architecture"]["block"]["stages"][0]["extra"] = 1.into());
    // a block of more layers than a step holds
    let err = reject("many-stages", &|v| {
        let stage = v["segments"][0]["architecture"]["block"]["stages"][0].clone();
        v["segments"][0]["architecture"]["block"]["stages"] = vec![stage; 9].into();
    });
    assert!(err.contains("1 to 8 layers"), "{err}");
    let err = reject("old-version", &|v| v["version"] = 2.into());
    assert!(err.contains("older version"), "{err}");
    let err = reject("other-circuit", &|v| v["segments"][0]["architecture"]["circuit"] = "fold-ml-circuits/3".into());
    assert!(err.contains("another version"), "{err}");
    // a proof made by the previous format
    let old = scratch().join("old-proof");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::copy(job.join("statement.json"), old.join("statement.json")).unwrap();
    let mut bytes = std::fs::read(job.join("proof.bin")).unwrap();
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    std::fs::write(old.join("proof.bin"), bytes).unwrap();
    let (code, _, err) = verify_cli(&old);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("made by an older version"), "{err}");
    // a statement file too large to be one
    let big = scratch().join("big-statement");
    std::fs::create_dir_all(&big).unwrap();
    std::fs::copy(job.join("proof.bin"), big.join("proof.bin")).unwrap();
    let f = std::fs::File::create(big.join("statement.json")).unwrap();
    f.set_len(fold_ml::statement::MAX_STATEMENT_BYTES + 1).unwrap();
    let (code, _, err) = verify_cli(&big);
    assert_eq!(code, 1, "{err}");
}
