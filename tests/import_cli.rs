//! The whole flow for a user's ONNX model, through the command line: import (checking
//! operators, calibrating, reporting accuracy), prove, verify.

mod common;

use common::{fold_ml, scratch, verify_cli};
use fold_ml::model::network::argmax;
use fold_ml::statement::Statement;
use std::path::Path;

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
    assert!(out.contains("3 layers in 3 segments"), "{out}");

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
    assert_eq!(s.segments.len(), 3);
    assert!(s.input.values.is_none(), "the input stays private");
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

#[test]
fn proving_a_model_file_needs_a_valid_input() {
    let model = scratch().join("cnn-for-input.foldml");
    let (code, _, err) = fold_ml(&[
        "import",
        &digits("cnn.onnx"),
        "--calibrate",
        &digits("calib.json"),
        "--out",
        model.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
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
