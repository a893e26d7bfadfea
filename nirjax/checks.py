"""Checks of what a compiled graph is given: values, memory, inputs, params, state, records.

Self-contained functions the compiler calls before it casts, allocates or traces anything:

* :func:`check_cast`: parameters survive the cast to the compute dtype (a weight of ``1e40``
  does not become ``inf`` in float32, a ``tau`` of ``1e-50`` does not become 0);
* :func:`estimate_memory` / :func:`check_memory`: the state and per-step buffers a program
  needs, from shapes alone (``jax.eval_shape``), against ``nirjax.limits().max_memory_bytes``:
  per sample at compile time, for the batch at ``init_state``, for the batch and every step's
  outputs at ``run``;
* :func:`check_inputs`, :func:`check_params`, :func:`check_state`, :func:`check_record`:
  the arguments of ``run``/``step``, with errors that name the node, field or input.

Each raises a :class:`~nirjax.errors.NirjaxError` subclass (:class:`InputError`,
:class:`ParameterError`, :class:`LimitError`) naming the culprit and what was expected.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError, LimitError, ParameterError
from .limits import format_bytes, limits

__all__ = ["MemoryEstimate", "estimate_memory", "check_memory", "check_cast", "check_inputs",
           "check_params", "check_state", "check_record", "check_batch_size"]


# ----------------------------------------------------------------------------- values


def _is_time_constant(field: str) -> bool:
    return field.startswith("tau")


def check_cast(program, dtype) -> None:
    """Refuse parameters that the cast to ``dtype`` would change beyond rounding.

    A finite value that becomes ``inf`` (beyond the dtype's range) and a nonzero time
    constant (``tau*``) that becomes 0 or a subnormal number (it divides ``dt``) raise a
    :class:`ParameterError` naming the node and field. Other values are rounded to the
    nearest representable one, as float arithmetic does.
    """
    dtype = np.dtype(dtype)
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


# ----------------------------------------------------------------------------- memory


class MemoryEstimate(NamedTuple):
    """Bytes a compiled program needs per sample (estimates from shapes, not measurements).

    Attributes:
        state: the state of every stateful node and the feedback buffers of delayed edges.
        step: every node's output for one step (what one step of the program holds).
        outputs: the graph's outputs for one step (``run`` returns them for every step).
        largest: ``(node, bytes)`` of the nodes needing most, largest first (at most 3).
    """

    state: int
    step: int
    outputs: int
    largest: tuple


def _nbytes(tree) -> int:
    return sum(math.prod(int(d) for d in leaf.shape) * np.dtype(leaf.dtype).itemsize
               for leaf in jax.tree_util.tree_leaves(tree))


def estimate_memory(program, dtype) -> MemoryEstimate:
    """The state and buffer bytes of ``program`` per sample, from shapes alone."""
    itemsize = np.dtype(dtype).itemsize
    per_node: dict = {}
    state = 0
    for n in program.nodes:
        size = math.prod(int(d) for d in n.out_shape) * itemsize
        per_node[n.name] = size
        if n.stateful:
            try:
                shapes = jax.eval_shape(lambda n=n: n.rule.init_state(n.params, n.config,
                                                                      n.out_shape, dtype))
            except Exception:  # noqa: BLE001 - a user rule: fall back to the output's size
                shapes = jax.ShapeDtypeStruct(tuple(n.out_shape), dtype)
            s = _nbytes(shapes)
            state += s
            per_node[n.name] += s
    sources = {e.src for e in program.edges if e.delayed}
    state += sum(math.prod(int(d) for d in program.node(s).out_shape) * itemsize for s in sources)
    step = sum(math.prod(int(d) for d in n.out_shape) * itemsize for n in program.nodes)
    outputs = sum(math.prod(int(d) for d in program.node(o).out_shape) * itemsize
                  for o in program.outputs)
    largest = tuple(sorted(per_node.items(), key=lambda kv: -kv[1])[:3])
    return MemoryEstimate(state, step, outputs, largest)


def check_memory(estimate: MemoryEstimate, batch: int = 1, steps: int = 0,
                 what: str = "compiling the graph") -> None:
    """Raise :class:`LimitError` when ``batch`` samples (and ``steps`` steps of outputs)
    would need more than ``nirjax.limits().max_memory_bytes``."""
    limit = limits().max_memory_bytes
    need = batch * (estimate.state + estimate.step) + steps * batch * estimate.outputs
    if need <= limit:
        return
    top = ", ".join(f"{name!r} {format_bytes(b)}" for name, b in estimate.largest)
    parts = [f"state {format_bytes(batch * estimate.state)}",
             f"one step's values {format_bytes(batch * estimate.step)}"]
    if steps:
        parts.append(f"{steps} steps of outputs {format_bytes(steps * batch * estimate.outputs)}")
    raise LimitError(
        f"{what} needs an estimated {format_bytes(need)} for {batch} sample(s) "
        f"({', '.join(parts)}); per sample the largest nodes are {top}. That exceeds the limit "
        f"of {format_bytes(limit)}: if the size is what you mean, raise it with "
        f"nirjax.set_limits(max_memory_bytes=...)"
    )


def check_batch_size(batch_size) -> int:
    """A positive int batch size (``True`` is not one)."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


# ----------------------------------------------------------------------------- run-time arguments


def _as_array(x, where: str):
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


def check_inputs(program, xs, dtype, *, per_step: bool) -> tuple:
    """Validate and normalize inputs to a dict of ``dtype`` arrays; returns (dict, B, T)."""
    names = program.inputs
    lead = "[B, *shape]" if per_step else "[T, B, *shape]"
    if isinstance(xs, Mapping):
        keys = list(xs)
        missing = [n for n in names if n not in xs]
        extra = [k for k in keys if k not in names]
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
        shape = program.node(name).out_shape
        if not _real_dtype(x.dtype):
            raise InputError(f"input {name!r}: expected a real numeric array (float, int or bool), "
                             f"got dtype {x.dtype}")
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
        out[name] = jnp.asarray(x, dtype)
    if batch == 0:
        raise InputError("the batch axis is empty")
    if steps == 0:
        raise InputError(f"the time axis is empty: the inputs {lead} have T = 0 steps; give at "
                         f"least one step")
    return out, batch, steps


def _leaf_desc(leaf) -> str:
    if leaf is None:
        return "None"
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        return f"an array of shape {tuple(leaf.shape)} and dtype {leaf.dtype}"
    return f"a {type(leaf).__name__}"


def check_params(params, reference: Mapping, where: str = "params") -> None:
    """``params`` must be structured like ``reference`` (``model.params``): the same nodes,
    each the same NamedTuple, every leaf a real array of the reference's shape."""
    if not isinstance(params, Mapping):
        raise InputError(f"{where} must be a dict like model.params (node name -> NamedTuple of "
                         f"arrays), got {type(params).__name__}")
    missing = [k for k in reference if k not in params]
    extra = [k for k in params if k not in reference]
    if missing or extra:
        raise InputError(
            f"{where} must have an entry for every node with parameters ({', '.join(reference)}); "
            f"missing {sorted(map(str, missing))}, unexpected {sorted(map(str, extra))}"
        )
    for name, ref in reference.items():
        value = params[name]
        fields = getattr(ref, "_fields", None)
        if fields is None:
            continue
        if getattr(value, "_fields", None) != fields:
            raise InputError(
                f"{where}[{name!r}] must be a {type(ref).__name__} with fields {fields} (as in "
                f"model.params), got {_leaf_desc(value) if not isinstance(value, tuple) else type(value).__name__}"
            )
        for field in fields:
            leaf = getattr(value, field)
            expected = getattr(ref, field)
            here = f"{where}[{name!r}].{field}"
            if leaf is None or isinstance(leaf, (str, bytes)) or not (
                    hasattr(leaf, "shape") or isinstance(leaf, (int, float, np.generic))):
                raise InputError(f"{here} must be an array of shape {tuple(np.shape(expected))}, "
                                 f"got {_leaf_desc(leaf)}")
            dtype = getattr(leaf, "dtype", None) or np.asarray(leaf).dtype
            try:
                floating = bool(jnp.issubdtype(dtype, jnp.floating))
            except TypeError:
                floating = False
            if not floating:
                raise InputError(f"{here} must be a floating array (model.params holds "
                                 f"{getattr(expected, 'dtype', 'floats')}), got dtype {dtype}")
            if tuple(np.shape(leaf)) != tuple(np.shape(expected)):
                raise InputError(f"{here} has shape {tuple(np.shape(leaf))}, expected "
                                 f"{tuple(np.shape(expected))} (the shape in model.params)")


def check_state(state, expected, batch: int) -> None:
    """``state`` must have the structure, shapes and dtypes of ``expected`` (the
    ``jax.eval_shape`` of ``init_state(batch)``)."""
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
                    if h.ndim and w.ndim and h.shape[0] != w.shape[0] and tuple(h.shape[1:]) == tuple(w.shape[1:]):
                        raise InputError(
                            f"state was made for batch size {h.shape[0]} but the inputs have "
                            f"batch size {batch}; call model.init_state(batch_size={batch})"
                        )
                    raise InputError(f"{here} has shape {tuple(h.shape)}, expected "
                                     f"{tuple(w.shape)}; use this model's init_state()")
                if np.dtype(h.dtype) != np.dtype(w.dtype):
                    raise InputError(f"{here} has dtype {h.dtype}, expected {w.dtype}")


def check_record(program, record, state_fields) -> tuple:
    """Normalize ``record`` to a tuple of node names and ``(node, field)`` pairs.

    Args:
        program: the compiled program.
        record: ``None``, a node name, a ``(node, field)`` pair, or a list/tuple of those.
        state_fields: ``node -> tuple of state field names`` for stateful nodes.
    """
    if record is None:
        return ()
    names = {n.name for n in program.nodes}
    if isinstance(record, str):
        record = [record]
    elif (isinstance(record, tuple) and len(record) == 2 and all(isinstance(r, str) for r in record)
          and record[1] not in names):
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
                raise InputError(f"record entry {tuple(item)!r}: node {name!r} ({node.type_name}) has no state")
            fields = state_fields(node)
            if field not in fields:
                raise InputError(
                    f"record entry {tuple(item)!r}: node {name!r} ({node.type_name}) has state fields "
                    f"{fields}, not {field!r}"
                )
            items.append((name, field))
        elif isinstance(item, str):
            program.node(item)  # raises a GraphError naming the nodes if unknown
            items.append(item)
        else:
            raise InputError(f"record entry {item!r}: expected a node name or a (node, state field) "
                             f"pair, got {type(item).__name__}"[:300])
    return tuple(items)

