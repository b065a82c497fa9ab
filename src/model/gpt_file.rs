//! The GPT model file that `fold-ml import` writes for a transformer: the quantized GPT
//! (its specs and every tensor) and the salt of its model commitment. Secret: it holds the
//! weights. Read back with every spec and tensor checked.

use super::onnx::gpt::QuantGpt;
use crate::artifact::{self, Kind};
use crate::error::Error;
use crate::F;
use fold_ml_circuits::commit::model_start;
use fold_ml_circuits::transformer::{block_update_native, embed_update_native, head_update_native, BlockError};
use fold_ml_verify::fsutil::write_atomic_with;
use fold_ml_verify::gpt::GptArchitecture;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// A quantized GPT and its commitment's salt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptModel {
    /// A name (the ONNX file's stem), for job directories and messages.
    pub name: String,
    /// The integer model.
    pub q: QuantGpt,
    /// The model commitment's salt (secret).
    #[serde(with = "crate::field::hex_serde")]
    pub salt: F,
}

impl GptModel {
    /// The public description of its circuits.
    pub fn architecture(&self) -> GptArchitecture {
        self.q.architecture()
    }

    /// Checks every spec and every tensor's shape.
    pub fn check(&self) -> Result<(), String> {
        self.architecture().check()?;
        self.model_commitment().map(|_| ())
    }

    /// The model commitment (what a proof's statement ends in): the embedding's tables,
    /// every block's tensors and the head's, absorbed in order under the salt.
    pub fn model_commitment(&self) -> Result<F, String> {
        let q = &self.q;
        let run = || -> Result<F, BlockError> {
            let mut acc = embed_update_native(&q.embed_spec, model_start(), self.salt, &q.embed)?;
            for w in &q.blocks {
                acc = block_update_native(&q.spec, acc, self.salt, w)?;
            }
            head_update_native(&q.head_spec, acc, self.salt, &q.head)
        };
        if q.blocks.is_empty() {
            return Err("a GPT without blocks".into());
        }
        run().map_err(|e| e.to_string())
    }

    /// Writes the model file (owner-only: it is secret).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        write_atomic_with(path, true, |out| artifact::write_to(Kind::GptModel, &[0; 32], self, out))?;
        Ok(())
    }

    /// Reads and checks a GPT model file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let model: Self = artifact::read_from(Kind::GptModel, &[0; 32], path)?;
        model.check().map_err(|reason| Error::bad_input(path.display().to_string(), reason))?;
        Ok(model)
    }

    /// Whether the file at `path` is a GPT model file (by its header; `false` if unreadable).
    pub fn is_one(path: &Path) -> bool {
        let mut head = [0u8; 8];
        std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && Kind::GptModel.begins(&head)
    }
}
