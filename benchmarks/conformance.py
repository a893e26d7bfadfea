"""Conformance of nirjax's platform profiles with the platforms themselves.

Two tables:

1. Real packages (rows) x graphs (columns): each cell is the agreement between the package
   run on a graph (its own ``from_nir``, in its own environment, see
   ``tests/peers/setup_peers.sh``) and nirjax under the matching profile: the percentage of
   identical output values (spikes per neuron and step, all samples) and the largest
   membrane difference where the membrane was recorded (in the platform's units; relative
   to the largest |v| when that exceeds 1). ``-`` means the package cannot import that kind
   of graph. The graphs are those of ``tests/test_conformance_peers.py``: the NIR paper
   graphs and seeded random graphs within each package's import limits.
2. Every profile (rows) on the NIR paper's LIF task against the trace its platform published
   (``tests/data/paper/lif_*.csv``): output spike steps and the largest membrane difference.

Usage::

    tests/peers/setup_peers.sh                  # once: the peer environments (about 6 min)
    python benchmarks/conformance.py [--random N] [--out benchmarks/results/conformance.md]

Prints the tables and writes them (with the package versions and the machine) as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
import harness  # noqa: E402

import nirjax  # noqa: E402

COLUMNS = [
    ("lif_task", "LIF task"),
    ("braille_zero", "Braille zero"),
    ("braille_subtract_b", "Braille subtract"),
    ("braille_subtract_native", "Braille subtract, own reset"),
    ("cnn", "paper CNN"),
    ("chain_LIF", "random LIF chains"),
    ("chain_CubaLIF", "random CubaLIF chains"),
    ("chain_IF", "random IF"),
    ("chain_LI_", "random LI outputs"),
    ("rec_", "random recurrent"),
    ("conv", "random conv stacks"),
    ("parting_", "random CubaLIF, rounding partings"),
]
ROW_NAMES = {
    "norse": "Norse 1.1.0", "snntorch": "snnTorch 1.0.0", "spyx01": "Spyx 0.1.20",
    "spyx1": "Spyx 1.0.0", "sinabs": "Sinabs 3.1.3", "rockpool": "Rockpool 3.1.0",
    "nengo": "Nengo 4.1.0",
}
TRACES = {  # profile -> (graph, published trace)
    "exact": ("lif_norse", "lif_exact"), "norse": ("lif_norse", "lif_norse"),
    "snntorch": ("lif_norse", "lif_snntorch"), "spinnaker2": ("lif_norse", "lif_spinnaker2"),
    "lava": ("lif_norse", "lif_lava_cpu_float"), "spyx": ("lif_norse", "lif_spyx"),
    "lava_fixed": ("lif_norse", "lif_lava_cpu_fixed"),
    "rockpool": ("lif_rockpool", "lif_rockpool"), "sinabs": ("lif_norse", "lif_sinabs"),
    "nir": ("lif_norse", "lif_norse"), "nengo": ("lif_norse", "lif_nengo"),
}


def column_of(case_id: str) -> str | None:
    for prefix, title in COLUMNS:
        if case_id.startswith(prefix):
            return title
    return None


def peer_table(n_random: int, braille_batches: int):
    """Run every package on its cases; returns (rows, bugs, versions, seconds)."""
    rows, bugs, versions, seconds = {}, [], {}, {}
    for fw, (_, profile) in harness.FRAMEWORKS.items():
        if profile not in nirjax.PROFILES:  # e.g. "nengo" before its profile exists
            continue
        if harness.peer_python(fw) is None:
            rows[fw] = None
            continue
        cases = harness.cases_for(fw, n_random=n_random, braille_batches=braille_batches)
        start = time.perf_counter()
        results, versions[fw] = harness.run_peer(fw, cases)
        seconds[fw] = time.perf_counter() - start
        cells = {}
        for case in cases:
            peer = results[case.id]
            if case.expect_error:
                bugs.append((fw, case.description, case.expect_error,
                             peer.error is not None and case.expect_error in peer.error))
                continue
            col = column_of(case.id)
            cell = cells.setdefault(col, dict(same=0.0, n=0, v=[], cases=0, failed=[],
                                              parted=0, unexplained=0))
            cell["cases"] += 1
            if peer.error is not None:
                cell["failed"].append(peer.error.splitlines()[0])
                continue
            agree = harness.agreement(case, peer, harness.run_nirjax(case))
            cell["same"] += agree.identical * agree.n
            cell["n"] += agree.n
            if peer.spikes:  # every layer recorded: partings are checked, not membranes
                events, problems = harness.rounding_events(
                    peer, *harness.run_nirjax_layers(case, peer))
                cell["parted"] += len({e.batch for e in events})
                cell["unexplained"] += len(problems)
            elif case.record:
                cell["v"].append(agree.max_v_rel)
        rows[fw] = cells
    return rows, bugs, versions, seconds


def format_cell(cell) -> str:
    if cell is None:
        return "-"
    if cell["failed"]:
        return f"peer failed ({cell['failed'][0][:40]})"
    text = f"{100 * cell['same'] / cell['n']:.2f}%"
    if cell["v"]:
        text += f" / {max(cell['v']):.1e}"
    if cell.get("parted") or cell.get("unexplained"):
        text += f", {cell['parted']} sample(s) parted by rounding"
        if cell["unexplained"]:
            text += f", {cell['unexplained']} UNEXPLAINED difference(s)"
    return f"{text} ({cell['cases']})"


def trace_table():
    """Every profile on the LIF task vs its platform's published trace."""
    data = ROOT / "tests" / "data" / "paper"
    out = []
    for prof, (graph, trace) in TRACES.items():
        ref = np.loadtxt(data / f"{trace}.csv", delimiter=",")
        path = nirjax.example_path("lif_norse") if graph == "lif_norse" else data / f"{graph}.nir"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = nirjax.read(path)
        m = nirjax.compile(g, dt=harness.DT, semantics=prof)
        lif = next(n.name for n in m.program.nodes if n.type_name == "LIF")
        ys, _, rec = m.run(m.params, ref[:, 0].astype(np.float32).reshape(-1, 1, 1),
                           record=[(lif, "v")])
        z, v = np.asarray(ys).ravel(), np.asarray(rec[(lif, "v")]).ravel()
        steps, pub = np.flatnonzero(z).tolist(), np.flatnonzero(ref[:, 2]).tolist()
        dv = float(np.max(np.abs(v - ref[:, 1])))
        out.append((prof, f"{graph}.nir", f"{trace}.csv", steps, pub, dv))
    return out


def render(rows, bugs, versions, seconds, traces, args) -> str:
    titles = [t for _, t in COLUMNS]
    used = [t for t in titles if any(r and t in r for r in rows.values())]
    lines = ["# Platform conformance", "",
             f"Generated by `python benchmarks/conformance.py --random {args.random} "
             f"--braille-batches {args.braille_batches}` on "
             f"{datetime.date.today().isoformat()}, {platform.machine()} "
             f"({platform.processor() or 'cpu'}), {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, nirjax {nirjax.__version__}, jax "
             f"{__import__('jax').__version__}, float32.", "",
             "## nirjax profile vs the real package", "",
             "Each cell: identical output values (spikes of every output neuron at every step, "
             "all samples) / largest membrane difference where recorded, relative to the "
             "largest |v| when that exceeds 1 (number of cases). `-`: the package cannot import "
             "such graphs. Rockpool's runs record every layer: there, the outputs are identical "
             "in every sample up to the first threshold crossing that float32 rounding decided "
             "differently (the two programs sum matrix products and round exp() differently; "
             "`tests/test_conformance_peers.py`), after which the sample's spikes may part; "
             "such samples are counted as 'parted by rounding'.", "",
             "| package (profile) | " + " | ".join(used) + " |",
             "|---|" + "---|" * len(used)]
    for fw, cells in rows.items():
        prof = harness.FRAMEWORKS[fw][1]
        name = f"{ROW_NAMES[fw]} (`{prof}`)"
        if cells is None:
            lines.append(f"| {name} | " + " | ".join("not run: environment missing" for _ in used) + " |")
            continue
        lines.append(f"| {name} | " + " | ".join(format_cell(cells.get(t)) for t in used) + " |")
    lines += ["", "Package versions and time per package (one subprocess, all its cases):", ""]
    for fw, ver in versions.items():
        text = ", ".join(f"{k} {v}" for k, v in ver.items() if isinstance(v, str))
        lines.append(f"- {ROW_NAMES[fw]}: {text}; {seconds[fw]:.0f} s")
    lines += ["", "Pinned package bugs (the released package still fails as documented):", ""]
    for fw, desc, text, ok in dict.fromkeys(bugs):  # one line per bug (several cases may pin it)
        lines.append(f"- {ROW_NAMES[fw]}: {desc} -> `{text}`: {'reproduced' if ok else 'NOT reproduced'}")
    lines += ["", "## NIR paper LIF task vs the published traces", "",
              "| profile | graph | published trace | nirjax spike steps | published spike steps | "
              "max abs v difference |", "|---|---|---|---|---|---|"]
    for prof, graph, trace, steps, pub, dv in traces:
        lines.append(f"| `{prof}` | {graph} | {trace} | {steps} | {pub} | {dv:.2e} |")
    lines += ["", "Notes: `exact` resets at the crossing time inside a step in the published "
              "trace, so its membrane differs after the first spike; `spinnaker2`'s chip "
              "weight was the integer 102 for the hand scale 102.02; Rockpool's importer "
              "infers dt = 9.992e-5 from `r` (its own run used 1e-4, as nirjax does); the "
              "Sinabs trace's input column holds the paper's input scaled by 0.04; Nengo's "
              "voltage is in units of the threshold (v/v_threshold), as nirjax records it "
              "under `nengo`."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=3, help="random graphs per kind")
    parser.add_argument("--braille-batches", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "conformance.md"))
    args = parser.parse_args(argv)
    rows, bugs, versions, seconds = peer_table(args.random, args.braille_batches)
    text = render(rows, bugs, versions, seconds, trace_table(), args)
    print(text)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
