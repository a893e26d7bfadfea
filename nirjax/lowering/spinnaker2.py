"""SpiNNaker2: the import rules of py-spinnaker2's ``from_nir`` and its int8 weight scaling.

py-spinnaker2 (gitlab.com/spinnaker2/py-spinnaker2) is not on PyPI and cannot be run here.
The facts below were read from copies of its ``s2_nir.py`` in public repositories (the
search index of this project; two derived copies agree on every rule used here), and from
its ``ann2snn_helpers.py``. Function names are s2_nir's; no line numbers, because the copies
differ in length.

``from_nir(graph, ConversionConfig)`` builds one population per neuron node (``LIF``, ``IF``,
``CubaLIF``) and per ``Input``, and one projection per path from a spike source (a neuron or
the Input) through a weight node (``Affine``, ``Linear``, ``Conv2d``), optionally after a
``SumPool2d`` (and ``Flatten``), to a neuron node (``create_populations``,
``create_projections``). What it refuses (each is a :class:`Violation` here):

* any other node type, a nested ``NIRGraph`` included (``NotImplementedError(type(node))``);
* a weight node connected to another weight node (``HardwareConstraintError: Two successive
  layers with weights are not supported``);
* an edge from a spike source straight into a neuron node (``NotImplementedError: Direct
  connections from spike source nodes ... to neuron nodes ... not supported yet``);
* a ``CubaLIF`` fed by a ``Conv2d`` (``assert is_conv2d == False``);
* an ``Input`` that is not 1-D or 3-D (assert);
* a weight node whose target is not a neuron node (``assert isinstance(final_target,
  NEURON_NODES)``);
* a ``SumPool2d`` followed by anything but ``Conv2d``, a neuron node or ``Flatten -> Affine``
  (``NotImplementedError``), or, before a ``Conv2d``, with a stride other than its kernel or
  a padding (asserts in ``create_sumpool2d_conv2d_projection``);
* a ``Conv2d`` projection with ``conn_delay != 0`` (``assert delay == 0`` in
  ``create_conv2d_projection``; the default ``conn_delay`` is 1).

And one thing it drops without a word: an edge from a spike source into a ``Flatten`` (or
any node other than a weight node, ``SumPool2d`` or a neuron node) is discarded ("discard
edge as target does not represent a real connection"), so ``IF -> Flatten -> Affine -> LIF``
loses that connection. Here it is a violation.

Weight scaling (``ConversionConfig(scale_weights=True)``; the default is ``False``): the
scope is ONE NEURON NODE. For each neuron node, ``w_scale = 127 / max |W|`` over every weight
node feeding it (``get_max_abs_weight``); those weights are multiplied by ``w_scale``, and so
are the neuron's threshold and offset current (``convert_IF``/``convert_LIF``/
``convert_CubaLIF``: ``threshold = v_threshold * v_scale * w_scale``, ``i_offset = ... + bias *
w_scale``). Convolution weights are then cast with ``astype(np.int8)`` (truncation toward zero,
``get_conv2d_params``); dense weights go to the projection as floats
(``connection_list_from_dense_weights``) and become integers in py-spinnaker2's hardware
layer, which none of the copies shows: truncation is assumed for both here. The product
``W * w_scale`` is taken in float64 (a float32 weight array times NumPy's float64 scale,
NumPy >= 2), so the largest weight becomes 127, or 126 where the product rounds just below
127 (about one neuron node in eight for random weights; s2_nir's own arithmetic does the
same). Neuron parameters stay floats (the ARM cores compute them
in float32). The simulation of the result is nirjax's ``spinnaker2`` profile on the scaled
graph: multiplying weights, bias and every voltage of a neuron by the same factor leaves its
spikes unchanged, so only the weight rounding changes anything.

The ``"spinnaker2"`` target (:func:`lower_spinnaker2`, registered with :func:`nirjax.lower`):
every rule above checked at once (one :class:`~nirjax.LoweringError` listing all), the
weights scaled to int8 per neuron node as above, and the scaled graph simulated under the
``spinnaker2`` profile (py-spinnaker2 with the NIR paper's configuration) with the
``"spinnaker2"`` rule table: the float kernels in float32 on integer-valued weights, as the
chip's ARM cores compute the neuron models in float32 (that arithmetic is an assumption
carried over from the profile, not checked against the chip here). Option ``conn_delay``
(0, the paper's configuration and the default, or 1, py-spinnaker2's default) adds a
one-step delay after every weight node (``Semantics(latency="weights")``); Conv2d graphs
need 0 (with 1, :attr:`~nirjax.Lowered.latency` gives each node's lag behind the float
graph). Option ``scale_weights`` (default ``True``, as ``ConversionConfig(scale_weights=True)``)
set to ``False`` takes the weights as they are: they must then be integers in [-127, 127]
(a violation otherwise). Inputs are spike sources: 0 or 1 event per element and step;
outputs are spikes, 0 or 1, as float32 values (the table's dtype). ``hw.export(path)``
writes the scaled graph as ``.nir`` (integer weights in [-127, 127] stored as floats,
thresholds, leaks and biases already scaled): load it with ``scale_weights=False``
(py-spinnaker2's default), here and in ``from_nir``, and it runs exactly as ``hw`` did;
``hw.to_nir()`` returns it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import nir
import numpy as np

from ..compiler import build_program
from ..errors import LoweringError
from ..io import write
from ..rules.spinnaker2 import SPINNAKER2
from ..semantics import PROFILES
from .core import LoweringResult, rebind_program, register_target, resource
from .source import flat_graph
from .violations import MappingRecord, QuantizationRecord, Violation
from .violations import raise_violations as _raise

__all__ = ["ACCEPTED_TYPES", "NEURON_TYPES", "WEIGHT_TYPES", "Rule", "RULES", "check_graph",
           "weight_scales", "ScaledNeuron", "scale_problems", "scale_weights",
           "raise_violations", "int8_problems", "lower_spinnaker2"]

NEURON_TYPES = (nir.LIF, nir.IF, nir.CubaLIF)
WEIGHT_TYPES = (nir.Affine, nir.Linear, nir.Conv2d)
SPIKE_SOURCES = NEURON_TYPES + (nir.Input,)
ACCEPTED_TYPES = NEURON_TYPES + WEIGHT_TYPES + (nir.Input, nir.Output, nir.SumPool2d,
                                                nir.Flatten)
WEIGHT_NAMES = tuple(t.__name__ for t in WEIGHT_TYPES)
INT8_MAX = 127


class Rule(NamedTuple):
    """A from_nir rule as data: ``check(graph, conn_delay) -> [Violation, ...]``."""

    name: str
    source: str
    check: Callable


def _succ(graph):
    out = {}
    for s, d in graph.edges:
        out.setdefault(s, []).append(d)
    return out


def _pred(graph):
    out = {}
    for s, d in graph.edges:
        out.setdefault(d, []).append(s)
    return out


def _type(node):
    return type(node).__name__


def _node_types(graph, conn_delay):
    return [Violation(n, "node type", ", ".join(t.__name__ for t in ACCEPTED_TYPES)
                      + " (flat graph)", "a nested NIRGraph" if isinstance(node, nir.NIRGraph)
                      else _type(node))
            for n, node in graph.nodes.items() if not isinstance(node, ACCEPTED_TYPES)]


def _two_weights(graph, conn_delay):
    out = []
    for s, d in graph.edges:
        a, b = graph.nodes.get(s), graph.nodes.get(d)
        if isinstance(a, WEIGHT_TYPES) and isinstance(b, WEIGHT_TYPES):
            out.append(Violation(d, "two weight layers in a row", "a neuron node between two "
                                 "weight nodes", f"{_type(a)} {s!r} -> {_type(b)} {d!r}"))
    return out


def _neuron_to_neuron(graph, conn_delay):
    return [Violation(d, "neuron to neuron", "a weight node between a spike source and a "
                      "neuron node", f"{_type(graph.nodes[s])} {s!r} -> "
                      f"{_type(graph.nodes[d])} {d!r}")
            for s, d in graph.edges
            if isinstance(graph.nodes.get(s), SPIKE_SOURCES)
            and isinstance(graph.nodes.get(d), NEURON_TYPES)]


def _cubalif_after_conv(graph, conn_delay):
    pred = _pred(graph)
    return [Violation(n, "CubaLIF after Conv2d", "LIF or IF after a Conv2d",
                      f"CubaLIF fed by Conv2d {p!r}")
            for n, node in graph.nodes.items() if isinstance(node, nir.CubaLIF)
            for p in pred.get(n, []) if isinstance(graph.nodes.get(p), nir.Conv2d)]


def _input_rank(graph, conn_delay):
    out = []
    for n, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            shape = node.input_type
            shape = next(iter(shape.values())) if isinstance(shape, dict) else shape
            rank = np.size(shape)
            if rank not in (1, 3):
                out.append(Violation(n, "input rank", "a 1-D or 3-D input", f"{rank}-D"))
    return out


def _weight_targets(graph, conn_delay):
    succ = _succ(graph)
    return [Violation(n, "weight target", "neuron nodes (LIF, IF, CubaLIF) after a weight node",
                      f"{_type(graph.nodes[d])} {d!r}")
            for n, node in graph.nodes.items() if isinstance(node, WEIGHT_TYPES)
            for d in succ.get(n, []) if not isinstance(graph.nodes.get(d), NEURON_TYPES)
            and not isinstance(graph.nodes.get(d), WEIGHT_TYPES)]


def _pooling(graph, conn_delay):
    succ, out = _succ(graph), []
    for n, node in graph.nodes.items():
        if not isinstance(node, nir.SumPool2d):
            continue
        for d in succ.get(n, []):
            t = graph.nodes.get(d)
            if isinstance(t, nir.Flatten):
                for a in succ.get(d, []):
                    if not isinstance(graph.nodes.get(a), nir.Affine):
                        out.append(Violation(a, "pooling", "Affine after SumPool2d -> Flatten",
                                             f"{_type(graph.nodes.get(a))}"))
            elif isinstance(t, nir.Conv2d):
                k, s = np.ravel(node.kernel_size), np.ravel(node.stride)
                if not np.array_equal(k, s) or np.any(np.ravel(node.padding) != 0):
                    out.append(Violation(n, "pooling", "stride equal to the kernel and no "
                                         "padding before a Conv2d", f"kernel {k.tolist()}, "
                                         f"stride {s.tolist()}, padding "
                                         f"{np.ravel(node.padding).tolist()}"))
            elif not isinstance(t, NEURON_TYPES):
                out.append(Violation(n, "pooling", "Conv2d, a neuron node or Flatten -> Affine "
                                     "after SumPool2d", f"{_type(t)} {d!r}"))
    return out


def _dropped_edges(graph, conn_delay):
    handled = WEIGHT_TYPES + NEURON_TYPES + (nir.SumPool2d, nir.Output)
    return [Violation(d, "dropped connection", "a weight node, SumPool2d or an Output after a "
                      "spike source (from_nir discards any other edge without a word)",
                      f"{_type(graph.nodes[s])} {s!r} -> {_type(graph.nodes[d])} {d!r}")
            for s, d in graph.edges
            if isinstance(graph.nodes.get(s), SPIKE_SOURCES)
            and isinstance(graph.nodes.get(d), ACCEPTED_TYPES)  # others: "node type"
            and not isinstance(graph.nodes.get(d), handled)]


def _conv_delay(graph, conn_delay):
    return [Violation(n, "Conv2d delay", "conn_delay = 0 for Conv2d projections",
                      f"conn_delay = {conn_delay}")
            for n, node in graph.nodes.items()
            if isinstance(node, nir.Conv2d) and conn_delay != 0]


RULES = (
    Rule("node type", "s2_nir.create_populations: NotImplementedError(type(node))", _node_types),
    Rule("two weight layers in a row", "s2_nir.create_populations: HardwareConstraintError",
         _two_weights),
    Rule("neuron to neuron", "s2_nir.create_projections: NotImplementedError", _neuron_to_neuron),
    Rule("CubaLIF after Conv2d", "s2_nir.create_populations: assert is_conv2d == False",
         _cubalif_after_conv),
    Rule("input rank", "s2_nir.create_populations: assert 1d or 3d input", _input_rank),
    Rule("weight target", "s2_nir.create_projections: assert isinstance(final_target, "
         "NEURON_NODES)", _weight_targets),
    Rule("pooling", "s2_nir.create_projections / create_sumpool2d_conv2d_projection",
         _pooling),
    Rule("dropped connection", "s2_nir.create_projections: 'discard edge as target does not "
         "represent a real connection'", _dropped_edges),
    Rule("Conv2d delay", "s2_nir.create_conv2d_projection: assert delay == 0", _conv_delay),
)


def check_graph(graph: nir.NIRGraph, conn_delay: int = 1) -> list:
    """Every :data:`RULES` check on ``graph`` (a flat NIR graph).

    Args:
        graph: the NIR graph.
        conn_delay: ``ConversionConfig.conn_delay`` (py-spinnaker2's default 1; the NIR
            paper's runs used 0).

    Returns:
        All violations (empty when ``from_nir`` would accept the graph).
    """
    out = []
    for rule in RULES:
        out.extend(rule.check(graph, conn_delay))
    return out


def raise_violations(violations) -> None:
    """Raise :class:`~nirjax.lowering.violations.DesignRuleError` for ``"spinnaker2"``
    listing ``violations``, if there is any.

    >>> raise_violations([])
    """
    _raise("spinnaker2", violations)


def weight_scales(graph: nir.NIRGraph) -> dict:
    """``{neuron node: 127 / max |W|}`` over the weight nodes feeding each neuron node
    (``get_max_abs_weight`` and ``w_scale`` in ``create_populations``).

    A neuron node without incoming weights gets no entry; one whose incoming weights are all
    zero gets ``inf`` (s2_nir divides by zero there).

    >>> g = nir.NIRGraph(nodes={"i": nir.Input(np.array([2])),
    ...     "w": nir.Linear(np.array([[0.5, -0.25]])),
    ...     "n": nir.IF(np.ones(1), np.ones(1), np.zeros(1)), "o": nir.Output(np.array([1]))},
    ...     edges=[("i", "w"), ("w", "n"), ("n", "o")])
    >>> weight_scales(g)
    {'n': 254.0}
    """
    pred, out = _pred(graph), {}
    for n, node in graph.nodes.items():
        if not isinstance(node, NEURON_TYPES):
            continue
        ws = [np.max(np.abs(np.asarray(graph.nodes[p].weight, np.float64)))
              for p in pred.get(n, []) if isinstance(graph.nodes.get(p), WEIGHT_TYPES)]
        if ws:
            m = max(ws)
            out[n] = float(INT8_MAX / m) if m > 0 else float("inf")
    return out


@dataclasses.dataclass(frozen=True)
class ScaledNeuron:
    """What scaling did to one neuron node and its incoming weights.

    Attributes:
        node: the neuron node.
        w_scale: the factor (``127 / max |W|``).
        weights: the weight nodes scaled with it.
        max_error: largest ``|W - W_int / w_scale|`` in the graph's units.
        zeroed: nonzero weights that became 0.
    """

    node: str
    w_scale: float
    weights: tuple
    max_error: float
    zeroed: int


def _scaled(node, factor, fields):
    changes = {f: np.asarray(getattr(node, f), np.float32) * np.float32(factor)
               for f in fields if getattr(node, f, None) is not None}
    return dataclasses.replace(node, **changes)


def scale_problems(graph: nir.NIRGraph) -> list:
    """What keeps :func:`scale_weights` from scaling ``graph``: a weight node feeding
    neuron nodes of different scales (one integer weight per synapse cannot serve two), a
    neuron node whose incoming weights are all zero (s2_nir divides by zero).

    >>> g = nir.NIRGraph(nodes={"i": nir.Input(np.array([2])),
    ...     "w": nir.Linear(np.zeros((1, 2))),
    ...     "n": nir.IF(np.ones(1), np.ones(1), np.zeros(1)), "o": nir.Output(np.array([1]))},
    ...     edges=[("i", "w"), ("w", "n"), ("n", "o")])
    >>> [v.rule for v in scale_problems(g)]
    ['zero weights']
    """
    scales = weight_scales(graph)
    succ = _succ(graph)
    problems = []
    for n, node in graph.nodes.items():
        if isinstance(node, WEIGHT_TYPES):
            targets = [d for d in succ.get(n, []) if d in scales]
            if len({scales[d] for d in targets}) > 1:
                problems.append(Violation(n, "shared weights", "a weight node feeding one "
                                          "neuron node", f"feeds {', '.join(targets)}"))
    problems += [Violation(n, "zero weights", "a nonzero incoming weight", "all zero")
                 for n, s in scales.items() if not np.isfinite(s)]
    return problems


def scale_weights(graph: nir.NIRGraph) -> tuple:
    """The graph with int8 weights as ``from_nir(..., scale_weights=True)`` makes them.

    Per neuron node, with ``s = 127 / max |W|`` over its incoming weight nodes: weights become
    ``trunc(W * s)`` (integers in ``[-127, 127]``, the largest 127 or, where ``W * s`` rounds
    below 127, 126; stored as float32), biases ``b * s``, and the
    neuron's ``v_threshold``, ``v_leak`` and ``v_reset`` are multiplied by ``s``, so that its
    membrane is ``s`` times the original and only the weight rounding changes spikes.

    Args:
        graph: a flat NIR graph that passes :func:`check_graph`.

    Returns:
        ``(scaled graph, [ScaledNeuron, ...])``.

    Raises:
        DesignRuleError: a weight node feeds several neuron nodes (one integer weight per
            synapse cannot serve two scales) or a neuron's incoming weights are all zero.
    """
    raise_violations(scale_problems(graph))
    scales = weight_scales(graph)
    pred = _pred(graph)
    nodes, report = dict(graph.nodes), []
    for n, s in scales.items():
        names, err, zeroed = [], 0.0, 0
        for p in pred.get(n, []):
            w_node = graph.nodes[p]
            if not isinstance(w_node, WEIGHT_TYPES):
                continue
            w = np.asarray(w_node.weight, np.float64)
            w_int = np.trunc(w * s)
            err = max(err, float(np.max(np.abs(w - w_int / s))) if w.size else 0.0)
            zeroed += int(np.count_nonzero((w_int == 0) & (w != 0)))
            changes = {"weight": w_int.astype(np.float32)}
            if getattr(w_node, "bias", None) is not None:
                changes["bias"] = (np.asarray(w_node.bias, np.float64) * s).astype(np.float32)
            nodes[p] = dataclasses.replace(w_node, **changes)
            names.append(p)
        nodes[n] = _scaled(graph.nodes[n], s, ("v_threshold", "v_leak", "v_reset"))
        report.append(ScaledNeuron(n, s, tuple(names), err, zeroed))
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges),
                        metadata=dict(graph.metadata or {})), report


# ----------------------------------------------------------------------------- the target


def _quantization_records(graph, report):
    out = []
    for r in report:
        w = [np.asarray(graph.nodes[p].weight, np.float64) for p in r.weights]
        w_max = max(float(np.max(np.abs(a))) for a in w if a.size) if w else 0.0
        detail = (f"truncated toward zero (s2_nir get_conv2d_params' astype(np.int8); assumed "
                  f"for dense weights); {r.zeroed} nonzero weight(s) became 0; the neuron's "
                  f"threshold, v_leak, v_reset and bias scaled by the same factor (float32)")
        out.append(QuantizationRecord("+".join(r.weights), "weight", r.w_scale, w_max,
                                      r.max_error, r.max_error / w_max if w_max else 0.0, 0,
                                      detail))
    return out


def _s2_resources(program):
    out, neurons, synapses = {}, 0, 0
    for n in program.nodes:
        if n.type_name in ("IF", "LIF", "CubaLIF"):
            k = int(np.prod(n.out_shape))
            out[n.name] = {"neurons": resource(k, None)}
            neurons += k
        elif n.type_name in ("Affine", "Linear", "Conv2d"):
            k = int(np.count_nonzero(np.asarray(n.params.weight)))
            out[n.name] = {"synapses": resource(k, None)}
            synapses += k
    out["total"] = {"neurons": resource(neurons, None), "synapses": resource(synapses, None)}
    return out


def _s2_mapping(graph, scales):
    succ, out = _succ(graph), []

    def target(n, seen=()):
        for d in succ.get(n, []):
            if isinstance(graph.nodes.get(d), NEURON_TYPES):
                return d
            if d not in seen:
                t = target(d, seen + (n,))
                if t is not None:
                    return t
        return None

    for n, node in graph.nodes.items():
        kind = _type(node)
        if isinstance(node, NEURON_TYPES):
            text = (f"population of {int(np.prod(np.shape(node.v_threshold)))} {kind} "
                    f"neurons (float32 on ARM cores)")
        elif isinstance(node, nir.Input):
            text = "spike source population"
        elif isinstance(node, nir.Output):
            text = "spikes recorded from the population in front"
        elif isinstance(node, WEIGHT_TYPES):
            t = target(n)
            text = (f"projection into {t!r}: int8 weights (scale {scales.get(t, 1.0):.6g})"
                    if t is not None else "projection")
        else:
            text = f"part of the projection into {target(n)!r}"
        out.append(MappingRecord(n, kind, text, n))
    return out


def _lags(program) -> dict:
    """Graph node -> steps a one-step delay after every weight node adds on the way from
    the Input (only where every path agrees; cycle-closing edges are not followed)."""
    lags: dict = {}
    for n in program.nodes:
        if n.role == "input":
            lags[n.name] = {0}
            continue
        got = set()
        for e in program.incoming(n.name):
            if not e.delayed and e.src in lags:
                add = 1 if program.node(e.src).type_name in WEIGHT_NAMES else 0
                got |= {v + add for v in lags[e.src]}
        if got:
            lags[n.name] = got
    return {k: next(iter(v)) for k, v in lags.items()
            if len(v) == 1 and next(iter(v)) > 0 and program.node(k).role != "port"}


def int8_problems(graph: nir.NIRGraph) -> list:
    """Weight nodes whose weights are not integers in [-127, 127] (what a graph needs to
    run without scaling, ``scale_weights=False``).

    >>> g = nir.NIRGraph.from_list(nir.Linear(np.array([[0.5, 127.0]])),
    ...                            nir.IF(np.ones(1), np.ones(1), np.zeros(1)))
    >>> [(v.node, v.rule) for v in int8_problems(g)]
    [('linear', 'int8 weights')]
    """
    out = []
    for n, node in graph.nodes.items():
        if isinstance(node, WEIGHT_TYPES):
            w = np.asarray(node.weight, np.float64)
            bad = (w != np.round(w)) | (np.abs(w) > INT8_MAX)
            if bad.any():
                out.append(Violation(n, "int8 weights", "integers in [-127, 127] (with "
                                     "scale_weights=False)", f"{int(bad.sum())} weight(s) "
                                     f"such as {w[bad].ravel()[0]!r}"))
    return out


def lower_spinnaker2(program, params, options):
    """The ``"spinnaker2"`` target's lowering function (see the module docstring).

    Args:
        program: the graph's float Program.
        params: node name -> float parameters (NumPy), NIR field names.
        options: ``{"conn_delay": 0 | 1}`` (default 0), ``{"scale_weights": bool}``
            (default ``True``).

    Returns:
        A :class:`~nirjax.lowering.LoweringResult`.

    Raises:
        LoweringError: every broken rule of ``from_nir`` (and every obstacle to the int8
            scaling), at once; an invalid ``conn_delay``.
    """
    conn_delay = options.get("conn_delay", 0)
    if conn_delay not in (0, 1) or isinstance(conn_delay, bool):
        raise LoweringError(f"spinnaker2: conn_delay must be 0 (the NIR paper's configuration) "
                            f"or 1 (py-spinnaker2's default), got {conn_delay!r}")
    scale = options.get("scale_weights", True)
    if not isinstance(scale, (bool, np.bool_)):
        raise LoweringError(f"spinnaker2: scale_weights must be True or False, got {scale!r}")
    graph = flat_graph(program, params)
    violations = check_graph(graph, conn_delay)
    if not violations:  # scaling needs a graph from_nir accepts
        violations = scale_problems(graph) if scale else int8_problems(graph)
    raise_violations(violations)
    scaled, report = scale_weights(graph) if scale else (graph, [])
    semantics = PROFILES["spinnaker2"]
    if conn_delay:
        semantics = semantics.replace(latency="weights")
    built = build_program(scaled, program.dt, semantics, table=SPINNAKER2)
    f32 = {n.name: jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), n.params)
           for n in built.nodes if n.params is not None}
    int_program = rebind_program(built, SPINNAKER2, f32)
    zeroed = [f"{r.zeroed} nonzero weight(s) into {r.node!r} truncate to 0 at scale "
                f"{r.w_scale:.6g} (largest error {r.max_error:.3g})" for r in report if r.zeroed]
    notes = [
        "the simulation is nirjax's 'spinnaker2' profile (py-spinnaker2 from_nir, the NIR "
        "paper's configuration: forward Euler, reset to zero) in float32 on the int8-valued "
        "weights; py-spinnaker2 could not be run here, so it is not checked against the "
        "vendor's code",
        f"conn_delay = {conn_delay}: " + ("no delay on projections" if not conn_delay else
                                          "one step of delay after every weight node"),
    ]
    if not scale:
        notes.append("scale_weights = False: the graph's integer weights are used as they are")
    if program.semantics.name != "nir":
        notes.append(f"the graph was read under semantics {program.semantics.name!r}; the "
                     "chip's simulation uses the 'spinnaker2' profile whatever it was")
    return LoweringResult(
        program=int_program,
        resources=_s2_resources(int_program),
        quantization=_quantization_records(graph, report),
        mapping=_s2_mapping(graph, {r.node: r.w_scale for r in report}),
        export=lambda path: write(path, scaled),
        to_nir=lambda: scaled,
        notes=notes,
        warnings=zeroed,
        input_range=(0, 1),
        latency=_lags(program) if conn_delay else {},
        details=report,
    )


register_target("spinnaker2", lower_spinnaker2, family="spinnaker",
                doc="SpiNNaker2 through py-spinnaker2's from_nir: int8 weights, float32 "
                    "neuron models (the spinnaker2 profile)",
                options={"conn_delay": "0 (default, the NIR paper's configuration) or 1 "
                                       "(py-spinnaker2's default): one step of delay after "
                                       "every weight node",
                         "scale_weights": "True (default): int8 weights scaled per neuron "
                                          "node; False: the weights must be int8 already"},
                semantics=lambda graph: PROFILES["spinnaker2"])
