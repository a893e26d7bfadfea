"""Validation of what a user passes to a compiled graph: inputs, state and records.

Everything is checked before tracing, with messages that name the input, node or field,
say what was given and what was expected, and suggest the fix.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from .interpreter import GraphState
from .program import Program

__all__ = ["check_record", "check_inputs", "check_state"]


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


def check_inputs(program: Program, xs, dtype, *, per_step: bool,
                 place=None) -> tuple[dict, int, int | None]:
    """Validate inputs and normalize them to a dict of ``dtype`` arrays keyed by Input name.

    Args:
        program: the compiled program.
        xs: ``[T, B, *input_shape]`` (``[B, *input_shape]`` when ``per_step``), or a dict of
            those keyed by Input node name.
        dtype: the dtype of the program's values (an integer program takes whole numbers).
        per_step: whether ``xs`` is one step.
        place: ``place(name, x, lead)`` -> the array to use (e.g. placed on a mesh of
            devices, :meth:`nirjax.CompiledGraph.run` on a mesh); default: ``x`` cast to
            ``dtype`` on the default device.

    Returns:
        ``(inputs, batch, T)`` (``T`` is ``None`` per step).

    Raises:
        InputError: naming the input, the shape given and the shape expected.
    """
    names = program.inputs
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
        shape = program.node(name).out_shape
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
        if jnp.issubdtype(dtype, jnp.integer):
            _check_integral(name, x, program.table)
        out[name] = jnp.asarray(x, dtype) if place is None else place(name, x, lead_n)
    if batch == 0:
        raise InputError("the batch axis is empty")
    return out, batch, steps


def check_state(state, batch: int) -> None:
    """Check that ``state`` is a :class:`GraphState` made for ``batch`` samples.

    Raises:
        InputError: it is not a GraphState, or its batch size differs.
    """
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
