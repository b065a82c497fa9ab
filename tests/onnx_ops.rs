//! The CNN operators beyond same-size convolutions — strides, valid and asymmetric padding,
//! rectangular kernels, groups (depthwise), overlapping and padded pooling, global average
//! pooling, a signed (normalized) input — on small graphs built here: the graph walk
//! imports them, the float executor follows tract (the independent reference), and the
//! quantized network follows tract within a few output steps.

mod onnx_build;

use fold_ml::model::onnx::{self, float, TractModel};
use fold_ml::F;
use fold_ml_circuits::gadgets::linear::LinearShape;
use onnx_build::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::path::Path;
use tract_onnx::pb::ModelProto;

/// `count` inputs of `len` values uniform in `[lo, lo + 1)`.
fn inputs(seed: u64, count: usize, len: usize, lo: f32) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(|_| (0..len).map(|_| lo + (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32).collect()).collect()
}

/// The float executor follows tract, and the quantized network follows it within a few
/// output steps (the bound of `tests/onnx.rs`'s fixtures).
fn follows_tract(dir: &Path, name: &str, m: &ModelProto, lo: f32) -> fold_ml::model::network::Network {
    let path = write(dir, name, m);
    let model = onnx::read_float_model(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let tract = TractModel::load(&path, &model.input_shape).unwrap();
    let n = model.num_inputs();
    for x in inputs(2, 8, n, lo) {
        let (ours, theirs) = (float::outputs(&model, &x).unwrap(), tract.run(&x).unwrap());
        assert_eq!(ours.len(), theirs.len(), "{name}");
        let scale = theirs.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() <= 1e-4 * scale, "{name}: ours {a} vs tract {b}");
        }
    }
    // Enough calibration inputs that held-out ones rarely pass a hidden layer's maximum.
    let (network, _) = onnx::import(&path, &inputs(1, 512, n, lo), Some(F::from(3u64))).unwrap();
    let report = onnx::accuracy(&network, &path, &inputs(2, 32, n, lo)).unwrap();
    // As for `tests/onnx.rs`'s fixtures: within 4 steps + 2% of the range where the output
    // is representable; held-out values past the calibrated maximum clip, and add only
    // their excess.
    let s = network.output.scale;
    let zp = f32::from(network.output.zero_point);
    let (lo_out, hi_out) = (-zp * s, (127.0 - zp) * s);
    let (mut in_range, mut excess) = (0.0f32, 0.0f32);
    for x in inputs(2, 32, n, lo) {
        let want = tract.run(&x).unwrap();
        let got = network.dequantize_output(&network.run_native(&network.quantize_input(&x).unwrap()).unwrap());
        for (w, g) in want.iter().zip(&got) {
            if (lo_out..=hi_out).contains(w) {
                in_range = in_range.max((w - g).abs());
            } else {
                excess = excess.max(w - hi_out).max(lo_out - w);
            }
        }
    }
    println!("{name:>10}: {report}; {:.2} steps where representable, clipped up to {:.2}", in_range / s, excess / s);
    let bound = 4.0 * s + 0.02 * 127.0 * s;
    assert!(in_range <= bound, "{name}: {in_range} > {bound} where representable");
    assert!(report.max_logit_error <= bound + excess, "{name}: {report}, bound {bound} + {excess}");
    network
}

#[test]
fn strided_valid_asymmetric_and_rectangular_convolutions() {
    let dir = tempfile::tempdir().unwrap();
    // 3×3 stride 2 pad 1 (ResNet's downsampling), then a 1×1 stride-2 projection.
    let strided = model(
        &[1, 2, 9, 9],
        vec![
            conv("c1", "input", vec![ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "r1", &["c1_out"], vec![]),
            conv("c2", "r1_out", vec![ints("strides", &[2, 2])]),
            node("Relu", "r2", &["c2_out"], vec![]),
        ],
        [conv_weights("c1", [4, 2, 3, 3], 1), conv_weights("c2", [3, 4, 1, 1], 2)].concat(),
    );
    let net = follows_tract(dir.path(), "strided", &strided, 0.0);
    let LinearShape::Conv(c) = net.segments[0].spec.stages[0].shape else { panic!() };
    assert_eq!((c.stride, c.output_dims()), ([2, 2], (4, 5, 5)));

    // LeNet-5's valid 5×5, a rectangular 3×1 kernel, and TensorFlow's asymmetric SAME.
    let valid = model(
        &[1, 1, 10, 8],
        vec![
            conv("c1", "input", vec![]),
            node("Relu", "r1", &["c1_out"], vec![]),
            conv("c2", "r1_out", vec![ints("pads", &[1, 0, 1, 0])]),
            node("Relu", "r2", &["c2_out"], vec![]),
            conv("c3", "r2_out", vec![ints("strides", &[2, 2]), string("auto_pad", "SAME_UPPER")]),
            node("Relu", "r3", &["c3_out"], vec![]),
        ],
        [conv_weights("c1", [3, 1, 5, 5], 3), conv_weights("c2", [3, 3, 3, 1], 4), conv_weights("c3", [2, 3, 3, 3], 5)]
            .concat(),
    );
    let net = follows_tract(dir.path(), "valid", &valid, 0.0);
    let dims: Vec<_> = net
        .segments
        .iter()
        .map(|s| match s.spec.stages[0].shape {
            LinearShape::Conv(c) => (c.pads, c.output_dims()),
            LinearShape::Dense(_) => panic!("convs only"),
        })
        .collect();
    // 10×8 → 6×4 (valid 5×5) → 6×4 (3×1, pads top/bottom) → 3×2 (SAME_UPPER, stride 2:
    // total padding 1 per axis, at the end).
    assert_eq!(dims, [([0; 4], (3, 6, 4)), ([1, 0, 1, 0], (3, 6, 4)), ([0, 0, 1, 1], (2, 3, 2))]);
}

#[test]
fn depthwise_block_with_overlapping_pool_and_global_average() {
    let dir = tempfile::tempdir().unwrap();
    // MobileNet-style: pointwise 1×1, depthwise 3×3 (group = channels), pointwise; ResNet's
    // 3×3 stride-2 padded max pool; a GlobalAveragePool head.
    let m = model(
        &[1, 3, 8, 8],
        [vec![conv("pw1", "input", vec![]), node("Relu", "r1", &["pw1_out"], vec![])], mobile_tail()].concat(),
        [
            conv_weights("pw1", [4, 3, 1, 1], 6),
            conv_weights("dw", [4, 1, 3, 3], 7),
            conv_weights("pw2", [5, 4, 1, 1], 8),
        ]
        .concat(),
    );
    let net = follows_tract(dir.path(), "depthwise", &m, 0.0);
    let specs: Vec<_> = net.segments.iter().map(|s| s.spec.stages[0]).collect();
    let LinearShape::Conv(dw) = specs[1].shape else { panic!() };
    assert_eq!((dw.groups, dw.num_weights()), (4, 36));
    let pool = specs[1].pool.expect("the max pool follows the depthwise conv");
    assert_eq!((pool.kernel, pool.stride, pool.pads), ([3, 3], [2, 2], [1; 4]));
    assert_eq!(specs[2].pool.map(|p| p.kernel), Some([4, 4]), "global average over the 4×4 map");
    assert_eq!(net.num_outputs(), 5);
}

#[test]
fn a_signed_input_is_imported_with_its_zero_point() {
    let dir = tempfile::tempdir().unwrap();
    // Inputs in [-0.4, 0.6): a normalized image.
    let m = model(
        &[1, 1, 6, 6],
        vec![
            conv("c1", "input", vec![ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "r1", &["c1_out"], vec![]),
            conv("c2", "r1_out", vec![ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "r2", &["c2_out"], vec![]),
        ],
        [conv_weights("c1", [2, 1, 3, 3], 9), conv_weights("c2", [2, 2, 3, 3], 10)].concat(),
    );
    let net = follows_tract(dir.path(), "signed", &m, -0.4);
    // 0.4 of a range of ~1.0 over 127 steps: the zero point sits near 51.
    assert!((45..=57).contains(&net.input.zero_point), "{}", net.input.zero_point);
    assert_eq!(net.segments[0].spec.zero_point(), net.input.zero_point);
    assert_eq!(net.segments[1].spec.zero_point(), 0, "only the model input is signed");
    assert_eq!(net.quantize_input(&[0.0; 36]).unwrap(), vec![net.input.zero_point; 36]);
}

#[test]
fn resnet_basic_blocks_with_identity_and_projection_shortcuts() {
    let dir = tempfile::tempdir().unwrap();
    let net = follows_tract(dir.path(), "resnet", &small_resnet(), 0.0);
    let blocks: Vec<(usize, usize)> = net.segments.iter().map(|s| (s.spec.num_stages(), s.layers.len())).collect();
    assert_eq!(blocks, [(1, 1), (2, 2), (2, 2), (1, 1)], "stem, two basic blocks, classifier");
    let [_, identity, down, _] = net.segments.as_slice() else { unreachable!() };
    // The identity block's shortcut is exact: skip = s_x·2^shift / s_out.
    assert!(identity.spec.stages[1].skip > 0 && identity.spec.stages[1].projection.is_none());
    let p = down.spec.stages[1].projection.expect("a projection shortcut");
    assert_eq!((p.kernel, p.stride, p.channels_in, p.channels_out), ([1, 1], [2, 2], 4, 8));
    assert_eq!(down.spec.stages[1].skip, 0);
    assert!(down.spec.stages[1].pool.is_some(), "the global average pool closes the block");
    assert_eq!(down.origin, ["b1+b1r", "b2+p+pbn+badd+br+gap+flat"]);
}

#[test]
fn shortcuts_the_circuits_cannot_express_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let import_err = |name: &str, m: &ModelProto| {
        let path = write(dir.path(), name, m);
        onnx::read_float_model(&path).map(|_| ()).unwrap_err().to_string()
    };
    let mut m = small_resnet();
    let g = m.graph.as_mut().unwrap();
    // The second block's Add reaches back past the first block (a skip across blocks).
    let add = g.node.iter_mut().find(|n| n.name == "badd").unwrap();
    add.input = vec!["b2_out".into(), "sr_out".into()];
    g.node.retain(|n| n.name != "p" && n.name != "pbn");
    let e = import_err("cross", &m);
    assert!(e.contains("badd") && e.contains("input of a layer of its block"), "{e}");
    // A shortcut branch that is never added.
    let mut m = small_resnet();
    let g = m.graph.as_mut().unwrap();
    let add = g.node.iter_mut().find(|n| n.name == "badd").unwrap();
    add.input = vec!["b2_out".into(), "b2_out".into()];
    let e = import_err("dangling", &m);
    assert!(e.contains("badd") || e.contains("never added"), "{e}");
}

/// `x + Relu(f(x))` (the Add after the ReLU), for convolutions and dense layers: the sum
/// becomes one more layer of the block, a per-channel identity with the shortcut.
#[test]
fn residual_adds_after_the_relu() {
    let dir = tempfile::tempdir().unwrap();
    let pad = || vec![ints("pads", &[1, 1, 1, 1])];
    let gemm = |name: &str, input: &str| {
        node("Gemm", name, &[input, &format!("{name}.w"), &format!("{name}.b")], vec![int("transB", 1)])
    };
    let m = model(
        &[1, 1, 4, 4],
        vec![
            conv("c0", "input", pad()),
            node("Relu", "r0", &["c0_out"], vec![]),
            conv("c1", "r0_out", pad()),
            node("Relu", "r1", &["c1_out"], vec![]),
            node("Add", "add1", &["r0_out", "r1_out"], vec![]),
            conv("c2", "add1_out", pad()),
            node("Relu", "r2", &["c2_out"], vec![]),
            node("Add", "add2", &["r2_out", "add1_out"], vec![]),
            node("Flatten", "flat", &["add2_out"], vec![]),
            gemm("g1", "flat_out"),
            node("Relu", "gr1", &["g1_out"], vec![]),
            gemm("g2", "gr1_out"),
            node("Relu", "gr2", &["g2_out"], vec![]),
            node("Add", "add3", &["gr1_out", "gr2_out"], vec![]),
            gemm("g3", "add3_out"),
        ],
        [conv_weights("c0", [4, 1, 3, 3], 1), conv_weights("c1", [4, 4, 3, 3], 2), conv_weights("c2", [4, 4, 3, 3], 3)]
            .into_iter()
            .flatten()
            .chain([
                random_tensor("g1.w", &[16, 64], 4, 0.3),
                random_tensor("g1.b", &[16], 5, 0.1),
                random_tensor("g2.w", &[16, 16], 6, 0.5),
                random_tensor("g2.b", &[16], 7, 0.1),
                random_tensor("g3.w", &[3, 16], 8, 0.5),
                random_tensor("g3.b", &[3], 9, 0.1),
            ])
            .collect(),
    );
    let net = follows_tract(dir.path(), "after_relu", &m, 0.0);
    let blocks: Vec<(usize, usize)> = net.segments.iter().map(|s| (s.spec.num_stages(), s.layers.len())).collect();
    assert_eq!(blocks, [(1, 1), (2, 4), (1, 1), (2, 2), (1, 1)]);
    let sum = net.segments[1].spec.stages[1];
    let LinearShape::Conv(c) = sum.shape else { panic!("a per-channel identity") };
    assert_eq!((c.groups, c.kernel, sum.skip > 0), (4, [1, 1], true));
    assert_eq!(net.segments[1].origin, ["c1+r1", "add1", "c2+r2", "add2+flat"]);

    // Of the model input (possibly negative): refused.
    let on_input = model(
        &[1, 1, 4, 4],
        vec![
            conv("c0", "input", pad()),
            node("Relu", "r0", &["c0_out"], vec![]),
            node("Add", "add0", &["input", "r0_out"], vec![]),
        ],
        conv_weights("c0", [1, 1, 3, 3], 1).to_vec(),
    );
    let path = write(dir.path(), "on_input", &on_input);
    let e = onnx::read_float_model(&path).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("add0") && e.contains("model input"), "{e}");
    // Nested: x + Relu(x + Conv(x)).
    let nested = model(
        &[1, 1, 4, 4],
        vec![
            conv("c0", "input", pad()),
            node("Relu", "r0", &["c0_out"], vec![]),
            conv("c1", "r0_out", pad()),
            node("Add", "inner", &["c1_out", "r0_out"], vec![]),
            node("Relu", "r1", &["inner_out"], vec![]),
            node("Add", "outer", &["r0_out", "r1_out"], vec![]),
        ],
        [conv_weights("c0", [1, 1, 3, 3], 1), conv_weights("c1", [1, 1, 3, 3], 2)].concat(),
    );
    let path = write(dir.path(), "nested", &nested);
    let e = onnx::read_float_model(&path).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("outer") && e.contains("nested"), "{e}");
}

/// ResNet-50's bottleneck blocks (1×1 reduce, 3×3, 1×1 expand, then the shortcut): a
/// three-layer block with a stride-2 projection, then one with an identity shortcut.
#[test]
fn bottleneck_blocks_of_three_layers() {
    let dir = tempfile::tempdir().unwrap();
    let pad = || vec![ints("pads", &[1, 1, 1, 1])];
    let stride = || vec![ints("strides", &[2, 2])];
    let m = model(
        &[1, 2, 8, 8],
        vec![
            conv("s", "input", pad()),
            node("Relu", "sr", &["s_out"], vec![]),
            // projection bottleneck 4 → (2, 2) → 8, stride 2 in the 3×3
            conv("p1", "sr_out", vec![]),
            node("Relu", "p1r", &["p1_out"], vec![]),
            conv("p2", "p1r_out", vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[2, 2])]),
            node("Relu", "p2r", &["p2_out"], vec![]),
            conv("p3", "p2r_out", vec![]),
            conv("proj", "sr_out", stride()),
            node("Add", "padd", &["p3_out", "proj_out"], vec![]),
            node("Relu", "pr", &["padd_out"], vec![]),
            // identity bottleneck 8 → (2, 2) → 8
            conv("i1", "pr_out", vec![]),
            node("Relu", "i1r", &["i1_out"], vec![]),
            conv("i2", "i1r_out", pad()),
            node("Relu", "i2r", &["i2_out"], vec![]),
            conv("i3", "i2r_out", vec![]),
            node("Add", "iadd", &["pr_out", "i3_out"], vec![]),
            node("Relu", "ir", &["iadd_out"], vec![]),
            node("GlobalAveragePool", "gap", &["ir_out"], vec![]),
        ],
        [
            conv_weights("s", [4, 2, 3, 3], 1),
            conv_weights("p1", [2, 4, 1, 1], 2),
            conv_weights("p2", [2, 2, 3, 3], 3),
            conv_weights("p3", [8, 2, 1, 1], 4),
            conv_weights("proj", [8, 4, 1, 1], 5),
            conv_weights("i1", [2, 8, 1, 1], 6),
            conv_weights("i2", [2, 2, 3, 3], 7),
            conv_weights("i3", [8, 2, 1, 1], 8),
        ]
        .concat(),
    );
    let net = follows_tract(dir.path(), "bottleneck", &m, 0.0);
    let blocks: Vec<(usize, usize)> = net.segments.iter().map(|s| (s.spec.num_stages(), s.layers.len())).collect();
    assert_eq!(blocks, [(1, 1), (3, 3), (3, 3)]);
    let (down, identity) = (&net.segments[1].spec.stages[2], &net.segments[2].spec.stages[2]);
    assert_eq!(down.projection.map(|p| (p.stride, p.channels_out)), Some(([2, 2], 8)));
    assert!(identity.skip > 0 && identity.projection.is_none());
    assert!(identity.pool.is_some());
}

/// MobileNet-V2's inverted residual blocks: ReLU6 (Clip), depthwise convolutions, linear
/// bottlenecks (hidden layers without an activation: signed values around zero point 64)
/// and identity shortcuts whose sum has no activation either.
#[test]
fn inverted_residual_blocks_with_relu6_and_linear_bottlenecks() {
    let dir = tempfile::tempdir().unwrap();
    let net = follows_tract(dir.path(), "mobilenet_v2", &mobilenet_v2_like(), -0.4);
    let blocks: Vec<(usize, usize)> = net.segments.iter().map(|s| (s.spec.num_stages(), s.layers.len())).collect();
    // stem, depthwise, projection, the two expanded blocks (one segment), head conv + pool,
    // classifier
    assert_eq!(blocks, [(1, 1), (1, 1), (1, 1), (3, 6), (1, 1), (1, 1)]);
    let zero_points: Vec<u8> = net.segments.iter().flat_map(|s| s.spec.stages.iter().map(|l| l.zero_point)).collect();
    assert!(zero_points.contains(&64), "a linear bottleneck's output is read as signed: {zero_points:?}");
}
