#!/usr/bin/env bash
# Makes the seed corpus of genuine artifacts under fuzz/seeds/ (small; committed).
# Usage: bash fuzz/seeds.sh   (from the repository root, after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/fold-ml prove --size 4 --channels 1 --layers 2 --layers-per-step 1 --public-input \
  --checkpoint-every 1 --job "$work/job" --cache "$work/cache" >/dev/null
mkdir -p fuzz/seeds/{decode_artifact,decode_payload,parse_json,verify_proof,verify_statement}
cp "$work/job/proof.bin" fuzz/seeds/decode_artifact/proof.bin
# payloads: the bytes after the 82-byte header
tail -c +83 "$work/job/proof.bin" > fuzz/seeds/decode_payload/proof-payload.bin
tail -c +83 "$work/job/proof.bin" > fuzz/seeds/verify_proof/proof-payload.bin
cp "$work/job/statement.json" fuzz/seeds/parse_json/statement.json
cp "$work/job/manifest.json" fuzz/seeds/parse_json/manifest.json
cp "$work/job/statement.json" fuzz/seeds/verify_statement/statement.json
du -sh fuzz/seeds
