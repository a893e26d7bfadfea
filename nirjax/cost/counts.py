"""Activity counts of a simulated graph, in NeuroBench 2.3.0's definitions.

:func:`count_activity` runs a compiled graph once, inside ONE jitted function: the model's
own ``run`` with every node the counts need recorded, followed by the reductions over
neurons, all on the device. What comes back to the host is one small ``[T, B]`` integer
array per node and metric (the count of one step of one sample); the host only sums those
in int64 (a sum over steps and samples can overflow int32 on large graphs) and divides by
the batch size.

The definitions follow NeuroBench 2.3.0's source (``neurobench/metrics``, read from the
released package):

* **Synaptic operations** (``SynapticOperations``, ``metrics/utils/layers/macs.py``): every
  Affine / Linear / Conv1d / Conv2d node (NeuroBench's connection layers: torch ``Linear``
  and ``ConvNd``; bias ignored), at every step, counts the pairs (nonzero weight, nonzero
  input) that meet in its product, i.e. the output of the layer with weights and input
  binarised (``x != 0 -> 1``). A conv counts each tap that lands on a real input position,
  never on padding. nirjax computes this as ``sum_i [x_i != 0] * fanout_i`` where
  ``fanout_i`` is the number of nonzero weights input element ``i`` meets (the transpose of
  the binarised layer applied to ones). A step's count is an AC when the layer's whole input
  at that step (the whole batch, as NeuroBench's forward hook sees it) lies in {-1, 0, 1},
  else a MAC. ``Dense`` is the same count with every weight and every input set to one.
* **Activation sparsity** (``ActivationSparsity``): ``1 - nonzero / total`` over the outputs
  of every spiking node (LIF, CubaLIF, IF, Threshold: NeuroBench's ``SpikingNeuron``
  layers) at every step and sample.
* **Membrane updates** (``MembraneUpdates``): for every neuron node (a node whose state has a
  membrane ``v``): all its neurons at the first step, then at every later step the neurons
  whose membrane (after the reset) differs from the previous step's.
* **Connection sparsity** (``ConnectionSparsity``): zero weights / all weights of the
  connection layers (weights only, no biases). NeuroBench rounds it to 4 decimals; nirjax
  does not round.
* **Footprint** (``Footprint``): bytes of every parameter array of the simulated graph
  (``model.params`` in the model's dtype). NeuroBench measures torch's parameters and
  buffers of the framework's module: for the connection layers this is the same number (the
  weights and biases, float32); neuron layers differ by how a framework stores constants
  (snnTorch keeps one scalar threshold/beta buffer per layer, nirjax one value per neuron).

Every count is *per sample*: the sum over the batch divided by the batch size, as
NeuroBench divides by the number of samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..kernels.geometry import conv_padding

__all__ = ["SYNAPTIC_TYPES", "NEURON_TYPES", "ActivityCounts", "count_activity", "node_kinds",
           "fanout"]

#: NIR types whose products NeuroBench counts as synaptic operations.
SYNAPTIC_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d")

_INT32_MAX = np.iinfo(np.int32).max


#: neuron types: a node of these types has a membrane ``v`` in its state
NEURON_TYPES = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I")


def node_kinds(model) -> dict:
    """Classify every node of a compiled graph for counting.

    Returns:
        node name -> one of ``"synapse"`` (Affine, Linear, Conv1d, Conv2d), ``"neuron"``
        (LIF, CubaLIF, IF, LI, CubaLI, I: a membrane ``v`` in the state), ``"input"``,
        ``"output"`` or ``"route"`` (everything else: Flatten, pooling, Scale, Delay, ...).

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Linear(np.eye(2)), nir.IF(r=np.ones(2),
    ...     v_threshold=np.ones(2), v_reset=np.zeros(2)))
    >>> sorted(node_kinds(nirjax.compile(g, dt=1e-4)).values())
    ['input', 'neuron', 'output', 'synapse']
    """
    program = model.program
    inputs, outputs = set(program.inputs), set(program.outputs)
    kinds = {}
    for n in program.nodes:
        if n.name in inputs:
            kinds[n.name] = "input"
        elif n.name in outputs:
            kinds[n.name] = "output"
        elif n.type_name in SYNAPTIC_TYPES:
            kinds[n.name] = "synapse"
        elif n.type_name in NEURON_TYPES:
            kinds[n.name] = "neuron"
        else:
            kinds[n.name] = "route"
    return kinds


def _conv_options(node, nd):
    """Stride, explicit padding pairs, dilation and groups of a Conv node (from its NIR
    node's fields, padding resolved by :func:`nirjax.kernels.geometry.conv_padding`)."""
    src = node.source

    def per_axis(value):
        return tuple(int(v) for v in np.broadcast_to(np.asarray(value).reshape(-1), (nd,)))

    kernel = tuple(np.shape(src.weight)[2:])
    stride, dilation = per_axis(src.stride), per_axis(src.dilation)
    padding = src.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if not isinstance(padding, str):
        padding = per_axis(padding)
    groups = int(np.asarray(src.groups).reshape(-1)[0])
    return stride, conv_padding(padding, kernel, dilation), dilation, groups


def fanout(node, weight, ones: bool = False) -> np.ndarray:
    """Per input element of a weight node: how many nonzero weights (every weight, with
    ``ones``) it meets in the layer's product, i.e. the transpose of the binarised layer
    applied to ones (int64, shaped like the node's input).

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Linear(np.array([[1.0, 0.0], [2.0, 0.0]])))
    >>> n = nirjax.compile(g, dt=1e-4).program.node("linear")
    >>> fanout(n, n.params.weight).tolist(), fanout(n, n.params.weight, ones=True).tolist()
    ([2, 0], [2, 2])
    """
    w = np.asarray(weight)
    wb = np.ones(w.shape, np.float32) if ones else (w != 0).astype(np.float32)
    if node.type_name in ("Affine", "Linear"):
        return np.rint(wb.sum(axis=0)).astype(np.int64).reshape(node.in_shape)
    nd = w.ndim - 2
    stride, padding, dilation, groups = _conv_options(node, nd)
    spatial = "HW"[:nd] if nd == 2 else "H"
    dims = ("NC" + spatial, "OI" + spatial, "NC" + spatial)

    def layer(x):
        return jax.lax.conv_general_dilated(
            x[None], jnp.asarray(wb), window_strides=stride, padding=padding,
            rhs_dilation=dilation, feature_group_count=groups, dimension_numbers=dims,
            precision=jax.lax.Precision.HIGHEST)[0]

    x0 = jnp.zeros(node.in_shape, jnp.float32)
    y, vjp = jax.vjp(layer, x0)
    (fan,) = vjp(jnp.ones_like(y))
    return np.rint(np.asarray(fan, np.float64)).astype(np.int64)


@dataclasses.dataclass
class ActivityCounts:
    """Activity counts of one run of a graph (see :mod:`nirjax.cost.counts`).

    Attributes:
        steps: time steps ``T`` of the run.
        batch: samples ``B`` in the run.
        dt: the graph's time step.
        totals: per-sample totals under NeuroBench's names (``"Effective_ACs"``,
            ``"Effective_MACs"``, ``"Dense"``, ``"ActivationSparsity"``,
            ``"ConnectionSparsity"``, ``"MembraneUpdates"``, ``"Footprint"``) and nirjax's
            additions (``"SynapticOperations"`` = ACs + MACs, ``"Spikes"``,
            ``"NeuronUpdates"``, ``"Neurons"``, ``"Synapses"``).
        per_node: node name -> that node's per-sample counts (keys below).
        per_sample: total name -> ``[B]`` array of that total for each sample.
        kinds: node name -> its kind (see :func:`node_kinds`).

    Per-node keys: ``type``, ``kind``, ``neurons``, ``spiking``, ``events`` (nonzero
    outputs per sample; for spiking nodes, the spikes emitted), ``effective_acs``,
    ``effective_macs``, ``synops``, ``dense``, ``weights``, ``zero_weights``,
    ``membrane_updates``, ``neuron_updates``, ``footprint_bytes``, ``in_size``,
    ``out_size``.
    """

    steps: int
    batch: int
    dt: float
    totals: dict
    per_node: dict
    per_sample: dict
    kinds: dict

    def as_dict(self) -> dict:
        """The totals plus ``"per_node"``, ``"steps"`` and ``"batch"`` (JSON-ready)."""
        out = dict(self.totals)
        out["per_node"] = {k: dict(v) for k, v in self.per_node.items()}
        out["steps"] = self.steps
        out["batch"] = self.batch
        return out


def _shifted(a):
    """``a`` delayed by one step along axis 0 (zeros at step 0)."""
    return jnp.concatenate([jnp.zeros_like(a[:1]), a[:-1]], axis=0)


def _device_counts(model, kinds: dict, spiking: dict):
    """The jitted counting function ``(params, xs) -> {node: {metric: [T, B] int32}}``."""
    program = model.program
    synapses = [n for n in program.nodes if kinds[n.name] == "synapse"]
    neurons = [n for n in program.nodes if kinds[n.name] == "neuron"]
    sources = {e.src for n in synapses for e in program.incoming(n.name)}
    # outputs to record: sources of synapses, spiking nodes, inputs (for input rates)
    out_names = sorted(sources | {n for n, s in spiking.items() if s}
                       | {n.name for n in program.nodes if kinds[n.name] == "input"})
    record = list(out_names) + [(n.name, "v") for n in neurons]

    def reduce_neurons(a):
        return a.reshape(a.shape[:2] + (-1,))

    def fn(params, xs, fans):
        _, _, rec = model.run(params, xs, record=record)
        result: dict[str, dict] = {}
        for name in out_names:
            if spiking.get(name) or kinds[name] == "input":
                val = reduce_neurons(rec[name])
                result.setdefault(name, {})["events"] = jnp.sum(val != 0, axis=-1,
                                                                dtype=jnp.int32)
        for n in synapses:
            x = None
            for e in program.incoming(n.name):
                v = rec[e.src]
                v = _shifted(v) if e.delayed else v
                x = v if x is None else x + v
            if x is None:
                steps, batch = jax.tree_util.tree_leaves(xs)[0].shape[:2]
                x = jnp.zeros((steps, batch) + n.in_shape, jnp.float32)
            fan = fans[n.name]
            nz = (x != 0).astype(jnp.int32)
            ops = jnp.sum(reduce_neurons(nz * jnp.reshape(fan, (1, 1) + jnp.shape(fan))), axis=-1,
                          dtype=jnp.int32)
            flat = reduce_neurons(x)
            spikes_only = jnp.all((flat == 0) | (flat == 1) | (flat == -1), axis=-1)  # [T, B]
            result[n.name] = {"ops": ops, "spike_input": spikes_only}
        for n in neurons:
            v = reduce_neurons(rec[(n.name, "v")])
            changed = jnp.sum(v[1:] != v[:-1], axis=-1, dtype=jnp.int32)
            first = jnp.full((1, v.shape[1]), v.shape[2], jnp.int32)
            result.setdefault(n.name, {})["membrane"] = jnp.concatenate([first, changed], 0)
        return result

    return jax.jit(fn)


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def count_activity(model, xs, params: Mapping | None = None, *,
                   classify: str = "batch", batch_size: int | None = None) -> ActivityCounts:
    """Count the activity of ``model`` on ``xs`` (NeuroBench 2.3.0's definitions).

    The run starts from ``model.init_state(B)``. The recording and every reduction over
    neurons happen inside one jitted function; see :mod:`nirjax.cost.counts` for each
    definition.

    Args:
        model: a :class:`~nirjax.CompiledGraph`.
        xs: the input, ``[T, B, *input_shape]`` (a dict keyed by Input name for several
            Input nodes).
        params: parameters to count with (default ``model.params``).
        classify: how a step's products are classified as ACs or MACs. ``"batch"``
            (default): by the layer's input over the whole batch at that step, as
            NeuroBench's hook sees a batch (equal to NeuroBench run with ``xs`` as one
            batch); ``"sample"``: by each sample's own input (equal to NeuroBench run one
            sample at a time).
        batch_size: run the samples in chunks of this many (bounds the memory of the
            recorded activity, ``T * batch_size`` values per recorded node); the counts do
            not depend on it (default: all samples in one call).

    Returns:
        An :class:`ActivityCounts` (per-sample totals, per-node counts, per-sample arrays).

    >>> import nir, numpy as np, nirjax
    >>> from nirjax.cost import count_activity
    >>> g = nir.NIRGraph.from_list(nir.Linear(np.array([[1.0, 0.0], [2.0, 3.0]])),
    ...     nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)))
    >>> model = nirjax.compile(g, dt=1e-4)
    >>> xs = np.array([[[1.0, 0.0]], [[1.0, 1.0]]])  # T=2, B=1
    >>> c = count_activity(model, xs)
    >>> c.totals["Effective_ACs"], c.totals["Dense"], c.totals["ConnectionSparsity"]
    (5.0, 8.0, 0.25)
    """
    params = model.params if params is None else params
    if classify not in ("batch", "sample"):
        raise InputError(f"classify must be 'batch' or 'sample', got {classify!r}")
    if not hasattr(model, "program") or not hasattr(model, "run"):
        raise InputError(
            f"count_activity expects a compiled graph (nirjax.compile(...)), got "
            f"{type(model).__name__}")
    program = model.program
    kinds = node_kinds(model)
    spiking = {n.name: bool(n.rule.spiking) for n in program.nodes}
    fn = _device_counts(model, kinds, spiking)
    fans = {n.name: fanout(n, params[n.name].weight).astype(np.int32)
            for n in program.nodes if kinds[n.name] == "synapse"}
    first = next(iter(xs.values())) if isinstance(xs, Mapping) else xs
    steps, batch = int(np.shape(first)[0]), int(np.shape(first)[1])
    if batch_size is None or batch_size >= batch:
        raw = jax.device_get(fn(params, xs, fans))
    else:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive int or None, got {batch_size!r}")
        pieces = []
        for start in range(0, batch, batch_size):
            chunk = jax.tree_util.tree_map(lambda a: a[:, start:start + batch_size], xs)
            pieces.append(jax.device_get(fn(params, chunk, fans)))
        # every count is [T, B]: samples are independent, so chunks concatenate on B
        raw = jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=1), *pieces)

    per_node: dict[str, dict] = {}
    per_sample = {k: np.zeros(batch, np.float64) for k in (
        "Effective_ACs", "Effective_MACs", "SynapticOperations", "MembraneUpdates", "Spikes")}
    dense_total = 0
    weights_total = zeros_total = 0
    footprint_total = 0
    spiking_events = np.zeros(batch, np.int64)
    spiking_slots = 0
    neurons_total = 0
    for n in program.nodes:
        kind = kinds[n.name]
        p = params.get(n.name) if n.params is not None else None
        leaves = jax.tree_util.tree_leaves(p) if p is not None else []
        footprint = int(sum(np.asarray(a).nbytes for a in leaves))
        entry: dict[str, Any] = {
            "type": n.type_name, "kind": kind, "spiking": spiking[n.name],
            "in_size": _size(n.in_shape), "out_size": _size(n.out_shape),
            "neurons": _size(n.out_shape) if kind == "neuron" else 0,
            "events": 0.0, "effective_acs": 0.0, "effective_macs": 0.0, "synops": 0.0,
            "dense": 0.0, "weights": 0, "zero_weights": 0, "membrane_updates": 0.0,
            "neuron_updates": 0.0, "footprint_bytes": footprint,
        }
        footprint_total += footprint
        rec = raw.get(n.name, {})
        if "events" in rec:
            ev = np.asarray(rec["events"], np.int64).sum(axis=0)
            entry["events"] = float(ev.sum() / batch)
            if spiking[n.name]:
                spiking_events += ev
                spiking_slots += _size(n.out_shape) * steps * batch
                per_sample["Spikes"] += ev
        if kind == "synapse":
            weight = np.asarray(p.weight)
            entry["weights"] = int(weight.size)
            entry["zero_weights"] = int(np.sum(weight == 0))
            weights_total += entry["weights"]
            zeros_total += entry["zero_weights"]
            dense_step = int(fanout(n, p.weight, ones=True).sum())
            entry["dense"] = float(dense_step) * steps
            dense_total += dense_step * steps
            ops = np.asarray(rec["ops"], np.int64)                  # [T, B]
            spike_in = np.asarray(rec["spike_input"], bool)           # [T, B]
            if classify == "batch":
                spike_in = np.all(spike_in, axis=1, keepdims=True)
            acs = np.where(spike_in, ops, 0).sum(axis=0)
            macs = np.where(spike_in, 0, ops).sum(axis=0)
            entry["effective_acs"] = float(acs.sum() / batch)
            entry["effective_macs"] = float(macs.sum() / batch)
            entry["synops"] = entry["effective_acs"] + entry["effective_macs"]
            per_sample["Effective_ACs"] += acs
            per_sample["Effective_MACs"] += macs
            per_sample["SynapticOperations"] += acs + macs
            if dense_step > _INT32_MAX:
                raise InputError(
                    f"node {n.name!r} ({n.type_name}): {dense_step} synaptic operations in "
                    f"one step of one sample exceed the int32 counters of count_activity")
        if kind == "neuron":
            mem = np.asarray(rec["membrane"], np.int64).sum(axis=0)
            entry["membrane_updates"] = float(mem.sum() / batch)
            entry["neuron_updates"] = float(entry["neurons"] * steps)
            per_sample["MembraneUpdates"] += mem
            neurons_total += entry["neurons"]
        per_node[n.name] = entry

    totals = {
        "Effective_ACs": float(per_sample["Effective_ACs"].sum() / batch),
        "Effective_MACs": float(per_sample["Effective_MACs"].sum() / batch),
        "Dense": float(dense_total),
        "ActivationSparsity": (float(1.0 - spiking_events.sum() / spiking_slots)
                               if spiking_slots else 0.0),
        "ConnectionSparsity": float(zeros_total / weights_total) if weights_total else 0.0,
        "MembraneUpdates": float(per_sample["MembraneUpdates"].sum() / batch),
        "Footprint": int(footprint_total),
        "SynapticOperations": float(per_sample["SynapticOperations"].sum() / batch),
        "Spikes": float(per_sample["Spikes"].sum() / batch),
        "NeuronUpdates": float(neurons_total * steps),
        "Neurons": int(neurons_total),
        "Synapses": int(weights_total - zeros_total),
    }
    return ActivityCounts(steps=steps, batch=batch, dt=float(program.dt), totals=totals,
                          per_node=per_node, per_sample=per_sample, kinds=kinds)
