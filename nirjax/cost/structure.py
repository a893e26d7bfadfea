"""The graph's structure as the chip capacity checks see it: neuron populations, weight
layers between them, and what routes between the two.

Built from a compiled graph's public :class:`~nirjax.Program` (nodes with ``type_name``,
``in_shape``, ``out_shape``, ``params``; edges), no jax work. A weight layer's *sources* and
*targets* are the nearest neuron, input, output or weight node reached through routing
nodes (Flatten, pooling, Scale, Delay, ...), so ``Conv2d -> IF -> SumPool2d -> Conv2d``
shows the second conv fed by the IF population with a pooling on the way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .counts import node_kinds

__all__ = ["Population", "Projection", "Structure", "structure_of"]


@dataclasses.dataclass(frozen=True)
class Population:
    """A neuron node.

    Attributes:
        name / type_name: the node.
        size: number of neurons; shape: their unbatched shape.
        spiking: whether the node emits spikes.
        readout: whether it feeds a graph Output (through routing nodes only).
    """

    name: str
    type_name: str
    size: int
    shape: tuple
    spiking: bool
    readout: bool


@dataclasses.dataclass(frozen=True)
class Projection:
    """A weight node (Affine, Linear, Conv1d, Conv2d).

    Attributes:
        name / type_name: the node.
        weight_shape: the weight's shape; weights: its size; nonzero: nonzero entries.
        in_shape / out_shape: unbatched shapes of the product.
        sources / targets: nearest non-routing nodes upstream / downstream.
        routes_in / routes_out: types of the routing nodes crossed on the way.
        recurrent: whether the projection lies on a cycle.
        fan_in: largest number of nonzero weights into one output element (dense layers;
            for convs, nonzero weights of one output channel).
        fan_out: largest number of nonzero weights out of one input element (dense
            layers; for convs, nonzero weights of one input channel).
        mask: ``[out, in]`` nonzero mask of a dense layer (``None`` for convs).
        bias: whether the node has a nonzero bias.
    """

    name: str
    type_name: str
    weight_shape: tuple
    weights: int
    nonzero: int
    in_shape: tuple
    out_shape: tuple
    sources: tuple
    targets: tuple
    routes_in: tuple
    routes_out: tuple
    recurrent: bool
    fan_in: int
    fan_out: int
    mask: np.ndarray | None = None
    bias: bool = False


@dataclasses.dataclass(frozen=True)
class Structure:
    """Populations and projections of a compiled graph (see :func:`structure_of`).

    Attributes:
        inputs: Input node name -> its size.
        outputs: Output node names.
        populations: neuron node name -> :class:`Population` (program order).
        projections: weight node name -> :class:`Projection` (program order).
        kinds: node name -> kind (:func:`nirjax.cost.node_kinds`).
        types: node name -> NIR type name.
    """

    inputs: dict
    outputs: tuple
    populations: dict
    projections: dict
    kinds: dict
    types: dict

    @property
    def neurons(self) -> int:
        """Total neurons."""
        return sum(p.size for p in self.populations.values())

    @property
    def synapses(self) -> int:
        """Total nonzero weights."""
        return sum(p.nonzero for p in self.projections.values())


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _walk(start, step, kinds, types):
    """Nearest non-route nodes from ``start`` following ``step`` (a node -> next nodes)."""
    found, routes, seen = [], [], {start}
    frontier = list(step(start))
    while frontier:
        name = frontier.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if kinds[name] == "route":
            routes.append(types[name])
            frontier.extend(step(name))
        else:
            found.append(name)
    return tuple(dict.fromkeys(found)), tuple(routes)


def _on_cycle(name, succ) -> bool:
    stack, seen = list(succ.get(name, ())), set()
    while stack:
        n = stack.pop()
        if n == name:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(succ.get(n, ()))
    return False


def structure_of(model) -> Structure:
    """The populations and projections of a compiled graph.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Linear(np.ones((3, 2))), nir.IF(r=np.ones(3),
    ...     v_threshold=np.ones(3), v_reset=np.zeros(3)))
    >>> s = structure_of(nirjax.compile(g, dt=1e-4))
    >>> [(p.size, p.readout) for p in s.populations.values()]
    [(3, True)]
    >>> [(p.sources, p.targets, p.fan_in, p.fan_out) for p in s.projections.values()]
    [(('input',), ('if',), 2, 3)]
    """
    program = model.program
    kinds = node_kinds(model)
    types = {n.name: n.type_name for n in program.nodes}
    succ: dict[str, list] = {n.name: [] for n in program.nodes}
    pred: dict[str, list] = {n.name: [] for n in program.nodes}
    for e in program.edges:
        succ[e.src].append(e.dst)
        pred[e.dst].append(e.src)
    populations = {}
    for n in program.nodes:
        if kinds[n.name] != "neuron":
            continue
        downstream, _ = _walk(n.name, lambda k: succ[k], kinds, types)
        populations[n.name] = Population(
            name=n.name, type_name=n.type_name, size=_size(n.out_shape),
            shape=tuple(n.out_shape), spiking=bool(n.rule.spiking),
            readout=any(kinds[d] == "output" for d in downstream))
    projections = {}
    for n in program.nodes:
        if kinds[n.name] != "synapse":
            continue
        w = np.asarray(n.params.weight)
        nz = w != 0
        if n.type_name in ("Affine", "Linear"):
            mask = nz.reshape(w.shape[0], -1)
            fan_in = int(mask.sum(axis=1).max()) if mask.size else 0
            fan_out = int(mask.sum(axis=0).max()) if mask.size else 0
        else:  # conv: weight [C_out, C_in/groups, *kernel]
            mask = None
            fan_in = int(nz.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0
            fan_out = int(np.moveaxis(nz, 1, 0).reshape(w.shape[1], -1).sum(axis=1).max()) \
                if w.size else 0
        sources, routes_in = _walk(n.name, lambda k: pred[k], kinds, types)
        targets, routes_out = _walk(n.name, lambda k: succ[k], kinds, types)
        projections[n.name] = Projection(
            name=n.name, type_name=n.type_name, weight_shape=tuple(w.shape),
            weights=int(w.size), nonzero=int(nz.sum()), in_shape=tuple(n.in_shape),
            out_shape=tuple(n.out_shape), sources=sources, targets=targets,
            routes_in=routes_in, routes_out=routes_out, recurrent=_on_cycle(n.name, succ),
            fan_in=fan_in, fan_out=fan_out, mask=mask,
            bias=bool(np.any(np.asarray(getattr(n.params, "bias", 0.0)) != 0)))
    inputs = {name: _size(program.node(name).out_shape) for name in program.inputs}
    return Structure(inputs=inputs, outputs=tuple(program.outputs), populations=populations,
                     projections=projections, kinds=kinds, types=types)
