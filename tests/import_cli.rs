//! The whole flow for a user's ONNX model, through the command line: import (checking
//! operators, calibrating, reporting accuracy), prove, verify.

mod common;

use common::{fold_ml, scratch, verify_cli};
use fold_ml::model::network::argmax;
use fold_ml::statement::Statement;
use std::path::{Path, PathBuf};

fn digits(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/digits").join(file).to_str().unwrap().to_string()
}

#[test]
fn import_prove_and_verify_the_digits_cnn() {
    let model = scratch().join("cnn.foldml");
    let (code, out, err) = fold_ml(&[
        "import",
        &digits("cnn.onnx"),
        "--calibrate",
        &digits("calib.json"),
        "--test",
        &digits("test.json"),
        "--out",
        model.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("top-1 agreement with the float model"), "{out}");
    // fused: conv + pool, conv + pool and the dense head are one block, one step, one proof
    assert!(out.contains("3 layers in 1 segment)") && out.contains("fused 3 segments into 1"), "{out}");

    let job = scratch().join("cnn-job");
    let (code, out, err) = fold_ml(&[
        "prove",
        "--model",
        model.to_str().unwrap(),
        "--input",
        &digits("digit.json"),
        "--job",
        job.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = verify_cli(&job);
    assert_eq!(code, 0, "{err}");

    // The proven class is the float model's (tract) prediction for this digit.
    let s: Statement = serde_json::from_slice(&std::fs::read(job.join("statement.json")).unwrap()).unwrap();
    let input: Vec<f32> = serde_json::from_slice(&std::fs::read(digits("digit.json")).unwrap()).unwrap();
    let float = fold_ml::model::onnx::tract_logits(Path::new(&digits("cnn.onnx")), &input).unwrap();
    assert_eq!(s.output.class, Some(argmax(&float)));
    assert!(out.contains(&format!("predicted class  {}", argmax(&float))), "{out}");
    assert_eq!(s.segments.len(), 1);
    assert_eq!(s.segments[0].architecture.block.num_stages(), 3);
    assert!(s.input.values.is_none(), "the input stays private");
    // the statement's model commitment is the fused file's (what `fold-ml commit` prints)
    let net = fold_ml::model::network::Network::read(&model).unwrap();
    assert_eq!(s.model_commitment, fold_ml::model::model_commitment(&net));
}

#[test]
fn an_unsupported_operator_is_named_and_nothing_is_written() {
    let onnx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/unsupported.onnx");
    let calib = scratch().join("calib-4x4.json");
    std::fs::write(&calib, serde_json::to_vec(&vec![0.5f32; 16]).unwrap()).unwrap();
    let out_file = scratch().join("unsupported.foldml");
    let (code, _, err) = fold_ml(&[
        "import",
        onnx.to_str().unwrap(),
        "--calibrate",
        calib.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Sigmoid") && err.contains("my_sigmoid"), "{err}");
    assert!(!out_file.exists());
}

/// The GPT example is imported as a GPT: the model file holds the library's quantization of
/// it (calibrated on the same windows), the agreement with tract is reported, and windows
/// that do not fit the model are refused with exit 2 and nothing written.
#[test]
fn a_gpt_is_imported_as_one() {
    use fold_ml::model::gpt_file::GptModel;
    use fold_ml::model::onnx::gpt::{quantize, read_gpt, read_token_windows};
    let gpt = |f: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gpt").join(f);
    let held = read_token_windows(&gpt("test.json")).unwrap();
    let test = scratch().join("gpt-test20.json");
    std::fs::write(&test, serde_json::to_vec(&serde_json::json!({ "inputs": held[..20] })).unwrap()).unwrap();
    let out_file = scratch().join("gpt.foldml");
    let (onnx, calib) = (gpt("gpt.onnx"), gpt("calib.json"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let args = ["import", &s(&onnx), "--calibrate", &s(&calib), "--test", &s(&test), "--out", &s(&out_file)];
    let (code, out, err) = fold_ml(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("a GPT: 4 blocks, width 64, 4 heads, MLP 256, context 16, vocabulary 96"), "{out}");
    assert!(
        out.contains("next-token agreement with the float model (tract)") && out.contains("over 20 windows"),
        "{out}"
    );
    let model = GptModel::read(&out_file).unwrap();
    let q = quantize(&read_gpt(&onnx).unwrap(), &read_token_windows(&calib).unwrap()).unwrap();
    assert_eq!(model.q, q);
    assert!(out.contains(&fold_ml::field::to_hex(&model.model_commitment().unwrap())), "{out}");

    let short = scratch().join("gpt-short.json");
    std::fs::write(&short, b"{\"inputs\": [[1, 2, 3]]}").unwrap();
    let refused = scratch().join("gpt-refused.foldml");
    let (code, _, err) = fold_ml(&["import", &s(&onnx), "--calibrate", &s(&short), "--out", &s(&refused)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a window of 3 tokens"), "{err}");
    assert!(!refused.exists());
}

#[test]
fn proving_a_model_file_needs_a_valid_input() {
    let model = scratch().join("cnn-for-input.foldml");
    let (code, out, err) = fold_ml(&[
        "import",
        &digits("cnn.onnx"),
        "--calibrate",
        &digits("calib.json"),
        "--no-fuse",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 layers in 3 segments") && !out.contains("fused"), "{out}");
    let short = scratch().join("short-input.json");
    std::fs::write(&short, b"[0.5, 0.25]").unwrap();
    let job = scratch().join("bad-input-job");
    for input in [short.to_str().unwrap(), "/nonexistent/input.json"] {
        let (code, _, err) =
            fold_ml(&["prove", "--model", model.to_str().unwrap(), "--input", input, "--job", job.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    let (code, _, err) = fold_ml(&["prove", "--model", model.to_str().unwrap(), "--job", job.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs an input"), "{err}");
    // a damaged model file is an input error too
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let (code, _, err) = fold_ml(&["inspect", "--model", model.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(!job.join("manifest.json").exists());
}

mod onnx_build;

/// Imports `m` (calibrated on 256 signed inputs in `[-0.4, 0.6)`, as a normalized image)
/// into `scratch/name/`: returns the model file, one more input (as a file and as values)
/// and what `import` printed.
fn import_model(name: &str, m: &tract_onnx::pb::ModelProto, input_len: usize) -> (PathBuf, PathBuf, Vec<f32>, String) {
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let onnx = onnx_build::write(&dir, name, m);
    let mut state = 12345u64;
    let mut sample = || {
        (0..input_len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.4
            })
            .collect::<Vec<f32>>()
    };
    let calibration: Vec<Vec<f32>> = (0..256).map(|_| sample()).collect();
    let input = sample();
    let (calib, x) = (dir.join("calib.json"), dir.join("x.json"));
    std::fs::write(&calib, serde_json::to_vec(&serde_json::json!({ "inputs": calibration })).unwrap()).unwrap();
    std::fs::write(&x, serde_json::to_vec(&input).unwrap()).unwrap();

    let model_file = dir.join(format!("{name}.foldml"));
    let (code, out, err) = fold_ml(&[
        "import",
        onnx.to_str().unwrap(),
        "--calibrate",
        calib.to_str().unwrap(),
        "--out",
        model_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    (model_file, x, input, out)
}

/// The job's statement verifies and its output is the native quantized network's.
fn check_job(job: &Path, model_file: &Path, input: &[f32]) {
    let (code, _, err) = verify_cli(job);
    assert_eq!(code, 0, "{err}");
    let net = fold_ml::model::network::Network::read(model_file).unwrap();
    assert!(net.input.zero_point > 0, "the input is signed");
    let expected = net.run_native(&net.quantize_input(input).unwrap()).unwrap();
    let s: Statement = serde_json::from_slice(&std::fs::read(job.join("statement.json")).unwrap()).unwrap();
    assert_eq!(s.output.values.as_deref(), Some(expected.as_slice()));
}

/// Imports `m`, proves it, verifies the proof, checks the proven output, and returns what
/// `import` printed.
fn import_prove_and_verify(name: &str, m: &tract_onnx::pb::ModelProto, input_len: usize) -> String {
    let (model_file, x, input, out) = import_model(name, m, input_len);
    let job = model_file.with_file_name("job");
    let args = ["prove", "--model", model_file.to_str().unwrap(), "--input", x.to_str().unwrap()];
    let (code, _, err) = fold_ml(&[&args[..], &["--job", job.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    check_job(&job, &model_file, &input);
    out
}

/// The new CNN operators end to end through Nova (not only the test constraint system): a
/// signed input, a stride-2 padded conv, a depthwise conv, a 3×3 stride-2 padded max pool
/// and a GlobalAveragePool.
#[test]
fn import_prove_and_verify_strided_depthwise_and_pooled_convolutions() {
    use onnx_build::*;
    let m = model(
        &[1, 2, 9, 9],
        vec![
            conv("c1", "input", vec![ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "r1", &["c1_out"], vec![]),
        ]
        .into_iter()
        .chain(mobile_tail())
        .collect(),
        [
            conv_weights("c1", [4, 2, 3, 3], 1),
            conv_weights("dw", [4, 1, 3, 3], 2),
            conv_weights("pw2", [5, 4, 1, 1], 3),
        ]
        .concat(),
    );
    let out = import_prove_and_verify("cnn-ops", &m, 162);
    // fused into one block (one step, one proof): the operators chained inside a step
    assert!(out.contains("3 layers in 1 segment)") && out.contains("stride 2×2") && out.contains("groups 4"), "{out}");
}

/// ResNet basic blocks end to end through Nova: each block (two convolutions and the
/// identity or projection shortcut) is one step.
#[test]
fn import_prove_and_verify_residual_blocks() {
    let out = import_prove_and_verify("resnet-blocks", &onnx_build::small_resnet(), 72);
    // the head fused behind the projection block (a shortcut is never appended: no other)
    assert!(out.contains("6 layers in 3 segments") && out.contains("fused 4 segments into 3"), "{out}");
    assert!(out.contains("projection conv 1×1 4→8"), "{out}");
}

/// A segment of identical residual blocks (one fold each) is killed while writing the
/// checkpoint after its second block, and resumes from its first.
#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks (crash hook)")]
fn a_segment_of_blocks_resumes_between_blocks() {
    use fold_ml::job::checkpoint::{self, CRASH_HOOK_ENV};
    let (model_file, x, input, out) = import_model("block-resume", &onnx_build::resnet_stack(3), 72);
    assert!(out.contains("8 layers in 3 segments"), "{out}");
    let job = model_file.with_file_name("job");
    let args = [
        "prove",
        "--model",
        model_file.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--checkpoint-every",
        "1",
        "--job",
        job.to_str().unwrap(),
    ];
    let bin = env!("CARGO_BIN_EXE_fold-ml");
    // layers: stem 1, blocks at 3, 5, 7, classifier 8: crash writing the one at 5
    let (code, _, err) = common::run_env(bin, &args, &[(CRASH_HOOK_ENV, "5")]);
    assert_ne!(code, 0, "the crash hook did not fire: {err}");
    assert_eq!(checkpoint::list(&job).first().map(|(k, _)| k.0), Some(3));
    let (code, _, err) = common::run(bin, &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming from the checkpoint at 3 layers"), "{err}");
    check_job(&job, &model_file, &input);
}
