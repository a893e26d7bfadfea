"""Discretization semantics: the choices NIR leaves open, made explicit.

NIR primitives are continuous-time and a NIR graph carries no time step. Turning a graph into
a discrete simulation takes choices every framework makes differently (see the README's
"Semantics" section); nirjax makes each of them a named field of one :class:`Semantics`
value, passed to :func:`nirjax.compile` and overridable per node.

The default, ``Semantics()`` (profile ``"nir"``), is the NIR 1.0.8 specification discretized
with forward Euler:

* integrator ``'euler'``;
* reset ``'v_reset'``: on a spike ``v <- v_reset`` in the same step;
* threshold test ``'>'``: spike when ``v > v_threshold`` strictly;
* CubaLI/CubaLIF under Euler integrate ``v`` with the synaptic current of the previous step
  (``cuba_current='old'``: plain forward Euler of the coupled system);
* initial state at rest: ``v = v_leak``, synaptic current 0 (``initial_v='rest'``);
* spikes are unit values for one step; edges add no latency; cycle-closing edges read the
  previous step's output (see :mod:`nirjax.compiler`);
* surrogate gradient: fast sigmoid (SuperSpike), scale 10 (backward pass only).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from .errors import SemanticsError
from .kernels.neurons import INTEGRATORS, RESETS, THRESHOLD_TESTS, NeuronConfig
from .kernels.surrogate import SURROGATES, Surrogate

__all__ = ["Semantics", "resolve_semantics", "PROFILES", "check_dt"]

_CHOICES = {
    "integrator": INTEGRATORS,
    "reset": RESETS,
    "threshold_test": THRESHOLD_TESTS,
    "cuba_current": ("old", "new"),
    "initial_v": ("rest", "zero"),
}


@dataclasses.dataclass(frozen=True)
class Semantics:
    """How a NIR graph's continuous-time primitives become a discrete simulation.

    Args:
        integrator: ``'euler'`` (forward Euler) or ``'exact'`` (exact exponential
            integration with the input held constant over each step).
        reset: ``'v_reset'`` (set ``v = v_reset`` on a spike), ``'subtract'``
            (``v -= v_threshold``) or ``'none'``.
        threshold_test: ``'>'`` (spike when ``v > v_threshold``, the spec) or ``'>='``.
        cuba_current: ``'old'`` or ``'new'``: which synaptic current the membrane of a
            CubaLI/CubaLIF integrates under Euler (the previous step's or this step's).
        initial_v: ``'rest'`` (``v = v_leak`` at t = 0) or ``'zero'``.
        surrogate: surrogate derivative of the spike function (backward pass only).
        detach_reset: stop gradients through the reset term.
        name: the profile name, for messages.
        overrides: per-node changes, set with :meth:`override`.

    >>> s = Semantics(reset="subtract").override("lif2", integrator="exact")
    >>> s.for_node("lif2").integrator, s.for_node("lif1").integrator
    ('exact', 'euler')
    """

    integrator: str = "euler"
    reset: str = "v_reset"
    threshold_test: str = ">"
    cuba_current: str = "old"
    initial_v: str = "rest"
    surrogate: Surrogate = Surrogate()
    detach_reset: bool = False
    name: str = "nir"
    overrides: tuple = ()

    def __post_init__(self):
        for field, choices in _CHOICES.items():
            value = getattr(self, field)
            if value not in choices:
                raise SemanticsError(
                    f"Semantics.{field}={value!r} is not valid; expected one of "
                    f"{', '.join(map(repr, choices))}"
                )
        if isinstance(self.surrogate, str):
            object.__setattr__(self, "surrogate", Surrogate(self.surrogate))
        if not isinstance(self.surrogate, Surrogate):
            raise SemanticsError(
                f"Semantics.surrogate must be a nirjax.Surrogate or one of {SURROGATES}, "
                f"got {self.surrogate!r}"
            )

    def replace(self, **changes) -> "Semantics":
        """A copy with the given fields changed (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SemanticsError(
                f"unknown Semantics field(s) {sorted(unknown)}; valid fields: "
                f"{[f.name for f in dataclasses.fields(self) if f.name != 'overrides']}"
            )
        return dataclasses.replace(self, **changes)

    def override(self, node: str, **changes) -> "Semantics":
        """A copy in which node ``node`` uses ``changes`` on top of these semantics.

        ``node`` is the node's name in the compiled (flattened) graph, e.g. ``"lif1.lif"``.
        """
        self.replace(**changes)  # validate now, not at compile time
        kept = tuple((n, c) for n, c in self.overrides if n != node)
        merged = dict(dict(self.overrides).get(node, ()))
        merged.update(changes)
        return dataclasses.replace(self, overrides=kept + ((node, tuple(sorted(merged.items()))),))

    def for_node(self, node: str) -> "Semantics":
        """The semantics node ``node`` is simulated under (overrides applied)."""
        changes = dict(dict(self.overrides).get(node, ()))
        return dataclasses.replace(self, overrides=(), **changes)

    def neuron_config(self, dt: float) -> NeuronConfig:
        """The static kernel options these semantics give a neuron at step ``dt``."""
        return NeuronConfig(
            dt=float(dt),
            integrator=self.integrator,
            reset=self.reset,
            threshold_test=self.threshold_test,
            cuba_current=self.cuba_current,
            initial_v=self.initial_v,
            surrogate=self.surrogate,
            detach_reset=self.detach_reset,
        )


PROFILES: dict[str, Semantics] = {
    "nir": Semantics(),
    "exact": Semantics(integrator="exact", name="exact"),
}


def resolve_semantics(semantics: Any = None, surrogate: Any = None) -> Semantics:
    """Turn ``None``, a profile name, a mapping of fields or a :class:`Semantics` into one.

    >>> resolve_semantics("exact").integrator
    'exact'
    >>> resolve_semantics({"reset": "subtract"}).reset
    'subtract'
    """
    if semantics is None:
        sem = PROFILES["nir"]
    elif isinstance(semantics, Semantics):
        sem = semantics
    elif isinstance(semantics, str):
        if semantics not in PROFILES:
            raise SemanticsError(
                f"unknown semantics profile {semantics!r}; known profiles: "
                f"{', '.join(sorted(PROFILES))}"
            )
        sem = PROFILES[semantics]
    elif isinstance(semantics, Mapping):
        sem = PROFILES["nir"].replace(**semantics)
    else:
        raise SemanticsError(
            f"semantics must be a profile name, a mapping of Semantics fields or a "
            f"nirjax.Semantics, got {type(semantics).__name__}"
        )
    if surrogate is not None:
        sem = sem.replace(surrogate=surrogate if isinstance(surrogate, Surrogate) else Surrogate(surrogate))
    return sem


def check_dt(dt: Any) -> float:
    """Validate the time step; NIR graphs carry none, so it must be given."""
    if dt is None:
        raise SemanticsError(
            "dt is required: a NIR graph is continuous-time and carries no time step. Pass "
            "dt in the graph's time unit, e.g. nirjax.compile(graph, dt=1e-4) for the NIR "
            "paper graphs (time constants in seconds, 0.1 ms steps)."
        )
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise SemanticsError(f"dt must be a positive number, got {dt!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise SemanticsError(f"dt must be a positive finite number, got {dt!r}")
    return value
