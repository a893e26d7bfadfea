"""The loop drivers: how the interpreter's step runs over time.

* :meth:`Loops.run_plain`: the reference program, every node every step, one ``lax.scan``;
* :meth:`Loops.run_chunk`: the staged program (:mod:`nirjax.compiler.schedule`) over one
  chunk of steps: stateless projections applied to the whole chunk at once, a scan only over
  stateful nodes and cycles, or a node's whole-chunk kernel where an option asks for one;
* :meth:`Loops.run`: the outer loop, one ``lax.scan`` over chunks (also when rematerializing
  chunks for the backward pass, ``checkpoint=K``);
* :meth:`Loops.step`: one step, for custom loops.

Every time loop is differentiated with :mod:`nirjax.compiler.scan_vjp` (one saved state per
step, each step recomputed in the backward pass) unless ``fast_backward=False``. Both
programs give the same results; the staged one only changes how sums inside a GEMM may be
associated.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import layout, scan_vjp
from .interpreter import GraphState, Interpreter
from .options import CompileOptions
from .schedule import schedule

__all__ = ["Loops"]

# the whole-chunk kernels a compile option may ask for, tried in this order
_CHUNK_METHODS = ("pallas", "associative_scan")


class Loops:
    """Drives an :class:`~nirjax.compiler.interpreter.Interpreter` over time.

    Args:
        interpreter: the program's interpreter.
        options: the compile options (``unroll``, ``checkpoint``, ``fast_backward``,
            ``optimize``, ``chunk``, ``chunk_bytes``, ``pallas``, ``associative_scan``).
    """

    def __init__(self, interpreter: Interpreter, options: CompileOptions):
        self.interpreter = interpreter
        self.program = interpreter.program
        self.options = options

    def scan_loop(self, members, coeffs, nodes, feedback, ext_seq, exports, state_records,
                  length):
        """``lax.scan`` of ``members`` over ``length`` steps (batched inputs ``[T, B, ...]``).

        Returns the final ``(nodes, feedback)``, the per-step outputs of ``exports`` and the
        per-step values of ``state_records`` (``(node, field)`` pairs).
        """
        member_names = {n.name for n in members}
        own = {n.name: coeffs[n.name] for n in members if n.name in coeffs}

        def sample(coeffs_s, nodes_s, feedback_s, ext_s):
            new_nodes, new_feedback, values = self.interpreter.eval_step(
                members, coeffs_s, nodes_s, feedback_s, ext_s)
            outs = {name: values[name] for name in exports}
            recs = {r: getattr(new_nodes[r[0]], r[1]) for r in state_records if r[0] in member_names}
            return new_nodes, new_feedback, outs, recs

        # per-sample sharding constraints get the batch axis inserted as "batch"
        plan = self.interpreter.plan
        spmd = plan.batch_axis if plan is not None else None
        batched = jax.vmap(sample, in_axes=(None, 0, 0, 0), spmd_axis_name=spmd)

        def body(coeffs_s, carry, ext_t):
            new_nodes, new_feedback, outs, recs = batched(coeffs_s, carry[0], carry[1], ext_t)
            return (new_nodes, new_feedback), (outs, recs)

        unroll = self.options.unroll
        if self.options.checkpoint == "step":
            body = jax.checkpoint(body)
        if self.options.fast_backward and self.options.checkpoint != "step":
            (nodes, feedback), (outs, recs) = scan_vjp.scan(
                body, own, (nodes, feedback), ext_seq, length, unroll,
                self._per_sample(members, own, sample, nodes))
        else:
            (nodes, feedback), (outs, recs) = jax.lax.scan(
                lambda c, x: body(own, c, x), (nodes, feedback), ext_seq, length=length,
                unroll=unroll)
        return nodes, feedback, outs, recs

    def _per_sample(self, members, own, sample, nodes):
        """``(expand, step_b)`` for :func:`scan_vjp.scan`: per-sample copies of the
        coefficients of the elementwise members (``Rule.elementwise``: neurons, Scale,
        Threshold), whose coefficients are at most the size of their state; ``None`` if
        there are none, the batch size is unknown (no state) or the batch is split over a
        mesh."""
        names = {n.name for n in members if n.rule.elementwise and n.name in own}
        leaves = jax.tree_util.tree_leaves(nodes)
        if not names or not leaves or self.interpreter.plan is not None:
            return None  # on a mesh: plain autodiff of the shared coefficients
        batch = leaves[0].shape[0]
        axes = {name: (0 if name in names else None) for name in own}

        def expand(c):
            return {name: (jax.tree_util.tree_map(
                lambda a: jnp.broadcast_to(a, (batch,) + jnp.shape(a)), v) if name in names else v)
                for name, v in c.items()}

        batched = jax.vmap(sample, in_axes=(axes, 0, 0, 0))

        def step_b(coeffs_s, carry, ext_t):
            new_nodes, new_feedback, outs, recs = batched(coeffs_s, carry[0], carry[1], ext_t)
            return (new_nodes, new_feedback), (outs, recs)

        if self.options.checkpoint == "step":
            step_b = jax.checkpoint(step_b)
        return expand, step_b

    def run_plain(self, coeffs, xs: dict, state: GraphState, record: tuple, length: int):
        """The reference program: every node, every step, in one ``lax.scan``."""
        rec_nodes = tuple(r for r in record if not isinstance(r, tuple))
        state_recs = tuple(r for r in record if isinstance(r, tuple))
        exports = tuple(dict.fromkeys(self.program.outputs + rec_nodes))
        nodes, feedback, outs, recs = self.scan_loop(
            self.program.nodes, coeffs, state.nodes, state.feedback, xs, exports, state_recs, length)
        # a tuple in record order: pytree dicts cannot mix str and tuple keys
        recs = tuple(recs[r] if isinstance(r, tuple) else outs[r] for r in record)
        return {o: outs[o] for o in self.program.outputs}, GraphState(nodes, feedback), recs

    def _chunk_kernel(self, members, state_recs):
        """A whole-chunk kernel for a one-node scan stage, if an option asks for one.

        ``pallas`` and ``associative_scan`` ask the node's rule for its whole-chunk
        implementation of that name; none applies to a node on a cycle or one whose state
        is recorded.
        """
        if len(members) != 1:
            return None
        n = members[0]
        if (not n.feedthrough or any(e.delayed for e in self.program.incoming(n.name))
                or any(r[0] == n.name for r in state_recs)):
            return None
        for method in _CHUNK_METHODS:
            asked = getattr(self.options, method)
            kernel = self.interpreter.chunk_kernel(n, method, asked == "interpret") if asked else None
            if kernel is not None:
                return kernel
        return None

    def run_chunk(self, stages, coeffs, state: GraphState, xs: dict, record: tuple,
                  last: frozenset = frozenset()):
        """Run the stages layer by layer over one chunk ``xs`` of ``[K, B, ...]`` inputs.

        ``last`` names the nodes whose values (and state, and coefficients, already permuted
        by :meth:`run`) are channels-last (:mod:`nirjax.compiler.layout`); a value is
        transposed where a consumer needs the other layout. Outputs and records come back
        channels-first.
        """
        program, interp = self.program, self.interpreter
        plan = interp.plan
        lead = jax.tree_util.tree_leaves(xs)[0].shape[:2]
        env: dict[str, Any] = {}
        converted: dict = {}

        def value(name, want_last):
            """``name``'s chunk value in the layout a consumer wants (each transpose once)."""
            if (name in last) == want_last:
                return env[name]
            key = (name, want_last)
            if key not in converted:
                move = layout.to_last if want_last else layout.to_first
                converted[key] = move(env[name], 2)
            return converted[key]

        def fan_in(n, want_last):
            x = interp.fan_in(n, lambda e: value(e.src, want_last), lead)
            if want_last and not program.incoming(n.name):
                x = layout.to_last(x, 2)  # the zeros were built channels-first
            return x

        nodes, feedback, state_values = dict(state.nodes), dict(state.feedback), {}
        state_recs = tuple(r for r in record if isinstance(r, tuple))
        for stage in stages:
            members = tuple(program.node(m) for m in stage.members)
            if stage.kind == "map":
                n = members[0]
                is_last = n.name in last
                if n.role == "input":
                    x = layout.to_last(xs[n.name], 2) if is_last else xs[n.name]
                else:
                    x = fan_in(n, is_last)
                if plan is None:
                    env[n.name] = interp.apply_chunk(n, coeffs[n.name], x, is_last)
                    continue

                def gathered_map(coeff, x, n=n):
                    x = plan.lay(x, plan.input_spec(n.name), 2, 1)
                    return plan.lay(interp.apply_chunk(n, coeff, x), plan.value_spec(n.name), 2, 1)

                if plan.gathers_input(n.name):
                    # the backward pass keeps the split input and gathers it again, instead
                    # of keeping the whole [K, B, N_in] chunk on every device
                    gathered_map = jax.checkpoint(gathered_map)
                env[n.name] = gathered_map(coeffs[n.name], x)
                continue
            kernel = self._chunk_kernel(members, state_recs)
            if kernel is not None:
                n = members[0]
                nodes[n.name], env[n.name] = kernel(coeffs[n.name], nodes[n.name],
                                                    fan_in(n, n.name in last))
                if plan is not None:
                    env[n.name] = plan.lay(env[n.name], plan.value_spec(n.name), 2, 1)
                    nodes[n.name] = plan.lay_node_state(n.name, nodes[n.name], 1)
                continue
            # a scan stage of several members never computes channels-last
            want = len(members) == 1 and members[0].name in last
            sub_nodes = {m: nodes[m] for m in stage.members if m in nodes}
            sub_feedback = {m: feedback[m] for m in stage.members if m in feedback}
            ext = {name: value(name, want) for name in stage.external}
            sub_nodes, sub_feedback, outs, recs = self.scan_loop(
                members, coeffs, sub_nodes, sub_feedback, ext, stage.exports, state_recs, lead[0])
            nodes.update(sub_nodes)
            feedback.update(sub_feedback)
            env.update(outs if plan is None else plan.lay_values(outs, 2, 1))
            state_values.update(recs)

        def recorded(r):
            if isinstance(r, tuple):
                v = state_values[r]
                return layout.to_first(v, 2) if r[0] in last else v
            return value(r, False)

        recs = tuple(recorded(r) for r in record)
        return {o: value(o, False) for o in program.outputs}, GraphState(nodes, feedback), recs

    def chunk_size(self, steps: int, batch: int) -> int:
        """Steps per chunk of the staged program for ``steps`` steps of ``batch`` samples.

        The chunk holds every node's output for ``K`` steps, so ``K`` is bounded by the
        ``chunk_bytes`` option (default 8 MiB), but kept at ``512 / rows`` steps at least
        (the batched projections then multiply at least 512 rows at once; ``rows`` is
        ``batch`` times the output positions of the node with the most multiply-adds: 1 for
        Affine/Linear, ``H*W`` for a convolution), at 8 steps at least unless that node is a
        convolution (whose batches are large already and whose chunk values outgrow the
        caches: the paper CNN runs about 1.2x, the W6 benchmark CNN 1.7x faster in CPU
        time with chunks of a few steps than with 8 or more), and at 1024 at most. A divisor of ``steps`` in ``[K/2, 3K/2]`` (the nearest to ``K``)
        is preferred: one traced chunk body, no tail chunk, so compile time is flat in T.
        """
        option = self.options.chunk
        if isinstance(self.options.checkpoint, int):
            option = self.options.checkpoint
        if option is not None:
            return max(1, min(int(option), steps))
        per_step = batch * sum(int(np.prod(n.out_shape)) for n in self.program.nodes)
        per_step *= self.interpreter.dtype.itemsize
        positions, floor = self._heaviest_positions()
        rows = max(batch, 1) * positions
        k = self.options.chunk_bytes // max(per_step, 1)
        k = int(min(1024, max(k, floor, -(-512 // rows))))
        if k >= steps:
            return steps
        divisors = [c for c in range(max(k // 2, 1), min(steps, k + k // 2) + 1)
                    if steps % c == 0]
        if divisors:
            return min(divisors, key=lambda c: (abs(c - k), -c))
        return k

    def _heaviest_positions(self) -> tuple[int, int]:
        """``(positions, step floor)`` of the node with the most multiply-adds per step.

        Positions: the output positions its weights are applied at (1 for Affine/Linear,
        the spatial size for Conv1d/Conv2d); the step floor is 8 for a projection, 1 for a
        convolution (see :meth:`chunk_size`). ``(1, 8)`` for a graph without either.
        """
        best, out = 0.0, (1, 8)
        for n in self.program.nodes:
            weight = getattr(n.params, "weight", None)
            if weight is None or n.type_name not in ("Affine", "Linear", "Conv1d", "Conv2d"):
                continue
            if n.type_name.startswith("Conv"):
                positions = int(np.prod(n.out_shape[1:]))
                macs = float(np.prod(n.out_shape)) * float(np.prod(np.shape(weight)[1:]))
                cand = (positions, 1)
            else:
                macs, cand = float(np.size(weight)), (1, 8)
            if macs > best:
                best, out = macs, cand
        return out

    def run(self, params, xs: dict, state: GraphState, record: tuple):
        """``T`` steps from ``state``: returns ``(outputs, state, records)``.

        On a mesh, parameters, inputs, state, outputs and records are constrained to their
        layout at the boundaries (the jitted run's in and out shardings)."""
        plan = self.interpreter.plan
        if plan is None:
            return self._run(params, xs, state, record)
        params = plan.constrain_params(params)
        xs = plan.lay_values(xs, 2, 1)
        state = plan.lay_state(state, 1)
        ys, state, recs = self._run(params, xs, state, record)
        return (plan.lay_values(ys, 2, 1), plan.lay_state(state, 1),
                plan.lay_record(record, recs, 2, 1))

    def _run(self, params, xs: dict, state: GraphState, record: tuple):
        coeffs = self.interpreter.prepare(params)
        steps, batch = jax.tree_util.tree_leaves(xs)[0].shape[:2]
        remat = self.options.checkpoint
        if not self.options.optimize:
            if not isinstance(remat, int):
                return self.run_plain(coeffs, xs, state, record, steps)
            k = max(1, min(remat, steps))
            chunk = lambda st, xc: self.run_plain(
                coeffs, xc, st, record, jax.tree_util.tree_leaves(xc)[0].shape[0])
        else:
            needed = {r for r in record if not isinstance(r, tuple)}
            stages = schedule(self.program, needed)
            # on a mesh every value stays channels-first (the plan's layouts assume NIR shapes)
            last = (layout.channels_last(self.program, stages) if self.interpreter.plan is None
                    else frozenset())
            coeffs, state = self._to_last(coeffs, state, last)
            k = self.chunk_size(steps, batch)
            chunk = lambda st, xc: self.run_chunk(stages, coeffs, st, xc, record, last)
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
        if self.options.optimize:
            state = self._to_first(state, last)
        if len(pieces) == 1:
            return pieces[0][0], state, pieces[0][1]
        cat = lambda a, b: jnp.concatenate([a, b], axis=0)
        return (jax.tree_util.tree_map(cat, pieces[0][0], pieces[1][0]), state,
                jax.tree_util.tree_map(cat, pieces[0][1], pieces[1][1]))

    def _to_last(self, coeffs, state: GraphState, last: frozenset):
        """Coefficients of elementwise nodes and states of the nodes in ``last``, permuted
        channels-last (:mod:`nirjax.compiler.layout`)."""
        if not last:
            return coeffs, state
        coeffs = dict(coeffs)
        nodes = dict(state.nodes)
        for name in last:
            n = self.program.node(name)
            if n.rule.elementwise and coeffs.get(name) is not None:
                coeffs[name] = layout.coeffs_to_last(coeffs[name], n.out_shape)
            if name in nodes:
                nodes[name] = jax.tree_util.tree_map(lambda a: layout.to_last(a, 1), nodes[name])
        return coeffs, GraphState(nodes, state.feedback)

    def _to_first(self, state: GraphState, last: frozenset) -> GraphState:
        """The state of the nodes in ``last`` back channels-first."""
        nodes = dict(state.nodes)
        for name in last:
            if name in nodes:
                nodes[name] = jax.tree_util.tree_map(lambda a: layout.to_first(a, 1), nodes[name])
        return GraphState(nodes, state.feedback)

    def step(self, params, state: GraphState, x_t):
        """One step: ``x_t`` ``[B, ...]`` -> ``(y_t, state)``."""
        plan = self.interpreter.plan
        if plan is not None:
            params = plan.constrain_params(params)
            x_t = plan.lay_values(x_t, 1, 0)
            state = plan.lay_state(state, 1)
        coeffs = self.interpreter.prepare(params)
        xs = jax.tree_util.tree_map(lambda a: a[None], x_t)
        ys, state, _ = self.run_plain(coeffs, xs, state, (), 1)
        ys = jax.tree_util.tree_map(lambda a: a[0], ys)
        if plan is None:
            return ys, state
        return plan.lay_values(ys, 1, 0), plan.lay_state(state, 1)
