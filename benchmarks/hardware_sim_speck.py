"""Speck and SpiNNaker2 cases of the hardware-simulation benchmark.

``benchmarks/hardware_sim.py`` (the lowering core's script) calls :func:`speck_case` and
:func:`spinnaker2_case`; this file also runs on its own::

    python benchmarks/hardware_sim_speck.py [--batch 32] [--steps 100] [--repeats 3]

Speck: the NIR paper's CNN (``cnn_sinabs.nir``) lowered with ``nirjax.lower(graph,
"speck")`` and run on one batch of random input events by nirjax's integer simulation
(jitted, batched, one scan; compiled first, then timed) and by sinabs 3.1.3's discretized
``DynapcnnNetwork`` forward (the ``sinabs`` peer environment, ``tests/peers/speck_harness``).
The spike counts of every layer at every step are compared (``identical``), then each
simulator's best of ``repeats`` timed runs gives samples per second.

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
import speck_harness  # noqa: E402

import nirjax  # noqa: E402

__all__ = ["speck_case", "spinnaker2_case"]


def _time(fn, repeats):
    """Compile/warm up once, then the wall time of each of ``repeats`` calls."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _nirjax_run(hw, x, record=()):
    ys, rec = hw.run(x, record=list(record))
    np.asarray(ys)  # wait for the result
    return ys, rec


def speck_case(batch: int = 32, steps: int = 100, repeats: int = 3, rate: float = 0.05,
               seed: int = 0, vendor: bool = True) -> dict:
    """nirjax's Speck simulation vs sinabs' on the NIR paper's CNN.

    Args:
        batch: samples per batch.
        steps: time steps.
        repeats: timed runs of each simulator (best taken).
        rate: probability of an event per pixel and step (1 event).
        seed: input seed.
        vendor: also run sinabs (needs the ``sinabs`` peer environment).

    Returns:
        A dict: ``target``, ``graph``, ``batch``, ``steps``, ``nirjax_seconds``,
        ``nirjax_samples_per_s``, and with ``vendor``: ``vendor`` (name),
        ``vendor_seconds``, ``vendor_samples_per_s``, ``ratio`` (nirjax / vendor),
        ``identical`` (spike counts of every layer and step, and the output, equal),
        ``spikes`` (output spikes in total), ``layer_spikes`` (spikes of all layers).
        Without the sinabs environment, ``vendor_error`` says why.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        graph = nirjax.read(speck_harness.PAPER_CNN)
    hw = nirjax.lower(graph, "speck")
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, batch) + hw.details.input_shape) < rate).astype(np.int32)
    neurons = [q.layer.nodes["neuron"] for q in hw.details.layers]
    times = _time(lambda: _nirjax_run(hw, x), repeats)
    out = {"target": "speck", "graph": "cnn_sinabs.nir", "batch": batch, "steps": steps,
           "nirjax_seconds": times, "nirjax_samples_per_s": batch / min(times)}
    if not vendor:
        return out
    if speck_harness.sinabs_python() is None:
        out["vendor_error"] = "no sinabs environment (tests/peers/setup_peers.sh)"
        return out
    xf = x.astype(np.float32)
    results, versions = speck_harness.run_sinabs([
        {"id": "check", "graph": str(speck_harness.PAPER_CNN), "x": xf,
         "input_shape": list(hw.details.input_shape)},
        {"id": "bench", "graph": str(speck_harness.PAPER_CNN), "x": xf, "bench": True,
         "repeats": repeats, "input_shape": list(hw.details.input_shape)}])
    for job in ("check", "bench"):
        if results[job].error:
            out["vendor_error"] = results[job].error
            return out
    ys, rec = _nirjax_run(hw, x, neurons)
    identical, spikes = True, 0
    for i, n in enumerate(neurons):
        theirs = results["check"].arrays[f"spikes{i}"]
        ours = np.asarray(rec[n]).reshape(theirs.shape)
        identical &= bool(np.array_equal(ours, theirs))
        spikes += int(ours.sum())
    out_theirs = results["check"].arrays["out"]
    identical &= bool(np.array_equal(np.asarray(ys).reshape(out_theirs.shape), out_theirs))
    bench = results["bench"].meta["bench"]
    out.update(vendor=f"sinabs {versions.get('sinabs')} DynapcnnNetwork(discretize=True)",
               vendor_seconds=bench["seconds"], vendor_threads=bench["threads"],
               vendor_samples_per_s=batch / min(bench["seconds"]), identical=identical,
               spikes=int(np.asarray(ys).sum()), layer_spikes=spikes)
    out["ratio"] = out["nirjax_samples_per_s"] / out["vendor_samples_per_s"]
    return out


def spinnaker2_case(batch: int = 32, steps: int = 100, repeats: int = 3, rate: float = 0.1,
                    seed: int = 0) -> dict:
    """nirjax's SpiNNaker2 simulation of the lowered Braille graph (no vendor simulator).

    Returns:
        A dict: ``target``, ``graph``, ``batch``, ``steps``, ``nirjax_seconds``,
        ``nirjax_samples_per_s``, ``vendor_error`` (why there is no vendor number).
    """
    path = ROOT / "tests" / "data" / "paper" / "braille_noDelay_noBias_subtract.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pre-1.0.6 file; weights truncated to zero
        hw = nirjax.lower(path, "spinnaker2", dt=1e-4)
    shape = hw.model.input_shapes[hw.input_names[0]]
    x = (np.random.default_rng(seed).random((steps, batch) + shape) < rate).astype(np.int32)
    times = _time(lambda: _nirjax_run(hw, x), repeats)
    return {"target": "spinnaker2", "graph": path.name, "batch": batch, "steps": steps,
            "nirjax_seconds": times, "nirjax_samples_per_s": batch / min(times),
            "vendor_error": "py-spinnaker2 is not installable (not on PyPI); no vendor "
                            "simulator to compare with"}


def main(argv=None):
    """Run both cases and print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-vendor", action="store_true", help="time nirjax only")
    args = parser.parse_args(argv)
    print(json.dumps(speck_case(args.batch, args.steps, args.repeats,
                                vendor=not args.no_vendor)))
    print(json.dumps(spinnaker2_case(args.batch, args.steps, args.repeats)))


if __name__ == "__main__":
    main()
