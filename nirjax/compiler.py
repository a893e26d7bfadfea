"""Compile a NIR graph into one jitted ``lax.scan`` over time.

The step function is an interpreter over the ordered :class:`~nirjax.ir.Program`, run once
at trace time: for every node in order it sums the node's incoming edges, calls the node's
kernel and stores the output under the node's name (the ``env``/``read``/``write`` loop of
``jax.core.eval_jaxpr``). The traced step is free of Python work, and the whole simulation is
one ``lax.scan`` of it inside ``jax.jit``, so compile time does not grow with the number of
steps.

Within one step:

1. nodes without direct feedthrough (Delay of >= 1 step) emit their output from state;
2. every other node runs in program order; its input is the sum of its incoming edges, where
   a *delayed* edge (one that closes a cycle, see :mod:`nirjax.graph`) reads its source's
   output of the previous step (zeros at step 0) and every other edge reads the value
   computed earlier in this step; a node with no incoming edge gets zeros;
3. nodes without feedthrough absorb their summed input;
4. outputs of the sources of delayed edges are stored for the next step.

The kernels work on one sample; the step is ``vmap``-ed over the batch axis.
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import nir

from .errors import GraphError, InputError, SemanticsError
from .ir import Program, build_program
from .semantics import Semantics, check_dt, resolve_semantics

__all__ = ["compile", "CompiledGraph", "GraphState"]


class GraphState(NamedTuple):
    """The simulation state of a compiled graph (a pytree).

    Attributes:
        nodes: node name -> the kernel state of each stateful node (e.g. ``LIFState(v)``),
            each array with a leading batch axis.
        feedback: node name -> the previous step's output of each node that is the source of
            a delayed (cycle-closing) edge.
    """

    nodes: dict
    feedback: dict


def _float_dtype(dtype):
    if dtype is None:
        return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))
    return jnp.dtype(dtype)


def _cast(tree, dtype):
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
        or jnp.issubdtype(jnp.asarray(a).dtype, jnp.integer) else a, tree)


class CompiledGraph:
    """A NIR graph compiled for simulation. Build it with :func:`nirjax.compile`.

    The pure interface (``run``, ``step``, ``init_state``) takes parameters and state
    explicitly, so it composes with ``jax.grad``, ``jax.vmap`` and optax. Inputs are
    ``[T, B, *input_shape]`` arrays (a dict keyed by Input node name when the graph has
    several Input nodes); outputs likewise.

    Attributes:
        program: the ordered IR (:class:`~nirjax.ir.Program`).
        params: the graph's parameters, node name -> NamedTuple of arrays (physical form:
            ``tau``, ``r``, ``v_threshold``, ``weight``, ...).
        dtype: the floating dtype of parameters, state and outputs.
    """

    def __init__(self, program: Program, dtype=None, options: Mapping | None = None):
        self.program = program
        self.options = dict(options or {})
        self.dtype = _float_dtype(dtype)
        self.params = {
            n.name: _cast(n.params, self.dtype) for n in program.nodes if n.params is not None
        }
        self._feedback_sources = tuple(sorted({e.src for e in program.delayed_edges}))
        self._run = jax.jit(self._run_impl, static_argnames=("record",))
        self._step = jax.jit(self._step_impl)

    # ------------------------------------------------------------------ description

    @property
    def input_names(self) -> tuple:
        """Names of the graph's Input nodes."""
        return self.program.inputs

    @property
    def output_names(self) -> tuple:
        """Names of the graph's Output nodes."""
        return self.program.outputs

    @property
    def input_shapes(self) -> dict:
        """Input node name -> unbatched shape."""
        return {n: self.program.node(n).out_shape for n in self.program.inputs}

    @property
    def output_shapes(self) -> dict:
        """Output node name -> unbatched shape."""
        return {n: self.program.node(n).out_shape for n in self.program.outputs}

    def __repr__(self):
        return (f"CompiledGraph({len(self.program.nodes)} nodes, dt={self.program.dt:g}, "
                f"semantics={self.program.semantics.name!r}, inputs={self.input_shapes}, "
                f"outputs={self.output_shapes})")

    # ------------------------------------------------------------------ state

    def init_state(self, batch_size: int = 1) -> GraphState:
        """The state at t = 0 for ``batch_size`` samples (see each kernel's ``init_state``)."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
        return self._init_state(self.params, int(batch_size))

    def _init_state(self, params, batch_size):
        nodes = {}
        for n in self.program.nodes:
            if n.stateful:
                s = n.rule.init_state(params.get(n.name), n.config, n.out_shape, self.dtype)
                nodes[n.name] = jax.tree_util.tree_map(
                    lambda a: jnp.broadcast_to(a, (batch_size,) + a.shape), s)
        feedback = {
            name: jnp.zeros((batch_size,) + self.program.node(name).out_shape, self.dtype)
            for name in self._feedback_sources
        }
        return GraphState(nodes, feedback)

    # ------------------------------------------------------------------ the step

    def _prepare(self, params):
        """Time-invariant kernel coefficients, computed once per run (outside the scan)."""
        coeffs = {}
        for n in self.program.nodes:
            p = params.get(n.name) if n.params is not None else None
            coeffs[n.name] = n.rule.prepare(p, n.config) if p is not None else None
        return coeffs

    def _sample_step(self, coeffs, state: GraphState, inputs: dict, record: tuple):
        """One step for ONE sample: returns (new state, outputs dict, records dict)."""
        program = self.program
        values: dict[str, Any] = {}
        new_nodes = dict(state.nodes)
        for n in program.nodes:
            if not n.feedthrough:
                values[n.name] = n.rule.emit(coeffs[n.name], state.nodes[n.name], n.config)

        def summed_input(n):
            total = None
            for e in program.incoming(n.name):
                v = state.feedback[e.src] if e.delayed else values[e.src]
                total = v if total is None else total + v
            if total is None:
                total = jnp.zeros(n.in_shape, self.dtype)
            return total

        for n in program.nodes:
            if not n.feedthrough:
                continue
            x = inputs[n.name] if n.role == "input" else summed_input(n)
            if n.stateful:
                new_nodes[n.name], y = n.rule.step(coeffs[n.name], state.nodes[n.name], x, n.config)
            else:
                y = n.rule.apply(coeffs[n.name], x, n.config)
            values[n.name] = y.astype(self.dtype)
        for n in program.nodes:
            if not n.feedthrough:
                new_nodes[n.name] = n.rule.absorb(coeffs[n.name], state.nodes[n.name],
                                                  summed_input(n), n.config)
        feedback = {name: values[name] for name in self._feedback_sources}
        outputs = {name: values[name] for name in program.outputs}
        # a tuple in `record` order: names and (node, field) keys cannot share one pytree dict
        recs = tuple(getattr(new_nodes[item[0]], item[1]) if isinstance(item, tuple)
                     else values[item] for item in record)
        new_nodes = {k: jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), v, state.nodes[k])
                     for k, v in new_nodes.items()}
        return GraphState(new_nodes, feedback), outputs, recs

    def _batched_step(self, coeffs, state, inputs, record):
        return jax.vmap(self._sample_step, in_axes=(None, 0, 0, None))(coeffs, state, inputs, record)

    # ------------------------------------------------------------------ run / step

    def _run_impl(self, params, xs: dict, state: GraphState, record: tuple):
        coeffs = self._prepare(params)

        def body(carry, x_t):
            carry, outputs, recs = self._batched_step(coeffs, carry, x_t, record)
            return carry, (outputs, recs)

        steps = jax.tree_util.tree_leaves(xs)[0].shape[0]
        chunk = self.options.get("checkpoint")
        unroll = self.options.get("unroll", 1)
        if chunk is None:
            state, (ys, recs) = jax.lax.scan(body, state, xs, unroll=unroll)
            return ys, state, recs
        if chunk == "step" or chunk == 1 or steps % int(chunk):
            # rematerialize each step's internals in the backward pass; only the carry is kept
            state, (ys, recs) = jax.lax.scan(jax.checkpoint(body), state, xs, unroll=unroll)
            return ys, state, recs
        # scan over chunks of `chunk` steps, each rematerialized in the backward pass: only
        # the carry at chunk boundaries is kept, memory ~ T/chunk + chunk steps
        chunk = int(chunk)
        split = jax.tree_util.tree_map(lambda a: a.reshape((steps // chunk, chunk) + a.shape[1:]), xs)

        @jax.checkpoint
        def chunk_body(carry, xs_chunk):
            return jax.lax.scan(body, carry, xs_chunk, unroll=unroll)

        state, (ys, recs) = jax.lax.scan(chunk_body, state, split)
        merge = lambda a: a.reshape((steps,) + a.shape[2:])
        return jax.tree_util.tree_map(merge, ys), state, jax.tree_util.tree_map(merge, recs)

    def _step_impl(self, params, state, x_t):
        coeffs = self._prepare(params)
        state, outputs, _ = self._batched_step(coeffs, state, x_t, ())
        return outputs, state

    def _check_record(self, record) -> tuple:
        if record is None:
            return ()
        if isinstance(record, str):
            record = [record]
        items = []
        for item in record:
            if isinstance(item, (list, tuple)):
                if len(item) != 2:
                    raise InputError(f"record entry {item!r}: expected a node name or (node, state field)")
                name, field = item
                node = self.program.node(name)
                if not node.stateful:
                    raise InputError(f"record entry {item!r}: node {name!r} ({node.type_name}) has no state")
                fields = type(node.rule.init_state(node.params, node.config, node.out_shape, self.dtype))._fields
                if field not in fields:
                    raise InputError(
                        f"record entry {item!r}: node {name!r} ({node.type_name}) has state fields "
                        f"{fields}, not {field!r}"
                    )
                items.append((name, field))
            else:
                self.program.node(item)  # raises a GraphError naming the nodes if unknown
                items.append(item)
        return tuple(items)

    def _check_inputs(self, xs, *, per_step: bool) -> tuple[dict, int, int | None]:
        """Validate and normalize inputs to a dict; returns (dict, batch, T)."""
        names = self.program.inputs
        lead = "[B, *shape]" if per_step else "[T, B, *shape]"
        if isinstance(xs, Mapping):
            missing = set(names) - set(xs)
            extra = set(xs) - set(names)
            if missing or extra:
                raise InputError(
                    f"inputs must be keyed by the graph's Input nodes {list(names)}; "
                    f"missing {sorted(missing)}, unexpected {sorted(extra)}"
                )
            xs = dict(xs)
        elif len(names) == 1:
            xs = {names[0]: xs}
        else:
            raise InputError(
                f"the graph has {len(names)} Input nodes {list(names)}: pass a dict of arrays "
                f"keyed by those names"
            )
        batch = steps = None
        out = {}
        for name in names:
            x = xs[name]
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                x = np.asarray(x)
            shape = self.program.node(name).out_shape
            lead_n = 1 if per_step else 2
            if not (jnp.issubdtype(x.dtype, jnp.number) or jnp.issubdtype(x.dtype, jnp.bool_)):
                raise InputError(f"input {name!r}: expected a numeric array, got dtype {x.dtype}")
            if x.ndim != lead_n + len(shape) or tuple(x.shape[lead_n:]) != shape:
                hint = ""
                if x.ndim == lead_n - 1 + len(shape) and tuple(x.shape[lead_n - 1:]) == shape:
                    hint = (" (it looks unbatched: add a batch axis, e.g. x[:, None]"
                            if not per_step else " (add a batch axis, e.g. x[None]") + ")"
                raise InputError(
                    f"input {name!r}: expected an array of shape {lead} with shape={shape}, i.e. "
                    f"rank {lead_n + len(shape)}, got shape {tuple(x.shape)}{hint}"
                )
            b = x.shape[lead_n - 1]
            t = None if per_step else x.shape[0]
            if batch is None:
                batch, steps, first = b, t, name
            elif b != batch or t != steps:
                raise InputError(
                    f"inputs {first!r} and {name!r} disagree on time/batch axes: "
                    f"{tuple(xs[first].shape[:lead_n])} vs {tuple(x.shape[:lead_n])}"
                )
            out[name] = jnp.asarray(x, self.dtype)
        if batch == 0:
            raise InputError("the batch axis is empty")
        return out, batch, steps

    def _check_state(self, state, batch):
        if not isinstance(state, GraphState):
            raise InputError(
                f"state must be a GraphState from model.init_state(), got {type(state).__name__}"
            )
        leaves = jax.tree_util.tree_leaves(state)
        if leaves and leaves[0].shape[0] != batch:
            raise InputError(
                f"state was made for batch size {leaves[0].shape[0]} but the inputs have "
                f"batch size {batch}; call model.init_state(batch_size={batch})"
            )

    def _format(self, values: dict):
        if len(self.program.outputs) == 1:
            return values[self.program.outputs[0]]
        return values

    def run(self, params, xs, state: GraphState | None = None, record=None):
        """Simulate ``T`` steps: the pure, jitted, differentiable form.

        Args:
            params: parameters, structured like ``model.params``.
            xs: ``[T, B, *input_shape]`` (a dict keyed by Input name for several inputs).
            state: the state to start from; ``None`` means ``init_state(B)``.
            record: node names whose per-step output to return, and/or ``(node, field)``
                pairs naming a state field (e.g. ``("lif1", "v")``, the membrane after reset).

        Returns:
            ``(ys, state)``, or ``(ys, state, rec)`` when ``record`` is given: ``ys`` is
            ``[T, B, *output_shape]`` (a dict for several outputs), ``rec`` maps each record
            entry to a ``[T, B, ...]`` array.
        """
        xs, batch, _ = self._check_inputs(xs, per_step=False)
        rec_items = self._check_record(record)
        if state is None:
            state = self._init_state(params, batch)
        self._check_state(state, batch)
        ys, state, recs = self._run(params, xs, state, rec_items)
        ys = self._format(ys)
        if record is None:
            return ys, state
        return ys, state, dict(zip(rec_items, recs))

    def step(self, params, state: GraphState, x_t):
        """Advance one step: ``x_t`` is ``[B, *input_shape]``; returns ``(y_t, state)``."""
        x_t, batch, _ = self._check_inputs(x_t, per_step=True)
        self._check_state(state, batch)
        ys, state = self._step(params, state, x_t)
        return self._format(ys), state

    def __call__(self, xs):
        """Simulate from the initial state with ``self.params``; returns ``ys``."""
        return self.run(self.params, xs)[0]


def compile(graph, dt: float | None = None, semantics: Any = None, *, surrogate: Any = None,
            dtype=None, precision: str | None = "highest", checkpoint: Any = None,
            unroll: int = 1) -> CompiledGraph:
    """Compile a NIR graph (or the path of a ``.nir`` file) for simulation.

    Args:
        graph: a ``nir.NIRGraph`` or a path to a ``.nir`` file.
        dt: the time step, in the graph's time unit (seconds for the NIR paper graphs,
            which use ``dt=1e-4``). Required: NIR graphs carry no time step.
        semantics: a :class:`~nirjax.Semantics`, a profile name (``"nir"``, ``"exact"``, ...)
            or a mapping of Semantics fields; default: the NIR spec with forward Euler.
        surrogate: shorthand to set ``semantics.surrogate`` (a name or a ``Surrogate``).
        dtype: floating dtype; default float32, or float64 when ``jax_enable_x64`` is on.
        precision: matmul/conv precision passed to XLA (``"highest"``, ``"high"``,
            ``"default"`` or ``None``). ``"highest"`` keeps float32 exact on GPUs that
            would otherwise use TF32.
        checkpoint: memory for backpropagation through long runs. ``None``: keep every
            step's intermediates; ``"step"``: rematerialize each step in the backward pass
            (``jax.checkpoint`` of the scan body); an int ``K``: scan over chunks of ``K``
            steps, each rematerialized, keeping only the state every ``K`` steps (memory
            ~ ``T/K + K`` steps; falls back to ``"step"`` when ``K`` does not divide ``T``).
            Outputs and gradients are identical in every mode.
        unroll: steps unrolled per scan iteration (``lax.scan``'s ``unroll``).

    Returns:
        A :class:`CompiledGraph`.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Affine(np.eye(2), np.zeros(2)),
    ...     nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2),
    ...             v_threshold=np.full(2, 0.5)))
    >>> model = nirjax.compile(g, dt=1e-4)
    >>> model(np.ones((20, 3, 2))).shape
    (20, 3, 2)
    """
    if isinstance(graph, (str, pathlib.Path)):
        from .io import read

        graph = read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(
            f"nirjax.compile expects a nir.NIRGraph or a path to a .nir file, got "
            f"{type(graph).__name__}"
        )
    dt = check_dt(dt)
    sem = resolve_semantics(semantics, surrogate)
    if checkpoint is not None and checkpoint != "step" and not (
            isinstance(checkpoint, (int, np.integer)) and checkpoint >= 1):
        raise SemanticsError(f"checkpoint must be None, 'step' or a positive int, got {checkpoint!r}")
    if not isinstance(unroll, (int, np.integer)) or unroll < 1:
        raise SemanticsError(f"unroll must be a positive int, got {unroll!r}")
    program = build_program(graph, dt, sem, {"precision": precision})
    return CompiledGraph(program, dtype, {"checkpoint": checkpoint, "unroll": int(unroll)})
