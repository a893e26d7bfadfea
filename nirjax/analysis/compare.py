"""Run one graph under several platform profiles and find where their spikes diverge.

For a user moving a graph from one platform to another::

    report = nirjax.compare("model.nir", xs, dt=1e-4, profiles=["snntorch", "norse", "lava"])
    str(report)                           # a table: spikes, agreement, first divergence
    report.divergence("lava")             # Divergence(step=0, node='fc1', ...) or None

Every profile simulates the same inputs; the outputs of every spiking node (IF, LIF, CubaLIF,
Threshold) and of the graph's Output nodes are recorded and compared with those of the
reference profile (the first one). The *first divergence* is the earliest step at which any
of these values differs; at that step the node reported is the first differing one in the
reference program's evaluation order, i.e. where the difference entered the graph. (A
profile that adds latency, such as ``lava`` or ``spyx``, diverges at the first step a spike
crosses a delayed edge.)

The same call compares a float model with its lowering to a chip (:func:`nirjax.lower`)::

    hw = nirjax.lower(model, "xylo-audio2")
    report = nirjax.compare(model, hw, xs)   # float vs chip on the same integer input
    report.agreement(hw.target)              # fraction of identical spike values
    report.divergence(hw.target)             # first (step, node, sample, neuron) that differs

Both run ``xs`` (integer event counts); the float model's Output nodes and every graph node
the chip maps (``hw.record_names``) that spikes in the float graph are compared, each
shifted by the chip's known latency at that node (``hw.latency``, e.g. Xylo's readout lags
one step): value ``t`` of the float graph is compared with value ``t + latency`` of the
chip, over the steps both cover. Steps in the report are the float graph's.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from ..compiler import compile_graph
from ..errors import InputError, SemanticsError
from ..io import read
from ..semantics import Semantics, resolve_semantics

__all__ = ["compare", "Comparison", "Divergence", "HardwareComparison"]


@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where a profile's spikes first differ from the reference's.

    Attributes:
        step: the time step (0-based).
        node: the node whose output differs first (evaluation order of the reference).
        sample: the batch index of the first differing value at that step and node.
        index: the (unbatched) index of the neuron within the node.
        reference_value / value: the two outputs there.
        nodes: every recorded node that differs at that step, in evaluation order.
    """

    step: int
    node: str
    sample: int
    index: tuple
    reference_value: float
    value: float
    nodes: tuple

    def __str__(self):
        idx = ", ".join(map(str, self.index))
        return (f"step {self.step}, node {self.node!r} (sample {self.sample}, neuron [{idx}]: "
                f"{self.reference_value:g} vs {self.value:g})")


@dataclasses.dataclass
class Comparison:
    """The outputs of one graph under several profiles, and where they diverge.

    Attributes:
        profiles: profile names, the reference first.
        nodes: the compared nodes (spiking nodes and Output nodes), in evaluation order.
        values: profile -> node -> recorded output ``[T, B, *shape]`` (NumPy).
        outputs: profile -> the graph's output (as returned by the model).
        steps / batch: simulated time steps and batch size.
    """

    profiles: tuple
    nodes: tuple
    values: dict
    outputs: dict
    steps: int
    batch: int

    @property
    def reference(self) -> str:
        """The profile the others are compared with."""
        return self.profiles[0]

    def divergence(self, profile: str, other: str | None = None) -> Divergence | None:
        """First divergence of ``profile`` from ``other`` (default: the reference), or
        ``None`` when every compared value is identical."""
        other = self.reference if other is None else other
        for p in (profile, other):
            if p not in self.values:
                raise InputError(f"profile {p!r} was not compared; profiles: {list(self.profiles)}")
        first_step, differing = None, []
        for node in self.nodes:
            a, b = self.values[other][node], self.values[profile][node]
            diff = (a != b).reshape(a.shape[0], -1)
            steps = np.flatnonzero(diff.any(axis=1))
            if steps.size == 0:
                continue
            t = int(steps[0])
            if first_step is None or t < first_step:
                first_step, differing = t, [node]
            elif t == first_step:
                differing.append(node)
        if first_step is None:
            return None
        node = differing[0]
        a, b = self.values[other][node][first_step], self.values[profile][node][first_step]
        where = np.argwhere(a != b)[0]
        return Divergence(first_step, node, int(where[0]), tuple(int(i) for i in where[1:]),
                          float(a[tuple(where)]), float(b[tuple(where)]), tuple(differing))

    def agreement(self, profile: str, node: str | None = None, other: str | None = None) -> float:
        """Fraction of identical values between ``profile`` and ``other`` (default: the
        reference), over one node or (default) over all compared nodes."""
        other = self.reference if other is None else other
        nodes = self.nodes if node is None else (node,)
        same = total = 0
        for n in nodes:
            a, b = self.values[other][n], self.values[profile][n]
            same += int(np.sum(a == b))
            total += a.size
        return same / total if total else 1.0

    def spike_count(self, profile: str, node: str | None = None) -> float:
        """Total output spikes of ``profile`` at ``node`` (default: all Output nodes)."""
        if node is not None:
            return float(np.sum(self.values[profile][node]))
        return float(sum(np.sum(v) for v in _as_dict(self.outputs[profile]).values()))

    def table(self) -> str:
        """The report as a text table (also ``str(comparison)``)."""
        head = (f"{len(self.profiles)} profiles on {self.steps} steps x {self.batch} samples; "
                f"reference {self.reference!r}; compared nodes: {', '.join(self.nodes)}")
        rows = [("profile", "output spikes", "identical", "first divergence")]
        for p in self.profiles:
            if p == self.reference:
                rows.append((p, f"{self.spike_count(p):g}", "-", "(reference)"))
                continue
            d = self.divergence(p)
            rows.append((p, f"{self.spike_count(p):g}", f"{100 * self.agreement(p):.2f}%",
                         "none" if d is None else str(d)))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [head, ""]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _as_dict(value):
    return value if isinstance(value, Mapping) else {"output": value}


def _profile_name(sem: Semantics, given: Any, taken: set) -> str:
    name = given if isinstance(given, str) else sem.name
    base, k = name, 2
    while name in taken:
        name, k = f"{base}#{k}", k + 1
    return name


def compare(graph, xs, dt: Any = None, profiles: Sequence | Mapping = ("nir", "exact"), *,
            nodes: Sequence[str] | None = None, dtype=None, params=None) -> Comparison:
    """Simulate ``graph`` under several profiles and compare their spikes; or compare a float
    model with its lowering to a chip: ``compare(model, hw, xs)``.

    Args:
        graph: a ``nir.NIRGraph`` or a path to a ``.nir`` file (for ``compare(model, hw,
            xs)``: the float model, a :class:`~nirjax.CompiledGraph`, graph or path).
        xs: the inputs, as for :meth:`nirjax.CompiledGraph.run` (``[T, B, *shape]`` or a dict);
            or the :class:`~nirjax.Lowered` chip simulation (then the inputs come third).
        dt: the time step (see :func:`nirjax.compile`); with a Lowered second: the inputs
            (integer event counts in the chip's input range).
        profiles: profile names, :class:`~nirjax.Semantics` values, or a mapping of report
            names to either; the first is the reference. At least two.
        nodes: names of the nodes to compare (default: every spiking node and the Output
            nodes present in every profile's program).
        dtype: passed to :func:`nirjax.compile`.
        params: with ``compare(model, hw, xs)`` only: the float model's parameters to run
            (default ``model.params``), e.g. fine-tuned ones.

    Returns:
        A :class:`Comparison` (a :class:`HardwareComparison` for ``compare(model, hw, xs)``);
        ``str()`` of it is a table.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Affine(np.eye(1), np.zeros(1)),
    ...     nir.LIF(tau=np.array([2.5e-3]), r=np.ones(1), v_leak=np.zeros(1),
    ...             v_threshold=np.array([0.1])))
    >>> x = np.zeros((100, 1, 1)); x[::5] = 1
    >>> c = nirjax.compare(g, x, dt=1e-4, profiles=["norse", "lava"])
    >>> c.divergence("lava").node, c.divergence("norse", "norse") is None
    ('lif', True)
    """
    from ..lowering import Lowered

    if isinstance(xs, Lowered):
        return compare_hardware(graph, xs, dt, nodes=nodes, dtype=dtype, params=params)
    if params is not None:
        raise SemanticsError("compare: params= applies to compare(model, hw, xs) only")
    if dt is None:
        raise SemanticsError("compare(graph, xs, dt, profiles): dt is required")
    if isinstance(graph, (str, pathlib.Path)):
        graph = read(graph)
    items = list(profiles.items()) if isinstance(profiles, Mapping) else [(p, p) for p in profiles]
    if len(items) < 2:
        raise SemanticsError(f"compare needs at least two profiles, got {len(items)}")
    models, taken = {}, set()
    for given, value in items:
        sem = resolve_semantics(value)
        name = _profile_name(sem, given, taken)
        taken.add(name)
        models[name] = compile_graph(graph, dt=dt, semantics=sem, dtype=dtype)
    first = next(iter(models.values()))
    common = [n for n in first.program.nodes
              if all(_has(m, n.name) for m in models.values())]
    if nodes is None:
        chosen = [n.name for n in common if n.rule.spiking or n.role == "output"]
        if not chosen:
            raise InputError("the graph has no spiking or Output node to compare")
    else:
        known = {n.name for n in common}
        for n in nodes:
            if n not in known:
                raise InputError(f"node {n!r} is not in every profile's program; common nodes: "
                                 f"{', '.join(sorted(known))}")
        chosen = [n.name for n in common if n.name in set(nodes)]
    values, outputs, steps, batch = {}, {}, None, None
    for name, model in models.items():
        ys, _, rec = model.run(model.params, xs, None, record=chosen)
        values[name] = {n: np.asarray(rec[n]) for n in chosen}
        outputs[name] = ys
        steps, batch = values[name][chosen[0]].shape[:2] if chosen else (0, 0)
    return Comparison(tuple(models), tuple(chosen), values, outputs, steps, batch)


@dataclasses.dataclass
class HardwareComparison(Comparison):
    """A float model against its lowering to a chip (see :func:`compare`).

    ``profiles`` is ``("float", <target>)``; ``values`` hold each compared node's outputs
    aligned by the chip's latency (``latency``: node -> steps), so the arrays of a node with
    latency ``L`` cover the float graph's steps ``0 .. T-L-1``.

    Attributes:
        latency: node -> steps by which the chip lags the float graph there.
        outputs_compared: the compared nodes that are the graph's Output nodes.
    """

    latency: dict = dataclasses.field(default_factory=dict)
    outputs_compared: tuple = ()

    @property
    def target(self) -> str:
        """The chip target's name."""
        return self.profiles[1]

    def output_agreement(self) -> float:
        """Fraction of identical output values (spike counts), float vs chip."""
        same = total = 0
        for n in self.outputs_compared:
            a, b = self.values["float"][n], self.values[self.target][n]
            same += int(np.sum(a == b))
            total += a.size
        return same / total if total else 1.0

    def table(self) -> str:
        """The report as text: agreement per compared node and the first divergence."""
        lines = [f"float model vs {self.target} on {self.steps} steps x {self.batch} samples "
                 f"(values at step t of the float graph vs t + latency on the chip)"]
        width = max(len(n) for n in self.nodes) if self.nodes else 4
        for n in self.nodes:
            a = self.values["float"][n]
            lat = self.latency.get(n, 0)
            lines.append(f"  {n:<{width}}  identical {100 * self.agreement(self.target, n):6.2f}%"
                         f"  spikes float {float(np.sum(a)):g} / chip "
                         f"{float(np.sum(self.values[self.target][n])):g}"
                         + (f"  (latency {lat})" if lat else ""))
        if self.outputs_compared:
            lines.append(f"output spikes identical: {100 * self.output_agreement():.2f}%")
        d = self.divergence(self.target)
        lines.append("first divergence: " + ("none" if d is None else str(d)))
        return "\n".join(lines)


def compare_hardware(model, hw, xs, *, nodes: Sequence[str] | None = None,
                     dtype=None, params=None) -> HardwareComparison:
    """A float model and its chip simulation on the same inputs (``compare(model, hw, xs)``).

    Args:
        model: a :class:`~nirjax.CompiledGraph` (run with its ``params``), or a graph or
            path (compiled at ``hw.dt`` under the NIR semantics).
        hw: the :class:`~nirjax.Lowered` simulation.
        xs: integer event counts ``[T, B, *input]`` (a dict for several inputs).
        nodes: graph node names to compare (default: the Output nodes and every spiking
            node the chip maps).
        dtype: the float model's dtype when it is compiled here.
        params: the float model's parameters (default ``model.params``).

    Returns:
        A :class:`HardwareComparison`.
    """
    from ..compiler import CompiledGraph

    if xs is None:
        raise InputError("compare(model, hw, xs): the inputs xs are missing")
    if not isinstance(model, CompiledGraph):
        if isinstance(model, (str, pathlib.Path)):
            model = read(model)
        model = compile_graph(model, dt=hw.dt, dtype=dtype)
    elif not np.isclose(model.program.dt, hw.dt, rtol=1e-12):
        raise InputError(f"the model runs at dt={model.program.dt:g}, the chip at dt={hw.dt:g}")
    outputs = tuple(model.program.outputs)
    mapped = set(hw.record_names) | {n.name for n in hw.program.nodes}
    if nodes is None:
        chosen = [n.name for n in model.program.nodes
                  if n.name in hw.record_names and n.rule.spiking]
        chosen += [o for o in outputs if o in mapped and o not in chosen]
        if not chosen:
            raise InputError(f"no spiking or Output node of the model is mapped on {hw.target}")
    else:
        chosen = list(nodes)
        for n in chosen:
            if n not in mapped:
                raise InputError(f"node {n!r} is not mapped on {hw.target}; mapped nodes: "
                                 f"{', '.join(sorted(hw.record_names))}")
            model.program.node(n)  # a GraphError naming the model's nodes if unknown
    ys_hw, rec_hw = hw.run(xs, record=chosen)
    floats = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), xs)
    ys_f, _, rec_f = model.run(model.params if params is None else params, floats, None,
                               record=chosen)
    latency = {n: int(hw.latency.get(n, 0)) for n in chosen}
    values = {"float": {}, hw.target: {}}
    steps = batch = 0
    for n in chosen:
        a, b = np.asarray(rec_f[n]), np.asarray(rec_hw[n])
        lat = latency[n]
        length = a.shape[0] - lat
        if a.shape[:2] != b.shape[:2] or a.shape[2:] != b.shape[2:]:
            raise InputError(f"node {n!r}: the float model gives shape {a.shape}, the chip "
                             f"{b.shape}")
        values["float"][n] = a[:length]
        values[hw.target][n] = b[lat:lat + length]
        steps, batch = a.shape[:2]
    return HardwareComparison(("float", hw.target), tuple(chosen), values,
                              {"float": ys_f, hw.target: ys_hw}, steps, batch, latency,
                              tuple(n for n in chosen if n in outputs))


def _has(model, name):
    try:
        model.program.node(name)
        return True
    except Exception:
        return False
