"""Throughput of Xylo's vendor simulator (XyloSim) vs nirjax's Xylo kernel, same spikes.

Runs one Xylo configuration (default: the NIR paper's Braille graph lowered to Audio 2 at
``dt = 1e-4``) on one batch of input events through

* ``xylosim``: Rockpool 3.1.0's ``XyloSim.from_specification`` (xylosim 0.1.3's C++),
  sample by sample as its API requires (``reset_state`` then ``evolve``), in the ``xylo``
  environment of ``tests/peers/setup_peers.sh`` (subprocess; only the loop is timed);
* ``nirjax-kernel``: :func:`nirjax.kernels.xylo.network_step` in one jitted ``lax.scan``
  over time, ``vmap``-ed over the batch (compile time excluded and reported apart).

Before timing it checks that both give identical output spikes at every step. Reports
samples per second of each and the ratio. ``benchmarks/hardware_sim.py`` times the public
path instead (``nirjax.lower(...)`` and ``hw(xs)``: the integer program through the compiled
scan); this script times the bare kernel.

Usage::

    python benchmarks/hw_vendor_xylo.py [--steps 300] [--batch 32] [--repeat 3]
                                        [--rate 0.2] [--out results.json]

Timings depend on the machine and its load; this script makes no claim by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
import xylo_harness  # noqa: E402

BRAILLE = ROOT / "tests" / "data" / "paper" / "braille_noDelay_noBias_subtract.nir"


def vendor_run(spec, counts: np.ndarray, repeat: int = 3) -> dict:
    """XyloSim on ``counts`` ``[T, B, Nin]``: its output spikes and the loop's wall times.

    Args:
        spec: a :class:`nirjax.lowering.xylo.quantize.XyloSpec`.
        counts: input event counts.
        repeat: timed repetitions (the fastest is reported).

    Returns:
        ``{"out": [T, B, Nout], "seconds": [repeat], "samples_per_s": float}``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spec.npz")
        spec.export(path)
        jobs = [{"id": "sim", "kind": "simulate", "target": spec.target.name,
                 "spec": "spec.npz", "x": "x.npy"},
                {"id": "time", "kind": "time", "target": spec.target.name, "spec": "spec.npz",
                 "x": "x.npy", "repeat": repeat}]
        results, _ = xylo_harness.run_jobs(jobs, {"spec.npz": path, "x.npy": counts})
    for r in results.values():
        if r.error:
            raise RuntimeError(r.error)
    seconds = results["time"]["seconds"]
    return {"out": results["sim"]["out"], "seconds": seconds.tolist(),
            "samples_per_s": counts.shape[1] / float(np.min(seconds))}


def kernel_run(spec, counts: np.ndarray, repeat: int = 3) -> dict:
    """nirjax's Xylo kernel on ``counts``: one jitted scan, vmapped over the batch.

    Returns:
        ``{"out", "seconds", "compile_s", "samples_per_s"}`` (like :func:`vendor_run`).
    """
    import jax
    import jax.numpy as jnp

    from nirjax.kernels import xylo as xk

    params = spec.kernel_params()

    @jax.jit
    def run(xs):
        def one(x):
            return jax.lax.scan(lambda s, c: xk.network_step(params, s, c),
                                xk.init_state(params), x)[1].out
        return jax.vmap(one, in_axes=1, out_axes=1)(xs)

    xs = jnp.asarray(counts, jnp.int32)
    start = time.perf_counter()
    out = run(xs).block_until_ready()
    compile_s = time.perf_counter() - start
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(xs).block_until_ready()
        seconds.append(time.perf_counter() - start)
    return {"out": np.asarray(out), "seconds": seconds, "compile_s": compile_s,
            "samples_per_s": counts.shape[1] / min(seconds)}


def main(argv=None) -> dict:
    """Command line entry point; returns the results dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.2,
                        help="probability of an input event per channel and step")
    parser.add_argument("--target", default="xylo-audio2")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import nir

    from nirjax.lowering.xylo.from_nir import lower_nir

    spec = lower_nir(nir.read(str(BRAILLE)), args.target, 1e-4)
    rng = np.random.default_rng(0)
    counts = (rng.random((args.steps, args.batch, spec.n_inputs)) < args.rate).astype(np.int64)
    vendor = vendor_run(spec, counts, args.repeat)
    ours = kernel_run(spec, counts, args.repeat)
    identical = bool(np.array_equal(vendor["out"], ours["out"]))
    result = {
        "graph": BRAILLE.name, "target": args.target, "steps": args.steps,
        "batch": args.batch, "rate": args.rate, "identical_spikes": identical,
        "output_spikes": int(vendor["out"].sum()),
        "xylosim": {k: v for k, v in vendor.items() if k != "out"},
        "nirjax_kernel": {k: v for k, v in ours.items() if k != "out"},
        "speedup": ours["samples_per_s"] / vendor["samples_per_s"],
        "machine": platform.platform(), "cpus": os.cpu_count(),
    }
    print(f"{BRAILLE.name} on {args.target}, T={args.steps}, B={args.batch}: identical spikes "
          f"{identical} ({result['output_spikes']} output spikes)")
    print(f"  xylosim        {vendor['samples_per_s']:10.1f} samples/s")
    print(f"  nirjax kernel  {ours['samples_per_s']:10.1f} samples/s  (compile "
          f"{ours['compile_s']:.2f} s)  x{result['speedup']:.1f}")
    if not identical:
        raise SystemExit("the two simulations disagree; no throughput comparison is valid")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
