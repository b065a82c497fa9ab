//! Reading an input tensor from a JSON file.

use crate::error::Error;
use fold_ml_verify::fsutil::read_file;
use std::path::Path;

/// Reads a JSON array of integers in `[0, 127]`. An array of `image_len` values is an
/// image, spread over the channels by `from_image`; one of `tensor_len` values is the
/// input tensor itself.
pub fn read_input(
    path: &Path,
    tensor_len: usize,
    image_len: usize,
    from_image: impl Fn(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, Error> {
    let what = path.display().to_string();
    let bad = |reason: String| Error::bad_input(what.clone(), reason);
    let bytes = read_file(path)?;
    let values: Vec<i64> =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a JSON array of integers: {e}")))?;
    if let Some((i, v)) = values.iter().enumerate().find(|(_, &v)| !(0..=127).contains(&v)) {
        return Err(bad(format!("value {v} at index {i} is outside [0, 127]")));
    }
    let values: Vec<u8> = values.into_iter().map(|v| v as u8).collect();
    if values.len() == tensor_len {
        Ok(values)
    } else if values.len() == image_len {
        Ok(from_image(&values))
    } else {
        Err(bad(format!(
            "has {} values; expected {image_len} (an image) or {tensor_len} (the whole input tensor)",
            values.len()
        )))
    }
}
