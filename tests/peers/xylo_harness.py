"""Run jobs in the ``xylo`` vendor environment (Rockpool 3.1.0 + xylosim 0.1.3).

Used by ``tests/test_xylo_vendor.py`` and ``benchmarks/hw_vendor_xylo.py``. The environment
is built by ``tests/peers/setup_peers.sh`` under ``$NIRJAX_PEERS_DIR`` (or ``.peers/`` in the
repository root); :func:`xylo_python` says whether it exists. :func:`run_jobs` writes the
job files to a temporary directory, runs ``tests/peers/xylo_runner.py`` there in one
subprocess and reads back every result (an array dict, or the vendor's traceback).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNER = pathlib.Path(__file__).with_name("xylo_runner.py")
ENV = "xylo"


def peers_dir() -> pathlib.Path:
    """Where ``setup_peers.sh`` puts the environments."""
    return pathlib.Path(os.environ.get("NIRJAX_PEERS_DIR", ROOT / ".peers"))


def xylo_python() -> pathlib.Path | None:
    """The ``xylo`` environment's Python, or ``None`` when it was not built."""
    env = peers_dir() / ENV
    py = env / "bin" / "python"
    return py if (env / ".ready").exists() and py.exists() else None


class VendorResult(dict):
    """A job's arrays (a dict); ``error`` holds the vendor's traceback when it raised."""

    error: str | None = None


def run_jobs(jobs: list, files: dict, timeout: float = 1800) -> tuple[dict, dict]:
    """Run ``jobs`` in the xylo environment.

    Args:
        jobs: job dicts (see ``xylo_runner.py``); file fields name keys of ``files``.
        files: ``{file name: array or dict of arrays}`` written next to the jobs (``.npy`` for
            an array, ``.npz`` for a dict).
        timeout: seconds.

    Returns:
        ``({job id: VendorResult}, versions)``.

    Raises:
        RuntimeError: the environment is missing or the runner itself failed.
    """
    py = xylo_python()
    if py is None:
        raise RuntimeError(f"no xylo environment under {peers_dir()}")
    with tempfile.TemporaryDirectory(prefix="nirjax-xylo-") as tmp:
        for name, value in files.items():
            path = os.path.join(tmp, name)
            if isinstance(value, dict):
                np.savez(path, **value)
            elif isinstance(value, (str, pathlib.Path)):
                with open(value, "rb") as src, open(path, "wb") as dst:
                    dst.write(src.read())
            else:
                np.save(path, np.asarray(value))
        with open(os.path.join(tmp, "jobs.json"), "w") as f:
            json.dump(jobs, f)
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        proc = subprocess.run([str(py), str(RUNNER), tmp], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"xylo runner failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        results = {}
        for job in jobs:
            stem = os.path.join(tmp, job["id"])
            result = VendorResult()
            if os.path.exists(stem + ".error.txt"):
                with open(stem + ".error.txt") as f:
                    result.error = f.read()
            else:
                with np.load(stem + ".out.npz") as data:
                    result.update({k: np.asarray(data[k]) for k in data.files})
            results[job["id"]] = result
        with open(os.path.join(tmp, "versions.json")) as f:
            versions = json.load(f)
    return results, versions
