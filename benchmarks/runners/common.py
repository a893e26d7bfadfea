"""Helpers shared by the per-framework benchmark runners (standard library and NumPy only).

Every runner is started by ``benchmarks/speed.py`` in its framework's own Python as::

    python benchmarks/runners/<framework>_runner.py SPEC.json OUT.json

reads the workload from ``SPEC.json`` (the ``.nir`` file, the spike input ``.npy``, ``dt``,
timing options) and writes one result dict to ``OUT.json``. Timing rules, the same for every
framework:

* the first call is timed on its own (it includes tracing/compilation or lazy set-up);
* then calls are repeated until at least ``min_repeats`` calls and ``min_time`` seconds
  (at most ``max_repeats``); the median is the reported time, min/max the spread;
* every timed call ends synchronised (``block_until_ready`` for JAX; CPU torch is
  synchronous).

Interleaved rounds (``"serve": true`` in the spec): after writing ``OUT.json`` the runner
stays alive as a worker. It prints ``@@ {"ready": true}`` on stdout and then answers one JSON
command per stdin line, ``{"phase": "fwd" | "fwdbwd", "repeats": n, "warmup": w}``, with
``@@ {"times": [...]}`` (seconds of ``n`` synchronised calls, after ``w`` untimed ones, of
the phase the runner registered with
:func:`register`), until ``{"quit": true}`` or end of input. ``speed.py`` keeps one worker
per framework and alternates them round by round, so the frameworks see the same machine load.

Peak memory is the peak resident set size of the process during a phase minus the resident
set size before it (Linux: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``),
for the first (compiling) call and for a steady-state call, plus the peak RSS of the whole
process (imports, model, all calls; measured before the GEMM). The machine's float32 peak is
the fastest of ``GEMM_REPEATS`` n x n x n GEMMs in the same process.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
import traceback

import numpy as np

__all__ = [
    "NotApplicable", "load_spec", "main", "time_calls", "summary", "MemoryPeak",
    "loss_target", "spike_rate", "register",
]

#: phase name -> (zero-argument callable, sync); filled by the runners (:func:`register`)
PHASES: dict = {}


def register(phase: str, fn, sync=lambda r: r) -> None:
    """Make ``fn`` (a steady-state call, ``sync`` waits for its result) timeable in rounds."""
    PHASES[phase] = (fn, sync)


def _reply(obj: dict) -> None:
    sys.stdout.write("@@ " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve() -> None:
    """Answer timing commands on stdin until ``quit`` (see the module docstring)."""
    _reply({"ready": True, "phases": sorted(PHASES)})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        phase = cmd.get("phase")
        if phase not in PHASES:
            _reply({"error": f"phase {phase!r} not available in this runner"})
            continue
        fn, sync = PHASES[phase]
        times = []
        try:
            for _ in range(int(cmd.get("warmup", 0))):  # untimed: caches, thread pools
                sync(fn())
            for _ in range(int(cmd.get("repeats", 1))):
                t0 = time.perf_counter()
                sync(fn())
                times.append(time.perf_counter() - t0)
        except Exception as e:  # report, keep serving the other phase
            _reply({"error": short_error(phase, e)})
            continue
        _reply({"times": times})


class NotApplicable(Exception):
    """The framework cannot import or run this workload (reported as ``n/a`` with the reason)."""


def load_spec(path: str) -> dict:
    """Read the JSON spec written by ``speed.py``."""
    with open(path) as f:
        return json.load(f)


def load_input(spec: dict) -> np.ndarray:
    """The spike input ``[T, B, *shape]`` as float32."""
    return np.load(spec["input_path"]).astype(np.float32)


def loss_target(spec: dict) -> float:
    """The target spike count of the benchmark loss ``mean((sum_t y - target)^2)``."""
    return 0.1 * spec["steps"]


def spike_rate(a) -> float:
    """Mean of an array of spikes (the fraction of neuron-steps with a spike)."""
    return float(np.mean(np.asarray(a, dtype=np.float64)))


def time_calls(fn, sync=lambda r: r, *, min_repeats: int = 3, max_repeats: int = 20,
               min_time: float = 2.0) -> tuple[float, list]:
    """Time ``fn()``: returns (first-call seconds, list of steady-state seconds)."""
    t0 = time.perf_counter()
    sync(fn())
    first = time.perf_counter() - t0
    times: list = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats
                                        or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t0)
    return first, times


def summary(times: list) -> dict:
    """Median, min, max and count of a list of timings."""
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "n": len(times)}


def _status_kib() -> dict:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmHWM", "VmRSS")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


_PROCESS_PEAK = [0]


def process_peak_rss() -> int:
    """The highest RSS (bytes) this process has had so far, across ``MemoryPeak`` resets."""
    hwm = _status_kib().get("VmHWM")
    if hwm is None:  # no /proc: ru_maxrss is never reset then
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return max(_PROCESS_PEAK[0], hwm * 1024)


class MemoryPeak:
    """Peak RSS growth (bytes) of the process inside a ``with`` block.

    Uses ``/proc/self/clear_refs`` to reset the high-water mark where Linux allows it; falls
    back to ``ru_maxrss`` (then only growth beyond the earlier peak is seen).
    """

    def __enter__(self):
        self.exact = True
        _PROCESS_PEAK[0] = process_peak_rss()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.exact = False
        st = _status_kib()
        self.before = st.get("VmRSS", 0) * 1024
        self.maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc):
        st = _status_kib()
        if self.exact and "VmHWM" in st:
            self.peak = st["VmHWM"] * 1024 - self.before
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.maxrss_before
        self.peak = max(self.peak, 0)  # page accounting can make it a few kB negative
        _PROCESS_PEAK[0] = process_peak_rss()
        return False


GEMM_REPEATS = 10


def xla_memory(compiled) -> dict:
    """XLA's compiled memory analysis (bytes): temp, output, argument, alias, code."""
    try:
        ma = compiled.memory_analysis()
    except Exception:  # not every backend implements it
        return {}
    if ma is None:
        return {}
    keys = ("temp_size_in_bytes", "output_size_in_bytes", "argument_size_in_bytes",
            "alias_size_in_bytes", "generated_code_size_in_bytes")
    return {k.replace("_size_in_bytes", "_bytes"): int(getattr(ma, k, 0) or 0) for k in keys}


def gemm_summary(n: int, seconds: list) -> dict:
    """Peak (fastest of the repeats) and median GFLOP/s of an n x n x n float32 GEMM."""
    med = statistics.median(seconds)
    return {"gemm_n": n, "gemm_s": min(seconds), "gemm_gflops": 2.0 * n ** 3 / min(seconds) / 1e9,
            "gemm_median_gflops": 2.0 * n ** 3 / med / 1e9}


def jax_gemm(n: int) -> dict:
    """:func:`gemm_summary` of ``jnp.dot`` on two n x n float32 matrices (JAX runners)."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    f = jax.jit(jnp.dot)
    jax.block_until_ready(f(a, b))
    times = []
    for _ in range(GEMM_REPEATS):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        times.append(time.perf_counter() - t0)
    return gemm_summary(n, times)


def short_error(stage: str, e: BaseException) -> str:
    """``'stage: Type: first line of the message'``."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{stage}: {type(e).__name__}: {msg}"


def main(run, framework: str):
    """Entry point of a runner: ``run(spec) -> dict``; writes the result JSON.

    Exceptions become ``status: 'n/a'`` (``NotApplicable`` or any error raised while
    importing/running the workload in the framework) with the reason and traceback.
    """
    spec_path, out_path = sys.argv[1], sys.argv[2]
    spec = load_spec(spec_path)
    result = {"framework": framework, "workload": spec["workload"], "status": "ok",
              "python": platform.python_version(), "pid": os.getpid()}
    t0 = time.time()
    try:
        result.update(run(spec, result))
    except NotApplicable as e:
        result.update(status="n/a", reason=str(e))
    except Exception as e:  # the framework failed on this workload: report, do not crash
        result.update(status="n/a", reason=short_error(result.get("stage", "run"), e),
                      traceback=traceback.format_exc())
    result["wall_s"] = time.time() - t0
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1, default=float)
    if spec.get("serve") and result["status"] == "ok":
        serve()
