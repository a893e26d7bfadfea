"""Reading and writing ``.nir`` files (HDF5) with h5py.

The reader is nirjax's own, not ``nir.read``: it accepts every real file of the NIR paper,
including those ``nir.read`` refuses (``lif_rockpool.nir``), fills fields that older files
lack (``v_reset`` -> 0 and ``w_in`` -> 1, as NIR 1.0.8 defines them), keeps the file's version
(:func:`file_version`), and turns every defect into a :class:`~nirjax.errors.NirjaxError`
that names the file, node, edge or field. It never runs ``nir``'s type inference, which would
add nodes to the graph; like ``nir.read`` it fills the ``input_type``/``output_type`` of
``SumPool2d``/``AvgPool2d`` nodes from the graph.

File layout (NIR 1.0.x): dataset ``/version``; group ``/node`` holding the root graph; every
node a group with a ``type`` string dataset and one dataset per field; graphs nest ``nodes/``
and an ``edges`` string dataset of shape ``(E, 2)``; ``metadata`` groups hold nested dicts.

Reading is bounded (see :mod:`nirjax.limits`): before a dataset's data is read its declared
shape and dtype are checked (the arrays of one file may declare at most
``max_read_bytes`` in all, 4 GiB by default), its storage must be in this file (external
links, external raw-data files and virtual datasets are refused: reading a file never reads
another), subgraphs and metadata nest at most ``max_depth`` levels, and every group is
reached by one path only (hard or soft links that make a cycle or share a group are
refused). Only data of the NIR kinds is read: numbers (bool, ints, float16/32/64) and UTF-8
strings.

Writing is atomic: the whole file is first built in memory and read back with the reader
above (so nirjax never writes a file it would refuse), then written to a temporary file in
the target's directory and renamed over the target. A failure at any point raises
:class:`~nirjax.errors.NirFileError` and leaves an existing file byte for byte as it was.
``read`` and ``write`` accept what ``nir.read``/``nir.write`` accept: a path (``str``,
``bytes``, ``os.PathLike``) or a binary file object (``open(p, 'rb')``,
``tempfile.TemporaryFile()``, ``io.BytesIO()``).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import stat
import tempfile
import warnings
import weakref
from typing import Any

import h5py
import nir
import numpy as np

from .. import graph as graph_mod
from ..compiler import CompiledGraph
from ..errors import (GraphError, NirFileError, NirjaxError, NirjaxWarning, ParameterError,
                      ResetAmbiguityWarning)
from ..graph import flatten
from ..limits import format_bytes, limits
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
_SHAPE_FIELDS = {"input_type", "output_type", "input_shape"}
_STRING_OK = {"padding"}  # Conv padding may be 'same' / 'valid'
_SPIKING = {"IF", "LIF", "CubaLIF"}
# bytes counted per element of a variable-length string dataset (its content is not declared)
_STRING_ELEMENT_BYTES = 64
# a dataset declaring more than this must store at least 1/_MAX_COMPRESSION of it (gzip
# compresses zeros about 700:1 in h5py's chunks and at most ~1032:1): a file that declares a
# large array but stores (almost) nothing would make HDF5 allocate and fill it
_STORED_CHECK_BYTES = 1 << 20
_MAX_COMPRESSION = 2000


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


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


# ----------------------------------------------------------------------------- sources


def _is_file_object(obj) -> bool:
    return hasattr(obj, "read") and hasattr(obj, "seek") and not isinstance(obj, (str, bytes))


def _source(path, verb: str):
    """``(h5py-openable source, label)`` for a path or binary file object."""
    if isinstance(path, bool) or path is None or isinstance(path, (int, float)):
        raise NirFileError(
            f"nirjax.{verb}: expected a path (str, bytes or os.PathLike) or a binary file object, "
            f"got {path!r}"
        )
    if _is_file_object(path):
        mode = getattr(path, "mode", "b")
        if isinstance(path, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode):
            raise NirFileError(
                f"nirjax.{verb}: {getattr(path, 'name', path)!r} is a text-mode file object; "
                f"open it in binary mode ('rb' / 'wb' / 'w+b')"
            )
        name = getattr(path, "name", None)
        label = os.path.basename(name) if isinstance(name, str) and name else "<file object>"
        return path, label
    try:
        raw = os.fspath(path)
    except TypeError:
        raise NirFileError(
            f"nirjax.{verb}: expected a path (str, bytes or os.PathLike) or a binary file "
            f"object, got {type(path).__name__}"
        ) from None
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    if not raw or "\x00" in raw:
        raise NirFileError(f"nirjax.{verb}: {raw!r} is not a valid file name")
    return raw, raw


# ----------------------------------------------------------------------------- reading


class _Reader:
    """One bounded pass over an open file (see the module docstring for the bounds)."""

    def __init__(self, label: str, strict: bool):
        self.label = label
        self.strict = strict
        self.missing: list = []
        self.used = 0
        self.limits = limits()
        self.seen: dict = {}  # group address -> where it was first reached

    # ---- HDF5 access

    def members(self, group, where: str) -> list:
        """``[(name, object)]`` of a group, refusing links that leave the file or dangle."""
        try:
            keys = list(group.keys())
        except Exception as exc:  # h5py raises many types on damaged groups
            raise NirFileError(f"{where}: cannot list the group's members; the file is damaged "
                               f"({type(exc).__name__}: {exc})") from None
        out = []
        for key in keys:
            if not isinstance(key, str):
                raise NirFileError(f"{where}: member name {key!r} is not UTF-8 text")
            here = f"{where}/{key}"
            try:
                link = group.get(key, getlink=True)
            except Exception as exc:
                raise NirFileError(f"{here}: cannot read the link ({type(exc).__name__}: {exc})") from None
            if isinstance(link, h5py.ExternalLink):
                raise NirFileError(
                    f"{here}: an external link to {link.filename}:{link.path}; nirjax reads one "
                    f"file and never follows links into another"
                )
            if not isinstance(link, (h5py.SoftLink, h5py.HardLink)):
                raise NirFileError(f"{here}: a link of unsupported kind {type(link).__name__}")
            try:
                obj = group.get(key)
            except Exception as exc:
                raise NirFileError(f"{here}: cannot open ({type(exc).__name__}: {exc}); the file "
                                   f"is damaged") from None
            if obj is None:
                target = link.path if isinstance(link, h5py.SoftLink) else "?"
                raise NirFileError(f"{here}: a soft link to {target!r}, which does not exist")
            if not isinstance(obj, (h5py.Group, h5py.Dataset)):
                raise NirFileError(f"{here}: a {type(obj).__name__}, expected a group or a dataset")
            out.append((key, obj))
        return out

    def enter(self, group, where: str, depth: int, what: str):
        """Check nesting depth and that ``group`` is reached by one path only."""
        if depth > self.limits.max_depth:
            raise NirFileError(
                f"{where}: {what} nest more than {self.limits.max_depth} levels deep; a NIR "
                f"file does not (allow it with nirjax.set_limits(max_depth=...))"
            )
        try:
            address = h5py.h5o.get_info(group.id).addr
        except Exception as exc:
            raise NirFileError(f"{where}: cannot identify the group ({exc}); the file is damaged") from None
        if address in self.seen:
            raise NirFileError(
                f"{where}: this group is also reachable as {self.seen[address]} (a hard or soft "
                f"link makes {'a cycle' if self.seen[address] in where else 'a shared group'}); "
                f"a NIR file is a tree"
            )
        self.seen[address] = where

    def data(self, obj, where: str):
        """The value of a dataset, after checking its kind, storage and declared size."""
        if not isinstance(obj, h5py.Dataset):
            raise NirFileError(f"{where}: expected a dataset, found a group")
        try:
            dtype, shape = obj.dtype, obj.shape
            external, virtual = obj.external, obj.is_virtual
        except Exception as exc:
            raise NirFileError(f"{where}: cannot read the dataset's header ({type(exc).__name__}: "
                               f"{exc}); the file is damaged") from None
        if external:
            raise NirFileError(
                f"{where}: stores its data in the external file(s) "
                f"{', '.join(str(e[0]) for e in external)}; nirjax reads one file only"
            )
        if virtual:
            raise NirFileError(f"{where}: a virtual dataset (data mapped from other datasets or "
                               f"files); nirjax reads data stored in the file only")
        if shape is None:
            raise NirFileError(f"{where}: an empty (null) dataset; expected data")
        string = h5py.check_string_dtype(dtype)
        if string is None:
            if (dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None
                    or h5py.check_vlen_dtype(dtype) is not None):
                raise NirFileError(
                    f"{where}: data of type {dtype} ({_dtype_words(dtype)}); a NIR field holds "
                    f"numbers (bool, int, float16/32/64) or UTF-8 strings"
                )
            if dtype.kind == "f" and dtype.itemsize > 8:
                raise NirFileError(
                    f"{where}: data of type {dtype} (float{dtype.itemsize * 8}); nirjax reads "
                    f"float16/32/64 (NumPy and JAX compute with nothing wider)"
                )
        count = math.prod(int(s) for s in shape)
        size = count * (dtype.itemsize if string is None or string.length else _STRING_ELEMENT_BYTES)
        self.used += size
        if self.used > self.limits.max_read_bytes:
            raise NirFileError(
                f"{where}: declares shape {tuple(int(s) for s in shape)} of {dtype}, which needs "
                f"{format_bytes(size)} to read; with the arrays read before it that exceeds the "
                f"limit of {format_bytes(self.limits.max_read_bytes)} per file. If the file is "
                f"what you expect, raise the limit: nirjax.set_limits(max_read_bytes=...)"
            )
        if string is None and size > _STORED_CHECK_BYTES:
            try:
                stored = obj.id.get_storage_size()
            except Exception:  # noqa: BLE001 - the read below reports a damaged dataset
                stored = None
            if stored is not None and stored * _MAX_COMPRESSION < size:
                raise NirFileError(
                    f"{where}: declares shape {tuple(int(s) for s in shape)} of {dtype} "
                    f"({format_bytes(size)}) but stores only {stored} bytes, less than any "
                    f"compression leaves: its data was never written; nirjax will not fill "
                    f"{format_bytes(size)} from it"
                )
        try:
            value = obj[()]
        except Exception as exc:
            raise NirFileError(f"{where}: cannot read the data ({type(exc).__name__}: {exc}); "
                               f"the file is damaged") from None
        if string is not None:
            value = _decode(value, where)
        elif isinstance(value, np.ndarray) and value.dtype.byteorder == ">":
            value = value.astype(value.dtype.newbyteorder("="))
        return value

    def text(self, obj, where: str) -> str:
        value = self.data(obj, where)
        if isinstance(value, np.ndarray) and value.shape == () :
            value = value[()]
        if not isinstance(value, str):
            raise NirFileError(f"{where}: expected one string, found {_describe(value)}")
        return value

    # ---- nodes

    def metadata(self, obj, where: str, depth: int) -> dict:
        if not isinstance(obj, h5py.Group):
            raise NirFileError(f"{where}: metadata must be a group of key -> value, found a dataset")
        self.enter(obj, where, depth, "metadata dicts")
        out = {}
        for key, item in self.members(obj, where):
            here = f"{where}/{key}"
            out[key] = (self.metadata(item, here, depth + 1) if isinstance(item, h5py.Group)
                        else self.data(item, here))
        return out

    def node(self, group, where: str, depth: int):
        if not isinstance(group, h5py.Group):
            raise NirFileError(f"{where}: a node must be an HDF5 group, found a dataset")
        self.enter(group, where, depth, "subgraphs")
        members = dict(self.members(group, where))
        if "type" not in members:
            raise NirFileError(f"{where}: node group has no 'type' dataset")
        type_name = self.text(members["type"], f"{where}/type")
        cls = _nir_class(type_name, where)
        metadata = (self.metadata(members["metadata"], f"{where}/metadata", depth + 1)
                    if "metadata" in members else {})
        if cls is nir.NIRGraph:
            return self.graph(members, where, depth, metadata)

        renamed = _RENAMED.get(type_name, {})
        fields = {f.name for f in _fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, item in members.items():
            if key in ("type", "metadata"):
                continue
            field = renamed.get(key, key)
            here = f"{where} ({type_name}) field {key!r}"
            if field not in fields:
                msg = (f"{where} ({type_name}): dataset {key!r} is not a field of NIR 1.0.8's "
                       f"{type_name} ({', '.join(sorted(fields))})")
                if self.strict:
                    raise NirFileError(msg + "; nirjax will not silently drop it (read with strict=False "
                                       "to keep it in the node's metadata and ignore it)")
                warnings.warn(msg + "; kept in metadata['nirjax_unread'], NOT simulated",
                              NirjaxWarning, stacklevel=4)
                metadata.setdefault("nirjax_unread", {})[key] = (
                    self.metadata(item, f"{where}/{key}", depth + 1) if isinstance(item, h5py.Group)
                    else self.data(item, f"{where}/{key}"))
                continue
            kwargs[field] = _field_value(type_name, field, self.data(item, here), here)
        for f in _fields(cls):
            if f.name in kwargs:
                continue
            if f.name not in _OPTIONAL and not (type_name == "Output" and f.name == "output_type"):
                raise NirFileError(f"{where} ({type_name}): required field {f.name!r} is missing")
            self.missing.append((where, type_name, f.name))
            if f.name == "input_shape":
                kwargs[f.name] = None
            elif f.name == "input_type":
                kwargs[f.name] = {"input": None}
            elif f.name == "output_type":
                kwargs[f.name] = {"output": None}
        if type_name == "Flatten" and "input_type" in kwargs and not isinstance(kwargs["input_type"], dict):
            kwargs["input_type"] = {"input": kwargs["input_type"]}
        try:
            return cls(**kwargs, metadata=metadata)
        except RecursionError:
            raise NirFileError(f"{where} ({type_name}): the node's fields are nested too deeply") from None
        except Exception as exc:  # nir's constructors assert, index and cast
            raise ParameterError(f"{where} ({type_name}): invalid fields: {exc or type(exc).__name__}") from None

    def graph(self, members: dict, where: str, depth: int, metadata: dict):
        if "nodes" not in members or "edges" not in members:
            raise NirFileError(f"{where}: a NIRGraph needs 'nodes' and 'edges'")
        if not isinstance(members["nodes"], h5py.Group):
            raise NirFileError(f"{where}/nodes: expected a group of nodes, found a dataset")
        self.enter(members["nodes"], f"{where}/nodes", depth, "subgraphs")
        nodes = {
            name: self.node(sub, f"{where}/nodes/{name}", depth + 1)
            for name, sub in self.members(members["nodes"], f"{where}/nodes")
        }
        raw = self.data(members["edges"], f"{where}/edges")
        raw = np.asarray(raw) if not isinstance(raw, str) else np.asarray(raw, dtype=object)
        if raw.size == 0:
            edges = []
        elif raw.ndim != 2 or raw.shape[1] != 2:
            raise NirFileError(f"{where}/edges: must have shape (E, 2), got {raw.shape}")
        elif not all(isinstance(v, str) for v in raw.reshape(-1)):
            raise NirFileError(f"{where}/edges: must hold node names (strings), got {raw.dtype} data")
        else:
            edges = [(str(a), str(b)) for a, b in raw]
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def _dtype_words(dtype) -> str:
    if dtype.kind == "c":
        return "complex numbers"
    if dtype.fields is not None:
        return "a compound record"
    if h5py.check_vlen_dtype(dtype) is not None:
        return "variable-length sequences"
    if dtype.kind == "V":
        return "opaque bytes"
    return "an unsupported kind"


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def _decode(value, where: str):
    """Strings as ``str`` (``nir`` does the same), refusing bytes that are not UTF-8."""
    def one(v):
        if isinstance(v, (bytes, np.bytes_)):
            try:
                return bytes(v).decode("utf8")
            except UnicodeDecodeError:
                raise NirFileError(f"{where}: holds bytes {bytes(v)[:40]!r} that are not UTF-8 text") from None
        return str(v)

    if isinstance(value, np.ndarray):
        if value.shape == ():
            return one(value[()])
        return np.array([one(v) for v in value.reshape(-1)], dtype=str).reshape(value.shape)
    return one(value)


def _integral(value, where: str, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise NirFileError(f"{where}: {what} must be integers, found {_describe(value)}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(np.abs(arr) > 2 ** 62):
            raise NirFileError(f"{where}: {what} must be whole numbers, found {arr.tolist()!r}"[:300])
    return arr.astype(np.int64)


def _field_value(type_name: str, field: str, value, where: str):
    """Check a field's value against its NIR kind (numbers / shape / int / string)."""
    is_text = isinstance(value, str) or (isinstance(value, np.ndarray) and value.dtype.kind in "UO")
    if field in _INT_FIELDS:
        arr = _integral(value, where, "the value")
        if arr.size != 1:
            raise NirFileError(f"{where}: expected one integer, found {arr.size} values")
        return int(arr.reshape(-1)[0])
    if field in _SHAPE_FIELDS:
        arr = _integral(value, where, "shape entries")
        if np.any(arr < 0):
            raise NirFileError(f"{where}: shape entries must be >= 0, found {arr.tolist()}")
        if arr.ndim > 1:
            raise NirFileError(f"{where}: a shape is a 1-D list of sizes, found an array of shape {arr.shape}")
        if np.asarray(value).dtype.kind == "f":
            value = arr
        return value
    if is_text:
        if field in _STRING_OK and isinstance(value, str):
            return value
        raise NirFileError(f"{where}: holds text ({_describe(value)}); expected numbers")
    return value


# ----------------------------------------------------------------------------- heap checks
#
# Why a damaged file can hang h5py: HDF5 (1.14, as bundled with h5py 3.x) parses a global heap
# collection ("GCOL", where variable-length strings such as node types, edges and the version
# live) with a loop that advances by each object's declared size; a free-space object (index
# 0) whose size field reads 0 never advances, so a single bit flip in a size field (which
# makes the parser land in a run of zero bytes) loops forever inside the C library, holding
# h5py's global lock. A local heap ("HEAP", group member names) keeps a linked free list that
# a flipped offset can turn into a cycle. Neither can be interrupted from Python, so nirjax
# walks these structures itself, in bounded time, before h5py touches them.

_GCOL = b"GCOL\x01\x00\x00\x00"
_HEAP = b"HEAP\x00\x00\x00\x00"
_UNDEFINED = (1 << 64) - 1


def _file_bytes(source):
    """The bytes of a path (memory-mapped) or a file object; ``None`` if unavailable."""
    import mmap

    if isinstance(source, str):
        try:
            with open(source, "rb") as fh:
                if os.fstat(fh.fileno()).st_size == 0:
                    return b""
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
    try:
        if hasattr(source, "getbuffer"):
            return bytes(source.getbuffer())
        position = source.tell()
        source.seek(0)
        data = source.read()
        source.seek(position)
        return data if isinstance(data, (bytes, bytearray)) else None
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


def _superblock_sizes(data) -> tuple | None:
    """(sizeof offsets, sizeof lengths) from a superblock at offset 0, or None."""
    if len(data) < 16 or bytes(data[:8]) != b"\x89HDF\r\n\x1a\n":
        return None
    version = data[8]
    if version in (0, 1):
        return data[13], data[14]
    if version in (2, 3):
        return data[9], data[10]
    return None


def _check_heaps(source, label: str) -> None:
    """Refuse global heap collections and local heap free lists that would make HDF5 loop."""
    data = _file_bytes(source)
    if data is None:
        return
    try:
        sizes = _superblock_sizes(data)
        if sizes != (8, 8):  # not h5py's default layout: leave it to HDF5
            return
        size = len(data)
        u16 = lambda at: int.from_bytes(data[at:at + 2], "little")
        u64 = lambda at: int.from_bytes(data[at:at + 8], "little")
        at = data.find(_GCOL)
        while at >= 0:
            length = u64(at + 8)
            if length < 16 or at + length > size:
                raise NirFileError(f"{label}: damaged global heap at byte {at}: it declares "
                                   f"{length} bytes, the file has {size - at} from there")
            p = 16
            while p < length:
                if p + 16 > length:
                    break  # a tail too small for an object header is free space
                index, obj_size = u16(at + p), u64(at + p + 8)
                need = 16 + ((obj_size + 7) & ~7) if index > 0 else obj_size
                if need == 0 or need > length - p:
                    raise NirFileError(
                        f"{label}: damaged global heap at byte {at}: object {index} at byte "
                        f"{at + p} declares {obj_size} bytes, which "
                        f"{'would make HDF5 loop forever' if need == 0 else 'overruns the heap'}")
                p += need
            at = data.find(_GCOL, at + 8)
        at = data.find(_HEAP)
        while at >= 0:
            seg_size, free, seg = u64(at + 8), u64(at + 16), u64(at + 24)
            seen = set()
            while free not in (1, _UNDEFINED) and seg != _UNDEFINED and seg + seg_size <= size:
                if free in seen or free + 16 > seg_size:
                    raise NirFileError(f"{label}: damaged local heap at byte {at}: its free list "
                                       f"{'loops' if free in seen else 'leaves the heap'}")
                seen.add(free)
                free = u64(seg + free)
            at = data.find(_HEAP, at + 8)
    finally:
        if hasattr(data, "close"):
            data.close()


def _open(source, label):
    _check_heaps(source, label)
    try:
        return h5py.File(source, "r")
    except Exception as exc:
        raise NirFileError(
            f"{label}: not a readable .nir file (a .nir file is HDF5; h5py says: {exc})"
        ) from None


def _read(source, label: str, strict: bool):
    """``(graph, version, missing)`` read from an open source (all failures NirjaxErrors)."""
    reader = _Reader(os.path.basename(label), strict)
    handle = _open(source, label)
    try:
        with handle as f:
            top = dict(reader.members(f, f"{reader.label}:"))
            if "node" not in top:
                raise NirFileError(f"{label}: no '/node' group; this HDF5 file is not a NIR graph")
            version = reader.text(top["version"], f"{reader.label}:/version") if "version" in top else "unknown"
            graph = reader.node(top["node"], f"{reader.label}:/node", 0)
    except NirjaxError:
        raise
    except RecursionError:
        raise NirFileError(f"{label}: the file nests too deeply to read") from None
    except Exception as exc:  # anything h5py or numpy raise on a damaged file
        raise NirFileError(f"{label}: the file is damaged or truncated ({type(exc).__name__}: {exc})") from None
    return graph, version, reader.missing


def _version_tuple(version: str) -> tuple:
    parts = []
    for p in version.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())[:9]
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def read(path, *, strict: bool = True, validate: bool = True) -> nir.NIRGraph:
    """Read a ``.nir`` file into a ``nir.NIRGraph``.

    Args:
        path: the file: a path (``str``, ``bytes``, ``os.PathLike``) or a binary file object
            (what ``nir.read`` accepts).
        strict: raise on datasets that are not NIR 1.0.8 fields (otherwise warn and keep them
            in ``metadata['nirjax_unread']``).
        validate: check the structure (every edge names an existing node, no duplicate
            edges, known types) and raise a :class:`~nirjax.errors.GraphError` naming the bad
            edge.

    Raises:
        NirFileError: the file is missing, not HDF5, damaged, not a NIR graph, links outside
            itself, or declares more data than ``nirjax.limits().max_read_bytes``.
        GraphError / ParameterError: the graph it holds is invalid.

    Every failure is a :class:`~nirjax.errors.NirjaxError` naming the file and the node or
    field. The file's NIR version is kept: :func:`file_version` returns it. A file older
    than NIR 1.0.6 that holds spiking neurons raises a
    :class:`~nirjax.errors.ResetAmbiguityWarning`: those versions documented a reset by
    subtraction but stored no reset mode.

    >>> import nirjax
    >>> g = nirjax.read(nirjax.example_path("lif_norse"))  # doctest: +SKIP
    """
    source, label = _source(path, "read")
    if isinstance(source, str):
        if os.path.isdir(source):
            raise NirFileError(f"{source}: is a directory, not a .nir file")
        if not os.path.isfile(source):
            if os.path.exists(source):
                raise NirFileError(f"{source}: not a regular file (a device, pipe or socket); "
                                   f"a .nir file is a regular file")
            raise NirFileError(f"{source}: no such file")
    name = os.path.basename(label)
    graph, version, missing = _read(source, label, strict)
    if not isinstance(graph, nir.NIRGraph):
        raise NirFileError(f"{label}: the root node is a {type(graph).__name__}, expected a NIRGraph")
    if validate:
        try:
            flatten(graph, known_types())
        except GraphError as exc:
            raise GraphError(f"{label}: {exc}") from None
    _infer_pool_types(graph)
    _VERSIONS[id(graph)] = version
    weakref.finalize(graph, _VERSIONS.pop, id(graph), None)
    old = version == "unknown" or _version_tuple(version) < (1, 0, 6)
    spiking = [w for w, t, f in missing if f == "v_reset" and t in _SPIKING]
    if old and spiking:
        warnings.warn(
            f"{name} was written by NIR {version} (before 1.0.6), whose spec described a "
            f"reset by subtraction, and it stores no v_reset for {len(spiking)} spiking node(s). "
            f"nirjax reads v_reset = 0 and simulates the reset your semantics choose (default: "
            f"v <- v_reset, NIR 1.0.8). If the exporter meant subtraction, compile with "
            f"semantics={{'reset': 'subtract'}}.",
            ResetAmbiguityWarning,
            stacklevel=2,
        )
    return graph


def _infer_pool_types(graph: nir.NIRGraph) -> None:
    """Fill ``input_type``/``output_type`` of pooling nodes as ``nir.read`` does.

    ``nir`` stores no types for ``SumPool2d``/``AvgPool2d`` and infers them from the graph;
    nirjax uses its own shape inference (:mod:`nirjax.graph.shapes`) and leaves them unset where
    the graph does not determine them.
    """
    def pools(g, path):
        for name, node in g.nodes.items():
            if isinstance(node, nir.NIRGraph):
                yield from pools(node, path + (name,))
            elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
                if node.input_type is None or node.input_type.get("input") is None:
                    yield path + (name,), node

    todo = list(pools(graph, ()))
    if not todo:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # compile warns about shapes, not read
            flat = graph_mod.flatten(graph, known_types())
            pre = graph_mod.order(list(flat.nodes), flat.edges, flat.inputs)
            in_shapes, out_shapes = graph_mod.infer_shapes(flat, list(pre.order), shape_rule)
    except Exception:  # noqa: BLE001 - best effort: shapes undetermined, compile reports why
        return
    by_path = {fn.path: name for name, fn in flat.nodes.items()}
    for path, node in todo:
        name = by_path.get(path)
        if name in in_shapes:
            node.input_type = {"input": np.array(in_shapes[name])}
            node.output_type = {"output": np.array(out_shapes[name])}


def read_version(path) -> str:
    """The NIR version string stored in a ``.nir`` file (``"unknown"`` if absent)."""
    source, label = _source(path, "read_version")
    if isinstance(source, str) and not os.path.isfile(source):
        raise NirFileError(f"{source}: no such file")
    reader = _Reader(os.path.basename(label), True)
    handle = _open(source, label)
    try:
        with handle as f:
            top = dict(reader.members(f, f"{reader.label}:"))
            return reader.text(top["version"], f"{reader.label}:/version") if "version" in top else "unknown"
    except NirjaxError:
        raise
    except Exception as exc:
        raise NirFileError(f"{label}: the file is damaged ({type(exc).__name__}: {exc})") from None


def file_version(graph: nir.NIRGraph) -> str | None:
    """The NIR version of the file ``graph`` was read from by :func:`read`, else ``None``."""
    return _VERSIONS.get(id(graph))


# ----------------------------------------------------------------------------- writing


def _check_name(name, where: str, what: str) -> None:
    if not isinstance(name, str):
        raise NirFileError(f"{where}: {what} {name!r} is a {type(name).__name__}; names must be strings")
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise NirFileError(
            f"{where}: {what} {name!r} cannot be stored in a .nir file (names must be non-empty, "
            f"not '.' or '..', and hold no '/' or NUL character)"
        )
    try:
        name.encode("utf8")
    except UnicodeEncodeError:
        raise NirFileError(f"{where}: {what} {name!r} is not valid Unicode text") from None


def _metadata_array(value, where: str) -> np.ndarray:
    """A list/tuple/array metadata value as an array that keeps every value as it is."""
    arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if arr.dtype.kind in "biuf" and (arr.dtype.kind != "f" or arr.dtype.itemsize <= 8):
        return arr
    if arr.dtype.kind == "U":
        flat = arr.reshape(-1) if isinstance(value, np.ndarray) else _leaves(value)
        if all(isinstance(v, (str, np.str_)) for v in flat):
            return arr
    raise NirFileError(
        f"{where}: {_describe(value) if isinstance(value, np.ndarray) else repr(value)[:80]} cannot "
        f"be stored without changing it; metadata values are numbers, strings, arrays or lists "
        f"of one kind, and dicts of those"
    )


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


class _Writer:
    def __init__(self, compression, compression_opts):
        self.compression = compression
        self.compression_opts = compression_opts
        self.depth = limits().max_depth

    def value(self, group: h5py.Group, key: str, value, where: str, depth: int, metadata: bool):
        here = f"{where}/{key}"
        if value is None:
            if metadata:
                raise NirFileError(f"{here}: metadata value None cannot be stored (nir.write refuses "
                                   f"it too); leave the key out")
            return
        if isinstance(value, dict):
            if depth > self.depth:
                raise NirFileError(f"{here}: dicts nest more than {self.depth} levels (or contain "
                                   f"themselves)")
            sub = group.create_group(key)
            for k, v in value.items():
                _check_name(k, here, "metadata key")
                self.value(sub, k, v, here, depth + 1, metadata)
            return
        if isinstance(value, (str, np.str_)):
            if "\x00" in value:
                raise NirFileError(f"{here}: text {value[:40]!r} holds a NUL character, which HDF5 "
                                   f"strings cannot store")
            try:
                value.encode("utf8")
            except UnicodeEncodeError:
                raise NirFileError(f"{here}: {value!r} is not valid Unicode text") from None
            group.create_dataset(key, data=str(value), dtype=h5py.string_dtype())
            return
        if isinstance(value, bytes):
            try:
                text = value.decode("utf8")
            except UnicodeDecodeError:
                raise NirFileError(f"{here}: bytes {value[:40]!r} are not UTF-8 text") from None
            group.create_dataset(key, data=text, dtype=h5py.string_dtype())
            return
        if hasattr(value, "__array__") and not isinstance(value, (np.ndarray, np.generic)):
            try:  # torch tensors, JAX arrays
                value = np.asarray(value)
            except Exception as exc:  # noqa: BLE001 - e.g. a tensor that requires grad
                raise NirFileError(f"{here}: cannot convert the {type(value).__name__} to an "
                                   f"array ({exc})") from None
        if not isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple)):
            raise NirFileError(f"{here}: a {type(value).__name__} cannot be stored in a .nir file; "
                               f"expected numbers, strings, arrays or dicts")
        try:
            arr = _metadata_array(value, here)
        except ValueError:  # ragged lists
            raise NirFileError(f"{here}: {repr(value)[:80]} is ragged; expected a rectangular array") from None
        if arr.dtype.kind == "U":
            group.create_dataset(key, data=arr.astype(object), dtype=h5py.string_dtype())
        elif arr.ndim and arr.size:
            group.create_dataset(key, data=arr, compression=self.compression,
                                 compression_opts=self.compression_opts)
        else:
            group.create_dataset(key, data=arr)

    def node(self, group: h5py.Group, node, where: str, conv_shapes, path):
        type_name = type(node).__name__
        group.create_dataset("type", data=type_name, dtype=h5py.string_dtype())
        if isinstance(node, nir.NIRGraph):
            nodes = group.create_group("nodes")
            for name, child in node.nodes.items():
                self.node(nodes.create_group(name), child, f"{where}/nodes/{name}",
                          conv_shapes, path + (name,))
            edges = list(node.edges or [])
            if edges:
                group.create_dataset("edges", data=np.array([list(e) for e in edges], dtype=object),
                                     dtype=h5py.string_dtype())
            else:
                group.create_dataset("edges", data=np.zeros((0,), np.float64))
        else:
            renamed = {v: k for k, v in _RENAMED.get(type_name, {}).items()}
            for f in _fields(type(node)):
                value = getattr(node, f.name, None)
                if f.name in ("input_type", "output_type") and isinstance(value, dict):
                    value = next(iter(value.values()), None)
                if f.name == "input_shape" and value is None and path in conv_shapes:
                    value = np.asarray(conv_shapes[path], np.int64)
                    if type_name == "Conv1d":  # nir 1.0.8's Conv1d takes the length as an int
                        value = value.reshape(())
                key = renamed.get(f.name, f.name)
                if value is not None and not hasattr(value, "__array__") and not isinstance(
                        value, (str, bytes, np.ndarray, np.generic, int, float, list, tuple)):
                    raise NirFileError(f"{where} ({type_name}): field {f.name!r} is a "
                                       f"{type(value).__name__}; expected numbers or an array")
                self.value(group, key, value, where, 0, metadata=False)
        if node.metadata:
            if not isinstance(node.metadata, dict):
                raise NirFileError(f"{where}: metadata must be a dict, got {type(node.metadata).__name__}")
            self.value(group, "metadata", dict(node.metadata), where, 1, metadata=True)


def _check_graph(graph, where: str = "graph") -> None:
    """Names, node kinds and nesting of a graph to be written, checked before any recursion."""
    max_depth = limits().max_depth
    stack = [(graph, where, 0, ())]
    while stack:
        g, here, depth, ancestors = stack.pop()
        if any(g is a for a in ancestors):
            raise NirFileError(f"{here}: the graph contains itself; a .nir file is a tree")
        if depth > max_depth:
            raise NirFileError(f"{here}: subgraphs nest more than {max_depth} levels "
                               f"(nirjax.set_limits(max_depth=...) to allow more)")
        if not isinstance(g.nodes, dict):
            raise NirFileError(f"{here}: nodes must be a dict of name -> node, got {type(g.nodes).__name__}")
        for name, node in g.nodes.items():
            _check_name(name, here, "node name")
            if isinstance(node, nir.NIRGraph):
                stack.append((node, f"{here}/{name}", depth + 1, ancestors + (g,)))
            elif not isinstance(node, nir.NIRNode):
                raise NirFileError(f"{here}/{name}: a {type(node).__name__}, not a nir node")
        try:
            edges = [tuple(e) for e in (g.edges or [])]
        except TypeError:
            raise NirFileError(f"{here}: edges must be a list of (source, destination) pairs") from None
        for e in edges:
            if len(e) != 2 or not all(isinstance(v, str) for v in e):
                raise NirFileError(f"{here}: edge {e!r} is not a pair of node names")


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flat = graph_mod.flatten(graph, known_types())
            pre = graph_mod.order(list(flat.nodes), flat.edges, flat.inputs)
            in_shapes, _ = graph_mod.infer_shapes(flat, list(pre.order), shape_rule)
    except Exception:  # the file is still written, as given, if the graph is incomplete
        return {}
    return {flat.nodes[name].path: shape[1:] for name, shape in in_shapes.items()
            if flat.nodes[name].type_name in ("Conv1d", "Conv2d")}


def _to_bytes(graph, compression, compression_opts, label) -> bytes:
    """The whole file, built in memory."""
    buffer = io.BytesIO()
    try:
        conv_shapes = _conv_input_shapes(graph)
        writer = _Writer(compression, compression_opts)
        with h5py.File(buffer, "w") as f:
            f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype())
            writer.node(f.create_group("node"), graph, f"{label}:/node",
                        conv_shapes, ())
    except NirjaxError as exc:
        raise NirFileError(f"cannot write {label}: {exc}") from exc
    except Exception as exc:  # h5py / numpy refusing a value
        raise NirFileError(f"cannot write {label}: {type(exc).__name__}: {exc}") from None
    return buffer.getvalue()


def _verify(data: bytes, label: str) -> None:
    """Read the bytes back with :func:`read`: nirjax never writes a file it would refuse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(io.BytesIO(data), strict=True, validate=True)
    except NirjaxError as exc:
        raise NirFileError(f"cannot write {label}: the file would not read back: "
                           f"{type(exc).__name__}: {exc}") from exc


def _commit_path(target: str, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``target`` and rename it over ``target``."""
    real = os.path.realpath(target)
    directory = os.path.dirname(real) or "."
    if os.path.isdir(real):
        raise NirFileError(f"{target}: is a directory")
    if os.path.exists(real) and not os.path.isfile(real):
        # renaming over a device, pipe or socket would replace it (/dev/null included)
        raise NirFileError(f"{target}: not a regular file (a device, pipe or socket); "
                           f"nirjax.write writes regular files, or binary file objects")
    if not os.path.isdir(directory):
        raise NirFileError(f"{target}: the directory {directory} does not exist")
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(real) + ".", suffix=".tmp",
                                   dir=directory)
        with os.fdopen(fd, "wb") as out:
            _write_all(out, data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
        tmp = None
    except OSError as exc:
        raise NirFileError(f"{target}: cannot write ({exc}); the previous file, if any, is "
                           f"unchanged") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _write_all(out, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = out.write(view)
        if n is None:  # raw streams may report nothing written
            n = len(view)
        view = view[n:]


def _commit_fileobj(fobj, data: bytes, label: str) -> None:
    try:
        fobj.seek(0)
        _write_all(fobj, data)
        if hasattr(fobj, "truncate"):
            fobj.truncate()
        if hasattr(fobj, "flush"):
            fobj.flush()
        fobj.seek(0)
    except (OSError, ValueError, io.UnsupportedOperation) as exc:
        raise NirFileError(f"{label}: cannot write to the file object ({exc})") from None


def write(path, graph, *, compression: str | int | None = "gzip", compression_opts=None) -> None:
    """Write a ``nir.NIRGraph`` to a ``.nir`` file that ``nir.read`` (1.0.8) reads back.

    Args:
        path: a path (``str``, ``bytes``, ``os.PathLike``) or a binary, writable file
            object (``tempfile.TemporaryFile()``, ``io.BytesIO()``), as ``nir.write``
            accepts.
        graph: a ``nir.NIRGraph``, or a :class:`~nirjax.CompiledGraph` (exported first with
            its current parameters).
        compression: h5py's compression filter for arrays (default gzip), as for
            ``nir.write``.
        compression_opts: the filter's options (h5py's ``compression_opts``).

    Every field is written as a dataset (``None`` fields are left out, as NIR readers expect),
    arrays keep their dtype, and the version written is the installed ``nir`` version. A
    convolution without ``input_shape`` (which nir 1.0.8's reader requires) gets the shape
    nirjax infers for it.

    The write is atomic and checked: the file is built in memory and read back with
    :func:`read` first (a graph nirjax would refuse to read is never written), then written
    to a temporary file in the same directory and renamed over ``path``. A file object is
    overwritten from its start once the file is complete.

    Raises:
        NirFileError: the graph cannot be stored as it is (names that are empty, hold '/',
            or are not strings; metadata values that would change, such as Python objects
            or ``None``; a graph that contains itself; a graph :func:`read` would refuse),
            or the disk refused the data. An existing file at ``path`` is then unchanged.
    """
    source, label = _source(path, "write")
    if not isinstance(graph, nir.NIRGraph):
        if isinstance(graph, CompiledGraph):
            graph = to_nir(graph, graph.params)
        else:
            raise NirFileError(f"cannot write {label}: nirjax.write expects a nir.NIRGraph, got "
                               f"{type(graph).__name__}")
    name = os.path.basename(label)
    _check_graph(graph, f"{name}:/node")
    data = _to_bytes(graph, compression, compression_opts, name)
    _verify(data, name)
    if isinstance(source, str):
        _commit_path(source, data)
    else:
        _commit_fileobj(source, data, label)
