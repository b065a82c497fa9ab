//! ONNX graph → a sequential float IR of the layers fold-ml can prove.
//!
//! The walk is strict: every node either joins the current layer (Conv/Gemm/MatMul start
//! one; a constant Add, BatchNormalization, a residual Add, Relu and a pooling close it, in
//! that order), is a layout no-op (Flatten, Reshape that flattens, Identity, Dropout,
//! Constant), or is a shortcut branch: a Conv (and its BatchNormalization) of the input of
//! a layer of the current block, consumed by that block's residual Add (ResNet's
//! projection shortcut). An Add after the Relu (`x + Relu(f(x))`) closes the block with
//! one more layer (see `Walker::add_after_relu`). Anything else, or anything in another order, is an error naming the node,
//! and it comes before any calibration or quantization work. This module never guesses:
//! a graph it does not understand exactly is rejected.

use super::proto::{decode_tensor, graph_input, Const, Node};
use crate::error::{OnnxError, OnnxNode};
use fold_ml_circuits::gadgets::conv::ConvShape;
use fold_ml_circuits::gadgets::dense::DenseShape;
use fold_ml_circuits::gadgets::linear::LinearShape;
use fold_ml_circuits::gadgets::pool::{Pool, PoolKind};
use fold_ml_circuits::layer::MAX_STAGES;
use std::collections::HashMap;
use tract_onnx::pb::ModelProto;

/// One layer of the float model: `pool(relu(W·x + b [+ x]))`, in fold-ml's layouts.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayer {
    /// Geometry (the circuit's: [`LinearShape::taps`] says which input each weight reads).
    pub kind: LinearShape,
    /// Weights: conv `((co·C_in/groups + ci)·kh + ky)·kw + kx`, dense `o·inputs + i`.
    pub weights: Vec<f32>,
    /// One bias per output channel.
    pub bias: Vec<f32>,
    /// A ReLU follows the linear map (and the residual addition); without one the layer's
    /// outputs are signed (stored around zero point 64).
    pub relu: bool,
    /// An upper clip after the ReLU (`Clip(0, cap)`, e.g. ReLU6).
    pub cap: Option<f32>,
    /// A residual shortcut added to the linear output (before the ReLU).
    pub shortcut: Option<FloatShortcut>,
    /// Pooling of the (ReLU'd) convolution output.
    pub pool: Option<Pool>,
    /// The ONNX node names folded into this layer.
    pub origin: Vec<String>,
}

impl FloatLayer {
    /// The projection of its shortcut, if it has one.
    pub fn projection(&self) -> Option<&FloatProjection> {
        self.shortcut.as_ref().and_then(|s| s.projection.as_ref())
    }

    /// Input values.
    pub fn num_inputs(&self) -> usize {
        self.kind.num_inputs()
    }

    /// Output values, after pooling.
    pub fn num_outputs(&self) -> usize {
        match (self.pool, self.kind) {
            (Some(p), LinearShape::Conv(c)) => {
                let (c, h, w) = p.output_dims(c.output_dims());
                c * h * w
            }
            _ => self.kind.num_outputs(),
        }
    }
}

/// A residual shortcut: the input of the layer's block (the layer `back` places earlier,
/// 0: its own input), added directly or through a projection convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatShortcut {
    /// How many layers back the block starts.
    pub back: usize,
    /// The projection (its bias is folded into the layer's), or none: the identity.
    pub projection: Option<FloatProjection>,
}

/// A projection shortcut's convolution of the block input.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatProjection {
    /// Geometry.
    pub shape: ConvShape,
    /// Weights, in the convolution layout.
    pub weights: Vec<f32>,
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
    "Clip",
    "Flatten",
    "Reshape",
    "MaxPool",
    "AveragePool",
    "GlobalMaxPool",
    "GlobalAveragePool",
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
    /// An image flattened to `[1, C·H·W]`: a Gemm reading it is a convolution whose
    /// kernel covers the image, so the tensor keeps its rows (how it is committed).
    Flattened(usize, usize, usize),
}

impl Act {
    fn len(self) -> usize {
        match self {
            Act::Chw(c, h, w) | Act::Flattened(c, h, w) => c * h * w,
            Act::Flat(n) => n,
        }
    }

    /// Flattened to `[1, N]`, remembering the image it was.
    fn flattened(self) -> Self {
        match self {
            Act::Chw(c, h, w) if h * w > 1 => Act::Flattened(c, h, w),
            Act::Flattened(..) => self,
            _ => Act::Flat(self.len()),
        }
    }

    /// As an image (a flat tensor is `n×1×1`).
    fn dims(self) -> (usize, usize, usize) {
        match self {
            Act::Chw(c, h, w) => (c, h, w),
            Act::Flat(n) => (n, 1, 1),
            Act::Flattened(c, h, w) => (c * h * w, 1, 1),
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
    /// The tensor the layer reads, and its shape.
    input: (String, Act),
    stage: Stage,
}

/// A shortcut branch's convolution (BatchNormalization folded), waiting for its Add.
struct Side {
    /// The tensor it reads.
    input: String,
    projection: FloatProjection,
    bias: Vec<f32>,
    node: OnnxNode,
    /// Its nodes' names, for the layer's origin.
    names: Vec<String>,
}

struct Walker {
    consts: HashMap<String, Const>,
    alias: HashMap<String, String>,
    current: String,
    act: Act,
    layers: Vec<FloatLayer>,
    /// The input tensor (and its shape) of each finished layer.
    layer_inputs: Vec<(String, Act)>,
    /// The first layer a block may start at (past the last block's end).
    block_floor: usize,
    /// Shortcut branches by output tensor.
    side: HashMap<String, Side>,
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
    let mut walker = Walker {
        consts,
        alias: HashMap::new(),
        current: input,
        act,
        layers: Vec::new(),
        layer_inputs: Vec::new(),
        block_floor: 0,
        side: HashMap::new(),
        pending: None,
    };
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
    if let Some(side) = walker.side.values().next() {
        return Err(OnnxError::BadNode {
            node: side.node.clone(),
            reason: "this shortcut branch is never added to its block".into(),
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
            "Clip" => self.clip(node)?,
            "MaxPool" | "AveragePool" | "GlobalMaxPool" | "GlobalAveragePool" => self.pool(node)?,
            "Flatten" => {
                self.data_input(node, 0)?;
                let rank = if matches!(self.act, Act::Chw(..)) { 4 } else { 2 };
                let axis = node.int("axis", 1)?;
                if axis != 1 && axis != 1 - rank {
                    return Err(node.bad(format!("axis {axis}: only a flatten to [1, N] (axis 1) is supported")));
                }
                self.advance(node, self.act.flattened())?;
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
                self.advance(node, self.act.flattened())?;
            }
            other => return Err(node.bad(format!("{other} is not supported"))),
        }
        Ok(())
    }

    /// Closes the layer under construction (a layer without a Relu gives signed outputs).
    fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            if p.layer.shortcut.is_some() {
                self.block_floor = self.layers.len() + 1;
            }
            self.layers.push(p.layer);
            self.layer_inputs.push(p.input);
        }
    }

    fn start(
        &mut self,
        node: &Node,
        kind: LinearShape,
        weights: Vec<f32>,
        bias: Vec<f32>,
        act: Act,
    ) -> Result<(), OnnxError> {
        self.finish();
        let layer =
            FloatLayer { kind, weights, bias, relu: false, cap: None, shortcut: None, pool: None, origin: Vec::new() };
        let input = (self.current.clone(), self.act);
        self.pending = Some(Pending { layer, input, stage: Stage::Linear });
        self.advance(node, act)
    }

    fn conv(&mut self, node: &Node) -> Result<(), OnnxError> {
        let name = node.input(0).ok_or_else(|| node.bad("it has no data input"))?;
        let input = self.resolve(name);
        if input != self.current {
            if let Some((_, act)) = self.block_input(&input) {
                return self.side_conv(node, input, act);
            }
        }
        self.data_input(node, 0)?;
        let (shape, weights, bias) = self.conv_of(node, self.act)?;
        let (co, oh, ow) = shape.output_dims();
        self.start(node, LinearShape::Conv(shape), weights, bias, Act::Chw(co, oh, ow))
    }

    /// The tensors a shortcut may read: the input of the pending layer or of a finished
    /// layer of the current block, with how many layers back it is.
    fn block_input(&self, tensor: &str) -> Option<(usize, Act)> {
        let p = self.pending.as_ref()?;
        if p.input.0 == tensor {
            return Some((0, p.input.1));
        }
        let n = self.layers.len();
        (self.block_floor..n).rev().find(|&i| self.layer_inputs[i].0 == tensor).map(|i| (n - i, self.layer_inputs[i].1))
    }

    /// A shortcut branch's convolution of a block input.
    fn side_conv(&mut self, node: &Node, input: String, act: Act) -> Result<(), OnnxError> {
        let (shape, weights, bias) = self.conv_of(node, act)?;
        let names = vec![node.at.name.clone()];
        let side = Side { input, projection: FloatProjection { shape, weights }, bias, node: node.at.clone(), names };
        self.side.insert(node.output()?.to_string(), side);
        Ok(())
    }

    /// A Conv node's geometry, weights and bias on an input of shape `act`.
    fn conv_of(&self, node: &Node, act: Act) -> Result<(ConvShape, Vec<f32>, Vec<f32>), OnnxError> {
        let Act::Chw(c, h, w) = act else {
            return Err(node.bad("its input is not a [1, C, H, W] image"));
        };
        let weight = self.constant(node, 1, "weight")?;
        let &[c_out, c_in_group, kh, kw] = weight.dims.as_slice() else {
            return Err(node.bad(format!("weight shape {:?} is not [C_out, C_in/group, kh, kw] (2-D)", weight.dims)));
        };
        let groups = usize::try_from(node.int("group", 1)?).unwrap_or(0);
        if groups == 0 || c_in_group.checked_mul(groups) != Some(c) {
            return Err(node.bad(format!(
                "the weight takes {c_in_group} input channels per group in {groups} group(s); the input has {c}"
            )));
        }
        if node.ints("dilations")?.is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err(node.bad("dilations other than 1 are not supported"));
        }
        if let Some(ks) = node.ints("kernel_shape")? {
            if ks != [kh as i64, kw as i64] {
                return Err(node.bad(format!("kernel_shape {ks:?} does not match the weight's {kh}x{kw}")));
            }
        }
        let window = window_attributes(node, (h, w), [kh, kw])?;
        let shape = ConvShape {
            channels_in: c,
            channels_out: c_out,
            height: h,
            width: w,
            kernel: [kh, kw],
            stride: window.stride,
            pads: window.pads,
            groups,
        };
        shape.check().map_err(|e| node.bad(e))?;
        Ok((shape, weight.to_f32(), self.optional_bias(node, 2, c_out)?))
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
        let n = match self.act {
            Act::Flat(_) | Act::Flattened(..) => self.act.len(),
            Act::Chw(..) => return Err(node.bad("its input is not flat ([1, N]); add a Flatten")),
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
        let shape = match self.act {
            // Gemm weights `[o][c·H·W + y·W + x]` are the convolution's `[o][c][y][x]`
            Act::Flattened(c, h, w) => {
                LinearShape::Conv(ConvShape { kernel: [h, w], pads: [0; 4], ..ConvShape::same(c, outputs, h, w, 1) })
            }
            _ => LinearShape::Dense(DenseShape { inputs, outputs }),
        };
        self.start(node, shape, weights, bias, Act::Flat(outputs))
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
            let n = p.layer.kind.num_biases();
            // a Gemm or MatMul gives a vector (even one imported as a full-image convolution)
            let per_channel = match act {
                Act::Flat(_) | Act::Flattened(..) => matches!(c.dims.as_slice(), [m] | [1, m] if *m == n),
                Act::Chw(..) => matches!(c.dims.as_slice(), [m, 1, 1] | [1, m, 1, 1] if *m == n),
            };
            if per_channel {
                p.layer.bias.iter_mut().zip(&c.values).for_each(|(b, v)| *b += *v as f32);
            } else if c.len() == 1 {
                p.layer.bias.iter_mut().for_each(|b| *b += c.values[0] as f32);
            } else {
                return Err(node.bad(format!("a constant of shape {:?} is not a per-channel bias", c.dims)));
            }
        } else {
            let what = "be a residual Add right after a Conv, Gemm or MatMul (and its bias or BatchNormalization), \
                        before the Relu";
            let projection = self.side.remove(&other);
            let source = projection.as_ref().map_or(&other, |side| &side.input);
            let Some((back, block_act)) = self.block_input(source) else {
                return Err(node.bad(format!(
                    "a residual Add must add the input of a layer of its block (from layer {} on), or a \
                     Conv of it; \"{other}\" is neither",
                    self.block_floor
                )));
            };
            if back + 1 > MAX_STAGES {
                return Err(node.bad(format!("a residual block spans {} layers; at most {MAX_STAGES}", back + 1)));
            }
            if self.pending.as_ref().is_some_and(|p| p.stage == Stage::Relu) {
                return self.add_after_relu(node, back, block_act, projection);
            }
            let p = self.pending_at(node, &[Stage::Linear], what)?;
            let out = match (&projection, p.layer.kind) {
                (Some(_), LinearShape::Conv(c)) => c.output_dims(),
                (Some(_), LinearShape::Dense(_)) => {
                    return Err(node.bad("a projection shortcut is added to a convolution only"));
                }
                (None, kind) => (kind.num_outputs(), 1, 1),
            };
            check_shortcut(node, projection.as_ref(), block_act, out)?;
            if let Some(side) = &projection {
                p.layer.bias.iter_mut().zip(&side.bias).for_each(|(b, v)| *b += v);
                p.layer.origin.extend(side.names.iter().cloned());
            }
            p.layer.shortcut = Some(FloatShortcut { back, projection: projection.map(|s| s.projection) });
            p.stage = Stage::Residual;
        }
        self.advance(node, act)
    }

    /// `x + Relu(f(x))`: the sum is the output of one more layer of the block — a
    /// per-channel identity (a depthwise 1×1 convolution whose unit weights are committed
    /// like any other) plus the shortcut. Both terms are non-negative (the block input is a
    /// hidden layer's output, never the possibly signed model input), so the new layer's
    /// ReLU changes nothing and its requantization only rescales.
    fn add_after_relu(
        &mut self,
        node: &Node,
        back: usize,
        block_act: Act,
        projection: Option<Side>,
    ) -> Result<(), OnnxError> {
        let n = self.layers.len();
        if self.pending.as_ref().is_some_and(|p| p.layer.shortcut.is_some()) {
            return Err(node.bad("nested residual connections (x + Relu(y + f(y))) are not supported"));
        }
        if n > back && !self.layers[n - back - 1].relu {
            return Err(node.bad("x + Relu(f(x)) of a signed tensor (a layer without Relu) is not supported"));
        }
        if n == back {
            return Err(node.bad(
                "x + Relu(f(x)) of the model input is not supported (the input may be negative and the sum is stored \
                 unsigned): put a layer before the block",
            ));
        }
        if back + 2 > MAX_STAGES {
            return Err(node.bad(format!("a residual block spans {} layers; at most {MAX_STAGES}", back + 2)));
        }
        let (c, h, w) = self.act.dims();
        check_shortcut(node, projection.as_ref(), block_act, (c, h, w))?;
        let shape = ConvShape {
            channels_in: c,
            channels_out: c,
            height: h,
            width: w,
            kernel: [1, 1],
            stride: [1, 1],
            pads: [0; 4],
            groups: c,
        };
        let mut origin = vec![node.at.name.clone()];
        let bias = match &projection {
            Some(side) => {
                origin.splice(0..0, side.names.iter().cloned());
                side.bias.clone()
            }
            None => vec![0.0; c],
        };
        let shortcut = Some(FloatShortcut { back: back + 1, projection: projection.map(|s| s.projection) });
        let layer = FloatLayer {
            kind: LinearShape::Conv(shape),
            weights: vec![1.0; c],
            bias,
            relu: true,
            cap: None,
            shortcut,
            pool: None,
            origin,
        };
        let input = (self.current.clone(), self.act);
        self.finish();
        self.pending = Some(Pending { layer, input, stage: Stage::Relu });
        self.current = node.output()?.to_string();
        Ok(())
    }

    /// `Clip(x, 0, cap)` (ReLU6 and its kind): the layer's ReLU with an upper clip.
    fn clip(&mut self, node: &Node) -> Result<(), OnnxError> {
        self.data_input(node, 0)?;
        // opset 11+: bounds are optional inputs 1 and 2; before: attributes `min`, `max`
        let bound = |i: usize, attr: &str| -> Result<Option<f64>, OnnxError> {
            match node.input(i) {
                Some(_) => Ok(Some(self.constant(node, i, attr)?.values.first().copied().unwrap_or(f64::NAN))),
                None if node.pb.attribute.iter().any(|a| a.name == attr) => Ok(Some(f64::from(node.float(attr, 0.0)?))),
                None => Ok(None),
            }
        };
        let (lo, hi) = (bound(1, "min")?, bound(2, "max")?);
        let cap = match (lo, hi) {
            (Some(lo), Some(hi)) if lo == 0.0 && hi > 0.0 && hi.is_finite() => hi as f32,
            _ => {
                return Err(
                    node.bad(format!("only Clip(x, 0, max) with a positive max is supported (min {lo:?}, max {hi:?})"))
                )
            }
        };
        let what =
            "directly follow a Conv, Gemm, MatMul, bias Add, BatchNormalization or residual Add (one Relu or Clip \
                    per layer)";
        let p = self.pending_at(node, &[Stage::Linear, Stage::Residual], what)?;
        p.layer.relu = true;
        p.layer.cap = Some(cap);
        p.stage = Stage::Relu;
        self.advance(node, self.act)
    }

    fn batch_norm(&mut self, node: &Node) -> Result<(), OnnxError> {
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
        // A shortcut branch's convolution: folded there, under the node's output name.
        let input = self.resolve(node.input(0).ok_or_else(|| node.bad("it has no data input"))?);
        if let Some(mut side) = self.side.remove(&input) {
            let per = side.projection.weights.len() / side.bias.len().max(1);
            fold_batch_norm(node, &bn, eps, &mut side.projection.weights, per, &mut side.bias)?;
            side.names.push(node.at.name.clone());
            self.side.insert(node.output()?.to_string(), side);
            return Ok(());
        }
        self.data_input(node, 0)?;
        let p = self.pending_at(node, &[Stage::Linear], "directly follow a Conv, Gemm or MatMul")?;
        let per = p.layer.kind.max_fan_in();
        fold_batch_norm(node, &bn, eps, &mut p.layer.weights, per, &mut p.layer.bias)?;
        self.advance(node, self.act)
    }

    fn pool(&mut self, node: &Node) -> Result<(), OnnxError> {
        self.data_input(node, 0)?;
        let Act::Chw(c, h, w) = self.act else {
            return Err(node.bad("only a convolution's [1, C, H, W] output can be pooled"));
        };
        let kind = if node.at.op.contains("Max") { PoolKind::Max } else { PoolKind::Average };
        let pool = if node.at.op.starts_with("Global") {
            Pool::global(kind, (c, h, w))
        } else {
            let ks = node.ints("kernel_shape")?.unwrap_or_default();
            let kernel = match ks.as_slice() {
                &[kh, kw] if kh > 0 && kw > 0 => [kh as usize, kw as usize],
                _ => return Err(node.bad(format!("kernel_shape {ks:?} is not a 2-D window"))),
            };
            if node.ints("dilations")?.is_some_and(|d| d.iter().any(|&v| v != 1)) {
                return Err(node.bad("dilations other than 1 are not supported"));
            }
            if node.int("ceil_mode", 0)? != 0 {
                return Err(node.bad("ceil_mode = 1 is not supported (floor mode only)"));
            }
            if node.pb.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(node.bad("the Indices output is not supported"));
            }
            let window = window_attributes(node, (h, w), kernel)?;
            if kind == PoolKind::Average && window.pads != [0; 4] && node.int("count_include_pad", 0)? != 0 {
                return Err(node.bad("count_include_pad = 1 is not supported (padding is never averaged in)"));
            }
            Pool { kind, kernel, stride: window.stride, pads: window.pads }
        };
        pool.check((c, h, w)).map_err(|e| node.bad(e))?;
        let p = self.pending_at(node, &[Stage::Relu], "directly follow a convolution's Relu")?;
        if !matches!(p.layer.kind, LinearShape::Conv(_)) {
            return Err(node.bad("only a convolution's output can be pooled"));
        }
        p.layer.pool = Some(pool);
        p.stage = Stage::Pooled;
        self.advance(node, {
            let (c, h, w) = pool.output_dims((c, h, w));
            Act::Chw(c, h, w)
        })
    }
}

/// Checks that a shortcut — a projection, or the block input itself (of shape `block`) —
/// gives as many values as the layer output (of dimensions `out`) it joins.
fn check_shortcut(
    node: &Node,
    projection: Option<&Side>,
    block: Act,
    out: (usize, usize, usize),
) -> Result<(), OnnxError> {
    match projection {
        Some(side) if side.projection.shape.output_dims() != out => {
            Err(node.bad(format!("the shortcut gives {:?}, the layer {out:?}", side.projection.shape.output_dims())))
        }
        None if block.len() != out.0 * out.1 * out.2 => {
            Err(node.bad("a residual Add needs a shortcut of as many values as the layer's outputs"))
        }
        _ => Ok(()),
    }
}

/// Folds a BatchNormalization (`[scale, B, mean, var]`) into the per-channel weights
/// (`per` each) and biases before it: `w' = w·γ/√(var+ε)`, `b' = (b − mean)·γ/√(var+ε) + β`.
fn fold_batch_norm(
    node: &Node,
    bn: &[Vec<f64>],
    eps: f64,
    weights: &mut [f32],
    per: usize,
    bias: &mut [f32],
) -> Result<(), OnnxError> {
    let n = bias.len();
    if let Some(bad) = bn.iter().position(|v| v.len() != n) {
        return Err(node.bad(format!(
            "{} has {} values, expected {n}",
            ["scale", "B", "mean", "var"][bad],
            bn[bad].len()
        )));
    }
    for (c, (weights, bias)) in weights.chunks_mut(per.max(1)).zip(bias.iter_mut()).enumerate() {
        let (gamma, beta, mean, var) = (bn[0][c], bn[1][c], bn[2][c], bn[3][c]);
        if var + eps <= 0.0 {
            return Err(node.bad(format!("variance {var} of channel {c} is not positive")));
        }
        let f = gamma / (var + eps).sqrt();
        weights.iter_mut().for_each(|w| *w = (f64::from(*w) * f) as f32);
        *bias = ((f64::from(*bias) - mean) * f + beta) as f32;
    }
    Ok(())
}

/// Strides and pads of a sliding window (Conv, MaxPool, AveragePool).
struct Window {
    stride: [usize; 2],
    pads: [usize; 4],
}

/// Reads `strides` (default 1), and `pads` or `auto_pad` (ONNX's rule for SAME: the total
/// padding `max((⌈n/s⌉ - 1)·s + k - n, 0)`, split with the odd cell at the end for
/// SAME_UPPER and at the beginning for SAME_LOWER).
fn window_attributes(node: &Node, (h, w): (usize, usize), kernel: [usize; 2]) -> Result<Window, OnnxError> {
    let stride = match node.ints("strides")?.as_deref() {
        None => [1, 1],
        Some(&[sh, sw]) if sh > 0 && sw > 0 => [sh as usize, sw as usize],
        Some(s) => return Err(node.bad(format!("strides {s:?} are not two positive integers"))),
    };
    let explicit = node.ints("pads")?;
    let pads = match node.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" => match explicit.as_deref() {
            None => [0; 4],
            Some(p) if p.len() == 4 && p.iter().all(|&v| v >= 0) => [p[0], p[1], p[2], p[3]].map(|v| v as usize),
            Some(p) => return Err(node.bad(format!("pads {p:?} are not four non-negative integers"))),
        },
        "VALID" => [0; 4],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let total = |n: usize, s: usize, k: usize| ((n.div_ceil(s) - 1) * s + k).saturating_sub(n);
            let (th, tw) = (total(h, stride[0], kernel[0]), total(w, stride[1], kernel[1]));
            let begin = |t: usize| if mode == "SAME_UPPER" { t / 2 } else { t.div_ceil(2) };
            [begin(th), begin(tw), th - begin(th), tw - begin(tw)]
        }
        other => return Err(node.bad(format!("auto_pad {other} is not supported"))),
    };
    Ok(Window { stride, pads })
}
