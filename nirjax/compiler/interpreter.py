"""The interpreter of a :class:`~nirjax.compiler.Program`: what one step of the graph computes.

Like ``jax.core.eval_jaxpr``, it walks the ordered IR once at trace time with an environment
of values keyed by node name: for every node, in program order, it reads the node's inputs
(:meth:`Interpreter.fan_in`: the sum of its incoming edges), calls the node's kernel through
its rule and writes the output. The traced step is free of Python work. The loops that drive
it over time live in :mod:`nirjax.compiler.loops`.

Within one step (:meth:`Interpreter.eval_step`):

1. nodes without direct feedthrough (a Delay of >= 1 step, a neuron that fires from its
   carried state) emit their output from state;
2. every other node runs in program order; its input is the sum of its incoming edges, where
   a *delayed* edge (one that closes a cycle, see :mod:`nirjax.graph.flat`) reads its source's
   output of the previous step (zeros at step 0) and every other edge reads the value
   computed earlier in this step; a node with no incoming edge gets zeros;
3. nodes without feedthrough absorb their summed input;
4. outputs of the sources of delayed edges are stored for the next step.

Every value and state is in one dtype, the interpreter's ``dtype`` (the compile's float dtype,
or an integer rule table's); the carry's structure and dtypes never drift.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from .program import Program

__all__ = ["GraphState", "Interpreter"]


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


class Interpreter:
    """Evaluates a program's nodes, one step of one sample or a whole chunk of steps.

    Args:
        program: the ordered IR.
        dtype: the dtype of every value and state.
        plan: the layout on a mesh of devices (a
            :class:`~nirjax.compiler.sharding.ShardingPlan`), or ``None`` for one device.
            With a plan, every value, state and weight-layer input is constrained to its
            layout (``with_sharding_constraint``), so XLA keeps the state split from step
            to step and all-gathers spikes only before a weight layer.
    """

    def __init__(self, program: Program, dtype, plan=None):
        self.program = program
        self.dtype = dtype
        self.plan = plan
        self.feedback_sources = tuple(sorted({e.src for e in program.delayed_edges}))

    def prepare(self, params) -> dict:
        """Time-invariant kernel coefficients, computed once per run (outside the scan)."""
        coeffs = {}
        for n in self.program.nodes:
            p = params.get(n.name) if n.params is not None else None
            coeffs[n.name] = n.rule.prepare(p, n.config) if p is not None else None
        return coeffs

    def init_state(self, params, batch_size: int) -> GraphState:
        """The state at t = 0 for ``batch_size`` samples (each kernel's ``init_state``)."""
        nodes = {}
        for n in self.program.nodes:
            if n.stateful:
                s = n.rule.init_state(params.get(n.name), n.config, n.out_shape, self.dtype)
                # params of another float dtype (bfloat16, float64) must not change the carry
                s = jax.tree_util.tree_map(lambda a: a.astype(self.dtype) if jnp.issubdtype(
                    a.dtype, jnp.floating) and jnp.issubdtype(self.dtype, jnp.floating) else a, s)
                nodes[n.name] = jax.tree_util.tree_map(
                    lambda a: jnp.broadcast_to(a, (batch_size,) + a.shape), s)
        feedback = {
            name: jnp.zeros((batch_size,) + self.program.node(name).out_shape, self.dtype)
            for name in self.feedback_sources
        }
        state = GraphState(nodes, feedback)
        return state if self.plan is None else self.plan.lay_state(state, 1)

    def fan_in(self, n, read: Callable, lead: tuple = ()):
        """The input of node ``n``: the sum of ``read(edge)`` over its incoming edges, in
        edge order (``((e1 + e2) + e3)``); zeros of shape ``lead + in_shape`` when it has
        none. ``lead`` is ``()`` for one sample of one step, ``(K, B)`` for a chunk."""
        total = None
        for e in self.program.incoming(n.name):
            value = read(e)
            total = value if total is None else total + value
        if total is None:
            total = jnp.zeros(tuple(lead) + n.in_shape, self.dtype)
        return total

    def eval_step(self, members: tuple, coeffs, nodes: dict, feedback: dict, ext: dict):
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

        plan = self.plan

        def read(e):
            if e.delayed:
                return feedback[e.src]
            return values[e.src] if e.src in values else ext[e.src]

        def summed(n):
            total = self.fan_in(n, read)
            if plan is not None:  # whole before a weight layer: the all-gather of spikes
                total = plan.constrain(total, plan.input_spec(n.name))
            return total

        for n in members:
            if not n.feedthrough:
                continue
            x = ext[n.name] if n.role == "input" else summed(n)
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
                                                  summed(n), n.config)
        # the carry's structure and dtypes never drift
        new_nodes = {k: jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), v, nodes[k])
                     for k, v in new_nodes.items()}
        if plan is not None:  # the state stays split from step to step
            new_nodes = {k: jax.tree_util.tree_map(
                lambda a, k=k: plan.constrain(a, plan.leaf_spec(k, a.shape)), v)
                for k, v in new_nodes.items()}
        new_feedback = {k: values[k] for k in feedback}
        return new_nodes, new_feedback, values

    def apply_chunk(self, n, coeff, x, last: bool = False):
        """Apply a stateless node to a whole chunk ``[K, B, *in_shape]`` at once.

        ``last``: the values are channels-last (:mod:`nirjax.compiler.layout`); a rule with
        a channels-last kernel (``Rule.apply_last``) then gets all ``K*B`` samples in one
        call, an elementwise rule its (already permuted) coefficients as usual. On a mesh
        (``self.plan``) values are never channels-last and the batch axis split over devices
        is not merged with the steps: batch outer, steps inner.
        """
        if self.plan is not None:
            fn = lambda xi: n.rule.apply(coeff, xi, n.config)
            return jax.vmap(jax.vmap(fn), in_axes=1, out_axes=1)(x).astype(self.dtype)
        lead = x.shape[:2]
        flat = x.reshape((-1,) + x.shape[2:])
        if last and n.rule.apply_last is not None:
            y = n.rule.apply_last(coeff, flat, n.config)
        else:
            y = jax.vmap(lambda xi: n.rule.apply(coeff, xi, n.config))(flat)
        return y.reshape(lead + y.shape[1:]).astype(self.dtype)

    def chunk_kernel(self, n, method: str, interpret: bool) -> Callable | None:
        """Node ``n``'s whole-chunk kernel named ``method`` (``"pallas"``,
        ``"associative_scan"``: :attr:`nirjax.rules.Rule.chunk`), as
        ``(coeff, state, x [K, B, ...]) -> (state, y)`` with the carry's dtypes kept, or
        ``None`` when its rule has none for the node's configuration."""
        fn = n.rule.chunk(n.config, method) if n.rule.chunk is not None else None
        if fn is None:
            return None

        def run(coeff, state, x):
            new, y = fn(coeff, state, x, interpret)
            new = jax.tree_util.tree_map(lambda a, b: a.astype(b.dtype), new, state)
            return new, y.astype(self.dtype)

        return run
