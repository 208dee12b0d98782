#!/usr/bin/env bash
# Sweep throughput with `--jobs 1` and `--jobs 2`: steps per second summed over the runs of a
# sweep (its configs' steps divided by the sweep's wall time), each in a fresh runs folder.
# The evaluation classifier (for the quickstart's data) is trained once beforehand and copied
# in, so the sweeps time only their runs (training, sample grids, each run's evaluation).
#
#   bench/sweep_jobs.sh [SWEEP.yaml] [JOBS ...]      default: quickstart, 1 and 2
set -euo pipefail
cd "$(dirname "$0")/.."
sweep=${1:-experiments/quickstart.yaml}
shift || true
jobs=("${@:-1}")
[ $# -gt 0 ] || jobs=(1 2)
work=${DCGAN_BENCH_DIR:-/tmp/dcgan-bench-jobs}
cargo build --quiet
dcgan=target/debug/dcgan
rm -rf "$work" && mkdir -p "$work"

# A one-step run on the quickstart's data trains the evaluation classifier (default eval
# settings, as the quickstart's) into a warm-up folder, whose cache every timed sweep copies.
echo "training the evaluation classifier once..."
cat >"$work/warm.yaml" <<YAML
data: { dataset: fashion-mnist, split: test, path: $PWD/data/fashion-mnist }
model: { width: 8 }
train: { steps: 1 }
YAML
"$dcgan" -q run "$work/warm.yaml" --runs-dir "$work/warm" >/dev/null

for n in "${jobs[@]}"; do
  mkdir -p "$work/jobs$n"
  cp -r "$work/warm/.cache" "$work/jobs$n/"
  start=$(date +%s.%N)
  "$dcgan" -q sweep "$sweep" --runs-dir "$work/jobs$n" --jobs "$n" >/dev/null
  end=$(date +%s.%N)
  steps=$(cat "$work/jobs$n"/*/manifest.json | grep -o '"steps_done": [0-9]*' \
    | awk '{s += $2} END {print s}')
  awk -v n="$n" -v s="$steps" -v a="$start" -v b="$end" 'BEGIN {
    printf "--jobs %s: %d steps in %.1f s = %.2f steps/s summed over runs\n", n, s, b - a,
      s / (b - a)
  }'
done
