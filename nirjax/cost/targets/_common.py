"""What every chip cost model shares: the capacity record, the inputs a model sees, and
the result dictionary."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

from ..constants import Constant

__all__ = ["Capacity", "Context", "Target", "result", "per_step"]


@dataclasses.dataclass
class Capacity:
    """Whether a graph fits a target.

    Attributes:
        fits: ``True`` when no limit is exceeded.
        cores: cores (or chips, for single-core devices: 1) the graph occupies; ``None``
            when the graph cannot be mapped at all.
        violations: one line per limit exceeded or unsupported structure, naming the node.
        usage: what was counted against the limits (neurons, synapses, memory, ...).
        basis: the constants the check used.
    """

    fits: bool
    cores: int | None
    violations: list
    usage: dict
    basis: list

    def __post_init__(self):
        self.violations = list(dict.fromkeys(self.violations))

    def to_dict(self) -> dict:
        """JSON-ready form (``basis`` as dicts)."""
        return {"fits": self.fits, "cores": self.cores, "violations": list(self.violations),
                "usage": dict(self.usage), "basis": [c.to_dict() for c in self.basis]}


@dataclasses.dataclass
class Context:
    """What a cost model is given.

    Attributes:
        model: the compiled graph.
        counts: its :class:`~nirjax.cost.ActivityCounts` on the benchmark input.
        structure: its :class:`~nirjax.cost.structure.Structure`.
        measured: nirjax's own measured figures (``{"cpu": {...}, "gpu": {...}}``).
    """

    model: Any
    counts: Any
    structure: Any
    measured: dict


class Target(NamedTuple):
    """A benchmark target.

    Attributes:
        name: the key (``"loihi2"``).
        title: a human-readable name.
        capacity: ``Structure -> Capacity``: one small function per target, from the
            published limits (:func:`nirjax.benchmark` adds the lowering pass's verdict for
            the chips nirjax lowers to).
        estimate: ``Context -> dict``: the cost model (see :func:`result`).
    """

    name: str
    title: str
    capacity: Callable
    estimate: Callable


def per_step(counts) -> dict:
    """Per-sample, per-step activity: ``synops``, ``active`` (membrane updates after the
    first step's full count, i.e. neurons whose membrane changed), ``inactive``, ``spikes``,
    ``neurons``, ``dense``."""
    t = counts.totals
    steps = max(counts.steps, 1)
    neurons = t["Neurons"]
    active = t["MembraneUpdates"] / steps
    return {
        "synops": t["SynapticOperations"] / steps,
        "dense": t["Dense"] / steps,
        "active": active,
        "inactive": max(neurons - active, 0.0),
        "spikes": t["Spikes"] / steps,
        "neurons": neurons,
    }


def result(target: Target, capacity: Capacity, *, steps: int, time_per_step: float | None,
           energy: tuple, basis: list, model: str, notes: list,
           time_range: tuple | None = None, samples_per_s: float | None = None,
           time_per_inference: float | None = None, **extra) -> dict:
    """The result dictionary of one target.

    Keys: ``target``, ``title``, ``estimate`` (always ``True``), ``fits``, ``cores``,
    ``violations``, ``usage``, ``time_per_step_s``, ``time_per_step_range_s``,
    ``time_per_inference_s``, ``samples_per_s``, ``energy_per_inference_j`` (low, high),
    ``basis`` (each constant as a dict with name, value, unit, source, kind), ``model``
    (the formula in words), ``notes``, plus target-specific keys.
    """
    seen, unique = set(), []
    for c in list(basis) + list(capacity.basis):
        if isinstance(c, Constant) and c.name not in seen:
            seen.add(c.name)
            unique.append(c)
    t_inf = time_per_inference
    if t_inf is None and time_per_step is not None:
        t_inf = time_per_step * steps
    if samples_per_s is None and t_inf:
        samples_per_s = 1.0 / t_inf
    lo, hi = (float(energy[0]), float(energy[1])) if energy is not None else (None, None)
    out = {
        "target": target.name, "title": target.title, "estimate": True,
        "fits": bool(capacity.fits), "cores": capacity.cores,
        "violations": list(capacity.violations), "usage": dict(capacity.usage),
        "time_per_step_s": None if time_per_step is None else float(time_per_step),
        "time_per_step_range_s": (None if time_range is None
                                  else (float(time_range[0]), float(time_range[1]))),
        "time_per_inference_s": None if t_inf is None else float(t_inf),
        "samples_per_s": None if samples_per_s is None else float(samples_per_s),
        "energy_per_inference_j": (lo, hi),
        "basis": [c.to_dict() for c in unique],
        "model": model,
        "notes": list(notes),
    }
    out.update(extra)
    return out
