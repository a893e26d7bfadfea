"""Shape rules of the NIR primitives (plain NumPy, no JAX).

Every rule has the signature ``rule(name, node, incoming) -> (in_shape, out_shape) | None``:
``incoming`` is the unbatched shape arriving on the node's edges (``None`` while unknown,
e.g. for a node reached only through a cycle), and ``None`` is returned while the shapes
cannot be determined yet. Shapes are tuples of ints and never include batch or time axes.

nirjax computes every shape itself instead of trusting the ``input_type``/``output_type``
that the ``nir`` package infers (which is wrong for non-square and grouped convolutions).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from ..errors import ParameterError, ShapeError, ShapeWarning
from ..kernels.geometry import conv_output_shape

__all__ = ["SHAPE_RULES", "as_shape", "conv_geometry", "flatten_shape", "infer_shapes",
           "pool_geometry", "integers", "strip_batch_axis", "retry_without_batch_axis"]

# the largest size nirjax accepts in one dimension (larger ones overflow int64 products)
_MAX_DIM = 1 << 40


def integers(value, name: str, field: str, *, minimum: int | None = None) -> np.ndarray:
    """The entries of an integer field (shape, stride, groups, ...) as int64, refusing text,
    booleans, fractions (``2.5``), non-finite values and values below ``minimum``.

    Whole numbers stored as floats (``2.0``) are accepted.
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
        raise ParameterError(
            f"node {name!r}: field {field!r} must hold integers, got {value!r}"[:300]
        )
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            raise ParameterError(
                f"node {name!r}: field {field!r} must hold whole numbers, got "
                f"{arr.reshape(-1)[bad.reshape(-1)][0]!r} in {value!r}"[:300]
            )
    if np.any(np.abs(arr.astype(np.float64)) > _MAX_DIM):
        raise ParameterError(f"node {name!r}: field {field!r} holds {value!r}, beyond the "
                             f"largest size nirjax handles ({_MAX_DIM})"[:300])
    arr = arr.astype(np.int64)
    if minimum is not None and np.any(arr < minimum):
        raise ParameterError(
            f"node {name!r}: field {field!r} must be >= {minimum}, got {value!r}"[:300]
        )
    return arr


def as_shape(value, name: str = "?", field: str = "shape") -> tuple | None:
    """A NIR shape value (array, list, int, None) as a tuple of positive ints.

    Raises:
        ParameterError: entries that are text, fractions, non-finite or below 1, or a shape
            that is not one-dimensional.
    """
    if value is None:
        return None
    arr = np.asarray(value) if not isinstance(value, (list, tuple)) or value else np.zeros(0, int)
    if arr.dtype == object and arr.shape == () and arr[()] is None:
        return None
    if arr.ndim > 1:
        raise ParameterError(f"node {name!r}: field {field!r} must be a 1-D list of sizes, got an "
                             f"array of shape {arr.shape}")
    return tuple(int(v) for v in integers(arr.reshape(-1), name, field, minimum=1))


def _pairs(value, n: int, name: str, field: str) -> tuple:
    """An int or sequence of ints as a tuple of length ``n``."""
    arr = integers(value, name, field).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise ParameterError(
            f"node {name!r}: field {field!r} must be an int or {n} ints, got {value!r}"
        )
    return tuple(int(v) for v in arr)


def _one_int(value, name: str, field: str, minimum: int | None = None) -> int:
    arr = integers(value, name, field, minimum=minimum).reshape(-1)
    if arr.size != 1:
        raise ParameterError(f"node {name!r}: field {field!r} must be one integer, got {value!r}"[:300])
    return int(arr[0])


def _shape_of(node, field: str, name: str) -> tuple:
    """``np.shape`` of a parameter, refusing ragged nested lists."""
    try:
        return tuple(int(d) for d in np.shape(getattr(node, field)))
    except (ValueError, TypeError):
        raise ParameterError(f"node {name!r} ({type(node).__name__}): field {field!r} is not a "
                             f"rectangular array (ragged nested lists?)") from None


def _check(name, incoming, expected, what="input"):
    if incoming is not None and tuple(incoming) != tuple(expected):
        raise ShapeError(
            f"node {name!r}: {what} shape {tuple(incoming)} arrives on its edges but the node "
            f"expects {tuple(expected)}"
        )


def _elementwise(*fields):
    """Nodes whose shape is the broadcast of their array parameters (neurons, Scale, ...)."""

    def rule(name, node, incoming):
        shapes = [_shape_of(node, f, name) for f in fields if getattr(node, f, None) is not None]
        try:
            shape = tuple(int(s) for s in np.broadcast_shapes(*shapes))
        except ValueError:
            raise ParameterError(
                f"node {name!r} ({type(node).__name__}): parameter shapes "
                f"{dict(zip(fields, shapes))} do not broadcast to one shape"
            ) from None
        if shape == ():
            # scalar parameters: the node takes whatever shape arrives
            return None if incoming is None else (tuple(incoming), tuple(incoming))
        _check(name, incoming, shape)
        return shape, shape

    return rule


def _declared(node, field: str, name: str):
    types = getattr(node, field, None)
    key = field.split("_")[0]
    if types is None:
        return None
    if not isinstance(types, dict):  # a bare shape where nir keeps {key: shape}
        return as_shape(types, name, field)
    return as_shape(types.get(key), name, field)


def _io(field):
    def rule(name, node, incoming):
        declared = _declared(node, field, name)
        if declared is None:
            return None if incoming is None else (tuple(incoming), tuple(incoming))
        if field == "output_type" and incoming is not None and tuple(incoming) != declared:
            lead = len(declared) - len(incoming)
            if lead > 0 and declared[lead:] == tuple(incoming) and set(declared[:lead]) == {1}:
                warnings.warn(
                    f"Output node {name!r} declares shape {declared} but its input has shape "
                    f"{tuple(incoming)}: the leading 1s look like a batch axis, which exporters "
                    f"such as Norse and Rockpool write but NIR shapes leave out. nirjax uses "
                    f"{tuple(incoming)} (outputs [T, B, *{tuple(incoming)}]); to fix the file, "
                    f"set the node's output_type to {list(incoming)}",
                    ShapeWarning, stacklevel=6)
                return tuple(incoming), tuple(incoming)
        _check(name, incoming, declared)
        return declared, declared

    return rule


def strip_batch_axis(node, name: str):
    """An Input node without the leading batch axis of size 1 that some exporters write
    (Norse, Rockpool, snnTorch write ``(1, n)`` for ``n`` inputs), or ``None`` if it has none."""
    try:
        declared = _declared(node, "input_type", name)
    except ParameterError:
        return None
    if declared is None or len(declared) < 2 or declared[0] != 1:
        return None
    return type(node)(input_type=np.array(declared[1:]), metadata=dict(node.metadata or {}))


def retry_without_batch_axis(flat, infer, error):
    """Shape inference again with the leading batch axis of the Input nodes dropped.

    Called when ``infer(flat)`` raised ``error`` (a :class:`ShapeError`). If some top-level
    Input node declares ``(1, *shape)`` and the graph's shapes are consistent with
    ``shape``, warns (:class:`~nirjax.errors.ShapeWarning`, naming the node and the fix) and
    returns ``(flat with those Input nodes replaced, infer's result)``; otherwise raises
    ``error``.
    """
    replaced = {}
    for name in flat.inputs:
        new = strip_batch_axis(flat.nodes[name].node, name)
        if new is not None:
            replaced[name] = new
    if not replaced:
        raise error
    nodes = dict(flat.nodes)
    for name, new in replaced.items():
        nodes[name] = dataclasses.replace(nodes[name], node=new)
    fixed = dataclasses.replace(flat, nodes=nodes)
    try:
        result = infer(fixed)
    except ShapeError:
        raise error from None
    for name, new in replaced.items():
        shape = tuple(int(v) for v in new.input_type["input"])
        warnings.warn(
            f"Input node {name!r} declares shape {(1,) + shape}, which does not fit the nodes it "
            f"feeds; {shape} does: the leading 1 looks like a batch axis, which exporters such as "
            f"Norse, Rockpool and snnTorch write but NIR shapes leave out. nirjax uses {shape} "
            f"(pass inputs [T, B, *{shape}]); to fix the file, set the node's input_type to "
            f"{list(shape)}",
            ShapeWarning, stacklevel=4)
    return fixed, result


def _matrix(name, node, incoming):
    w = _shape_of(node, "weight", name)
    if len(w) < 2:
        raise ParameterError(
            f"node {name!r} ({type(node).__name__}): weight must have at least 2 dims "
            f"(..., out, in), got shape {w}"
        )
    in_shape, out_shape = w[:-2] + (w[-1],), w[:-2] + (w[-2],)
    bias = getattr(node, "bias", None)
    if bias is not None:
        try:
            ok = np.broadcast_shapes(_shape_of(node, "bias", name), out_shape) == out_shape
        except ValueError:
            ok = False
        if not ok:
            raise ParameterError(
                f"node {name!r} (Affine): bias shape {np.shape(bias)} does not match the "
                f"output shape {out_shape} of weight {w}"
            )
    _check(name, incoming, in_shape)
    return tuple(in_shape), tuple(out_shape)


def conv_geometry(name, node, nd: int):
    """Normalized ``(stride, padding, dilation, groups, kernel)`` of a Conv1d/Conv2d node.

    ``padding`` is either the string ``'same'``/``'valid'`` or a tuple of ints.
    """
    w = _shape_of(node, "weight", name)
    if len(w) != nd + 2:
        raise ParameterError(
            f"node {name!r} (Conv{nd}d): weight must have {nd + 2} dims "
            f"(C_out, C_in/groups, {'K' if nd == 1 else 'KH, KW'}), got shape {w}"
        )
    if any(d < 1 for d in w):
        raise ParameterError(f"node {name!r} (Conv{nd}d): weight shape {w} has an empty "
                             f"dimension; every kernel and channel size must be >= 1")
    stride = _pairs(node.stride, nd, name, "stride")
    dilation = _pairs(node.dilation, nd, name, "dilation")
    groups = _one_int(node.groups, name, "groups")
    padding = node.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ParameterError(
                f"node {name!r}: padding must be 'same', 'valid' or ints, got {padding!r}"
            )
        if padding == "same" and any(s != 1 for s in stride):
            raise ParameterError(
                f"node {name!r}: padding='same' needs stride 1 (PyTorch's rule), got stride {stride}"
            )
    else:
        padding = _pairs(padding, nd, name, "padding")
        if any(p < 0 for p in padding):
            raise ParameterError(f"node {name!r}: padding must be >= 0, got {padding}")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation) or groups < 1:
        raise ParameterError(
            f"node {name!r}: stride, dilation and groups must be >= 1, got stride={stride}, "
            f"dilation={dilation}, groups={groups}"
        )
    if w[0] % groups:
        raise ParameterError(
            f"node {name!r}: {w[0]} output channels are not divisible by groups={groups}"
        )
    return stride, padding, dilation, groups, tuple(int(k) for k in w[2:])


def _conv(nd):
    def rule(name, node, incoming):
        stride, padding, dilation, groups, kernel = conv_geometry(name, node, nd)
        c_in = int(np.shape(node.weight)[1]) * groups
        declared = node.input_shape
        spatial = None if declared is None else _pairs(declared, nd, name, "input_shape")
        if spatial is not None and any(s < 1 for s in spatial):
            raise ParameterError(f"node {name!r} (Conv{nd}d): input_shape must be >= 1, got {declared!r}")
        if incoming is not None:
            if len(incoming) != nd + 1:
                raise ShapeError(
                    f"node {name!r} (Conv{nd}d): expects input of rank {nd + 1} "
                    f"(C, {'N' if nd == 1 else 'H, W'}), got shape {tuple(incoming)}"
                )
            if spatial is not None and tuple(incoming[1:]) != spatial:
                raise ShapeError(
                    f"node {name!r} (Conv{nd}d): input shape {tuple(incoming)} arrives but the "
                    f"node's input_shape field says spatial size {spatial}"
                )
            spatial = tuple(incoming[1:])
        if spatial is None:
            return None
        in_shape = (c_in,) + spatial
        _check(name, incoming, in_shape)
        out = conv_output_shape(spatial, padding, kernel, stride, dilation)
        if any(o < 1 for o in out):
            raise ShapeError(
                f"node {name!r} (Conv{nd}d): input {in_shape} is too small for kernel {kernel} "
                f"(output spatial size {out})"
            )
        return in_shape, (int(np.shape(node.weight)[0]),) + out

    return rule


def pool_geometry(name, node):
    """Normalized ``(kernel, stride, padding)`` of a SumPool2d/AvgPool2d node."""
    kernel = _pairs(node.kernel_size, 2, name, "kernel_size")
    stride = _pairs(node.stride, 2, name, "stride")
    padding = _pairs(node.padding, 2, name, "padding")
    if any(k < 1 for k in kernel) or any(s < 1 for s in stride) or any(p < 0 for p in padding):
        raise ParameterError(
            f"node {name!r}: kernel_size and stride must be >= 1 and padding >= 0, got "
            f"kernel_size={kernel}, stride={stride}, padding={padding}"
        )
    return kernel, stride, padding


def _pool(name, node, incoming):
    kernel, stride, padding = pool_geometry(name, node)
    if incoming is None:
        return None
    if len(incoming) != 3:
        raise ShapeError(
            f"node {name!r} ({type(node).__name__}): expects input (C, H, W), got {tuple(incoming)}"
        )
    out = tuple(
        (n + 2 * p - k) // s + 1 for n, p, k, s in zip(incoming[1:], padding, kernel, stride)
    )
    if any(o < 1 for o in out):
        raise ShapeError(f"node {name!r}: input {tuple(incoming)} is smaller than kernel {kernel}")
    return tuple(incoming), (incoming[0],) + out


def flatten_shape(name, shape: tuple, start_dim: int, end_dim: int) -> tuple:
    """Output of NIR Flatten, dims counted on the UNBATCHED shape ``shape``.

    >>> flatten_shape("f", (8, 4, 4), 0, -1)
    (128,)
    >>> flatten_shape("f", (8, 4, 4), 1, -1)
    (8, 16)
    """
    nd = len(shape)
    s = start_dim + nd if start_dim < 0 else start_dim
    e = end_dim + nd if end_dim < 0 else end_dim
    if not (0 <= s < max(nd, 1) and 0 <= e < max(nd, 1) and s <= e) and nd > 0:
        raise ShapeError(
            f"node {name!r} (Flatten): start_dim={start_dim}, end_dim={end_dim} do not select "
            f"dims of the unbatched input shape {shape} (NIR counts Flatten dims without the "
            f"batch axis)"
        )
    if nd == 0:
        return (1,)
    return shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :]


def _flatten(name, node, incoming):
    declared = _declared(node, "input_type", name)
    if declared is not None:
        _check(name, incoming, declared)
    shape = declared if declared is not None else (None if incoming is None else tuple(incoming))
    if shape is None:
        return None
    start = _one_int(node.start_dim, name, "start_dim")
    end = _one_int(node.end_dim, name, "end_dim")
    return shape, flatten_shape(name, shape, start, end)


SHAPE_RULES = {
    "Input": _io("input_type"),
    "Output": _io("output_type"),
    "Affine": _matrix,
    "Linear": _matrix,
    "Scale": _elementwise("scale"),
    "Conv1d": _conv(1),
    "Conv2d": _conv(2),
    "SumPool2d": _pool,
    "AvgPool2d": _pool,
    "Flatten": _flatten,
    "Threshold": _elementwise("threshold"),
    "Delay": _elementwise("delay"),
    "I": _elementwise("r"),
    "IF": _elementwise("r", "v_threshold", "v_reset"),
    "LI": _elementwise("tau", "r", "v_leak"),
    "LIF": _elementwise("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "CubaLI": _elementwise("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "CubaLIF": _elementwise("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
}


def infer_shapes(flat, names: list, shape_rule=SHAPE_RULES.__getitem__) -> tuple[dict, dict]:
    """Fixed-point shape inference over a flattened graph.

    Args:
        flat: a :class:`~nirjax.graph.FlatGraph`.
        names: its node names, best in a preliminary evaluation order (the fixed point is
            then reached in one pass).
        shape_rule: NIR type name -> shape rule (default: the rules of this module; the
            compiler passes its rule table's, which may hold user-registered types).

    Returns:
        ``(in_shapes, out_shapes)``: node name -> unbatched shape.

    Raises:
        ShapeError: naming the node whose inputs disagree, whose shape cannot be inferred,
            or the edge whose two ends disagree.
    """
    into: dict[str, list] = {n: [] for n in flat.nodes}
    for src, dst in flat.edges:
        into[dst].append(src)
    in_shapes: dict[str, tuple] = {}
    out_shapes: dict[str, tuple] = {}
    pending = list(names)
    while pending:
        progress = False
        still = []
        for name in pending:
            fn = flat.nodes[name]
            known = [(src, out_shapes[src]) for src in into[name] if src in out_shapes]
            incoming = None
            for src, shape in known:
                if incoming is None:
                    incoming, first = shape, src
                elif shape != incoming:
                    raise ShapeError(
                        f"node {name!r} sums inputs of different shapes: {first!r} gives "
                        f"{incoming} but {src!r} gives {shape}"
                    )
            res = shape_rule(fn.type_name)(name, fn.node, incoming)
            if res is None:
                still.append(name)
                continue
            in_shapes[name], out_shapes[name] = tuple(res[0]), tuple(res[1])
            progress = True
        if not progress:
            name = still[0]
            raise ShapeError(
                f"cannot infer the shape of node {name!r} ({flat.nodes[name].type_name}): its "
                f"parameters do not fix a shape and no input of known shape reaches it"
            )
        pending = still
    for src, dst in flat.edges:
        if out_shapes[src] != in_shapes[dst]:
            raise ShapeError(
                f"edge ({src!r}, {dst!r}): {src!r} outputs shape {out_shapes[src]} but "
                f"{dst!r} expects input shape {in_shapes[dst]}"
            )
    return in_shapes, out_shapes
