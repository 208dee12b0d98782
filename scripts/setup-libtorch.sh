#!/usr/bin/env bash
# Installs the LibTorch that the `tch` feature links against, from PyTorch's wheel on PyPI,
# into a virtual environment at a fixed path, and prints the environment to export.
#
#   eval "$(scripts/setup-libtorch.sh)"      # then: cargo build --release --features tch
#
# burn-tch 0.22.1 is built for torch 2.9.0. The venv is reused when it is already complete,
# so CI and repeated calls cost nothing after the first (about 4 GB: PyPI's torch wheels are
# CUDA builds and pull the nvidia-* runtime libraries, which libtorch_cuda needs to load even
# on a machine without a GPU). Nothing here fetches libtorch from anywhere but PyPI.
#
# Settings (environment): DCGAN_TORCH_VERSION (default 2.9.0), DCGAN_TORCH_VENV (default
# ~/.cache/dcgan-harness/torch-<version>), PYTHON (default python3).
set -euo pipefail

version="${DCGAN_TORCH_VERSION:-2.9.0}"
venv="${DCGAN_TORCH_VENV:-$HOME/.cache/dcgan-harness/torch-$version}"
python="${PYTHON:-python3}"
marker="$venv/.dcgan-torch-complete"

say() { echo "setup-libtorch: $*" >&2; }

if [[ -f "$marker" && "$(cat "$marker")" == "$version" ]]; then
  say "reusing torch $version in $venv"
else
  if [[ -e "$venv" ]]; then
    # A venv without the marker is a half-finished install: start it again.
    say "removing incomplete venv $venv"
    rm -rf "$venv"
  fi
  say "installing torch==$version from PyPI into $venv (about 4 GB, a few minutes)"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$version" >&2
  echo "$version" > "$marker"
fi

# Ask torch itself where its libraries are, so the paths match the installed layout.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
torch_lib="$site/torch/lib"
[[ -f "$torch_lib/libtorch_cpu.so" ]] || { say "no libtorch_cpu.so in $torch_lib"; exit 1; }
lib_path="$torch_lib"
for dir in "$site"/nvidia/*/lib; do
  [[ -d "$dir" ]] && lib_path="$lib_path:$dir"
done

cat <<ENV
export LIBTORCH_USE_PYTORCH=1
export PATH="$venv/bin:\$PATH"
export LD_LIBRARY_PATH="$lib_path\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ENV
