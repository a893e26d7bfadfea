"""The compiled graph: the facade a user holds, and :func:`compile_graph`.

A :class:`CompiledGraph` puts together, for one :class:`~nirjax.compiler.Program`:

* the interpreter of one step (:mod:`nirjax.compiler.interpreter`: the
  ``env``/``read``/``write`` loop of ``jax.core.eval_jaxpr`` over the ordered IR);
* the loop drivers over time (:mod:`nirjax.compiler.loops`: the plain one-scan program, or
  by default the staged program of :mod:`nirjax.compiler.schedule` as one outer ``lax.scan``
  over chunks of steps, differentiated with :mod:`nirjax.compiler.scan_vjp`);
* the validation of parameters, inputs, state and records
  (:mod:`nirjax.compiler.validation`) and the memory estimate checked against
  ``nirjax.limits()`` (:mod:`nirjax.compiler.memory`);

and jits the pure functions ``run``, ``step`` and ``init_state``. The whole simulation is one
``lax.scan`` inside ``jax.jit``, so compile time does not grow with the number of steps. The
kernels work on one sample; the step is ``vmap``-ed over the batch axis.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import nir

from ..errors import GraphError, OptionsError
from ..rules import get_table
from ..semantics import check_dt, resolve_semantics
from .interpreter import GraphState, Interpreter
from .loops import Loops
from .memory import MemoryEstimate, check_memory, estimate_memory
from .options import CompileOptions
from .program import Program, build_program
from .sharding import ShardingPlan
from .validation import (check_batch_size, check_cast, check_inputs, check_params, check_record,
                         check_state)

__all__ = ["compile_graph", "CompiledGraph", "GraphState", "check_record"]


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
        memory: the estimated bytes per sample (:class:`~nirjax.compiler.memory.MemoryEstimate`),
            checked against ``nirjax.limits().max_memory_bytes`` here, at ``init_state`` and
            at ``run`` (a :class:`~nirjax.LimitError` names the largest nodes).
    """

    def __init__(self, program: Program, dtype=None, options: Any = None):
        self.options = CompileOptions.of(options)
        if dtype is not None:
            self.options = self.options.replace(dtype=dtype)
        self.program = program
        self.dtype = _value_dtype(program.table, self.options.dtype)
        # values survive the cast; state and one step's buffers fit (before any allocation)
        check_cast(program, self.dtype)
        self.memory: MemoryEstimate = estimate_memory(program, self.dtype)
        check_memory(self.memory)
        self._expected_state: dict = {}
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
        self.interpreter = Interpreter(program, self.dtype, self.sharding)
        self.loops = Loops(self.interpreter, self.options)
        self._run = jax.jit(self.loops.run, static_argnames=("record",),
                            donate_argnames=("state",) if self.options.donate_state else ())
        self._init_jit = jax.jit(self.interpreter.init_state, static_argnums=(1,))
        self._step = jax.jit(self.loops.step)

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
        batch_size = check_batch_size(batch_size)
        check_memory(self.memory, batch_size, what=f"init_state({batch_size})")
        if self.sharding is not None:
            self.sharding.check_batch(batch_size, "init_state")
        return self._init_jit(self.params, batch_size)

    def chunk_size(self, steps: int, batch: int) -> int:
        """Steps per chunk of the staged program (see
        :meth:`nirjax.compiler.loops.Loops.chunk_size`)."""
        return self.loops.chunk_size(steps, batch)

    # ------------------------------------------------------------------ inputs on a mesh

    def _inputs(self, xs, per_step: bool, before_cast=None):
        """Validated inputs (placed on the mesh, split over "batch", when there is one);
        ``before_cast(batch, T)`` runs before any input is copied (the memory check)."""
        place = self._place_input if self.sharding is not None else None
        out, batch, steps = check_inputs(self.program, xs, self.dtype, per_step=per_step,
                                         place=place, before_cast=before_cast)
        if self.sharding is not None:
            self.sharding.check_batch(batch, "inputs")
        return out, batch, steps

    def _place_input(self, name, x, lead):
        """An input cast to the model's dtype and split over the mesh's "batch" axis."""
        plan = self.sharding
        spec = plan.batched(lead, lead - 1, plan.value_spec(name))
        if isinstance(x, jax.core.Tracer):
            return plan.constrain(jnp.asarray(x, self.dtype), spec)
        if isinstance(x, jax.Array):
            x = x if x.dtype == self.dtype else x.astype(self.dtype)
        else:
            x = np.asarray(x).astype(self.dtype, copy=False)
        if x.shape[lead - 1] % plan.batch_size:
            return x  # check_batch raises the error
        return plan.put(x, spec)

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
        out, _, _ = self._inputs(xs, per_step=False)
        if len(self.program.inputs) == 1:
            return out[self.program.inputs[0]]
        return out

    # ------------------------------------------------------------------ run / step

    def _check_state(self, state, batch: int) -> None:
        """``state`` belongs to this model and is made for ``batch`` samples."""
        if batch not in self._expected_state:
            self._expected_state[batch] = jax.eval_shape(
                lambda p: self.interpreter.init_state(p, batch), self.params)
        check_state(state, batch, self._expected_state[batch])

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
        check_params(params, self.params)
        rec_items = check_record(self.program, record, self.dtype)
        xs, batch, steps = self._inputs(
            xs, per_step=False,
            before_cast=lambda b, t: check_memory(self.memory, b, t, what=f"a run of {t} steps"))
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
        check_params(params, self.params)
        x_t, batch, _ = self._inputs(x_t, per_step=True)
        self._check_state(state, batch)
        ys, state = self._step(params, state, x_t)
        return self._format(ys), state

    def __call__(self, xs):
        """Simulate from the initial state with ``self.params``; returns ``ys``."""
        return self.run(self.params, xs)[0]


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
            ``associative_scan``, ``fast_backward``, ``mesh``, ``shard_min``; each
            documented there).

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
