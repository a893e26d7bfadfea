#!/usr/bin/env bash
# Create one virtual environment per peer framework for benchmarks/speed.py, with the exact
# versions the committed results were measured with.
#
#   benchmarks/setup_peers.sh [DIR]        (default DIR: benchmarks/.venvs)
#
# DIR/torch  : torch 2.13.0 (CPU build), norse 1.1.0, snntorch 1.0.0, nirtorch 2.6, nir 1.0.8
# DIR/spyx   : spyx 1.0.0 (flax.nnx), jax 0.10.2, nir 1.0.8
# DIR/spyx01 : spyx 0.1.20 (dm-haiku 0.0.17), jax 0.10.2, nir 1.0.8  (the Spyx of the NIR paper)
#
# torch is installed first and pinned with a constraints file so that no other torch build
# (e.g. a CUDA one) is ever pulled in by a dependency.
set -euo pipefail
cd "$(dirname "$0")"
DIR="${1:-.venvs}"
PY="${PYTHON:-python3}"
mkdir -p "$DIR"
CONSTRAINTS="$(mktemp)"
echo "torch==2.13.0" > "$CONSTRAINTS"

if [ ! -x "$DIR/torch/bin/python" ]; then
  "$PY" -m venv "$DIR/torch"
  "$DIR/torch/bin/pip" install -q torch==2.13.0
  "$DIR/torch/bin/pip" install -q -c "$CONSTRAINTS" nir==1.0.8 nirtorch==2.6 norse==1.1.0 \
      snntorch==1.0.0 torchvision==0.28.0 numpy
fi
if [ ! -x "$DIR/spyx/bin/python" ]; then
  "$PY" -m venv "$DIR/spyx"
  "$DIR/spyx/bin/pip" install -q spyx==1.0.0 jax==0.10.2 jaxlib==0.10.2 flax==0.12.8 nir==1.0.8
fi
if [ ! -x "$DIR/spyx01/bin/python" ]; then
  "$PY" -m venv "$DIR/spyx01"
  "$DIR/spyx01/bin/pip" install -q spyx==0.1.20 dm-haiku==0.0.17 jax==0.10.2 jaxlib==0.10.2 \
      nir==1.0.8
fi
rm -f "$CONSTRAINTS"
echo "peer environments ready under $(cd "$DIR" && pwd)"
