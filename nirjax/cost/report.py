"""``nirjax.benchmark``: one table for one graph across the chips, next to nirjax's own
measured figures.

What is *measured*: the activity counts (from a run of the graph) and nirjax's wall time on
this machine. What is *estimated*: every chip figure (time per step, samples/s, energy per
inference, capacity), from the counts and published constants, each listed with its
source and kind in ``report.targets[name]["basis"]``.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Iterable

from ..errors import NirjaxError
from .constants import KINDS
from .counts import ActivityCounts, count_activity
from .measure import machine_description, measure
from .structure import structure_of
from .targets import CHIPS, TARGETS, Context

__all__ = ["BenchmarkError", "BenchmarkReport", "benchmark", "resolve_targets",
           "lowering_check"]


class BenchmarkError(NirjaxError, ValueError):
    """A benchmark request is invalid (unknown target, missing optional dependency, ...)."""


def resolve_targets(targets) -> list:
    """Target names from ``"all"``, ``"chips"``, a comma-separated string or a list.

    >>> resolve_targets("loihi2,xylo-audio2")
    ['loihi2', 'xylo-audio2']
    """
    if targets is None or targets == "all":
        return list(TARGETS)
    if targets == "chips":
        return list(CHIPS)
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    names = []
    for t in targets:
        if t == "all":
            names.extend(TARGETS)
        elif t == "chips":
            names.extend(CHIPS)
        elif t in TARGETS:
            names.append(t)
        else:
            raise BenchmarkError(f"unknown benchmark target {t!r}; known targets: "
                                 f"{', '.join(TARGETS)} (or 'all', 'chips')")
    return list(dict.fromkeys(names))


def lowering_check(model, target: str, params=None) -> dict | None:
    """The lowering pass's verdict on ``model`` for a chip ``target``, when nirjax lowers to it.

    Runs :func:`nirjax.lower` (its shape and design rules, quantization and resource count;
    nothing is simulated) and returns ``{"lowers": bool, "violations": [str, ...],
    "resources": dict | None, "warnings": [str, ...]}``, or ``None`` when no lowering target
    of that name exists (Loihi 1, TrueNorth, cpu, gpu). :func:`benchmark` uses it so that a
    graph the chip's toolchain refuses is never reported as fitting.

    Args:
        model: a :class:`~nirjax.CompiledGraph`.
        target: a benchmark target name (``"xylo-audio2"``, ``"speck"``, ``"loihi2"``, ...).
        params: parameters to lower (default ``model.params``).
    """
    from ..lowering import TARGETS as LOWERING_TARGETS, lower

    if target not in LOWERING_TARGETS:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hw = lower(model, target, params=params)
        except NirjaxError as exc:
            found = [str(v) for v in getattr(exc, "violations", None) or ()]
            return {"lowers": False, "violations": found or [str(exc).splitlines()[0]],
                    "resources": None, "warnings": []}
    return {"lowers": True, "violations": [], "resources": hw.resources,
            "warnings": [str(w.message) for w in caught]}


def _fmt(v, unit="", spec="{:.3g}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return spec.format(v) + unit


def _si(v, unit) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v) or v <= 0)):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"0 {unit}"
    for factor, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if v >= factor:
            return f"{v / factor:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


def _kinds(basis) -> str:
    counts = {k: 0 for k in KINDS}
    for c in basis:
        counts[c["kind"]] += 1
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n)


class BenchmarkReport:
    """The result of :func:`benchmark`.

    Attributes:
        counts: per-sample totals under NeuroBench's names (``"Effective_ACs"``,
            ``"Effective_MACs"``, ``"Dense"``, ``"ActivationSparsity"``,
            ``"ConnectionSparsity"``, ``"MembraneUpdates"``, ``"Footprint"``), nirjax's
            additions (``"SynapticOperations"``, ``"Spikes"``, ``"NeuronUpdates"``, ...),
            ``"per_node"``, ``"steps"``, ``"batch"``.
        activity: the full :class:`~nirjax.cost.ActivityCounts` (with per-sample arrays).
        targets: target name -> estimate dict (``"fits"``, ``"cores"``,
            ``"time_per_step_s"``, ``"samples_per_s"``, ``"energy_per_inference_j"`` (low,
            high), ``"basis"``, ...; Xylo adds ``"rates"`` and ``"cycles_per_step"``).
        measured: backend -> nirjax's measured figures on this machine (empty when not
            measured).
        machine: the machine and software.
        graph: a short description of the graph (nodes, dt, semantics).
    """

    def __init__(self, activity: ActivityCounts, targets: dict, measured: dict,
                 machine: dict, graph: dict):
        self.activity = activity
        self.counts = activity.as_dict()
        self.targets = targets
        self.measured = measured
        self.machine = machine
        self.graph = graph

    def __repr__(self):
        return (f"BenchmarkReport({len(self.targets)} targets, T={self.activity.steps}, "
                f"B={self.activity.batch}, measured={list(self.measured)})")

    def to_dict(self) -> dict:
        """Everything, JSON-ready (tuples become lists)."""
        return json.loads(json.dumps({
            "graph": self.graph, "counts": self.counts, "targets": self.targets,
            "measured": self.measured, "machine": self.machine,
            "note": "chip figures are estimates from published constants (see each target's "
                    "basis); counts and nirjax's timings are measured on this machine",
        }, default=_json_default))

    def table(self) -> str:
        """The side-by-side table (Markdown): per target fits?, cores, time per step,
        samples/s, energy per inference (range) and its basis; then nirjax's measured
        figures and the activity counts."""
        c = self.counts
        lines = [
            f"Graph: {self.graph.get('name', '')} ({self.graph['nodes']} nodes, "
            f"dt={self.graph['dt']:g}, semantics {self.graph['semantics']!r}); "
            f"T={self.activity.steps} steps, B={self.activity.batch} samples",
            f"Activity per sample (measured, NeuroBench definitions): synaptic ops "
            f"{c['SynapticOperations']:.6g} (ACs {c['Effective_ACs']:.6g}, MACs "
            f"{c['Effective_MACs']:.6g}, dense {c['Dense']:.6g}), spikes {c['Spikes']:.6g}, "
            f"membrane updates {c['MembraneUpdates']:.6g}, activation sparsity "
            f"{c['ActivationSparsity']:.4f}, connection sparsity {c['ConnectionSparsity']:.4f}, "
            f"footprint {c['Footprint']} B",
            "",
            "| target | fits | cores | time/step | samples/s | energy/inference | basis |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in self.targets.items():
            lo, hi = r["energy_per_inference_j"]
            energy = _si(lo, "J") if lo == hi else f"{_si(lo, 'J')} - {_si(hi, 'J')}"
            basis = _kinds(r["basis"])
            if lo is None:
                basis = "no estimate"
            elif basis:
                basis = f"estimate: {basis}"
            measured = " (measured)" if r.get("measured_time") else ""
            lines.append(
                f"| {name} | {'yes' if r['fits'] else 'NO'} | {_fmt(r['cores'], spec='{}')} | "
                f"{_si(r['time_per_step_s'], 's')}{measured} | "
                f"{_fmt(r['samples_per_s'])} | {energy} | {basis} |")
        lines += ["", "nirjax on this machine (measured: synchronised, warm, median):", ""]
        if self.measured:
            lines += ["| backend | device | time/step | samples/s | synaptic ops/s | repeats |",
                      "|---|---|---|---|---|---|"]
            for backend, m in self.measured.items():
                lines.append(f"| {backend} | {m['device']} | {_si(m['time_per_step_s'], 's')} | "
                             f"{_fmt(m['samples_per_s'])} | {_fmt(m['synops_per_s'])} | "
                             f"{m['repeats']} |")
        else:
            lines.append("(not measured)")
        notes = [f"* {n}: " + "; ".join(r["violations"]) for n, r in self.targets.items()
                 if r["violations"]]
        if notes:
            lines += ["", "Does not fit:"] + notes
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def plot(self, path=None, ax=None):
        """Energy per inference against time per inference for every target (log axes;
        the energy range as a vertical bar), with nirjax's measured time on each backend
        (the batch's wall time per sample, ``1 / samples_per_s``; its energy is that
        backend's reference estimate).

        Args:
            path: save the figure there when given.
            ax: a matplotlib Axes to draw into (default: a new figure).

        Returns:
            The matplotlib Figure.

        Raises:
            BenchmarkError: matplotlib is not installed (``pip install nirjax[bench]``).
        """
        try:
            import matplotlib
            if ax is None and path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise BenchmarkError("BenchmarkReport.plot needs matplotlib, which is not "
                                 "installed: pip install matplotlib (or nirjax[bench])") from None
        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 5))
        else:
            fig = ax.figure
        for name, r in self.targets.items():
            t = r["time_per_inference_s"]
            lo, hi = r["energy_per_inference_j"]
            if t is None or lo is None or not (lo > 0 and hi > 0) or r.get("measured_time"):
                continue  # a reference with measured time is drawn as nirjax's point below
            mid = min(max(math.sqrt(lo * hi), lo), hi)
            marker = "o" if r["fits"] else "x"
            ax.errorbar([t], [mid], yerr=[[max(mid - lo, 0.0)], [max(hi - mid, 0.0)]],
                        fmt=marker, capsize=3,
                        label=f"{name}{'' if r['fits'] else ' (does not fit)'}")
            ax.annotate(name, (t, mid), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for backend, m in self.measured.items():
            ref = self.targets.get(backend) or TARGETS[backend].estimate(self._context())
            lo, hi = ref["energy_per_inference_j"]
            t = 1.0 / m["samples_per_s"]  # the batch's time per sample
            mid = min(max(math.sqrt(lo * hi), lo), hi)
            ax.errorbar([t], [mid], yerr=[[max(mid - lo, 0.0)], [max(hi - mid, 0.0)]],
                        fmt="*", markersize=12,
                        capsize=3, label=f"nirjax {backend} (time per sample measured)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("time per inference [s] (estimate; nirjax: measured)")
        ax.set_ylabel("energy per inference [J] (estimate, range)")
        ax.set_title(f"{self.graph.get('name') or 'graph'}: T={self.activity.steps} steps")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        if path is not None:
            fig.savefig(path, dpi=120, bbox_inches="tight")
        return fig

    def _context(self):
        return self._ctx


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def benchmark(model, xs, targets="all", *, params=None, measure_time: bool = True,
              backends: Iterable | None = None, classify: str = "batch", name: str = "",
              min_time: float = 1.0, batch_size: int | None = None) -> BenchmarkReport:
    """Benchmark a compiled graph against neuromorphic chips and nirjax itself.

    Counts the graph's activity on ``xs`` (NeuroBench's definitions, one jitted run), maps
    the counts to every target's cost model (estimates with their basis), checks capacity
    (the published limits, and for a chip nirjax lowers to, the lowering pass's shape and
    design rules as well: :func:`lowering_check`, in ``report.targets[name]["lowering"]``),
    and measures nirjax's own wall time on this machine.

    Args:
        model: a :class:`~nirjax.CompiledGraph`.
        xs: the benchmark input ``[T, B, *input_shape]`` (a dict for several inputs).
        targets: ``"all"`` (default), ``"chips"``, a name, a comma-separated string or a
            list of names from :data:`nirjax.cost.TARGETS`.
        params: parameters (default ``model.params``).
        measure_time: measure nirjax's wall time (``False`` skips it).
        backends: backends to measure (default every one of cpu/gpu present).
        classify: AC/MAC classification, see :func:`~nirjax.cost.count_activity`.
        name: a name for the graph in the table and plot.
        min_time: seconds of repeated calls per backend at least.
        batch_size: count the samples in chunks of this many (memory; see
            :func:`~nirjax.cost.count_activity`); the timing always runs the whole batch.

    Returns:
        A :class:`BenchmarkReport`.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Linear(np.ones((3, 2))), nir.LIF(tau=np.full(3, 1e-3),
    ...     r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.1)))
    >>> model = nirjax.compile(g, dt=1e-4)
    >>> xs = (np.random.default_rng(0).random((20, 2, 2)) < 0.5).astype(np.float32)
    >>> report = nirjax.benchmark(model, xs, targets=["loihi", "xylo-audio2"],
    ...                           measure_time=False)
    >>> report.targets["loihi"]["fits"], report.counts["Dense"]
    (True, 120.0)
    >>> report.targets["xylo-audio2"]["violations"][0][:40]  # no hidden layer
    "node 'linear' (Linear): from 'input' to "
    """
    names = resolve_targets(targets)
    params = model.params if params is None else params
    activity = count_activity(model, xs, params, classify=classify, batch_size=batch_size)
    measured = {}
    if measure_time:
        measured = measure(model, xs, params, backends=backends, min_time=min_time,
                           synops_per_sample=activity.totals["SynapticOperations"])
    ctx = Context(model=model, counts=activity, structure=structure_of(model),
                  measured=measured)
    results = {n: TARGETS[n].estimate(ctx) for n in names}
    for n in names:  # a chip nirjax lowers to: its design rules decide too
        check = lowering_check(model, n, params)
        if check is None:
            continue
        r = results[n]
        r["lowering"] = check
        if not check["lowers"]:
            r["fits"] = False
            r["violations"] = list(dict.fromkeys(
                list(r["violations"]) + [f"nirjax.lower: {v}" for v in check["violations"]]))
    program = model.program
    graph = {"name": name, "nodes": len(program.nodes), "dt": float(program.dt),
             "semantics": program.semantics.name,
             "inputs": {k: list(v) for k, v in model.input_shapes.items()},
             "outputs": {k: list(v) for k, v in model.output_shapes.items()}}
    report = BenchmarkReport(activity, results, measured, machine_description(), graph)
    report._ctx = ctx
    return report
