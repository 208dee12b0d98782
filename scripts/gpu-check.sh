#!/usr/bin/env bash
# Checks the harness's LibTorch GPU path on a machine that has an NVIDIA GPU and PyTorch but
# no Rust toolchain. Two halves:
#
#   scripts/gpu-check.sh build          here, with Rust: builds a tch binary against torch
#                                       2.11.0 and puts it, stripped, in gpu-check/
#   scripts/gpu-check.sh device [OUT]   there, from the repository root with gpu-check/
#                                       beside it: benchmarks tch-cuda against PyTorch eager
#                                       and trains 200 steps; results go to OUT (default $OUT,
#                                       else gpu-check/out)
#
# The binary must be built against the torch release the GPU machine's python3 has (LibTorch's
# C++ ABI holds only within one release): 2.11.0 by default, GPU_CHECK_TORCH_VERSION to change
# it. burn-tch expects 2.9.0, hence LIBTORCH_BYPASS_VERSION_CHECK. `build` records the version
# in gpu-check/torch-version and `device` refuses a machine whose torch differs. The binary
# has no rpath; `device` puts python3's torch/lib and nvidia-*/lib on LD_LIBRARY_PATH.
#
# GPU_CHECK_DEVICE=cpu runs the device half on tch-cpu and PyTorch's CPU at width 8 for 20
# steps, to test this script on a machine without a GPU. Settings (environment): DCGAN_BIN
# (default gpu-check/dcgan), PYTHON (default python3), GPU_CHECK_BUDGET_S (the device half's
# whole time limit, default 270 s: it is meant to finish in under 5 minutes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$root/gpu-check"

die() { echo "gpu-check: error: $*" >&2; exit 2; }
say() { echo "gpu-check: $*"; }

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

build_half() {
  command -v cargo >/dev/null 2>&1 || die "no cargo here; the build half needs Rust"
  command -v strip >/dev/null 2>&1 || die "no strip (binutils) here"
  cd "$root"
  # A venv with that torch of its own, so the 2.9.0 one of ordinary builds stays as it is.
  local exports
  exports="$(DCGAN_TORCH_VERSION="$torch_version" scripts/setup-libtorch.sh)"
  eval "$exports"
  export LIBTORCH_BYPASS_VERSION_CHECK=1
  # A target dir of its own: torch-sys bakes the LibTorch it found into its build, and this
  # binary must never be mixed up with (or invalidate) the 2.9.0 build in target/release.
  export CARGO_TARGET_DIR="$root/target/gpu-check"
  say "building with torch $torch_version into $CARGO_TARGET_DIR"
  cargo build --release --locked --features tch

  mkdir -p "$bundle"
  # Results of an earlier device run would otherwise ride along with the bundle.
  rm -rf "$bundle/out"
  # Symbols only add size here: the bundle is copied to the GPU machine.
  strip --strip-all -o "$bundle/dcgan" "$CARGO_TARGET_DIR/release/dcgan"
  echo "$torch_version" >"$bundle/torch-version"
  local bytes
  bytes="$(stat -c %s "$bundle/dcgan")"
  say "bundle: $bundle/dcgan, $bytes bytes ($(( (bytes + 1048575) / 1048576 )) MiB)"
  cat <<EOF
gpu-check: now copy this repository with gpu-check/ to the GPU machine and run there, from
its root: scripts/gpu-check.sh device [OUT]   (results in OUT, default gpu-check/out)
EOF
}

# --- device half -------------------------------------------------------------------------

deadline=0
results=()
failed=0

# Runs a command under `timeout`, capped by both its own limit ($1 seconds) and what is left
# of the whole run's budget, so that no single hang can push the run past its limit.
guarded() {
  local cap="$1" left=$((deadline - SECONDS))
  shift
  if (( left < 10 )); then
    echo "gpu-check: out of time before: $*" >&2
    return 124
  fi
  (( cap <= left )) || cap="$left"
  timeout --kill-after=5 "$cap" "$@"
}

pass() { results+=("ok    $1"); }
fail() { results+=("FAIL  $1"); failed=1; echo "gpu-check: FAILED: $1" >&2; }

summary() {
  echo
  say "summary ($mode):"
  local r
  for r in "${results[@]}"; do echo "  $r"; done
  if (( failed )); then
    say "some checks failed; details above and in $out"
    exit 1
  fi
  say "all checks passed; results in $out"
  exit 0
}

# Shows the end of a failed command's stderr, which is where the reason is.
show_err() { [[ -s "$1" ]] && tail -n 15 "$1" | sed 's/^/  | /' >&2; return 0; }

# Finds python's torch, makes its libraries loadable for the binary and checks the device.
setup_environment() {
  local torch_dir site dir info
  if ! torch_dir="$(guarded 60 "$python" -W ignore -c \
      'import torch, os; print(os.path.dirname(torch.__file__))' 2>"$out/env.err")"; then
    show_err "$out/env.err"
    fail "environment: $python cannot import torch"
    return 1
  fi
  site="$(dirname "$torch_dir")"
  local lib_path="$torch_dir/lib"
  for dir in "$site"/nvidia/*/lib; do
    if [[ -d "$dir" ]]; then lib_path="$lib_path:$dir"; fi
  done
  export LD_LIBRARY_PATH="$lib_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "torch at $torch_dir"

  if [[ "$mode" == cuda ]]; then
    if command -v nvidia-smi >/dev/null 2>&1; then
      guarded 30 nvidia-smi -L || say "nvidia-smi -L failed (going on: torch decides)"
    else
      say "no nvidia-smi on PATH (going on: torch decides)"
    fi
  fi
  # The same question the harness asks LibTorch, asked of PyTorch first: if PyTorch cannot
  # see the GPU, neither can the binary, and the rest would only fail more obscurely.
  if ! info="$(guarded 60 "$python" -W ignore -c '
import torch
cuda = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if cuda else "none"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuda available: {cuda} ({name})")
' 2>"$out/env.err")"; then
    show_err "$out/env.err"
    fail "environment: torch could not be queried"
    return 1
  fi
  say "$info"
  local built_for
  built_for="$(cat "$bundle/torch-version" 2>/dev/null || true)"
  if [[ -n "$built_for" && "$info" != "torch $built_for"* ]]; then
    fail "environment: the binary was built for torch $built_for; this python has: $info"
    return 1
  fi
  if [[ "$mode" == cuda && "$info" != *"cuda available: True"* ]]; then
    fail "environment: torch.cuda.is_available() is False"
    return 1
  fi

  [[ -x "$bin" ]] || { fail "environment: no binary at $bin (run the build half)"; return 1; }
  # A library the loader cannot find would otherwise show up as a bare exit status 127.
  if command -v ldd >/dev/null 2>&1; then
    local missing
    missing="$(ldd "$bin" 2>/dev/null | grep 'not found' || true)"
    if [[ -n "$missing" ]]; then
      echo "$missing" >&2
      fail "environment: the binary's libraries are not all found (see above)"
      return 1
    fi
  fi
  if ! guarded 30 "$bin" --version 2>"$out/env.err"; then
    show_err "$out/env.err"
    fail "environment: $bin does not run"
    return 1
  fi
  pass "environment: torch and the binary load; device $mode"
}

# Prints one bench line from a command and keeps it in OUT/bench.log; the median goes into
# the variable named by $1.
bench_once() {
  local var="$1" tag="$2"
  shift 2
  local line
  if ! guarded 90 "$@" >"$out/bench-$tag.out" 2>"$out/bench-$tag.err"; then
    show_err "$out/bench-$tag.err"
    return 1
  fi
  line="$(grep '^bench ' "$out/bench-$tag.out" | tail -n 1 || true)"
  [[ -n "$line" ]] || { echo "gpu-check: no bench line from $tag" >&2; return 1; }
  echo "  $line"
  echo "$line" >>"$out/bench.log"
  printf -v "$var" '%s' "$(tr ' ' '\n' <<<"$line" | sed -n 's/^median_ms=//p')"
}

# (a) The Rust bench and the PyTorch reference, alternated twice (Rust first, then PyTorch
# first), so neither side always gets the warmer GPU.
bench_part() {
  local args=(--width "$width" --steps "$bench_steps" --warmup "$bench_warmup")
  local rust_cmd=("$bin" bench --backend "$backend" "${args[@]}")
  local torch_cmd=("$python" "$root/bench/pytorch_reference.py" --device "$ref_device"
    "${args[@]}")
  local r1 t1 r2 t2
  : >"$out/bench.log"
  say "bench: $backend vs pytorch-$ref_device, width $width, $bench_steps steps"
  if ! { bench_once r1 rust-1 "${rust_cmd[@]}" &&
    bench_once t1 pytorch-1 "${torch_cmd[@]}" &&
    bench_once t2 pytorch-2 "${torch_cmd[@]}" &&
    bench_once r2 rust-2 "${rust_cmd[@]}"; }; then
    fail "bench: a bench command failed (see above and $out/bench-*.err)"
    return 1
  fi
  local verdict
  verdict="$(awk -v r1="$r1" -v r2="$r2" -v t1="$t1" -v t2="$t2" 'BEGIN {
    r = (r1 + r2) / 2; t = (t1 + t2) / 2
    printf "rust %.1f ms, pytorch %.1f ms, rust/pytorch %s", r, t,
      (t > 0 ? sprintf("%.2f", r / t) : "n/a") }')"
  say "bench: $verdict"
  pass "bench: $backend width $width: $verdict"
}

# (b) A short real training run through `dcgan run` on the bundled Fashion-MNIST test split.
train_part() {
  local runs="$out/runs" config="$out/gpu-check.yaml"
  # A fresh runs dir: a run left from an earlier check would be reported cached, not trained.
  rm -rf "$runs"
  cat >"$config" <<EOF
# Written by scripts/gpu-check.sh: a short run on the GPU path.
name: gpu-check
description: $train_steps steps at width $width on $backend, from scripts/gpu-check.sh.
base:
  data:
    dataset: fashion-mnist
    split: test
    path: "$root/data/fashion-mnist"
  model:
    width: $width
  train:
    steps: $train_steps
    backend: $backend
  logging:
    sample_every: $sample_every
EOF
  say "training: $train_steps steps at width $width on $backend"
  if ! guarded 150 "$bin" run "$config" --runs-dir "$runs" --backend "$backend" \
      2>"$out/train.err"; then
    show_err "$out/train.err"
    fail "training: dcgan run failed (see $out/train.err)"
    return 1
  fi
  local manifests=()
  local m
  for m in "$runs"/*/manifest.json; do
    if [[ -f "$m" ]]; then manifests+=("$m"); fi
  done
  if (( ${#manifests[@]} != 1 )); then
    fail "training: expected one run in $runs, found ${#manifests[@]}"
    return 1
  fi
  local run_dir grid report grid_ok=1
  run_dir="$(dirname "${manifests[0]}")"
  grid="$run_dir/samples/step_$(printf '%06d' "$train_steps").png"
  if [[ -f "$grid" ]] && cp "$grid" "$out/sample-grid.png"; then
    say "training: last sample grid copied to $out/sample-grid.png"
  else
    fail "training: no sample grid $grid"
    grid_ok=0
  fi
  # duration_s spans the run itself: model set-up, steps, sample grids and checkpoints (the
  # data is decoded before it starts).
  if ! report="$("$python" - "${manifests[0]}" "$train_steps" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
steps = int(sys.argv[2])
d = m.get("duration_s") or 0.0
per = f"{d * 1000 / steps:.1f} ms/step" if d else "no duration"
print(f"{m.get('status')} {m.get('steps_done')}/{steps} steps in {d:.1f} s ({per}, whole "
      f"run); backend {m.get('backend')}, device {m.get('device')}")
sys.exit(0 if m.get("status") == "completed" and m.get("steps_done") == steps else 1)
PY
  )"; then
    say "training: ${report:-unreadable manifest ${manifests[0]}}"
    fail "training: the run did not complete (manifest ${manifests[0]})"
    return 1
  fi
  say "training: $report"
  if (( grid_ok )); then pass "training: $report"; else return 1; fi
}

device_half() {
  mode="${GPU_CHECK_DEVICE:-cuda}"
  case "$mode" in
    cuda)
      backend=tch-cuda ref_device=cuda width=64 bench_steps=50 bench_warmup=5
      train_steps=200 sample_every=100 ;;
    cpu)
      backend=tch-cpu ref_device=cpu width=8 bench_steps=20 bench_warmup=3
      train_steps=20 sample_every=10 ;;
    *) die "GPU_CHECK_DEVICE must be cuda or cpu, not '$mode'" ;;
  esac
  out="${1:-${OUT:-$bundle/out}}"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  bin="${DCGAN_BIN:-$bundle/dcgan}"
  python="${PYTHON:-python3}"
  local budget="${GPU_CHECK_BUDGET_S:-270}"
  [[ "$budget" =~ ^[0-9]+$ ]] || die "GPU_CHECK_BUDGET_S must be whole seconds"
  deadline=$((SECONDS + budget))
  cd "$root"
  say "device half on $mode; binary $bin; results in $out; at most $budget s"

  if setup_environment; then
    bench_part || true
    train_part || true
  fi
  summary
}

torch_version="${GPU_CHECK_TORCH_VERSION:-2.11.0}"
case "${1:-}" in
  build) [[ $# -eq 1 ]] || die "build takes no arguments"; build_half ;;
  device)
    [[ $# -le 2 ]] || die "device takes at most one argument, OUT"
    shift
    device_half "$@" ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
