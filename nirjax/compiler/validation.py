"""Validation of what a user passes to a compiled graph: inputs, params, state and records,
and of the parameters a program is compiled with.

Everything is checked before anything is cast, allocated or traced, with messages that name
the input, node or field, say what was given and what was expected, and suggest the fix:

* :func:`check_cast`: parameters survive the cast to the compute dtype (a weight of ``1e40``
  does not become ``inf`` in float32, a ``tau`` of ``1e-50`` does not become 0);
* :func:`check_inputs`, :func:`check_params`, :func:`check_state`, :func:`check_record`,
  :func:`check_batch_size`: the arguments of ``run``/``step``/``init_state``.

(The memory a program needs is estimated and checked in :mod:`nirjax.compiler.memory`.)
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError, ParameterError
from .interpreter import GraphState
from .program import Program

__all__ = ["check_record", "check_inputs", "check_state", "check_params", "check_cast",
           "check_batch_size"]


# ----------------------------------------------------------------------------- values


def _is_time_constant(field: str) -> bool:
    return field.startswith("tau")


def check_cast(program: Program, dtype) -> None:
    """Refuse parameters that the cast to ``dtype`` would change beyond rounding.

    A finite value that becomes ``inf`` (beyond the dtype's range) and a nonzero time
    constant (``tau*``) that becomes 0 or a subnormal number (it divides ``dt``) raise a
    :class:`~nirjax.errors.ParameterError` naming the node and field. Other values are
    rounded to the nearest representable one, as float arithmetic does. Integer dtypes (an
    integer rule table uses its parameters as given) are not checked here.

    Args:
        program: the program to be compiled.
        dtype: the floating dtype its parameters are cast to.

    Raises:
        ParameterError: naming the node, field, value and index.
    """
    dtype = np.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        return
    info = jnp.finfo(dtype)
    for n in program.nodes:
        params = n.params
        if params is None or not hasattr(params, "_fields"):
            continue
        for field in params._fields:
            value = getattr(params, field)
            try:
                arr = np.asarray(value)
            except Exception:  # noqa: BLE001 - rules validated the values already
                continue
            if arr.dtype.kind not in "iuf":
                continue
            with np.errstate(all="ignore"):
                cast = arr.astype(dtype)
                wide = np.asarray(cast, np.float64)
                big = np.isfinite(arr) & ~np.isfinite(wide)
            where = f"node {n.name!r} ({n.type_name}): field {field!r}"
            if np.any(big):
                i = tuple(int(k) for k in np.argwhere(big)[0]) if arr.ndim else ()
                raise ParameterError(
                    f"{where} holds {arr[i] if arr.ndim else arr[()]!r}{f' at index {i}' if i else ''}, "
                    f"beyond the range of {dtype} (largest {float(info.max):.4g}); compiling would "
                    f"turn it into inf. Scale the value, or compile in float64 "
                    f"(jax.config.update('jax_enable_x64', True))"
                )
            if _is_time_constant(field):
                tiny = (arr != 0) & (np.abs(wide) < float(info.tiny))
                if np.any(tiny):
                    i = tuple(int(k) for k in np.argwhere(tiny)[0]) if arr.ndim else ()
                    raise ParameterError(
                        f"{where} holds {arr[i] if arr.ndim else arr[()]!r}"
                        f"{f' at index {i}' if i else ''}, which is below the smallest normal "
                        f"{dtype} ({float(info.tiny):.4g}) and would become "
                        f"{float(wide[i] if arr.ndim else wide):g}; a time constant divides dt"
                    )


# ----------------------------------------------------------------------------- run-time arguments


def check_batch_size(batch_size) -> int:
    """``batch_size`` as a positive int (``True`` is not one).

    Raises:
        InputError: it is not a positive int.
    """
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _state_fields(node, dtype) -> tuple:
    """The state field names of a stateful node (from shapes alone: nothing is allocated)."""
    return type(jax.eval_shape(
        lambda: node.rule.init_state(node.params, node.config, node.out_shape, dtype)))._fields


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
        InputError: an entry is malformed (not a string or a pair of strings), or names a
            state field the node does not have.

    >>> import nir, numpy as np, nirjax
    >>> g = nir.NIRGraph.from_list(nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)))
    >>> check_record(nirjax.compile(g, dt=0.1).program, [("li", "v"), "li"])
    (('li', 'v'), 'li')
    """
    if record is None:
        return ()
    dtype = jnp.float32 if dtype is None else dtype
    names = {n.name for n in program.nodes}
    if isinstance(record, str):
        record = [record]
    elif (isinstance(record, tuple) and len(record) == 2
          and all(isinstance(r, str) for r in record) and record[1] not in names):
        record = [record]  # one ("node", "field") pair, not two node names
    elif not isinstance(record, (list, tuple)):
        raise InputError(f"record must be a node name, a (node, state field) pair or a list of "
                         f"those, got {type(record).__name__} {record!r}"[:300])
    items = []
    for item in record:
        if isinstance(item, (list, tuple)):
            if len(item) != 2 or not all(isinstance(v, str) for v in item):
                raise InputError(f"record entry {item!r}: expected a node name or a (node, state "
                                 f"field) pair of strings"[:300])
            name, field = item
            node = program.node(name)
            if not node.stateful:
                raise InputError(f"record entry {tuple(item)!r}: node {name!r} ({node.type_name}) "
                                 f"has no state")
            fields = _state_fields(node, dtype)
            if field not in fields:
                raise InputError(
                    f"record entry {tuple(item)!r}: node {name!r} ({node.type_name}) has state "
                    f"fields {fields}, not {field!r}"
                )
            items.append((name, field))
        elif isinstance(item, str):
            program.node(item)  # raises a GraphError naming the nodes if unknown
            items.append(item)
        else:
            raise InputError(f"record entry {item!r}: expected a node name or a (node, state "
                             f"field) pair, got {type(item).__name__}"[:300])
    return tuple(items)


def _as_array(x, where: str):
    """``x`` as something with a shape and a dtype (InputError for None, strings, ragged
    nested lists)."""
    if x is None:
        raise InputError(f"{where}: got None, expected an array")
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return x
    if isinstance(x, (str, bytes, Mapping)):
        raise InputError(f"{where}: expected a numeric array, got {type(x).__name__}")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists, odd objects
        raise InputError(f"{where}: cannot be made into an array ({exc}); nested lists must be "
                         f"rectangular") from None


def _real_dtype(dtype) -> bool:
    try:
        return bool(jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
                    or jnp.issubdtype(dtype, jnp.bool_))
    except TypeError:
        return False


def check_inputs(program: Program, xs, dtype, *, per_step: bool,
                 before_cast=None, place=None) -> tuple[dict, int, int | None]:
    """Validate inputs and normalize them to a dict of ``dtype`` arrays keyed by Input name.

    Args:
        program: the compiled program.
        xs: ``[T, B, *input_shape]`` (``[B, *input_shape]`` when ``per_step``), or a dict of
            those keyed by Input node name.
        dtype: the dtype of the program's values (an integer program takes whole numbers).
        per_step: whether ``xs`` is one step.
        before_cast: called as ``before_cast(batch, T)`` once the shapes are checked and
            before any input is copied (the memory check of ``run``).
        place: ``place(name, x, lead)`` -> the array to use (e.g. placed on a mesh of
            devices, :meth:`nirjax.CompiledGraph.run` on a mesh); default: ``x`` cast to
            ``dtype`` on the default device.

    Returns:
        ``(inputs, batch, T)`` (``T`` is ``None`` per step).

    Raises:
        InputError: naming the input, the shape given and the shape expected; a complex,
            string or object array; ragged nested lists; an empty batch or time axis.
    """
    names = program.inputs
    lead = "[B, *shape]" if per_step else "[T, B, *shape]"
    if isinstance(xs, Mapping):
        missing = [n for n in names if n not in xs]
        extra = [k for k in xs if k not in names]
        if missing or extra:
            raise InputError(
                f"inputs must be keyed by the graph's Input nodes {list(names)}; "
                f"missing {sorted(map(str, missing))}, unexpected {sorted(map(str, extra))}"
            )
        xs = dict(xs)
    elif len(names) == 1:
        xs = {names[0]: xs}
    else:
        raise InputError(
            f"the graph has {len(names)} Input nodes {list(names)}: pass a dict of arrays "
            f"keyed by those names"
        )
    batch = steps = first = None
    out = {}
    lead_n = 1 if per_step else 2
    for name in names:
        x = _as_array(xs[name], f"input {name!r}")
        xs[name] = x
        shape = program.node(name).out_shape
        if not _real_dtype(x.dtype):
            raise InputError(f"input {name!r}: expected a real numeric array (float, int or "
                             f"bool), got dtype {x.dtype}")
        if x.ndim != lead_n + len(shape) or tuple(x.shape[lead_n:]) != tuple(shape):
            hint = ""
            if x.ndim == lead_n - 1 + len(shape) and tuple(x.shape[lead_n - 1:]) == tuple(shape):
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
    if batch == 0:
        raise InputError("the batch axis is empty")
    if steps == 0:
        raise InputError(f"the time axis is empty: the inputs {lead} have T = 0 steps; give at "
                         f"least one step")
    if before_cast is not None:
        before_cast(batch, steps)
    for name in names:
        x = xs[name]
        if jnp.issubdtype(dtype, jnp.integer):
            _check_integral(name, x, program.table)
        out[name] = jnp.asarray(x, dtype) if place is None else place(name, x, lead_n)
    return out, batch, steps


def _leaf_desc(leaf) -> str:
    if leaf is None:
        return "None"
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        return f"an array of shape {tuple(leaf.shape)} and dtype {leaf.dtype}"
    return f"a {type(leaf).__name__}"


def _kind(dtype) -> str | None:
    """'float', 'int' or None (anything else: bool, complex, object, strings)."""
    try:
        if jnp.issubdtype(dtype, jnp.floating):
            return "float"
        if jnp.issubdtype(dtype, jnp.integer):
            return "int"
    except TypeError:
        pass
    return None


def check_params(params, reference: Mapping, where: str = "params") -> None:
    """Check that ``params`` is structured like ``reference`` (``model.params``).

    The same nodes, each the same NamedTuple, every leaf an array of the reference's shape
    and kind (floating for a float program; integer for an integer rule table's). Tracers
    pass (their shapes are checked the same way).

    Args:
        params: what the user passed to ``run``/``step``.
        reference: ``model.params``.
        where: how to name ``params`` in messages.

    Raises:
        InputError: naming the node and field, what was given and what was expected.
    """
    if not isinstance(params, Mapping):
        raise InputError(f"{where} must be a dict like model.params (node name -> NamedTuple of "
                         f"arrays), got {type(params).__name__}")
    missing = [k for k in reference if k not in params]
    extra = [k for k in params if k not in reference]
    if missing or extra:
        raise InputError(
            f"{where} must have an entry for every node with parameters "
            f"({', '.join(reference)}); missing {sorted(map(str, missing))}, unexpected "
            f"{sorted(map(str, extra))}"
        )
    for name, ref in reference.items():
        _check_param_tree(params[name], ref, f"{where}[{name!r}]")


def _check_param_tree(value, expected, here: str) -> None:
    """One node's parameters (a NamedTuple, possibly of NamedTuples) against model.params."""
    fields = getattr(expected, "_fields", None)
    if fields is not None:
        if getattr(value, "_fields", None) != fields:
            got = _leaf_desc(value) if not isinstance(value, tuple) else type(value).__name__
            raise InputError(f"{here} must be a {type(expected).__name__} with fields {fields} "
                             f"(as in model.params), got {got}")
        for field in fields:
            _check_param_tree(getattr(value, field), getattr(expected, field), f"{here}.{field}")
        return
    if isinstance(expected, (tuple, list, Mapping)) or expected is None:
        if jax.tree_util.tree_structure(value) != jax.tree_util.tree_structure(expected):
            raise InputError(f"{here} is structured as {jax.tree_util.tree_structure(value)}, "
                             f"expected {jax.tree_util.tree_structure(expected)} (as in "
                             f"model.params)")
        for v, e in zip(jax.tree_util.tree_leaves(value), jax.tree_util.tree_leaves(expected)):
            _check_param_tree(v, e, here)
        return
    leaf = value
    if leaf is None or isinstance(leaf, (str, bytes)) or not (
            hasattr(leaf, "shape") or isinstance(leaf, (int, float, np.generic))):
        raise InputError(f"{here} must be an array of shape {tuple(np.shape(expected))}, "
                         f"got {_leaf_desc(leaf)}")
    dtype = getattr(leaf, "dtype", None) or np.asarray(leaf).dtype
    want = _kind(getattr(expected, "dtype", np.float32)) or "float"
    have = _kind(dtype)
    if have != want:
        what = "an integer" if want == "int" else "a floating"
        raise InputError(f"{here} must be {what} array (model.params holds "
                         f"{getattr(expected, 'dtype', 'floats')}), got dtype {dtype}")
    if tuple(np.shape(leaf)) != tuple(np.shape(expected)):
        raise InputError(f"{here} has shape {tuple(np.shape(leaf))}, expected "
                         f"{tuple(np.shape(expected))} (the shape in model.params)")


def check_state(state, batch: int, expected: GraphState | None = None) -> None:
    """Check that ``state`` is a :class:`GraphState` made for ``batch`` samples.

    Args:
        state: what the user passed.
        batch: the batch size of the inputs.
        expected: the ``jax.eval_shape`` of this model's ``init_state(batch)``; when given,
            every node, field, shape and dtype must match it (a state from another model is
            refused before tracing).

    Raises:
        InputError: it is not a GraphState, its batch size differs, or it does not belong
            to this model.
    """
    if not isinstance(state, GraphState):
        raise InputError(
            f"state must be a GraphState from model.init_state(), got {type(state).__name__}"
        )
    if expected is None:
        leaves = jax.tree_util.tree_leaves(state)
        if leaves and hasattr(leaves[0], "shape") and leaves[0].shape[:1] != (batch,):
            raise InputError(
                f"state was made for batch size {leaves[0].shape[:1]} but the inputs have "
                f"batch size {batch}; call model.init_state(batch_size={batch})"
            )
        return
    for part in ("nodes", "feedback"):
        have, want = getattr(state, part), getattr(expected, part)
        if not isinstance(have, Mapping):
            raise InputError(f"state.{part} must be a dict, got {type(have).__name__}; use "
                             f"model.init_state()")
        if set(have) != set(want):
            missing = sorted(set(want) - set(have))
            extra = sorted(map(str, set(have) - set(want)))
            raise InputError(
                f"state.{part} does not belong to this model: missing {missing}, unexpected "
                f"{extra}; use this model's init_state() (or a state its run/step returned)"
            )
        for key in want:
            here = f"state.{part}[{key!r}]"
            want_leaves, want_def = jax.tree_util.tree_flatten(want[key])
            have_leaves, have_def = jax.tree_util.tree_flatten(have[key])
            if have_def != want_def:
                raise InputError(f"{here} is structured as {have_def}, expected {want_def}; use "
                                 f"this model's init_state()")
            for h, w in zip(have_leaves, want_leaves):
                if not (hasattr(h, "shape") and hasattr(h, "dtype")):
                    raise InputError(f"{here} holds {_leaf_desc(h)}, expected an array of shape "
                                     f"{tuple(w.shape)}")
                if tuple(h.shape) != tuple(w.shape):
                    if (h.ndim and w.ndim and h.shape[0] != w.shape[0]
                            and tuple(h.shape[1:]) == tuple(w.shape[1:])):
                        raise InputError(
                            f"state was made for batch size {h.shape[0]} but the inputs have "
                            f"batch size {batch}; call model.init_state(batch_size={batch})"
                        )
                    raise InputError(f"{here} has shape {tuple(h.shape)}, expected "
                                     f"{tuple(w.shape)}; use this model's init_state()")
                if np.dtype(h.dtype) != np.dtype(w.dtype):
                    raise InputError(f"{here} has dtype {h.dtype}, expected {w.dtype}")


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
