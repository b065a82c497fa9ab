//! The prover's parameter cache: Nova's public parameters, set up once per architecture
//! ([`fold_ml_verify::keys::setup`]) and cached on disk under its digest, with a small
//! `params.json` beside them (the parameters' digest and constraint counts), so that a job
//! can name every segment's parameters without loading gigabytes of keys it will only use
//! later. The compression keys are derived from the parameters when they are loaded
//! ([`fold_ml_verify::keys::compression_keys`]: faster than decoding them, and half the
//! disk). The verifier never reads this cache (it keeps its own keys).

use crate::artifact::Kind;
use crate::error::Error;
use crate::nova::{ProverKey, PublicParams, VerifierKey};
use crate::F;
use fold_ml_verify::architecture::KeyedCircuit;
use fold_ml_verify::fsutil::write_atomic;
pub use fold_ml_verify::keys::default_cache_dir;
use fold_ml_verify::keys::{compression_keys, load, public_params, store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything the prover needs, and how it was obtained.
pub struct ProverKeys {
    /// Nova public parameters.
    pub pp: PublicParams,
    /// Compression prover key. (The verifier key, which holds the padded R1CS shape again,
    /// is derived when needed, after compression: [`verifier_key_of`].)
    pub pk: ProverKey,
    /// True if loaded from the cache, false if set up now.
    pub cached: bool,
    /// Seconds spent setting up or loading.
    pub seconds: f64,
}

fn dir_for<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> PathBuf {
    cache.join(arch.short_id())
}

/// Sets up an architecture's parameters and caches them (streamed to disk: no copy of their
/// encoding in memory). The parameters are then dropped: freshly set up, they take about
/// twice the resident memory of the same parameters decoded from the cache (measured on
/// ResNet-18's stem tile, 423k constraints: 485 against 180 MiB, all of it freed with them),
/// which the prover would otherwise carry through every fold of the segment.
fn setup_and_store<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Result<(), Error> {
    let pp = public_params(arch)?;
    let dir = dir_for(cache, arch);
    std::fs::create_dir_all(&dir).map_err(|source| Error::io(dir.clone(), source))?;
    store(&dir.join("pp.bin"), Kind::PublicParams, &arch.digest(), &pp)?;
    store_summary(cache, arch, &pp)
}

/// What a job needs to know of an architecture's parameters before it loads them: their
/// digest and the step's constraint counts (primary, secondary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsSummary {
    /// Nova's digest of the public parameters.
    #[serde(with = "crate::field::hex_serde")]
    pub digest: F,
    /// Constraints per fold, primary and secondary.
    pub constraints: (usize, usize),
}

impl ParamsSummary {
    fn of(pp: &PublicParams) -> Self {
        Self { digest: pp.digest(), constraints: pp.num_constraints() }
    }
}

fn store_summary<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A, pp: &PublicParams) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(&ParamsSummary::of(pp)).expect("a summary serializes");
    Ok(write_atomic(&dir_for(cache, arch).join("params.json"), &json, false)?)
}

/// The summary of an architecture's cached parameters, if the cache has one beside them. It
/// is the prover's own record, checked against the parameters when they are loaded
/// ([`prover_keys_as`]).
pub fn cached_summary<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Option<ParamsSummary> {
    let dir = dir_for(cache, arch);
    if !dir.join("pp.bin").exists() {
        return None;
    }
    serde_json::from_slice(&std::fs::read(dir.join("params.json")).ok()?).ok()
}

/// How [`summary`] named an architecture's parameters.
pub struct Named {
    /// Their digest and constraint counts.
    pub summary: ParamsSummary,
    /// Seconds spent setting them up and caching them now (`None`: they were cached).
    pub set_up: Option<f64>,
    /// The keys, when naming them took loading them (cached parameters without a summary).
    pub keys: Option<ProverKeys>,
}

/// The summary of an architecture's parameters: the cached one, else from the parameters
/// (set up and cached — and not kept: [`setup_and_store`] — or loaded and summarized for
/// the next time). `Err` only when setup fails.
pub fn summary<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Result<Named, Error> {
    if let Some(summary) = cached_summary(cache, arch) {
        return Ok(Named { summary, set_up: None, keys: None });
    }
    if !dir_for(cache, arch).join("pp.bin").exists() {
        let start = Instant::now();
        setup_and_store(cache, arch)?;
        let set_up = Some(start.elapsed().as_secs_f64());
        if let Some(summary) = cached_summary(cache, arch) {
            return Ok(Named { summary, set_up, keys: None });
        }
    }
    let keys = prover_keys(cache, arch)?;
    let summary = ParamsSummary::of(&keys.pp);
    if keys.cached {
        store_summary(cache, arch, &keys.pp)?;
    }
    Ok(Named { summary, set_up: None, keys: Some(keys) })
}

/// [`prover_keys`] for parameters a job has already named by `expected`: loaded parameters
/// that hash otherwise (a cache entry changed under the job) are an error, not a silent
/// change of the job's parameters.
pub fn prover_keys_as<A: KeyedCircuit + ?Sized>(
    cache: &Path,
    arch: &A,
    expected: &ParamsSummary,
) -> Result<ProverKeys, Error> {
    let keys = prover_keys(cache, arch)?;
    let found = ParamsSummary::of(&keys.pp);
    if found != *expected {
        let dir = dir_for(cache, arch);
        let reason = format!(
            "the parameters hash to {}, not the {} recorded for them when the job started (the cache entry changed: delete it and restart the job)",
            crate::field::to_hex(&found.digest),
            crate::field::to_hex(&expected.digest)
        );
        return Err(Error::bad_input(dir.display().to_string(), reason));
    }
    Ok(keys)
}

/// The verifier key of the parameters in the prover's cache, if they are there and sound.
pub fn cached_vk<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Option<VerifierKey> {
    let pp = load::<PublicParams>(&dir_for(cache, arch).join("pp.bin"), Kind::PublicParams, &arch.digest())?;
    verifier_key_of(&pp).ok()
}

/// The compression verifier key of parameters. The prover derives it after compressing
/// (for the self-check) rather than keeping it from setup: it holds a copy of the padded
/// R1CS shape, the largest part of the parameters, which compression copies once more.
pub fn verifier_key_of(pp: &PublicParams) -> Result<VerifierKey, Error> {
    Ok(compression_keys(pp)?.1)
}

/// Loads the prover's parameters and keys from the cache, or sets them up and caches them.
/// A damaged or foreign cache entry is ignored and rebuilt.
pub fn prover_keys<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Result<ProverKeys, Error> {
    let start = Instant::now();
    let (pp, cached) = cached_params(cache, arch)?;
    let (pk, _) = compression_keys(&pp)?;
    Ok(ProverKeys { pp, pk, cached, seconds: start.elapsed().as_secs_f64() })
}

/// The public parameters from the cache (and `true`), or set up, cached and read back
/// (and `false`). A damaged or foreign cache entry is ignored and rebuilt.
pub fn cached_params<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Result<(PublicParams, bool), Error> {
    let digest = arch.digest();
    let path = dir_for(cache, arch).join("pp.bin");
    if let Some(pp) = load::<PublicParams>(&path, Kind::PublicParams, &digest) {
        return Ok((pp, true));
    }
    setup_and_store(cache, arch)?;
    // just written: if it does not read back, say why (the file's own error)
    Ok((crate::artifact::read_from(Kind::PublicParams, &digest, &path)?, false))
}
