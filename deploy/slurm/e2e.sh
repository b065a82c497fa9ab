#!/usr/bin/env bash
# End-to-end test of the Slurm deployment on a local one-node cluster:
# plan 4 shards, submit them as an array + assemble job, requeue shard 1 once
# it has written a checkpoint (as preemption would), and require that its
# rerun resumes, that assemble runs after it, and that the proof verifies.
#
#   deploy/slurm/e2e.sh            # as root (cluster-up installs Slurm)
#
# Environment:
#   FOLD_ML, FOLD_ML_VERIFY   binaries (default target/release/fold-ml{,-verify})
#   FOLD_ML_SLURM_STATE       cluster state dir (default /tmp/fold-ml-slurm);
#                             a cluster already running there is reused and
#                             left running, otherwise it is started and stopped
#   FOLD_ML_E2E_TIMEOUT_S     overall limit once submitted (default 900)
#   FOLD_ML_E2E_KEEP=1        keep the work directory after success
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd "$here/../.." && pwd -P)"
FOLD_ML="${FOLD_ML:-$root/target/release/fold-ml}"
FOLD_ML_VERIFY="${FOLD_ML_VERIFY:-$root/target/release/fold-ml-verify}"
STATE_DIR="${FOLD_ML_SLURM_STATE:-/tmp/fold-ml-slurm}"
TIMEOUT_S="${FOLD_ML_E2E_TIMEOUT_S:-900}"
SHARDS=4
REQ=1   # the shard that gets requeued

log() { echo "e2e: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

for b in FOLD_ML FOLD_ML_VERIFY; do
  [[ -x "${!b}" ]] || die "$b=${!b} is not an executable (build with cargo build --release)"
  printf -v "$b" '%s/%s' "$(cd "$(dirname "${!b}")" && pwd -P)" "$(basename "${!b}")"
done
export FOLD_ML FOLD_ML_VERIFY

work="$(mktemp -d "${TMPDIR:-/tmp}/fold-ml-e2e.XXXXXX")"
dir="$work/job"
cache="$work/cache"
mkdir -p "$cache"
array_id="" asm_id="" started_cluster=0

# job_field ID FIELD: a field of `scontrol show job`, empty once the job is
# gone (finished jobs are purged after MinJobAge).
job_field() {
  scontrol show job -o "$1" 2>/dev/null | grep -o "\\b$2=[^ ]*" | head -n1 | cut -d= -f2- || true
}

diagnose() {
  log "---- diagnostics ----"
  squeue 2>&1 || true
  for j in "$array_id" "$asm_id"; do
    [[ -n "$j" ]] && scontrol show job "$j" 2>&1 | head -n 60
  done
  for f in "$STATE_DIR/slurmctld.log" "$STATE_DIR/slurmd.log"; do
    echo "---- tail $f"; tail -n 40 "$f" 2>/dev/null || true
  done
  for f in "$dir"/logs/*.log; do
    [[ -e "$f" ]] || continue
    echo "---- $f"; tail -n 40 "$f"
  done
  echo "---- job directory"; find "$dir" -maxdepth 4 2>/dev/null | sort | head -n 100
}

finish() {
  local rc=$?
  trap - EXIT
  if (( rc != 0 )); then
    diagnose >&2 || true
  fi
  if [[ -n "$array_id$asm_id" ]]; then
    scancel ${array_id:+"$array_id"} ${asm_id:+"$asm_id"} 2>/dev/null || true
  fi
  if (( started_cluster )); then
    "$here/cluster-down.sh" "$STATE_DIR" || true
  fi
  if (( rc == 0 )) && [[ "${FOLD_ML_E2E_KEEP:-0}" != 1 ]]; then
    rm -rf "$work"
  else
    log "work directory kept: $work"
  fi
  if (( rc == 0 )); then echo "slurm-e2e: 1 passed, 0 failed"; else echo "slurm-e2e: 0 passed, 1 failed"; fi
  exit "$rc"
}
trap finish EXIT

# --- cluster -------------------------------------------------------------------
export SLURM_CONF="$STATE_DIR/slurm.conf"
if ! { [[ -s "$STATE_DIR/slurmctld.pid" ]] && kill -0 "$(cat "$STATE_DIR/slurmctld.pid")" 2>/dev/null; }; then
  started_cluster=1
fi
"$here/cluster-up.sh" "$STATE_DIR" >/dev/null

# --- plan + submit -------------------------------------------------------------
t0=$SECONDS
# one layer per fold, a checkpoint every 2: each shard folds 16 times, so the requeue lands
# mid-shard (with the automatic 4 layers per fold a shard is only 4 folds)
"$FOLD_ML" plan --shards "$SHARDS" --job "$dir" --dense 16 --layers 64 \
  --layers-per-step 1 --checkpoint-every 2
[[ -d "$dir" ]] || die "fold-ml plan did not create $dir"

ids="$(FOLD_ML_CACHE="$cache" "$here/submit.sh" "$dir" "$SHARDS")"
read -r array_id asm_id <<<"$ids"
[[ -n "$array_id" && -n "$asm_id" ]] || die "submit.sh printed '$ids', expected 'ARRAY_ID ASSEMBLE_ID'"
log "submitted array $array_id, assemble $asm_id"
deadline=$(( SECONDS + TIMEOUT_S ))
task="${array_id}_${REQ}"
task_log="$dir/logs/prove-shard-${array_id}_${REQ}.log"

# --- requeue shard REQ after its first checkpoint ------------------------------
log "waiting for a checkpoint of shard $REQ"
while ! compgen -G "$dir/shards/$REQ/checkpoints/ckpt-*.bin" >/dev/null; do
  (( SECONDS < deadline )) || die "no checkpoint in $dir/shards/$REQ/checkpoints/ after ${TIMEOUT_S}s"
  st="$(job_field "$task" JobState)"
  case "$st" in
    PENDING|RUNNING|CONFIGURING|"") ;;
    *) die "shard $REQ ended ($st) before writing a checkpoint" ;;
  esac
  sleep 1
done
st="$(job_field "$task" JobState)"
[[ "$st" == RUNNING ]] || die "shard $REQ is '$st', not RUNNING, at its first checkpoint: too short to requeue (raise --layers)"
log "checkpoint seen after $(( SECONDS - t0 ))s; requeueing $task"
scontrol requeue "$task"

for _ in $(seq 30); do
  [[ "$(job_field "$task" Restarts)" =~ ^[1-9] ]] && break
  sleep 1
done
[[ "$(job_field "$task" Restarts)" =~ ^[1-9] ]] || die "$task shows no restart after scontrol requeue"

# --- wait for assemble -----------------------------------------------------------
log "waiting for assemble job $asm_id (afterok on array $array_id)"
last_report=$SECONDS
while :; do
  (( SECONDS < deadline )) || die "assemble job $asm_id not finished after ${TIMEOUT_S}s"
  st="$(job_field "$asm_id" JobState)"
  reason="$(job_field "$asm_id" Reason)"
  case "$st" in
    COMPLETED) break ;;
    PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED)
      [[ "$reason" != DependencyNeverSatisfied ]] \
        || die "assemble job $asm_id can never run: a shard task failed" ;;
    "")  # purged already: judge by its output
      grep -q 'assembled and verified' "$dir"/logs/assemble-"$asm_id".log 2>/dev/null && break
      die "assemble job $asm_id vanished without finishing" ;;
    *) [[ "$reason" != DependencyNeverSatisfied ]] \
         || die "assemble job $asm_id was cancelled: a shard task failed (afterok never satisfied)"
       die "assemble job $asm_id ended $st (reason $reason)" ;;
  esac
  if (( SECONDS - last_report >= 30 )); then
    log "$(( SECONDS - t0 ))s: assemble $st/$reason; queue: $(squeue -h -o '%i:%T' | tr '\n' ' ')"
    last_report=$SECONDS
  fi
  sleep 2
done
log "assemble finished $(( SECONDS - t0 ))s after submit"

# --- assertions ------------------------------------------------------------------
[[ -f "$task_log" ]] || die "no log $task_log"
grep -q 'DUE TO JOB REQUEUE' "$task_log" \
  || die "first run of shard $REQ was not killed by the requeue (see $task_log)"
grep -q 'SLURM_RESTART_COUNT=1' "$task_log" \
  || die "no rerun (SLURM_RESTART_COUNT=1) of shard $REQ in $task_log"
sed -n '/SLURM_RESTART_COUNT=1/,$p' "$task_log" | grep -q 'resuming from the checkpoint at' \
  || die "the rerun of shard $REQ did not report resuming from a checkpoint (see $task_log)"
[[ -s "$dir/statement.json" ]] || die "no $dir/statement.json"
"$FOLD_ML_VERIFY" "$dir" --cache "$cache" || die "fold-ml-verify rejected $dir"
log "OK: shard $REQ resumed after requeue; proof verified ($(( SECONDS - t0 ))s)"
