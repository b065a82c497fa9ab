#!/usr/bin/env bash
# Sharded proving of the default 512-layer model in 1, 2, 4 and 8 shards, on this machine:
# every shard proven one after another (the per-shard times are what N machines would each
# take), then 2 shards by 2 concurrent workers (this machine has 2 cores), assembled and
# verified. Prints a Markdown table. Parameters are set up once, before the timings.
#
#   cargo build --release --workspace && bash benches/shards.sh [COUNTS...]   # default: 1 2 4 8
#
# Needs /usr/bin/time (GNU time) for peak memory. WORK (default /tmp/fold-ml-shards-bench)
# holds the jobs and caches; it is removed at the start.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FOLD_ML:-target/release/fold-ml}
VERIFY=${FOLD_ML_VERIFY:-target/release/fold-ml-verify}
WORK=${WORK:-/tmp/fold-ml-shards-bench}
COUNTS=("${@:-1 2 4 8}")
# shellcheck disable=SC2206
COUNTS=(${COUNTS[*]})
rm -rf "$WORK" && mkdir -p "$WORK"
CACHE=$WORK/cache

# "shard I proven in T s: L layers folded by this run in F s, setup S s, checkpoints C s, compression Z s"
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
field() { sed -n "s/.*$1 \([0-9.]*\) s.*/\1/p" <<<"$2" | head -1; }

"$BIN" plan --shards 1 --job "$WORK/warm" --layers 2 >/dev/null
"$BIN" prove-shard "$WORK/warm" --shard 0 --cache "$CACHE" >/dev/null 2>&1   # parameters set up and cached

echo "| shards | layers per shard | fold per shard (mean) | compress per shard (mean) | slowest shard | peak RSS per shard | assemble | proof | verify (warm) | on N machines: slowest + assemble | on 1 machine: sum |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in "${COUNTS[@]}"; do
  job=$WORK/n$n
  "$BIN" plan --shards "$n" --job "$job" >/dev/null
  fold_sum=0 comp_sum=0 slowest=0 total=0 rss=0
  for ((i = 0; i < n; i++)); do
    out=$(/usr/bin/time -f "RSS %M" "$BIN" prove-shard "$job" --shard "$i" --cache "$CACHE" 2>&1)
    t=$(sed -n 's/.*proven in \([0-9.]*\) s.*/\1/p' <<<"$out")
    f=$(sed -n 's/.*folded by this run in \([0-9.]*\) s.*/\1/p' <<<"$out")
    c=$(field compression "$out")
    r=$(sed -n 's/^RSS \([0-9]*\)/\1/p' <<<"$out")
    fold_sum=$(calc "$fold_sum + $f"); comp_sum=$(calc "$comp_sum + $c")
    total=$(calc "$total + $t")
    slowest=$(calc "($t > $slowest) ? $t : $slowest")
    rss=$((r > rss ? r : rss))
  done
  a0=$(date +%s.%N); "$BIN" assemble "$job" --cache "$CACHE" >/dev/null; a1=$(date +%s.%N)
  assemble=$(calc "$a1 - $a0")
  "$VERIFY" "$job" --cache "$WORK/vcache" >/dev/null   # derives the verifier's key
  v0=$(date +%s.%N); "$VERIFY" "$job" --cache "$WORK/vcache" >/dev/null; v1=$(date +%s.%N)
  printf "| %d | %d | %.1f s | %.1f s | %.1f s | %d MiB | %.1f s | %d B | %.2f s | %.1f s | %.1f s |\n" \
    "$n" $((512 / n)) "$(calc "$fold_sum / $n")" "$(calc "$comp_sum / $n")" "$slowest" $((rss / 1024)) \
    "$assemble" "$(stat -c %s "$job/proof.bin")" "$(calc "$v1 - $v0")" "$(calc "$slowest + $assemble")" "$total"
done

# Two workers at once on this 2-core machine.
job=$WORK/concurrent2
"$BIN" plan --shards 2 --job "$job" >/dev/null
w0=$(date +%s.%N)
"$BIN" prove-shard "$job" --shard 0 --cache "$CACHE" >/dev/null 2>&1 &
"$BIN" prove-shard "$job" --shard 1 --cache "$CACHE" >/dev/null 2>&1
wait
"$BIN" assemble "$job" --cache "$CACHE" >/dev/null
w1=$(date +%s.%N)
"$VERIFY" "$job" --cache "$WORK/vcache" >/dev/null
printf "\n2 shards, 2 concurrent workers on this 2-core machine: %.1f s wall (prove both + assemble), verified\n" "$(calc "$w1 - $w0")"
