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
  previous step's output (see :mod:`nirjax.compiler.compiled`);
* surrogate gradient: fast sigmoid (SuperSpike), scale 10 (backward pass only).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from ..errors import SemanticsError
from ..kernels.neurons import IGNORABLE
from ..kernels.surrogate import SURROGATES, Surrogate
from . import neuron as _neuron

__all__ = ["Semantics", "resolve_semantics", "PROFILES", "PROFILE_DOCS", "check_dt"]

_CHOICES = {
    **_neuron.CHOICES,  # the neuron fields: values defined with the pieces they choose
    "latency": ("none", "weights", "synapse"),
    "cycle_break": ("dfs", "neuron", "none"),
    "recurrent_bias": ("keep", "drop"),
    "flatten_order": ("chw", "hwc"),
}

# fields that change how the graph is evaluated (not one node's kernel): not overridable per node
GRAPH_FIELDS = ("latency", "cycle_break", "recurrent_bias", "recurrent_overrides", "arithmetic",
                "imports")
#: Values ``Semantics.ignore`` accepts: neuron parameters (``r`` -> 1, ``v_leak``, ``v_reset``
#: -> 0, ``w_in`` -> 1) and the layer fields a platform's importer drops (``bias`` of an
#: Affine/Conv -> 0, ``padding`` of a Conv/pooling -> 0; applied by the graph pass).
IGNORABLE_FIELDS = IGNORABLE + ("bias", "padding")


@dataclasses.dataclass(frozen=True)
class Semantics:
    """How a NIR graph's continuous-time primitives become a discrete simulation.

    Every field defaults to the NIR 1.0.8 specification with forward Euler (profile
    ``"nir"``). The other profiles (``nirjax.PROFILES``; documented one by one in
    :mod:`nirjax.semantics.profiles`) set the fields below to reproduce a platform.

    Args:
        integrator: ``'euler'`` (forward Euler) or ``'exact'`` (exact exponential
            integration with the input held constant over each step).
        reset: ``'v_reset'`` (set ``v = v_reset`` on a spike), ``'subtract'``
            (``v -= v_threshold``) or ``'none'``.
        threshold_test: ``'>'`` (spike when ``v > v_threshold``, the spec) or ``'>='``.
        cuba_current: ``'old'`` or ``'new'``: which synaptic current the membrane of a
            CubaLI/CubaLIF integrates (the previous step's or this step's).
        initial_v: ``'rest'`` (``v = v_leak`` at t = 0) or ``'zero'``.
        surrogate: surrogate derivative of the spike function (backward pass only).
        detach_reset: stop gradients through the reset term.
        name: the profile name, for messages.
        overrides: per-node changes, set with :meth:`override`.
        form: arithmetic form of the membrane update: ``'nir'`` (the spec's
            ``v + dt/tau*((v_leak - v) + R*x)``), ``'norse'`` (``v + dt*(1/tau)*((R*x +
            v_leak) - v)``) or ``'decay'`` (``a*v + g*x + c``); the forms are equal in exact
            arithmetic for the same gains but round differently in float32.
        input_gain: form ``'decay'`` only: ``'nir'`` (the input is scaled by ``dt/tau*R`` as
            the spec's Euler update does), ``'unit'`` (added as is) or ``'threshold'`` (the
            spec's update in units of ``v/(R*dt/tau)``, so the threshold is divided instead).
        synapse: form ``'decay'``, CubaLI(F): ``'decay_add'`` (``i = b*i + x``) or
            ``'add_decay'`` (``i = b*(i + x)``).
        ignore: parameters the platform drops, replaced by neutral values: any of ``'r'``
            (-> 1), ``'v_leak'`` (-> 0), ``'v_reset'`` (-> 0), ``'w_in'`` (-> 1), and for
            layers (usually set per type): ``'bias'`` (an Affine/Conv bias -> 0) and
            ``'padding'`` (a Conv/pooling padding -> 0, which changes the output shape);
            compile warns when a dropped bias or padding is nonzero.
        clip_decay: clip decay factors to ``[0, 1]`` (form ``'decay'``).
        fixed_decay: a decay factor per step used instead of the one from ``tau``.
        fire: ``'after'`` (spike test on the freshly integrated membrane) or ``'before'``
            (the output of a step is the test of the membrane carried from the previous step:
            one step of latency per neuron, no same-step dependence on the input).
        reset_at: with ``fire='before'``: reset the ``'integrated'`` value, the ``'carried'``
            value before integrating, or ``'both'``.
        reset_flag: ``'spike'`` (reset by this step's spike) or ``'previous_v'`` (snnTorch:
            a reset flag from the carried membrane, see :mod:`nirjax.kernels.neurons`).
        spikes: ``'binary'`` or ``'multi'`` (``floor(v/theta)`` spikes per step).
        spike_amplitude: ``'unit'`` (a spike is 1 for one step) or ``'dirac'`` (``1/dt``).
        v_min: ``'none'``, ``'-threshold'`` (membrane floor ``-v_threshold``) or ``'zero'``
            (floor 0, Nengo's ``min_voltage``), applied after the reset.
        rate: form ``'decay'``: how ``dt/tau`` is rounded inside a decay: ``'divide'``
            (``exp(-dt/tau)``) or ``'reciprocal'`` (``exp((1/tau)*(-dt))``, PyTorch's
            ``-dt / tensor``).
        max_spikes: ``None`` or a positive number: with ``spikes='multi'``, at most this
            many spikes per neuron and step (Rockpool's ``max_spikes_per_dt``).
        latency: ``'none'``, ``'weights'``: every edge out of an Affine, Linear, Conv1d or
            Conv2d gets a one-step ``Delay`` node named ``"<src>-><dst>"`` (one step per
            weight layer; zeros at t = 0), or ``'synapse'``: every edge into a CubaLIF or an
            LI gets one (a synapse on the connection that delivers last step's value, as
            Nengo's ``Lowpass`` does).
        cycle_break: ``'dfs'`` (the edge that closes a cycle in nirjax's search order is
            delayed), ``'neuron'`` (the edges out of a spiking neuron into its own cycle get
            a one-step ``Delay`` node, so a recurrent weight acts this step, bias included, on
            last step's spikes) or ``'none'`` (no edge is cut: a cycle that no delay breaks
            is a :class:`~nirjax.SemanticsError`, as the platform refuses it).
        recurrent_bias: ``'keep'`` or ``'drop'``: drop the bias of an Affine inside a cycle
            through a spiking neuron (simulated as a Linear; warns when the bias is nonzero).
        flatten_order: ``'chw'`` (NIR) or ``'hwc'`` (flatten a (C, H, W) tensor in
            channels-last order, as a channels-last framework does).
        recurrent_overrides: ``(field, value)`` pairs applied (as node overrides) to every
            spiking neuron inside a cycle, for platforms whose recurrent cells differ.
        type_overrides: per-NIR-type changes, set with :meth:`override_type`.
        arithmetic: the rule table the graph is simulated with (:mod:`nirjax.rules`):
            ``'float'`` (every NIR type, in the compile's float dtype) or an integer
            (hardware) table such as ``'loihi'`` (Lava's bit-accurate fixed-point LIF, the
            ``lava_fixed`` profile). A whole-graph choice.
        imports: the NIR types the platform's importer converts (empty: no check); a graph
            with other types still runs under these semantics, and compile warns naming
            them. A whole-graph choice.

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
    form: str = "nir"
    input_gain: str = "nir"
    synapse: str = "decay_add"
    ignore: tuple = ()
    clip_decay: bool = False
    fixed_decay: Any = None
    fire: str = "after"
    reset_at: str = "integrated"
    reset_flag: str = "spike"
    spikes: str = "binary"
    spike_amplitude: str = "unit"
    v_min: str = "none"
    latency: str = "none"
    cycle_break: str = "dfs"
    recurrent_bias: str = "keep"
    flatten_order: str = "chw"
    recurrent_overrides: tuple = ()
    type_overrides: tuple = ()
    arithmetic: str = "float"
    rate: str = "divide"
    max_spikes: Any = None
    imports: tuple = ()

    def __post_init__(self):
        if self.form == "lava_fixed":
            raise SemanticsError(
                "Semantics.form='lava_fixed' is gone: Lava's bit-accurate LIF is the LIF rule of "
                "the integer 'loihi' rule table; use Semantics(arithmetic='loihi') or the "
                "'lava_fixed' profile")
        if not (isinstance(self.arithmetic, str) and self.arithmetic):
            raise SemanticsError(
                f"Semantics.arithmetic must be the name of a rule table such as 'float' or "
                f"'loihi', got {self.arithmetic!r}")
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
        ignore = (self.ignore,) if isinstance(self.ignore, str) else tuple(self.ignore)
        bad = [f for f in ignore if f not in IGNORABLE_FIELDS]
        if bad:
            raise SemanticsError(
                f"Semantics.ignore={self.ignore!r}: {bad[0]!r} cannot be ignored; expected "
                f"names among {', '.join(map(repr, IGNORABLE_FIELDS))}"
            )
        object.__setattr__(self, "ignore", tuple(sorted(set(ignore))))
        if self.max_spikes is not None:
            try:
                cap = float(self.max_spikes)
            except (TypeError, ValueError):
                cap = math.nan
            if isinstance(self.max_spikes, bool) or not (math.isfinite(cap) and cap >= 1):
                raise SemanticsError(
                    f"Semantics.max_spikes must be None or a number >= 1, got "
                    f"{self.max_spikes!r}")
            object.__setattr__(self, "max_spikes", cap)
        imports = (self.imports,) if isinstance(self.imports, str) else self.imports
        if not (isinstance(imports, (tuple, list)) and all(isinstance(t, str) for t in imports)):
            raise SemanticsError(
                f"Semantics.imports must be NIR type names such as 'LIF', got {self.imports!r}")
        object.__setattr__(self, "imports", tuple(imports))
        if self.fixed_decay is not None:
            try:
                value = float(self.fixed_decay)
            except (TypeError, ValueError):
                value = math.nan
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise SemanticsError(
                    f"Semantics.fixed_decay must be None or a number in [0, 1], got "
                    f"{self.fixed_decay!r}"
                )
            object.__setattr__(self, "fixed_decay", value)
        if isinstance(self.recurrent_overrides, Mapping):
            object.__setattr__(self, "recurrent_overrides",
                               tuple(sorted(self.recurrent_overrides.items())))
        if self.recurrent_overrides:
            changes = dict(self.recurrent_overrides)
            graph_level = sorted(set(changes) & set(GRAPH_FIELDS + _INTERNAL))
            if graph_level:
                raise SemanticsError(
                    f"Semantics.recurrent_overrides: field(s) {graph_level} apply to the whole "
                    f"graph and cannot be set for recurrent neurons only")
            dataclasses.replace(self, recurrent_overrides=(), **changes)  # validates
        self._check_combination()

    def _check_combination(self):
        """Reject combinations the neuron pieces do not define (see
        :func:`nirjax.semantics.neuron.check`)."""
        _neuron.check(self)

    def replace(self, **changes) -> "Semantics":
        """A copy with the given fields changed (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SemanticsError(
                f"unknown Semantics field(s) {sorted(unknown)}; valid fields: "
                f"{[f.name for f in dataclasses.fields(self) if f.name not in _INTERNAL]}"
            )
        return dataclasses.replace(self, **changes)

    def _check_local(self, changes, what):
        graph_level = sorted(set(changes) & set(GRAPH_FIELDS + _INTERNAL))
        if graph_level:
            raise SemanticsError(
                f"{what}: field(s) {graph_level} apply to the whole graph and cannot be "
                f"overridden for one node or type"
            )
        self.replace(**changes)  # validate now, not at compile time

    def override(self, node: str, **changes) -> "Semantics":
        """A copy in which node ``node`` uses ``changes`` on top of these semantics.

        ``node`` is the node's name in the compiled (flattened) graph, e.g. ``"lif1.lif"``.
        """
        self._check_local(changes, f"override of node {node!r}")
        kept = tuple((n, c) for n, c in self.overrides if n != node)
        merged = dict(dict(self.overrides).get(node, ()))
        merged.update(changes)
        return dataclasses.replace(self, overrides=kept + ((node, tuple(sorted(merged.items()))),))

    def override_type(self, type_name: str, **changes) -> "Semantics":
        """A copy in which every node of NIR type ``type_name`` (e.g. ``"IF"``) uses
        ``changes`` on top of these semantics (per-node overrides still come last).

        >>> s = Semantics().override_type("IF", input_gain="unit", form="decay")
        >>> s.for_node("if1", "IF").form, s.for_node("lif1", "LIF").form
        ('decay', 'nir')
        """
        self._check_local(changes, f"override of type {type_name!r}")
        kept = tuple((t, c) for t, c in self.type_overrides if t != type_name)
        merged = dict(dict(self.type_overrides).get(type_name, ()))
        merged.update(changes)
        return dataclasses.replace(
            self, type_overrides=kept + ((type_name, tuple(sorted(merged.items()))),))

    def for_node(self, node: str, type_name: str | None = None) -> "Semantics":
        """The semantics node ``node`` (of NIR type ``type_name``) is simulated under:
        type overrides first, then node overrides."""
        changes = dict(dict(self.type_overrides).get(type_name, ())) if type_name else {}
        changes.update(dict(dict(self.overrides).get(node, ())))
        return dataclasses.replace(self, overrides=(), type_overrides=(), **changes)

    def describe(self) -> str:
        """A readable listing of every field that differs from the NIR default, and the
        profile's documentation when this is a named profile."""
        base = Semantics()
        lines = [f"Semantics {self.name!r}:"]
        for f in dataclasses.fields(self):
            if f.name in _INTERNAL:
                continue
            value = getattr(self, f.name)
            if value != getattr(base, f.name):
                lines.append(f"  {f.name} = {value!r}")
        for type_name, changes in self.type_overrides:
            lines.append(f"  for {type_name}: " + ", ".join(f"{k}={v!r}" for k, v in changes))
        for node, changes in self.overrides:
            lines.append(f"  node {node!r}: " + ", ".join(f"{k}={v!r}" for k, v in changes))
        if len(lines) == 1:
            lines.append("  (the NIR 1.0.8 specification, forward Euler)")
        doc = PROFILE_DOCS.get(self.name)
        if doc:
            lines.append("")
            lines.append(doc)
        return "\n".join(lines)


_INTERNAL = ("name", "overrides", "type_overrides")

PROFILES: dict[str, Semantics] = {
    "nir": Semantics(),
    "exact": Semantics(integrator="exact", name="exact"),
}
# profile name -> its documentation (filled in by nirjax.semantics.profiles, which also adds
# the platform profiles to PROFILES)
PROFILE_DOCS: dict[str, str] = {}


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
    arr = np.asarray(dt) if not isinstance(dt, (str, bytes)) else None
    if (arr is None or isinstance(dt, (bool, np.bool_)) or arr.shape != ()
            or arr.dtype.kind not in "iuf"):
        raise SemanticsError(
            f"dt must be a positive number (an int or float), got {type(dt).__name__} {dt!r}")
    value = float(arr)
    if not (math.isfinite(value) and value > 0):
        raise SemanticsError(f"dt must be a positive finite number, got {dt!r}")
    return value
