#!/usr/bin/env bash
# Submit a planned fold-ml job: one array task per shard, then an assemble
# job that starts only when every shard task has exited 0.
#
#   deploy/slurm/submit.sh JOB_DIR SHARDS [extra sbatch options...]
#
# Prints "ARRAY_ID ASSEMBLE_ID" on stdout. Logs go to JOB_DIR/logs/.
# Environment: FOLD_ML, FOLD_ML_VERIFY, FOLD_ML_CACHE are passed to the jobs
# (see the .sbatch files); FOLD_ML_MAX_PARALLEL=N caps running shard tasks;
# FOLD_ML_ARRAY=2,5 submits only those shard indices (re-running failed
# shards of an existing job); SLURM_CONF defaults to
# /tmp/fold-ml-slurm/slurm.conf (cluster-up.sh).
set -euo pipefail

if (( $# < 2 )); then
  echo "usage: $0 JOB_DIR SHARDS [extra sbatch options...]" >&2
  exit 2
fi
job_dir="$1"; shards="$2"; shift 2
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "submit: SHARDS must be a positive integer" >&2; exit 2; }
[[ -d "$job_dir" ]] || { echo "submit: no job directory $job_dir (run fold-ml plan first)" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
export SLURM_CONF="${SLURM_CONF:-/tmp/fold-ml-slurm/slurm.conf}"

# Jobs run elsewhere: hand them absolute paths.
abs() { if [[ "$1" == */* ]]; then realpath -m -- "$1"; else echo "$1"; fi; }  # bare names: PATH
export FOLD_ML_JOB; FOLD_ML_JOB="$(cd "$job_dir" && pwd -P)"
export FOLD_ML; FOLD_ML="$(abs "${FOLD_ML:-fold-ml}")"
export FOLD_ML_VERIFY; FOLD_ML_VERIFY="$(abs "${FOLD_ML_VERIFY:-fold-ml-verify}")"
if [[ -n "${FOLD_ML_CACHE:-}" ]]; then export FOLD_ML_CACHE; FOLD_ML_CACHE="$(abs "$FOLD_ML_CACHE")"; fi

logs="$FOLD_ML_JOB/logs"
mkdir -p "$logs"   # slurmd does not create missing log directories

range="${FOLD_ML_ARRAY:-0-$(( shards - 1 ))}${FOLD_ML_MAX_PARALLEL:+%$FOLD_ML_MAX_PARALLEL}"
array_id="$(sbatch --parsable --array="$range" --export=ALL \
  --output="$logs/prove-shard-%A_%a.log" "$@" "$here/prove-shard.sbatch")"
array_id="${array_id%%;*}"   # --parsable may print "id;cluster"

# afterok on the array id waits for all of its tasks. A task that is requeued
# (preemption, scontrol requeue) goes back to PENDING and keeps the
# dependency unsatisfied until its rerun exits 0. If a task fails, the
# assemble job is cancelled (once the whole array has ended) instead of
# pending forever.
assemble_id="$(sbatch --parsable --export=ALL --dependency="afterok:$array_id" \
  --kill-on-invalid-dep=yes --output="$logs/assemble-%j.log" "$@" "$here/assemble.sbatch")"
assemble_id="${assemble_id%%;*}"

echo "$array_id $assemble_id"
