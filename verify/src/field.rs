//! Field elements in files: 32 little-endian bytes in binary, `0x`-prefixed big-endian hex
//! in JSON. Parsing rejects non-canonical encodings.

use crate::F;
use ff::PrimeField;

/// Canonical little-endian bytes.
pub fn to_bytes(f: &F) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(f.to_repr().as_ref());
    out
}

/// Parses canonical little-endian bytes.
pub fn from_bytes(bytes: &[u8; 32]) -> Option<F> {
    let mut repr = <F as PrimeField>::Repr::default();
    repr.as_mut().copy_from_slice(bytes);
    Option::from(F::from_repr(repr))
}

/// `0x` + 64 hex digits, big-endian (the way field elements are usually printed).
pub fn to_hex(f: &F) -> String {
    let mut be = to_bytes(f);
    be.reverse();
    hex(&be)
}

/// Parses [`to_hex`]'s format.
pub fn from_hex(s: &str) -> Option<F> {
    let digits = s.strip_prefix("0x")?;
    if digits.len() != 64 || !digits.is_ascii() {
        return None;
    }
    let mut le = [0u8; 32];
    for (i, chunk) in digits.as_bytes().chunks(2).enumerate() {
        let byte = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        le[31 - i] = byte;
    }
    from_bytes(&le)
}

/// Lower-case hex with a `0x` prefix.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Serde adapter for a field element as hex.
pub mod hex_serde {
    use crate::F;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Serializes as hex.
    pub fn serialize<S: Serializer>(f: &F, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(f))
    }

    /// Deserializes from hex, rejecting non-canonical values.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<F, D::Error> {
        let s = String::deserialize(d)?;
        super::from_hex(&s).ok_or_else(|| D::Error::custom(format!("not a canonical field element: {s:?}")))
    }
}

/// Serde adapter for an optional field element as hex.
pub mod opt_hex_serde {
    use crate::F;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as hex (callers skip `None`).
    pub fn serialize<S: Serializer>(f: &Option<F>, s: S) -> Result<S::Ok, S::Error> {
        match f {
            Some(f) => super::hex_serde::serialize(f, s),
            None => s.serialize_none(),
        }
    }

    /// Deserializes from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<F>, D::Error> {
        #[derive(Deserialize)]
        struct Hex(#[serde(with = "super::hex_serde")] F);
        Ok(Option::<Hex>::deserialize(d)?.map(|h| h.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::Field;

    #[test]
    fn hex_round_trip_and_rejects_non_canonical() {
        let f = F::from(0x1234_5678_9abc_def0u64) * F::from(977) - F::ONE;
        assert_eq!(from_hex(&to_hex(&f)), Some(f));
        assert_eq!(from_hex(&to_hex(&F::ONE)).unwrap(), F::ONE);
        assert!(from_hex(&format!("0x{}", "f".repeat(64))).is_none());
        assert!(from_hex("0x12").is_none());
        assert!(from_hex(&"0".repeat(66)).is_none());
    }
}
