//! The job's secret (`secret.json`, owner-only): the input and the blind of its
//! commitment. It opens the input commitment: never share it with the proof.

use crate::error::Error;
use crate::field::hex_serde;
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::{read_file, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The job's secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSecret {
    /// Why this file must not leave the machine.
    pub warning: String,
    /// The input activations.
    pub input: Vec<u8>,
    /// The blind of the input commitment.
    #[serde(with = "hex_serde")]
    pub input_blind: F,
}

impl JobSecret {
    /// A new secret.
    pub fn new(input: Vec<u8>, input_blind: F) -> Self {
        Self {
            warning: "SECRET: this file opens the input commitment; never share it with the proof".into(),
            input,
            input_blind,
        }
    }

    /// Reads `secret.json`.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("secret.json");
        serde_json::from_slice(&read_file(&path)?)
            .map_err(|e| Error::bad_input(path.display().to_string(), e.to_string()))
    }

    /// Writes `secret.json` owner-only.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        Ok(write_atomic(&dir.join("secret.json"), serde_json::to_string(self).expect("serializes").as_bytes(), true)?)
    }
}
