#!/usr/bin/env bash
# The scaling benchmark (benchmarks/scaling.py) on a GPU machine, results under $OUT.
#
# Run from the repository root on the device machine (one NVIDIA H200 here; JAX with CUDA,
# optax and numpy preinstalled, `nir` carried as a wheel in .whl/):
#
#   bash benchmarks/gpu/scaling_gpu.sh              # the real run, about 5 minutes
#   DRY_RUN=1 bash benchmarks/gpu/scaling_gpu.sh    # tiny sizes on the CPU, anywhere
#
# Before the real run, on the development machine (once):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl nir==1.0.8
# and give the run tool carry=[".whl"].
#
# What it measures (all written to $OUT; at most 8 files come back):
#   1. scaling_gpu.{md,json}: W5 (Input N -> Linear NxN -> LIF N, T=500, batch 16, float32)
#      on the first D GPUs for D in $GPU_DEVICES (default: 1, this machine has one GPU;
#      on a machine of 8 GPUs use GPU_DEVICES="1 2 4 8"), N in $GPU_SIZES: XLA's compiled
#      memory per device (forward and gradient), buffers resident, the device's peak bytes
#      in use, and the time of a T=20 forward run.
#   2. scaling_cpu16.{md,json}: the same W5 with neurons split over D = 1, 2, 4, 8 host CPU
#      devices of the machine's own cores (16 here, not shared with other jobs): the
#      multi-device numbers of scaling_cpu.md, timed on cores of their own.
#   3. env.txt: nvidia-smi, versions.
set -uo pipefail

OUT=${OUT:-/tmp/nirjax_scaling_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

if [ "${DRY_RUN:-0}" = "1" ]; then
    PLATFORM=cpu
    GPU_SIZES=${GPU_SIZES:-2048}
    GPU_DEVICES=${GPU_DEVICES:-"1 2"}
    CPU_SIZES=${CPU_SIZES:-2048}
    CPU_DEVICES=${CPU_DEVICES:-"1 2"}
else
    PLATFORM=gpu
    GPU_SIZES=${GPU_SIZES:-"8192 16384 32768"}
    GPU_DEVICES=${GPU_DEVICES:-1}
    CPU_SIZES=${CPU_SIZES:-8192}
    CPU_DEVICES=${CPU_DEVICES:-"1 2 4 8"}
    # the device machine has no nirjax and no nir: install them for this run only
    if [ -d .whl ]; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    # nirjax as pyproject.toml lays it out (kernels/ is nirjax.kernels), without a build
    rm -rf /tmp/nirjax_site && mkdir -p /tmp/nirjax_site || exit 1
    cp -r nirjax /tmp/nirjax_site/ && cp -r kernels /tmp/nirjax_site/nirjax/kernels || exit 1
    export PYTHONPATH=/tmp/nirjax_site${PYTHONPATH:+:$PYTHONPATH}
fi

{
    date -u
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    $PY -c "import jax, numpy, nir, nirjax; print('jax', jax.__version__, 'numpy', numpy.__version__, 'nir', nir.__version__ if hasattr(nir, '__version__') else '?', 'nirjax', nirjax.__version__)"
    nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

status=0
# 1. GPUs (or, dry run: the CPU)
timeout 420 $PY benchmarks/scaling.py --platform "$PLATFORM" --sizes $GPU_SIZES \
    --devices $GPU_DEVICES --out "$OUT" --tag gpu 2>&1 | tee "$OUT/log_gpu.txt" || status=1
# 2. the machine's own CPU cores split into D devices
timeout 240 $PY benchmarks/scaling.py --platform cpu --sizes $CPU_SIZES \
    --devices $CPU_DEVICES --out "$OUT" --tag cpu16 2>&1 | tee "$OUT/log_cpu16.txt" || status=1
ls -l "$OUT"
exit $status
