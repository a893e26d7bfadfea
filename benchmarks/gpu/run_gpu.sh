#!/usr/bin/env bash
# One prepared script for a GPU machine: nirjax and Spyx on W1-W6 (W5 up to N=16384) and the
# fused Pallas LIF kernel against its reference; everything lands under $OUT.
#
# On the GPU machine (repo root, the working tree copied there; no network):
#     bash benchmarks/gpu/run_gpu.sh            # full run, about 6-9 minutes on one H200
#     bash benchmarks/gpu/run_gpu.sh --tiny     # tiny sizes (also the CPU dry run below)
# Dry run here, on the CPU, with the nirjax venv (and the Spyx env if present):
#     JAX_PLATFORMS=cpu OUT=/tmp/gpu_out bash benchmarks/gpu/run_gpu.sh --tiny
#
# What it needs there: python3 with jax (CUDA), numpy, h5py, optax, flax, setuptools (the
# GPU image has them, /work/.library/device/KINDS.md) plus the wheels that
# benchmarks/gpu/prepare_wheels.sh downloads into .whl/ here (nir, spyx, jax-tqdm, ...);
# the device call carries .whl (carry: [".whl"]). nirjax itself is copied from the checkout
# into the same site folder. Files written under $OUT (the
# device tool returns at most 8): speed_gpu.{md,json,csv,png}, speed_gpu_machine.md,
# speed_gpu_compile.csv, pallas.json, run_gpu.log.
set -u -o pipefail
TINY=0
[ "${1:-}" = "--tiny" ] && TINY=1
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
LOG="$OUT/run_gpu.log"
PY=${PYTHON:-python3}
SITE=${NIRJAX_GPU_SITE:-/tmp/nirjax_gpu_site}
exec > >(tee -a "$LOG") 2>&1
echo "== run_gpu.sh $(date -u '+%F %T') UTC tiny=$TINY python=$($PY -c 'import sys; print(sys.version.split()[0])')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# ---------------------------------------------------------------- install (offline)
if ls .whl/*.whl >/dev/null 2>&1 && [ "${NIRJAX_GPU_SKIP_INSTALL:-0}" != 1 ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl || { echo "wheel install failed"; exit 1; }
fi
if [ "${NIRJAX_GPU_SKIP_INSTALL:-0}" != 1 ]; then
    # nirjax from this checkout, laid out as installed (nirjax.kernels lives in kernels/);
    # a plain copy: no build step, nothing fetched
    mkdir -p "$SITE" && rm -rf "$SITE/nirjax" && cp -r nirjax "$SITE/nirjax" \
        && rm -rf "$SITE/nirjax/kernels" && cp -r kernels "$SITE/nirjax/kernels" \
        || { echo "nirjax copy failed"; exit 1; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
$PY - <<'PY'
import jax, nirjax
print("jax", jax.__version__, "backend", jax.default_backend(), jax.devices(), "nirjax", nirjax.__version__)
try:
    import spyx
    print("spyx", getattr(spyx, "__version__", "?"))
except Exception as e:  # the speed harness reports Spyx as n/a then
    print("spyx not importable:", type(e).__name__, e)
PY

# ---------------------------------------------------------------- speed: nirjax and Spyx
# Spyx runs in the same interpreter (its wheels are on PYTHONPATH); each framework still
# gets a process of its own and the rounds alternate (benchmarks/speed.py).
export NIRJAX_BENCH_PYTHON_SPYX=${NIRJAX_BENCH_PYTHON_SPYX:-$(command -v $PY)}
GRAPHS=${NIRJAX_GPU_GRAPHS:-/tmp/nirjax_gpu_graphs}
if [ $TINY = 1 ]; then
    $PY benchmarks/speed.py --quick --frameworks nirjax,spyx --workloads W1,W4,W6,W5-512 \
        --steps 10 --batch 2 --compile-T 10 --gemm-n 64 --min-repeats 1 --max-repeats 1 \
        --rounds 2 --out-dir "$OUT" --graphs-dir "$GRAPHS" --name speed_gpu --timeout 600
else
    $PY benchmarks/speed.py --frameworks nirjax,spyx \
        --workloads W1,W2,W3,W4,W6,W5-512,W5-1024,W5-2048,W5-4096,W5-8192,W5-16384 \
        --min-time 0.5 --max-repeats 10 --rounds 5 --round-time 0.3 --compile-T 100,1000 \
        --gemm-n 8192 --out-dir "$OUT" --graphs-dir "$GRAPHS" --name speed_gpu --timeout 300
fi
echo "speed harness exit code $?"

# ---------------------------------------------------------------- Pallas vs reference
if [ $TINY = 1 ]; then
    INTERP=""
    [ "$($PY -c 'import jax; print(jax.default_backend())')" = cpu ] && INTERP=--interpret
    $PY benchmarks/gpu/pallas_check.py --out "$OUT/pallas.json" --sizes 512 --steps 10 \
        --batch 2 --rounds 2 $INTERP --graphs-dir "$GRAPHS/pallas"
else
    $PY benchmarks/gpu/pallas_check.py --out "$OUT/pallas.json" \
        --sizes 512,1024,2048,4096,8192,16384 --steps 500 --batch 16 --rounds 5 \
        --graphs-dir "$GRAPHS/pallas"
fi
echo "pallas check exit code $?"
ls -la "$OUT"
