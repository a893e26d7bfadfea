"""Speck: read a chain of DYNAP-CNN layers out of a NIR graph; write the discretized graph.

:func:`layers_from_nir` walks a flat NIR graph ``Input -> (Conv2d | Affine | Linear) -> IF ->
[SumPool2d | AvgPool2d]* -> [Flatten] -> ... -> Output`` and groups it into
:class:`~nirjax.lowering.speck.quantize.SpeckLayer` s exactly as sinabs' graph extractor
groups the same network (``sinabs_edges_handler.py:249-372``, one layer per weight -> neuron
edge, poolings after the neuron, Flatten dropped with the pre-flatten shape handed to the
Linear, ``nir_graph_extractor.py:278-285``). Anything that does not fit becomes a
:class:`~nirjax.lowering.speck.quantize.Violation`; nothing is skipped. The network is read
the way ``sinabs.from_nir`` reads it (``sinabs/nir.py:86-92``): an IF is an integrate-and-fire
neuron with subtractive reset, several spikes per step and a lower clamp of its membrane at
``-v_threshold``.

Only chains are lowered for now: the chip also allows a core two destinations and several
sources per core (``dynapcnnnetwork_module.py:257-282``), which a later version can map.

:func:`to_nir` writes the discretized network as a NIR graph (same node names and edges,
integer values stored as floats, AvgPool2d replaced by SumPool2d, each IF's lower clamp and
core in its ``metadata``); :func:`mapping_json` gives the core assignment and memory use and
:func:`export` writes both files.
"""

from __future__ import annotations

import json
import math
import pathlib

import nir
import numpy as np

from ...kernels.geometry import conv_padding
from .quantize import (
    CORE_MEMORY,
    SpeckLayer,
    SpeckNetwork,
    Violation,
    lower_layers,
    raise_violations,
)

__all__ = ["layers_from_nir", "lower_nir", "to_nir", "mapping_json", "export"]

_WEIGHTS = (nir.Conv2d, nir.Affine, nir.Linear)
_POOLS = (nir.SumPool2d, nir.AvgPool2d)
_SUPPORTED = "Input, Conv2d, Affine, Linear, IF, SumPool2d, AvgPool2d, Flatten, Output"


def _shape_of(port):
    if isinstance(port, dict):
        port = next(iter(port.values()), None)
    return None if port is None else tuple(int(v) for v in np.ravel(port))


def _pair(value, name):
    v = np.ravel(np.asarray(value)).astype(int)
    if v.size == 1:
        return (int(v[0]), int(v[0]))
    if v.size == 2:
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{name} {value!r}")


def _chain(graph, violations):
    """Node names from the Input to the Output, or ``None`` when the graph is no chain."""
    nodes = graph.nodes
    nested = [n for n, node in nodes.items() if isinstance(node, nir.NIRGraph)]
    for n in nested:
        violations.append(Violation(n, "flat graph", "a flat graph (flatten subgraphs first)",
                                    "a nested NIRGraph"))
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    for kind, found in (("Input", inputs), ("Output", outputs)):
        if len(found) != 1:
            violations.append(Violation("graph", f"one {kind}", f"one {kind} node",
                                        f"{len(found)} {kind} nodes"))
    succ, pred = {}, {}
    for s, d in graph.edges:
        succ.setdefault(s, []).append(d)
        pred.setdefault(d, []).append(s)
    for n in nodes:
        if len(succ.get(n, [])) > 1:
            violations.append(Violation(
                n, "chain", "one successor per node (branches are not lowered yet)",
                f"{len(succ[n])} successors: {', '.join(succ[n])}"))
        if len(pred.get(n, [])) > 1:
            violations.append(Violation(
                n, "chain", "one predecessor per node (merges are not lowered yet)",
                f"{len(pred[n])} predecessors: {', '.join(pred[n])}"))
    if nested or len(inputs) != 1 or len(outputs) != 1:
        return None
    order, node = [], inputs[0]
    while node not in order:
        order.append(node)
        nxt = succ.get(node, [])
        if not nxt:
            break
        node = nxt[0]
    if order[-1] != outputs[0]:
        violations.append(Violation(order[-1], "chain", "a path from the Input to the Output",
                                    "the path from the Input ends here" if order[-1] not in
                                    succ else "a cycle"))
        return None
    unreached = [n for n in nodes if n not in order]
    for n in unreached:
        violations.append(Violation(n, "chain", "every node on the Input-Output path",
                                    "not on it"))
    return order


def layers_from_nir(graph: nir.NIRGraph):
    """Group a flat NIR chain into DYNAP-CNN layers.

    Args:
        graph: a ``nir.NIRGraph`` (nir 1.0.8 objects).

    Returns:
        ``(input_shape, layers, violations, notes)``: the input ``(C, H, W)`` (a flat input of
        ``N`` is ``(N, 1, 1)``, as sinabs would be told), a list of
        :class:`~nirjax.lowering.speck.quantize.SpeckLayer`, a list of structural
        :class:`~nirjax.lowering.speck.quantize.Violation` and a list of notes.
    """
    violations, notes, layers = [], [], []
    order = _chain(graph, violations)
    if order is None:
        return None, layers, violations, notes
    nodes = graph.nodes
    shape = _shape_of(nodes[order[0]].input_type)
    if shape is None or len(shape) not in (1, 3):
        violations.append(Violation(order[0], "input shape", "(C, H, W) or (N,)",
                                    f"{shape}"))
        return None, layers, violations, notes
    input_shape = shape if len(shape) == 3 else (shape[0], 1, 1)
    map_shape = input_shape      # (C, H, W) the next weight layer sees
    flat = len(shape) == 1       # the data is a vector (after Flatten or a flat input)
    current = None               # fields of the layer being read
    expect = "weight"            # what may come next: weight | neuron | after_neuron
    flatten_node = None

    def finish():
        if current is not None:
            layers.append(SpeckLayer(**current))

    for name in order[1:-1]:
        node = nodes[name]
        if isinstance(node, _WEIGHTS):
            if expect == "neuron":
                violations.append(Violation(name, "weight -> IF", "an IF after each weight "
                                            "layer (one core is weight -> IF -> pooling)",
                                            f"{type(node).__name__} right after the weight "
                                            f"layer {current['name']!r}"))
            finish()
            rescale = layers[-1].pool_scale if layers else 1.0
            current = _weight_layer(name, node, map_shape, flat, flatten_node, rescale,
                                    violations)
            flatten_node = None
            if current is None:
                return input_shape, layers, violations, notes
            c_out = current["weight"].shape[0]
            ref = SpeckLayer(**current)
            map_shape = ref.neuron_shape
            flat = current["kind"] == "linear"
            expect = "neuron"
        elif isinstance(node, nir.IF):
            if expect != "neuron":
                violations.append(Violation(name, "IF after a weight layer", "Conv2d, Affine "
                                            "or Linear right before each IF",
                                            "an IF without one"))
                continue
            thr = np.asarray(node.v_threshold, np.float32)
            current.update(v_threshold=thr, r=None if node.r is None else np.asarray(node.r),
                           v_reset=None if getattr(node, "v_reset", None) is None
                           else np.asarray(node.v_reset))
            values = np.unique(thr)
            # sinabs.from_nir: IAFSqueeze(min_v_mem=-v_threshold), nir.py:86-92
            current["min_v_mem"] = float(-values[0]) if values.size == 1 else None
            current["nodes"]["neuron"] = name
            expect = "after_neuron"
        elif isinstance(node, _POOLS):
            if expect != "after_neuron":
                violations.append(Violation(name, "pooling after an IF", "pooling only after "
                                            "an IF (or another pooling)", "pooling elsewhere"))
                continue
            k = _pair(node.kernel_size, "kernel_size")
            s = _pair(node.stride if node.stride is not None else node.kernel_size, "stride")
            p = _pair(node.padding if node.padding is not None else 0, "padding")
            avg = isinstance(node, nir.AvgPool2d)
            current["pool"] += (k,)
            current["pool_strides"] += (s,)
            current["pool_paddings"] += (p,)
            current["pool_average"] += (avg,)
            current["nodes"]["pool"] += (name,)
            c, h, w = map_shape
            map_shape = (c, (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1)
            if avg:
                notes.append(f"AvgPool2d {name!r} runs as sum pooling: the next layer's weights "
                             f"are multiplied by 1/{k[0] * k[1]} before discretization "
                             "(sinabs dynapcnn_layer_utils.py:215-216)")
        elif isinstance(node, nir.Flatten):
            start = int(node.start_dim)
            end = int(node.end_dim)
            nd = 1 if flat else 3
            start, end = start % nd, end % nd
            if not flat and (start, end) != (0, 2):
                violations.append(Violation(name, "flatten", "Flatten of the whole (C, H, W) "
                                            "map", f"start_dim {node.start_dim}, end_dim "
                                            f"{node.end_dim}"))
            flat, flatten_node = True, name
        else:
            violations.append(Violation(name, "node type", _SUPPORTED, type(node).__name__))
            expect = "after_neuron" if expect == "neuron" else expect
    if expect == "neuron":
        violations.append(Violation(current["name"], "weight -> IF", "an IF after each "
                                    "weight layer", "the graph ends without one"))
    finish()
    return input_shape, layers, violations, notes


def _weight_layer(name, node, map_shape, flat, flatten_node, rescale, violations):
    """The fields of a :class:`SpeckLayer` for weight node ``node`` (``None`` if unusable)."""
    nodes = {"weight": name, "pool": ()}
    if flatten_node is not None:
        nodes["flatten"] = flatten_node
    common = dict(name=name, nodes=nodes, rescale=rescale, pool=(), pool_strides=(),
                  pool_paddings=(), pool_average=())
    if isinstance(node, nir.Conv2d):
        if flat:
            violations.append(Violation(name, "Conv2d input", "a (C, H, W) map",
                                        f"a vector of {int(np.prod(map_shape))}"))
            return None
        w = np.asarray(node.weight, np.float32)
        groups = int(node.groups) if node.groups is not None else 1
        if w.ndim != 4 or w.shape[1] * groups != map_shape[0]:
            violations.append(Violation(name, "shape", f"weight (C_out, {map_shape[0]}/groups, "
                                        "kh, kw)", f"weight {w.shape}, groups {groups}"))
            return None
        kernel = w.shape[2:]
        dilation = _pair(node.dilation if node.dilation is not None else 1, "dilation")
        stride = _pair(node.stride if node.stride is not None else 1, "stride")
        padding = conv_padding(node.padding, kernel, dilation) if isinstance(node.padding, str)\
            else tuple((p, p) for p in _pair(node.padding, "padding"))
        bias = None if node.bias is None else np.asarray(node.bias, np.float32)
        return dict(common, kind="conv", weight=w, bias=bias, in_shape=tuple(map_shape),
                    stride=stride, padding=tuple(padding), dilation=dilation, groups=groups)
    w = np.asarray(node.weight, np.float32)
    n_in = int(np.prod(map_shape))
    if not flat:
        violations.append(Violation(name, "flatten", f"a Flatten before {type(node).__name__} "
                                    f"{name!r}", f"a (C, H, W) input {map_shape}"))
        return None
    if w.ndim != 2 or w.shape[1] != n_in:
        violations.append(Violation(name, "shape", f"weight (out, {n_in})",
                                    f"weight {w.shape}"))
        return None
    c, h, wd = map_shape
    bias = np.asarray(node.bias, np.float32) if isinstance(node, nir.Affine) else None
    # sinabs turns the Linear into a convolution over its whole (pre-flatten) input,
    # dynapcnn_layer.py:17-52
    return dict(common, kind="linear", weight=w.reshape(w.shape[0], c, h, wd), bias=bias,
                in_shape=tuple(map_shape))


def lower_nir(graph: nir.NIRGraph) -> SpeckNetwork:
    """Read, check, discretize and map a NIR graph for Speck.

    Args:
        graph: a flat ``nir.NIRGraph``.

    Returns:
        A :class:`~nirjax.lowering.speck.quantize.SpeckNetwork`; its ``violations`` list
        every broken rule (call :func:`~nirjax.lowering.speck.quantize.raise_violations`).
    """
    input_shape, layers, violations, notes = layers_from_nir(graph)
    if input_shape is None:
        return SpeckNetwork((), (), None, tuple(violations), tuple(notes))
    return lower_layers(input_shape, layers, violations, notes)


def to_nir(graph: nir.NIRGraph, network: SpeckNetwork) -> nir.NIRGraph:
    """The discretized network as a NIR graph (integer values stored as float32).

    Node names and edges are ``graph``'s. Weight nodes carry the integer weights and biases
    (in the graph's own layout), each IF ``r = 1``, ``v_reset = 0`` and the integer
    threshold for every neuron, with ``metadata = {"speck_min_v_mem": .., "speck_core": ..,
    "speck_scale": ..}`` (NIR's IF has no lower clamp); AvgPool2d becomes SumPool2d (its
    ``1/(kh*kw)`` is in the next layer's weights). Reading it back and discretizing again
    gives the same integers: every scale is then exactly 1.

    Raises:
        DesignRuleError: ``network`` has violations.
    """
    raise_violations(network.violations)
    nodes = dict(graph.nodes)
    for i, q in enumerate(network.layers):
        layer = q.layer
        w_node = graph.nodes[layer.name]
        bias = None if q.bias is None else q.bias.astype(np.float32)
        if isinstance(w_node, nir.Conv2d):
            nodes[layer.name] = nir.Conv2d(
                input_shape=w_node.input_shape, weight=q.weight.astype(np.float32),
                stride=w_node.stride, padding=w_node.padding, dilation=w_node.dilation,
                groups=w_node.groups, bias=bias, metadata=dict(w_node.metadata or {}))
        elif isinstance(w_node, nir.Affine):
            nodes[layer.name] = nir.Affine(weight=q.linear_weight.astype(np.float32), bias=bias,
                                           metadata=dict(w_node.metadata or {}))
        else:
            nodes[layer.name] = nir.Linear(weight=q.linear_weight.astype(np.float32),
                                           metadata=dict(w_node.metadata or {}))
        n_name = layer.nodes["neuron"]
        shape = np.shape(graph.nodes[n_name].v_threshold)
        meta = dict(graph.nodes[n_name].metadata or {})
        meta.update(speck_min_v_mem=int(q.min_v_mem), speck_scale=float(q.scale),
                    speck_core=-1 if network.cores is None else int(network.cores[i]))
        nodes[n_name] = nir.IF(r=np.ones(shape, np.float32),
                               v_threshold=np.full(shape, q.threshold, np.float32),
                               v_reset=np.zeros(shape, np.float32), metadata=meta)
        for p_name in layer.nodes["pool"]:
            p = graph.nodes[p_name]
            if isinstance(p, nir.AvgPool2d):
                nodes[p_name] = nir.SumPool2d(kernel_size=p.kernel_size, stride=p.stride,
                                              padding=p.padding,
                                              metadata=dict(p.metadata or {}))
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges),
                        metadata=dict(graph.metadata or {}))


def mapping_json(network: SpeckNetwork) -> dict:
    """The core assignment and memory use of ``network`` as a JSON-able dict.

    ``{"target": "speck", "input_shape", "layers": [{"name", "nodes", "core", "memory":
    {"kernel", "neuron", "bias"}, "core_memory": {...}, "threshold", "min_v_mem", "scale",
    "in_shape", "neuron_shape", "kernel", "stride", "padding", "pool"}], "memory": {kind:
    {"used", "available"}}, "cores_used", "cores_available"}``. Memory in words.
    """
    layers = []
    for i, q in enumerate(network.layers):
        core = None if network.cores is None else int(network.cores[i])
        layer = q.layer
        layers.append({
            "name": layer.name, "nodes": {k: (list(v) if isinstance(v, tuple) else v)
                                          for k, v in layer.nodes.items()},
            "core": core,
            "memory": dict(q.memory._asdict()),
            "core_memory": None if core is None else dict(zip(("kernel", "neuron", "bias"),
                                                              CORE_MEMORY[core])),
            "threshold": int(q.threshold), "min_v_mem": int(q.min_v_mem),
            "scale": float(q.scale), "weight_error": q.weight_error,
            "threshold_error": q.threshold_error,
            "in_shape": list(layer.in_shape), "neuron_shape": list(layer.neuron_shape),
            "kernel": list(layer.kernel), "stride": list(layer.stride),
            "padding": [int(lo) for lo, _ in layer.padding],
            "pool": list(layer.pool_total),
        })
    used = {k: sum(int(getattr(q.memory, k)) for q in network.layers)
            for k in ("kernel", "neuron", "bias")}
    avail = {k: sum(m[j] for m in CORE_MEMORY) for j, k in enumerate(("kernel", "neuron",
                                                                       "bias"))}
    return {"target": "speck", "chip": "Speck 2F (sinabs 3.1.3 Speck2FConfigBuilder)",
            "input_shape": list(network.input_shape), "layers": layers,
            "memory": {k: {"used": used[k], "available": avail[k]} for k in used},
            "cores_used": len(network.layers), "cores_available": len(CORE_MEMORY),
            "notes": list(network.notes)}


def export(graph: nir.NIRGraph, network: SpeckNetwork, path, json_path=None) -> tuple:
    """Write the discretized graph (``.nir``, via :func:`nirjax.write`) and the core mapping
    and memory use (``.json``).

    Args:
        graph: the graph ``network`` was lowered from.
        network: the lowered network (without violations).
        path: the ``.nir`` file to write.
        json_path: the JSON file; default ``path`` with the suffix ``.speck.json``.

    Returns:
        ``(nir path, json path)``.
    """
    from ...io import write

    path = pathlib.Path(path)
    json_path = pathlib.Path(json_path) if json_path is not None else \
        path.with_suffix(".speck.json")
    write(path, to_nir(graph, network))
    with open(json_path, "w") as f:
        json.dump(mapping_json(network), f, indent=1, default=_jsonable)
    return path, json_path


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")
