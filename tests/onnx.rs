//! ONNX import: the graph walk and float executor against tract, the quantized networks'
//! accuracy against tract, the segments they fold as, and the rejections.
//!
//! Fixtures: `tests/fixtures/onnx/*.onnx` (made by `make_fixtures.py` beside them) and the
//! digits models of `examples/digits/` (made by `train.py` there).

use ff::Field;
use fold_ml::model::network::Network;
use fold_ml::model::onnx::graph::FloatShortcut;
use fold_ml::model::onnx::{self, float, graph, quantize, FloatLayer, FloatLayers, TractModel};
use fold_ml::{Error, F};
use fold_ml_circuits::gadgets::conv::ConvShape;
use fold_ml_circuits::gadgets::linear::LinearShape;
use fold_ml_circuits::gadgets::pool::PoolKind;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};

/// Every fixture of a supported model.
const FIXTURES: &[&str] = &[
    "conv",
    "conv_bn",
    "conv_5x5",
    "gemm",
    "matmul_add",
    "residual",
    "maxpool",
    "avgpool",
    "flatten_gemm",
    "reshape_gemm",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx").join(format!("{name}.onnx"))
}

/// `count` inputs of `len` values uniform in `[0, 1)`, from a fixed seed.
fn uniform_inputs(seed: u64, count: usize, len: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(|_| (0..len).map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32).collect()).collect()
}

fn salt() -> Option<F> {
    Some(F::from(7u64))
}

/// Calibration seed; the accuracy inputs use another one.
const CALIBRATION_SEED: u64 = 1;
const TEST_SEED: u64 = 2;

#[test]
fn float_executor_matches_tract_on_every_fixture() {
    for name in FIXTURES {
        let path = fixture(name);
        let model = onnx::read_float_model(&path).unwrap();
        let tract = TractModel::load(&path, &model.input_shape).unwrap();
        for x in uniform_inputs(TEST_SEED, 8, model.num_inputs()) {
            let ours = float::outputs(&model, &x).unwrap();
            let theirs = tract.run(&x).unwrap();
            assert_eq!(ours.len(), theirs.len(), "{name}");
            let scale = theirs.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (a, b) in ours.iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-4 * scale, "{name}: ours {a} vs tract {b}");
            }
        }
    }
}

#[test]
fn quantized_fixtures_follow_tract() {
    for name in FIXTURES {
        let path = fixture(name);
        let model = onnx::read_float_model(&path).unwrap();
        let calibration = uniform_inputs(CALIBRATION_SEED, 32, model.num_inputs());
        let (network, _) = onnx::import(&path, &calibration, salt()).unwrap();
        network.check().unwrap();
        let inputs = uniform_inputs(TEST_SEED, 64, model.num_inputs());
        let report = onnx::accuracy(&network, &path, &inputs).unwrap();

        // Split the error: outputs the activations can represent, and those past the
        // representable range [-zero_point, 127 - zero_point] steps (held-out inputs go
        // beyond the calibration maximum and clip; no scheme can follow them there).
        let tract = TractModel::load(&path, &model.input_shape).unwrap();
        let s = network.output.scale;
        let zp = f32::from(network.output.zero_point);
        let (lo, hi) = (-zp * s, (127.0 - zp) * s);
        let (mut in_range, mut excess, mut overall) = (0.0f32, 0.0f32, 0.0f32);
        for x in &inputs {
            let want = tract.run(x).unwrap();
            let got = network.dequantize_output(&network.run_native(&network.quantize_input(x).unwrap()).unwrap());
            for (w, g) in want.iter().zip(&got) {
                let err = (w - g).abs();
                overall = overall.max(err);
                if (lo..=hi).contains(w) {
                    in_range = in_range.max(err);
                } else {
                    excess = excess.max(w - hi).max(lo - w);
                }
            }
        }
        assert_eq!(overall, report.max_logit_error, "{name}");
        println!(
            "{name:>13}: top-1 {:.3}; max error {:.4} = {:.2} steps of {s:.4}, {:.2} steps where representable; \
             clipped up to {:.2} steps",
            report.top1_agreement,
            report.max_logit_error,
            report.max_logit_error / s,
            in_range / s,
            excess / s
        );
        // Each layer rounds its output to half a step and its weights to half a weight step;
        // these one- and two-layer models compound that (and the clipping of a hidden layer
        // past its calibrated maximum) to a few output steps. Bound: 4 steps plus 2% of the
        // 127-step range where the output is representable; past it, plus the clipped
        // excess. Measured: see the printed table. A wrong scale, layout or bias offset
        // gives errors of tens of steps.
        let bound = 4.0 * s + 0.02 * 127.0 * s;
        assert!(in_range <= bound, "{name}: {in_range} > {bound} where representable");
        assert!(report.max_logit_error <= bound + excess, "{name}: {report}, bound {bound} + {excess}");
    }
}

/// A residual layer's scales grow by exactly `2^shift / skip`.
fn assert_growth(r: &quantize::LayerReport) {
    let growth = f64::from(1u32 << r.shift) / f64::from(r.skip);
    assert!((r.output_scale / r.input_scale / growth - 1.0).abs() < 1e-12, "{r:?}");
}

/// A segment's layer count, whether it is residual, and its pooling.
type SegmentShape = (usize, bool, Option<PoolKind>);

/// (fixture, [(layers, skip ≠ 0, pool)] per segment).
#[test]
fn fixtures_fold_as_the_expected_segments() {
    let expected: &[(&str, &[SegmentShape])] = &[
        ("conv", &[(1, false, None)]),
        ("conv_bn", &[(1, false, None)]),
        ("conv_5x5", &[(1, false, None), (1, false, None)]),
        ("gemm", &[(1, false, None), (1, false, None)]),
        ("matmul_add", &[(1, false, None), (1, false, None)]),
        ("residual", &[(1, false, None), (1, true, None)]),
        ("maxpool", &[(1, false, Some(PoolKind::Max))]),
        ("avgpool", &[(1, false, Some(PoolKind::Average))]),
        ("flatten_gemm", &[(1, false, None), (1, false, None)]),
        ("reshape_gemm", &[(1, false, None), (1, false, None)]),
    ];
    for (name, segments) in expected {
        let path = fixture(name);
        let model = onnx::read_float_model(&path).unwrap();
        let (network, report) =
            onnx::import(&path, &uniform_inputs(CALIBRATION_SEED, 8, model.num_inputs()), salt()).unwrap();
        let got: Vec<_> = network
            .segments
            .iter()
            .map(|s| (s.layers.len(), s.spec.stages[0].skip != 0, s.spec.stages[0].pool.map(|p| p.kind)))
            .collect();
        assert_eq!(&got, segments, "{name}");
        // the last layer gives signed logits unless it ends in a Relu
        let relu_last = model.layers.last().unwrap().relu;
        assert_eq!(network.output.zero_point, if relu_last { 0 } else { 64 }, "{name}");
        for (seg, r) in network.segments.iter().zip(&report.layers) {
            assert_eq!(r.shift, seg.spec.stages[0].requant.shift());
            if seg.spec.stages[0].skip != 0 {
                // the residual term is exact: the output scale is the input scale · 2^shift / skip
                assert_eq!(r.skip, seg.spec.stages[0].skip);
                assert_growth(r);
            }
        }
    }
}

#[test]
fn residual_fixture_has_the_expected_structure() {
    let model = onnx::read_float_model(&fixture("residual")).unwrap();
    let [stem, block] = model.layers.as_slice() else { panic!("two layers expected") };
    assert!(stem.relu && stem.shortcut.is_none());
    assert!(block.relu && block.shortcut == Some(FloatShortcut { back: 0, projection: None }));
    assert_eq!(block.origin, ["res_conv", "res_add", "res_relu"]);
}

/// A model of identical residual blocks and a plain run folds as one segment per run.
#[test]
fn identical_blocks_fold_as_one_segment() {
    let conv = |c_in: usize, c_out: usize, residual: bool, seed: u64| {
        let kind = LinearShape::Conv(ConvShape::same(c_in, c_out, 4, 4, 3));
        let n = c_out * c_in * 9;
        let weights = uniform_inputs(seed, 1, n).remove(0).into_iter().map(|v| (v - 0.5) * 0.3).collect();
        let bias = uniform_inputs(seed + 100, 1, c_out).remove(0).into_iter().map(|v| (v - 0.5) * 0.1).collect();
        let shortcut = residual.then_some(FloatShortcut { back: 0, projection: None });
        FloatLayer {
            kind,
            weights,
            bias,
            relu: true,
            cap: None,
            shortcut,
            pool: None,
            origin: vec![format!("conv{seed}")],
        }
    };
    let mut layers = vec![conv(1, 4, false, 0)];
    layers.extend((1..=3).map(|i| conv(4, 4, true, i)));
    layers.extend((4..=5).map(|i| conv(4, 4, false, i)));
    let model = FloatLayers { input_shape: vec![1, 4, 4], layers };
    let calibration = uniform_inputs(CALIBRATION_SEED, 16, 16);
    let (network, report) = quantize::quantize(&model, Path::new("blocks.onnx"), &calibration, F::ONE).unwrap();
    let sizes: Vec<_> = network.segments.iter().map(|s| s.layers.len()).collect();
    assert_eq!(sizes, [1, 3, 2]);
    assert_eq!(network.name, "blocks");
    // the blocks' scales grow geometrically from the stem's output scale
    assert_eq!(report.layers[1].input_scale, report.layers[0].output_scale);
    report.layers[1..4].iter().for_each(assert_growth);
    // the plain run shares one output scale
    assert_eq!(report.layers[4].output_scale, report.layers[5].output_scale);
    // the quantized network follows the float one to a few steps per layer
    for x in uniform_inputs(TEST_SEED, 8, 16) {
        let want = float::outputs(&model, &x).unwrap();
        let got = network.dequantize_output(&network.run_native(&network.quantize_input(&x).unwrap()).unwrap());
        let err = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err <= 8.0 * network.output.scale, "error {err}, scale {}", network.output.scale);
    }
}

#[test]
fn unsupported_operator_is_named_before_any_work() {
    let err = onnx::import(&fixture("unsupported"), &[], salt()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Onnx { .. }), "{msg}");
    assert!(msg.contains("unsupported operator Sigmoid (node \"my_sigmoid\", #2 of 4)"), "{msg}");
    assert!(msg.contains("fold-ml supports Conv, Gemm"), "{msg}");
}

#[test]
fn non_finite_calibration_input_is_rejected() {
    let path = fixture("conv");
    let mut calibration = uniform_inputs(CALIBRATION_SEED, 4, 72);
    calibration[2][5] = f32::NAN;
    let err = onnx::import(&path, &calibration, salt()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Base(fold_ml_verify::Error::BadInput { .. })), "{msg}");
    assert!(msg.contains("calibration input 2") && msg.contains("index 5 is not a finite number"), "{msg}");
    // and an input of the wrong length, and no input at all
    assert!(onnx::import(&path, &[vec![0.5; 71]], salt()).unwrap_err().to_string().contains("has 71 values"));
    assert!(matches!(onnx::import(&path, &[], salt()), Err(Error::Base(fold_ml_verify::Error::BadInput { .. }))));
}

#[test]
fn imported_model_round_trips_through_the_model_file() {
    let path = fixture("residual");
    let (network, _) = onnx::import(&path, &uniform_inputs(CALIBRATION_SEED, 8, 32), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("residual.model");
    network.write(&file).unwrap();
    assert_eq!(Network::read(&file).unwrap(), network);
    assert_eq!(network.name, "residual");
}

#[test]
fn inputs_files_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let many = dir.path().join("many.json");
    std::fs::write(&many, r#"{"inputs": [[0, 0.5, 1], [1, 2, 3]], "labels": [1, 2]}"#).unwrap();
    assert_eq!(onnx::read_inputs(&many).unwrap(), vec![vec![0.0, 0.5, 1.0], vec![1.0, 2.0, 3.0]]);
    let one = dir.path().join("one.json");
    std::fs::write(&one, "[0.25, 4]").unwrap();
    assert_eq!(onnx::read_inputs(&one).unwrap(), vec![vec![0.25, 4.0]]);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"images": [[1]]}"#).unwrap();
    assert!(matches!(onnx::read_inputs(&bad), Err(Error::Base(fold_ml_verify::Error::BadInput { .. }))));
    std::fs::write(&bad, "[1e39]").unwrap();
    assert!(onnx::read_inputs(&bad).unwrap_err().to_string().contains("not a finite"));
}

/// Imports `examples/<example>/<model>` with the example's calibration file and measures
/// its agreement with tract on the held-out `test.json`, after checking that tract agrees
/// with the predictions PyTorch recorded there under `key`.
fn example_agreement(
    example: &str,
    model: &str,
    key: &str,
) -> (fold_ml::model::network::Network, onnx::AccuracyReport) {
    let file = |f: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example).join(f);
    let path = file(model);
    let calibration = onnx::read_inputs(&file("calib.json")).unwrap();
    let test = onnx::read_inputs(&file("test.json")).unwrap();
    let (network, report) = onnx::import(&path, &calibration, salt()).unwrap();
    let accuracy = onnx::accuracy(&network, &path, &test).unwrap();
    println!("{model}: {} segments, {} layers\n{report}\n{accuracy}", network.segments.len(), network.num_layers());

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(file("test.json")).unwrap()).unwrap();
    let torch: Vec<u64> = json[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let tract = TractModel::load(&path, &network.input.shape).unwrap();
    let same = test
        .iter()
        .zip(&torch)
        .filter(|(x, &p)| fold_ml::model::network::argmax(&tract.run(x).unwrap()) as u64 == p)
        .count();
    assert_eq!(same, test.len(), "tract and PyTorch disagree on {} inputs", test.len() - same);
    (network, accuracy)
}

#[test]
fn digits_cnn_agrees_with_its_float_model() {
    let (_, accuracy) = example_agreement("digits", "cnn.onnx", "cnn_float_predictions");
    assert_eq!(accuracy.inputs, 360);
    assert!(accuracy.top1_agreement >= 0.97, "{accuracy}");
}

#[test]
fn digits_resnet64_agrees_with_its_float_model() {
    let (_, accuracy) = example_agreement("digits", "resnet64.onnx", "resnet64_float_predictions");
    assert!(accuracy.top1_agreement >= 0.97, "{accuracy}");
}

/// LeNet-5 as torch exports it (valid second conv, max pools, three dense layers) on an
/// MNIST-normalized, signed input.
/// Constraints and MACs of one step of each segment.
fn step_costs(network: &fold_ml::model::network::Network) -> (Vec<usize>, Vec<usize>) {
    let cost: Vec<_> = network
        .segments
        .iter()
        .map(|s| fold_ml_circuits::cost::StepCost::of_step(&s.spec, s.spec.num_stages()))
        .collect();
    (cost.iter().map(|c| c.constraints).collect(), cost.iter().map(|c| c.macs).collect())
}

#[test]
fn lenet5_agrees_with_its_float_model() {
    let (network, accuracy) = example_agreement("lenet5", "lenet5.onnx", "float_predictions");
    assert_eq!(accuracy.inputs, 360);
    assert!(accuracy.top1_agreement >= 0.98, "{accuracy}");
    assert!(network.input.zero_point > 0, "the normalized input is signed");
    let shapes: Vec<_> = network.segments.iter().map(|s| s.spec.num_outputs()).collect();
    assert_eq!(shapes, [6 * 14 * 14, 16 * 5 * 5, 120, 84, 10]);
    // Constraints per layer step (pinned: `fold-ml inspect --model lenet5.foldml`). The dense
    // layers pay 8 range-check constraints per weight (each weight is used once); their
    // products pack 7 outputs per shared input.
    let (constraints, macs) = step_costs(&network);
    assert_eq!(constraints, [166_577, 122_855, 457_844, 102_307, 10_260]);
    assert_eq!(macs, [107_736, 240_000, 48_000, 10_080, 840]);
}

/// The CIFAR-shaped ResNet-20 (`examples/resnet20/train.py`, at the digits' native 3×8×8):
/// every basic block one step, projection shortcuts at the stage transitions.
#[test]
fn resnet20_agrees_with_its_float_model() {
    let (network, accuracy) = example_agreement("resnet20", "resnet20.onnx", "float_predictions");
    assert_eq!(accuracy.inputs, 360);
    assert!(accuracy.top1_agreement >= 0.98, "{accuracy}");
    assert!(network.input.zero_point > 0, "the normalized input is signed");
    assert_eq!(network.num_layers(), 20, "19 convolutions (2 per block, 9 blocks, and the stem) and the classifier");
    let blocks: Vec<_> = network.segments.iter().map(|s| (s.spec.num_stages(), s.layers.len())).collect();
    // stem; stage 1 (3 identical blocks); stage 2: projection block, 2 blocks; stage 3:
    // projection block, then the 2 blocks (their scales' growth differs, and the last one
    // ends in the global average pool); classifier
    assert_eq!(blocks, [(1, 1), (2, 6), (2, 2), (2, 4), (2, 2), (2, 2), (2, 2), (1, 1)]);
    let projections: Vec<_> =
        network.segments.iter().map(|s| s.spec.stages.last().unwrap().projection.is_some()).collect();
    assert_eq!(projections, [false, false, true, false, true, false, false, false]);
    // Constraints per step (pinned: `fold-ml inspect --model resnet20.foldml`). At 2×2 the
    // 64-channel blocks' 73,728 weights cost 8 range-check constraints each: far more than
    // their 131,072 multiply-accumulates, packed 7 to a product constraint.
    let (constraints, macs) = step_costs(&network);
    assert_eq!(constraints, [34_330, 144_306, 197_645, 238_974, 583_374, 740_790, 740_941, 8_381]);
    assert_eq!(macs, [23_232, 247_808, 172_544, 204_800, 124_928, 131_072, 131_072, 640]);
    // Every fold of the default plan fits the default budget. The last block (averaged
    // globally) would tile best as a pair, which reads rows of its groups; its writer is
    // tiled by channels, so it is tiled by channels too (it was left whole, 740,941, when a
    // segment that could not be linked fell back to rows only).
    use fold_ml::prove::plan::{architectures, step_constraints, DEFAULT_FOLD_BUDGET, NOVA_PRIMARY_OVERHEAD};
    let archs = architectures(&network, None, None);
    for (j, a) in archs.iter().enumerate() {
        let c = step_constraints(a) - NOVA_PRIMARY_OVERHEAD;
        assert!(c <= DEFAULT_FOLD_BUDGET, "segment {j}: {:?} {c}", a.tiling);
    }
    assert_eq!(archs[6].tiling, Some(fold_ml_circuits::step::Tiling::Channels(8)));
}

// ---- graph walk rejections, on small graphs built here -------------------------------

mod onnx_build;
use onnx_build as build;

fn conv_node(name: &str, input: &str, attrs: Vec<tract_onnx::pb::AttributeProto>) -> tract_onnx::pb::NodeProto {
    build::node("Conv", name, &[input, &format!("{name}.w")], attrs)
}

fn parse_err(m: &tract_onnx::pb::ModelProto) -> String {
    graph::parse(m).unwrap_err().to_string()
}

#[test]
fn unsupported_configurations_are_rejected_with_the_node() {
    use build::*;
    let w = |name: &str, co: i64, ci: i64, k: i64| tensor(&format!("{name}.w"), &[co, ci, k, k]);
    let same = || vec![ints("pads", &[1, 1, 1, 1])];

    // a well-formed conv-relu-conv-relu is accepted (the reference for the edits below)
    let ok = model(
        &[1, 1, 4, 4],
        vec![
            conv_node("c1", "input", same()),
            node("Relu", "r1", &["c1_out"], vec![]),
            conv_node("c2", "r1_out", same()),
        ],
        vec![w("c1", 2, 1, 3), w("c2", 2, 2, 3)],
    );
    assert_eq!(graph::parse(&ok).unwrap().layers.len(), 2);

    let dilated =
        model(&[1, 1, 6, 6], vec![conv_node("c1", "input", vec![ints("dilations", &[2, 2])])], vec![w("c1", 2, 1, 3)]);
    let msg = parse_err(&dilated);
    assert!(msg.contains("Conv (node \"c1\", #1 of 1)") && msg.contains("dilations"), "{msg}");

    let thick_padding =
        model(&[1, 1, 4, 4], vec![conv_node("c1", "input", vec![ints("pads", &[3, 0, 0, 0])])], vec![w("c1", 2, 1, 3)]);
    assert!(parse_err(&thick_padding).contains("not thinner than the 3×3 kernel"), "{}", parse_err(&thick_padding));

    let bad_groups = model(
        &[1, 3, 4, 4],
        vec![conv_node("c1", "input", vec![int("group", 2)])],
        vec![tensor("c1.w", &[2, 1, 3, 3])],
    );
    assert!(parse_err(&bad_groups).contains("in 2 group(s); the input has 3"), "{}", parse_err(&bad_groups));

    // a hidden layer without a Relu is accepted: its outputs are signed
    let no_relu = model(
        &[1, 1, 4, 4],
        vec![conv_node("c1", "input", same()), conv_node("c2", "c1_out", same())],
        vec![w("c1", 2, 1, 3), w("c2", 2, 2, 3)],
    );
    let layers = graph::parse(&no_relu).unwrap().layers;
    assert_eq!(layers.iter().map(|l| l.relu).collect::<Vec<_>>(), [false, false]);
    // a Clip other than (0, max) is not a ReLU
    let mut clipped = no_relu.clone();
    let g = clipped.graph.as_mut().unwrap();
    g.node.insert(1, build::node("Clip", "clip", &["c1_out", "lo", "hi"], vec![]));
    g.node[2].input[0] = "clip_out".into();
    let mut lo = build::tensor("lo", &[]);
    lo.float_data = vec![-1.0];
    let mut hi = build::tensor("hi", &[]);
    hi.float_data = vec![6.0];
    g.initializer.extend([lo, hi]);
    let msg = parse_err(&clipped);
    assert!(msg.contains("Clip (node \"clip\", #2 of 3)") && msg.contains("Clip(x, 0, max)"), "{msg}");

    let pool_first = model(
        &[1, 1, 4, 4],
        vec![node("MaxPool", "p", &["input"], vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])])],
        vec![],
    );
    assert!(parse_err(&pool_first).contains("MaxPool (node \"p\", #1 of 1): MaxPool must directly follow"));

    let pooled = |attrs: Vec<tract_onnx::pb::AttributeProto>| {
        model(
            &[1, 1, 4, 4],
            vec![
                conv_node("c1", "input", same()),
                node("Relu", "r1", &["c1_out"], vec![]),
                node("AveragePool", "p", &["r1_out"], attrs),
            ],
            vec![w("c1", 2, 1, 3)],
        )
    };
    let ceil = pooled(vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2]), int("ceil_mode", 1)]);
    assert!(parse_err(&ceil).contains("ceil_mode = 1 is not supported"), "{}", parse_err(&ceil));
    let counted = pooled(vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1]), int("count_include_pad", 1)]);
    assert!(parse_err(&counted).contains("count_include_pad = 1"), "{}", parse_err(&counted));

    // Add(input, Conv(Relu(Conv(input)))) is a two-layer residual block ...
    let block = |added: &str| {
        model(
            &[1, 2, 4, 4],
            vec![
                conv_node("c1", "input", same()),
                node("Relu", "r1", &["c1_out"], vec![]),
                conv_node("c2", "r1_out", same()),
                node("Add", "add", &[added, "c2_out"], vec![]),
                node("Relu", "r2", &["add_out"], vec![]),
            ],
            vec![w("c1", 2, 2, 3), w("c2", 2, 2, 3)],
        )
    };
    let layers = graph::parse(&block("input")).unwrap().layers;
    assert_eq!(layers[1].shortcut.as_ref().map(|s| (s.back, s.projection.is_none())), Some((1, true)));
    // ... but Add(Conv(input), Conv(Relu(Conv(input)))) adds a tensor no layer reads
    let msg = parse_err(&block("c1_out"));
    assert!(msg.contains("Add (node \"add\", #4 of 5)") && msg.contains("input of a layer of its block"), "{msg}");

    // several unsupported operators are listed together
    let many =
        model(&[1, 4], vec![node("Sigmoid", "s", &["input"], vec![]), node("Tanh", "t", &["s_out"], vec![])], vec![]);
    let msg = parse_err(&many);
    assert!(msg.contains("Sigmoid (node \"s\", #1 of 2)") && msg.contains("Tanh (node \"t\", #2 of 2)"), "{msg}");
}

/// Weights and shapes given as `Constant` nodes (as torch exports them), with Identity and
/// Dropout in between: the walk reads them like initializers, and the float and quantized
/// models follow tract.
#[test]
fn constant_nodes_identity_and_dropout_are_understood() {
    use build::*;
    let mut shape = tensor("shape", &[2]);
    shape.data_type = tract_onnx::pb::tensor_proto::DataType::Int64 as i32;
    shape.float_data.clear();
    shape.int64_data = vec![1, -1];
    let nodes = vec![
        constant("cw", tensor("cw", &[3, 2, 3, 3])),
        constant("cb", tensor("cb", &[3])),
        node("Identity", "id", &["cw_out"], vec![]),
        node("Conv", "conv", &["input", "id_out", "cb_out"], vec![ints("pads", &[1, 1, 1, 1])]),
        node("Relu", "relu", &["conv_out"], vec![]),
        node("Dropout", "drop", &["relu_out"], vec![]),
        constant("shape", shape),
        node("Reshape", "flat", &["drop_out", "shape_out"], vec![]),
        constant("mw", tensor("mw", &[48, 5])),
        node("MatMul", "mm", &["flat_out", "mw_out"], vec![]),
        constant("mb", tensor("mb", &[5])),
        node("Add", "bias", &["mm_out", "mb_out"], vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("constants.onnx");
    std::fs::write(&path, prost::Message::encode_to_vec(&model(&[1, 2, 4, 4], nodes, vec![]))).unwrap();

    let float_model = onnx::read_float_model(&path).unwrap();
    let [conv, dense] = float_model.layers.as_slice() else { panic!("two layers expected") };
    assert_eq!(conv.origin, ["conv", "relu", "flat"]);
    // a MatMul of the flattened 3×4×4 image: a convolution whose kernel covers it (the
    // tensor keeps its rows, how a tiled neighbour commits it)
    let full = ConvShape { kernel: [4, 4], pads: [0; 4], ..ConvShape::same(3, 5, 4, 4, 1) };
    assert_eq!(dense.kind, LinearShape::Conv(full));
    assert_eq!(dense.origin, ["mm", "bias"]);
    let tract = TractModel::load(&path, &float_model.input_shape).unwrap();
    for x in uniform_inputs(TEST_SEED, 4, 32) {
        let (ours, theirs) = (float::outputs(&float_model, &x).unwrap(), tract.run(&x).unwrap());
        assert!(ours.iter().zip(&theirs).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs())), "{ours:?} {theirs:?}");
    }
    let (network, _) = onnx::import(&path, &uniform_inputs(CALIBRATION_SEED, 32, 32), salt()).unwrap();
    let report = onnx::accuracy(&network, &path, &uniform_inputs(TEST_SEED, 32, 32)).unwrap();
    println!("constants: {report}");
    assert!(report.top1_agreement >= 0.9, "{report}");
    assert!(report.max_logit_error <= 8.0 * network.output.scale, "{report}");
}
