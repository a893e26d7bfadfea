"""Speck and SpiNNaker2 cases of the hardware-simulation benchmark.

``benchmarks/hardware_sim.py`` (the lowering core's script) calls :func:`speck_setup` and
:func:`spinnaker2_setup` and times them in alternating rounds (``benchmarks/hw_rounds.py``);
:func:`speck_case` and :func:`spinnaker2_case` do the same alone, and this file also runs on
its own::

    python benchmarks/hardware_sim_speck.py [--batch 32] [--steps 100] [--repeats 3]

Speck: the NIR paper's CNN (``cnn_sinabs.nir``) lowered with ``nirjax.lower(graph,
"speck")`` and run on one batch of random input events by nirjax's integer simulation
(jitted, batched, one scan; compiled first, then timed) and by sinabs 3.1.3's discretized
``DynapcnnNetwork`` forward (the ``sinabs`` peer environment, ``tests/peers/speck_harness``).
The spike counts of every layer at every step are compared (``identical``), then the two
are timed in ``repeats`` alternating rounds (nirjax, then sinabs in its own process, whose
start and network build are not timed); each gives the median samples/s over the rounds
with its spread, and the ratio of the medians with the range of the per-round ratios.

SpiNNaker2: no vendor simulator can be installed (py-spinnaker2 is not on PyPI), so only
nirjax's simulation of the lowered Braille graph is timed.

The numbers depend on the machine and its load: they are measurements of this run, not
results, until run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import speck_harness  # noqa: E402
from hw_rounds import Case, alternate, summarize  # noqa: E402

import nirjax  # noqa: E402

__all__ = ["speck_case", "speck_setup", "spinnaker2_case", "spinnaker2_setup"]


def _nirjax_run(hw, x, record=()):
    ys, rec = hw.run(x, record=list(record))
    np.asarray(ys)  # wait for the result
    return ys, rec


def speck_setup(batch: int = 32, steps: int = 100, rate: float = 0.05, seed: int = 0,
                vendor: bool = True) -> Case:
    """The paper CNN on ``speck``, compiled and checked against sinabs, ready to time.

    Args:
        batch: samples per batch.
        steps: time steps.
        rate: probability of an event per pixel and step (1 event).
        seed: input seed.
        vendor: also prepare sinabs (needs the ``sinabs`` peer environment).

    Returns:
        A :class:`hw_rounds.Case`; ``identical`` compares the spike counts of every layer
        at every step and the output with sinabs'. Without the sinabs environment the case
        has no vendor and ``notes`` says why.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        graph = nirjax.read(speck_harness.PAPER_CNN)
    hw = nirjax.lower(graph, "speck")
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, batch) + hw.details.input_shape) < rate).astype(np.int32)
    neurons = [q.layer.nodes["neuron"] for q in hw.details.layers]
    case = Case("speck", "speck", "cnn_sinabs.nir", steps, batch, vendor_inner=1,
                notes="spike counts of every layer at every step compared with sinabs' once "
                      "before the rounds; sinabs pushes all T*B frames through torch at once")
    t0 = time.perf_counter()
    ys, _ = _nirjax_run(hw, x)  # the timed call, compiled here
    case.compile_s = time.perf_counter() - t0
    case.output_spikes = int(np.asarray(ys).sum())
    case.nirjax_once = lambda: _nirjax_run(hw, x)
    if not vendor:
        return case
    ys, rec = _nirjax_run(hw, x, neurons)
    if speck_harness.sinabs_python() is None:
        case.notes = "no sinabs environment (tests/peers/setup_peers.sh): nirjax alone"
        return case
    xf = x.astype(np.float32)
    shape = list(hw.details.input_shape)
    results, versions = speck_harness.run_sinabs([
        {"id": "check", "graph": str(speck_harness.PAPER_CNN), "x": xf, "input_shape": shape}])
    if results["check"].error:
        raise RuntimeError(results["check"].error)
    identical = True
    for i, n in enumerate(neurons):
        theirs = results["check"].arrays[f"spikes{i}"]
        identical &= bool(np.array_equal(np.asarray(rec[n]).reshape(theirs.shape), theirs))
    out_theirs = results["check"].arrays["out"]
    identical &= bool(np.array_equal(np.asarray(ys).reshape(out_theirs.shape), out_theirs))
    case.identical = identical
    case.vendor = f"sinabs {versions.get('sinabs')} DynapcnnNetwork(discretize=True)"

    def vendor_round(n):
        res, _ = speck_harness.run_sinabs([
            {"id": "bench", "graph": str(speck_harness.PAPER_CNN), "x": xf, "bench": True,
             "repeats": n, "input_shape": shape}])
        if res["bench"].error:
            raise RuntimeError(res["bench"].error)
        return list(res["bench"].meta["bench"]["seconds"])

    case.vendor_round = vendor_round
    return case


def spinnaker2_setup(batch: int = 32, steps: int = 100, rate: float = 0.1,
                     seed: int = 0) -> Case:
    """nirjax's SpiNNaker2 simulation of the lowered Braille graph, compiled, ready to time
    (no vendor simulator: py-spinnaker2 is not on PyPI)."""
    path = ROOT / "tests" / "data" / "paper" / "braille_noDelay_noBias_subtract.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pre-1.0.6 file; weights truncated to zero
        hw = nirjax.lower(path, "spinnaker2", dt=1e-4)
    shape = hw.model.input_shapes[hw.input_names[0]]
    x = (np.random.default_rng(seed).random((steps, batch) + shape) < rate).astype(np.int32)
    case = Case("spinnaker2", "spinnaker2", path.name, steps, batch,
                notes="py-spinnaker2 is not installable (not on PyPI): no vendor simulator "
                      "to compare with; nirjax alone")
    t0 = time.perf_counter()
    ys, _ = _nirjax_run(hw, x)
    case.compile_s = time.perf_counter() - t0
    case.output_spikes = int(np.asarray(ys).sum())
    case.nirjax_once = lambda: _nirjax_run(hw, x)
    return case


def _flat(row: dict) -> dict:
    """A summarized row with the headline numbers at the top level."""
    row["nirjax_samples_per_s"] = row["nirjax"]["median"]
    if row.get("vendor_spread"):
        row["vendor_samples_per_s"] = row["vendor_spread"]["median"]
    return row


def speck_case(batch: int = 32, steps: int = 100, repeats: int = 3, rate: float = 0.05,
               seed: int = 0, vendor: bool = True) -> dict:
    """nirjax's Speck simulation vs sinabs' on the NIR paper's CNN, in ``repeats``
    alternating rounds (:func:`speck_setup`, :func:`hw_rounds.alternate`).

    Returns:
        :func:`hw_rounds.summarize`'s row plus ``nirjax_samples_per_s`` and (with a vendor)
        ``vendor_samples_per_s``: the medians over rounds.
    """
    case = speck_setup(batch, steps, rate, seed, vendor)
    return _flat(summarize(case, alternate(case, repeats, nirjax_inner=1)))


def spinnaker2_case(batch: int = 32, steps: int = 100, repeats: int = 3, rate: float = 0.1,
                    seed: int = 0) -> dict:
    """nirjax's SpiNNaker2 simulation of the lowered Braille graph, ``repeats`` rounds.

    Returns:
        Like :func:`speck_case` (no vendor).
    """
    case = spinnaker2_setup(batch, steps, rate, seed)
    return _flat(summarize(case, alternate(case, repeats, nirjax_inner=1)))


def main(argv=None):
    """Run both cases and print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    parser.add_argument("--no-vendor", action="store_true", help="time nirjax only")
    args = parser.parse_args(argv)
    print(json.dumps(speck_case(args.batch, args.steps, args.repeats,
                                vendor=not args.no_vendor), default=float))
    print(json.dumps(spinnaker2_case(args.batch, args.steps, args.repeats), default=float))


if __name__ == "__main__":
    main()
