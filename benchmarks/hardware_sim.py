"""Chip simulation throughput: nirjax's lowered integer simulation vs the vendors' simulators.

For each target it runs the SAME graph and the SAME input batch through

* ``nirjax``: ``nirjax.lower(graph, target, dt)`` then the lowered model's integer program
  (:class:`~nirjax.compiler.CompiledGraph`: one jitted scan, batched; compile time excluded
  and reported apart; the fastest of ``--repeat`` runs);
* the vendor's simulator in its own environment (``tests/peers/setup_peers.sh``):
  ``xylo``: XyloSim (Rockpool 3.1.0 + xylosim 0.1.3), built from ``hw.export(path)``, run
  sample by sample as its API requires; ``speck``: sinabs 3.1.3's discretized
  ``DynapcnnNetwork`` forward, and ``spinnaker2`` (nirjax only: no vendor simulator
  installs), through ``benchmarks/hardware_sim_speck.py`` (``speck_case``,
  ``spinnaker2_case``) when those targets are registered; ``loihi2``: Lava 0.10's
  fixed-point simulation (``Loihi2SimCfg(select_tag="fixed_pt")``) of the netx file
  ``hw.export(path)`` writes, one sample after the other as Lava runs them
  (``tests/peers/lava_harness.py:lava_run(path, x, repeat) -> {"out", "seconds",
  "samples_per_s"}``; the network is built once per timed run, the build not timed).

It first checks that both give identical output spikes at every step (a row whose spikes
differ has no valid ratio and is marked so), then reports samples/s of each and the ratio
(the goal of issue 10: at least 100x on a batch of 32). A target whose vendor environment or
lowering is missing is reported as skipped, with the reason.

Usage::

    python benchmarks/hardware_sim.py [--targets xylo,speck,loihi2,spinnaker2] [--steps 300]
                                      [--batch 32] [--repeat 3] [--out results.json]

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
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT / "tests" / "data" / "paper"

#: target family -> (chip target, graph file, dt)
CASES = {
    "xylo": ("xylo-audio2", DATA / "braille_noDelay_noBias_subtract.nir", 1e-4),
    "speck": ("speck", DATA / "cnn_sinabs.nir", 1e-4),
    "loihi2": ("loihi2", DATA / "braille_noDelay_noBias_subtract.nir", 1e-4),
    "spinnaker2": ("spinnaker2", DATA / "braille_noDelay_noBias_subtract.nir", 1e-4),
}


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


def nirjax_run(hw, xs: np.ndarray, repeat: int = 3) -> dict:
    """``hw(xs)`` (the public call: inputs checked, jitted integer program): outputs, wall
    times, compile time (the first call).

    Returns:
        ``{"out", "seconds", "compile_s", "samples_per_s"}``.
    """
    import jax

    start = time.perf_counter()
    out = jax.block_until_ready(hw(xs))
    compile_s = time.perf_counter() - start
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(hw(xs))
        seconds.append(time.perf_counter() - start)
    return {"out": np.asarray(out), "seconds": seconds, "compile_s": compile_s,
            "samples_per_s": xs.shape[1] / min(seconds)}


def xylo_vendor(hw, xs: np.ndarray, repeat: int = 3) -> dict:
    """XyloSim built from ``hw.export``: its outputs and the sample loop's wall times."""
    import xylo_harness

    if xylo_harness.xylo_python() is None:
        raise Skipped(f"no xylo environment under {xylo_harness.peers_dir()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spec.npz")
        hw.export(path)
        jobs = [{"id": "sim", "kind": "simulate", "target": hw.target, "spec": "spec.npz",
                 "x": "x.npy"},
                {"id": "time", "kind": "time", "target": hw.target, "spec": "spec.npz",
                 "x": "x.npy", "repeat": repeat}]
        results, versions = xylo_harness.run_jobs(jobs, {"spec.npz": path, "x.npy": xs})
    for r in results.values():
        if r.error:
            raise RuntimeError(r.error)
    seconds = results["time"]["seconds"]
    return {"name": f"XyloSim (rockpool {versions['rockpool']}, xylosim {versions['xylosim']})",
            "out": results["sim"]["out"], "seconds": seconds.tolist(),
            "samples_per_s": xs.shape[1] / float(np.min(seconds))}


def loihi_vendor(hw, xs: np.ndarray, repeat: int = 3) -> dict:
    """Lava's fixed-point simulation through ``tests/peers/lava_harness.py`` (when present)."""
    try:
        import lava_harness
    except ImportError:
        raise Skipped("no tests/peers/lava_harness.py in this checkout") from None
    if not hasattr(lava_harness, "lava_run"):
        raise Skipped("tests/peers/lava_harness.py has no lava_run(path, x, repeat)")
    if lava_harness.lava_python() is None:
        raise Skipped(f"no lava environment under {lava_harness.peers_dir()}")
    with tempfile.TemporaryDirectory() as tmp:
        out_path = os.path.join(tmp, "net.h5")
        hw.export(out_path)
        result = lava_harness.lava_run(out_path, xs, repeat)
    result.setdefault("name", "Lava fixed point (Loihi2SimCfg fixed_pt)")
    return result


VENDORS = {"xylo": xylo_vendor, "loihi2": loihi_vendor}


def _speck_module():
    try:
        import hardware_sim_speck
    except ImportError:
        raise Skipped("benchmarks/hardware_sim_speck.py (the speck/spinnaker2 cases) is not "
                      "in this checkout") from None
    return hardware_sim_speck


def external_case(family: str, steps: int, batch: int, repeat: int) -> dict:
    """The speck and spinnaker2 rows, from ``benchmarks/hardware_sim_speck.py`` (their
    lowering's own cases: Speck compares the spike counts of every layer with sinabs)."""
    target, path, _ = CASES[family]
    row = {"family": family, "target": target, "graph": path.name, "steps": steps,
           "batch": batch}
    try:
        from nirjax.lowering import TARGETS

        if target not in TARGETS:
            raise Skipped(f"target {target!r} is not registered in this checkout")
        module = _speck_module()
        case = (module.speck_case(batch=batch, steps=steps, repeats=repeat) if family == "speck"
                else module.spinnaker2_case(batch=batch, steps=steps, repeats=repeat))
    except Skipped as why:
        row["skipped"] = str(why)
        return row
    row["graph"] = case.get("graph", row["graph"])
    row.update(nirjax_samples_per_s=case["nirjax_samples_per_s"],
               nirjax_seconds=case["nirjax_seconds"], nirjax_compile_s=None)
    if "vendor_error" in case:
        row["skipped"] = f"no vendor comparison: {case['vendor_error'].splitlines()[0]}"
        return row
    identical = bool(case["identical"])
    row.update(identical_spikes=identical, output_spikes=case.get("spikes"),
               vendor=case["vendor"], vendor_samples_per_s=case["vendor_samples_per_s"],
               vendor_seconds=case["vendor_seconds"],
               ratio=case["ratio"] if identical else None)
    return row


def inputs_for(hw, steps: int, batch: int, rate: float, seed: int = 0) -> np.ndarray:
    """Random event counts ``[T, B, *input]`` in the chip's input range (mostly 0 and 1)."""
    shape = next(iter(hw.model.input_shapes.values()))
    rng = np.random.default_rng(seed)
    xs = (rng.random((steps, batch) + tuple(shape)) < rate).astype(np.int64)
    if hw.input_range is not None:
        xs = np.clip(xs, hw.input_range[0], hw.input_range[1])
    return xs


def measure(family: str, steps: int, batch: int, repeat: int, rate: float) -> dict:
    """One row: the family's default graph through nirjax and the vendor simulator."""
    if family in ("speck", "spinnaker2"):
        return external_case(family, steps, batch, repeat)
    target, path, dt = CASES[family]
    row = {"family": family, "target": target, "graph": path.name, "steps": steps,
           "batch": batch}
    try:
        hw = lower(target, path, dt)
        xs = inputs_for(hw, steps, batch, rate)
        vendor = VENDORS[family](hw, xs, repeat)
    except Skipped as why:
        row["skipped"] = str(why)
        return row
    ours = nirjax_run(hw, xs, repeat)
    a, b = np.asarray(ours["out"]), np.asarray(vendor["out"])
    identical = a.shape == b.shape and bool(np.array_equal(a, b))
    row.update({
        "identical_spikes": identical, "output_spikes": int(a.sum()),
        "vendor": vendor["name"],
        "vendor_samples_per_s": vendor["samples_per_s"], "vendor_seconds": vendor["seconds"],
        "nirjax_samples_per_s": ours["samples_per_s"], "nirjax_seconds": ours["seconds"],
        "nirjax_compile_s": ours["compile_s"],
        "ratio": ours["samples_per_s"] / vendor["samples_per_s"] if identical else None,
    })
    return row


def main(argv=None) -> dict:
    """Command line entry point; returns the results dict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default="xylo,speck,loihi2,spinnaker2",
                        help="comma-separated families: xylo, speck, loihi2, spinnaker2")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.2,
                        help="probability of an input event per element and step")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for family in [t.strip() for t in args.targets.split(",") if t.strip()]:
        if family not in CASES:
            parser.error(f"unknown target family {family!r}; expected one of {list(CASES)}")
        rows.append(measure(family, args.steps, args.batch, args.repeat, args.rate))
    result = {"rows": rows, "machine": platform.platform(), "cpus": os.cpu_count()}
    print(f"chip simulation throughput, T={args.steps}, B={args.batch} (samples/s; the ratio only "
          f"where spikes are identical)")
    for r in rows:
        if "skipped" in r:
            done = (f" (nirjax alone: {r['nirjax_samples_per_s']:.1f} samples/s)"
                    if "nirjax_samples_per_s" in r else "")
            print(f"  {r['target']:<12} skipped: {r['skipped']}{done}")
            continue
        ratio = f"x{r['ratio']:.1f}" if r["ratio"] is not None else "spikes differ: no ratio"
        print(f"  {r['target']:<12} {r['graph']}: identical spikes {r['identical_spikes']} "
              f"({r['output_spikes']} output spikes)")
        print(f"    {r['vendor']:<48} {r['vendor_samples_per_s']:12.1f}")
        print(f"    {'nirjax (lowered, jitted, batched)':<48} {r['nirjax_samples_per_s']:12.1f}  "
              f"{ratio}" + (f"  (compile {r['nirjax_compile_s']:.2f} s)"
                            if r.get("nirjax_compile_s") is not None else ""))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
