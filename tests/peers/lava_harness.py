"""Run netx HDF5 networks in Lava (the Loihi 2 oracle) and in nirjax's Loihi kernels.

:func:`run_lava` sends netx files and inputs to ``tests/peers/lava_runner.py`` in the
``lava`` environment (``tests/peers/setup_peers.sh``; under ``$NIRJAX_PEERS_DIR`` or
``.peers/``) and returns each layer's spikes per step (and with ``record_state`` the
integer ``u`` and ``v``), plus Lava's run time; :func:`lava_run` is the benchmark entry
point for a batch (Lava runs one sample after the other). :func:`kernel_loop` runs a
quantized network with :mod:`nirjax.kernels.loihi`, one step at a time in a plain Python
loop, with the one step of synaptic latency Lava's Dense adds written out as a buffer (the
reference for hand-built integer networks; lowered graphs run through ``hw.run``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNER = pathlib.Path(__file__).with_name("lava_runner.py")


def peers_dir() -> pathlib.Path:
    """Where ``setup_peers.sh`` puts the environments."""
    return pathlib.Path(os.environ.get("NIRJAX_PEERS_DIR", ROOT / ".peers"))


def lava_python() -> pathlib.Path | None:
    """The Python of the ``lava`` environment, or ``None`` when it was not built."""
    env = peers_dir() / "lava"
    py = env / "bin" / "python"
    return py if (env / ".ready").exists() and py.exists() else None


@dataclasses.dataclass
class LavaResult:
    """What Lava computed for one job.

    Attributes:
        spikes: netx layer index -> spikes ``[T, B, *shape]`` (int).
        u, v: netx layer index -> integer current / voltage after each step (with
            ``record_state``), else empty.
        seconds: wall time of the runs (the network built and compiled once, not counted).
        build_seconds: building and compiling the network (and its first step).
        error: Lava's exception text, if it failed.
    """

    spikes: dict
    u: dict
    v: dict
    seconds: float
    build_seconds: float
    error: str | None = None

    def layer_spikes(self) -> list:
        """The spikes of the layers with neurons, first to last."""
        return [self.spikes[k] for k in sorted(self.spikes)]


def run_lava(jobs, timeout: float = 1800.0) -> dict:
    """Run netx networks in Lava's fixed-point simulator.

    Args:
        jobs: iterable of ``(job_id, hdf5_path, x, record_state)``; ``x`` is ``[T, B,
            *input_shape]`` (NIR layout; nonzero = one spike).
        timeout: seconds for the whole subprocess.

    Returns:
        ``{job_id: LavaResult}``, plus ``"versions"`` (the package versions Lava reported).

    Raises:
        RuntimeError: the ``lava`` environment is missing or the runner crashed.
    """
    py = lava_python()
    if py is None:
        raise RuntimeError(f"lava environment not found under {peers_dir()}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="nirjax_lava_") as tmp:
        spec = []
        for job_id, path, x, record_state in jobs:
            x = np.asarray(x)
            np.save(os.path.join(tmp, f"{job_id}.x.npy"), x.astype(np.int32))
            spec.append({"id": job_id, "hdf5": os.fspath(path),
                         "record_state": bool(record_state)})
        with open(os.path.join(tmp, "jobs.json"), "w") as f:
            json.dump(spec, f)
        proc = subprocess.run([os.fspath(py), os.fspath(RUNNER), tmp], capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"lava runner failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        for job in spec:
            stem = os.path.join(tmp, job["id"])
            if os.path.exists(stem + ".error.txt"):
                with open(stem + ".error.txt") as f:
                    results[job["id"]] = LavaResult({}, {}, {}, 0.0, 0.0, f.read())
                continue
            with np.load(stem + ".out.npz") as z:
                data = {k: z[k] for k in z.files}
            res = LavaResult({}, {}, {}, float(data["seconds"]), float(data["build_seconds"]))
            for key, arr in data.items():
                if ":" in key:
                    kind, idx = key.split(":")
                    getattr(res, {"s": "spikes", "u": "u", "v": "v"}[kind])[int(idx)] = arr
            results[job["id"]] = res
        with open(os.path.join(tmp, "versions.json")) as f:
            results["versions"] = json.load(f)
    return results


def lava_run(path, x, repeat: int = 3, timeout: float = 3600.0) -> dict:
    """Lava's fixed-point run of a netx file on a batch: the throughput hook of
    ``benchmarks/hardware_sim.py``.

    Lava runs one sample after the other (``run_lava``); each of ``repeat`` runs builds the
    network once (not timed) and times the batch.

    Args:
        path: the netx HDF5 file (e.g. ``hw.export(path)`` of a ``loihi2`` lowering).
        x: ``[T, B, *input_shape]`` spikes (nonzero = one spike).
        repeat: timed runs; the fastest counts.
        timeout: seconds for all runs.

    Returns:
        ``{"name", "out", "seconds", "build_seconds", "samples_per_s"}``: ``out`` the last
        layer's spikes ``[T, B, *shape]`` (int64, as ``hw(x)``), ``seconds`` each run's wall
        time, ``samples_per_s`` the batch size over the fastest.

    Raises:
        RuntimeError: the ``lava`` environment is missing, or Lava failed.
    """
    x = np.asarray(x)
    jobs = [(f"run{i}", path, x, False) for i in range(max(1, int(repeat)))]
    results = run_lava(jobs, timeout=timeout)
    runs = [results[job[0]] for job in jobs]
    for r in runs:
        if r.error is not None:
            raise RuntimeError(f"Lava failed on {path}:\n{r.error}")
    out = runs[0].spikes[max(runs[0].spikes)]
    for r in runs[1:]:
        if not np.array_equal(r.spikes[max(r.spikes)], out):
            raise RuntimeError("Lava gave different spikes on two runs of the same batch")
    seconds = [r.seconds for r in runs]
    v = results["versions"]
    return {"name": f"Lava {v.get('lava-nc', '?')} fixed point (lava-dl {v.get('lava-dl', '?')} "
                    f"netx, Loihi2SimCfg fixed_pt)",
            "out": out, "seconds": seconds, "build_seconds": [r.build_seconds for r in runs],
            "samples_per_s": x.shape[1] / min(seconds)}


# ----------------------------------------------------------------------------- nirjax kernels


def kernel_loop(network, x, record_state: bool = False):
    """Run a quantized netx chain with :mod:`nirjax.kernels.loihi`, step by step.

    Lava's order within a step, written out: every synapse sends what it accumulated on the
    previous step (``pending``), each neuron layer integrates it and spikes, and each
    synapse then accumulates this step's spikes of the layer before it (or the input) and
    of its own layer (``dense_rec``) for the next step. One jitted call per step, in a
    plain Python loop over the steps.

    Args:
        network: a ``LoihiNetwork``.
        x: ``[T, B, *input_shape]``; nonzero = one spike.
        record_state: also return ``u`` and ``v`` per layer.

    Returns:
        ``(spikes, u, v)``: lists over layers of ``[T, B, *shape]`` int arrays (``u``/``v``
        empty lists without ``record_state``).
    """
    import jax
    import jax.numpy as jnp

    from nirjax.kernels import loihi as lk
    from nirjax.lowering.loihi.netx import kernel_params

    x = np.asarray(x)
    T, B = x.shape[:2]
    layers = network.layers
    params = [kernel_params(q) for q in layers]

    def init_sample():
        state = []
        for q, (syn, rec, neuron) in zip(layers, params):
            syn_state = (lk.delay_dense_init_state(syn, q.max_delay)
                         if isinstance(syn, lk.DelayDenseParams) else ())
            pending = jnp.zeros(q.size, jnp.int32)
            state.append((syn_state, pending, lk.cuba_init_state(neuron, q.shape)))
        return state

    def step_sample(state, inp):
        new, outs = [], []
        for (q, (syn, rec, neuron)), (syn_state, pending, cuba) in zip(zip(layers, params),
                                                                      state):
            cuba, s = lk.cuba_step(neuron, cuba, pending.reshape(q.shape))
            src = inp.reshape(-1) if q.flatten_before else inp
            if isinstance(syn, lk.DelayDenseParams):
                syn_state, acc = lk.delay_dense_step(syn, syn_state, src)
            elif isinstance(syn, lk.ConvParams):
                acc = lk.conv(syn, src)
            else:
                acc = lk.dense(syn, src)
            pending = acc.reshape(-1)
            if rec is not None:  # the recurrent synapse's sum also arrives next step
                pending = pending + lk.dense(rec, s.reshape(-1))
            new.append((syn_state, pending, cuba))
            outs.append((s, cuba.u, cuba.v))
            inp = s
        return new, outs

    step = jax.jit(jax.vmap(step_sample))
    state = jax.vmap(lambda _: init_sample())(jnp.zeros(B))
    spikes = [np.zeros((T, B) + tuple(q.shape), np.int64) for q in layers]
    us = [np.zeros_like(s) for s in spikes] if record_state else []
    vs = [np.zeros_like(s) for s in spikes] if record_state else []
    for t in range(T):
        state, outs = step(state, jnp.asarray(x[t]))
        for k, (s, u, v) in enumerate(outs):
            spikes[k][t] = np.asarray(s)
            if record_state:
                us[k][t] = np.asarray(u)
                vs[k][t] = np.asarray(v)
    return spikes, us, vs
