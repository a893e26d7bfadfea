#!/usr/bin/env bash
# Run HERE (a machine with access to the package registry), in the repo root, before a device
# call: downloads the wheels run_gpu.sh installs on the GPU machine (Python 3.12, x86-64;
# the GPU image has jax, numpy, h5py, optax, flax, setuptools already) into .whl/, which
# .git/info/exclude keeps out of git. Then call the device tool with carry [".whl"] and the
# command `bash benchmarks/gpu/run_gpu.sh`.
set -eu
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
mkdir -p .whl
for pkg in nir==1.0.8 spyx==1.0.0 jax-tqdm==0.4.0 grain; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d .whl "$pkg" || echo "could not download $pkg (Spyx then runs as n/a if it needs it)"
done
ls -la .whl
