//! Reading the raw ONNX protobuf: constant tensors (initializers and `Constant` nodes),
//! node attributes and the graph input's shape, all validated, never panicking on a
//! malformed file. Only the graph walk in [`super::graph`] uses it.

use crate::error::{OnnxError, OnnxNode};
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::{DataLocation, DataType};
use tract_onnx::pb::{type_proto, AttributeProto, GraphProto, NodeProto, TensorProto};

/// A constant tensor, row-major, its values widened to `f64` (exact for `f32` and for the
/// integers of shapes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Const {
    pub dims: Vec<usize>,
    pub values: Vec<f64>,
}

impl Const {
    /// The values as `f32` (weights are `f32` in every model fold-ml imports).
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }
}

fn le_chunks<const N: usize>(raw: &[u8]) -> Option<impl Iterator<Item = [u8; N]> + '_> {
    raw.len().is_multiple_of(N).then(|| raw.chunks_exact(N).map(|c| c.try_into().unwrap_or([0; N])))
}

/// Decodes a tensor of floats or integers stored inline (raw or typed fields).
pub(crate) fn decode_tensor(t: &TensorProto) -> Result<Const, String> {
    let what = if t.name.is_empty() { "a constant tensor".to_string() } else { format!("tensor \"{}\"", t.name) };
    if t.data_location == Some(DataLocation::External as i32) {
        return Err(format!("{what} is stored in an external file, which fold-ml does not read"));
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("{what} has a negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("{what} has too many elements"))?;
    let raw = &t.raw_data;
    let bad_raw = || format!("{what}: raw data of {} bytes is not a whole number of elements", raw.len());
    let values: Vec<f64> = match DataType::from_i32(t.data_type).ok_or(()) {
        Ok(DataType::Float) if !raw.is_empty() => {
            le_chunks::<4>(raw).ok_or_else(bad_raw)?.map(|b| f64::from(f32::from_le_bytes(b))).collect()
        }
        Ok(DataType::Float) => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        Ok(DataType::Double) if !raw.is_empty() => {
            le_chunks::<8>(raw).ok_or_else(bad_raw)?.map(f64::from_le_bytes).collect()
        }
        Ok(DataType::Double) => t.double_data.clone(),
        Ok(DataType::Int64) if !raw.is_empty() => {
            le_chunks::<8>(raw).ok_or_else(bad_raw)?.map(|b| i64::from_le_bytes(b) as f64).collect()
        }
        Ok(DataType::Int64) => t.int64_data.iter().map(|&v| v as f64).collect(),
        Ok(DataType::Int32) if !raw.is_empty() => {
            le_chunks::<4>(raw).ok_or_else(bad_raw)?.map(|b| f64::from(i32::from_le_bytes(b))).collect()
        }
        Ok(DataType::Int32) => t.int32_data.iter().map(|&v| f64::from(v)).collect(),
        Ok(other) => {
            return Err(format!("{what} has data type {other:?}; fold-ml reads float, double, int32 and int64"))
        }
        Err(_) => return Err(format!("{what} has an unknown data type {}", t.data_type)),
    };
    if values.len() != count {
        return Err(format!("{what} holds {} values but its shape {dims:?} needs {count}", values.len()));
    }
    Ok(Const { dims, values })
}

/// A node with its position, for attribute access and messages.
pub(crate) struct Node<'a> {
    pub pb: &'a NodeProto,
    pub at: OnnxNode,
}

impl<'a> Node<'a> {
    /// The `index`-th (0-based) node of a graph of `total`.
    pub fn new(pb: &'a NodeProto, index: usize, total: usize) -> Self {
        let name = if pb.name.is_empty() { pb.output.first().cloned().unwrap_or_default() } else { pb.name.clone() };
        Self { pb, at: OnnxNode { op: pb.op_type.clone(), name, index: index + 1, total } }
    }

    /// An error about this node.
    pub fn bad(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::BadNode { node: self.at.clone(), reason: reason.into() }
    }

    fn attr(&self, name: &str, ty: AttributeType) -> Result<Option<&'a AttributeProto>, OnnxError> {
        match self.pb.attribute.iter().find(|a| a.name == name) {
            // Some exporters leave the type unset (0); trust the field then.
            Some(a) if a.r#type != 0 && a.r#type != ty as i32 => {
                Err(self.bad(format!("attribute {name} has type {}, expected {}", a.r#type, ty.as_str_name())))
            }
            found => Ok(found),
        }
    }

    /// An integer attribute.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.attr(name, AttributeType::Int)?.map_or(default, |a| a.i))
    }

    /// A float attribute.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self.attr(name, AttributeType::Float)?.map_or(default, |a| a.f))
    }

    /// A list-of-integers attribute.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, OnnxError> {
        Ok(self.attr(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    /// A string attribute.
    pub fn string(&self, name: &str, default: &str) -> Result<String, OnnxError> {
        Ok(self
            .attr(name, AttributeType::String)?
            .map_or(default.to_string(), |a| String::from_utf8_lossy(&a.s).into()))
    }

    /// The value of a `Constant` node.
    pub fn constant_value(&self) -> Result<Const, OnnxError> {
        let [a] = self.pb.attribute.as_slice() else {
            return Err(self.bad("a Constant node must have exactly one value attribute"));
        };
        match a.name.as_str() {
            "value" => {
                let t = a.t.as_ref().ok_or_else(|| self.bad("attribute value holds no tensor"))?;
                decode_tensor(t).map_err(|e| self.bad(e))
            }
            "value_float" => Ok(Const { dims: vec![], values: vec![f64::from(a.f)] }),
            "value_int" => Ok(Const { dims: vec![], values: vec![a.i as f64] }),
            "value_floats" => {
                Ok(Const { dims: vec![a.floats.len()], values: a.floats.iter().map(|&v| v.into()).collect() })
            }
            "value_ints" => Ok(Const { dims: vec![a.ints.len()], values: a.ints.iter().map(|&v| v as f64).collect() }),
            other => Err(self.bad(format!("Constant attribute {other} is not supported"))),
        }
    }

    /// The node's `i`-th input name; `None` when absent or empty (an omitted optional input).
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.pb.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// The node's first output name.
    pub fn output(&self) -> Result<&'a str, OnnxError> {
        self.pb.output.first().map(String::as_str).filter(|s| !s.is_empty()).ok_or_else(|| self.bad("it has no output"))
    }
}

/// The single graph input that is not an initializer, and its shape without the batch
/// dimension (`[C, H, W]` or `[N]`; the batch must be 1 or symbolic).
pub(crate) fn graph_input(graph: &GraphProto) -> Result<(String, Vec<usize>), OnnxError> {
    let inputs: Vec<_> = graph.input.iter().filter(|i| !graph.initializer.iter().any(|t| t.name == i.name)).collect();
    let [input] = inputs.as_slice() else {
        let names: Vec<_> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(OnnxError::Graph(format!("the graph must have exactly one input, it has {names:?}")));
    };
    let bad = |reason: String| OnnxError::Graph(format!("graph input \"{}\": {reason}", input.name));
    let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        _ => return Err(bad("it is not a tensor".into())),
    };
    if tensor.elem_type != DataType::Float as i32 {
        return Err(bad(format!("element type {} is not float", tensor.elem_type)));
    }
    let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    let mut shape = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        match (&d.value, i) {
            (Some(Value::DimValue(1)), 0) | (Some(Value::DimParam(_)), 0) | (None, 0) => {}
            (Some(Value::DimValue(n)), 0) => {
                return Err(bad(format!("batch size {n}; fold-ml proves one input at a time (batch 1)")))
            }
            (Some(Value::DimValue(n)), _) if *n > 0 => shape.push(*n as usize),
            _ => return Err(bad(format!("dimension {i} is not a fixed positive size"))),
        }
    }
    if shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).is_none_or(|n| n > 1 << 28) {
        return Err(bad(format!("shape {shape:?} is too large")));
    }
    if shape.len() != 1 && shape.len() != 3 {
        return Err(bad(format!("shape of rank {} is not [1, C, H, W] or [1, N]", dims.len())));
    }
    Ok((input.name.clone(), shape))
}
