//! Networks of several segments: proven as one statement whose segment proofs are linked
//! through the activation and model commitments. A missing, reordered, duplicated or
//! foreign segment proof, or a wrong link, is rejected.

mod common;

use common::{cache, copy_job, fold_ml, run_env, scratch, verify_cli};
use fold_ml::artifact::{decode, encode, Kind};
use fold_ml::job::checkpoint::FAIL_HOOK_ENV;
use fold_ml::job::events::{EventLog, JobEvent};
use fold_ml::job::manifest::{CheckpointPolicy, ModelRecord};
use fold_ml::job::{self, JobRequest};
use fold_ml::model::network::{argmax, InputQuant, Network, OutputQuant, Segment, NETWORK_VERSION};
use fold_ml::nova::CompressedSnark;
use fold_ml::statement::Statement;
use fold_ml::verify::verify_dir;
use fold_ml::VerifyError;
use fold_ml_circuits::gadgets::conv::ConvShape;
use fold_ml_circuits::gadgets::dense::DenseShape;
use fold_ml_circuits::gadgets::linear::LinearShape;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::layer::Links;
use fold_ml_circuits::layer::{BlockSpec, LayerSpec, LayerWeights};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::reference::run_native;
use fold_ml_circuits::step::Tiling;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Deterministic small weights.
fn weights(n: usize, seed: u64, spread: i64) -> Vec<i8> {
    (0..n as u64).map(|i| (((i * 37 + seed * 101 + 11) % (2 * spread as u64 + 1)) as i64 - spread) as i8).collect()
}

/// conv 1→2 on 4×4 with 2×2 max pooling; 3 residual conv 2→2 layers on 2×2; a dense head
/// 8→4 (over the 2×2 image: a convolution whose kernel covers it, as imported).
fn tiny_network(seed: u64) -> Network {
    let conv = |ci, co, side| LinearShape::Conv(ConvShape::same(ci, co, side, side, 3));
    let mut stem = LayerSpec::new(conv(1, 2, 4), RequantSpec::new(3, 16).unwrap());
    stem.pool = Some(Pool::square(PoolKind::Max, 2));
    let mut body = LayerSpec::new(conv(2, 2, 2), RequantSpec::new(4, 18).unwrap());
    body.skip = 16;
    let head_shape = ConvShape { kernel: [2, 2], pads: [0; 4], ..ConvShape::same(2, 4, 2, 2, 1) };
    let head = LayerSpec::new(LinearShape::Conv(head_shape), RequantSpec::new(4, 18).unwrap());
    let layer = |spec: &LayerSpec, s: u64| LayerWeights {
        weights: weights(spec.shape.num_weights(), s, 6),
        bias: (0..spec.shape.num_biases() as i32).map(|b| 4 + 3 * b).collect(),
    };
    let mut head_layer = layer(&head, seed + 9);
    head_layer.bias.iter_mut().for_each(|b| *b += 64 << 4); // zero point 64: signed logits
    Network {
        version: NETWORK_VERSION,
        name: format!("tiny{seed}"),
        input: InputQuant { shape: vec![1, 4, 4], scale: 1.0 / 127.0, zero_point: 0 },
        output: OutputQuant { scale: 0.1, zero_point: 64 },
        salt: fold_ml::F::from(1000 + seed),
        segments: vec![
            Segment { spec: BlockSpec::layer(stem), layers: vec![layer(&stem, seed)], origin: vec!["stem".into()] },
            Segment {
                spec: BlockSpec::layer(body),
                layers: (1..4).map(|i| layer(&body, seed + i)).collect(),
                origin: vec!["block1".into(), "block2".into(), "block3".into()],
            },
            Segment { spec: BlockSpec::layer(head), layers: vec![head_layer], origin: vec!["head".into()] },
        ],
    }
}

fn input() -> Vec<u8> {
    (0..16).map(|i| (i * 13 % 128) as u8).collect()
}

fn request(net: &Network, file: &Path, input: Vec<u8>) -> JobRequest {
    JobRequest {
        model: ModelRecord::of_network(net),
        model_file: Some(file.to_path_buf()),
        input: Some(input),
        public_input: false,
        input_blind: None,
        cache_dir: cache(),
        checkpoint_every: CheckpointPolicy::Layers(1),
        restart: false,
        layers_per_step: None,
        fold_budget: None,
        keys_in_memory: None,
        memory_limit_mib: None,
    }
}

/// Proves `tiny_network(seed)` on `input` into `scratch()/name`.
fn proven(name: &str, seed: u64, input: Vec<u8>) -> PathBuf {
    let net = tiny_network(seed);
    net.check().expect("a valid network");
    let file = scratch().join(format!("{name}.foldml"));
    net.write(&file).unwrap();
    let dir = scratch().join(name);
    job::run(&dir, &request(&net, &file, input), &mut |_| {}).expect("proving succeeds");
    dir
}

fn reference() -> PathBuf {
    static JOB: OnceLock<PathBuf> = OnceLock::new();
    JOB.get_or_init(|| proven("tiny", 0, input())).clone()
}

fn statement(dir: &Path) -> Statement {
    serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap()
}

fn verdict(dir: &Path) -> Result<Statement, VerifyError> {
    verify_dir(dir, &cache(), &fold_ml::verify::Expected::default()).expect("readable")
}

/// Writes `net` to the scratch model `name.foldml` and proves `input` on it under the fold
/// budget `budget` in the scratch job `name`: the job and the statement it verifies to.
fn prove_under(net: &Network, name: &str, input: &[u8], budget: usize) -> (PathBuf, Statement) {
    let file = scratch().join(format!("{name}.foldml"));
    net.write(&file).unwrap();
    let dir = scratch().join(name);
    let req = JobRequest { fold_budget: Some(budget), ..request(net, &file, input.to_vec()) };
    job::run(&dir, &req, &mut |_| {}).expect("proving succeeds");
    let s = verdict(&dir).expect("accepted");
    (dir, s)
}

/// The statement says what the native model computes from `input` under the model's
/// commitment, and the standalone verifier accepts the job: the native output.
fn assert_native_statement(net: &Network, input: &[u8], dir: &Path, s: &Statement) -> Vec<u8> {
    let out = net.run_native(input).unwrap();
    assert_eq!(s.output.values.as_deref(), Some(&out[..]));
    assert_eq!(s.model_commitment, fold_ml::model::model_commitment(net));
    assert_eq!(verify_cli(dir).0, 0);
    out
}

fn proofs(dir: &Path) -> Vec<CompressedSnark> {
    let s = statement(dir);
    decode(Kind::Proof, &s.architectures_digest(), &std::fs::read(dir.join("proof.bin")).unwrap()).unwrap()
}

fn write_proofs(dir: &Path, s: &Statement, proofs: &[CompressedSnark]) {
    std::fs::write(dir.join("proof.bin"), encode(Kind::Proof, &s.architectures_digest(), &proofs).unwrap()).unwrap();
}

#[test]
fn the_verifier_takes_one_key_per_architecture_in_turn() {
    // Three segments of three architectures: the key source is asked for each once, in
    // order of first use, and the check stops at the first key it cannot have.
    let dir = reference();
    let s = statement(&dir);
    let proof = std::fs::read(dir.join("proof.bin")).unwrap();
    let archs: Vec<_> = s.distinct_architectures().into_iter().cloned().collect();
    assert_eq!(archs.len(), 3);
    let mut asked = Vec::new();
    let mut key = |k: usize| {
        asked.push(k);
        fold_ml_verify::keys::verifier_key(&cache(), &archs[k])
    };
    assert_eq!(fold_ml::verify::verify_proof_with(&s, &proof, &mut key).unwrap(), Ok(()));
    assert_eq!(asked, vec![0, 1, 2]);
    let mut asked = Vec::new();
    let mut failing = |k: usize| {
        asked.push(k);
        if k == 1 {
            Err("no key")
        } else {
            Ok(fold_ml_verify::keys::verifier_key(&cache(), &archs[k]).unwrap())
        }
    };
    assert_eq!(fold_ml::verify::verify_proof_with(&s, &proof, &mut failing), Err("no key"));
    assert_eq!(asked, vec![0, 1]);
    // a proof of the wrong length is rejected before any key is derived
    let mut never = |_: usize| -> Result<fold_ml::nova::VerifierKey, ()> { panic!("no key is needed") };
    let mut two = proofs(&dir);
    two.truncate(2);
    let short = encode(Kind::Proof, &s.architectures_digest(), &two).unwrap();
    assert!(matches!(
        fold_ml::verify::verify_proof_with(&s, &short, &mut never),
        Ok(Err(VerifyError::BadStatement(_)))
    ));
    // the prover's self-check: segments verified when they were compressed need no key,
    // but the statement and the proof's framing are still checked
    use fold_ml_verify::verify::verify_proof_except;
    assert_eq!(verify_proof_except(&s, &proof, &mut never, &|_| true), Ok(Ok(())));
    let mut asked = Vec::new();
    let mut key = |k: usize| {
        asked.push(k);
        fold_ml_verify::keys::verifier_key(&cache(), &archs[k])
    };
    assert_eq!(verify_proof_except(&s, &proof, &mut key, &|j| j != 1).unwrap(), Ok(()));
    assert_eq!(asked, vec![1], "only the unchecked segment's key");
    assert!(matches!(verify_proof_except(&s, &short, &mut never, &|_| true), Ok(Err(VerifyError::BadStatement(_)))));
    let mut swapped = proofs(&dir);
    swapped.swap(0, 2);
    let swapped = encode(Kind::Proof, &s.architectures_digest(), &swapped).unwrap();
    let mut key = |k: usize| fold_ml_verify::keys::verifier_key(&cache(), &archs[k]);
    assert!(matches!(verify_proof_except(&s, &swapped, &mut key, &|j| j == 1), Ok(Err(_))), "unchecked ones are");
}

#[test]
fn a_warm_cache_is_named_by_its_summaries_and_each_key_loaded_once() {
    // Keys of later segments are not held (keys_in_memory 0): on a fresh cache every
    // architecture is set up at the start (the manifest records their digests) and loaded
    // from the cache at its turn — the first segment's at once: parameters fresh from setup
    // are never folded with; on a warm cache only the next segment's keys are loaded at the
    // start, the others once, at their turn.
    let net = tiny_network(3);
    let file = scratch().join("summaries.foldml");
    net.write(&file).unwrap();
    let cache_dir = scratch().join("summaries-cache");
    let _ = std::fs::remove_dir_all(&cache_dir);
    let req = JobRequest { cache_dir: cache_dir.clone(), keys_in_memory: Some(0), ..request(&net, &file, input()) };
    let keys_events = |name: &str| {
        let dir = scratch().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let mut events = Vec::new();
        let outcome = job::run(&dir, &req, &mut |e| {
            if let fold_ml::prove::Event::KeysReady { cached, .. } = e {
                events.push(cached);
            }
        });
        (outcome.map(|_| ()), events)
    };
    let (fresh, events) = keys_events("summaries-fresh");
    fresh.expect("proves");
    assert_eq!(events, vec![false, true, false, false, true, true], "3 setups, each segment's keys loaded at its turn");
    let (warm, events) = keys_events("summaries-warm");
    warm.expect("proves");
    assert_eq!(events, vec![true, true, true], "each key loaded once");
    // A summary that does not describe its parameters is caught when they are loaded,
    // after the segments before it are finished.
    let archs = req.architectures(&net, None);
    let summary = cache_dir.join(archs[1].short_id()).join("params.json");
    let honest = std::fs::read_to_string(&summary).unwrap();
    let mut lie: serde_json::Value = serde_json::from_str(&honest).unwrap();
    lie["digest"] = serde_json::Value::String(fold_ml::field::to_hex(&fold_ml::F::from(5)));
    std::fs::write(&summary, lie.to_string()).unwrap();
    let (lied, _) = keys_events("summaries-lie");
    let err = lied.expect_err("refused").to_string();
    assert!(err.contains("params") || err.contains(&archs[1].short_id()), "{err}");
    assert!(err.contains("recorded"), "{err}");
    assert!(scratch().join("summaries-lie").join("segments").read_dir().unwrap().next().is_some(), "segment 0 kept");
    std::fs::write(&summary, honest).unwrap();
}

#[test]
fn a_network_of_segments_is_one_statement() {
    let dir = reference();
    let s = verdict(&dir).expect("accepted");
    assert_eq!((s.segments.len(), s.links.len(), s.num_layers), (3, 2, 5));
    let net = tiny_network(0);
    let out = net.run_native(&input()).unwrap();
    assert_eq!(s.output.values.as_deref(), Some(&out[..]));
    assert_eq!(s.output.class, Some(argmax(&out)));
    assert!(out.iter().any(|&v| v != 64), "the head's output is not constant: {out:?}");
    assert_eq!(s.model_commitment, fold_ml::model::model_commitment(&net));
    assert_eq!(verify_cli(&dir).0, 0);
}

#[test]
fn swapped_dropped_duplicated_and_foreign_segments_are_rejected() {
    let dir = reference();
    let s = statement(&dir);
    let bad = |name: &str, edit: &dyn Fn(&mut Vec<CompressedSnark>)| {
        let d = copy_job(&dir, name);
        let mut p = proofs(&dir);
        edit(&mut p);
        write_proofs(&d, &s, &p);
        let v = verdict(&d);
        assert!(v.is_err(), "{name}: accepted");
        assert_eq!(verify_cli(&d).0, 1, "{name}");
    };
    bad("swapped", &|p| p.swap(0, 1));
    bad("dropped", &|p| {
        p.remove(1);
    });
    bad("duplicated", &|p| p[2] = proofs(&dir).remove(1));
    bad("appended", &|p| p.push(proofs(&dir).remove(2)));
    // The same network proven on another input: every segment proof is genuine, but for
    // other links.
    let other = proven("tiny-other-input", 0, input().iter().map(|v| 127 - v).collect());
    bad("foreign", &|p| p[1] = proofs(&other).remove(1));
}

#[test]
fn wrong_links_and_reordered_segments_are_rejected() {
    let dir = reference();
    let honest = statement(&dir);
    type Edit = fn(&mut Statement);
    let cases: [(&str, Edit); 5] = [
        ("link activations", |s| s.links[0].activations += fold_ml::F::from(1)),
        ("link model", |s| s.links[1].model += fold_ml::F::from(1)),
        ("links swapped", |s| s.links.swap(0, 1)),
        ("segment layers moved", |s| {
            s.segments[1].num_layers -= 1;
            s.segments[2].num_layers += 1;
        }),
        ("segments swapped", |s| s.segments.swap(0, 2)),
    ];
    for (name, edit) in cases {
        let d = copy_job(&dir, &format!("link-{}", name.replace(' ', "-")));
        let mut s = honest.clone();
        edit(&mut s);
        std::fs::write(d.join("statement.json"), serde_json::to_vec(&s).unwrap()).unwrap();
        assert!(verdict(&d).is_err(), "{name}: accepted");
        assert_eq!(verify_cli(&d).0, 1, "{name}");
    }
    // a class that is not the largest output
    let d = copy_job(&dir, "link-class");
    let mut s = honest.clone();
    s.output.class = s.output.class.map(|c| (c + 1) % 4);
    std::fs::write(d.join("statement.json"), serde_json::to_vec(&s).unwrap()).unwrap();
    assert!(matches!(verdict(&d), Err(VerifyError::BadStatement(_))));
}

/// Writes `net` as `scratch()/NAME.foldml` and `input` (activations, scale 1/127) as the
/// real-valued `scratch()/NAME-input.json` the CLI takes.
fn cli_files(net: &Network, name: &str, input: &[u8]) -> (PathBuf, PathBuf) {
    let file = scratch().join(format!("{name}.foldml"));
    net.write(&file).unwrap();
    let real: Vec<f32> = input.iter().map(|&v| f32::from(v) / 127.0).collect();
    let input_file = scratch().join(format!("{name}-input.json"));
    std::fs::write(&input_file, serde_json::to_vec(&real).unwrap()).unwrap();
    (file, input_file)
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash and full-disk hooks)")]
fn a_job_resumes_inside_a_later_segment() {
    // Fail writing the checkpoint at layer 3 (inside the residual segment), then resume.
    let (file, input_file) = cli_files(&tiny_network(0), "resume", &input());
    let dir = scratch().join("resume-in-segment");
    let args = [
        "prove",
        "--model",
        file.to_str().unwrap(),
        "--input",
        input_file.to_str().unwrap(),
        "--public-input",
        "--checkpoint-every",
        "1",
        "--layers-per-step",
        "1",
        "--job",
        dir.to_str().unwrap(),
    ];
    let (code, _, err) = run_env(env!("CARGO_BIN_EXE_fold-ml"), &args, &[(FAIL_HOOK_ENV, "3")]);
    assert_eq!(code, 2, "the full disk stops the job: {err}");
    assert!(dir.join("segments/seg-0000.bin").exists(), "the first segment is kept");
    let (code, out, err) = fold_ml(&["resume", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming from the checkpoint at 2 layers"), "{err}");
    assert!(out.contains("predicted class"), "{out}");
    let s = verdict(&dir).expect("accepted");
    assert_eq!(s.input.values.as_deref(), Some(&input()[..]));
    let honest = statement(&reference()).output;
    assert_eq!((&s.output.values, s.output.class), (&honest.values, honest.class));
}

/// conv 1→4 on 16×16; conv 4→4 with 2×2 max pooling (tiled); a dense head 256→3.
fn mixed_network() -> Network {
    let conv = |ci, co| LinearShape::Conv(ConvShape::same(ci, co, 16, 16, 3));
    let stem = LayerSpec::new(conv(1, 4), RequantSpec::new(3, 16).unwrap());
    let mut body = LayerSpec::new(conv(4, 4), RequantSpec::new(5, 18).unwrap());
    body.pool = Some(Pool::square(PoolKind::Max, 2));
    let head_shape = ConvShape { kernel: [8, 8], pads: [0; 4], ..ConvShape::same(4, 3, 8, 8, 1) };
    let head = LayerSpec::new(LinearShape::Conv(head_shape), RequantSpec::new(7, 22).unwrap());
    let layer = |spec: &LayerSpec, s: u64| LayerWeights {
        weights: weights(spec.shape.num_weights(), s, 6),
        bias: (0..spec.shape.num_biases() as i32).map(|b| 4 + 3 * b).collect(),
    };
    let segment = |spec: LayerSpec, s: u64, name: &str| Segment {
        spec: BlockSpec::layer(spec),
        layers: vec![layer(&spec, s)],
        origin: vec![name.into()],
    };
    Network {
        version: NETWORK_VERSION,
        name: "mixed".into(),
        input: InputQuant { shape: vec![1, 16, 16], scale: 1.0 / 127.0, zero_point: 0 },
        output: OutputQuant { scale: 0.1, zero_point: 0 },
        salt: fold_ml::F::from(77),
        segments: vec![segment(stem, 1, "stem"), segment(body, 2, "body"), segment(head, 3, "head")],
    }
}

#[test]
fn a_tiled_segment_between_whole_ones_hands_its_tensors_over() {
    use fold_ml_circuits::cost::StepCost;
    let net = mixed_network();
    net.check().expect("a valid network");
    let cost = |j: usize| StepCost::of_step(&net.segments[j].spec, 1).constraints;
    let budget = cost(0).max(cost(2)) + 1;
    assert!(cost(1) > budget, "the body is over the budget: {} vs {budget}", cost(1));
    let file = scratch().join("mixed.foldml");
    net.write(&file).unwrap();
    let dir = scratch().join("mixed");
    let input: Vec<u8> = (0..256).map(|i| (i * 29 % 128) as u8).collect();
    // no other segment's keys held: each is reloaded from the cache in its turn
    let req = JobRequest { fold_budget: Some(budget), keys_in_memory: Some(0), ..request(&net, &file, input.clone()) };
    job::run(&dir, &req, &mut |_| {}).expect("proving succeeds");
    let s = verdict(&dir).expect("accepted");
    let archs: Vec<_> = s.segments.iter().map(|g| &g.architecture).collect();
    assert_eq!(archs.iter().map(|a| a.tile_rows().is_some()).collect::<Vec<_>>(), [false, true, false]);
    let links: Vec<[bool; 2]> = archs.iter().map(|a| a.block.links.map(|l| l == Links::Rows)).collect();
    assert_eq!(links, [[false, true], [true, true], [true, false]], "row links next to the tiled layer only");
    let out = net.run_native(&input).unwrap();
    assert!(out.iter().any(|&v| v > 0), "a live output: {out:?}");
    assert_eq!(s.output.values.as_deref(), Some(&out[..]));
    assert_eq!(s.model_commitment, fold_ml::model::model_commitment(&net));
    assert_eq!(verify_cli(&dir).0, 0);
}

/// conv 1→32 on 4×4 with 2×2 max pooling; a residual block of two convs 32→32 on 2×2
/// (9,216 weights each: model-commitment chunks of 8 channels; channel-tiled); a dense
/// head 128→3.
fn wide_network() -> Network {
    let conv = |ci, co, side| ConvShape::same(ci, co, side, side, 3);
    let mut stem = LayerSpec::new(LinearShape::Conv(conv(1, 32, 4)), RequantSpec::new(3, 16).unwrap());
    stem.pool = Some(Pool::square(PoolKind::Max, 2));
    let first = LayerSpec::new(LinearShape::Conv(conv(32, 32, 2)), RequantSpec::new(7, 20).unwrap());
    let second =
        LayerSpec { skip: 3, ..LayerSpec::new(LinearShape::Conv(conv(32, 32, 2)), RequantSpec::new(7, 20).unwrap()) };
    let head_shape = ConvShape { kernel: [2, 2], pads: [0; 4], ..ConvShape::same(32, 3, 2, 2, 1) };
    let head = LayerSpec::new(LinearShape::Conv(head_shape), RequantSpec::new(6, 20).unwrap());
    let blocks = [BlockSpec::layer(stem), BlockSpec::new(vec![first, second]), BlockSpec::layer(head)];
    let mut net = with_blocks(mixed_network(), blocks, "wide");
    net.input.shape = vec![1, 4, 4];
    net
}

/// `net` with three other blocks (stem, body, head) and small weights drawn from the
/// segment and layer index, the head's biases far apart (a clear class).
fn with_blocks(mut net: Network, blocks: [BlockSpec; 3], name: &str) -> Network {
    fill_blocks(&mut net, blocks);
    net.segments[2].layers[0].bias = vec![1500, 2500, 3500];
    net.name = name.into();
    net
}

/// The first segments of `net` become `blocks`, with small weights drawn from the segment
/// and layer index and small distinct biases.
fn fill_blocks(net: &mut Network, blocks: impl IntoIterator<Item = BlockSpec>) {
    for (j, (block, segment)) in blocks.into_iter().zip(&mut net.segments).enumerate() {
        segment.layers = block
            .stages
            .iter()
            .enumerate()
            .map(|(i, spec)| LayerWeights {
                weights: weights(spec.num_weights(), (j + i) as u64 + 5, 3),
                bias: (0..spec.shape.num_biases() as i32).map(|b| 4 + 3 * b).collect(),
            })
            .collect();
        segment.spec = block;
    }
}

/// A residual block over the fold budget whose weights every row tile would hold is proven
/// a group of output channels of one of its layers per fold (two passes); the job stops
/// inside it (a full disk), resumes there, and the proof says what the native model
/// computes.
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (the full-disk hook)")]
fn a_channel_tiled_block_is_resumed_inside_and_hands_its_groups_over() {
    use fold_ml_circuits::cost::StepCost;
    let net = wide_network();
    net.check().expect("a valid network");
    let cost = |j: usize| StepCost::of_step(&net.segments[j].spec, net.segments[j].spec.num_stages()).constraints;
    let group = net.segments[1].spec.clone().with_links([Links::Whole, Links::Channels(8)]);
    let tile = StepCost::of_tiling(&group, Tiling::Channels(8)).unwrap().constraints;
    let budget = cost(0).max(cost(2)).max(tile) + 1;
    assert!(cost(1) > budget, "the body is over the budget: {} vs {budget}", cost(1));
    let input: Vec<u8> = (0..16).map(|i| (i * 29 % 128) as u8).collect();
    // the disk fills up when the block is done: the newest checkpoint holds the stem and 7
    // of the block's 4 + 4 groups
    let (dir, _) = stopped_and_resumed((&net, "wide", &input), budget, 3, (1, 7));
    let links = [[Links::Whole; 2], [Links::Whole, Links::Channels(8)], [Links::Channels(8), Links::Whole]];
    check_tiled_middle(&net, &input, &dir, (Tiling::Channels(8), links), "block");
}

/// Checks the proof in `dir` of a three-segment `net` whose middle segment alone is tiled
/// (`tiling`, the segments' `links`): accepted, its live middle and output = the native
/// run's, the model commitment the network's, and the CLI verifier agrees.
fn check_tiled_middle(net: &Network, input: &[u8], dir: &Path, (tiling, links): (Tiling, [[Links; 2]; 3]), what: &str) {
    let s = verdict(dir).expect("accepted");
    let archs: Vec<_> = s.segments.iter().map(|g| &g.architecture).collect();
    assert_eq!(archs.iter().map(|a| a.tiling).collect::<Vec<_>>(), [None, Some(tiling), None]);
    assert_eq!(archs.iter().map(|a| a.block.links).collect::<Vec<_>>(), links);
    let out = net.run_native(input).unwrap();
    let run = |j: usize, x: &[u8]| run_native(&net.segments[j].spec, x, &net.segments[j].layers).unwrap();
    let middle = run(1, &run(0, input));
    assert!(middle.iter().filter(|&&v| v > 0).count() > middle.len() / 4, "a live {what}: {middle:?}");
    assert!(out.iter().any(|&v| v > 0) && out.iter().any(|&v| v < 127), "a live output: {out:?}");
    assert_eq!(s.output.values.as_deref(), Some(&out[..]));
    assert_eq!(s.model_commitment, fold_ml::model::model_commitment(net));
    assert_eq!(verify_cli(dir).0, 0);
}

/// Proves `net` on `input` under `budget`, a checkpoint after every fold, until the
/// full-disk hook fails the checkpoint at `stop` layers; checks that the newest checkpoint
/// left is `newest` (inside a tiled block), resumes from it and returns the job directory
/// and the resume's messages.
fn stopped_and_resumed(
    (net, name, input): (&Network, &str, &[u8]),
    budget: usize,
    stop: usize,
    newest: (usize, usize),
) -> (PathBuf, String) {
    let (file, input_file) = cli_files(net, name, input);
    let dir = scratch().join(name);
    let budget = budget.to_string();
    let args = [
        "prove",
        "--model",
        file.to_str().unwrap(),
        "--input",
        input_file.to_str().unwrap(),
        "--public-input",
        "--checkpoint-seconds",
        "0",
        "--fold-budget",
        &budget,
        "--job",
        dir.to_str().unwrap(),
    ];
    let (code, _, first) = run_env(env!("CARGO_BIN_EXE_fold-ml"), &args, &[(FAIL_HOOK_ENV, &stop.to_string())]);
    assert_eq!(code, 2, "the full disk stops the job: {first}");
    let found = fold_ml::job::checkpoint::list(&dir).first().map(|(k, _)| *k);
    assert_eq!(found, Some(newest), "the newest checkpoint");
    let folded = EventLog::read(&dir).iter().filter(|e| matches!(e.event, JobEvent::Folded { .. })).count();
    let (code, stopped, _) = fold_ml(&["status", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (code, out, err) = fold_ml(&["resume", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("resuming from the checkpoint at {} layers", newest.0)), "{err}");
    assert!(out.contains("predicted class"), "{out}");
    // While stopped, `status` counted the folds the first run logged (one event each) out
    // of every fold of the plan, and gave a time left.
    let s = statement(&dir);
    let total: usize = s.segments.iter().map(|seg| seg.architecture.steps(seg.num_layers)).sum();
    assert!(stopped.contains(&format!("folds        {folded}/{total}\n")), "{folded}/{total}: {stopped}");
    assert!(stopped.contains("ETA") && stopped.contains("compressions"), "{stopped}");
    // The new job said what it planned; the resume keeps that plan.
    assert!(first.contains(&format!("planned {} segment(s), {total} folds", s.segments.len())), "{first}");
    assert!(!err.contains("planned"), "{err}");
    (dir, err)
}

/// conv 1→32 on 4×4; a 3×3 convolution 32→32 on 4×4 (9,216 weights, chunks of 8
/// channels); a 4×4 convolution to 3 channels (the head).
fn grid_network() -> Network {
    let conv = |ci, co| ConvShape::same(ci, co, 4, 4, 3);
    let stem = LayerSpec::new(LinearShape::Conv(conv(1, 32)), RequantSpec::new(3, 16).unwrap());
    let body = LayerSpec::new(LinearShape::Conv(conv(32, 32)), RequantSpec::new(7, 20).unwrap());
    let head_shape = ConvShape { kernel: [4, 4], pads: [0; 4], ..ConvShape::same(32, 3, 4, 4, 1) };
    let head = LayerSpec::new(LinearShape::Conv(head_shape), RequantSpec::new(7, 20).unwrap());
    let mut net = with_blocks(wide_network(), [stem, body, head].map(BlockSpec::layer), "grid");
    for (j, segment) in net.segments.iter_mut().enumerate() {
        segment.origin = vec![format!("layer{j}")];
    }
    net
}

/// A convolution whose rows hold too many weights and whose groups of channels read too
/// much input is proven one output row of a group of channels per fold; the job stops
/// inside it (a full disk), resumes there, and the proof says what the native model
/// computes, its output committed one row of a group per link and read whole by the head.
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (the full-disk hook)")]
fn a_grid_tiled_layer_is_resumed_inside_and_hands_its_rows_of_groups_over() {
    use fold_ml_circuits::cost::StepCost;
    let net = grid_network();
    net.check().expect("a valid network");
    let cost = |j: usize| StepCost::of_step(&net.segments[j].spec, 1).constraints;
    let body = &net.segments[1].spec;
    let grid = StepCost::of_tiling(&body.clone().with_links([Links::Rows, Links::RowGroups(8)]), Tiling::Grid(8));
    let budget = cost(0).max(cost(2)).max(grid.unwrap().constraints) + 1;
    let channels =
        StepCost::of_tiling(&body.clone().with_links([Links::Rows, Links::Channels(8)]), Tiling::Channels(8));
    let rows = StepCost::of_tiling(&body.clone().with_row_links([true, true]), Tiling::Rows(1));
    assert!(cost(1) > budget, "the body is over the budget: {} vs {budget}", cost(1));
    assert!(channels.unwrap().constraints > budget && rows.unwrap().constraints > budget, "only the grid fits");
    let input: Vec<u8> = (0..16).map(|i| (i * 29 % 128) as u8).collect();
    // the disk fills up when the body is done: the newest checkpoint holds the stem and 15
    // of the body's 4 rows × 4 groups
    let (dir, _) = stopped_and_resumed((&net, "grid", &input), budget, 2, (1, 15));
    let rg = Links::RowGroups(8);
    let links = [[Links::Whole, Links::Rows], [Links::Rows, rg], [rg, Links::Whole]];
    check_tiled_middle(&net, &input, &dir, (Tiling::Grid(8), links), "body");
}

/// conv 1→32 on 4×4; a residual block of two 3×3 convolutions 32→32 on 4×4 (9,216
/// weights each, chunks of 8 channels); a 4×4 convolution to 3 channels (the head).
fn pair_network() -> Network {
    let conv = |ci, co| ConvShape::same(ci, co, 4, 4, 3);
    let stem = LayerSpec::new(LinearShape::Conv(conv(1, 32)), RequantSpec::new(3, 16).unwrap());
    let first = LayerSpec::new(LinearShape::Conv(conv(32, 32)), RequantSpec::new(7, 20).unwrap());
    let second =
        LayerSpec { skip: 3, ..LayerSpec::new(LinearShape::Conv(conv(32, 32)), RequantSpec::new(7, 20).unwrap()) };
    let head_shape = ConvShape { kernel: [4, 4], pads: [0; 4], ..ConvShape::same(32, 3, 4, 4, 1) };
    let head = LayerSpec::new(LinearShape::Conv(head_shape), RequantSpec::new(7, 20).unwrap());
    let blocks = [BlockSpec::layer(stem), BlockSpec::new(vec![first, second]), BlockSpec::layer(head)];
    let mut net = with_blocks(wide_network(), blocks, "pair");
    for (j, segment) in net.segments.iter_mut().enumerate() {
        segment.origin = vec![format!("layer{j}"); segment.spec.num_stages()];
    }
    net
}

/// A residual block whose row tiles hold both layers' weights and whose channel tiles read
/// both tensors whole is proven as a pair of grids (a grid of each convolution, one row of
/// a group per fold); the job stops inside the second pass (a full disk), resumes there,
/// and the proof says what the native model computes.
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (the full-disk hook)")]
fn a_block_tiled_as_a_pair_of_grids_is_resumed_inside_its_second_pass() {
    use fold_ml_circuits::cost::StepCost;
    let net = pair_network();
    net.check().expect("a valid network");
    let cost = |j: usize| StepCost::of_step(&net.segments[j].spec, net.segments[j].spec.num_stages()).constraints;
    let body = &net.segments[1].spec;
    let tile = |links: [Links; 2], t: Tiling| StepCost::of_tiling(&body.clone().with_links(links), t).unwrap();
    let pair = tile([Links::Rows, Links::RowGroups(8)], Tiling::Pair(8)).constraints;
    let budget = cost(0).max(cost(2)).max(pair) + 1;
    assert!(cost(1) > budget, "the body is over the budget: {} vs {budget}", cost(1));
    let others = [
        tile([Links::Rows, Links::Channels(8)], Tiling::Channels(8)),
        tile([Links::Rows, Links::Rows], Tiling::Rows(1)),
        tile([Links::Rows, Links::RowGroups(16)], Tiling::Pair(16)),
    ];
    assert!(others.iter().all(|c| c.constraints > budget), "only the pair of 8 channels fits");
    let input: Vec<u8> = (0..16).map(|i| (i * 29 % 128) as u8).collect();
    // the disk fills up when the block is done: the newest checkpoint holds the stem and 31
    // of the block's 2 passes × 4 rows × 4 groups, and the resume starts there (a
    // second-pass tile's state counts the block's first layer done)
    let (dir, err) = stopped_and_resumed((&net, "pair", &input), budget, 3, (1, 31));
    assert!(!err.contains("skipping"), "{err}");
    let rg = Links::RowGroups(8);
    let links = [[Links::Whole, Links::Rows], [Links::Rows, rg], [rg, Links::Whole]];
    check_tiled_middle(&net, &input, &dir, (Tiling::Pair(8), links), "body");
}

/// `pair_network` with other blocks (stem, body, head; `with_blocks`' weights) on an input
/// of `shape`, its body a stack of two such blocks (the second's weights another draw).
fn with_stacked_body(blocks: [BlockSpec; 3], name: &str, shape: Vec<usize>) -> Network {
    let mut net = with_blocks(pair_network(), blocks, name);
    net.input.shape = shape;
    let body = &mut net.segments[1];
    let second: Vec<LayerWeights> =
        body.layers.iter().map(|w| LayerWeights { weights: weights(w.weights.len(), 9, 3), ..w.clone() }).collect();
    body.layers.extend(second);
    body.origin = ["block1.conv1", "block1.conv2", "block2.conv1", "block2.conv2"].map(String::from).to_vec();
    net
}

/// ResNet-18's first stage in miniature: conv 7×7 1→32 on 8×8 with 2×2 max pooling (one
/// model-commitment chunk: tiled by rows only); two residual blocks of 3×3 convolutions
/// 32→32 on 4×4 in one segment (each tiled as a pair of grids of 8 channels); a 4×4
/// convolution to 3 channels (the head).
fn stage_network() -> Network {
    let stem_shape = ConvShape::same(1, 32, 8, 8, 7);
    let mut stem = LayerSpec::new(LinearShape::Conv(stem_shape), RequantSpec::new(4, 18).unwrap());
    stem.pool = Some(Pool::square(PoolKind::Max, 2));
    let pair = pair_network();
    let blocks = [BlockSpec::layer(stem), pair.segments[1].spec.clone(), pair.segments[2].spec.clone()];
    with_stacked_body(blocks, "stage", vec![1, 8, 8])
}

/// A row-tiled layer whose reader is a stack of blocks tiled as pairs of grids (ResNet-18's
/// stem and first stage) writes its rows in the groups the stack reads and writes: the
/// stack keeps its pairs, and the proof says what the native model computes.
#[test]
fn row_tiles_write_rows_of_groups_for_a_stack_of_pairs() {
    use fold_ml_circuits::cost::StepCost;
    let net = stage_network();
    net.check().expect("a valid network");
    let cost = |j: usize| StepCost::of_step(&net.segments[j].spec, net.segments[j].spec.num_stages()).constraints;
    let rg = Links::RowGroups(8);
    let body = &net.segments[1].spec;
    let tile = |links: [Links; 2], t: Tiling| StepCost::of_tiling(&body.clone().with_links(links), t).unwrap();
    // the planner measures tiles reading rows of every channel (the dearest input)
    let pair = tile([Links::Rows, rg], Tiling::Pair(8)).constraints;
    let budget = cost(2).max(pair) + 1;
    assert!(
        cost(0) > budget && cost(1) > budget,
        "stem and body over the budget: {}, {} vs {budget}",
        cost(0),
        cost(1)
    );
    let others = [
        tile([Links::Rows, Links::Rows], Tiling::Rows(1)),
        tile([Links::Rows, Links::Channels(8)], Tiling::Channels(8)),
    ];
    assert!(others.iter().all(|c| c.constraints > budget), "the body fits only as pairs");
    let input: Vec<u8> = (0..64).map(|i| (i * 29 % 128) as u8).collect();
    let (dir, s) = prove_under(&net, "stage", &input, budget);
    let archs: Vec<_> = s.segments.iter().map(|g| &g.architecture).collect();
    assert!(matches!(archs[0].tiling, Some(Tiling::Rows(_))), "{:?}", archs[0].tiling);
    assert_eq!(archs[1].tiling, Some(Tiling::Pair(8)));
    assert_eq!(archs[2].tiling, None);
    let links: Vec<_> = archs.iter().map(|a| a.block.links).collect();
    assert_eq!(links, [[Links::Rows, rg], [rg, rg], [rg, Links::Whole]]);
    let (stem, body) = (&net.segments[0], &net.segments[1]);
    let first = run_native(&body.spec, &run_native(&stem.spec, &input, &stem.layers).unwrap(), &body.layers[..2]);
    let stage = first.unwrap();
    assert!(stage.iter().filter(|&&v| v > 0).count() > stage.len() / 4, "a live first block: {stage:?}");
    let out = assert_native_statement(&net, &input, &dir, &s);
    assert!(out.iter().any(|&v| v > 0) && out.iter().any(|&v| v < 127), "a live output: {out:?}");
}

/// ResNet-18's last block in miniature: the stem of [`stage_network`], an identity block of
/// 3×3 convolutions 32→32 on 4×4 ending in a global average pooling, a dense head 32→3.
fn pooled_stage_network() -> Network {
    let mut net = stage_network();
    let mut body = pair_network().segments[1].spec.clone();
    let conv = body.stages[1].shape;
    let LinearShape::Conv(c) = conv else { panic!("a convolution") };
    body.stages[1].pool = Some(Pool::global(PoolKind::Average, c.output_dims()));
    let head =
        LayerSpec::new(LinearShape::Dense(DenseShape { inputs: 32, outputs: 3 }), RequantSpec::new(5, 18).unwrap());
    let stem = net.segments[0].spec.clone();
    net = with_blocks(net, [stem, body, BlockSpec::layer(head)], "pooled_stage");
    net.segments[1].origin = ["block.conv1", "block.conv2"].map(String::from).to_vec();
    net.segments[2].origin = vec!["fc".into()];
    net
}

/// A globally averaged identity block (ResNet's last) over the fold budget is proven as a
/// pair whose passes share one tile and whose second pass carries the running channel sums:
/// it reads rows of its own groups (which the row-tiled stem writes for it), writes its one
/// row of means for the dense head, and the proof says what the native model computes.
#[test]
fn a_globally_averaged_identity_block_is_a_shared_pair_of_running_sums() {
    use fold_ml_circuits::cost::StepCost;
    let net = pooled_stage_network();
    net.check().expect("a valid network");
    let cost = |j: usize| StepCost::of_step(&net.segments[j].spec, net.segments[j].spec.num_stages()).constraints;
    let rg = Links::RowGroups(8);
    let body = &net.segments[1].spec;
    let tile = |links: [Links; 2], t: Tiling| StepCost::of_tiling(&body.clone().with_links(links), t).unwrap();
    let pair = tile([rg, Links::Rows], Tiling::Pair(8)).constraints;
    let budget = cost(2).max(pair) + 1;
    assert!(cost(0) > budget && cost(1) > budget, "stem and body over the budget: {}, {}", cost(0), cost(1));
    let input: Vec<u8> = (0..64).map(|i| (i * 29 % 128) as u8).collect();
    let (dir, s) = prove_under(&net, "pooled_stage", &input, budget);
    let archs: Vec<_> = s.segments.iter().map(|g| &g.architecture).collect();
    assert!(matches!(archs[0].tiling, Some(Tiling::Rows(_))), "{:?}", archs[0].tiling);
    assert_eq!(archs[1].tiling, Some(Tiling::Pair(8)));
    let links: Vec<_> = archs.iter().map(|a| a.block.links).collect();
    assert_eq!(links, [[Links::Rows, rg], [rg, Links::Rows], [Links::Rows, Links::Whole]]);
    let means =
        net.segments[..2].iter().try_fold(input.clone(), |x, seg| run_native(&seg.spec, &x, &seg.layers)).unwrap();
    assert_eq!(means.len(), 32);
    assert!(means.iter().filter(|&&v| v > 0).count() > 8, "live means: {means:?}");
    assert_native_statement(&net, &input, &dir, &s);
}

/// ResNet-18's stem and first stage at 32×32: conv 7×7 3→32 with 4×4 max pooling (two
/// model-commitment chunks of 16 channels), two residual blocks of 3×3 convolutions 32→32
/// on 8×8 in one segment (chunks of 8 channels), an 8×8 convolution to 3 channels.
fn stem_grid_network() -> Network {
    let mut stem =
        LayerSpec::new(LinearShape::Conv(ConvShape::same(3, 32, 32, 32, 7)), RequantSpec::new(6, 20).unwrap());
    stem.pool = Some(Pool::square(PoolKind::Max, 4));
    let conv = LinearShape::Conv(ConvShape::same(32, 32, 8, 8, 3));
    let first = LayerSpec::new(conv, RequantSpec::new(7, 20).unwrap());
    let second = LayerSpec { skip: 3, ..first };
    let head_shape = ConvShape { kernel: [8, 8], pads: [0; 4], ..ConvShape::same(32, 3, 8, 8, 1) };
    let head = LayerSpec::new(LinearShape::Conv(head_shape), RequantSpec::new(7, 20).unwrap());
    let blocks = [BlockSpec::layer(stem), BlockSpec::new(vec![first, second]), BlockSpec::layer(head)];
    with_stacked_body(blocks, "stem_grid", vec![3, 32, 32])
}

/// A stack of blocks that would rather be tiled otherwise, after a stem that can only
/// be a grid of 16 (its chunks), takes the stem's groups instead of falling back to rows.
#[test]
fn a_stack_of_pairs_takes_the_groups_of_its_grid_tiled_stem() {
    use fold_ml::prove::plan::{architectures, tiling, Groups};
    use fold_ml_circuits::cost::StepCost;
    let net = stem_grid_network();
    net.check().expect("a valid network");
    let (stem, body) = (&net.segments[0].spec, &net.segments[1].spec);
    let rg = Links::RowGroups(16);
    let cost = |b: &BlockSpec, links: [Links; 2], t: Tiling| StepCost::of_tiling(&b.clone().with_links(links), t);
    let grid = cost(stem, [Links::Rows, rg], Tiling::Grid(16)).unwrap().constraints;
    let pair = cost(body, [Links::Rows, rg], Tiling::Pair(16)).unwrap().constraints;
    let budget = grid.max(pair) + 1;
    let rows = cost(stem, [Links::Rows; 2], Tiling::Rows(1)).unwrap().constraints;
    assert!(rows > budget, "the stem fits only as a grid: {rows} vs {budget}");
    let whole = StepCost::of_step(body, 2).constraints;
    let alone = tiling(body, whole, (budget, Groups::Any), (2, Links::Rows));
    assert!(alone.is_some_and(|t| t != Tiling::Pair(16)), "the stack alone is tiled otherwise: {alone:?}");
    let archs = architectures(&net, None, Some(budget));
    let tilings: Vec<_> = archs.iter().map(|a| a.tiling).collect();
    assert_eq!(tilings, [Some(Tiling::Grid(16)), Some(Tiling::Pair(16)), None]);
    let links: Vec<_> = archs.iter().map(|a| a.block.links).collect();
    assert_eq!(links, [[Links::Rows, rg], [rg, rg], [rg, Links::Whole]]);
}

/// ResNet-18's last identity block of stage 3 (3×3 convolutions 256→256 on 14×14), stage
/// 4's projection block (3×3 256→512 stride 2, 3×3 512→512 on 7×7, its shortcut a 1×1
/// projection 256→512 stride 2), and a 7×7 convolution to 3 channels.
fn stage_four_network() -> Network {
    let rq = RequantSpec::new(8, 23).unwrap();
    let conv = |c: ConvShape| LayerSpec::new(LinearShape::Conv(c), rq);
    let identity = conv(ConvShape::same(256, 256, 14, 14, 3));
    let down = |kernel| ConvShape { stride: [2, 2], ..ConvShape::same(256, 512, 14, 14, kernel) };
    let second = LayerSpec { skip: 0, projection: Some(down(1)), ..conv(ConvShape::same(512, 512, 7, 7, 3)) };
    let head = conv(ConvShape { kernel: [7, 7], pads: [0; 4], ..ConvShape::same(512, 3, 7, 7, 1) });
    let blocks = [
        BlockSpec::new(vec![identity, LayerSpec { skip: 1, ..identity }]),
        BlockSpec::new(vec![conv(down(3)), second]),
        BlockSpec::layer(head),
    ];
    let mut net = with_blocks(mixed_network(), blocks, "stage_four");
    net.input.shape = vec![256, 14, 14];
    net
}

/// A pair tile reading its writer's rows of groups hashes a link per group where one
/// reading rows of every channel hashes one: measured as if it read rows of every channel
/// (the links are not known before the plan), ResNet-18's stage 4 projection block fits
/// the budget in pair tiles that overflow it with the rows of groups its writer, a pair,
/// commits. The plan is made again measuring every candidate with its links: every fold
/// of the blocks within the budget, and the head, whole, measured with its links too.
#[test]
fn pair_tiles_are_measured_with_the_links_their_writer_gives_them() {
    use fold_ml::prove::plan::{architectures, step_constraints, tile_cost, NOVA_PRIMARY_OVERHEAD};
    use fold_ml_circuits::cost::StepCost;
    let net = stage_four_network();
    net.check().expect("a valid network");
    let budget = 600_000;
    let archs = architectures(&net, None, Some(budget));
    let tilings: Vec<_> = archs.iter().map(|a| a.tiling).collect();
    let (body, input) = (&net.segments[1].spec, archs[1].block.links[0]);
    assert!(matches!(input, Links::RowGroups(_)), "{tilings:?}: {input:?}");
    let cost = |input: Links, t: Tiling| tile_cost(&body.clone().with_links([input, t.output_links(body)]), t);
    let cost = |input, t| cost(input, t).unwrap().constraints;
    let fits = |input: Links, g: usize| cost(input, Tiling::Pair(g)) <= budget;
    let trap = [8, 4, 2].into_iter().find(|&g| fits(Links::Rows, g) && !fits(input, g));
    assert!(trap.is_some(), "a pair tile that fits only reading rows of every channel");
    // every tile of the blocks within the budget
    assert_tiles_within(&archs[..2], budget);
    // The head (75,264 weights: over the budget whatever reads them) reads the rows of
    // groups its writer commits, a hash per row of a group: measured so, its whole step
    // (1.40M) is tiled after all, by channels (0.96M): planned whole, it was measured
    // reading its input whole (0.91M).
    let (head, head_input) = (&archs[2], archs[1].block.links[1]);
    assert_eq!(head.block.links[0], head_input);
    let whole = StepCost::of_step(&net.segments[2].spec.clone().with_links([head_input, Links::Whole]), 1);
    let tiled = step_constraints(head) - NOVA_PRIMARY_OVERHEAD;
    assert!(matches!(tilings[2], Some(Tiling::Channels(_))), "{tilings:?}");
    assert!(tiled > budget && tiled < whole.constraints, "{tiled} vs {}", whole.constraints);
}

/// ResNet-20's third stage at 32×32 as imported (block shapes and requantizations of
/// `examples/resnet20` trained at `--size 32`): its projection block (3×3 32→64 stride 2
/// on 16×16, 3×3 64→64 on 8×8, a 1×1 projection), an identity block, the last block
/// averaged globally, and the dense classifier 64→10.
fn stage_three_network() -> Network {
    let conv = |c: ConvShape, shift, acc| LayerSpec::new(LinearShape::Conv(c), RequantSpec::new(shift, acc).unwrap());
    let same = || ConvShape::same(64, 64, 8, 8, 3);
    let down = |kernel| ConvShape { stride: [2, 2], ..ConvShape::same(32, 64, 16, 16, kernel) };
    let projection = LayerSpec { projection: Some(down(1)), ..conv(same(), 7, 20) };
    let mut last = LayerSpec { skip: 1433, ..conv(same(), 11, 22) };
    last.pool = Some(Pool::global(PoolKind::Average, same().output_dims()));
    let classifier = LinearShape::Dense(DenseShape { inputs: 64, outputs: 10 });
    let blocks = [
        BlockSpec::new(vec![conv(down(3), 8, 21), projection]),
        BlockSpec::new(vec![conv(same(), 9, 22), LayerSpec { skip: 715, ..conv(same(), 10, 22) }]),
        BlockSpec::new(vec![conv(same(), 9, 22), last]),
        BlockSpec::layer(LayerSpec::new(classifier, RequantSpec::new(9, 20).unwrap())),
    ];
    let mut net = mixed_network();
    net.segments.push(net.segments[2].clone());
    fill_blocks(&mut net, blocks);
    for (j, segment) in net.segments.iter_mut().enumerate() {
        segment.origin = vec![format!("block{j}"); segment.spec.num_stages()];
    }
    net.name = "stage_three".into();
    net.input.shape = vec![32, 16, 16];
    net
}

/// ResNet-20's last block (a pair averaged globally) behind an identity block tiled by
/// channels cannot read that block's groups as a pair: it falls back to groups of channels
/// alone (reading the whole tensor) rather than to row tiles of 961,410 constraints, and
/// that plan is estimated no slower than the one where both blocks take the stem's rows of
/// groups as pairs.
#[test]
fn a_pooled_pair_behind_a_channel_tiled_block_falls_back_to_channels_not_rows() {
    use fold_ml::architecture::Architecture;
    use fold_ml::prove::plan::{architectures, links, plan_seconds, set_links, step_constraints};
    use fold_ml::prove::plan::{DEFAULT_FOLD_BUDGET, NOVA_PRIMARY_OVERHEAD};
    let net = stage_three_network();
    net.check().expect("a valid network");
    let archs = architectures(&net, None, None);
    let tilings: Vec<_> = archs.iter().map(|a| a.tiling).collect();
    let Some(Tiling::Pair(g)) = tilings[0] else { panic!("the projection block is a pair: {tilings:?}") };
    assert!(matches!(tilings[1], Some(Tiling::Channels(_))), "{tilings:?}");
    assert!(matches!(tilings[2], Some(Tiling::Channels(_))), "the last block reads channels: {tilings:?}");
    assert_tiles_within(&archs[..3], DEFAULT_FOLD_BUDGET);
    // the alternative: both blocks pairs in the stem's groups (what the planner chose before)
    let mut pairs = archs.clone();
    for j in [1, 2] {
        pairs[j] = Architecture::pair_tiled(net.segments[j].spec.clone(), g);
    }
    let found = links(&pairs, &[1; 4]).expect("pairs in one set of groups link");
    set_links(&mut pairs, &found);
    assert_tiles_within(&pairs[..3], DEFAULT_FOLD_BUDGET);
    let seconds = |archs: &[Architecture]| {
        let sizes: Vec<usize> = archs.iter().map(|a| step_constraints(a) - NOVA_PRIMARY_OVERHEAD).collect();
        plan_seconds(&net, archs, &sizes)
    };
    let (chosen, alternative) = (seconds(&archs), seconds(&pairs));
    assert!(chosen <= alternative, "chosen {chosen:.1} s vs pairs {alternative:.1} s");
}

/// Every fold of the tiled segments `archs`, measured with its links, is within `budget`.
fn assert_tiles_within(archs: &[fold_ml::architecture::Architecture], budget: usize) {
    use fold_ml::prove::plan::{step_constraints, NOVA_PRIMARY_OVERHEAD};
    let tilings: Vec<_> = archs.iter().map(|a| a.tiling).collect();
    let sizes: Vec<usize> = archs.iter().map(|a| step_constraints(a) - NOVA_PRIMARY_OVERHEAD).collect();
    assert!(tilings.iter().all(Option::is_some), "{tilings:?}");
    assert!(sizes.iter().all(|&c| c <= budget), "{tilings:?}: {sizes:?} over {budget}");
}

/// When nothing fits the budget, the network's peak is its largest fold whatever the other
/// segments do: a segment over the budget then takes the fastest tiling under that fold,
/// not its smallest tile (which re-reads its input in many more folds). `wide_network` at
/// 10,000: the first plan tiles the stem in one-row tiles and the block as pairs of grids
/// of 8 channels (its smallest tile); planned again under the largest of those folds, the
/// stem is proven whole and the block in far fewer channel tiles.
#[test]
fn segments_over_the_budget_take_the_fastest_tiling_under_the_largest_fold() {
    use fold_ml::prove::plan::{architectures, step_constraints, tiling, Groups};
    use fold_ml_circuits::cost::StepCost;
    let net = wide_network();
    let budget = 10_000;
    let archs = architectures(&net, None, Some(budget));
    let sizes: Vec<usize> = archs.iter().map(step_constraints).collect();
    let largest = *sizes.iter().max().unwrap();
    let body = &net.segments[1].spec;
    let smallest = tiling(body, StepCost::of_step(body, 2).constraints, (budget, Groups::Any), (1, Links::Rows));
    let (chosen, smallest) = (archs[1].tiling.unwrap(), smallest.unwrap());
    assert_eq!(smallest, Tiling::Pair(8), "the block's smallest tile");
    assert!(chosen.tiles(body) < smallest.tiles(body), "{chosen:?} vs the smallest tile {smallest:?}");
    assert!(sizes[1] <= largest, "{sizes:?}");
    // `inspect` plans the same and says why the tiles are over the budget
    let file = scratch().join("over-budget.foldml");
    net.write(&file).unwrap();
    let (code, out, err) = fold_ml(&["inspect", "--model", file.to_str().unwrap(), "--fold-budget", "10000"]);
    assert_eq!(code, 0, "{err}");
    let largest_step = largest - fold_ml::prove::plan::NOVA_PRIMARY_OVERHEAD;
    assert!(out.contains(&format!("the largest step ({largest_step} constraints) sets the peak memory")), "{out}");
    // and what one proof would cost: the multiplexed circuit is at least its distinct steps
    let mut distinct: Vec<_> = archs.iter().zip(&sizes).collect();
    distinct.dedup_by(|a, b| a.0 == b.0);
    let sum: usize = distinct.iter().map(|(_, &c)| c - fold_ml::prove::plan::NOVA_PRIMARY_OVERHEAD).sum();
    let line = out.lines().find(|l| l.contains("one proof instead")).expect("the one-proof line");
    let counted: usize = line.split(": ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!(counted > sum && counted < sum + 1000, "{sum} vs {line}");
}

/// conv 1→4 on 16×16; a residual block of two convs 4→4 whose output is averaged
/// globally (tiled: the means run through the tiles); a dense head 4→3.
fn pooled_network() -> Network {
    let mut net = mixed_network();
    let conv = || ConvShape::same(4, 4, 16, 16, 3);
    let first = LayerSpec::new(LinearShape::Conv(conv()), RequantSpec::new(5, 18).unwrap());
    let mut second =
        LayerSpec { skip: 2, ..LayerSpec::new(LinearShape::Conv(conv()), RequantSpec::new(5, 18).unwrap()) };
    second.pool = Some(Pool::global(PoolKind::Average, conv().output_dims()));
    let head =
        LayerSpec::new(LinearShape::Dense(DenseShape { inputs: 4, outputs: 3 }), RequantSpec::new(4, 18).unwrap());
    let layer = |spec: &LayerSpec, s: u64| LayerWeights {
        weights: weights(spec.shape.num_weights(), s, 6),
        bias: (0..spec.shape.num_biases() as i32).map(|b| 40 + 3 * b).collect(),
    };
    let (block, head_block) = (BlockSpec::new(vec![first, second]), BlockSpec::layer(head));
    net.segments[1] =
        Segment { spec: block, layers: vec![layer(&first, 2), layer(&second, 4)], origin: vec!["block".into(); 2] };
    net.segments[2] = Segment { spec: head_block, layers: vec![layer(&head, 3)], origin: vec!["head".into()] };
    net
}

#[test]
fn a_tiled_block_ending_in_global_pooling_hands_its_means_over() {
    use fold_ml_circuits::cost::StepCost;
    let net = pooled_network();
    net.check().expect("a valid network");
    let cost = |j: usize| StepCost::of_step(&net.segments[j].spec, net.segments[j].spec.num_stages()).constraints;
    let budget = cost(0).max(cost(2)) + 1;
    assert!(cost(1) > budget, "the block is over the budget: {} vs {budget}", cost(1));
    let input: Vec<u8> = (0..256).map(|i| (i * 37 % 128) as u8).collect();
    let (dir, s) = prove_under(&net, "pooled", &input, budget);
    let archs: Vec<_> = s.segments.iter().map(|g| &g.architecture).collect();
    assert_eq!(archs.iter().map(|a| a.tile_rows().is_some()).collect::<Vec<_>>(), [false, true, false]);
    assert!(archs[1].tiles() >= 2, "the pooled block is cut into tiles");
    let links: Vec<[bool; 2]> = archs.iter().map(|a| a.block.links.map(|l| l == Links::Rows)).collect();
    assert_eq!(links, [[false, true], [true, true], [true, false]]);
    let out = assert_native_statement(&net, &input, &dir, &s);
    assert!(out.iter().any(|&v| v > 0), "a live output: {out:?}");
}

#[test]
fn a_network_sharded_at_its_segments_and_inside_its_residual_run_is_the_same_statement() {
    use fold_ml::job::shards::{assemble::assemble, plan::plan, prove::prove_shard};
    let net = tiny_network(0);
    let file = scratch().join("sharded.foldml");
    net.write(&file).unwrap();
    let dir = scratch().join("sharded");
    let req = JobRequest { layers_per_step: Some(2), ..request(&net, &file, input()) };
    let planned = plan(&dir, &req, 4).expect("planned").plan;
    let cuts: Vec<(usize, usize, usize)> = planned.shards.iter().map(|s| (s.segment, s.first, s.layers)).collect();
    assert_eq!(cuts, [(0, 0, 1), (1, 0, 2), (1, 2, 1), (2, 0, 1)], "the residual run of 3 cut after its first step");
    for i in [3, 1, 0, 2] {
        prove_shard(&dir, i, &cache(), &mut |_| {}).expect("the shard proves");
    }
    assemble(&dir, &cache()).expect("assembled");
    let s = verdict(&dir).expect("accepted");
    assert_eq!(s.segments.iter().map(|g| g.num_layers).collect::<Vec<_>>(), [1, 2, 1, 1]);
    let out = net.run_native(&input()).unwrap();
    assert_eq!(s.output.values.as_deref(), Some(&out[..]));
    assert_eq!(s.output.class, Some(argmax(&out)));
    assert_eq!(s.model_commitment, fold_ml::model::model_commitment(&net));
}

#[test]
fn a_model_file_reads_back_and_a_damaged_one_is_refused() {
    // model files are written and read streamed, never held whole
    let net = tiny_network(5);
    let file = scratch().join("streamed.foldml");
    net.write(&file).unwrap();
    assert_eq!(Network::read(&file).unwrap(), net);
    let bytes = std::fs::read(&file).unwrap();
    let damaged = scratch().join("damaged.foldml");
    for (what, b, says) in [
        (
            "a payload byte",
            {
                let mut b = bytes.clone();
                let n = b.len();
                b[n - 9] ^= 1;
                b
            },
            "checksum",
        ),
        ("truncated", bytes[..bytes.len() - 1].to_vec(), "truncated"),
    ] {
        std::fs::write(&damaged, b).unwrap();
        let err = Network::read(&damaged).expect_err(what).to_string();
        assert!(err.contains("damaged.foldml") && err.contains(says), "{what}: {err}");
    }
}
