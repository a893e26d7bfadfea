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
# DIR/lava   : lava-nc 0.10.0 + lava-dl 0.6.0 (Loihi 2 fixed-point simulator, netx HDF5) on
#              Python 3.11 with torch 2.13.0 (CPU); see make_lava_env
#
# NIRJAX_PEERS_ONLY="lava sinabs" builds only the named environments.
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

wanted() {  # wanted NAME: is NAME selected by NIRJAX_PEERS_ONLY (default: all)?
  [ -z "${NIRJAX_PEERS_ONLY:-}" ] || [[ " $NIRJAX_PEERS_ONLY " == *" $1 "* ]]
}

make_env() {  # make_env NAME needs_torch PACKAGES...
  local name="$1" torch="$2"; shift 2
  local env="$DIR/$name"
  wanted "$name" || return 0
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

make_lava_env() {  # make_lava_env NAME
  # lava-nc 0.10.0 and lava-dl 0.6.0 declare Python >=3.10,<3.11 and lava-dl pins torch 2.3 and
  # torchvision 0.18 (CUDA wheels on PyPI: a 5.6 GB venv on Python 3.10). Instead: Python 3.11,
  # the local CPU torch 2.13.0, lava's and netx's runtime dependencies installed normally, and
  # the two packages with --no-deps --ignore-requires-python (1.6 GB). Two things then differ
  # from the published install, both made here or by the runner, never silently:
  #  * Python 3.11 rejects a dataclass field whose default is a mutable dataclass instance
  #    (lava/magma/compiler/var_model.py: ByteEncoder() as the default of CoreEncoder & co.);
  #    ByteEncoder gets unsafe_hash=True (patched below, checked to apply exactly once);
  #  * lava.lib.dl.slayer imports torchvision at import time (object detection only; netx
  #    never uses it): tests/peers/lava_runner.py puts a stub module in sys.modules first.
  # (opencv-python-headless 4.11 is the last release built for numpy 1.x, which lava needs.)
  local name="$1"
  local env="$DIR/$name"
  wanted "$name" || return 0
  if [ -f "$env/.ready" ]; then
    echo "[$name] ready ($(cat "$env/.ready"))"
    return
  fi
  local start=$SECONDS
  rm -rf "$env"
  "$PY" -m venv "$env"
  "$env/bin/pip" install "${PIP_FLAGS[@]}" torch==2.13.0
  "$env/bin/pip" install "${PIP_FLAGS[@]}" -c "$CONSTRAINTS" "numpy>=1.24.4,<2" "scipy>=1.10.1,<2" \
    "scikit-learn>=1.5,<2" "networkx<=2.8.7" "asteval>=0.9.31,<0.10" "h5py>=3.7,<4" \
    "matplotlib>=3.5.2,<4" "pillow>=10.0.1,<11" "opencv-python-headless==4.11.0.86"
  "$env/bin/pip" install "${PIP_FLAGS[@]}" --no-deps --ignore-requires-python \
    lava-nc==0.10.0 lava-dl==0.6.0
  "$env/bin/python" - <<'PATCH'
import pathlib, sysconfig
p = pathlib.Path(sysconfig.get_paths()["purelib"]) / "lava/magma/compiler/var_model.py"
s = p.read_text()
old, new = "@dataclass\nclass ByteEncoder:", "@dataclass(unsafe_hash=True)\nclass ByteEncoder:"
if s.count(old) != 1:
    raise SystemExit(f"{p}: expected one '{old!r}' to patch")
p.write_text(s.replace(old, new))
PATCH
  "$env/bin/python" "$ROOT/tests/peers/lava_runner.py" --check
  "$env/bin/pip" freeze > "$env/freeze.txt"
  echo "lava-nc==0.10.0 lava-dl==0.6.0 torch==2.13.0 python $("$env/bin/python" -V 2>&1 | cut -d' ' -f2) ($((SECONDS - start)) s)" > "$env/.ready"
  echo "[$name] built in $((SECONDS - start)) s"
}

# The environments are independent: build them in parallel (NIRJAX_PEERS_JOBS at a time,
# default 4), each one's output in DIR/NAME.log, and fail if any build failed.
JOBS="${NIRJAX_PEERS_JOBS:-4}"
PIDS=() NAMES=()
build() {  # build NAME FUNCTION ARGS...: run one env build in the background
  local name="$1"; shift
  wanted "$name" || return 0
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  ( "$@" > "$DIR/$name.log" 2>&1 ) &
  PIDS+=($!) NAMES+=("$name")
}
build torch make_env torch yes nir==1.0.8 nirtorch==2.6 norse==1.1.0 snntorch==1.0.0 rockpool==3.1.0
build sinabs make_env sinabs yes sinabs==3.1.3
build spyx make_env spyx no spyx==1.0.0 nir==1.0.8 jax==0.10.2 jaxlib==0.10.2 flax==0.12.8
build spyx01 make_env spyx01 no spyx==0.1.20 dm-haiku==0.0.17 nir==1.0.8 jax==0.10.2 jaxlib==0.10.2
build neurobench make_env neurobench yes neurobench==2.3.0 snntorch==1.0.0 nir==1.0.8 nirtorch==2.6
build nengo make_env nengo no nengo==4.1.0 nir==1.0.8
build xylo make_env xylo yes rockpool==3.1.0 xylosim==0.1.3 nir==1.0.8 nirtorch==2.6
build lava make_lava_env lava
FAILED=()
for i in "${!PIDS[@]}"; do
  if wait "${PIDS[$i]}"; then
    tail -n 1 "$DIR/${NAMES[$i]}.log"
  else
    echo "[${NAMES[$i]}] FAILED; its log:" >&2
    cat "$DIR/${NAMES[$i]}.log" >&2
    FAILED+=("${NAMES[$i]}")
  fi
done
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "peer environments failed: ${FAILED[*]}" >&2
  exit 1
fi
echo "peer environments ready under $DIR"
