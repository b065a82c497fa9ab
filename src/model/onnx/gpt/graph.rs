//! ONNX graph → a float GPT: the token and position embeddings, a stack of pre-norm blocks
//! and the head, read by following the data flow from the graph input.
//!
//! The match is exact, as in [`crate::model::onnx::graph`]: every node of a block must be
//! where GPT-2's layout puts it (as `torch.onnx` exports `examples/gpt/train.py`), every
//! constant must have the value the pattern needs (the causal mask, GELU's `√2`, `1` and
//! `1/2`), and every node of the graph must be used; anything else is an error naming the
//! node, before any calibration.

use super::super::proto::{decode_tensor, Const, Node};
use crate::error::OnnxError;
use std::collections::HashMap;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{type_proto, ModelProto};

/// A LayerNorm over the model width: `γ`, `β` and `ε`.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayerNorm {
    /// Gain.
    pub gamma: Vec<f64>,
    /// Bias.
    pub beta: Vec<f64>,
    /// The variance's `ε`.
    pub eps: f64,
}

/// A linear map of `k` inputs to `m` outputs: `w[i·m + j]` multiplies input `i` into output
/// `j` (input-major, as ONNX's `MatMul` stores it).
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLinear {
    /// Inputs.
    pub k: usize,
    /// Outputs.
    pub m: usize,
    /// Weights, input-major.
    pub w: Vec<f64>,
    /// Biases.
    pub b: Vec<f64>,
}

/// One pre-norm block: `x + W_o·attn(LN₁(x))`, then `r + W_2·GELU(W_1·LN₂(r))`.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatBlock {
    /// LayerNorm before attention.
    pub ln1: FloatLayerNorm,
    /// Query, key, value and output projections (`d×d`).
    pub q: FloatLinear,
    /// Key projection.
    pub k: FloatLinear,
    /// Value projection.
    pub v: FloatLinear,
    /// Output projection.
    pub o: FloatLinear,
    /// What the scores `q·k` are multiplied by before the softmax (`1/√d_head` in GPT-2).
    pub score_scale: f64,
    /// LayerNorm before the MLP.
    pub ln2: FloatLayerNorm,
    /// The MLP (`d×H`, then `H×d`), exact (erf) GELU between.
    pub fc1: FloatLinear,
    /// The MLP's second map.
    pub fc2: FloatLinear,
}

/// A float GPT as fold-ml reads it from ONNX.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatGpt {
    /// Vocabulary size.
    pub vocab: usize,
    /// Context (tokens per input).
    pub tokens: usize,
    /// Model width.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP width.
    pub hidden: usize,
    /// Token embeddings, `vocab×width`.
    pub tok: Vec<f64>,
    /// Position embeddings, `tokens×width`.
    pub pos: Vec<f64>,
    /// The blocks, in order.
    pub blocks: Vec<FloatBlock>,
    /// The final LayerNorm.
    pub ln_f: FloatLayerNorm,
    /// The head on the last position: `width → vocab`.
    pub head: FloatLinear,
}

/// The graph, indexed by what consumes each tensor.
struct Graph<'a> {
    nodes: Vec<Node<'a>>,
    consts: HashMap<String, Const>,
    consumers: HashMap<&'a str, Vec<usize>>,
    used: Vec<bool>,
}

/// Parses a GPT (module docs) out of `model`.
pub fn parse(model: &ModelProto) -> Result<FloatGpt, OnnxError> {
    let graph = model.graph.as_ref().ok_or_else(|| OnnxError::Graph("the model has no graph".into()))?;
    let mut consts = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), decode_tensor(t).map_err(OnnxError::Graph)?);
    }
    let total = graph.node.len();
    let nodes: Vec<Node> = graph.node.iter().enumerate().map(|(i, pb)| Node::new(pb, i, total)).collect();
    let mut used = vec![false; total];
    // Constants and constant aliases first: they are not part of the data flow.
    for (i, n) in nodes.iter().enumerate() {
        let name = n.output()?.to_string();
        match n.pb.op_type.as_str() {
            "Constant" => {
                consts.insert(name, n.constant_value()?);
                used[i] = true;
            }
            "Identity" => {
                if let Some(c) = n.input(0).and_then(|s| consts.get(s)).cloned() {
                    consts.insert(name, c);
                    used[i] = true;
                }
            }
            _ => {}
        }
    }
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for input in n.pb.input.iter().filter(|s| !s.is_empty() && !consts.contains_key(s.as_str())) {
            consumers.entry(input.as_str()).or_default().push(i);
        }
    }
    let mut g = Graph { nodes, consts, consumers, used };
    let (input, tokens) = token_input(graph)?;
    let (gpt, logits) = g.gpt(&input, tokens)?;
    match graph.output.as_slice() {
        [o] if o.name == logits => {}
        [o] => return Err(OnnxError::Graph(format!("the graph output \"{}\" is not the head's logits", o.name))),
        outs => return Err(OnnxError::Graph(format!("the graph must have one output, it has {}", outs.len()))),
    }
    if let Some(i) = g.used.iter().position(|&u| !u) {
        return Err(g.nodes[i].bad("this node is not part of the GPT pattern fold-ml reads (embedding, blocks, head)"));
    }
    Ok(gpt)
}

/// The graph's token input: int64 of shape `[1, T]`.
fn token_input(graph: &tract_onnx::pb::GraphProto) -> Result<(String, usize), OnnxError> {
    let inputs: Vec<_> = graph.input.iter().filter(|i| !graph.initializer.iter().any(|t| t.name == i.name)).collect();
    let [input] = inputs.as_slice() else {
        return Err(OnnxError::Graph(format!("a GPT takes one input (the token ids), this graph {}", inputs.len())));
    };
    let bad = |reason: &str| OnnxError::Graph(format!("graph input \"{}\": {reason}", input.name));
    let Some(type_proto::Value::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(bad("it is not a tensor"));
    };
    if t.elem_type != DataType::Int64 as i32 && t.elem_type != DataType::Int32 as i32 {
        return Err(bad("token ids must be int64 or int32"));
    }
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    let dims: Vec<_> = t.shape.as_ref().map(|s| s.dim.iter().map(|d| d.value.clone()).collect()).unwrap_or_default();
    match dims.as_slice() {
        [Some(Value::DimValue(1)) | Some(Value::DimParam(_)) | None, Some(Value::DimValue(n))] if *n > 0 => {
            Ok((input.name.clone(), *n as usize))
        }
        _ => Err(bad("its shape must be [1, tokens] with a fixed number of tokens")),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

impl<'a> Graph<'a> {
    /// The one node consuming `tensor`, which must be an `op`.
    fn next(&mut self, tensor: &str, op: &str) -> Result<usize, OnnxError> {
        let found = self.consumers.get(tensor).map(Vec::as_slice).unwrap_or_default();
        match found {
            [i] if self.nodes[*i].pb.op_type == op => {
                self.used[*i] = true;
                Ok(*i)
            }
            [i] => Err(self.nodes[*i].bad(format!("expected {op} here, reading \"{tensor}\""))),
            [] => Err(OnnxError::Graph(format!("\"{tensor}\" is not read by any node; expected a {op}"))),
            _ => Err(OnnxError::Graph(format!("\"{tensor}\" is read by {} nodes; expected one {op}", found.len()))),
        }
    }

    /// The consumers of `tensor` that are `op`s.
    fn consumers_of(&self, tensor: &str, op: &str) -> Vec<usize> {
        let found = self.consumers.get(tensor).map(Vec::as_slice).unwrap_or_default();
        found.iter().copied().filter(|&i| self.nodes[i].pb.op_type == op).collect()
    }

    fn out(&self, i: usize) -> Result<String, OnnxError> {
        self.nodes[i].output().map(str::to_string)
    }

    /// The constant input of node `i` and the index of its other (data) input.
    fn const_operand(&self, i: usize, data: &str) -> Result<(&Const, usize), OnnxError> {
        let n = &self.nodes[i];
        let (a, b) = (n.input(0).unwrap_or_default(), n.input(1).unwrap_or_default());
        let (c, at) = if a == data {
            (b, 0)
        } else if b == data {
            (a, 1)
        } else {
            return Err(n.bad(format!("it does not read \"{data}\"")));
        };
        let c = self.consts.get(c).ok_or_else(|| n.bad(format!("its operand \"{c}\" is not a constant")))?;
        Ok((c, at))
    }

    /// A scalar constant operand of node `i` (beside `data`).
    fn scalar(&self, i: usize, data: &str) -> Result<f64, OnnxError> {
        match self.const_operand(i, data)?.0.values.as_slice() {
            [v] => Ok(*v),
            _ => Err(self.nodes[i].bad("expected a scalar constant operand")),
        }
    }

    /// Follows `x → LayerNormalization`, node `i`.
    fn layernorm(&mut self, i: usize, d: usize) -> Result<FloatLayerNorm, OnnxError> {
        let n = &self.nodes[i];
        let axis = n.int("axis", -1)?;
        if axis != -1 && axis != 2 {
            return Err(n.bad(format!("axis {axis}: fold-ml normalises over the last axis")));
        }
        let eps = f64::from(n.float("epsilon", 1e-5)?);
        let get = |k: usize, what: &str| -> Result<Vec<f64>, OnnxError> {
            let name = n.input(k).ok_or_else(|| n.bad(format!("it has no {what}")))?;
            let c = self.consts.get(name).ok_or_else(|| n.bad(format!("its {what} is not a constant")))?;
            if c.len() != d {
                return Err(n.bad(format!("its {what} has {} values, the width is {d}", c.len())));
            }
            Ok(c.values.clone())
        };
        let (gamma, beta) = (get(1, "scale")?, get(2, "bias")?);
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(n.bad(format!("epsilon {eps} is not positive")));
        }
        Ok(FloatLayerNorm { gamma, beta, eps })
    }

    /// `x → MatMul(W) → Add(b)`: returns the map and the Add's output.
    fn linear(&mut self, matmul: usize, x: &str) -> Result<(FloatLinear, String), OnnxError> {
        let (w, at) = self.const_operand(matmul, x)?;
        let n = &self.nodes[matmul];
        let (k, m) = match (w.dims.as_slice(), at) {
            (&[k, m], 0) => (k, m),
            _ => return Err(n.bad("expected x·W with a constant 2-D W")),
        };
        let w = w.values.clone();
        let y = self.out(matmul)?;
        let add = self.next(&y, "Add")?;
        let (b, _) = self.const_operand(add, &y)?;
        if b.len() != m {
            return Err(self.nodes[add].bad(format!("a bias of {} values for {m} outputs", b.len())));
        }
        let b = b.values.clone();
        Ok((FloatLinear { k, m, w, b }, self.out(add)?))
    }

    /// A `Reshape` or `Transpose` at node `i` whose shape/permutation must be `want`.
    fn layout(&mut self, i: usize, want: &[i64]) -> Result<String, OnnxError> {
        let n = &self.nodes[i];
        let got = if n.pb.op_type == "Transpose" {
            n.ints("perm")?.unwrap_or_default()
        } else {
            let x = n.input(0).unwrap_or_default().to_string();
            self.const_operand(i, &x)?.0.values.iter().map(|&v| v as i64).collect()
        };
        let fits = got.len() == want.len()
            && got.iter().zip(want).enumerate().all(|(j, (g, w))| g == w || (j == 0 && *g == 1 && *w == -1));
        if !fits {
            return Err(self.nodes[i].bad(format!("expected {want:?}, got {got:?}")));
        }
        self.out(i)
    }

    /// The model and the name of its logits.
    fn gpt(&mut self, input: &str, t: usize) -> Result<(FloatGpt, String), OnnxError> {
        // Embedding: Gather(tok, ids) + positions.
        let gather = self.next(input, "Gather")?;
        let n = &self.nodes[gather];
        let tok =
            n.input(0).and_then(|s| self.consts.get(s)).ok_or_else(|| n.bad("the token table is not a constant"))?;
        let (vocab, d) = match tok.dims.as_slice() {
            &[v, d] if n.int("axis", 0)? == 0 && n.input(1) == Some(input) => (v, d),
            _ => return Err(n.bad("expected Gather(table [vocab, width], token ids) on axis 0")),
        };
        let tok = tok.values.clone();
        let e = self.out(gather)?;
        let add = self.next(&e, "Add")?;
        let (pos, _) = self.const_operand(add, &e)?;
        if pos.len() != t * d {
            return Err(self.nodes[add].bad(format!("position embeddings of {} values, expected {t}×{d}", pos.len())));
        }
        let pos = pos.values.clone();
        let mut x = self.out(add)?;
        let mut blocks = Vec::new();
        let (mut heads, mut hidden) = (0, 0);
        loop {
            let lns = self.consumers_of(&x, "LayerNormalization");
            let [ln] = lns.as_slice() else {
                return Err(OnnxError::Graph(format!("\"{x}\" is not normalised by exactly one LayerNormalization")));
            };
            let ln = *ln;
            self.used[ln] = true;
            let norm = self.layernorm(ln, d)?;
            let a = self.out(ln)?;
            if self.consumers_of(&a, "MatMul").len() != 3 {
                let (head, logits) = self.head(&a, d, vocab, t)?;
                if blocks.is_empty() {
                    return Err(OnnxError::Graph("the graph has no transformer block".into()));
                }
                let gpt = FloatGpt { vocab, tokens: t, width: d, heads, hidden, tok, pos, blocks, ln_f: norm, head };
                return Ok((gpt, logits));
            }
            let (block, out, h) = self.block(&x, norm, &a, t, d)?;
            if !blocks.is_empty() && (h != heads || block.fc1.m != hidden) {
                return Err(OnnxError::Graph(format!("block {} is not shaped as the first", blocks.len())));
            }
            (heads, hidden) = (h, block.fc1.m);
            blocks.push(block);
            x = out;
        }
    }

    /// One block from its input `x` and its first LayerNorm's output `a`.
    fn block(
        &mut self,
        x: &str,
        ln1: FloatLayerNorm,
        a: &str,
        t: usize,
        d: usize,
    ) -> Result<(FloatBlock, String, usize), OnnxError> {
        let (mut q, mut k, mut v) = (None, None, None);
        for mm in self.consumers_of(a, "MatMul") {
            self.used[mm] = true;
            let (lin, y) = self.linear(mm, a)?;
            if lin.k != d || lin.m != d {
                return Err(self.nodes[mm].bad("a Q/K/V projection must be width × width"));
            }
            let r = self.next(&y, "Reshape")?;
            let split: Vec<i64> = {
                let c = self.const_operand(r, &y)?.0;
                c.values.iter().map(|&v| v as i64).collect()
            };
            let (h, dh) = match split.as_slice() {
                &[_, tt, h, dh] if tt as usize == t && h > 0 && dh > 0 && (h * dh) as usize == d => (h, dh),
                _ => return Err(self.nodes[r].bad(format!("expected [-1, {t}, heads, {d}/heads], got {split:?}"))),
            };
            let y = self.layout(r, &[-1, t as i64, h, dh])?;
            let tr = self.next(&y, "Transpose")?;
            let perm = self.nodes[tr].ints("perm")?.unwrap_or_default();
            let yt = self.out(tr)?;
            if perm == [0, 2, 3, 1] {
                k = Some((lin, yt, h));
            } else if perm == [0, 2, 1, 3] {
                let user = self.consumers_of(&yt, "MatMul");
                let [u] = user.as_slice() else {
                    return Err(self.nodes[tr].bad("a head split must feed one MatMul"));
                };
                if self.nodes[*u].input(0) == Some(yt.as_str()) {
                    q = Some((lin, yt, h))
                } else {
                    v = Some((lin, yt, h))
                }
            } else {
                return Err(self.nodes[tr].bad(format!("unexpected permutation {perm:?}")));
            }
        }
        let (Some((q, qt, h)), Some((k, kt, _)), Some((v, vt, _))) = (q, k, v) else {
            return Err(OnnxError::Graph(format!("\"{a}\" does not feed one query, one key and one value projection")));
        };
        // Scores: MatMul(q, kᵀ) → Div or Mul by a constant → Add(causal mask) → Softmax.
        let s = self.next(&qt, "MatMul")?;
        if self.nodes[s].input(1) != Some(kt.as_str()) {
            return Err(self.nodes[s].bad("the scores must be q·kᵀ"));
        }
        let so = self.out(s)?;
        let scale_node = self.consumers.get(so.as_str()).and_then(|c| c.first().copied()).unwrap_or(s);
        let score_scale = match self.nodes[scale_node].pb.op_type.as_str() {
            "Div" => {
                let n = self.next(&so, "Div")?;
                1.0 / self.scalar(n, &so)?
            }
            "Mul" => {
                let n = self.next(&so, "Mul")?;
                self.scalar(n, &so)?
            }
            _ => return Err(self.nodes[scale_node].bad("expected the scores to be scaled (Div or Mul by a constant)")),
        };
        if !(score_scale > 0.0 && score_scale.is_finite()) {
            return Err(self.nodes[scale_node].bad(format!("score scale {score_scale} is not positive")));
        }
        let scaled = self.out(scale_node)?;
        let mask = self.next(&scaled, "Add")?;
        let (m, _) = self.const_operand(mask, &scaled)?;
        let causal = m.len() == t * t
            && (0..t)
                .all(|i| (0..t).all(|j| if j <= i { m.values[i * t + j] == 0.0 } else { m.values[i * t + j] <= -1e9 }));
        if !causal {
            return Err(
                self.nodes[mask].bad("the attention mask is not causal (0 on and below the diagonal, -inf above)")
            );
        }
        let masked = self.out(mask)?;
        let sm = self.next(&masked, "Softmax")?;
        let axis = self.nodes[sm].int("axis", -1)?;
        if axis != -1 && axis != 3 {
            return Err(self.nodes[sm].bad("the softmax must run over the keys (last axis)"));
        }
        let p = self.out(sm)?;
        let mix = self.next(&p, "MatMul")?;
        if self.nodes[mix].input(1) != Some(vt.as_str()) {
            return Err(self.nodes[mix].bad("expected softmax(scores)·v"));
        }
        let mo = self.out(mix)?;
        let tr = self.next(&mo, "Transpose")?;
        let mt = self.layout(tr, &[0, 2, 1, 3])?;
        let r = self.next(&mt, "Reshape")?;
        let merged = self.layout(r, &[-1, t as i64, d as i64])?;
        let om = self.next(&merged, "MatMul")?;
        let (o, attn) = self.linear(om, &merged)?;
        let r1 = self.residual(x, &attn)?;
        let lns = self.consumers_of(&r1, "LayerNormalization");
        let [ln2] = lns.as_slice() else {
            return Err(OnnxError::Graph(format!("\"{r1}\" is not normalised by one LayerNormalization")));
        };
        let ln2i = *ln2;
        self.used[ln2i] = true;
        let ln2 = self.layernorm(ln2i, d)?;
        let a2 = self.out(ln2i)?;
        let f1 = self.next(&a2, "MatMul")?;
        let (fc1, h1) = self.linear(f1, &a2)?;
        let g = self.gelu(&h1)?;
        let f2 = self.next(&g, "MatMul")?;
        let (fc2, m2) = self.linear(f2, &g)?;
        if fc1.k != d || fc2.k != fc1.m || fc2.m != d {
            return Err(self.nodes[f2].bad("the MLP must map width → hidden → width"));
        }
        let out = self.residual(&r1, &m2)?;
        Ok((FloatBlock { ln1, q, k, v, o, score_scale, ln2, fc1, fc2 }, out, h as usize))
    }

    /// `Add(stream, branch)`, the residual: its output.
    fn residual(&mut self, stream: &str, branch: &str) -> Result<String, OnnxError> {
        let add = self.next(branch, "Add")?;
        let n = &self.nodes[add];
        let ins = [n.input(0).unwrap_or_default(), n.input(1).unwrap_or_default()];
        if !(ins.contains(&stream) && ins.contains(&branch)) {
            return Err(n.bad(format!("expected the residual \"{stream}\" + \"{branch}\"")));
        }
        self.out(add)
    }

    /// Exact GELU: either one `Gelu` node or `x·(erf(x/√2) + 1)·0.5` as torch exports it.
    fn gelu(&mut self, h: &str) -> Result<String, OnnxError> {
        if let [g] = self.consumers_of(h, "Gelu").as_slice() {
            let g = *g;
            self.used[g] = true;
            if self.nodes[g].string("approximate", "none")? != "none" {
                return Err(self.nodes[g].bad("fold-ml reads the exact (erf) GELU"));
            }
            return self.out(g);
        }
        let div =
            *self.consumers_of(h, "Div").first().ok_or_else(|| OnnxError::Graph(format!("\"{h}\": expected GELU")))?;
        self.used[div] = true;
        let c = self.scalar(div, h)?;
        if !close(c, std::f64::consts::SQRT_2) {
            return Err(self.nodes[div].bad(format!("GELU divides by √2, not {c}")));
        }
        let erf = self.next(&self.out(div)?, "Erf")?;
        let e = self.out(erf)?;
        let one = self.next(&e, "Add")?;
        if !close(self.scalar(one, &e)?, 1.0) {
            return Err(self.nodes[one].bad("GELU adds 1 to erf"));
        }
        let e1 = self.out(one)?;
        let mul = self.next(&e1, "Mul")?;
        let n = &self.nodes[mul];
        if !(n.input(0) == Some(h) || n.input(1) == Some(h)) {
            return Err(n.bad("GELU multiplies x by erf(x/√2) + 1"));
        }
        let m = self.out(mul)?;
        let half = self.next(&m, "Mul")?;
        if !close(self.scalar(half, &m)?, 0.5) {
            return Err(self.nodes[half].bad("GELU halves x·(erf + 1)"));
        }
        self.out(half)
    }

    /// The head: `Gather(last position) → Gemm` (or `MatMul → Add`) to the logits.
    fn head(&mut self, a: &str, d: usize, vocab: usize, t: usize) -> Result<(FloatLinear, String), OnnxError> {
        let g = self.next(a, "Gather")?;
        let n = &self.nodes[g];
        let idx = match n.input(1).and_then(|s| self.consts.get(s)).map(|c| c.values.as_slice()) {
            Some([i]) => *i as i64,
            _ => return Err(n.bad("expected the last position: Gather of a constant index")),
        };
        if n.int("axis", 0)? != 1 || !(idx == -1 || idx == t as i64 - 1) {
            return Err(n.bad("the head reads the last position (Gather axis 1, index -1)"));
        }
        let last = self.out(g)?;
        let gemm = self.next(&last, "Gemm")?;
        let n = &self.nodes[gemm];
        let (alpha, beta, ta, tb) =
            (n.float("alpha", 1.0)?, n.float("beta", 1.0)?, n.int("transA", 0)?, n.int("transB", 0)?);
        let c = |k: usize| n.input(k).and_then(|s| self.consts.get(s)).cloned();
        let (Some(w), Some(b)) = (c(1), c(2)) else {
            return Err(n.bad("the head's weights and bias must be constants"));
        };
        if alpha != 1.0 || beta != 1.0 || ta != 0 || b.len() != vocab {
            return Err(n.bad("expected Gemm(x, W, b) with alpha = beta = 1 and a bias per token"));
        }
        // Input-major `d×vocab`.
        let w = match (w.dims.as_slice(), tb) {
            (&[o, i], 1) if o == vocab && i == d => {
                (0..d * vocab).map(|j| w.values[(j % vocab) * d + j / vocab]).collect()
            }
            (&[i, o], 0) if o == vocab && i == d => w.values,
            _ => return Err(n.bad(format!("head weights {:?} do not map {d} to {vocab}", w.dims))),
        };
        Ok((FloatLinear { k: d, m: vocab, w, b: b.values }, self.out(gemm)?))
    }
}
