//! Keys derived from a public architecture. Nova on Pallas/Vesta needs no trusted setup:
//! anyone can re-derive the same parameters and keys from the public architecture, which
//! is what the verifier does, keeping the result in its own key store. It never reads a key
//! from anywhere else: a key file handed over would have to be checked against the derived
//! key anyway, so proof directories carry none.

use crate::architecture::KeyedCircuit;
use crate::artifact::{self, Kind};
use crate::error::Error;
use crate::fsutil::write_atomic_with;
use crate::nova::{CompressedSnark, ProverKey, PublicParams, VerifierKey, S1, S2};
use fold_ml_circuits::step::Step;
use nova_snark::traits::snark::RelaxedR1CSSNARKTrait;
use std::path::{Path, PathBuf};

/// The cache directory: `$FOLD_ML_CACHE`, else `$XDG_CACHE_HOME/fold-ml`, else
/// `~/.cache/fold-ml`, else `.fold-ml-cache`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FOLD_ML_CACHE") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("fold-ml");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("fold-ml");
    }
    PathBuf::from(".fold-ml-cache")
}

/// Loads and decodes an artifact file; `None` when it is missing, damaged or foreign.
/// (Streamed: parameters of gigabytes cost no buffer of their size.)
pub fn load<T: serde::de::DeserializeOwned>(path: &Path, kind: Kind, arch: &[u8; 32]) -> Option<T> {
    artifact::read_from(kind, arch, path).ok()
}

/// Encodes and writes an artifact file atomically, streamed ([`artifact::write_to`]).
pub fn store<T: serde::Serialize>(path: &Path, kind: Kind, arch: &[u8; 32], value: &T) -> Result<(), Error> {
    write_atomic_with(path, false, |out| artifact::write_to(kind, arch, value, out)).map(|_| ())
}

/// Sets up Nova's public parameters of an architecture (or of any described step circuit).
pub fn public_params<A: KeyedCircuit + ?Sized>(arch: &A) -> Result<PublicParams, Error> {
    step_params(&arch.blank_step()?)
}

/// Sets up Nova's public parameters of the step circuit `blank` is a blank step of.
pub fn step_params(blank: &Step) -> Result<PublicParams, Error> {
    PublicParams::setup(blank, &*S1::ck_floor(), &*S2::ck_floor())
        .map_err(|source| Error::Nova { stage: "parameter setup", source })
}

/// Sets up Nova's public parameters and the compression keys of an architecture.
pub fn setup<A: KeyedCircuit + ?Sized>(arch: &A) -> Result<(PublicParams, ProverKey, VerifierKey), Error> {
    let pp = public_params(arch)?;
    let (pk, vk) = compression_keys(&pp)?;
    Ok((pp, pk, vk))
}

/// The compression keys of public parameters. Deriving them is several times faster than
/// decoding them (measured on ResNet-20's parameters: 0.3–3.5 s against 1.0–12.4 s: the
/// verifier key holds the padded R1CS shape and the commitment key again, whose points
/// decoding decompresses), so the prover's cache keeps the parameters alone.
pub fn compression_keys(pp: &PublicParams) -> Result<(ProverKey, VerifierKey), Error> {
    CompressedSnark::setup(pp).map_err(|source| Error::Nova { stage: "compression key setup", source })
}

/// The verifier's own key store, `CACHE/verifier/<id>/`: written only by
/// [`verifier_key`]'s derivation from the public architecture, never by the prover's
/// parameter setup and never from a key file someone handed over. (The prover's keys in
/// `CACHE/<id>/` may come from anywhere: a copied or shared cache.)
fn verifier_dir<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> PathBuf {
    cache.join("verifier").join(arch.short_id())
}

/// The verifier key of an architecture, derived by this verifier from the public
/// architecture (or found in its own key store, where an earlier derivation put it).
pub fn verifier_key<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Result<VerifierKey, Error> {
    if let Some(vk) = stored_verifier_key(cache, arch) {
        return Ok(vk);
    }
    let vk = derive_verifier_key(arch)?;
    keep_verifier_key(cache, arch, &vk)?;
    Ok(vk)
}

/// Derives the verifier key of an architecture (parameter setup, then the compression keys).
pub fn derive_verifier_key<A: KeyedCircuit + ?Sized>(arch: &A) -> Result<VerifierKey, Error> {
    setup(arch).map(|(_, _, vk)| vk)
}

/// Writes a key [`derive_verifier_key`] derived into the verifier's key store.
pub fn keep_verifier_key<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A, vk: &VerifierKey) -> Result<(), Error> {
    let dir = verifier_dir(cache, arch);
    crate::fsutil::create_private_dir(&dir)?;
    store(&dir.join("vk.bin"), Kind::VerifierKey, &arch.digest(), vk)
}

/// The verifier key of an architecture if an earlier derivation left it in this verifier's
/// key store (intact, and for this architecture's digest); never derives one.
pub fn stored_verifier_key<A: KeyedCircuit + ?Sized>(cache: &Path, arch: &A) -> Option<VerifierKey> {
    load::<VerifierKey>(&verifier_dir(cache, arch).join("vk.bin"), Kind::VerifierKey, &arch.digest())
}

/// Runs `check` (a statement's check, which must pass before any key is derived) while
/// `arch`'s key is read from this verifier's key store on another thread — read, never
/// derived: a statement that fails costs at most one read of a key this verifier already
/// has. Returns the check's result and what the store held (for [`KeyFetcher::new`]).
pub fn stored_while_checking<A: KeyedCircuit + Sync + ?Sized, R>(
    cache: &Path,
    arch: Option<&A>,
    check: impl FnOnce() -> R,
) -> (R, Option<VerifierKey>) {
    std::thread::scope(|s| {
        let stored = s.spawn(|| arch.and_then(|a| stored_verifier_key(cache, a)));
        let checked = check();
        (checked, stored.join().unwrap_or(None))
    })
}

/// The verifier keys of a list of architectures, fetched one at a time for a proof check:
/// from this verifier's key store, else derived — and then written to the store on a
/// scoped thread while the caller checks the proof with the key (the write is no part of
/// the verdict; its error is still the caller's, from [`Self::finish`]). One write at a
/// time: the previous one is joined before another key is derived, so no more than one
/// derived key is held for writing (GPT keys are gigabytes).
pub struct KeyFetcher<'scope, 'env, A: KeyedCircuit + Sync> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    cache: &'env Path,
    archs: &'env [A],
    /// The first architecture's key, when the store was already asked for it (not again).
    first: Option<Option<VerifierKey>>,
    writing: Option<std::thread::ScopedJoinHandle<'scope, Result<(), Error>>>,
}

impl<'scope, 'env, A: KeyedCircuit + Sync> KeyFetcher<'scope, 'env, A> {
    /// Fetches the keys of `archs` within `scope`; `first` is what the store already
    /// answered for `archs[0]`, if it was asked.
    pub fn new(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        cache: &'env Path,
        archs: &'env [A],
        first: Option<Option<VerifierKey>>,
    ) -> Self {
        Self { scope, cache, archs, first, writing: None }
    }

    /// The key of `archs[k]`.
    pub fn get(&mut self, k: usize) -> Result<std::sync::Arc<VerifierKey>, Error> {
        let arch = &self.archs[k];
        let stored = match self.first.take().filter(|_| k == 0) {
            Some(stored) => stored,
            None => stored_verifier_key(self.cache, arch),
        };
        if let Some(vk) = stored {
            return Ok(std::sync::Arc::new(vk));
        }
        self.finish()?;
        let vk = std::sync::Arc::new(derive_verifier_key(arch)?);
        let (kept, cache) = (std::sync::Arc::clone(&vk), self.cache);
        self.writing = Some(self.scope.spawn(move || keep_verifier_key(cache, arch, &kept)));
        Ok(vk)
    }

    /// Waits for the write under way, if any; its error.
    pub fn finish(&mut self) -> Result<(), Error> {
        let Some(write) = self.writing.take() else { return Ok(()) };
        write.join().unwrap_or_else(|_| {
            let source = std::io::Error::other("the key store's writer panicked");
            Err(Error::Io { path: self.cache.into(), source })
        })
    }
}
