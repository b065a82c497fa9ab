#!/bin/sh
# The container command of fold-ml's Kubernetes Jobs (and what tests/shards.rs runs
# locally): one step of the sharded job in $FOLD_ML_JOB, a directory on the shared volume.
#
#   worker.sh prove     proves shard $JOB_COMPLETION_INDEX (set by the Indexed Job); a pod
#                       restarted after preemption resumes from the shard's checkpoint
#   worker.sh assemble  links every shard into statement.json + proof.bin, then verifies
#
# FOLD_ML_CACHE (default: $FOLD_ML_JOB/../cache) is the parameter cache on the same volume,
# so the first pod sets the parameters up and the others load them.
set -eu
: "${FOLD_ML_JOB:?set FOLD_ML_JOB to the job directory made by fold-ml plan}"
FOLD_ML=${FOLD_ML:-fold-ml}
FOLD_ML_VERIFY=${FOLD_ML_VERIFY:-fold-ml-verify}
CACHE=${FOLD_ML_CACHE:-$FOLD_ML_JOB/../cache}
case "${1:-}" in
  prove)
    : "${JOB_COMPLETION_INDEX:?not set: run this as a pod of an Indexed Job (or set it by hand)}"
    exec "$FOLD_ML" prove-shard "$FOLD_ML_JOB" --cache "$CACHE"
    ;;
  assemble)
    "$FOLD_ML" assemble "$FOLD_ML_JOB" --cache "$CACHE"
    exec "$FOLD_ML_VERIFY" "$FOLD_ML_JOB" --cache "$CACHE/verifier"
    ;;
  *)
    echo "usage: worker.sh prove|assemble" >&2
    exit 2
    ;;
esac
