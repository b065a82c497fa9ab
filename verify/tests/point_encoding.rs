//! Nova's keys are stored with their curve points uncompressed (the vendored halo2curves'
//! one change, `vendor/halo2curves/PATCHED.md`): decoding checks each coordinate is a
//! canonical field element and the point is on the curve, instead of taking a square root.
//! These tests pin that encoding (the speed of every key load rests on it) and play the
//! tamperer: a point moved off the curve or a coordinate out of the field is refused.

use bincode::config::standard;
use nova_snark::provider::{PallasEngine, VestaEngine};
use nova_snark::traits::commitment::CommitmentEngineTrait;
use nova_snark::traits::Engine;

type Key<E> = <<E as Engine>::CE as CommitmentEngineTrait<E>>::CommitmentKey;

/// Generators as Nova derives them, encoded as the key files encode them.
fn encoded<E: Engine>(n: usize) -> (Key<E>, Vec<u8>) {
    let key = <E::CE as CommitmentEngineTrait<E>>::setup(b"point-encoding test", n).expect("generators");
    let bytes = bincode::serde::encode_to_vec(&key, standard()).expect("encodes");
    (key, bytes)
}

fn decode<E: Engine>(bytes: &[u8]) -> Result<Key<E>, String> {
    bincode::serde::decode_from_slice::<Key<E>, _>(bytes, standard()).map(|(k, _)| k).map_err(|e| e.to_string())
}

/// Byte offset of the first generator: the vector's length is one varint byte here.
const FIRST: usize = 1;

fn pins_and_round_trips<E: Engine>() {
    let (_, bytes) = encoded::<E>(4);
    // 4 generators and the blinding one, 64 bytes each (x and y), behind the length byte
    assert_eq!(bytes.len(), FIRST + 5 * 64, "points are not stored uncompressed");
    let back = decode::<E>(&bytes).expect("decodes");
    assert_eq!(bincode::serde::encode_to_vec(&back, standard()).unwrap(), bytes, "round trip changed the key");
}

fn refuses_a_point_off_the_curve<E: Engine>() {
    let (_, mut bytes) = encoded::<E>(4);
    bytes[FIRST + 32] ^= 1; // lowest bit of the first generator's y
    let err = decode::<E>(&bytes).expect_err("a point off the curve was accepted");
    assert!(err.contains("don't encode a point on the curve"), "{err}");
}

fn refuses_a_coordinate_outside_the_field<E: Engine>() {
    let (_, mut bytes) = encoded::<E>(4);
    bytes[FIRST..FIRST + 32].fill(0xff); // x = 2^256 - 1, above the modulus
    let err = decode::<E>(&bytes).expect_err("a non-canonical coordinate was accepted");
    assert!(err.contains("don't encode a point on the curve"), "{err}");
}

#[test]
fn key_points_are_stored_uncompressed_and_round_trip() {
    pins_and_round_trips::<PallasEngine>();
    pins_and_round_trips::<VestaEngine>();
}

#[test]
fn a_key_point_moved_off_the_curve_is_refused() {
    refuses_a_point_off_the_curve::<PallasEngine>();
    refuses_a_point_off_the_curve::<VestaEngine>();
}

#[test]
fn a_key_coordinate_outside_the_field_is_refused() {
    refuses_a_coordinate_outside_the_field::<PallasEngine>();
    refuses_a_coordinate_outside_the_field::<VestaEngine>();
}

#[test]
fn text_encodings_keep_compressed_points() {
    // JSON (human-readable) is unchanged by the patch: one hex string of 32 bytes per point
    let (key, _) = encoded::<PallasEngine>(1);
    let json = serde_json::to_string(&key).expect("encodes");
    let back: Key<PallasEngine> = serde_json::from_str(&json).expect("decodes");
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let hex_digits = json.split('"').filter(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())).count();
    assert_eq!(hex_digits, 2, "{json}");
}
