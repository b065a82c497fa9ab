//! Small ONNX graphs built in the tests (no Python needed), for the graph walk and tract.
#![allow(dead_code)]

use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

pub fn node(op: &str, name: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![format!("{name}_out")],
        attribute: attrs,
        ..Default::default()
    }
}

/// A `Constant` node holding `t`.
pub fn constant(name: &str, t: TensorProto) -> NodeProto {
    let value =
        AttributeProto { name: "value".into(), r#type: AttributeType::Tensor as i32, t: Some(t), ..Default::default() };
    node("Constant", name, &[], vec![value])
}

pub fn tensor(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        float_data: (0..n).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect(),
        ..Default::default()
    }
}

fn value(name: &str, shape: &[i64]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor { elem_type: DataType::Float as i32, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

/// A model of `nodes` over `input` of `shape`; the last node's output is the graph's.
pub fn model(shape: &[i64], nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> ModelProto {
    let out = nodes.last().map(|n| n.output[0].clone()).unwrap_or_default();
    let graph = GraphProto {
        node: nodes,
        initializer: inits,
        input: vec![value("input", shape)],
        output: vec![ValueInfoProto { name: out, ..Default::default() }],
        ..Default::default()
    };
    let opset = OperatorSetIdProto { domain: String::new(), version: 13 };
    ModelProto { ir_version: 8, opset_import: vec![opset], graph: Some(graph), ..Default::default() }
}

/// A string attribute.
pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// Writes `m` to `dir/name.onnx`.
pub fn write(dir: &std::path::Path, name: &str, m: &ModelProto) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, prost::Message::encode_to_vec(m)).unwrap();
    path
}

/// A float tensor of `dims` with values uniform in `[-scale, scale)` from `seed`.
pub fn random_tensor(name: &str, dims: &[i64], seed: u64, scale: f32) -> TensorProto {
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = tensor(name, dims);
    t.float_data =
        t.float_data.iter().map(|_| ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale).collect();
    t
}

/// An integer attribute.
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}

/// A Conv node reading `input` with weight `<name>.w` and bias `<name>.b`.
pub fn conv(name: &str, input: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    node("Conv", name, &[input, &format!("{name}.w"), &format!("{name}.b")], attrs)
}

/// He-scaled random weights `[co, ci, kh, kw]` and a small bias for conv `name`.
pub fn conv_weights(name: &str, dims: [i64; 4], seed: u64) -> [TensorProto; 2] {
    let fan_in = (dims[1] * dims[2] * dims[3]) as f32;
    [
        random_tensor(&format!("{name}.w"), &dims, seed, (6.0 / fan_in).sqrt()),
        random_tensor(&format!("{name}.b"), &[dims[0]], seed + 1000, 0.1),
    ]
}

/// After a 4-channel `r1_out`: a depthwise 3×3 conv (`dw`), ResNet's 3×3 stride-2 padded max
/// pool, a 1×1 conv to 5 channels (`pw2`) and a GlobalAveragePool.
pub fn mobile_tail() -> Vec<NodeProto> {
    vec![
        conv("dw", "r1_out", vec![int("group", 4), ints("pads", &[1, 1, 1, 1])]),
        node("Relu", "r2", &["dw_out"], vec![]),
        node(
            "MaxPool",
            "mp",
            &["r2_out"],
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
        ),
        conv("pw2", "mp_out", vec![]),
        node("Relu", "r3", &["pw2_out"], vec![]),
        node("GlobalAveragePool", "gap", &["r3_out"], vec![]),
    ]
}

/// A BatchNormalization node `name` over `input` with `c` channels, and its tensors
/// (random scale, shift and mean; variances in `[0.5, 1.5)`).
pub fn batch_norm(name: &str, input: &str, c: i64, seed: u64) -> (NodeProto, Vec<TensorProto>) {
    let t = |what: &str, s: u64, scale: f32| random_tensor(&format!("{name}.{what}"), &[c], seed + s, scale);
    let mut var = t("var", 3, 0.5);
    var.float_data.iter_mut().for_each(|v| *v += 1.0);
    let mut gamma = t("scale", 0, 0.3);
    gamma.float_data.iter_mut().for_each(|v| *v += 1.0);
    let inputs = [
        input.to_string(),
        format!("{name}.scale"),
        format!("{name}.B"),
        format!("{name}.mean"),
        format!("{name}.var"),
    ];
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    (node("BatchNormalization", name, &inputs, vec![]), vec![gamma, t("B", 1, 0.1), t("mean", 2, 0.1), var])
}

/// A small ResNet on a `[1, 2, 6, 6]` input: a stem conv (2→4); a basic block with an
/// identity shortcut and a BatchNormalization after its second conv; a stride-2 basic
/// block (4→8) whose 1×1 projection shortcut has its own BatchNormalization and is the
/// Add's first operand; global average pooling; a Gemm to 3 logits.
pub fn small_resnet() -> ModelProto {
    let pad = || ints("pads", &[1, 1, 1, 1]);
    let (bn_a, bn_a_t) = batch_norm("a2bn", "a2_out", 4, 40);
    let (bn_p, bn_p_t) = batch_norm("pbn", "p_out", 8, 50);
    let nodes = vec![
        conv("s", "input", vec![pad()]),
        node("Relu", "sr", &["s_out"], vec![]),
        conv("a1", "sr_out", vec![pad()]),
        node("Relu", "a1r", &["a1_out"], vec![]),
        conv("a2", "a1r_out", vec![pad()]),
        bn_a,
        node("Add", "aadd", &["a2bn_out", "sr_out"], vec![]),
        node("Relu", "ar", &["aadd_out"], vec![]),
        conv("b1", "ar_out", vec![pad(), ints("strides", &[2, 2])]),
        node("Relu", "b1r", &["b1_out"], vec![]),
        conv("b2", "b1r_out", vec![pad()]),
        conv("p", "ar_out", vec![ints("strides", &[2, 2])]),
        bn_p,
        node("Add", "badd", &["pbn_out", "b2_out"], vec![]),
        node("Relu", "br", &["badd_out"], vec![]),
        node("GlobalAveragePool", "gap", &["br_out"], vec![]),
        node("Flatten", "flat", &["gap_out"], vec![]),
        node("Gemm", "fc", &["flat_out", "fc.w", "fc.b"], vec![int("transB", 1)]),
    ];
    let mut inits: Vec<TensorProto> = [
        conv_weights("s", [4, 2, 3, 3], 1),
        conv_weights("a1", [4, 4, 3, 3], 2),
        conv_weights("a2", [4, 4, 3, 3], 3),
        conv_weights("b1", [8, 4, 3, 3], 4),
        conv_weights("b2", [8, 8, 3, 3], 5),
        conv_weights("p", [8, 4, 1, 1], 6),
    ]
    .concat();
    inits.extend(bn_a_t);
    inits.extend(bn_p_t);
    inits.push(random_tensor("fc.w", &[3, 8], 7, 0.5));
    inits.push(random_tensor("fc.b", &[3], 8, 0.1));
    model(&[1, 2, 6, 6], nodes, inits)
}

/// A stem conv (2→4 on 6×6) and `blocks` identical basic blocks with identity shortcuts
/// (one segment, one fold per block), then a Gemm to 3 logits.
pub fn resnet_stack(blocks: usize) -> ModelProto {
    let pad = || ints("pads", &[1, 1, 1, 1]);
    let mut nodes = vec![conv("s", "input", vec![pad()]), node("Relu", "sr", &["s_out"], vec![])];
    let mut inits: Vec<TensorProto> = conv_weights("s", [4, 2, 3, 3], 1).to_vec();
    let mut x = "sr_out".to_string();
    for k in 0..blocks {
        let (a, b) = (format!("a{k}"), format!("b{k}"));
        nodes.push(conv(&a, &x, vec![pad()]));
        nodes.push(node("Relu", &format!("{a}r"), &[&format!("{a}_out")], vec![]));
        nodes.push(conv(&b, &format!("{a}r_out"), vec![pad()]));
        nodes.push(node("Add", &format!("add{k}"), &[&format!("{b}_out"), &x], vec![]));
        nodes.push(node("Relu", &format!("r{k}"), &[&format!("add{k}_out")], vec![]));
        inits.extend(conv_weights(&a, [4, 4, 3, 3], 10 + 2 * k as u64));
        inits.extend(conv_weights(&b, [4, 4, 3, 3], 11 + 2 * k as u64).map(|mut t| {
            t.float_data.iter_mut().for_each(|v| *v *= 0.5);
            t
        }));
        x = format!("r{k}_out");
    }
    nodes.push(node("Flatten", "flat", &[&x], vec![]));
    nodes.push(node("Gemm", "fc", &["flat_out", "fc.w", "fc.b"], vec![int("transB", 1)]));
    inits.push(random_tensor("fc.w", &[3, 144], 7, 0.2));
    inits.push(random_tensor("fc.b", &[3], 8, 0.1));
    model(&[1, 2, 6, 6], nodes, inits)
}

/// A Clip(x, 0, 6) node (ReLU6, opset 13: bounds as constant inputs `relu6.lo`, `relu6.hi`).
pub fn relu6(name: &str, input: &str) -> NodeProto {
    node("Clip", name, &[input, "relu6.lo", "relu6.hi"], vec![])
}

/// The two scalar bounds [`relu6`] reads.
pub fn relu6_bounds() -> Vec<TensorProto> {
    let scalar = |name: &str, v: f32| TensorProto {
        name: name.into(),
        dims: vec![],
        data_type: DataType::Float as i32,
        float_data: vec![v],
        ..Default::default()
    };
    vec![scalar("relu6.lo", 0.0), scalar("relu6.hi", 6.0)]
}

/// A MobileNet-V2-shaped model on `[1, 2, 8, 8]`: a stride-2 stem with ReLU6; an inverted
/// residual block without expansion (depthwise, linear 1×1 projection: signed output); two
/// inverted residual blocks with expansion 4 and an identity shortcut and no activation
/// after the sum (signed); a 1×1 conv with ReLU6, global average pooling and a Gemm.
pub fn mobilenet_v2_like() -> ModelProto {
    let pad = || ints("pads", &[1, 1, 1, 1]);
    let mut nodes = vec![
        conv("stem", "input", vec![pad(), ints("strides", &[2, 2])]),
        relu6("stem6", "stem_out"),
        conv("dw0", "stem6_out", vec![pad(), int("group", 8)]),
        relu6("dw06", "dw0_out"),
        conv("pj0", "dw06_out", vec![]),
    ];
    let mut inits: Vec<TensorProto> = [
        conv_weights("stem", [8, 2, 3, 3], 1),
        conv_weights("dw0", [8, 1, 3, 3], 2),
        conv_weights("pj0", [4, 8, 1, 1], 3),
    ]
    .concat();
    let mut x = "pj0_out".to_string();
    for k in 1..=2u64 {
        let (e, d, p) = (format!("ex{k}"), format!("dw{k}"), format!("pj{k}"));
        nodes.push(conv(&e, &x, vec![]));
        nodes.push(relu6(&format!("{e}6"), &format!("{e}_out")));
        nodes.push(conv(&d, &format!("{e}6_out"), vec![pad(), int("group", 16)]));
        nodes.push(relu6(&format!("{d}6"), &format!("{d}_out")));
        nodes.push(conv(&p, &format!("{d}6_out"), vec![]));
        nodes.push(node("Add", &format!("add{k}"), &[&x, &format!("{p}_out")], vec![]));
        inits.extend(conv_weights(&e, [16, 4, 1, 1], 10 * k));
        inits.extend(conv_weights(&d, [16, 1, 3, 3], 10 * k + 1));
        inits.extend(conv_weights(&p, [4, 16, 1, 1], 10 * k + 2));
        x = format!("add{k}_out");
    }
    nodes.extend([
        conv("head", &x, vec![]),
        relu6("head6", "head_out"),
        node("GlobalAveragePool", "gap", &["head6_out"], vec![]),
        node("Flatten", "flat", &["gap_out"], vec![]),
        node("Gemm", "fc", &["flat_out", "fc.w", "fc.b"], vec![int("transB", 1)]),
    ]);
    inits.extend(conv_weights("head", [16, 4, 1, 1], 40));
    inits.push(random_tensor("fc.w", &[3, 16], 41, 0.5));
    inits.push(random_tensor("fc.b", &[3], 42, 0.1));
    inits.extend(relu6_bounds());
    model(&[1, 2, 8, 8], nodes, inits)
}
