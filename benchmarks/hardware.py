"""Hardware benchmark of the NIR paper's Braille graph and CNN: ``nirjax.benchmark`` tables.

    python benchmarks/hardware.py [--out benchmarks/results] [--min-time 2]

For each graph it writes ``hardware_<graph>.md`` (the side-by-side table, the inputs, the
machine), ``hardware_<graph>.json`` (the full report) and ``hardware_<graph>.png`` (energy
against time per inference). What is measured: the activity counts of the run and nirjax's
own wall time here (synchronised, warm, median). What is estimated: every chip figure, from
the counts and the published constants listed in each target's basis.

Inputs (no dataset ships with nirjax, so both are seeded Bernoulli spikes):

* Braille (``braille_noDelay_noBias_subtract.nir``, the graph the NIR paper ran on Xylo,
  ``nir`` semantics, ``dt = 1e-4``): 256 steps x 16 samples, spike probability 0.1 per channel and step (``nirjax run``'s default input);
* CNN (``cnn_sinabs.nir``, ``sinabs`` profile, the framework it came from, ``dt = 1e-4``):
  100 steps x 8 samples of 2 x 34 x 34 events, probability 0.05.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import nirjax  # noqa: E402

GRAPHS = {
    "braille": dict(example="braille_subtract", semantics="nir", steps=256, batch=16,
                    rate=0.1, seed=0),
    "cnn": dict(example="cnn_sinabs", semantics="sinabs", steps=100, batch=8, rate=0.05,
                seed=0),
}


def _sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except Exception:
        return ""


def machine_lines(report, load) -> list:
    m = report.machine
    commit = _sh(f"git -C {HERE.parent} rev-parse --short HEAD")
    return [
        "## Machine",
        "",
        f"* date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"* CPU: {m['cpu']}; {m['logical_cpus']} logical CPUs; JAX devices: {m['devices']}",
        f"* {m['platform']}; Python {m['python']}, jax {m['jax']}, numpy {m['numpy']}",
        f"* load average at start / end: {load[0]} / {load[1]} (the machine was shared: "
        f"the timings are indicative)",
        f"* GPU: {'measured' if 'gpu' in report.measured else 'none on this machine (not measured)'}",
        f"* nirjax commit: {commit}",
        f"* command: `python benchmarks/hardware.py {' '.join(sys.argv[1:])}`",
    ]


def run(name, spec, out: pathlib.Path, min_time: float):
    load0 = os.getloadavg()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pre-1.0.6 files: reset ambiguity
        model = nirjax.compile(nirjax.example_path(spec["example"]), dt=1e-4,
                               semantics=spec["semantics"])
    rng = np.random.default_rng(spec["seed"])
    (shape,) = model.input_shapes.values()
    xs = (rng.random((spec["steps"], spec["batch"]) + tuple(shape)) < spec["rate"]).astype(
        np.float32)
    report = nirjax.benchmark(model, xs, name=name, min_time=min_time)
    load1 = os.getloadavg()
    load = tuple(f"{a:.2f}" for a in load0[:1]), tuple(f"{a:.2f}" for a in load1[:1])
    lines = [
        f"# Hardware benchmark: {name} ({spec['example']})",
        "",
        "Chip figures are **estimates** from the run's activity counts and published "
        "constants (each target's basis in the JSON lists every constant with its source "
        "and kind); the counts and nirjax's timings are **measured** here.",
        "",
        f"Input: seeded Bernoulli spikes, {spec['steps']} steps x {spec['batch']} samples "
        f"of shape {tuple(shape)}, probability {spec['rate']} per channel and step "
        f"(seed {spec['seed']}); semantics `{spec['semantics']}`, dt = 1e-4.",
        "",
        report.table(),
        "",
        *machine_lines(report, (load[0][0], load[1][0])),
        "",
    ]
    (out / f"hardware_{name}.md").write_text("\n".join(lines))
    d = report.to_dict()
    d["input"] = spec
    (out / f"hardware_{name}.json").write_text(json.dumps(d, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        report.plot(out / f"hardware_{name}.png")
    except ImportError:
        pass
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--graphs", default=",".join(GRAPHS))
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.graphs.split(","):
        report = run(name, GRAPHS[name], out, args.min_time)
        print(report.table())
        print()


if __name__ == "__main__":
    main()
