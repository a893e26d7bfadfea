"""nirjax's own measured side of a hardware benchmark: wall time of the same graph on this
machine's CPU (and GPU, when JAX has one).

Timing follows the speed harness (``benchmarks/runners/common.py``): the first call (with
compilation) is timed on its own, then calls repeat until at least ``min_repeats`` calls and
``min_time`` seconds (at most ``max_repeats``); every call ends synchronised
(``jax.block_until_ready``); the median is reported with min and max. A call is one
``model.run`` of the whole batch ``[T, B, ...]`` from the initial state.
"""

from __future__ import annotations

import platform
import statistics
import time

import jax

__all__ = ["available_backends", "measure", "machine_description"]


def available_backends() -> list:
    """The JAX backends present here, of ``("cpu", "gpu")``."""
    found = []
    for backend in ("cpu", "gpu"):
        try:
            if jax.devices(backend):
                found.append(backend)
        except RuntimeError:
            continue
    return found


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict:
    """The machine the measurement ran on: CPU model, logical CPUs, JAX devices, versions."""
    import os

    import numpy as np

    devices = {}
    for backend in available_backends():
        devices[backend] = [d.device_kind for d in jax.devices(backend)]
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "jax": jax.__version__, "numpy": np.__version__, "devices": devices}


def _time(fn, min_repeats, max_repeats, min_time):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats
                                        or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, times


def measure(model, xs, params=None, *, backends=None, synops_per_sample: float | None = None,
            min_repeats: int = 3, max_repeats: int = 20, min_time: float = 1.0) -> dict:
    """Measure ``model.run`` on ``xs`` on each backend (synchronised, warm, median).

    Args:
        model: a compiled graph.
        xs: the input ``[T, B, ...]`` (a dict for several Input nodes).
        params: parameters (default ``model.params``).
        backends: backends to measure (default: every one of ``cpu``/``gpu`` present).
        synops_per_sample: synaptic operations per sample, for ``synops_per_s``.
        min_repeats / max_repeats / min_time: the repetition rule.

    Returns:
        backend -> ``{"device", "time_per_batch_s" (median), "time_per_batch_min_s",
        "time_per_batch_max_s", "repeats", "first_call_s", "time_per_step_s" (median / T),
        "samples_per_s" (B / median), "synops_per_s", "batch", "steps", "measured": True}``.
    """
    params = model.params if params is None else params
    leaves = jax.tree_util.tree_leaves(xs)
    steps, batch = int(leaves[0].shape[0]), int(leaves[0].shape[1])
    out = {}
    for backend in backends or available_backends():
        device = jax.devices(backend)[0]
        p = jax.device_put(params, device)
        x = jax.device_put(xs, device)
        first, times = _time(lambda: model.run(p, x), min_repeats, max_repeats, min_time)
        med = statistics.median(times)
        out[backend] = {
            "device": f"{backend}: {device.device_kind}"
                      + (f" ({_cpu_model()})" if backend == "cpu" else ""),
            "time_per_batch_s": med, "time_per_batch_min_s": min(times),
            "time_per_batch_max_s": max(times), "repeats": len(times),
            "first_call_s": first, "time_per_step_s": med / steps,
            "samples_per_s": batch / med,
            "synops_per_s": (None if synops_per_sample is None
                             else synops_per_sample * batch / med),
            "batch": batch, "steps": steps, "measured": True,
        }
    return out
