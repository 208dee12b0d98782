#!/usr/bin/env bash
# Times the Rust harness (`dcgan bench`) against the PyTorch eager reference
# (bench/pytorch_reference.py) on this machine, and prints rust/pytorch per backend and width.
#
#   bench/compare.sh [--widths "8 16 64"] [--steps 20] [--warmup 3] [--rounds 3]
#                    [--threads T] [--log bench/last-compare.log]
#
# --threads (default: the number of cores) goes to both sides' CPU runs; CUDA runs take none.
# Backends: flex always; tch-cpu when the binary has the `tch` feature; tch-cuda when it also
# does and PyTorch sees a CUDA GPU. CPU backends are set against pytorch-cpu with the same
# thread count, tch-cuda against pytorch-cuda. The two sides run one after another in each
# round, on the same hardware, and the order flips every round, so that a machine getting
# warmer or busier over the run does not favour one side. Each side's result is the median of
# its per-round medians. Every raw `bench` line goes to the log.
#
# Settings (environment): DCGAN_BIN (default target/release/dcgan), PYTHON (default python3;
# it must import torch).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reference="$root/bench/pytorch_reference.py"

die() { echo "compare: error: $*" >&2; exit 2; }
note() { echo "compare: $*" >&2; }

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

widths="8 16 64"
steps=20
warmup=3
rounds=3
threads="$(nproc)"
log="$root/bench/last-compare.log"

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --widths) need_value "$@"; widths="$2"; shift 2 ;;
    --steps) need_value "$@"; steps="$2"; shift 2 ;;
    --warmup) need_value "$@"; warmup="$2"; shift 2 ;;
    --rounds) need_value "$@"; rounds="$2"; shift 2 ;;
    --threads) need_value "$@"; threads="$2"; shift 2 ;;
    --log) need_value "$@"; log="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

is_count() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_positive() { is_count "$1" && (( 10#$1 > 0 )); }  # 10#: "08" is not octal here
for w in $widths; do
  is_positive "$w" || die "--widths: '$w' is not a positive whole number"
done
[[ -n "${widths// /}" ]] || die "--widths is empty"
is_positive "$steps" || die "--steps must be a positive whole number"
is_count "$warmup" || die "--warmup must be a whole number"
is_positive "$rounds" || die "--rounds must be a positive whole number"
is_positive "$threads" || die "--threads must be a positive whole number"

bin="${DCGAN_BIN:-$root/target/release/dcgan}"
if [[ ! -x "$bin" ]]; then
  die "no dcgan binary at $bin; build it with \`cargo build --release\` (flex only) or
  \`eval \"\$(scripts/setup-libtorch.sh)\" && cargo build --release --features tch\`
  (adds tch-cpu and tch-cuda), or point DCGAN_BIN at one"
fi
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || die "no Python '$python' (set PYTHON)"
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
  die "$python cannot import torch; run \`eval \"\$(scripts/setup-libtorch.sh)\"\` and use
  that venv's python (PYTHON=~/.cache/dcgan-harness/torch-2.9.0/bin/python)"
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Runs one bench command, appends its `bench` line to the log and prints the line. On failure
# shows the command's stderr, because a bare exit status says nothing about what went wrong.
bench_line() {
  local out="$scratch/out" err="$scratch/err" line
  if ! "$@" >"$out" 2>"$err"; then
    echo "compare: error: failed: $*" >&2
    tail -n 20 "$err" >&2
    exit 1
  fi
  line="$(grep '^bench ' "$out" | tail -n 1 || true)"
  [[ -n "$line" ]] || { echo "compare: error: no 'bench' line from: $*" >&2; exit 1; }
  echo "$line" >>"$log"
  echo "$line"
}

# The value of `key=` in a bench line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# Median of numbers (one per argument), halfway between the middle two for an even count.
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { m = (NR + 1) / 2; printf "%.3f", (v[int(m)] + v[int(m + 0.5)]) / 2 }'
}

# Which backends this binary and machine have. tch-cpu is probed with one tiny step: an error
# saying "not compiled" means a flex-only build; any other failure is a real problem to show.
"$bin" --version >/dev/null 2>"$scratch/err" || {
  tail -n 20 "$scratch/err" >&2
  die "$bin does not run (a tch build needs LibTorch on LD_LIBRARY_PATH:
  eval \"\$(scripts/setup-libtorch.sh)\")"
}
rust_cpu=(flex)
has_tch=0
if "$bin" bench --backend tch-cpu --width 8 --steps 1 --warmup 0 \
    >/dev/null 2>"$scratch/err"; then
  has_tch=1
  rust_cpu+=(tch-cpu)
elif grep -q 'not compiled' "$scratch/err"; then
  note "tch-cpu and tch-cuda skipped: this binary was built without the tch feature"
else
  tail -n 20 "$scratch/err" >&2
  die "probing tch-cpu failed (see above)"
fi
cuda=0
if (( has_tch )); then
  if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
      2>/dev/null; then
    cuda=1
  else
    note "tch-cuda skipped: $python's torch sees no CUDA GPU"
  fi
fi

mkdir -p "$(dirname "$log")"
{
  echo "# bench/compare.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) cores"
  echo "# binary $bin ($("$bin" --version 2>/dev/null || true))"
  echo "# python $python, torch $("$python" -c 'import torch; print(torch.__version__)' \
    2>/dev/null)"
  echo "# widths=$widths steps=$steps warmup=$warmup rounds=$rounds threads=$threads"
} >"$log"

# One timed run of `side` (a Rust backend, pytorch-cpu or pytorch-cuda) at width $2.
run_side() {
  local side="$1" w="$2" cmd
  case "$side" in
    pytorch-cpu) cmd=("$python" "$reference" --device cpu --threads "$threads") ;;
    pytorch-cuda) cmd=("$python" "$reference" --device cuda) ;;
    tch-cuda) cmd=("$bin" bench --backend tch-cuda) ;;
    *) cmd=("$bin" bench --backend "$side" --threads "$threads") ;;
  esac
  bench_line "${cmd[@]}" --width "$w" --steps "$steps" --warmup "$warmup"
}

sides=(pytorch-cpu "${rust_cpu[@]}")
if (( cuda )); then
  sides+=(pytorch-cuda tch-cuda)
fi
declare -A medians=()  # "side width" -> the per-round medians, space-separated
rows=()                # "rust_backend width pytorch_side"

for w in $widths; do
  for ((r = 1; r <= rounds; r++)); do
    note "width $w, round $r of $rounds"
    # Odd rounds run the sides in order, even rounds in reverse (PyTorch first, then last).
    order=("${sides[@]}")
    if (( r % 2 == 0 )); then
      order=()
      for ((i = ${#sides[@]} - 1; i >= 0; i--)); do order+=("${sides[i]}"); done
    fi
    for side in "${order[@]}"; do
      line="$(run_side "$side" "$w")"
      echo "  $line" >&2
      medians["$side $w"]+="$(field median_ms "$line") "
    done
  done
  for b in "${rust_cpu[@]}"; do rows+=("$b $w pytorch-cpu"); done
  if (( cuda )); then
    rows+=("tch-cuda $w pytorch-cuda")
  fi
done

printf '%-10s %6s %10s %11s %7s\n' backend width rust_ms pytorch_ms ratio
for row in "${rows[@]}"; do
  read -r b w ref <<<"$row"
  # shellcheck disable=SC2086  # the per-round values are space-separated on purpose
  rust="$(median ${medians["$b $w"]})"
  # shellcheck disable=SC2086
  torch="$(median ${medians["$ref $w"]})"
  # A step that rounds to 0.0 ms has no meaningful ratio.
  awk -v b="$b" -v w="$w" -v r="$rust" -v t="$torch" 'BEGIN {
    ratio = t > 0 ? sprintf("%.2f", r / t) : "n/a"
    printf "%-10s %6d %10.1f %11.1f %7s\n", b, w, r, t, ratio }'
done
note "raw bench lines in $log"
