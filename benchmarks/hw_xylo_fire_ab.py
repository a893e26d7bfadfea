"""Before/after of Xylo's spike rule on the CPU: integer division vs float32 quotient.

:func:`nirjax.kernels.xylo.fire` computes ``v // threshold`` from a float32 quotient with
one integer correction (exact for the 16-bit state; XLA's integer division is scalar on
CPUs and ``jnp.floor_divide`` runs two per element). This script lowers the NIR paper's
Braille graph to ``xylo-audio2`` twice, once tracing the previous rule (``jnp.floor_divide``)
and once the current one, checks that both give the same output spikes, and times
``hw(xs)`` (T=300, B=32 by default) in alternating rounds: per round each variant's median
of ``--inner`` runs; reported: the ratio of the medians over rounds and the range of the
per-round ratios. The machine's load is printed; a ratio, not an absolute time, is the
result on a shared machine.

Usage::

    python benchmarks/hw_xylo_fire_ab.py [--steps 300] [--batch 32] [--rounds 7] [--inner 5]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def fire_integer_division(v, threshold, max_spikes: int):
    """The previous rule: ``n = clip(v // threshold, 0, max_spikes)`` by integer division."""
    import jax.numpy as jnp

    v = jnp.asarray(v, jnp.int32)
    th = jnp.asarray(threshold, jnp.int32)
    positive = th > 0
    n_pos = jnp.clip(jnp.floor_divide(v, jnp.where(positive, th, 1)), 0, max_spikes)
    n = jnp.where(positive, n_pos, jnp.where(v >= 0, max_spikes, 0)).astype(jnp.int32)
    return n, v - n * th


def main(argv=None) -> dict:
    """Command line entry point; returns the timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--inner", type=int, default=5)
    args = parser.parse_args(argv)

    import jax

    import hardware_sim
    from nirjax.kernels import xylo as xk

    target, path, dt = hardware_sim.CASES["xylo"]
    new_fire = xk.fire
    variants = {}
    for name, fire in (("before", fire_integer_division), ("after", new_fire)):
        hw = hardware_sim.lower(target, path, dt)
        xs = hardware_sim.inputs_for(hw, args.steps, args.batch, 0.2)
        xk.fire = fire
        try:
            out = np.asarray(jax.block_until_ready(hw(xs)))  # traced with this rule
        finally:
            xk.fire = new_fire
        variants[name] = (hw, xs, out)
    same = np.array_equal(variants["before"][2], variants["after"][2])
    print(f"load average before: {os.getloadavg()}; identical output spikes: {same}")
    seconds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (hw, xs, _) in variants.items():
            ts = []
            for _ in range(args.inner):
                start = time.perf_counter()
                jax.block_until_ready(hw(xs))
                ts.append(time.perf_counter() - start)
            seconds[name].append(float(np.median(ts)))
    ratios = np.array(seconds["before"]) / np.array(seconds["after"])
    result = {name: float(np.median(s)) for name, s in seconds.items()}
    result.update(ratio=result["before"] / result["after"], ratio_range=[float(ratios.min()),
                                                                         float(ratios.max())],
                  identical=same, load_after=os.getloadavg())
    print(f"hw(xs), T={args.steps}, B={args.batch}, {args.rounds} alternating rounds: "
          f"speed-up after/before {result['ratio']:.2f}x (per-round "
          f"{ratios.min():.2f}-{ratios.max():.2f}); load average after: {os.getloadavg()}")
    return result


if __name__ == "__main__":
    main()
