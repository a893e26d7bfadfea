"""Alternating timing rounds for the chip-simulation benchmarks (``hardware_sim*.py``).

The machine these benchmarks run on is shared and noisy, so one timing is not a result. A
:class:`Case` holds one graph on one target, already lowered, compiled and checked against
the vendor's simulator; :func:`alternate` then times it in ``rounds`` rounds, each round
nirjax first, then the vendor, so that both see the same load drift. Each round gives each
framework one throughput (the batch over the median of that round's timed runs);
:func:`summarize` reports per framework the median over rounds with its min-max and
interquartile range, the ratio of the medians and the range of the per-round ratios.
:func:`machine` describes the machine (CPU model, cores, load average).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import time
from typing import Callable

import numpy as np


@dataclasses.dataclass
class Case:
    """One graph on one target, ready to time.

    Attributes:
        family: ``"xylo"``, ``"loihi2"``, ``"speck"`` or ``"spinnaker2"``.
        target: the chip target name (``nirjax.lower``'s).
        graph: the graph file's name.
        steps: time steps ``T``.
        batch: samples per batch ``B``.
        nirjax_once: runs nirjax's integer simulation on the batch once (compiled already)
            and waits for the result.
        vendor_round: ``f(n) -> list of seconds``: ``n`` timed batches of the vendor's
            simulator (its process start and network build not timed); ``None`` when there
            is no vendor simulator.
        vendor: the vendor simulator's name and versions.
        vendor_inner: timed vendor batches per round.
        compile_s: nirjax's first call (trace, compile and one run), seconds.
        identical: output spikes of nirjax and the vendor equal at every step for every
            sample (``None``: not compared).
        output_spikes: output spikes in the batch.
        notes: what was compared, and anything else a reader needs.
        skipped: why the target could not be measured here (then nothing else is set).
    """

    family: str
    target: str
    graph: str
    steps: int
    batch: int
    nirjax_once: Callable[[], None] | None = None
    vendor_round: Callable[[int], list] | None = None
    vendor: str | None = None
    vendor_inner: int = 1
    compile_s: float | None = None
    identical: bool | None = None
    output_spikes: int | None = None
    notes: str = ""
    skipped: str | None = None


def timed(fn: Callable[[], None], n: int) -> list:
    """Wall seconds of ``n`` calls of ``fn``."""
    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def spread(values) -> dict:
    """Median, min, max and quartiles of ``values``."""
    v = np.asarray(values, float)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "min": float(v.min()), "max": float(v.max()),
            "q1": float(q1), "q3": float(q3), "n": int(v.size)}


def alternate(case: Case, rounds: int, nirjax_inner: int = 5, log=None) -> dict:
    """Time ``case`` in ``rounds`` alternating rounds (nirjax, then the vendor).

    Args:
        case: a prepared case (not skipped).
        rounds: rounds.
        nirjax_inner: timed nirjax batches per round (their median is the round's value).
        log: ``print``-like callable for progress, or ``None``.

    Returns:
        ``{"nirjax_seconds": [[...] per round], "vendor_seconds": [[...] per round] or None,
        "nirjax_samples_per_s": [per round], "vendor_samples_per_s": [per round] or None}``.
    """
    out = {"nirjax_seconds": [], "vendor_seconds": [] if case.vendor_round else None}
    for r in range(rounds):
        out["nirjax_seconds"].append(timed(case.nirjax_once, nirjax_inner))
        if case.vendor_round is not None:
            out["vendor_seconds"].append([float(s) for s in case.vendor_round(case.vendor_inner)])
        if log is not None:
            v = (f", vendor {case.batch / np.median(out['vendor_seconds'][-1]):.1f}"
                 if case.vendor_round else "")
            log(f"  {case.target} round {r + 1}/{rounds}: nirjax "
                f"{case.batch / np.median(out['nirjax_seconds'][-1]):.1f}{v} samples/s")
    out["nirjax_samples_per_s"] = [case.batch / float(np.median(s))
                                   for s in out["nirjax_seconds"]]
    out["vendor_samples_per_s"] = ([case.batch / float(np.median(s))
                                    for s in out["vendor_seconds"]]
                                   if case.vendor_round else None)
    return out


def summarize(case: Case, timing: dict) -> dict:
    """One result row: the case's facts, each framework's spread, and the ratios.

    The ratio (nirjax over vendor) is given only where the spikes were identical.
    """
    row = {"family": case.family, "target": case.target, "graph": case.graph,
           "steps": case.steps, "batch": case.batch, "notes": case.notes}
    if case.skipped:
        row["skipped"] = case.skipped
        return row
    row.update(identical_spikes=case.identical, output_spikes=case.output_spikes,
               nirjax_compile_s=case.compile_s, vendor=case.vendor, **timing)
    row["nirjax"] = spread(timing["nirjax_samples_per_s"])
    if timing["vendor_samples_per_s"] is None:
        row["vendor_spread"] = None
        row["ratio"] = None
        return row
    row["vendor_spread"] = spread(timing["vendor_samples_per_s"])
    if case.identical:
        per_round = [a / b for a, b in zip(timing["nirjax_samples_per_s"],
                                           timing["vendor_samples_per_s"])]
        row["ratio"] = row["nirjax"]["median"] / row["vendor_spread"]["median"]
        row["ratio_per_round"] = per_round
        row["ratio_range"] = [min(per_round), max(per_round)]
    else:
        row["ratio"] = None
    return row


def _lscpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    """The machine: CPU model (lscpu), logical cores, load average now, platform, versions."""
    import jax

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {"cpu": _lscpu_model(), "cores": os.cpu_count(), "cores_usable": affinity,
            "load_average": list(os.getloadavg()), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "jax_backend": jax.default_backend(),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"),
            "git_commit": _git_commit(),
            "command": "python " + " ".join(sys.argv)}


def fmt_spread(s: dict | None) -> str:
    """``median [min-max]`` with a precision that suits the size."""
    if s is None:
        return "-"

    def f(v):
        return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"

    return f"{f(s['median'])} [{f(s['min'])}-{f(s['max'])}]"


def markdown(rows: list, meta: dict, title: str) -> str:
    """The results as a Markdown table plus the machine and the command."""
    m = meta["machine_before"]
    lines = [f"# {title}", "",
             f"T = {meta['steps']} steps, B = {meta['batch']} samples per batch (Speck: "
             f"T = {meta['speck_steps']}); {meta['rounds']} alternating rounds (each round: "
             f"nirjax, then the vendor); per framework the median samples/s over rounds "
             f"[min-max]; ratio = nirjax median / vendor median, [range of the per-round "
             f"ratios]; a ratio only where the output spikes are identical.", "",
             "| target | graph | identical spikes | nirjax samples/s | vendor samples/s | "
             "ratio [per-round range] | nirjax compile s | vendor |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['target']} | {r['graph']} | - | - | - | skipped: "
                         f"{r['skipped']} | - | - |")
            continue
        if r["ratio"] is not None:
            ratio = (f"{r['ratio']:.1f}x [{r['ratio_range'][0]:.1f}-"
                     f"{r['ratio_range'][1]:.1f}]")
        elif r["vendor_spread"] is None:
            ratio = "no vendor simulator"
        else:
            ratio = "spikes differ: no ratio"
        ident = ("-" if r["identical_spikes"] is None else
                 f"{'yes' if r['identical_spikes'] else 'NO'} ({r['output_spikes']} spikes)")
        comp = "-" if r["nirjax_compile_s"] is None else f"{r['nirjax_compile_s']:.1f}"
        lines.append(f"| {r['target']} | {r['graph']} | {ident} | {fmt_spread(r['nirjax'])} | "
                     f"{fmt_spread(r['vendor_spread'])} | {ratio} | {comp} | "
                     f"{r['vendor'] or '-'} |")
    notes = [f"- {r['target']}: {r['notes']}" for r in rows if r.get("notes")]
    if notes:
        lines += ["", "Notes:", ""] + notes
    after = meta["machine_after"]["load_average"]
    lines += ["", "## Machine", "",
              f"- CPU: {m['cpu']}, {m['cores']} logical cores ({m['cores_usable']} usable by "
              f"this process); {m['platform']}; Python {m['python']}, JAX {m['jax']} "
              f"({m['jax_backend']})",
              f"- load average (1, 5, 15 min) before: "
              f"{', '.join(f'{v:.2f}' for v in m['load_average'])}; after: "
              f"{', '.join(f'{v:.2f}' for v in after)}"
              + ("  (the machine was shared: other processes ran throughout)"
                 if max(m["load_average"][0], after[0]) > 0.5 * m["cores"] else ""),
              f"- date: {m['date_utc']}; commit {m['git_commit']}; wall time of the whole "
              f"run {meta['wall_s']:.0f} s",
              f"- command: `{m['command']}`", ""]
    return "\n".join(lines)
