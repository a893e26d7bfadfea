"""Reading and writing ``.nir`` files (HDF5) with h5py.

The reader is nirjax's own, not ``nir.read``: it accepts every real file of the NIR paper,
including those ``nir.read`` refuses (``lif_rockpool.nir``), fills fields that older files
lack (``v_reset`` -> 0 and ``w_in`` -> 1, as NIR 1.0.8 defines them), keeps the file's version
(:func:`file_version`), and turns every defect into a :class:`~nirjax.errors.NirjaxError`
that names the file, node, edge or field. It never runs ``nir``'s type inference, which would
add nodes to the graph.

File layout (NIR 1.0.x): dataset ``/version``; group ``/node`` holding the root graph; every
node a group with a ``type`` string dataset and one dataset per field; graphs nest ``nodes/``
and an ``edges`` string dataset of shape ``(E, 2)``; ``metadata`` groups hold nested dicts.
"""

from __future__ import annotations

import dataclasses
import pathlib
import warnings
import weakref
from typing import Any

import h5py
import nir
import numpy as np

from .. import graph as graph_mod
from ..compiler import CompiledGraph
from ..errors import GraphError, NirFileError, NirjaxWarning, ParameterError, ResetAmbiguityWarning
from ..graph import flatten
from ..rules import known_types, shape_rule
from .export import to_nir

__all__ = ["read", "write", "read_version", "file_version"]

# id(graph) -> version; nir nodes are unhashable, so entries are dropped by a finalizer
_VERSIONS: dict = {}

# file key -> dataclass field, where they differ
_RENAMED = {"Input": {"shape": "input_type"}, "Output": {"shape": "output_type"}}
# fields an older file may lack, with NIR 1.0.8's meaning of their absence
_OPTIONAL = {"v_reset", "w_in", "input_shape", "input_type", "start_dim", "end_dim"}
_INT_FIELDS = {"groups", "start_dim", "end_dim"}
_SPIKING = {"IF", "LIF", "CubaLIF"}


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _value(value):
    """A dataset's value in the form ``nir`` uses (str for strings, arrays for arrays)."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.dtype == object:
        return np.vectorize(_text, otypes=[object])(value).astype(str)
    return value


def _read_dict(group: h5py.Group) -> dict:
    out = {}
    for key, item in group.items():
        out[key] = _read_dict(item) if isinstance(item, h5py.Group) else _value(item[()])
    return out


def _fields(cls) -> list:
    return [f for f in dataclasses.fields(cls) if f.init and f.name != "metadata"]


def _nir_class(type_name: str, where: str):
    if type_name == "NIRGraph":
        return nir.NIRGraph
    if type_name in known_types() and hasattr(nir, type_name):
        return getattr(nir, type_name)
    raise GraphError(
        f"{where}: unknown node type {type_name!r}; nirjax reads the NIR 1.0.8 types "
        f"{', '.join(sorted(known_types()))}"
    )


def _read_node(group: h5py.Group, where: str, missing: list, strict: bool):
    if "type" not in group:
        raise NirFileError(f"{where}: node group has no 'type' dataset")
    type_name = _text(group["type"][()])
    cls = _nir_class(type_name, where)
    metadata = _read_dict(group["metadata"]) if "metadata" in group else {}
    if cls is nir.NIRGraph:
        if "nodes" not in group or "edges" not in group:
            raise NirFileError(f"{where}: a NIRGraph needs 'nodes' and 'edges'")
        nodes = {
            name: _read_node(sub, f"{where}/nodes/{name}", missing, strict)
            for name, sub in group["nodes"].items()
        }
        raw = group["edges"][()]
        if raw.size == 0:
            edges = []
        elif raw.ndim != 2 or raw.shape[1] != 2:
            raise NirFileError(f"{where}: 'edges' must have shape (E, 2), got {raw.shape}")
        else:
            edges = [(_text(a), _text(b)) for a, b in raw]
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)

    renamed = _RENAMED.get(type_name, {})
    fields = {f.name for f in _fields(cls)}
    kwargs: dict[str, Any] = {}
    for key in group:
        if key in ("type", "metadata"):
            continue
        field = renamed.get(key, key)
        if field not in fields:
            msg = (f"{where} ({type_name}): dataset {key!r} is not a field of NIR 1.0.8's "
                   f"{type_name} ({', '.join(sorted(fields))})")
            if strict:
                raise NirFileError(msg + "; nirjax will not silently drop it (read with strict=False "
                                   "to keep it in the node's metadata and ignore it)")
            warnings.warn(msg + "; kept in metadata['nirjax_unread'], NOT simulated",
                          NirjaxWarning, stacklevel=3)
            metadata.setdefault("nirjax_unread", {})[key] = _value(group[key][()])
            continue
        value = _value(group[key][()])
        if field in _INT_FIELDS:
            value = int(np.asarray(value).reshape(-1)[0])
        kwargs[field] = value
    for f in _fields(cls):
        if f.name in kwargs:
            continue
        if f.name not in _OPTIONAL:
            raise NirFileError(f"{where} ({type_name}): required field {f.name!r} is missing")
        missing.append((where, type_name, f.name))
        if f.name == "input_shape":
            kwargs[f.name] = None
        elif f.name == "input_type":
            kwargs[f.name] = {"input": None}
    if type_name == "Flatten" and "input_type" in kwargs and not isinstance(kwargs["input_type"], dict):
        kwargs["input_type"] = {"input": np.asarray(kwargs["input_type"])}
    try:
        return cls(**kwargs, metadata=metadata)
    except (AssertionError, ValueError, TypeError, IndexError) as exc:
        raise ParameterError(f"{where} ({type_name}): invalid fields: {exc or type(exc).__name__}") from None


def _version_tuple(version: str) -> tuple:
    parts = []
    for p in version.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def read(path, *, strict: bool = True, validate: bool = True) -> nir.NIRGraph:
    """Read a ``.nir`` file into a ``nir.NIRGraph``.

    Args:
        path: the file.
        strict: raise on datasets that are not NIR 1.0.8 fields (otherwise warn and keep them
            in ``metadata['nirjax_unread']``).
        validate: check the structure (every edge names an existing node, no duplicate
            edges, known types) and raise a :class:`~nirjax.errors.GraphError` naming the bad
            edge.

    The file's NIR version is kept: :func:`file_version` returns it. A file older than NIR
    1.0.6 that holds spiking neurons raises a :class:`~nirjax.errors.ResetAmbiguityWarning`:
    those versions documented a reset by subtraction but stored no reset mode.

    >>> import nirjax
    >>> g = nirjax.read(nirjax.example_path("lif_norse"))  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise NirFileError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise NirFileError(
            f"{path}: not a readable .nir file (a .nir file is HDF5; h5py says: {exc})"
        ) from None
    missing: list = []
    try:
        with handle as f:
            if "node" not in f:
                raise NirFileError(f"{path}: no '/node' group; this HDF5 file is not a NIR graph")
            version = _text(f["version"][()]) if "version" in f else "unknown"
            graph = _read_node(f["node"], f"{path.name}:/node", missing, strict)
    except (OSError, KeyError, RuntimeError) as exc:
        raise NirFileError(f"{path}: the file is damaged or truncated ({exc})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NirFileError(f"{path}: the root node is a {type(graph).__name__}, expected a NIRGraph")
    if validate:
        try:
            flatten(graph, known_types())
        except GraphError as exc:
            raise GraphError(f"{path}: {exc}") from None
    _VERSIONS[id(graph)] = version
    weakref.finalize(graph, _VERSIONS.pop, id(graph), None)
    old = version == "unknown" or _version_tuple(version) < (1, 0, 6)
    spiking = [w for w, t, f in missing if f == "v_reset" and t in _SPIKING]
    if old and spiking:
        warnings.warn(
            f"{path.name} was written by NIR {version} (before 1.0.6), whose spec described a "
            f"reset by subtraction, and it stores no v_reset for {len(spiking)} spiking node(s). "
            f"nirjax reads v_reset = 0 and simulates the reset your semantics choose (default: "
            f"v <- v_reset, NIR 1.0.8). If the exporter meant subtraction, compile with "
            f"semantics={{'reset': 'subtract'}}.",
            ResetAmbiguityWarning,
            stacklevel=2,
        )
    return graph


def read_version(path) -> str:
    """The NIR version string stored in a ``.nir`` file (``"unknown"`` if absent)."""
    try:
        with h5py.File(pathlib.Path(path), "r") as f:
            return _text(f["version"][()]) if "version" in f else "unknown"
    except OSError as exc:
        raise NirFileError(f"{path}: not a readable .nir file ({exc})") from None


def file_version(graph: nir.NIRGraph) -> str | None:
    """The NIR version of the file ``graph`` was read from by :func:`read`, else ``None``."""
    return _VERSIONS.get(id(graph))


# ----------------------------------------------------------------------------- writing


def _write_value(group: h5py.Group, key: str, value, compression):
    if value is None:
        return
    if isinstance(value, dict):
        sub = group.create_group(key)
        for k, v in value.items():
            _write_value(sub, str(k), v, compression)
        return
    if isinstance(value, (str, bytes)):
        group.create_dataset(key, data=_text(value), dtype=h5py.string_dtype())
        return
    arr = np.asarray(value)
    if arr.dtype.kind in "UO":
        group.create_dataset(key, data=arr.astype(object), dtype=h5py.string_dtype())
        return
    if arr.ndim and arr.size:
        group.create_dataset(key, data=arr, compression=compression)
    else:
        group.create_dataset(key, data=arr)


def _write_node(group: h5py.Group, node: nir.NIRNode, compression, conv_shapes, path):
    type_name = type(node).__name__
    group.create_dataset("type", data=type_name, dtype=h5py.string_dtype())
    if isinstance(node, nir.NIRGraph):
        nodes = group.create_group("nodes")
        for name, child in node.nodes.items():
            _write_node(nodes.create_group(name), child, compression, conv_shapes, path + (name,))
        if node.edges:
            group.create_dataset("edges", data=np.array(node.edges, dtype=object),
                                 dtype=h5py.string_dtype())
        else:
            group.create_dataset("edges", data=np.zeros((0,), np.float64))
    else:
        renamed = {v: k for k, v in _RENAMED.get(type_name, {}).items()}
        for f in _fields(type(node)):
            value = getattr(node, f.name)
            if f.name in ("input_type", "output_type") and isinstance(value, dict):
                value = next(iter(value.values()), None)
            if f.name == "input_shape" and value is None and path in conv_shapes:
                value = np.asarray(conv_shapes[path], np.int64)
                if type_name == "Conv1d":  # nir 1.0.8's Conv1d takes the length as an int
                    value = value.reshape(())
            _write_value(group, renamed.get(f.name, f.name), value, compression)
    if node.metadata:
        _write_value(group, "metadata", dict(node.metadata), compression)


def _conv_input_shapes(graph: nir.NIRGraph) -> dict:
    """Inferred spatial input shapes of the convolutions that do not store one.

    nir 1.0.8's reader requires ``input_shape``; nirjax's own shape inference supplies it
    where it can (an empty dict where the graph's shapes cannot be inferred).
    """
    def missing(g):
        return any(
            (isinstance(n, (nir.Conv1d, nir.Conv2d)) and n.input_shape is None)
            or (isinstance(n, nir.NIRGraph) and missing(n))
            for n in g.nodes.values()
        )

    if not missing(graph):
        return {}
    try:
        flat = graph_mod.flatten(graph, known_types())
        pre = graph_mod.order(list(flat.nodes), flat.edges, flat.inputs)
        in_shapes, _ = graph_mod.infer_shapes(flat, list(pre.order), shape_rule)
    except Exception:  # the file is still written, as given, if the graph is incomplete
        return {}
    return {flat.nodes[name].path: shape[1:] for name, shape in in_shapes.items()
            if flat.nodes[name].type_name in ("Conv1d", "Conv2d")}


def write(path, graph, *, compression: str | None = "gzip") -> None:
    """Write a ``nir.NIRGraph`` to a ``.nir`` file that ``nir.read`` (1.0.8) reads back.

    Every field is written as a dataset (``None`` fields are left out, as NIR readers expect),
    arrays keep their dtype, and the version written is the installed ``nir`` version. A
    convolution without ``input_shape`` (which nir 1.0.8's reader requires) gets the shape
    nirjax infers for it. A :class:`~nirjax.CompiledGraph` is exported first with its
    current parameters.
    """
    if not isinstance(graph, nir.NIRGraph):
        if isinstance(graph, CompiledGraph):
            graph = to_nir(graph, graph.params)
        else:
            raise GraphError(f"nirjax.write expects a nir.NIRGraph, got {type(graph).__name__}")
    path = pathlib.Path(path)
    conv_shapes = _conv_input_shapes(graph)
    try:
        with h5py.File(path, "w") as f:
            f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype())
            _write_node(f.create_group("node"), graph, compression, conv_shapes, ())
    except OSError as exc:
        raise NirFileError(f"{path}: cannot write ({exc})") from None
