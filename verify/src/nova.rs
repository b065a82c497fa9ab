//! The Nova instantiation: Pallas/Vesta cycle, Spartan (non-preprocessing) with IPA for
//! compression, one [`Step`] per fold (whole layers or a tile).

use fold_ml_circuits::step::Step;
use nova_snark::provider::{ipa_pc, PallasEngine, VestaEngine};
use nova_snark::spartan::snark::RelaxedR1CSSNARK;

/// Primary engine (the step circuit runs over its scalar field).
pub type E1 = PallasEngine;
/// Secondary engine.
pub type E2 = VestaEngine;
/// Compression SNARK of the primary instance.
pub type S1 = RelaxedR1CSSNARK<E1, ipa_pc::EvaluationEngine<E1>>;
/// Compression SNARK of the secondary instance.
pub type S2 = RelaxedR1CSSNARK<E2, ipa_pc::EvaluationEngine<E2>>;
/// Public parameters.
pub type PublicParams = nova_snark::nova::PublicParams<E1, E2, Step>;
/// The folded (uncompressed, secret) proof.
pub type RecursiveSnark = nova_snark::nova::RecursiveSNARK<E1, E2, Step>;
/// The compressed zero-knowledge proof.
pub type CompressedSnark = nova_snark::nova::CompressedSNARK<E1, E2, Step, S1, S2>;
/// Prover key of the compression.
pub type ProverKey = nova_snark::nova::ProverKey<E1, E2, Step, S1, S2>;
/// Verifier key of the compression.
pub type VerifierKey = nova_snark::nova::VerifierKey<E1, E2, Step, S1, S2>;
