"""Benchmark runner for nirjax (run in the nirjax environment by ``benchmarks/speed.py``).

Times ``model.run`` (jitted, the public pure form) and ``jax.value_and_grad`` of the benchmark
loss through it with respect to every parameter in ``model.params``; measures compile time
(first call minus steady state, and ahead-of-time ``lower().compile()`` for several T),
XLA's compiled memory analysis, peak RSS growth, spike rates of every spiking node and a
float32 GEMM (``jnp.dot``) in the same process.

Usage: ``python benchmarks/runners/nirjax_runner.py SPEC.json OUT.json``
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import numpy as np  # noqa: E402


def run(spec: dict, result: dict) -> dict:
    result["stage"] = "import"
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import nirjax

    import_s = time.perf_counter() - t0
    out: dict = {"import_s": import_s, "versions": {"nirjax": nirjax.__version__, "jax": jax.__version__,
                              "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__")
                              else jax.__version__},
                 "device": str(jax.devices()[0].device_kind)}
    try:
        import nir
        out["versions"]["nir"] = nir.__version__ if hasattr(nir, "__version__") else "?"
    except ImportError:
        pass
    opts = dict(spec.get("options") or {})
    out["options"] = {k: repr(v) for k, v in opts.items()}
    timing = dict(min_repeats=spec["min_repeats"], max_repeats=spec["max_repeats"],
                  min_time=spec["min_time"])

    t0 = time.perf_counter()
    model = nirjax.compile(spec["nir_path"], dt=spec["dt"], **opts)
    out["setup_s"] = time.perf_counter() - t0
    params = model.params
    out["n_params"] = int(sum(np.size(a) for a in jax.tree_util.tree_leaves(params)))

    x_np = common.load_input(spec)
    steps, batch = x_np.shape[:2]
    x = jnp.asarray(x_np)
    state = model.init_state(batch)

    # ---------------------------------------------------------------- forward
    result["stage"] = "forward"

    donate = bool(opts.get("donate_state"))

    def forward():
        # a donated state cannot be passed twice: give every call a fresh one
        return model.run(params, x, model.init_state(batch) if donate else state)[0]

    with common.MemoryPeak() as phase:
        first, times = common.time_calls(forward, jax.block_until_ready, **timing)
    common.register("fwd", forward, jax.block_until_ready)
    out["fwd_phase_rss_bytes"] = phase.peak
    out["fwd_first_s"] = first
    out["fwd"] = common.summary(times)
    out["fwd_compile_s"] = max(first - out["fwd"]["median"], 0.0)
    with common.MemoryPeak() as mem:
        jax.block_until_ready(forward())
    out["fwd_rss_bytes"] = mem.peak
    fwd_fn = jax.jit(lambda p, xs, s: model.run(p, xs, s)[0])
    out["fwd_xla"] = common.xla_memory(fwd_fn.lower(params, x, state).compile())

    # ---------------------------------------------------------------- spike rates
    spiking = [n.name for n in model.program.nodes if n.rule.spiking]
    ys, _, rec = model.run(params, x, state, record=spiking)
    out["rates"] = {name: common.spike_rate(rec[name]) for name in spiking}
    out["output_mean"] = common.spike_rate(ys)

    # ---------------------------------------------------------------- forward + backward
    if spec.get("backward", True):
        try:
            result["stage"] = "backward"
            target = common.loss_target(spec)

            def loss(p):
                ys = model.run(p, x, model.init_state(batch) if donate else state)[0]
                return jnp.mean((jnp.sum(ys, axis=0) - target) ** 2)

            grad_fn = jax.jit(jax.value_and_grad(loss))
            with common.MemoryPeak() as phase:
                first, times = common.time_calls(lambda: grad_fn(params), jax.block_until_ready, **timing)
            common.register("fwdbwd", lambda: grad_fn(params), jax.block_until_ready)
            out["fwdbwd_phase_rss_bytes"] = phase.peak
            out["bwd_first_s"] = first
            out["fwdbwd"] = common.summary(times)
            out["bwd_compile_s"] = max(first - out["fwdbwd"]["median"], 0.0)
            with common.MemoryPeak() as mem:
                value, grads = jax.block_until_ready(grad_fn(params))
            out["fwdbwd_rss_bytes"] = mem.peak
            out["fwdbwd_xla"] = common.xla_memory(grad_fn.lower(params).compile())
            leaves = jax.tree_util.tree_leaves(grads)
            out["grad_finite"] = bool(all(np.all(np.isfinite(np.asarray(g))) for g in leaves))
            out["grad_nonzero_arrays"] = int(sum(bool(np.any(np.asarray(g) != 0)) for g in leaves))
            out["grad_arrays"] = len(leaves)
            out["loss"] = float(value)
        except Exception as e:  # keep the forward results; report why backward failed
            out["bwd_reason"] = common.short_error("backward", e)
            out["bwd_traceback"] = common.traceback.format_exc()

    # ---------------------------------------------------------------- compile and memory vs T
    result["stage"] = "compile-vs-T"
    per_t = []
    # each T compiled three times in alternating order (fresh function each time, so nothing
    # is cached); the fastest of the three is reported, the first compile of the process
    # included in the pool (one-time costs land on whichever T comes first).
    best: dict[int, dict] = {}
    for _ in range(3):
        for t in spec.get("compile_T") or []:
            xs = jax.ShapeDtypeStruct((int(t),) + tuple(x.shape[1:]), x.dtype)
            fn = jax.jit(lambda p, xs, s: model.run(p, xs, s)[0])
            t0 = time.perf_counter()
            lowered = fn.lower(params, xs, state)
            t1 = time.perf_counter()
            compiled = lowered.compile()
            t2 = time.perf_counter()
            row = {"T": int(t), "lower_s": t1 - t0, "compile_s": t2 - t1, "total_s": t2 - t0,
                   **common.xla_memory(compiled)}
            if int(t) not in best or row["total_s"] < best[int(t)]["total_s"]:
                best[int(t)] = row
    per_t.extend(best[int(t)] for t in spec.get("compile_T") or [])
    out["compile_vs_T"] = per_t

    # ---------------------------------------------------------------- machine peak
    out["process_peak_rss_bytes"] = common.process_peak_rss()
    result["stage"] = "gemm"
    out.update(common.jax_gemm(spec["gemm_n"]))
    result.pop("stage", None)
    return out


if __name__ == "__main__":
    common.main(run, "nirjax")
