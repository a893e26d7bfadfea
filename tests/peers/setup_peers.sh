#!/usr/bin/env bash
# Build the peer-framework environments the conformance tests run the real packages in.
#
#   tests/peers/setup_peers.sh [DIR]          (default DIR: .peers in the repository root)
#
# DIR/torch  : torch 2.13.0 (CPU), nir 1.0.8, nirtorch 2.6, norse 1.1.0, snntorch 1.0.0,
#              rockpool 3.1.0
# DIR/sinabs : torch 2.13.0 (CPU), sinabs 3.1.3 (which pins nir <= 1.0.4: nir 1.0.4, nirtorch 2.0.2)
# DIR/spyx   : spyx 1.0.0 (flax.nnx), jax 0.10.2, nir 1.0.8
# DIR/spyx01 : spyx 0.1.20 (dm-haiku 0.0.17), jax 0.10.2, nir 1.0.8 (the Spyx of the NIR paper)
# DIR/neurobench : torch 2.13.0 (CPU), neurobench 2.3.0, snntorch 1.0.0, nir 1.0.8, nirtorch 2.6
#              (the activity-count oracle of tests/test_cost_neurobench.py)
# DIR/nengo  : nengo 4.1.0 (pure Python), nir 1.0.8. Not in the test extra: nengo 4.1.0 registers
#              a pytest plugin (pytest_nengo) that pytest >= 8 refuses to load, and its import
#              raises a DeprecationWarning (numpy.core) that the test suite turns into an error.
# DIR/xylo   : torch 2.13.0 (CPU), rockpool 3.1.0, xylosim 0.1.3 (the C++ Xylo simulator, built
#              from source with g++), nir 1.0.8, nirtorch 2.6; never samna
#
# torch is installed first, alone, and every later install is constrained to torch==2.13.0,
# so pip fails instead of pulling another torch build (e.g. a CUDA one). An environment
# that already has its marker file is kept; delete DIR/<name> to rebuild it. The tests find
# the environments in DIR (or $NIRJAX_PEERS_DIR) and skip, with the reason, any that is
# missing, unless NIRJAX_PEERS_REQUIRED=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="${1:-${NIRJAX_PEERS_DIR:-$ROOT/.peers}}"
PY="${PYTHON:-python3}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
CONSTRAINTS="$DIR/constraints.txt"
echo "torch==2.13.0" > "$CONSTRAINTS"
PIP_FLAGS=(-q --disable-pip-version-check)

make_env() {  # make_env NAME needs_torch PACKAGES...
  local name="$1" torch="$2"; shift 2
  local env="$DIR/$name"
  if [ -f "$env/.ready" ]; then
    echo "[$name] ready ($(cat "$env/.ready"))"
    return
  fi
  local start=$SECONDS
  rm -rf "$env"
  "$PY" -m venv "$env"
  if [ "$torch" = yes ]; then
    "$env/bin/pip" install "${PIP_FLAGS[@]}" torch==2.13.0
  fi
  "$env/bin/pip" install "${PIP_FLAGS[@]}" -c "$CONSTRAINTS" "$@"
  "$env/bin/pip" freeze > "$env/freeze.txt"
  echo "$* ($((SECONDS - start)) s)" > "$env/.ready"
  echo "[$name] built in $((SECONDS - start)) s"
}

make_env torch yes nir==1.0.8 nirtorch==2.6 norse==1.1.0 snntorch==1.0.0 rockpool==3.1.0
make_env sinabs yes sinabs==3.1.3
make_env spyx no spyx==1.0.0 nir==1.0.8 jax==0.10.2 jaxlib==0.10.2 flax==0.12.8
make_env spyx01 no spyx==0.1.20 dm-haiku==0.0.17 nir==1.0.8 jax==0.10.2 jaxlib==0.10.2
make_env neurobench yes neurobench==2.3.0 snntorch==1.0.0 nir==1.0.8 nirtorch==2.6
make_env nengo no nengo==4.1.0 nir==1.0.8
make_env xylo yes rockpool==3.1.0 xylosim==0.1.3 nir==1.0.8 nirtorch==2.6
echo "peer environments ready under $DIR"
