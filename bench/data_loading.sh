#!/usr/bin/env bash
# Data loading: images per second decoding raw files (JPEG folder, Fashion-MNIST IDX) and
# reading them back from the decoded-data cache, then the training step (no GPU, flex) on
# real batches against a pre-made tensor, with how long each step waits for its batch.
#
# The JPEG folder is made from the Fashion-MNIST train split by examples/photo_folder.rs
# (tinted by class, 160-400 px on a side, not square, one sub-folder per class).
#
#   bench/data_loading.sh [PHOTOS]        default: 10000 photos
set -euo pipefail
cd "$(dirname "$0")/.."
photos=${1:-10000}
work=${DCGAN_BENCH_DIR:-/tmp/dcgan-bench-data}
train=/usr/share/datasets/fashion-mnist
cargo build --quiet --example photo_folder
cargo build --quiet
dcgan=target/debug/dcgan
rm -rf "$work" && mkdir -p "$work"
echo "writing $photos JPEG files..."
target/debug/examples/photo_folder "$train/train-images-idx3-ubyte.gz" \
  "$train/train-labels-idx1-ubyte.gz" "$work/photos" "$photos"

inspect() { # what, then inspect arguments: a cold read (decode) and a warm one (cache)
  local what=$1
  shift
  for pass in cold warm; do
    echo "$what ($pass): $("$dcgan" -q data inspect "$@" --runs-dir "$work/runs" \
      --out "$work/grid.png" | grep '^loading')"
  done
}
inspect "JPEG folder, 64 px RGB" "$work/photos" --channels 3
inspect "Fashion-MNIST train IDX, 64 px grey" "$train"

step() { # the step on a pre-made tensor, then on real batches of the data
  "$dcgan" -q bench --width 8 --runs-dir "$work/runs" "$@" | grep -v '^phase'
}
step --steps 30 --data "$work/photos" --channels 3
step --steps 40 --data "$work/photos" --channels 3 --image-size 32
step --steps 20 --data "$train" --image-size 128
