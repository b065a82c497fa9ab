//! ONNX graph → a sequential float IR of the layers fold-ml can prove.
//!
//! The walk is strict: every node either joins the current layer (Conv/Gemm/MatMul start
//! one; a constant Add, BatchNormalization, a residual Add, Relu and a pooling close it, in
//! that order) or is a layout no-op (Flatten, Reshape that flattens, Identity, Dropout,
//! Constant). Anything else, or anything in another order, is an error naming the node,
//! and it comes before any calibration or quantization work. This module never guesses:
//! a graph it does not understand exactly is rejected.

use super::proto::{decode_tensor, graph_input, Const, Node};
use crate::error::{OnnxError, OnnxNode};
use fold_ml_circuits::gadgets::conv::ConvShape;
use fold_ml_circuits::gadgets::dense::DenseShape;
use fold_ml_circuits::gadgets::linear::LinearShape;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use std::collections::HashMap;
use tract_onnx::pb::ModelProto;

/// The geometry of a float layer (before pooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloatKind {
    /// Same-size convolution, stride 1, zero padding `(k-1)/2`.
    Conv {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Image height.
        h: usize,
        /// Image width.
        w: usize,
        /// Kernel side (odd).
        k: usize,
    },
    /// Dense layer.
    Dense {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
    },
}

impl FloatKind {
    /// The circuit geometry of this layer.
    pub fn shape(&self) -> LinearShape {
        match *self {
            Self::Conv { c_in, c_out, h, w, k } => {
                LinearShape::Conv(ConvShape { channels_in: c_in, channels_out: c_out, height: h, width: w, kernel: k })
            }
            Self::Dense { inputs, outputs } => LinearShape::Dense(DenseShape { inputs, outputs }),
        }
    }

    /// Output channels (one bias each).
    pub fn channels_out(&self) -> usize {
        match *self {
            Self::Conv { c_out, .. } => c_out,
            Self::Dense { outputs, .. } => outputs,
        }
    }

    /// Weights per output channel.
    pub fn weights_per_channel(&self) -> usize {
        match *self {
            Self::Conv { c_in, k, .. } => c_in * k * k,
            Self::Dense { inputs, .. } => inputs,
        }
    }
}

/// One layer of the float model: `pool(relu(W·x + b [+ x]))`, in fold-ml's layouts.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayer {
    /// Geometry.
    pub kind: FloatKind,
    /// Weights: conv `((co·C_in + ci)·k + ky)·k + kx`, dense `o·inputs + i`.
    pub weights: Vec<f32>,
    /// One bias per output channel.
    pub bias: Vec<f32>,
    /// A ReLU follows the linear map (and the residual addition).
    pub relu: bool,
    /// The layer's input is added to its linear output (before the ReLU).
    pub residual: bool,
    /// Pooling of the (ReLU'd) convolution output.
    pub pool: Option<Pool>,
    /// The ONNX node names folded into this layer.
    pub origin: Vec<String>,
}

impl FloatLayer {
    /// Input values.
    pub fn num_inputs(&self) -> usize {
        self.kind.shape().num_inputs()
    }

    /// Output values, after pooling.
    pub fn num_outputs(&self) -> usize {
        match (self.pool, self.kind) {
            (Some(p), FloatKind::Conv { c_out, h, w, .. }) => {
                let (c, h, w) = p.output_dims((c_out, h, w));
                c * h * w
            }
            _ => self.kind.shape().num_outputs(),
        }
    }
}

/// A sequential float model: what an ONNX graph means to fold-ml.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayers {
    /// The input shape without the batch dimension (`[C, H, W]` or `[N]`).
    pub input_shape: Vec<usize>,
    /// The layers, input to output.
    pub layers: Vec<FloatLayer>,
}

impl FloatLayers {
    /// Input values.
    pub fn num_inputs(&self) -> usize {
        self.input_shape.iter().product()
    }
}

/// Operators the walk understands (the one list: error messages print it).
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Relu",
    "Flatten",
    "Reshape",
    "MaxPool",
    "AveragePool",
    "BatchNormalization",
    "Identity",
    "Dropout",
    "Constant",
];

/// The shape of the running activation tensor (batch dimension dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Chw(usize, usize, usize),
    Flat(usize),
}

impl Act {
    fn len(self) -> usize {
        match self {
            Act::Chw(c, h, w) => c * h * w,
            Act::Flat(n) => n,
        }
    }
}

/// How far the layer under construction has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Linear map, possibly with a bias Add or a BatchNormalization folded in.
    Linear,
    /// The residual Add is done.
    Residual,
    /// The ReLU is done.
    Relu,
    /// The pooling is done.
    Pooled,
}

struct Pending {
    layer: FloatLayer,
    /// The tensor the layer reads (the residual Add must add exactly this one).
    input: String,
    /// The node that started the layer, for messages.
    start: OnnxNode,
    stage: Stage,
}

struct Walker {
    consts: HashMap<String, Const>,
    alias: HashMap<String, String>,
    current: String,
    act: Act,
    layers: Vec<FloatLayer>,
    pending: Option<Pending>,
}

/// Parses a decoded ONNX model into the float IR, or says exactly which nodes fold-ml cannot
/// prove. All unsupported operators are listed at once; a structural problem is reported at
/// the first node where it shows.
pub fn parse(model: &ModelProto) -> Result<FloatLayers, OnnxError> {
    let graph = model.graph.as_ref().ok_or_else(|| OnnxError::Graph("the model has no graph".into()))?;
    let total = graph.node.len();
    let unsupported: Vec<OnnxNode> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            !SUPPORTED_OPS.contains(&n.op_type.as_str()) || !(n.domain.is_empty() || n.domain == "ai.onnx")
        })
        .map(|(i, n)| Node::new(n, i, total).at)
        .collect();
    if !unsupported.is_empty() {
        return Err(OnnxError::Unsupported(unsupported));
    }
    let (input, input_shape) = graph_input(graph)?;
    let mut consts = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), decode_tensor(t).map_err(OnnxError::Graph)?);
    }
    let act = match input_shape.as_slice() {
        &[c, h, w] => Act::Chw(c, h, w),
        _ => Act::Flat(input_shape[0]),
    };
    let mut walker = Walker { consts, alias: HashMap::new(), current: input, act, layers: Vec::new(), pending: None };
    for (i, pb) in graph.node.iter().enumerate() {
        walker.node(&Node::new(pb, i, total))?;
    }
    let output = match graph.output.as_slice() {
        [o] => walker.resolve(&o.name),
        outs => {
            return Err(OnnxError::Graph(format!("the graph must have exactly one output, it has {}", outs.len())));
        }
    };
    if output != walker.current {
        return Err(OnnxError::Graph(format!(
            "the graph output \"{output}\" is not the last layer's output \"{}\"",
            walker.current
        )));
    }
    let last = walker.pending.take().ok_or_else(|| OnnxError::Graph("the graph has no Conv, Gemm or MatMul".into()))?;
    if last.stage == Stage::Residual {
        return Err(OnnxError::BadNode {
            node: last.start,
            reason: "a residual Add must be followed by a Relu".into(),
        });
    }
    walker.layers.push(last.layer);
    Ok(FloatLayers { input_shape, layers: walker.layers })
}

impl Walker {
    fn resolve(&self, name: &str) -> String {
        let mut name = name;
        while let Some(next) = self.alias.get(name) {
            name = next;
        }
        name.to_string()
    }

    /// The node's `i`-th input as a constant.
    fn constant(&self, node: &Node, i: usize, what: &str) -> Result<&Const, OnnxError> {
        let name = node.input(i).ok_or_else(|| node.bad(format!("it has no {what}")))?;
        self.consts
            .get(&self.resolve(name))
            .ok_or_else(|| node.bad(format!("its {what} \"{name}\" is not a constant (initializer or Constant node)")))
    }

    /// Checks the node's `i`-th input is the running activation tensor.
    fn data_input(&self, node: &Node, i: usize) -> Result<(), OnnxError> {
        let name = node.input(i).ok_or_else(|| node.bad("it has no data input"))?;
        if self.resolve(name) != self.current {
            return Err(node.bad(format!(
                "its input \"{name}\" is not the previous layer's output \"{}\" (fold-ml imports sequential \
                 networks; the only branch it supports is a residual Add)",
                self.current
            )));
        }
        Ok(())
    }

    fn advance(&mut self, node: &Node, act: Act) -> Result<(), OnnxError> {
        self.current = node.output()?.to_string();
        self.act = act;
        if let Some(p) = self.pending.as_mut() {
            p.layer.origin.push(node.at.name.clone());
        }
        Ok(())
    }

    /// The layer under construction, which must be at one of `stages`.
    fn pending_at(&mut self, node: &Node, stages: &[Stage], what: &str) -> Result<&mut Pending, OnnxError> {
        match self.pending.as_mut() {
            Some(p) if stages.contains(&p.stage) => Ok(p),
            _ => Err(node.bad(format!("{} must {what}", node.at.op))),
        }
    }

    fn node(&mut self, node: &Node) -> Result<(), OnnxError> {
        match node.at.op.as_str() {
            "Constant" => {
                let value = node.constant_value()?;
                self.consts.insert(node.output()?.to_string(), value);
            }
            "Identity" | "Dropout" => {
                let input = self.resolve(node.input(0).ok_or_else(|| node.bad("it has no input"))?);
                let output = node.output()?.to_string();
                if let Some(c) = self.consts.get(&input).cloned() {
                    self.consts.insert(output, c);
                } else {
                    self.alias.insert(output, input);
                }
            }
            "Conv" => self.conv(node)?,
            "Gemm" | "MatMul" => self.dense(node)?,
            "Add" => self.add(node)?,
            "BatchNormalization" => self.batch_norm(node)?,
            "Relu" => {
                self.data_input(node, 0)?;
                let what = "directly follow a Conv, Gemm, MatMul, bias Add, BatchNormalization or residual Add \
                            (one Relu per layer)";
                let p = self.pending_at(node, &[Stage::Linear, Stage::Residual], what)?;
                p.layer.relu = true;
                p.stage = Stage::Relu;
                self.advance(node, self.act)?;
            }
            "MaxPool" | "AveragePool" => self.pool(node)?,
            "Flatten" => {
                self.data_input(node, 0)?;
                let rank = if matches!(self.act, Act::Chw(..)) { 4 } else { 2 };
                let axis = node.int("axis", 1)?;
                if axis != 1 && axis != 1 - rank {
                    return Err(node.bad(format!("axis {axis}: only a flatten to [1, N] (axis 1) is supported")));
                }
                self.advance(node, Act::Flat(self.act.len()))?;
            }
            "Reshape" => {
                self.data_input(node, 0)?;
                let n = self.act.len();
                let target = &self.constant(node, 1, "shape")?.values;
                let flattens = matches!(target.as_slice(), [a, b]
                    if (*a == 1.0 && (*b == -1.0 || *b == n as f64)) || (*a == -1.0 && *b == n as f64));
                if !flattens {
                    return Err(
                        node.bad(format!("target shape {target:?}: only a flatten to [1, {n}] ([1, -1]) is supported"))
                    );
                }
                self.advance(node, Act::Flat(n))?;
            }
            other => return Err(node.bad(format!("{other} is not supported"))),
        }
        Ok(())
    }

    /// Closes the layer under construction before `node` starts a new one.
    fn finish(&mut self, node: &Node) -> Result<(), OnnxError> {
        if let Some(p) = self.pending.take() {
            if !p.layer.relu {
                return Err(
                    node.bad(format!("the previous layer ({}) has no Relu; only the last layer may omit it", p.start))
                );
            }
            self.layers.push(p.layer);
        }
        Ok(())
    }

    fn start(
        &mut self,
        node: &Node,
        kind: FloatKind,
        weights: Vec<f32>,
        bias: Vec<f32>,
        act: Act,
    ) -> Result<(), OnnxError> {
        self.finish(node)?;
        let layer = FloatLayer { kind, weights, bias, relu: false, residual: false, pool: None, origin: Vec::new() };
        self.pending =
            Some(Pending { layer, input: self.current.clone(), start: node.at.clone(), stage: Stage::Linear });
        self.advance(node, act)
    }

    fn conv(&mut self, node: &Node) -> Result<(), OnnxError> {
        self.data_input(node, 0)?;
        let Act::Chw(c, h, w) = self.act else {
            return Err(node.bad("its input is not a [1, C, H, W] image"));
        };
        let weight = self.constant(node, 1, "weight")?;
        let &[c_out, c_in, kh, kw] = weight.dims.as_slice() else {
            return Err(
                node.bad(format!("weight shape {:?} is not [C_out, C_in, k, k] (2-D convolution)", weight.dims))
            );
        };
        if node.int("group", 1)? != 1 {
            return Err(node.bad("grouped convolutions are not supported (group must be 1)"));
        }
        if c_in != c {
            return Err(node.bad(format!("the weight takes {c_in} input channels, the input has {c}")));
        }
        if kh != kw || kh % 2 == 0 || kh == 0 {
            return Err(node.bad(format!("kernel {kh}x{kw}: only odd square kernels are supported")));
        }
        if c_out == 0 {
            return Err(node.bad("the weight has no output channel"));
        }
        let k = kh;
        let ones = |name: &str| -> Result<(), OnnxError> {
            match node.ints(name)? {
                Some(v) if v.iter().any(|&s| s != 1) => {
                    Err(node.bad(format!("{name} {v:?} are not supported (only 1)")))
                }
                _ => Ok(()),
            }
        };
        ones("strides")?;
        ones("dilations")?;
        if let Some(ks) = node.ints("kernel_shape")? {
            if ks != [k as i64, k as i64] {
                return Err(node.bad(format!("kernel_shape {ks:?} does not match the weight's {k}x{k}")));
            }
        }
        let p = ((k - 1) / 2) as i64;
        match node.string("auto_pad", "NOTSET")?.as_str() {
            "NOTSET" => {
                let pads = node.ints("pads")?.unwrap_or_else(|| vec![0; 4]);
                if pads != [p, p, p, p] {
                    return Err(node.bad(format!(
                        "pads {pads:?}: only \"same\" zero padding [{p}, {p}, {p}, {p}] is supported for a {k}x{k} kernel"
                    )));
                }
            }
            // An odd kernel at stride 1 pads (k-1)/2 on every side for both SAME modes.
            "SAME_UPPER" | "SAME_LOWER" => {}
            "VALID" if k == 1 => {}
            other => return Err(node.bad(format!("auto_pad {other} is not supported for a {k}x{k} kernel"))),
        }
        let weights = weight.to_f32();
        let bias = self.optional_bias(node, 2, c_out)?;
        self.start(node, FloatKind::Conv { c_in, c_out, h, w, k }, weights, bias, Act::Chw(c_out, h, w))
    }

    fn optional_bias(&self, node: &Node, i: usize, n: usize) -> Result<Vec<f32>, OnnxError> {
        if node.input(i).is_none() {
            return Ok(vec![0.0; n]);
        }
        let b = self.constant(node, i, "bias")?;
        match b.len() {
            len if len == n => Ok(b.to_f32()),
            1 => Ok(vec![b.values[0] as f32; n]),
            len => Err(node.bad(format!("bias has {len} values, expected {n}"))),
        }
    }

    fn dense(&mut self, node: &Node) -> Result<(), OnnxError> {
        self.data_input(node, 0)?;
        let Act::Flat(n) = self.act else {
            return Err(node.bad("its input is not flat ([1, N]); add a Flatten"));
        };
        let b = self.constant(node, 1, "weight")?;
        let &[rows, cols] = b.dims.as_slice() else {
            return Err(node.bad(format!("weight shape {:?} is not a matrix", b.dims)));
        };
        let gemm = node.at.op == "Gemm";
        let trans_b = gemm && node.int("transB", 0)? != 0;
        if gemm && node.int("transA", 0)? != 0 {
            return Err(node.bad("transA = 1 is not supported"));
        }
        let (inputs, outputs) = if trans_b { (cols, rows) } else { (rows, cols) };
        if outputs == 0 {
            return Err(node.bad("the weight has no output"));
        }
        if inputs != n {
            return Err(node.bad(format!("the weight takes {inputs} inputs, the input has {n}")));
        }
        let (alpha, beta) = if gemm { (node.float("alpha", 1.0)?, node.float("beta", 1.0)?) } else { (1.0, 1.0) };
        let mut weights = vec![0.0f32; inputs * outputs];
        for o in 0..outputs {
            for i in 0..inputs {
                let v = if trans_b { b.values[o * inputs + i] } else { b.values[i * outputs + o] };
                weights[o * inputs + i] = alpha * v as f32;
            }
        }
        let bias = if gemm { self.optional_bias(node, 2, outputs)? } else { vec![0.0; outputs] };
        let bias = bias.into_iter().map(|v| beta * v).collect();
        self.start(node, FloatKind::Dense { inputs, outputs }, weights, bias, Act::Flat(outputs))
    }

    fn add(&mut self, node: &Node) -> Result<(), OnnxError> {
        let (a, b) = match (node.input(0), node.input(1)) {
            (Some(a), Some(b)) if node.pb.input.len() == 2 => (self.resolve(a), self.resolve(b)),
            _ => return Err(node.bad("Add must have two inputs")),
        };
        let (x, other) = if a == self.current { (a, b) } else { (b, a) };
        if x != self.current {
            return Err(node.bad(format!("neither operand is the previous layer's output \"{}\"", self.current)));
        }
        let act = self.act;
        if let Some(c) = self.consts.get(&other).cloned() {
            let p =
                self.pending_at(node, &[Stage::Linear], "add a constant bias right after a Conv, Gemm or MatMul")?;
            let n = p.layer.kind.channels_out();
            let per_channel = match p.layer.kind {
                FloatKind::Dense { .. } => matches!(c.dims.as_slice(), [m] | [1, m] if *m == n),
                FloatKind::Conv { .. } => matches!(c.dims.as_slice(), [m, 1, 1] | [1, m, 1, 1] if *m == n),
            };
            if per_channel {
                p.layer.bias.iter_mut().zip(&c.values).for_each(|(b, v)| *b += *v as f32);
            } else if c.len() == 1 {
                p.layer.bias.iter_mut().for_each(|b| *b += c.values[0] as f32);
            } else {
                return Err(node.bad(format!("a constant of shape {:?} is not a per-channel bias", c.dims)));
            }
        } else {
            let what = "be a residual Add(x, Conv(x)) right after the Conv, Gemm or MatMul (and its bias or \
                        BatchNormalization), before the Relu";
            let p = self.pending_at(node, &[Stage::Linear], what)?;
            if other != p.input {
                return Err(
                    node.bad(format!("a residual Add must add the layer's own input \"{}\", not \"{other}\"", p.input))
                );
            }
            let shape = p.layer.kind.shape();
            if shape.num_inputs() != shape.num_outputs() {
                return Err(node.bad("a residual layer needs as many outputs as inputs"));
            }
            p.layer.residual = true;
            p.stage = Stage::Residual;
        }
        self.advance(node, act)
    }

    fn batch_norm(&mut self, node: &Node) -> Result<(), OnnxError> {
        self.data_input(node, 0)?;
        if node.int("training_mode", 0)? != 0 {
            return Err(node.bad("training_mode = 1 is not supported"));
        }
        if node.pb.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(node.bad("training outputs (running mean and variance) are not supported"));
        }
        let eps = f64::from(node.float("epsilon", 1e-5)?);
        let bn: Vec<Vec<f64>> = ["scale", "B", "mean", "var"]
            .iter()
            .enumerate()
            .map(|(i, what)| self.constant(node, i + 1, what).map(|c| c.values.clone()))
            .collect::<Result<_, _>>()?;
        let p = self.pending_at(node, &[Stage::Linear], "directly follow a Conv, Gemm or MatMul")?;
        let n = p.layer.kind.channels_out();
        if let Some(bad) = bn.iter().position(|v| v.len() != n) {
            return Err(node.bad(format!(
                "{} has {} values, expected {n}",
                ["scale", "B", "mean", "var"][bad],
                bn[bad].len()
            )));
        }
        let per = p.layer.kind.weights_per_channel();
        let channels = p.layer.weights.chunks_mut(per).zip(p.layer.bias.iter_mut()).enumerate();
        for (c, (weights, bias)) in channels {
            let (gamma, beta, mean, var) = (bn[0][c], bn[1][c], bn[2][c], bn[3][c]);
            if var + eps <= 0.0 {
                return Err(node.bad(format!("variance {var} of channel {c} is not positive")));
            }
            // w' = w·γ/√(var+ε), b' = (b − mean)·γ/√(var+ε) + β
            let f = gamma / (var + eps).sqrt();
            weights.iter_mut().for_each(|w| *w = (f64::from(*w) * f) as f32);
            *bias = ((f64::from(*bias) - mean) * f + beta) as f32;
        }
        self.advance(node, self.act)
    }

    fn pool(&mut self, node: &Node) -> Result<(), OnnxError> {
        self.data_input(node, 0)?;
        let Act::Chw(c, h, w) = self.act else {
            return Err(node.bad("only a convolution's [1, C, H, W] output can be pooled"));
        };
        let ks = node.ints("kernel_shape")?.unwrap_or_default();
        let &[k, k2] = ks.as_slice() else {
            return Err(node.bad(format!("kernel_shape {ks:?} is not 2-D")));
        };
        let size = usize::try_from(k).unwrap_or(0);
        if k != k2 || size == 0 || size > h.min(w) {
            return Err(node.bad(format!("kernel {k}x{k2}: only square windows that fit the {h}x{w} image")));
        }
        if node.ints("strides")?.is_some_and(|s| s != [k, k]) || (k != 1 && node.ints("strides")?.is_none()) {
            return Err(node.bad("the stride must equal the window (non-overlapping windows)"));
        }
        if node.ints("pads")?.is_some_and(|p| p.iter().any(|&v| v != 0)) {
            return Err(node.bad("padding is not supported"));
        }
        if node.ints("dilations")?.is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err(node.bad("dilations are not supported"));
        }
        if node.int("ceil_mode", 0)? != 0 {
            return Err(node.bad("ceil_mode = 1 is not supported"));
        }
        if !matches!(node.string("auto_pad", "NOTSET")?.as_str(), "NOTSET" | "VALID") {
            return Err(node.bad("auto_pad SAME is not supported"));
        }
        if node.pb.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(node.bad("the Indices output is not supported"));
        }
        let kind = if node.at.op == "MaxPool" { PoolKind::Max } else { PoolKind::Average };
        let p = self.pending_at(node, &[Stage::Relu], "directly follow a convolution's Relu")?;
        if !matches!(p.layer.kind, FloatKind::Conv { .. }) {
            return Err(node.bad("only a convolution's output can be pooled"));
        }
        p.layer.pool = Some(Pool { kind, size });
        p.stage = Stage::Pooled;
        self.advance(node, Act::Chw(c, h / size, w / size))
    }
}
