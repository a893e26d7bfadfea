"""Lowering a NIR graph to a chip: the target registry, :func:`lower` and :class:`Lowered`.

A *target* (``"xylo-audio2"``, ``"speck"``, ...) is a function that rewrites the float
:class:`~nirjax.compiler.Program` of a graph into an integer Program bound to the chip's
rule table (:mod:`nirjax.rules`), after checking every design rule and quantizing::

    hw = nirjax.lower("braille.nir", "xylo-audio2", dt=1e-4)
    text = hw.report()            # mapping, resources used vs available, every rounding
    ys = hw(xs)                   # the chip's integer simulation (the same compiled scan)
    ys, rec = hw.run(xs, record=["lif1"])
    hw.export("braille.npz")      # the vendor's file
    g = hw.to_nir()               # the quantized network as a NIR graph

The stages, each a separate pass over the one Program (so a user can stop after any):

1. :func:`lower` reads the graph (a path, a ``nir.NIRGraph`` or a compiled model) and
   builds its float Program with :func:`~nirjax.compiler.build_program` (flattened,
   validated, shapes inferred, nodes ordered). A compiled model brings its own Program,
   ``dt`` and semantics; ``params=`` overrides its parameters (e.g. fine-tuned ones).
2. The target's lowering function ``lower_fn(program, params, options) ->``
   :class:`LoweringResult` checks the chip's design rules (raising ONE
   :class:`~nirjax.LoweringError` listing every violation: node, rule, chip limit, graph
   value), quantizes, and builds the integer Program (:func:`rebind_program` when nodes map
   one to one, :func:`make_program` when the chip fuses nodes). It returns approximations
   as ``warnings``; :func:`lower` issues each as a :class:`~nirjax.errors.LoweringWarning`.
3. :class:`Lowered` runs the integer Program with :class:`~nirjax.compiler.CompiledGraph`
   (jitted, batched, one scan: the same machinery as the float simulation) and validates
   inputs against the chip's input range.

Registering a target (:func:`register_target`) binds a public name to its lowering
function; :data:`TARGETS` is the read-only view of the registry. The public target names
are listed in :data:`TARGET_NAMES`; a name that is not registered gets a LoweringError
naming the registered ones. Each target module registers its targets when imported, and
:mod:`nirjax.lowering` imports every target module, so :data:`TARGETS` is complete once
``nirjax`` is imported.

The ``params`` a lowering function receives map every node with parameters to a NamedTuple
of NumPy float64 arrays whose fields are the NIR field names (``tau_mem``, ``weight``,
...): exactly ``program.node(name).params`` unless ``params=`` overrode them.

Resources (:attr:`LoweringResult.resources`) are a dict ``{node or "total": {resource:
{"used": int, "limit": int | None}}}`` with resources named ``"neurons"``,
``"synapses"``/``"weights"``, ``"cores"``, ``"memory words"``, ... (``None``: the limit is
unknown; :func:`resource` builds one entry).
"""

from __future__ import annotations

import dataclasses
import pathlib
import types
import warnings
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import nir
import numpy as np

from .. import graph as graph_mod
from ..compiler import CompiledGraph, IREdge, IRNode, Program, build_program, check_record
from ..errors import InputError, LoweringError, LoweringWarning, NirjaxError
from ..io import read
from ..rules import RuleTable, get_table
from ..semantics import check_dt, resolve_semantics
from .violations import MappingRecord, QuantizationRecord, Violation

__all__ = ["TARGET_NAMES", "TARGETS", "Target", "register_target", "get_target", "NodeSpec",
           "LoweringResult", "Lowered", "lower", "resource", "rebind_program", "make_program",
           "collapse_ports", "numpy_params"]

#: The public target names (issue 10's API); each is registered by its target's module.
TARGET_NAMES = ("xylo-audio2", "xylo-audio3", "xylo-imu", "loihi2", "speck", "spinnaker2")


@dataclasses.dataclass(frozen=True)
class Target:
    """A registered lowering target.

    Attributes:
        name: the public name (``"xylo-audio2"``, ...).
        lower_fn: ``lower_fn(program, params, options) -> LoweringResult``.
        family: the chip family (``"xylo"``, ``"speck"``, ``"loihi"``, ``"spinnaker"``).
        doc: one line saying what the target is and what backs its simulation.
        options: option name -> one line of documentation, the ``**options`` of
            :func:`lower` this target accepts (any other name is refused).
        fake_quant: ``fake_quant(program, options) -> transform`` (optional): a
            ``params -> params`` function putting the target's quantization in a float
            model's forward pass with straight-through gradients (what
            :func:`nirjax.train.hardware_aware` returns); ``None``: not available.
        semantics: ``semantics(graph) -> Semantics`` (optional): the float semantics whose
            discrete update is closest to the chip's for ``graph`` (a ``nir.NIRGraph`` or a
            path), e.g. to compile the model a user fine-tunes for the chip.
        default_dt: the ``dt`` :func:`lower` uses when none is given, for chips without
            time constants (Speck: a step is one bin of events); ``None``: ``dt`` is required.
    """

    name: str
    lower_fn: Callable
    family: str
    doc: str
    options: Mapping = dataclasses.field(default_factory=dict)
    fake_quant: Callable | None = None
    semantics: Any = None
    default_dt: float | None = None


_REGISTRY: dict[str, Target] = {}
#: Read-only view of the registered targets: name -> :class:`Target`.
TARGETS = types.MappingProxyType(_REGISTRY)


def register_target(name: str, lower_fn: Callable, *, family: str, doc: str,
                    options: Mapping | None = None, fake_quant: Callable | None = None,
                    semantics: Any = None, default_dt: float | None = None) -> Target:
    """Register (or replace) the target ``name``.

    Args:
        name: the public name.
        lower_fn: ``lower_fn(program, params, options) -> LoweringResult``: ``program`` is
            the graph's float :class:`~nirjax.compiler.Program`, ``params`` node name ->
            NamedTuple of NumPy float64 arrays (NIR field names), ``options`` the dict of
            ``**options`` given to :func:`lower` (already checked against ``options``).
        family: the chip family.
        doc: one line for listings and error messages.
        options: option name -> doc of the options the target accepts.
        fake_quant: see :class:`Target`.
        semantics: see :class:`Target`.
        default_dt: ``dt`` when :func:`lower` gets none (chips without time constants).

    Returns:
        The :class:`Target`.

    >>> t = register_target("doc-example", lambda p, params, o: None, family="test",
    ...                     doc="an example")
    >>> TARGETS["doc-example"].family
    'test'
    >>> _ = _REGISTRY.pop("doc-example")
    """
    if not isinstance(name, str) or not name:
        raise LoweringError(f"a target name must be a non-empty string, got {name!r}")
    if not callable(lower_fn):
        raise LoweringError(f"target {name!r}: lower_fn must be callable, got "
                            f"{type(lower_fn).__name__}")
    if fake_quant is not None and not callable(fake_quant):
        raise LoweringError(f"target {name!r}: fake_quant must be callable or None")
    target = Target(name, lower_fn, str(family), str(doc),
                    types.MappingProxyType(dict(options or {})), fake_quant, semantics,
                    None if default_dt is None else float(check_dt(default_dt)))
    _REGISTRY[name] = target
    return target


def get_target(name) -> Target:
    """The registered :class:`Target` called ``name``.

    Raises:
        LoweringError: ``name`` is not registered; the message names the registered targets
            (and says when ``name`` is a public target whose module is not installed).
    """
    if isinstance(name, Target):
        return name
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    known = ", ".join(repr(n) for n in _REGISTRY) or "none"
    if isinstance(name, str) and name in TARGET_NAMES:
        raise LoweringError(f"target {name!r} is not available in this installation (its "
                            f"lowering is not registered); registered targets: {known}")
    raise LoweringError(f"unknown target {name!r}; the registered targets are: {known}")


def resource(used, limit=None) -> dict:
    """One resource entry: ``{"used": used, "limit": limit}`` (``limit=None``: unknown).

    >>> resource(40, 1000)
    {'used': 40, 'limit': 1000}
    """
    return {"used": int(used) if isinstance(used, (int, np.integer)) else used,
            "limit": int(limit) if isinstance(limit, (int, np.integer)) else limit}


@dataclasses.dataclass
class LoweringResult:
    """What a target's lowering function returns.

    Attributes:
        program: the integer :class:`~nirjax.compiler.Program`, bound to the target's rule
            table, ready for :class:`~nirjax.compiler.CompiledGraph`.
        resources: ``{node or "total": {resource: {"used": ..., "limit": ...}}}`` (see
            :func:`resource`).
        quantization: one :class:`~nirjax.lowering.QuantizationRecord` per rounded quantity
            and node (weights, thresholds, time constants as dash / 12-bit decays, ...).
        mapping: one :class:`~nirjax.lowering.MappingRecord` per graph node (or lines of
            text).
        export: ``export(path)`` writes the vendor's file; ``None``: the target has none.
        to_nir: ``to_nir() -> nir.NIRGraph`` of the quantized network (integer values as
            floats); ``None``: not available.
        record_names: user node name -> ``(program node, index)`` for ``run(record=...)``:
            the graph node's values are those of the program node at ``index`` along the
            first axis after ``[T, B]`` (an int, a slice, an index array, or ``None`` for
            all). Program node names are recordable as they are.
        notes: sentences for the report (facts a user should know, e.g. the chip's latency).
        warnings: approximations, as :class:`~nirjax.lowering.Violation` records with
            ``severity="warning"`` or as strings; :func:`lower` issues each as a
            :class:`~nirjax.errors.LoweringWarning`.
        input_range: ``(lo, hi)``: the integer event counts per input element and step the
            chip takes (inputs outside it raise :class:`~nirjax.InputError`); ``None``: any
            integer.
        latency: graph node name -> steps by which the chip's values lag the float graph's
            (e.g. Xylo's readout: 1); :func:`nirjax.compare` aligns by it.
        options: :class:`~nirjax.compiler.CompiledGraph` options for the integer program.
        details: the target's own description (e.g. the Xylo ``XyloSpec``), or ``None``.
        check: ``check(xs, state)``, called by :meth:`Lowered.run` after every run with the
            validated inputs and the final :class:`~nirjax.compiler.GraphState`; it warns
            (or raises) when the run left the range in which the simulation is exact (e.g.
            Speck's float32 sums); ``None``: no check.
    """

    program: Program
    resources: dict = dataclasses.field(default_factory=dict)
    quantization: list = dataclasses.field(default_factory=list)
    mapping: list = dataclasses.field(default_factory=list)
    export: Callable | None = None
    to_nir: Callable | None = None
    record_names: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    input_range: tuple | None = None
    latency: dict = dataclasses.field(default_factory=dict)
    options: dict = dataclasses.field(default_factory=dict)
    details: Any = None
    check: Callable | None = None


def numpy_params(params: Mapping) -> dict:
    """Node name -> NamedTuple of NumPy float64 arrays (integers and bools kept as they are).

    >>> from nirjax.kernels.linear import LinearParams
    >>> numpy_params({"fc": LinearParams(weight=np.array([[1, 2]]))})["fc"].weight.dtype
    dtype('int64')
    """
    def conv(a):
        a = np.asarray(a)
        return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a

    out = {}
    for name, p in params.items():
        out[name] = None if p is None else jax.tree_util.tree_map(conv, p)
    return out


# ---------------------------------------------------------------------------- programs


def collapse_ports(program: Program) -> tuple[dict, list]:
    """The program's nodes without subgraph ports, and its edges through them.

    Returns:
        ``(nodes, edges)``: ``nodes`` name -> :class:`~nirjax.compiler.IRNode` in program
        order (Input, Output and op nodes; ports of nested graphs removed), ``edges`` the
        ``(src, dst)`` pairs between them, an edge through ports becoming one edge.
    """
    port = {n.name for n in program.nodes if n.role == "port"}
    succ: dict[str, list] = {}
    for e in program.edges:
        succ.setdefault(e.src, []).append(e.dst)

    def ends(n, seen=()):
        if n not in port:
            return [n]
        out = []
        for m in succ.get(n, []):
            if m not in seen:
                out += ends(m, seen + (n,))
        return out

    edges = []
    for e in program.edges:
        if e.src in port:
            continue
        for d in ends(e.dst):
            if (e.src, d) not in edges:
                edges.append((e.src, d))
    nodes = {n.name: n for n in program.nodes if n.name not in port}
    return nodes, edges


def rebind_program(program: Program, table, params: Mapping | None = None,
                   configs: Mapping | None = None) -> Program:
    """The same nodes and edges, bound to ``table``'s rules (one to one lowering).

    Args:
        program: the float Program.
        table: the integer :class:`~nirjax.rules.RuleTable` (or a registered table's name).
        params: node name -> the node's integer parameters (replacing the float ones).
        configs: node name -> static config; default: each node's float config.

    Raises:
        LoweringError: ``table`` has no rule for some node types (all named).
    """
    table = get_table(table)
    params = dict(params or {})
    configs = dict(configs or {})
    missing = table.missing({n.type_name for n in program.nodes})
    if missing:
        where = "; ".join(f"{t}: " + ", ".join(repr(n.name) for n in program.nodes
                                               if n.type_name == t) for t in missing)
        raise LoweringError(f"the {table.name!r} rule table has no rule for NIR type(s) "
                            f"{', '.join(missing)} ({where}); it supports "
                            f"{', '.join(sorted(table))}")
    nodes = []
    for n in program.nodes:
        rule = table[n.type_name]
        config = configs.get(n.name, n.config)
        nodes.append(dataclasses.replace(
            n, rule=rule, config=config, params=params.get(n.name, n.params),
            feedthrough=bool(rule.feedthrough(config))))
    return dataclasses.replace(program, nodes=tuple(nodes), table=table)


class NodeSpec(NamedTuple):
    """One node of a program built by :func:`make_program`.

    Attributes:
        name: unique name.
        type_name: the rule table key (a NIR type name).
        in_shape / out_shape: unbatched shapes.
        params: the node's (integer) parameters, or ``None``.
        config: static kernel options.
        role: ``'input'``, ``'output'`` or ``'op'``.
        source: the ``nir`` node it stands for (default: a graph node of the same name, else
            ``None``).
    """

    name: str
    type_name: str
    in_shape: tuple
    out_shape: tuple
    params: Any = None
    config: Any = None
    role: str = "op"
    source: Any = None


def make_program(source: Program, table, nodes: Sequence[NodeSpec], edges: Sequence,
                 inputs: Sequence[str] | None = None,
                 outputs: Sequence[str] | None = None) -> Program:
    """A new Program (e.g. fused chip populations) bound to ``table``.

    The nodes are ordered as :func:`~nirjax.compiler.build_program` orders them (cycle
    edges marked delayed). ``dt``, semantics and the source graph come from ``source``.

    Args:
        source: the float Program being lowered.
        table: the integer rule table (or its registered name).
        nodes: :class:`NodeSpec` per node.
        edges: ``(src, dst)`` pairs.
        inputs / outputs: Input / Output node names (default: the nodes with those roles).

    Raises:
        LoweringError: a node's type has no rule in ``table``, or an edge names an unknown
            node.
    """
    table = get_table(table)
    specs = {s.name: s for s in nodes}
    for s, d in edges:
        for n in (s, d):
            if n not in specs:
                raise LoweringError(f"make_program: edge ({s!r}, {d!r}) names {n!r}, which is "
                                    f"not a node; nodes: {', '.join(specs)}")
    missing = table.missing({s.type_name for s in nodes})
    if missing:
        raise LoweringError(f"the {table.name!r} rule table has no rule for NIR type(s) "
                            f"{', '.join(missing)}")
    originals = {n.name: n for n in source.nodes}
    built = {}
    for s in nodes:
        rule = table[s.type_name]
        orig = originals.get(s.name)
        src = s.source if s.source is not None else (orig.source if orig is not None else None)
        built[s.name] = IRNode(
            name=s.name, path=orig.path if orig is not None else (s.name,),
            type_name=s.type_name, role=s.role, in_shape=tuple(s.in_shape),
            out_shape=tuple(s.out_shape), rule=rule, config=s.config,
            semantics=orig.semantics if orig is not None else source.semantics,
            params=s.params, feedthrough=bool(rule.feedthrough(s.config)), source=src)
    inputs = tuple(inputs if inputs is not None else [s.name for s in nodes if s.role == "input"])
    outputs = tuple(outputs if outputs is not None
                    else [s.name for s in nodes if s.role == "output"])
    names = [s.name for s in nodes]
    edges = [tuple(e) for e in edges]
    ordering = graph_mod.order(names, edges, list(inputs), lambda n: built[n].feedthrough)
    return Program(
        nodes=tuple(built[n] for n in ordering.order),
        edges=tuple(IREdge(s, d, (s, d) in ordering.delayed) for s, d in edges),
        inputs=inputs, outputs=outputs, dt=source.dt, semantics=source.semantics,
        graph=source.graph, subgraphs=source.subgraphs, table=table)


# ---------------------------------------------------------------------------- Lowered


def _as_array(x, name):
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError):
            raise InputError(f"input {name!r}: expected a numeric array, got "
                             f"{type(x).__name__}") from None
    return x


class Lowered:
    """A graph lowered to a chip: its integer simulation, report, resources and vendor file.

    Build it with :func:`nirjax.lower`.

    Attributes:
        target: the target's name.
        family: the chip family.
        dt: the time step the graph was lowered at.
        program: the integer :class:`~nirjax.compiler.Program`.
        model: the :class:`~nirjax.compiler.CompiledGraph` running it (int32, jitted, one
            scan; ``model.params`` are the chip's integer parameters).
        resources: ``{node or "total": {resource: {"used", "limit"}}}``.
        quantization: the :class:`~nirjax.lowering.QuantizationRecord` list.
        mapping: the :class:`~nirjax.lowering.MappingRecord` list.
        record_names: graph node name -> ``(program node, index)``.
        latency: graph node name -> steps the chip lags the float graph there.
        input_range: the event counts per input element and step the chip takes.
        warnings: the approximations (also issued as LoweringWarning by :func:`lower`).
        notes: facts for the report.
        details: the target's own description (e.g. the Xylo ``XyloSpec``).
        source: the float Program that was lowered.
    """

    def __init__(self, target: Target, result: LoweringResult, source: Program,
                 options: Mapping | None = None):
        if not isinstance(result, LoweringResult):
            raise LoweringError(f"target {target.name!r}: its lowering function returned "
                                f"{type(result).__name__}, not a LoweringResult")
        if result.program.table.dtype is None:
            raise LoweringError(f"target {target.name!r}: the lowered program is bound to the "
                                f"{result.program.table.name!r} table, which fixes no dtype (a "
                                f"chip's table fixes its arithmetic: int32, or float32 where "
                                f"the chip's neurons compute in float, as SpiNNaker2's)")
        self._target = target
        self._result = result
        self.source = source
        self.options = dict(options or {})
        self.model = CompiledGraph(result.program, options=result.options)
        # the chip's parameters are fixed: compile them in as constants (XLA specializes the
        # step on them, measurably faster on CPU than passing them as arguments)
        consts = jax.tree_util.tree_map(np.asarray, self.model.params)

        def simulate(xs, record):
            if record:
                ys, state, rec = self.model.run(consts, xs, None, record=record)
                return ys, state, tuple(rec[r] for r in record)
            ys, state = self.model.run(consts, xs)
            return ys, state, ()

        self._simulate = jax.jit(simulate, static_argnames=("record",))

    # ------------------------------------------------------------------ description

    @property
    def target(self) -> str:
        """The target's name."""
        return self._target.name

    @property
    def family(self) -> str:
        """The chip family."""
        return self._target.family

    @property
    def dt(self) -> float:
        """The time step."""
        return self._result.program.dt

    @property
    def program(self) -> Program:
        """The integer program."""
        return self._result.program

    @property
    def params(self) -> dict:
        """The chip's integer parameters, program node name -> NamedTuple."""
        return self.model.params

    @property
    def resources(self) -> dict:
        """Resources used and available, per node and ``"total"``."""
        return self._result.resources

    @property
    def quantization(self) -> list:
        """Every rounding, one record per quantity and node."""
        return list(self._result.quantization)

    @property
    def mapping(self) -> list:
        """Where each graph node went."""
        return list(self._result.mapping)

    @property
    def record_names(self) -> dict:
        """Graph node name -> ``(program node, index)`` (see :meth:`run`)."""
        return dict(self._result.record_names)

    @property
    def latency(self) -> dict:
        """Graph node name -> steps by which the chip lags the float graph."""
        return dict(self._result.latency)

    @property
    def input_range(self):
        """``(lo, hi)`` event counts per input element and step, or ``None``."""
        return self._result.input_range

    @property
    def warnings(self) -> list:
        """The approximations (strings)."""
        return [str(w) for w in self._result.warnings]

    @property
    def notes(self) -> list:
        """Facts for the report."""
        return list(self._result.notes)

    @property
    def details(self):
        """The target's own description of the lowered network."""
        return self._result.details

    @property
    def input_names(self) -> tuple:
        """The Input nodes."""
        return self.model.input_names

    @property
    def output_names(self) -> tuple:
        """The Output nodes."""
        return self.model.output_names

    def __repr__(self):
        return (f"Lowered(target={self.target!r}, dt={self.dt:g}, inputs="
                f"{self.model.input_shapes}, outputs={self.model.output_shapes})")

    def report(self) -> str:
        """Mapping, resources used vs available, every rounding and its error, warnings.

        Returns:
            Text, one fact per line.
        """
        lines = [f"Lowered to {self.target} ({self._target.doc}); dt = {self.dt:g}",
                 f"integer simulation: rule table {self.program.table.name!r} "
                 f"({self.program.table.doc or self.program.table.dtype})"]
        if self.input_range is not None:
            lo, hi = self.input_range
            lines.append(f"input: integer event counts in [{lo}, {hi}] per element and step")
        lines.append("")
        lines.append("Mapping:")
        lines += [f"  {m}" for m in self.mapping] or ["  (none reported)"]
        lines.append("")
        lines.append("Resources (used / available):")
        rows = []
        for node, entries in self.resources.items():
            for name, entry in entries.items():
                limit = entry.get("limit")
                used = entry.get("used")
                frac = (f"  ({100 * used / limit:.1f}%)" if isinstance(limit, (int, float))
                        and limit and isinstance(used, (int, float)) else "")
                rows.append((node, name, f"{used} / {limit if limit is not None else '?'}{frac}"))
        if rows:
            w0 = max(len(r[0]) for r in rows)
            w1 = max(len(r[1]) for r in rows)
            lines += [f"  {a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
        else:
            lines.append("  (none reported)")
        lines.append("")
        lines.append("Quantization (scale: integer units per float unit; error in float units):")
        lines += [f"  {q}" for q in self.quantization] or ["  (nothing rounded)"]
        if self.latency:
            lines.append("")
            lines.append("Latency (steps the chip lags the float graph): " + ", ".join(
                f"{k}: {v}" for k, v in self.latency.items()))
        if self.notes:
            lines.append("")
            lines.append("Notes:")
            lines += [f"  - {n}" for n in self.notes]
        if self._result.warnings:
            lines.append("")
            lines.append("Warnings (approximations):")
            lines += [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)

    # ------------------------------------------------------------------ simulation

    def _check_inputs(self, xs):
        names = self.model.input_names
        if isinstance(xs, Mapping):
            items = dict(xs)
        elif len(names) == 1:
            items = {names[0]: xs}
        else:
            raise InputError(f"the lowered graph has {len(names)} inputs {list(names)}: pass a "
                             f"dict of arrays keyed by those names")
        out = {}
        for name, x in items.items():
            x = _as_array(x, name)
            if isinstance(x, jax.core.Tracer):
                out[name] = x
                continue
            a = np.asarray(x)
            if not (np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.bool_)):
                raise InputError(f"input {name!r}: expected integer event counts, got dtype "
                                 f"{a.dtype}")
            if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
                bad = ~(np.isfinite(a) & (a == np.round(a.real)))
                if bad.any():
                    where = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise InputError(
                        f"input {name!r}: {self.target} takes integer event counts; element "
                        f"{where} (step, sample, ...) is {a[where]!r}")
            if self.input_range is not None and a.size:
                lo, hi = self.input_range
                bad = (a < lo) | (a > hi)
                if bad.any():
                    where = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise InputError(
                        f"input {name!r}: {self.target} takes event counts in [{lo}, {hi}] per "
                        f"element and step; element {where} (step, sample, ...) is "
                        f"{a[where].item()!r} ({int(bad.sum())} elements out of range)")
            out[name] = a.astype(np.int64) if not np.issubdtype(a.dtype, np.integer) else a
        return out if isinstance(xs, Mapping) else out[names[0]]

    def _record_items(self, record) -> tuple[list, tuple]:
        """The user's record entries and the program-level entries they map to."""
        if record is None:
            return [], ()
        if isinstance(record, str) or (
                isinstance(record, tuple) and len(record) == 2
                and all(isinstance(r, str) for r in record)
                and record[1] not in self.record_names
                and record[1] not in {n.name for n in self.program.nodes}):
            record = [record]
        users, prog = [], []
        known = set(self.record_names) | {n.name for n in self.program.nodes}
        for item in record:
            if isinstance(item, (list, tuple)):
                if len(item) != 2:
                    raise InputError(f"record entry {item!r}: expected a node name or "
                                     f"(node, state field)")
                name, field = item
            else:
                name, field = item, None
            if name not in known:
                raise InputError(
                    f"record entry {item!r}: {name!r} is not recordable on {self.target}; "
                    f"recordable nodes: {', '.join(sorted(known))}")
            pnode = self.record_names.get(name, (name, None))[0]
            users.append((item if not isinstance(item, list) else tuple(item), name, field))
            prog.append(pnode if field is None else (pnode, field))
        items = check_record(self.program, tuple(dict.fromkeys(prog)), self.model.dtype)
        return users, items

    def run(self, xs, record=None):
        """Simulate the chip from its reset state.

        Args:
            xs: ``[T, B, *input_shape]`` integer event counts (a dict keyed by Input name
                when there are several inputs), within :attr:`input_range`.
            record: graph node names (their output, e.g. spike counts) and/or ``(node,
                state field)`` pairs (e.g. ``("lif1", "v")``) to record at every step; names
                of the integer program's nodes work too. See :attr:`record_names`.

        Returns:
            ``(ys, rec)``: the integer outputs ``[T, B, *output_shape]`` and ``rec`` mapping
            each record entry to its integer values ``[T, B, ...]`` (``{}`` without
            ``record``).

        Raises:
            InputError: non-integer or out-of-range inputs, or an unknown record entry.
        """
        xs = self._check_inputs(xs)
        users, items = self._record_items(record)
        xs = jax.tree_util.tree_map(lambda a: jnp.asarray(a, self.model.dtype), xs)
        ys, state, values = self._simulate(xs, items)
        if self._result.check is not None:
            self._result.check(xs, state)
        recs = dict(zip(items, values))
        rec = {}
        for item, name, field in users:
            pnode, index = self.record_names.get(name, (name, None))
            value = recs[pnode if field is None else (pnode, field)]
            if index is not None:
                idx = np.asarray(index) if not isinstance(index, (int, slice)) else index
                value = value[:, :, idx]
            rec[item] = value
        return ys, rec

    def __call__(self, xs):
        """The chip's integer outputs ``[T, B, *output_shape]`` for ``xs`` (see :meth:`run`)."""
        return self.run(xs)[0]

    # ------------------------------------------------------------------ files

    def export(self, path) -> None:
        """Write the vendor's file for the lowered network to ``path``.

        Raises:
            LoweringError: the target has no vendor file format.
        """
        if self._result.export is None:
            raise LoweringError(f"target {self.target!r} has no vendor file export")
        self._result.export(path)

    def to_nir(self) -> nir.NIRGraph:
        """The quantized network as a ``nir.NIRGraph`` (integer values stored as floats).

        Raises:
            LoweringError: the target cannot express its network in NIR.
        """
        if self._result.to_nir is None:
            raise LoweringError(f"target {self.target!r} cannot write its network as NIR")
        return self._result.to_nir()


# ---------------------------------------------------------------------------- lower


def _source_program(graph, dt, semantics, params):
    """The float Program, its params (NumPy float64) and dt, from any accepted ``graph``."""
    if isinstance(graph, CompiledGraph):
        program = graph.program
        if program.table.integer:
            raise LoweringError(f"the model computes in the {program.table.name!r} integer "
                                f"arithmetic; lower the float model (or its graph) instead")
        if dt is not None and not np.isclose(float(check_dt(dt)), program.dt, rtol=1e-12):
            raise LoweringError(f"dt={dt!r} was given, but the model was compiled with "
                                f"dt={program.dt!r}; leave dt unset (it comes from the model)")
        if semantics is not None:
            raise LoweringError("semantics= cannot change a compiled model's semantics; lower "
                                "its graph (model.program.graph) instead")
        base = dict(graph.params)
    else:
        if isinstance(graph, (str, pathlib.Path)):
            graph = read(graph)
        if not isinstance(graph, nir.NIRGraph):
            raise LoweringError(f"nirjax.lower expects a path to a .nir file, a nir.NIRGraph or "
                                f"a compiled model, got {type(graph).__name__}")
        if dt is None:
            raise LoweringError("dt is required to lower a NIR graph (NIR graphs carry no "
                                "time step): e.g. nirjax.lower(graph, target, dt=1e-4)")
        program = build_program(graph, check_dt(dt), resolve_semantics(semantics),
                                table="float")
        base = {n.name: n.params for n in program.nodes if n.params is not None}
    if params is not None:
        if not isinstance(params, Mapping):
            raise LoweringError(f"params must be a dict node name -> parameters (like "
                                f"model.params), got {type(params).__name__}")
        unknown = sorted(set(params) - set(base))
        if unknown:
            raise LoweringError(f"params for nodes without parameters or not in the graph: "
                                f"{', '.join(map(repr, unknown))}; nodes with parameters: "
                                f"{', '.join(sorted(base))}")
        base.update(params)
    return program, numpy_params(base)


def lower(graph, target: str, dt: float | None = None, *, params: Mapping | None = None,
          semantics: Any = None, **options) -> Lowered:
    """Lower a NIR graph to a chip target.

    Args:
        graph: a path to a ``.nir`` file, a ``nir.NIRGraph``, or a compiled model
            (:class:`~nirjax.CompiledGraph`: its dt, semantics and parameters are used).
        target: a target name: ``"xylo-audio2"``, ``"xylo-audio3"``, ``"xylo-imu"``,
            ``"loihi2"``, ``"speck"``, ``"spinnaker2"`` (see :data:`TARGETS`).
        dt: the time step (required for a graph or path unless the target has a
            ``default_dt``; a model brings its own).
        params: node name -> parameters overriding the graph's or the model's (e.g.
            ``model.params`` after fine-tuning): float parameters are lowered directly.
        semantics: the float semantics the graph is read under (default: the NIR spec); not
            with a compiled model.
        **options: target options (``TARGETS[target].options`` lists them).

    Returns:
        A :class:`Lowered`.

    Raises:
        LoweringError: unknown target or option, or the graph breaks the chip's design rules
            (every violation listed at once, each naming node, rule, limit and value).

    Warns:
        LoweringWarning: each approximation, saying what changes and by how much.
    """
    tgt = get_target(target)
    unknown = sorted(set(options) - set(tgt.options))
    if unknown:
        valid = ", ".join(f"{k} ({v})" for k, v in tgt.options.items()) or "none"
        raise LoweringError(f"target {tgt.name!r} has no option(s) {', '.join(unknown)}; its "
                            f"options: {valid}")
    if dt is None and not isinstance(graph, CompiledGraph):
        dt = tgt.default_dt
    program, np_params = _source_program(graph, dt, semantics, params)
    result = tgt.lower_fn(program, np_params, dict(options))
    lowered = Lowered(tgt, result, program, options)
    for w in result.warnings:
        warnings.warn(f"{tgt.name}: {w}", LoweringWarning, stacklevel=2)
    return lowered
