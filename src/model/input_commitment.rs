//! The input owner's commitment: `fold-ml commit-input` draws the blind, writes the
//! commitment and its opening to an owner-only file, and publishes the commitment. A
//! prover given the file (`prove --input-commitment FILE`) must prove on exactly that
//! input; a verifier given the commitment (`fold-ml-verify --input-commitment HEX`)
//! rejects a statement about any other input. The file holds the blind: it is secret.

use crate::error::Error;
use crate::field::hex_serde;
use ff::Field;
use fold_ml_circuits::commit::{activation_commitment_native, Layout};
use fold_ml_circuits::quant::check_activations;
use fold_ml_circuits::F;
use fold_ml_verify::fsutil::{read_file, write_atomic};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format` tag of an input commitment file.
pub const INPUT_COMMITMENT_FORMAT: &str = "fold-ml input commitment";
/// Its version.
pub const INPUT_COMMITMENT_VERSION: u16 = 2;

/// An input commitment and its opening blind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputCommitment {
    /// Always [`INPUT_COMMITMENT_FORMAT`].
    pub format: String,
    /// [`INPUT_COMMITMENT_VERSION`].
    pub version: u16,
    /// The commitment to publish.
    #[serde(with = "hex_serde")]
    pub commitment: F,
    /// Its blind (secret).
    #[serde(with = "hex_serde")]
    pub blind: F,
    /// How the input is committed (its shape, as the model's first layer reads it).
    pub layout: Layout,
}

impl InputCommitment {
    /// Commits to input activations of the given layout under a fresh random blind.
    pub fn new(input: &[u8], layout: Layout) -> Result<Self, Error> {
        check_activations(input).map_err(|e| Error::bad_input("input", e.to_string()))?;
        if layout.len() != input.len() || layout.check().is_err() {
            return Err(Error::bad_input("input", format!("{} values do not fill {layout:?}", input.len())));
        }
        let blind = F::random(OsRng);
        Ok(Self {
            format: INPUT_COMMITMENT_FORMAT.into(),
            version: INPUT_COMMITMENT_VERSION,
            commitment: activation_commitment_native(input, layout, blind),
            blind,
            layout,
        })
    }

    /// Whether `input` is the committed input, committed as `layout` (how the proof will
    /// read it); the error says why not.
    pub fn opens(&self, input: &[u8], layout: Layout) -> Result<(), String> {
        if input.len() != self.layout.len() {
            return Err(format!("commits to {} input values, the input has {}", self.layout.len(), input.len()));
        }
        if layout != self.layout {
            return Err(format!("commits to an input laid out as {:?}; the model reads {layout:?}", self.layout));
        }
        if activation_commitment_native(input, self.layout, self.blind) != self.commitment {
            return Err("the input is not the committed one".into());
        }
        Ok(())
    }

    /// Writes the file (owner-only: it holds the blind).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        Ok(write_atomic(path, &serde_json::to_vec_pretty(self).expect("serializes"), true)?)
    }

    /// Reads and checks a file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let bad = |reason: String| Error::bad_input(path.display().to_string(), reason);
        let c: Self = serde_json::from_slice(&read_file(path)?)
            .map_err(|e| bad(format!("not a fold-ml input commitment: {e}")))?;
        if c.format != INPUT_COMMITMENT_FORMAT || c.version != INPUT_COMMITMENT_VERSION {
            return Err(bad(format!(
                "format {:?} version {} is not a supported input commitment",
                c.format, c.version
            )));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_the_committed_input() {
        let input = vec![1, 2, 3, 127];
        let layout = Layout::whole([1, 2, 2]);
        let c = InputCommitment::new(&input, layout).unwrap();
        assert!(c.opens(&input, layout).is_ok());
        assert!(c.opens(&[1, 2, 3, 126], layout).is_err());
        assert!(c.opens(&[1, 2, 3], layout).is_err());
        assert!(c.opens(&input, Layout::by_rows([1, 2, 2])).is_err(), "read another way");
        // a fresh blind every time: the same input gives unlinkable commitments
        assert_ne!(c.commitment, InputCommitment::new(&input, layout).unwrap().commitment);
        assert!(InputCommitment::new(&[128], Layout::whole([1, 1, 1])).is_err());
        assert!(InputCommitment::new(&input, Layout::whole([5, 1, 1])).is_err());
    }
}
