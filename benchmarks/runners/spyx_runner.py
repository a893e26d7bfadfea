"""Benchmark runner for Spyx (run in a Spyx environment by ``benchmarks/speed.py``).

Imports the ``.nir`` file with ``spyx.nir.from_nir`` and runs the imported model the way
Spyx runs it, ``spyx.nn.run`` (one ``jax.lax.scan`` over time), inside ``jax.jit``. The Flax
NNX module is split once into its graph definition and state (``nnx.split``), so the timed
function is a pure jitted JAX function of the parameters; the backward pass is
``jax.value_and_grad`` with respect to every ``nnx.Param``. Spyx runs convolutions
channels-last, so a 4-D per-step input ``[C, H, W]`` is transposed to ``[H, W, C]`` before
import (the layout Spyx expects; the data are the same).

Spyx 0.1.x (the dm-haiku version) is run through ``SNN.apply`` of the transformed function
``from_nir`` returns, with batch-major input as that version expects.

Usage: ``python benchmarks/runners/spyx_runner.py SPEC.json OUT.json``
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import numpy as np  # noqa: E402


def _version(mod) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "?"


def run(spec: dict, result: dict) -> dict:
    result["stage"] = "import"
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import nir

    if not hasattr(nir, "Sequence"):
        # Spyx 0.1.x refers to nir.Sequence, which nir 1.x no longer has; the class is only
        # used in isinstance checks, so an empty stand-in lets the importer run
        nir.Sequence = type("Sequence", (), {})
    import spyx
    import spyx.nir
    import spyx.nn

    import_s = time.perf_counter() - t0
    version = _version("spyx")
    out: dict = {"import_s": import_s, "versions": {"spyx": version, "jax": jax.__version__, "nir": _version("nir")}}
    haiku = version.startswith("0.")
    if haiku:
        out["versions"]["dm-haiku"] = _version("dm-haiku")
    else:
        out["versions"]["flax"] = _version("flax")
    timing = dict(min_repeats=spec["min_repeats"], max_repeats=spec["max_repeats"],
                  min_time=spec["min_time"])

    x_np = common.load_input(spec)
    notes = []
    if x_np.ndim == 5:
        x_np = np.ascontiguousarray(x_np.transpose(0, 1, 3, 4, 2))
        notes.append("input transposed to channels-last [T,B,H,W,C] (the layout Spyx runs convs in)")
    steps, batch = x_np.shape[:2]
    target = common.loss_target(spec)
    graph = nir.read(spec["nir_path"])

    t0 = time.perf_counter()
    log = io.StringIO()
    if haiku:
        x = jnp.asarray(x_np.swapaxes(0, 1))  # Spyx 0.1.x is batch-major [B, T, ...]
        with contextlib.redirect_stdout(log):
            snn, params = spyx.nir.from_nir(graph, x[:1, :2], dt=spec["dt"])

        def apply(p, xs):
            return jnp.swapaxes(snn.apply(p, xs)[0], 0, 1)  # -> [T, B, ...]

        fwd_fn = jax.jit(apply)
        rates_fn = None
    else:
        from flax import nnx

        x = jnp.asarray(x_np)
        with contextlib.redirect_stdout(log):
            model, _ = spyx.nir.from_nir(graph, x[:2, :1], dt=spec["dt"])
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def apply(p, xs):
            return spyx.nn.run(nnx.merge(graphdef, p, rest), xs)[0]

        fwd_fn = jax.jit(apply)

        def layer_outputs(p, xs):
            m = nnx.merge(graphdef, p, rest)

            def body(state, x_t):
                h, new, outs = x_t, [], []
                for layer, s in zip(m.layers, state):
                    if s is None:
                        h = layer(h)
                        new.append(None)
                    else:
                        h, s = layer(h, s)
                        new.append(s)
                        outs.append(h)
                return new, outs

            return jax.lax.scan(body, m.initial_state(xs.shape[1]), xs)[1]

        rates_fn = jax.jit(layer_outputs)
        out["layers"] = [type(layer).__name__ for layer in model.layers]
    out["setup_s"] = time.perf_counter() - t0
    if log.getvalue().strip():
        out["import_log"] = log.getvalue().strip()[:2000]
    out["n_params"] = int(sum(np.size(a) for a in jax.tree_util.tree_leaves(params)))

    result["stage"] = "forward"
    with common.MemoryPeak() as phase:
        first, times = common.time_calls(lambda: fwd_fn(params, x), jax.block_until_ready, **timing)
    common.register("fwd", lambda: fwd_fn(params, x), jax.block_until_ready)
    out["fwd_phase_rss_bytes"] = phase.peak
    out["fwd_first_s"] = first
    out["fwd"] = common.summary(times)
    out["fwd_compile_s"] = max(first - out["fwd"]["median"], 0.0)
    with common.MemoryPeak() as mem:
        ys = jax.block_until_ready(fwd_fn(params, x))
    out["fwd_rss_bytes"] = mem.peak
    out["fwd_xla"] = common.xla_memory(fwd_fn.lower(params, x).compile())
    out["output_mean"] = common.spike_rate(ys)
    if rates_fn is not None:
        names = [f"{i}:{name}" for i, name in enumerate(out["layers"])]
        stateful = [n for n, layer in zip(names, model.layers) if hasattr(layer, "initial_state")]
        outs = rates_fn(params, x)
        out["rates"] = {n: common.spike_rate(o) for n, o in zip(stateful, outs)}

    if spec.get("backward", True):
        try:
            result["stage"] = "backward"

            def loss(p):
                ys = apply(p, x)
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

    out["process_peak_rss_bytes"] = common.process_peak_rss()
    result["stage"] = "gemm"
    out.update(common.jax_gemm(spec["gemm_n"]))
    if notes:
        out["notes"] = notes
    result.pop("stage", None)
    return out


if __name__ == "__main__":
    common.main(run, common.load_spec(sys.argv[1]).get("framework", "spyx"))
