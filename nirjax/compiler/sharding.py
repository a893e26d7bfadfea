"""Sharding a compiled graph over devices: the ``"batch"`` and ``"neurons"`` axes of a mesh.

``nirjax.compile(graph, dt, mesh=mesh)`` takes a ``jax.sharding.Mesh`` whose axes are named
``"batch"`` and/or ``"neurons"``. Nothing here schedules work: the compiled program is the
same single-device program, and XLA's SPMD partitioner splits it, guided by the shardings of
its arguments and by ``jax.lax.with_sharding_constraint`` on the values this module names.
The results are those of one device (up to the order of floating-point sums in matrix
products and in gradient reductions).

**"batch" (data parallel).** Inputs ``[T, B, ...]``, outputs, records and state are split
along the batch axis; parameters are replicated. Each device simulates ``B / size`` samples;
nothing is communicated in a forward run. The gradient of a loss over the batch with
respect to the replicated parameters is summed across devices by XLA (an all-reduce).
The batch must be divisible by the axis size (an :class:`~nirjax.errors.InputError` says
so otherwise; nirjax does not pad, since padded samples would enter batch means).

**"neurons" (model parallel).** A node is *sharded* when all of these hold:

1. its output per sample has at least ``shard_min`` values (compile option, default
   1024): smaller layers are computed in full on every device, where an all-gather would
   cost more than their memory saves;
2. the first axis of its output (the neurons of a 1-D layer, the channels of a ``(C, H, W)``
   or ``(C, N)`` layer) is divisible by the axis size.

Input nodes follow the same rules: the input ``[T, B, N]`` of a large layer, often the
largest array of a run, is stored split too. A sharded node keeps on each device a
contiguous block of its output's first axis: its output, its state (neuron membranes and
currents, delay lines, the feedback of a recurrent edge), its per-neuron parameters (every parameter with the output's rank and first axis),
and for Affine/Linear the rows of ``weight`` and ``bias`` (for Conv1d/Conv2d the output
channels of ``weight`` and ``bias``). Everything else is replicated.

How the collectives fall (what XLA emits for these layouts; ``describe()`` lists the layout
of every node, and ``tests/test_sharding.py`` reads the compiled HLO):

* the input of a weight layer (Affine, Linear, Conv) is made whole on every device, so the
  spikes of a sharded layer are **all-gathered before the next layer's matrix product**
  (``B/batch x N_in`` values per step); each device then multiplies them by its own rows
  and the product comes out already sharded: no reduction in the forward pass;
* elementwise nodes (neurons, Scale, Threshold, Delay, Output) on a sharded layer run on
  the local block with no communication, inside the time loop as well: the state stays
  sharded from step to step (its constraint is applied in the loop body);
* a recurrent cycle through a sharded layer (``lif -> w_rec -> lif``) all-gathers the
  spikes once per step inside the loop;
* in the backward pass the gradient of a weight layer's input is a sum over the sharded
  output rows: a reduce-scatter/all-reduce of ``B x N_in`` values; gradients of sharded
  parameters stay sharded, gradients of replicated parameters are all-reduced.

Both axes together (``Mesh(devices.reshape(b, n), ("batch", "neurons"))``) combine the two:
batch blocks on one axis, neuron blocks on the other.

A mesh built by ``jax.make_mesh`` has ``Explicit`` axes in this JAX; nirjax uses the same
devices and axis names in ``Auto`` mode (sharding by constraints) and places every array it
is given on that mesh.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from ..errors import InputError, OptionsError

__all__ = ["BATCH", "NEURONS", "MESH_AXES", "check_mesh", "auto_mesh", "NodeLayout",
           "ShardingPlan"]

#: The mesh axis that splits the batch (data parallel).
BATCH = "batch"
#: The mesh axis that splits large layers (model parallel).
NEURONS = "neurons"
#: The axis names a nirjax mesh may have.
MESH_AXES = (BATCH, NEURONS)

# weight layers: which axis of ``weight`` holds the output features / channels
_WEIGHT_OUT_AXIS = {"Affine": -2, "Linear": -2, "Conv1d": 0, "Conv2d": 0}


def check_mesh(mesh: Any) -> Mesh:
    """Validate the ``mesh`` compile option.

    Args:
        mesh: a ``jax.sharding.Mesh`` whose axis names are among ``"batch"`` and
            ``"neurons"``.

    Returns:
        ``mesh`` itself.

    Raises:
        OptionsError: not a Mesh, an unknown or repeated axis name, or no axis.
    """
    if not isinstance(mesh, Mesh):
        raise OptionsError(
            f"compile option mesh={mesh!r}: expected a jax.sharding.Mesh with axes named "
            f"'batch' and/or 'neurons' (e.g. jax.make_mesh((8,), ('batch',))), got "
            f"{type(mesh).__name__}")
    names = tuple(mesh.axis_names)
    unknown = [a for a in names if a not in MESH_AXES]
    if not names or unknown or len(set(names)) != len(names):
        raise OptionsError(
            f"compile option mesh: axis names {names}; expected 'batch' (data parallel) and/or "
            f"'neurons' (model parallel), each at most once"
            + (f"; unknown: {unknown}" if unknown else ""))
    return mesh


def auto_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` with every axis in ``Auto`` mode (same devices, same names).

    nirjax guides XLA's partitioner with sharding constraints, which JAX allows on Auto
    axes only; ``jax.make_mesh`` makes Explicit axes by default.
    """
    types = getattr(mesh, "axis_types", None)
    if types is not None and all(t == AxisType.Auto for t in types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


@dataclasses.dataclass(frozen=True)
class NodeLayout:
    """Where one node's values live.

    Attributes:
        name: the node.
        sharded: whether the first axis of its output is split over ``"neurons"``.
        reason: why (not), for :meth:`ShardingPlan.describe`.
    """

    name: str
    sharded: bool
    reason: str


class ShardingPlan:
    """The layout of a program's values, parameters and state on a mesh.

    Built by :class:`~nirjax.compiler.CompiledGraph` when a ``mesh`` is given; see the
    module documentation for the rules.

    Args:
        program: the compiled :class:`~nirjax.compiler.Program`.
        mesh: a mesh accepted by :func:`check_mesh`.
        shard_min: the smallest output (values per sample) the ``"neurons"`` axis shards.

    Attributes:
        mesh: the mesh in Auto mode (:func:`auto_mesh`).
        batch_size / neuron_size: the sizes of the two axes (1 when absent).
        layouts: node name -> :class:`NodeLayout`.
    """

    def __init__(self, program, mesh: Mesh, shard_min: int):
        self.mesh = auto_mesh(check_mesh(mesh))
        shape = dict(self.mesh.shape)
        self.batch_size = int(shape.get(BATCH, 1))
        self.neuron_size = int(shape.get(NEURONS, 1))
        self.program = program
        self.shard_min = int(shard_min)
        self.layouts = {n.name: self._layout(n) for n in program.nodes}

    # ------------------------------------------------------------------ the rules

    def _layout(self, n) -> NodeLayout:
        d = self.neuron_size
        if NEURONS not in self.mesh.axis_names or d == 1:
            return NodeLayout(n.name, False, "no 'neurons' axis of size > 1")
        shape = tuple(n.out_shape)
        if not shape:
            return NodeLayout(n.name, False, "a scalar output")
        size = math.prod(shape)
        if size < self.shard_min:
            return NodeLayout(n.name, False, f"{size} values per sample < shard_min={self.shard_min}")
        if shape[0] % d:
            return NodeLayout(n.name, False, f"first axis {shape[0]} not divisible by {d} devices")
        return NodeLayout(n.name, True, f"first axis {shape[0]} split into {d} blocks of {shape[0] // d}")

    @property
    def batch_axis(self) -> str | None:
        """``"batch"`` when the mesh has that axis, else ``None``."""
        return BATCH if BATCH in self.mesh.axis_names else None

    def sharded(self, name: str) -> bool:
        """Whether node ``name`` is split over ``"neurons"``."""
        return self.layouts[name].sharded

    def value_spec(self, name: str) -> tuple:
        """The per-sample partition of node ``name``'s output (one entry per axis)."""
        n = self.program.node(name)
        rank = len(n.out_shape)
        if self.sharded(name):
            return (NEURONS,) + (None,) * (rank - 1)
        return (None,) * rank

    def input_spec(self, name: str) -> tuple:
        """The per-sample partition of the summed input of node ``name``: whole for a
        weight layer (the all-gather before the matrix product), else the output's layout
        when the shapes agree."""
        n = self.program.node(name)
        rank = len(n.in_shape)
        if (n.type_name in _WEIGHT_OUT_AXIS or tuple(n.in_shape) != tuple(n.out_shape)
                or not self.sharded(name)):
            return (None,) * rank
        return self.value_spec(name)

    def gathers_input(self, name: str) -> bool:
        """Whether node ``name`` gathers a split input whole (a weight layer fed by a
        sharded node): its input is an all-gather."""
        n = self.program.node(name)
        if n.type_name not in _WEIGHT_OUT_AXIS:
            return False
        return any(self.sharded(e.src) for e in self.program.incoming(name))

    def leaf_spec(self, name: str, shape: tuple) -> tuple:
        """The per-sample partition of a state leaf of node ``name`` with ``shape``: the
        axis aligned with the output's first axis (trailing alignment, as broadcasting
        does) is split when the node is sharded."""
        shape = tuple(shape)
        out = tuple(self.program.node(name).out_shape)
        spec = [None] * len(shape)
        if self.sharded(name) and out and len(shape) >= len(out) and shape[len(shape) - len(out):] == out:
            spec[len(shape) - len(out)] = NEURONS
        return tuple(spec)

    def param_spec(self, name: str, field: str, shape: tuple) -> tuple:
        """The partition of parameter ``field`` (``shape``) of node ``name``.

        A sharded weight layer splits the output axis of ``weight`` and its ``bias``; other
        sharded nodes split every parameter with the output's rank and first axis (e.g.
        ``tau`` of shape ``(N,)``); everything else is replicated.
        """
        shape = tuple(shape)
        spec = [None] * len(shape)
        if not self.sharded(name) or not shape:
            return tuple(spec)
        n = self.program.node(name)
        out = tuple(n.out_shape)
        axis = _WEIGHT_OUT_AXIS.get(n.type_name)
        if axis is not None and field == "weight" and len(shape) >= 2:
            a = axis % len(shape)
            if shape[a] == out[0]:
                spec[a] = NEURONS
        elif len(shape) == len(out) and shape[0] == out[0]:
            spec[0] = NEURONS
        elif axis is not None and field == "bias" and len(shape) == 1 and shape[0] == out[0]:
            spec[0] = NEURONS
        return tuple(spec)

    # ------------------------------------------------------------------ placing values

    def sharding(self, spec: tuple) -> NamedSharding:
        """The ``NamedSharding`` of a full partition ``spec`` on the mesh."""
        return NamedSharding(self.mesh, PartitionSpec(*spec))

    def batched(self, lead: int, batch_at: int | None, spec: tuple) -> tuple:
        """A full partition: ``lead`` leading axes (the one at ``batch_at`` split over
        ``"batch"``) followed by a per-sample ``spec``."""
        head = [None] * lead
        if batch_at is not None:
            head[batch_at] = self.batch_axis
        return tuple(head) + tuple(spec)

    def constrain(self, x, spec: tuple):
        """``with_sharding_constraint(x, spec)``: the value stays where ``spec`` says."""
        return jax.lax.with_sharding_constraint(x, self.sharding(spec))

    def put(self, x, spec: tuple):
        """Place ``x`` (a NumPy or JAX array) with the partition ``spec``.

        A traced value is constrained instead; an array already laid out so is returned
        as it is; an array spread over devices of another process layout (a global array
        of a multi-process run) is resharded by XLA.
        """
        if isinstance(x, jax.core.Tracer):
            return self.constrain(x, spec)
        target = self.sharding(spec)
        if isinstance(x, jax.Array):
            if _same_mesh(x.sharding, self.mesh) and x.sharding.is_equivalent_to(target, x.ndim):
                return x
            if not x.is_fully_addressable:
                # a global array of a multi-process run (e.g. from global_batch): the
                # compiled run's own constraint moves it where it belongs
                return x
        return jax.device_put(x, target)

    def on_mesh(self, x) -> bool:
        """Whether ``x`` is a JAX array laid out on this plan's mesh."""
        return isinstance(x, jax.Array) and _same_mesh(x.sharding, self.mesh)

    def check_batch(self, batch: int, what: str) -> None:
        """Raise an :class:`InputError` unless ``batch`` divides over the ``"batch"`` axis."""
        if self.batch_size > 1 and batch % self.batch_size:
            raise InputError(
                f"{what}: batch size {batch} is not divisible by the mesh's 'batch' axis "
                f"({self.batch_size} devices); use a multiple of {self.batch_size} (nirjax "
                f"does not pad: padded samples would change batch means)")

    def _map_params(self, params, fn):
        out = {}
        for name, p in params.items():
            fields = getattr(p, "_fields", None)
            if name in self.layouts and fields is not None:
                out[name] = type(p)(*(fn(getattr(p, f), self.param_spec(
                    name, f, np.shape(getattr(p, f)))) for f in fields))
            else:
                out[name] = jax.tree_util.tree_map(lambda a: fn(a, (None,) * np.ndim(a)), p)
        return out

    def put_params(self, params):
        """``params`` (node -> NamedTuple of arrays) placed on the mesh (see
        :meth:`param_spec`)."""
        return self._map_params(params, self.put)

    def constrain_params(self, params):
        """``params`` constrained to their layout inside a traced computation."""
        return self._map_params(params, self.constrain)

    # ------------------------------------------------------------------ layouts in a trace

    def lay(self, x, spec: tuple, lead: int = 0, batch_at: int | None = None):
        """``x`` constrained to the per-sample partition ``spec`` behind ``lead`` leading
        axes (the one at ``batch_at`` split over ``"batch"``)."""
        return self.constrain(x, self.batched(lead, batch_at, spec))

    def lay_state(self, state, lead: int = 1):
        """A batched state (a ``GraphState``; ``lead`` = 1: ``[B, ...]``) constrained to its
        layout: each leaf by :meth:`leaf_spec`, each feedback value by :meth:`value_spec`."""
        nodes = {name: jax.tree_util.tree_map(
            lambda a, name=name: self.lay(a, self.leaf_spec(name, a.shape[lead:]), lead, lead - 1),
            s) for name, s in state.nodes.items()}
        feedback = {name: self.lay(v, self.value_spec(name), lead, lead - 1)
                    for name, v in state.feedback.items()}
        return type(state)(nodes, feedback)

    def lay_node_state(self, name: str, node_state, lead: int = 1):
        """One node's batched state constrained to its layout."""
        return jax.tree_util.tree_map(
            lambda a: self.lay(a, self.leaf_spec(name, a.shape[lead:]), lead, lead - 1),
            node_state)

    def lay_values(self, values: dict, lead: int, batch_at: int | None) -> dict:
        """Node outputs (keyed by node name) constrained to their layout."""
        return {k: self.lay(v, self.value_spec(k), lead, batch_at) for k, v in values.items()}

    def lay_record(self, record: tuple, recs: tuple, lead: int, batch_at: int) -> tuple:
        """Recorded values ``[T, B, ...]`` (in ``record`` order) constrained to their node's
        layout."""
        out = []
        for item, v in zip(record, recs):
            if isinstance(item, tuple):
                spec = self.leaf_spec(item[0], v.shape[lead:])
            else:
                spec = self.value_spec(item)
            out.append(self.lay(v, spec, lead, batch_at))
        return tuple(out)

    # ------------------------------------------------------------------ reporting

    def describe(self) -> str:
        """Each node's layout, one line per node."""
        axes = ", ".join(f"{a}={s}" for a, s in dict(self.mesh.shape).items())
        lines = [f"mesh {axes} ({self.mesh.devices.size} devices); "
                 f"shard_min={self.shard_min}"]
        for n in self.program.nodes:
            lay = self.layouts[n.name]
            spec = self.value_spec(n.name)
            lines.append(f"  {n.name:<20} {str(tuple(n.out_shape)):<14} "
                         f"{'sharded ' + str(spec) if lay.sharded else 'whole':<28} {lay.reason}")
        return "\n".join(lines)


def _same_mesh(sharding, mesh) -> bool:
    return isinstance(sharding, NamedSharding) and sharding.mesh == mesh
