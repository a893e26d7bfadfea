"""Compile a NIR graph into one jitted ``lax.scan`` over time.

The step function is an interpreter over the ordered :class:`~nirjax.compiler.Program`, run once
at trace time: for every node in order it sums the node's incoming edges, calls the node's
kernel and stores the output under the node's name (the ``env``/``read``/``write`` loop of
``jax.core.eval_jaxpr``). The traced step is free of Python work, and the whole simulation is
one ``lax.scan`` of it inside ``jax.jit``, so compile time does not grow with the number of
steps.

Within one step:

1. nodes without direct feedthrough (Delay of >= 1 step) emit their output from state;
2. every other node runs in program order; its input is the sum of its incoming edges, where
   a *delayed* edge (one that closes a cycle, see :mod:`nirjax.graph.flat`) reads its source's
   output of the previous step (zeros at step 0) and every other edge reads the value
   computed earlier in this step; a node with no incoming edge gets zeros;
3. nodes without feedthrough absorb their summed input;
4. outputs of the sources of delayed edges are stored for the next step.

The kernels work on one sample; the step is ``vmap``-ed over the batch axis.

By default the program runs *staged* (:mod:`nirjax.compiler.schedule`): the same per-node updates,
grouped so that stateless projections are applied to whole chunks of steps at once and
loops run only over stateful nodes and cycles. ``optimize=False`` runs the plain program
above as one scan; both give the same results. The staged program is itself one outer
``lax.scan`` over chunks of steps; inside a chunk each stateful stage is a ``lax.scan`` over
the chunk's steps, fed by projections computed for all of them at once.

Every time loop is differentiated with :mod:`nirjax.compiler.scan_vjp` (one saved state per step, each
step recomputed in the backward pass) unless ``fast_backward=False``.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import nir
import numpy as np

from ..errors import GraphError, InputError, OptionsError
from ..rules import get_table
from ..semantics import check_dt, resolve_semantics
from . import scan_vjp
from .options import CompileOptions
from .program import Program, build_program
from .schedule import schedule
from .sharding import ShardingPlan

__all__ = ["compile_graph", "CompiledGraph", "GraphState", "check_record"]


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
    """The floating dtype to compute in (``dtype`` is a validated option or ``None``)."""
    if dtype is None:
        return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))
    dt = jnp.dtype(dtype)
    if jax.dtypes.canonicalize_dtype(dt) != dt:
        raise OptionsError(
            f"compile option dtype={dt}: needs 64-bit mode, which is off: JAX would silently "
            f"compute in {jax.dtypes.canonicalize_dtype(dt)}. Enable it first with "
            f"jax.config.update('jax_enable_x64', True)"
        )
    return dt


def _cast(tree, dtype):
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
        or jnp.issubdtype(jnp.asarray(a).dtype, jnp.integer) else a, tree)


def _cast_host(tree, dtype):
    """:func:`_cast` on the host (NumPy); ``dtype=None`` keeps each leaf's dtype."""
    def one(a):
        a = np.asarray(a)
        if dtype is None or not (np.issubdtype(a.dtype, np.floating)
                                 or np.issubdtype(a.dtype, np.integer)):
            return a
        return a.astype(dtype, copy=False)

    return jax.tree_util.tree_map(one, tree)


def _value_dtype(table, dtype):
    """The dtype of the values on the edges: the table's (integer tables), else the float
    ``dtype`` asked for (default float32, float64 under ``jax_enable_x64``)."""
    if table.dtype is None:
        return _float_dtype(dtype)
    if dtype is not None:
        raise OptionsError(
            f"compile option dtype={dtype!r}: the {table.name!r} rule table computes in "
            f"{table.dtype}; leave dtype unset")
    return jnp.dtype(table.dtype)


def _check_integral(name, x, table):
    """Inputs of an integer program must be whole numbers (checked when concrete)."""
    if isinstance(x, jax.core.Tracer) or not jnp.issubdtype(x.dtype, jnp.floating):
        return
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return  # a global array of a multi-process run: its other rows live elsewhere
    values = np.asarray(x)
    if not np.all(np.isfinite(values) & (values == np.round(values))):
        raise InputError(
            f"input {name!r}: the {table.name!r} arithmetic takes whole numbers (spike counts, "
            f"{table.dtype}); the input holds non-integer values such as "
            f"{values[values != np.round(values)].reshape(-1)[:1].tolist()}")


class CompiledGraph:
    """A NIR graph compiled for simulation. Build it with :func:`nirjax.compile`.

    The pure interface (``run``, ``step``, ``init_state``) takes parameters and state
    explicitly, so it composes with ``jax.grad``, ``jax.vmap`` and optax. Inputs are
    ``[T, B, *input_shape]`` arrays (a dict keyed by Input node name when the graph has
    several Input nodes); outputs likewise.

    A CompiledGraph can also be built directly from any :class:`~nirjax.compiler.Program`,
    e.g. one a lowering pass made (quantized parameters, an integer rule table):
    ``CompiledGraph(program, options=...)``. The program's table decides the arithmetic:
    a float table runs in ``dtype``; an integer table (``program.table.dtype``, e.g. int32)
    runs in its own dtype, its parameters are used as given (never cast to a float), inputs
    are cast to it and outputs and records come back in it. Either way it is the same
    compiled scan.

    Attributes:
        program: the ordered IR (:class:`~nirjax.compiler.Program`).
        params: the graph's parameters, node name -> NamedTuple of arrays (physical form:
            ``tau``, ``r``, ``v_threshold``, ``weight``, ...).
        dtype: the dtype of the values on the edges, of the state and of the outputs: the
            floating dtype asked for, or an integer table's dtype.
    """

    def __init__(self, program: Program, dtype=None, options: Any = None):
        self.options = CompileOptions.of(options)
        if dtype is not None:
            self.options = self.options.replace(dtype=dtype)
        self.program = program
        self.dtype = _value_dtype(program.table, self.options.dtype)
        #: the layout on the ``mesh`` compile option's devices (``None``: one device)
        self.sharding = (ShardingPlan(program, self.options.mesh, self.options.shard_min)
                         if self.options.mesh is not None else None)
        if self.sharding is not None:
            # cast on the host and sent straight to their blocks: a layer too large for one
            # device is never assembled on one
            cast = lambda p: _cast_host(p, None if program.table.dtype is not None else self.dtype)
        elif program.table.dtype is None:
            cast = lambda p: _cast(p, self.dtype)
        else:  # an integer table's parameters are used as they are
            cast = lambda p: jax.tree_util.tree_map(jnp.asarray, p)
        self.params = {n.name: cast(n.params) for n in program.nodes if n.params is not None}
        if self.sharding is not None:
            self.params = self.sharding.put_params(self.params)
        self._feedback_sources = tuple(sorted({e.src for e in program.delayed_edges}))
        self._run = jax.jit(self._run_impl, static_argnames=("record",),
                            donate_argnames=("state",) if self.options.donate_state else ())
        self._init_jit = jax.jit(self._init_state, static_argnums=(1,))
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
        if self.sharding is not None:
            self.sharding.check_batch(int(batch_size), "init_state")
        return self._init_jit(self.params, int(batch_size))

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
        return self._lay_state(GraphState(nodes, feedback), 1)

    # ------------------------------------------------------------------ layout on a mesh

    def _lay(self, x, spec: tuple, lead: int = 0, batch_at: int | None = None):
        """``x`` constrained to the per-sample partition ``spec`` behind ``lead`` leading
        axes (the one at ``batch_at`` split over "batch"); unchanged without a mesh."""
        if self.sharding is None:
            return x
        return self.sharding.constrain(x, self.sharding.batched(lead, batch_at, spec))

    def _lay_state(self, state: GraphState, lead: int) -> GraphState:
        """A batched state (``lead`` = 1: ``[B, ...]``) constrained to its layout."""
        if self.sharding is None:
            return state
        plan = self.sharding
        nodes = {name: jax.tree_util.tree_map(
            lambda a, name=name: self._lay(a, plan.leaf_spec(name, a.shape[lead:]), lead, lead - 1),
            s) for name, s in state.nodes.items()}
        feedback = {name: self._lay(v, plan.value_spec(name), lead, lead - 1)
                    for name, v in state.feedback.items()}
        return GraphState(nodes, feedback)

    def _lay_record(self, record: tuple, recs: tuple, lead: int, batch_at: int) -> tuple:
        """Recorded values ``[T, B, ...]`` constrained to their node's layout."""
        if self.sharding is None:
            return recs
        plan = self.sharding
        out = []
        for item, v in zip(record, recs):
            if isinstance(item, tuple):
                spec = plan.leaf_spec(item[0], v.shape[lead:])
            else:
                spec = plan.value_spec(item)
            out.append(self._lay(v, spec, lead, batch_at))
        return tuple(out)

    def _lay_values(self, values: dict, lead: int, batch_at: int | None) -> dict:
        """Node outputs (keyed by node name) constrained to their layout."""
        if self.sharding is None:
            return values
        return {k: self._lay(v, self.sharding.value_spec(k), lead, batch_at)
                for k, v in values.items()}

    def shard_inputs(self, xs):
        """Place inputs on the model's mesh, split over its ``"batch"`` axis.

        Args:
            xs: ``[T, B, *input_shape]`` arrays (a dict for several Input nodes), NumPy or
                JAX. In a multi-process run they are the whole batch, the same in every
                process; to feed each process its own rows use
                :func:`nirjax.distributed.global_batch`.

        Returns:
            The inputs as ``jax.Array`` s laid out for :meth:`run` (without a mesh: as
            validated by :meth:`run`, on the default device).

        Raises:
            InputError: a malformed input, or a batch not divisible by the "batch" axis.
        """
        out, _, _ = self._check_inputs(xs, per_step=False)
        return self._format_inputs(out)

    def _format_inputs(self, values: dict):
        if len(self.program.inputs) == 1:
            return values[self.program.inputs[0]]
        return values

    # ------------------------------------------------------------------ the step

    def _prepare(self, params):
        """Time-invariant kernel coefficients, computed once per run (outside the scan)."""
        coeffs = {}
        for n in self.program.nodes:
            p = params.get(n.name) if n.params is not None else None
            coeffs[n.name] = n.rule.prepare(p, n.config) if p is not None else None
        return coeffs

    def _eval(self, members: tuple, coeffs, nodes: dict, feedback: dict, ext: dict):
        """Evaluate ``members`` (IRNodes in program order) for one step of ONE sample.

        ``ext`` holds this step's values of the nodes outside ``members`` that feed them
        (and the Input nodes' data); ``nodes``/``feedback`` the members' state. Returns the
        members' new state, the new feedback of member sources, and every member's output.
        """
        values: dict[str, Any] = {}
        new_nodes = {}
        for n in members:
            if not n.feedthrough:
                values[n.name] = n.rule.emit(coeffs[n.name], nodes[n.name], n.config)

        plan = self.sharding

        def summed_input(n):
            total = None
            for e in self.program.incoming(n.name):
                if e.delayed:
                    v = feedback[e.src]
                else:
                    v = values[e.src] if e.src in values else ext[e.src]
                total = v if total is None else total + v
            if total is None:
                total = jnp.zeros(n.in_shape, self.dtype)
            if plan is not None:  # whole before a weight layer: the all-gather of spikes
                total = plan.constrain(total, plan.input_spec(n.name))
            return total

        for n in members:
            if not n.feedthrough:
                continue
            x = ext[n.name] if n.role == "input" else summed_input(n)
            if n.stateful:
                new_nodes[n.name], y = n.rule.step(coeffs[n.name], nodes[n.name], x, n.config)
            else:
                y = n.rule.apply(coeffs[n.name], x, n.config)
            values[n.name] = y.astype(self.dtype)
            if plan is not None:
                values[n.name] = plan.constrain(values[n.name], plan.value_spec(n.name))
        for n in members:
            if not n.feedthrough:
                new_nodes[n.name] = n.rule.absorb(coeffs[n.name], nodes[n.name],
                                                  summed_input(n), n.config)
        # the carry's structure and dtypes never drift
        new_nodes = {k: jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), v, nodes[k])
                     for k, v in new_nodes.items()}
        if plan is not None:  # the state stays split from step to step
            new_nodes = {k: jax.tree_util.tree_map(
                lambda a, k=k: plan.constrain(a, plan.leaf_spec(k, a.shape)), v)
                for k, v in new_nodes.items()}
        new_feedback = {k: values[k] for k in feedback}
        return new_nodes, new_feedback, values

    def _scan_loop(self, members, coeffs, nodes, feedback, ext_seq, exports, state_records,
                   length):
        """``lax.scan`` of ``members`` over ``length`` steps (batched inputs ``[T, B, ...]``).

        Returns the final ``(nodes, feedback)``, the per-step outputs of ``exports`` and the
        per-step values of ``state_records`` (``(node, field)`` pairs).
        """
        member_names = {n.name for n in members}
        own = {n.name: coeffs[n.name] for n in members if n.name in coeffs}

        def sample(coeffs_s, nodes_s, feedback_s, ext_s):
            new_nodes, new_feedback, values = self._eval(members, coeffs_s, nodes_s, feedback_s,
                                                         ext_s)
            outs = {name: values[name] for name in exports}
            recs = {r: getattr(new_nodes[r[0]], r[1]) for r in state_records if r[0] in member_names}
            return new_nodes, new_feedback, outs, recs

        # per-sample sharding constraints get the batch axis inserted as "batch"
        spmd = self.sharding.batch_axis if self.sharding is not None else None
        batched = jax.vmap(sample, in_axes=(None, 0, 0, 0), spmd_axis_name=spmd)

        def body(coeffs_s, carry, ext_t):
            new_nodes, new_feedback, outs, recs = batched(coeffs_s, carry[0], carry[1], ext_t)
            return (new_nodes, new_feedback), (outs, recs)

        unroll = self.options.unroll
        if self.options.checkpoint == "step":
            body = jax.checkpoint(body)
        if self.options.fast_backward and self.options.checkpoint != "step":
            (nodes, feedback), (outs, recs) = scan_vjp.scan(
                body, own, (nodes, feedback), ext_seq, length, unroll)
        else:
            (nodes, feedback), (outs, recs) = jax.lax.scan(
                lambda c, x: body(own, c, x), (nodes, feedback), ext_seq, length=length,
                unroll=unroll)
        return nodes, feedback, outs, recs

    # ------------------------------------------------------------------ run / step

    def _run_plain(self, coeffs, xs: dict, state: GraphState, record: tuple, length: int):
        """The reference program: every node, every step, in one ``lax.scan``."""
        rec_nodes = tuple(r for r in record if not isinstance(r, tuple))
        state_recs = tuple(r for r in record if isinstance(r, tuple))
        exports = tuple(dict.fromkeys(self.program.outputs + rec_nodes))
        nodes, feedback, outs, recs = self._scan_loop(
            self.program.nodes, coeffs, state.nodes, state.feedback, xs, exports, state_recs, length)
        # a tuple in record order: pytree dicts cannot mix str and tuple keys
        recs = tuple(recs[r] if isinstance(r, tuple) else outs[r] for r in record)
        return {o: outs[o] for o in self.program.outputs}, GraphState(nodes, feedback), recs

    def _map_apply(self, n, coeff, x):
        """Apply a stateless node to a whole chunk ``[K, B, *in_shape]`` at once."""
        if self.sharding is not None:
            # no [K*B] merge of a split batch axis: batch outer, steps inner
            fn = lambda xi: n.rule.apply(coeff, xi, n.config)
            y = jax.vmap(jax.vmap(fn), in_axes=1, out_axes=1)(x)
            return y.astype(self.dtype)
        lead = x.shape[:2]
        flat = x.reshape((-1,) + x.shape[2:])
        y = jax.vmap(lambda xi: n.rule.apply(coeff, xi, n.config))(flat)
        return y.reshape(lead + y.shape[1:]).astype(self.dtype)

    def _run_chunk(self, stages, coeffs, state: GraphState, xs: dict, record: tuple):
        """Run the stages layer by layer over one chunk ``xs`` of ``[K, B, ...]`` inputs."""
        program = self.program
        length, batch = jax.tree_util.tree_leaves(xs)[0].shape[:2]
        env: dict[str, Any] = {}
        nodes, feedback, state_values = dict(state.nodes), dict(state.feedback), {}
        state_recs = tuple(r for r in record if isinstance(r, tuple))
        for stage in stages:
            if stage.kind == "map":
                n = program.node(stage.members[0])
                if n.role == "input":
                    x = xs[n.name]
                else:
                    x = None
                    for e in program.incoming(n.name):
                        x = env[e.src] if x is None else x + env[e.src]
                    if x is None:
                        x = jnp.zeros((length, batch) + n.in_shape, self.dtype)
                if self.sharding is None:
                    env[n.name] = self._map_apply(n, coeffs[n.name], x)
                    continue
                plan = self.sharding

                def gathered_map(coeff, x, n=n):
                    x = self._lay(x, plan.input_spec(n.name), 2, 1)
                    return self._lay(self._map_apply(n, coeff, x), plan.value_spec(n.name), 2, 1)

                if plan.gathers_input(n.name):
                    # the backward pass keeps the split input and gathers it again, instead
                    # of keeping the whole [K, B, N_in] chunk on every device
                    gathered_map = jax.checkpoint(gathered_map)
                env[n.name] = gathered_map(coeffs[n.name], x)
                continue
            members = tuple(program.node(m) for m in stage.members)
            fused = self._fused_stage(members, state_recs)
            if fused is not None:
                n = members[0]
                x = None
                for e in program.incoming(n.name):
                    x = env[e.src] if x is None else x + env[e.src]
                if x is None:
                    x = jnp.zeros((length, batch) + n.in_shape, self.dtype)
                nodes[n.name], env[n.name] = fused(n, coeffs[n.name], nodes[n.name], x)
                if self.sharding is not None:
                    env.update(self._lay_values({n.name: env[n.name]}, 2, 1))
                    nodes[n.name] = self._lay_state(GraphState({n.name: nodes[n.name]}, {}),
                                                    1).nodes[n.name]
                continue
            sub_nodes = {m: nodes[m] for m in stage.members if m in nodes}
            sub_feedback = {m: feedback[m] for m in stage.members if m in feedback}
            ext = {name: env[name] for name in stage.external}
            sub_nodes, sub_feedback, outs, recs = self._scan_loop(
                members, coeffs, sub_nodes, sub_feedback, ext, stage.exports, state_recs, length)
            nodes.update(sub_nodes)
            feedback.update(sub_feedback)
            env.update(self._lay_values(outs, 2, 1))
            state_values.update(recs)
        recs = tuple(state_values[r] if isinstance(r, tuple) else env[r] for r in record)
        return {o: env[o] for o in program.outputs}, GraphState(nodes, feedback), recs

    def _fused_stage(self, members, state_recs):
        """A whole-chunk kernel for a one-node scan stage, if an option asks for one.

        ``pallas`` and ``associative_scan`` ask each node's rule for its whole-chunk
        implementation of that name (:attr:`nirjax.rules.Rule.chunk`); none applies to a
        node on a cycle or one whose state is recorded.
        """
        if len(members) != 1:
            return None
        n = members[0]
        if (not n.feedthrough or n.rule.chunk is None
                or any(e.delayed for e in self.program.incoming(n.name))
                or any(r[0] == n.name for r in state_recs)):
            return None
        for method in ("pallas", "associative_scan"):
            fn = n.rule.chunk(n.config, method) if getattr(self.options, method) else None
            if fn is not None:
                interpret = getattr(self.options, method) == "interpret"

                def run(n, coeff, state, x, fn=fn, interpret=interpret):
                    new, y = fn(coeff, state, x, interpret)
                    new = jax.tree_util.tree_map(lambda a, b: a.astype(b.dtype), new, state)
                    return new, y.astype(self.dtype)

                return run
        return None

    def chunk_size(self, steps: int, batch: int) -> int:
        """Steps per chunk of the staged program for ``steps`` steps of ``batch`` samples.

        The chunk holds every node's output for ``K`` steps, so ``K`` is bounded by the
        ``chunk_bytes`` option (default 8 MiB), but kept at 8 steps and ``512 / batch``
        steps at least (the batched projections then multiply at least 512 rows at once)
        and 1024 at most. A divisor of ``steps`` in ``[K/2, 3K/2]`` (the nearest to ``K``)
        is preferred: one traced chunk body, no tail chunk, so compile time is flat in T.
        """
        option = self.options.chunk
        if isinstance(self.options.checkpoint, int):
            option = self.options.checkpoint
        if option is not None:
            return max(1, min(int(option), steps))
        per_step = batch * sum(int(np.prod(n.out_shape)) for n in self.program.nodes)
        per_step *= self.dtype.itemsize
        k = self.options.chunk_bytes // max(per_step, 1)
        k = int(min(1024, max(k, 8, -(-512 // max(batch, 1)))))
        if k >= steps:
            return steps
        divisors = [c for c in range(max(k // 2, 1), min(steps, k + k // 2) + 1)
                    if steps % c == 0]
        if divisors:
            return min(divisors, key=lambda c: (abs(c - k), -c))
        return k

    def _run_impl(self, params, xs: dict, state: GraphState, record: tuple):
        if self.sharding is None:
            return self._run_body(params, xs, state, record)
        params = self.sharding.constrain_params(params)
        xs = self._lay_values(xs, 2, 1)
        state = self._lay_state(state, 1)
        ys, state, recs = self._run_body(params, xs, state, record)
        return (self._lay_values(ys, 2, 1), self._lay_state(state, 1),
                self._lay_record(record, recs, 2, 1))

    def _run_body(self, params, xs: dict, state: GraphState, record: tuple):
        coeffs = self._prepare(params)
        steps, batch = jax.tree_util.tree_leaves(xs)[0].shape[:2]
        remat = self.options.checkpoint
        if not self.options.optimize:
            if not isinstance(remat, int):
                return self._run_plain(coeffs, xs, state, record, steps)
            k = max(1, min(remat, steps))
            chunk = lambda st, xc: self._run_plain(
                coeffs, xc, st, record, jax.tree_util.tree_leaves(xc)[0].shape[0])
        else:
            needed = {r for r in record if not isinstance(r, tuple)}
            stages = schedule(self.program, needed)
            k = self.chunk_size(steps, batch)
            chunk = lambda st, xc: self._run_chunk(stages, coeffs, st, xc, record)
        if isinstance(remat, int):
            # only the state at chunk boundaries is kept for the backward pass
            chunk = jax.checkpoint(chunk)
        n_full, rest = divmod(steps, k)
        pieces = []
        # always the outer loop, even for one chunk: the traced program (and compile time)
        # is then the same for every T that the chunk size divides
        if n_full:
            split = jax.tree_util.tree_map(
                lambda a: a[: n_full * k].reshape((n_full, k) + a.shape[1:]), xs)

            def body(carry, xc):
                ys, carry, recs = chunk(carry, xc)
                return carry, (ys, recs)

            state, (ys, recs) = jax.lax.scan(body, state, split)
            merge = lambda a: a.reshape((n_full * k,) + a.shape[2:])
            pieces.append((jax.tree_util.tree_map(merge, ys), jax.tree_util.tree_map(merge, recs)))
        if rest:
            tail = jax.tree_util.tree_map(lambda a: a[n_full * k:], xs)
            ys, state, recs = chunk(state, tail)
            pieces.append((ys, recs))
        if len(pieces) == 1:
            return pieces[0][0], state, pieces[0][1]
        cat = lambda a, b: jnp.concatenate([a, b], axis=0)
        return (jax.tree_util.tree_map(cat, pieces[0][0], pieces[1][0]), state,
                jax.tree_util.tree_map(cat, pieces[0][1], pieces[1][1]))

    def _step_impl(self, params, state, x_t):
        if self.sharding is not None:
            params = self.sharding.constrain_params(params)
            x_t = self._lay_values(x_t, 1, 0)
            state = self._lay_state(state, 1)
        coeffs = self._prepare(params)
        xs = jax.tree_util.tree_map(lambda a: a[None], x_t)
        ys, state, _ = self._run_plain(coeffs, xs, state, (), 1)
        ys = jax.tree_util.tree_map(lambda a: a[0], ys)
        return self._lay_values(ys, 1, 0), self._lay_state(state, 1)

    def _check_record(self, record) -> tuple:
        return check_record(self.program, record, self.dtype)

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
            if jnp.issubdtype(self.dtype, jnp.integer):
                _check_integral(name, x, self.program.table)
            out[name] = self._place_input(name, x, 1 if per_step else 2)
        if batch == 0:
            raise InputError("the batch axis is empty")
        if self.sharding is not None:
            self.sharding.check_batch(batch, "inputs")
        return out, batch, steps

    def _place_input(self, name, x, lead):
        """An input cast to the model's dtype; on a mesh, split over "batch"."""
        if self.sharding is None:
            return jnp.asarray(x, self.dtype)
        plan = self.sharding
        spec = plan.batched(lead, lead - 1, plan.value_spec(name))
        if isinstance(x, jax.core.Tracer):
            return plan.constrain(jnp.asarray(x, self.dtype), spec)
        if isinstance(x, jax.Array):
            x = x if x.dtype == self.dtype else x.astype(self.dtype)
            if x.shape[lead - 1] % plan.batch_size:
                return x  # check_batch raises the error
            return plan.put(x, spec)
        x = np.asarray(x).astype(self.dtype, copy=False)
        if x.shape[lead - 1] % plan.batch_size:
            return x
        return plan.put(x, spec)

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
            state = self._init_jit(params, batch)
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


def check_record(program: Program, record, dtype=None) -> tuple:
    """Validate what to record during a run and normalize it to a tuple.

    Args:
        program: the compiled program (``model.program``).
        record: ``None``, a node name, a ``(node, state field)`` pair, or a list of those.
        dtype: the dtype the state is built in (only its field names matter here).

    Returns:
        A tuple of node names and ``(node, field)`` pairs, in the order given.

    Raises:
        GraphError: an entry names a node the program does not have.
        InputError: an entry is malformed, or names a state field the node does not have.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)))
    >>> check_record(nirjax.compile(g, dt=0.1).program, [("li", "v"), "li"])
    (('li', 'v'), 'li')
    """
    if record is None:
        return ()
    dtype = jnp.float32 if dtype is None else dtype
    if isinstance(record, str):
        record = [record]
    elif (isinstance(record, tuple) and len(record) == 2
          and all(isinstance(r, str) for r in record)
          and record[1] not in {n.name for n in program.nodes}):
        record = [record]  # one ("node", "field") pair, not two node names
    items = []
    for item in record:
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise InputError(f"record entry {item!r}: expected a node name or (node, state field)")
            name, field = item
            node = program.node(name)
            if not node.stateful:
                raise InputError(f"record entry {item!r}: node {name!r} ({node.type_name}) has no state")
            fields = type(node.rule.init_state(node.params, node.config, node.out_shape, dtype))._fields
            if field not in fields:
                raise InputError(
                    f"record entry {item!r}: node {name!r} ({node.type_name}) has state fields "
                    f"{fields}, not {field!r}"
                )
            items.append((name, field))
        else:
            program.node(item)  # raises a GraphError naming the nodes if unknown
            items.append(item)
    return tuple(items)


def compile_graph(graph, dt: float | None = None, semantics: Any = None, *,
                  rules: Mapping | None = None, surrogate: Any = None,
                  options: CompileOptions | None = None, **kwargs) -> CompiledGraph:
    """Compile a ``nir.NIRGraph`` for simulation (:func:`nirjax.compile` also takes a path).

    Args:
        graph: a ``nir.NIRGraph``.
        dt: the time step, in the graph's time unit (seconds for the NIR paper graphs,
            which use ``dt=1e-4``). Required: NIR graphs carry no time step.
        semantics: a :class:`~nirjax.Semantics`, a profile name (``"nir"``, ``"exact"``, ...)
            or a mapping of Semantics fields; default: the NIR spec with forward Euler. Its
            ``arithmetic`` field names the rule table (``"float"``; ``"loihi"`` for the
            ``lava_fixed`` profile).
        rules: NIR type (class or name) -> :class:`~nirjax.Rule`, merged over the rule table
            for this compilation only (:func:`nirjax.register` changes it for all).
        surrogate: shorthand to set ``semantics.surrogate`` (a name or a ``Surrogate``).
        options: a :class:`~nirjax.compiler.CompileOptions`; or give its fields as keywords
            (``dtype``, ``precision``, ``checkpoint``, ``unroll``, ``optimize``, ``chunk``,
            ``chunk_bytes``, ``matmul_dtype``, ``donate_state``, ``pallas``,
            ``associative_scan``, ``fast_backward``; each documented there).

    Returns:
        A :class:`CompiledGraph`.

    Raises:
        OptionsError: an unknown option or a bad value (before anything is compiled).
        SemanticsError: a bad ``dt``, semantics or surrogate.
        GraphError / ShapeError / ParameterError / LoweringError: the graph is invalid or
            uses a NIR type its rule table lacks.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.Affine(np.eye(2), np.zeros(2)),
    ...     nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2),
    ...             v_threshold=np.full(2, 0.5)))
    >>> model = compile_graph(g, dt=1e-4, unroll=2)
    >>> model(np.ones((20, 3, 2))).shape
    (20, 3, 2)
    """
    if options is not None and kwargs:
        raise OptionsError(f"give compile options either as options=CompileOptions(...) or as "
                           f"keywords, not both (keywords {sorted(kwargs)})")
    options = CompileOptions.of(kwargs if options is None else options)
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(
            f"nirjax.compile expects a nir.NIRGraph or a path to a .nir file, got "
            f"{type(graph).__name__}"
        )
    dt = check_dt(dt)
    sem = resolve_semantics(semantics, surrogate)
    if rules is not None and not isinstance(rules, Mapping):
        raise OptionsError(f"rules must be a mapping of NIR type -> nirjax.Rule, got "
                           f"{type(rules).__name__}")
    table = get_table(sem.arithmetic).with_rules(rules or {})
    program = build_program(graph, dt, sem, options, table=table)
    return CompiledGraph(program, options=options)
