//! The prover's parameter cache: Nova's public parameters and the compression keys, set up
//! once per architecture ([`fold_ml_verify::keys::setup`]) and cached on disk under its
//! digest. The verifier never reads this cache (it keeps its own keys).

use crate::artifact::Kind;
use crate::error::Error;
use crate::model::Architecture;
use crate::nova::{ProverKey, PublicParams, VerifierKey};
pub use fold_ml_verify::keys::default_cache_dir;
use fold_ml_verify::keys::{load, setup, store};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything the prover needs, and how it was obtained.
pub struct ProverKeys {
    /// Nova public parameters.
    pub pp: PublicParams,
    /// Compression prover key.
    pub pk: ProverKey,
    /// Compression verifier key.
    pub vk: VerifierKey,
    /// True if loaded from the cache, false if set up now.
    pub cached: bool,
    /// Seconds spent setting up or loading.
    pub seconds: f64,
}

fn dir_for(cache: &Path, arch: &Architecture) -> PathBuf {
    cache.join(arch.short_id())
}

fn setup_and_store(cache: &Path, arch: &Architecture) -> Result<(PublicParams, ProverKey, VerifierKey), Error> {
    let (pp, pk, vk) = setup(arch)?;
    let dir = dir_for(cache, arch);
    let digest = arch.digest();
    std::fs::create_dir_all(&dir).map_err(|source| Error::io(dir.clone(), source))?;
    store(&dir.join("pp.bin"), Kind::PublicParams, &digest, &pp)?;
    store(&dir.join("pk.bin"), Kind::ProverKey, &digest, &pk)?;
    store(&dir.join("vk.bin"), Kind::VerifierKey, &digest, &vk)?;
    Ok((pp, pk, vk))
}

/// The verifier key in the prover's cache, if it is there and sound.
pub fn cached_vk(cache: &Path, arch: &Architecture) -> Option<VerifierKey> {
    load::<VerifierKey>(&dir_for(cache, arch).join("vk.bin"), Kind::VerifierKey, &arch.digest())
}

/// Loads the prover's parameters and keys from the cache, or sets them up and caches them.
/// A damaged or foreign cache entry is ignored and rebuilt.
pub fn prover_keys(cache: &Path, arch: &Architecture) -> Result<ProverKeys, Error> {
    let start = Instant::now();
    let dir = dir_for(cache, arch);
    let digest = arch.digest();
    let loaded = (|| {
        Some((
            load::<PublicParams>(&dir.join("pp.bin"), Kind::PublicParams, &digest)?,
            load::<ProverKey>(&dir.join("pk.bin"), Kind::ProverKey, &digest)?,
            load::<VerifierKey>(&dir.join("vk.bin"), Kind::VerifierKey, &digest)?,
        ))
    })();
    let cached = loaded.is_some();
    let (pp, pk, vk) = match loaded {
        Some(keys) => keys,
        None => setup_and_store(cache, arch)?,
    };
    Ok(ProverKeys { pp, pk, vk, cached, seconds: start.elapsed().as_secs_f64() })
}
