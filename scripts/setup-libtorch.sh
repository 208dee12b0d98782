#!/usr/bin/env bash
# Installs the LibTorch that the `tch` feature links against, from PyTorch's wheel on PyPI,
# into a virtual environment at a fixed path, and prints the environment to export:
#
#   env_out="$(scripts/setup-libtorch.sh)" && eval "$env_out"
#   cargo build --release --features tch
#
# (Two steps, so that a failed set-up stops a `set -e` script: `eval "$(...)"` would not.)
#
# burn-tch 0.22.1 is built for torch 2.9.0. The venv is reused when it is complete, so CI and
# repeated calls cost nothing after the first. It takes about 7 GB: PyPI's torch wheels are
# CUDA builds and pull the nvidia-* runtime libraries, which libtorch_cuda needs to load even
# on a machine without a GPU. Nothing here fetches libtorch from anywhere but PyPI.
#
# Settings (environment): DCGAN_TORCH_VERSION (default 2.9.0), DCGAN_TORCH_VENV (default
# ~/.cache/dcgan-harness/torch-<version>), PYTHON (default python3, with its venv module).
set -euo pipefail

say() { echo "setup-libtorch: $*" >&2; }
die() { say "error: $*"; exit 1; }

version="${DCGAN_TORCH_VERSION:-2.9.0}"
if [[ -z "${DCGAN_TORCH_VENV:-}" && -z "${HOME:-}" ]]; then
  die "neither DCGAN_TORCH_VENV nor HOME is set: say where the venv goes"
fi
venv="${DCGAN_TORCH_VENV:-$HOME/.cache/dcgan-harness/torch-$version}"
python="${PYTHON:-python3}"
# `started` is written before anything is installed, `complete` (with the version) after: a
# folder with either marker is our own, safe to remove when it is not complete.
started="$venv/.dcgan-torch-started"
complete="$venv/.dcgan-torch-complete"

install() {
  command -v "$python" >/dev/null 2>&1 || die "no Python '$python' (set PYTHON)"
  say "installing torch==$version from PyPI into $venv (about 7 GB, a few minutes)"
  mkdir -p "$venv"
  echo "$version" > "$started"
  "$python" -m venv "$venv" >&2 || die "'$python -m venv' failed (Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
    "torch==$version" >&2 || die "pip could not install torch==$version (is PyPI reachable?)"
  echo "$version" > "$complete"
}

if [[ -f "$complete" && "$(cat "$complete")" == "$version" ]]; then
  say "reusing torch $version in $venv"
elif [[ -f "$started" || -f "$complete" ]]; then
  say "removing the half-finished or other-version install in $venv"
  rm -rf "$venv"
  install
elif [[ -e "$venv" ]]; then
  # Not ours: never delete a folder this script did not create.
  die "$venv exists but was not made by this script; remove it or set DCGAN_TORCH_VENV"
else
  install
fi

# Ask the venv itself where its packages are, so the paths match the installed layout.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" ||
  die "the venv's Python does not run; remove $venv and run this again"
torch_lib="$site/torch/lib"
[[ -f "$torch_lib/libtorch_cpu.so" ]] ||
  die "no libtorch_cpu.so in $torch_lib; remove $venv and run this again"
lib_path="$torch_lib"
for dir in "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib; do
  if [[ -d "$dir" ]]; then lib_path="$lib_path:$dir"; fi
done

cat <<ENV
export LIBTORCH_USE_PYTORCH=1
export PATH="$venv/bin:\$PATH"
export LD_LIBRARY_PATH="$lib_path\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ENV
