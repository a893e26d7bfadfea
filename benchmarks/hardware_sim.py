"""Chip simulation throughput: nirjax's lowered integer simulation vs the vendors' simulators.

For each target it runs the SAME graph and the SAME input batch through

* ``nirjax``: ``nirjax.lower(graph, target, dt)`` then the lowered model's integer program
  (``hw(xs)``, the public call: one jitted scan, batched). The first call (trace, compile,
  run) is reported apart as the compile time and never enters a throughput;
* the vendor's simulator in its own environment (``tests/peers/setup_peers.sh``):
  ``xylo``: XyloSim (Rockpool 3.1.0 + xylosim 0.1.3), built from ``hw.export(path)``, run
  sample by sample as its API requires (``tests/peers/xylo_runner.py``, job ``time``);
  ``loihi2``: Lava's fixed-point simulation (``Loihi2SimCfg(select_tag="fixed_pt")``) of the
  netx file ``hw.export(path)`` writes, one sample after the other as Lava runs them
  (``tests/peers/lava_harness.py:lava_run``); ``speck``: sinabs 3.1.3's discretized
  ``DynapcnnNetwork`` forward and ``spinnaker2`` (nirjax only: no vendor simulator
  installs), from ``benchmarks/hardware_sim_speck.py``.

It first checks that both give identical output spikes at every step for every sample (Speck:
the spike counts of every layer; Lava: in every round), then times them in ``--rounds``
alternating rounds (``benchmarks/hw_rounds.py``): each round nirjax (``--nirjax-inner``
timed batches) then the vendor (one timed batch; XyloSim: three), the vendor's process
start and network build not timed. Each round gives each framework one samples/s (the
batch over the round's median); the report gives per framework the median over rounds with
its min-max, the ratio of the medians and the range of the per-round ratios (only where the
spikes are identical), and the machine: CPU model, cores, load average before and after, the
command. The goal of issue 10 is a ratio of at least 100 on a batch of 32.

Usage::

    python benchmarks/hardware_sim.py [--targets xylo,loihi2,speck,spinnaker2] [--steps 300]
        [--speck-steps 100] [--batch 32] [--rounds 5] [--out benchmarks/results/hardware_sim_cpu]
    python benchmarks/hardware_sim.py --quick [--out STEM]     # tiny sizes, 2 rounds

writes ``STEM.json`` and ``STEM.md`` (``--quick`` writes only with ``--out``). Timings depend
on the machine and its load: a ratio is a result only with its spread and its machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT / "tests" / "data" / "paper"

from hw_rounds import Case, alternate, machine, markdown, summarize  # noqa: E402

#: target family -> (chip target, graph file, dt)
CASES = {
    "xylo": ("xylo-audio2", DATA / "braille_noDelay_noBias_subtract.nir", 1e-4),
    "loihi2": ("loihi2", DATA / "braille_noDelay_noBias_subtract.nir", 1e-4),
    "speck": ("speck", DATA / "cnn_sinabs.nir", 1e-4),
    "spinnaker2": ("spinnaker2", DATA / "braille_noDelay_noBias_subtract.nir", 1e-4),
}
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "hardware_sim_cpu"


class Skipped(Exception):
    """A target cannot be measured here (no lowering, no vendor environment)."""


def lower(target: str, path, dt: float):
    """``nirjax.lower`` with the lowering's warnings silenced (they are in the report).

    Raises:
        Skipped: the target is not registered in this checkout.
    """
    import nirjax
    from nirjax.lowering import TARGETS

    if target not in TARGETS:
        raise Skipped(f"target {target!r} is not registered in this checkout")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nirjax.lower(str(path), target, dt=dt)


def inputs_for(hw, steps: int, batch: int, rate: float, seed: int = 0) -> np.ndarray:
    """Random event counts ``[T, B, *input]`` in the chip's input range (mostly 0 and 1)."""
    shape = next(iter(hw.model.input_shapes.values()))
    rng = np.random.default_rng(seed)
    xs = (rng.random((steps, batch) + tuple(shape)) < rate).astype(np.int64)
    if hw.input_range is not None:
        xs = np.clip(xs, hw.input_range[0], hw.input_range[1])
    return xs


def nirjax_prepare(hw, xs: np.ndarray):
    """Compile ``hw`` on ``xs``: ``(output, compile seconds, run-once callable)``."""
    import jax

    start = time.perf_counter()
    out = np.asarray(jax.block_until_ready(hw(xs)))
    compile_s = time.perf_counter() - start
    return out, compile_s, lambda: jax.block_until_ready(hw(xs))


def xylo_case(steps: int, batch: int, rate: float, vendor: bool = True) -> Case:
    """The Braille graph on ``xylo-audio2``: nirjax vs XyloSim (built from ``hw.export``)."""
    import xylo_harness

    target, path, dt = CASES["xylo"]
    case = Case("xylo", target, path.name, steps, batch, vendor_inner=3,
                notes="XyloSim runs one sample after the other (its API); output spikes of "
                      "every sample and step compared once before the rounds")
    hw = lower(target, path, dt)
    xs = inputs_for(hw, steps, batch, rate)
    out, case.compile_s, case.nirjax_once = nirjax_prepare(hw, xs)
    case.output_spikes = int(out.sum())
    if not vendor:
        return case
    if xylo_harness.xylo_python() is None:
        raise Skipped(f"no xylo environment under {xylo_harness.peers_dir()}")
    tmp = tempfile.mkdtemp(prefix="nirjax-hwbench-")
    spec = os.path.join(tmp, "spec.npz")
    hw.export(spec)
    files = {"spec.npz": spec, "x.npy": xs}
    results, versions = xylo_harness.run_jobs(
        [{"id": "sim", "kind": "simulate", "target": target, "spec": "spec.npz", "x": "x.npy"}],
        files)
    if results["sim"].error:
        raise RuntimeError(results["sim"].error)
    theirs = np.asarray(results["sim"]["out"])
    case.identical = theirs.shape == out.shape and bool(np.array_equal(theirs, out))
    case.vendor = f"XyloSim (rockpool {versions['rockpool']}, xylosim {versions['xylosim']})"

    def vendor_round(n):
        res, _ = xylo_harness.run_jobs([{"id": "time", "kind": "time", "target": target,
                                         "spec": "spec.npz", "x": "x.npy", "repeat": n}], files)
        if res["time"].error:
            raise RuntimeError(res["time"].error)
        return list(np.asarray(res["time"]["seconds"]))

    case.vendor_round = vendor_round
    return case


def loihi_case(steps: int, batch: int, rate: float, vendor: bool = True) -> Case:
    """The Braille graph on ``loihi2``: nirjax vs Lava's fixed point (the netx export)."""
    target, path, dt = CASES["loihi2"]
    case = Case("loihi2", target, path.name, steps, batch, vendor_inner=1,
                notes="Lava runs one sample after the other; its output spikes are compared "
                      "with nirjax's in every round (network build not timed)")
    hw = lower(target, path, dt)
    xs = inputs_for(hw, steps, batch, rate)
    out, case.compile_s, case.nirjax_once = nirjax_prepare(hw, xs)
    case.output_spikes = int(out.sum())
    if not vendor:
        return case
    try:
        import lava_harness
    except ImportError:
        raise Skipped("no tests/peers/lava_harness.py in this checkout") from None
    if lava_harness.lava_python() is None:
        raise Skipped(f"no lava environment under {lava_harness.peers_dir()}")
    tmp = tempfile.mkdtemp(prefix="nirjax-hwbench-")
    net = os.path.join(tmp, "net.h5")
    hw.export(net)
    case.identical = True

    def vendor_round(n):
        res = lava_harness.lava_run(net, xs, n)
        theirs = np.asarray(res["out"])
        case.identical &= theirs.shape == out.shape and bool(np.array_equal(theirs, out))
        case.vendor = res["name"]
        return list(res["seconds"])

    case.vendor_round = vendor_round
    case.vendor = "Lava fixed point (Loihi2SimCfg fixed_pt)"
    return case


def prepare(family: str, steps: int, speck_steps: int, batch: int, rate: float,
            vendor: bool = True) -> Case:
    """The family's case, compiled and checked, or a skipped case saying why."""
    target, path, _ = CASES[family]
    try:
        if family == "xylo":
            return xylo_case(steps, batch, rate, vendor)
        if family == "loihi2":
            return loihi_case(steps, batch, rate, vendor)
        try:
            import hardware_sim_speck
        except ImportError:
            raise Skipped("benchmarks/hardware_sim_speck.py is not in this checkout") from None
        from nirjax.lowering import TARGETS

        if target not in TARGETS:
            raise Skipped(f"target {target!r} is not registered in this checkout")
        if family == "speck":
            return hardware_sim_speck.speck_setup(batch=batch, steps=speck_steps,
                                                  vendor=vendor)
        return hardware_sim_speck.spinnaker2_setup(batch=batch, steps=steps)
    except Skipped as why:
        return Case(family, target, path.name, steps, batch, skipped=str(why))


def main(argv=None) -> dict:
    """Command line entry point; returns the results dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default="xylo,loihi2,speck,spinnaker2",
                        help="comma-separated families: xylo, loihi2, speck, spinnaker2")
    parser.add_argument("--steps", type=int, default=None, help="time steps (default 300)")
    parser.add_argument("--speck-steps", type=int, default=None,
                        help="time steps of the Speck CNN (default 100)")
    parser.add_argument("--batch", type=int, default=None, help="batch (default 32)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (5)")
    parser.add_argument("--nirjax-inner", type=int, default=None,
                        help="timed nirjax batches per round (default 5)")
    parser.add_argument("--rate", type=float, default=0.2,
                        help="probability of an input event per element and step (Braille)")
    parser.add_argument("--nirjax-only", action="store_true", help="no vendor simulators")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (T=10, Speck T=3, B=2, 2 rounds); writes only with --out")
    parser.add_argument("--out", default=None,
                        help=f"write STEM.json and STEM.md (default {DEFAULT_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    q = args.quick
    steps = args.steps or (10 if q else 300)
    speck_steps = args.speck_steps or (3 if q else 100)
    batch = args.batch or (2 if q else 32)
    rounds = args.rounds or (2 if q else 5)
    inner = args.nirjax_inner or (1 if q else 5)
    out = args.out if args.out is not None else (None if q else str(DEFAULT_OUT))
    families = [t.strip() for t in args.targets.split(",") if t.strip()]
    for family in families:
        if family not in CASES:
            parser.error(f"unknown target family {family!r}; expected one of {list(CASES)}")

    start = time.perf_counter()
    before = machine()
    print(f"load average before: {before['load_average']}", flush=True)
    rows = []
    for family in families:
        case = prepare(family, steps, speck_steps, batch, args.rate, not args.nirjax_only)
        if case.skipped:
            print(f"  {case.target}: skipped: {case.skipped}", flush=True)
            rows.append(summarize(case, {}))
            continue
        print(f"  {case.target}: compiled in {case.compile_s or 0:.1f} s; identical spikes "
              f"{case.identical}", flush=True)
        timing = alternate(case, rounds, inner, log=lambda s: print(s, flush=True))
        rows.append(summarize(case, timing))
    after = machine()
    meta = {"steps": steps, "speck_steps": speck_steps, "batch": batch, "rounds": rounds,
            "nirjax_inner": inner, "rate": args.rate, "machine_before": before,
            "machine_after": after, "wall_s": time.perf_counter() - start}
    result = {"rows": rows, **meta}
    text = markdown(rows, meta, "Chip simulation throughput: nirjax's integer simulation vs "
                                "the vendors' simulators")
    print(text)
    if out:
        pathlib.Path(out + ".json").write_text(json.dumps(result, indent=2, default=float))
        pathlib.Path(out + ".md").write_text(text)
    return result


if __name__ == "__main__":
    main()
