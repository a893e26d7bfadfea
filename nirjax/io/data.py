"""Recorded activity in NIR's own data format (``nir.NIRGraphData``, nir 1.0.8).

NIR 1.0.8 defines how to exchange recordings: a :class:`nir.NIRGraphData` maps node names
to :class:`nir.NIRNodeData`, whose ``observables`` map names to

* :class:`nir.TimeGriddedData` ``(data, dt)``: ``data`` is ``[samples, steps, neurons]``
  (bool for spikes, float for other signals), ``dt`` the step in seconds;
* :class:`nir.EventData` ``(idx, time, n_neurons, t_max)``: per sample, the neuron index
  and time of each event, padded with ``-1`` / ``inf``;
* :class:`nir.ValuedEventData`: events that also carry a ``value``.

``nir.write_data`` / ``nir.read_data`` store it in HDF5. nirjax arrays are time-major with
the node's shape, ``[T, B, *shape]``; :func:`to_nir_data` and :func:`from_nir_data` convert:

* a node's output is the observable ``"spikes"`` when the node spikes (IF, LIF, CubaLIF,
  Threshold, or an Output fed by one), ``"output"`` otherwise; a recorded state field
  ``(node, field)`` is the observable ``field`` (``"v"``, ``"i"``, ...);
* neurons are the node's shape flattened in C order (channels first, as NIR stores conv
  shapes); :func:`from_nir_data` restores the shape from the model;
* nodes inside a NIR subgraph are nested :class:`nir.NIRGraphData`, as in the graph.

Reading :class:`nir.EventData` bins each event into step ``floor(time/dt)`` (with a margin of
1e-6 steps for float rounding) and *counts* events; ``nir``'s own ``to_time_gridded`` sets a
bool instead (two events in one step count once) and computes ``int(t_max/dt)`` steps, which
float rounding can make one short.

>>> import numpy as np, nir
>>> spikes = np.zeros((4, 2, 3), np.float32); spikes[1, 0, 2] = 1     # [T, B, N]
>>> gd = to_nir_data({"lif": spikes}, dt=1e-3, spiking={"lif"})
>>> gd.nodes["lif"].observables["spikes"].data.shape               # [B, T, N]
(2, 4, 3)
>>> back = from_nir_data(gd)
>>> bool(np.array_equal(back["lif"], spikes))
True
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Mapping

import numpy as np

from ..errors import InputError, NirFileError

__all__ = ["to_nir_data", "from_nir_data", "read_data", "write_data", "read_metadata", "is_nir_data",
           "SPIKES", "OUTPUT"]

#: observable name of a spiking node's output
SPIKES = "spikes"
#: observable name of a non-spiking node's output
OUTPUT = "output"
#: HDF5 attribute of the root group where :func:`write_data` stores its metadata (JSON)
METADATA_ATTR = "nirjax_metadata"


def _spiking_nodes(model) -> set:
    """Nodes whose output is spikes: spiking rules, and Output nodes fed only by them."""
    program = model.program
    spiking = {n.name for n in program.nodes if n.rule.spiking}
    for n in program.nodes:
        if n.role in ("output", "port"):
            srcs = [e.src for e in program.incoming(n.name)]
            if srcs and all(s in spiking for s in srcs):
                spiking.add(n.name)
    return spiking


def _path(model, name: str) -> tuple:
    if model is None:
        return (name,)
    try:
        return tuple(model.program.node(name).path)
    except Exception:  # the Input/Output names of the top graph are always nodes
        return (name,)


def _events(counts: np.ndarray, dt: float):
    """``[B, T, N]`` spike counts -> :class:`nir.EventData` (an event per spike, at the
    start of its step; a count of k gives k events)."""
    import nir

    if np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise InputError("only non-negative integer spike counts can be written as events")
    b, t, n = counts.shape
    per_sample = counts.reshape(b, -1).sum(axis=1).astype(np.int64)
    width = max(int(per_sample.max()) if b else 0, 1)
    idx = np.full((b, width), -1, dtype=np.int64)
    time = np.full((b, width), np.inf)
    for s in range(b):
        steps, neurons = np.nonzero(counts[s])
        reps = counts[s][steps, neurons].astype(np.int64)
        steps, neurons = np.repeat(steps, reps), np.repeat(neurons, reps)
        order = np.lexsort((neurons, steps))
        idx[s, : len(order)] = neurons[order]
        time[s, : len(order)] = steps[order] * dt
    return nir.EventData(idx=idx, time=time, n_neurons=int(n), t_max=float(t * dt))


def _observable(values: np.ndarray, dt: float, spikes: bool, events: bool):
    import nir

    a = np.asarray(values)
    if a.ndim < 2:
        raise InputError(f"expected an array [T, B, ...], got shape {a.shape}")
    grid = np.moveaxis(a.reshape(a.shape[0], a.shape[1], -1), 1, 0)  # [B, T, N]
    if spikes and events:
        return _events(grid, dt)
    if spikes and np.all((grid == 0) | (grid == 1)):
        return nir.TimeGriddedData(data=grid.astype(bool), dt=float(dt))
    if not np.issubdtype(grid.dtype, np.floating):
        grid = grid.astype(np.float32)
    return nir.TimeGriddedData(data=np.ascontiguousarray(grid), dt=float(dt))


def _insert(root: dict, path: tuple, observables: dict) -> None:
    import nir

    where = root
    for part in path[:-1]:
        where = where.setdefault(part, {})
        if not isinstance(where, dict):
            raise InputError(f"node {part!r} is both a node and a subgraph in the data")
    leaf = where.setdefault(path[-1], nir.NIRNodeData(observables={}))
    if isinstance(leaf, dict):
        raise InputError(f"node {path[-1]!r} is both a node and a subgraph in the data")
    leaf.observables.update(observables)


def _freeze(tree: dict):
    import nir

    return nir.NIRGraphData(nodes={k: _freeze(v) if isinstance(v, dict) else v
                                   for k, v in tree.items()})


def to_nir_data(values: Mapping, dt: float, *, model=None, spiking=None,
                events: bool = False):
    """Convert nirjax arrays to a :class:`nir.NIRGraphData`.

    Args:
        values: a mapping whose keys are node names (the node's output) or ``(node, field)``
            pairs (a state field), as in ``model.run(..., record=...)``'s records, and whose
            values are ``[T, B, *shape]`` arrays; a key may also map to a dict of
            ``observable name -> array``.
        dt: the time step, in seconds (the graph's time unit).
        model: the :class:`nirjax.CompiledGraph` the values come from: it decides which
            outputs are spikes and nests the nodes of subgraphs.
        spiking: names of the nodes whose output is spikes, instead of (or on top of) the
            model's.
        events: write spikes as :class:`nir.EventData` (index and time of each spike)
            instead of a bool grid; sparse activity is then much smaller.

    Returns:
        The :class:`nir.NIRGraphData`; write it with :func:`write_data` or ``nir.write_data``.

    Raises:
        InputError: a key that is neither a node name nor a ``(node, field)`` pair, or a value
            that is not ``[T, B, ...]``.
    """
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise InputError(f"dt must be a positive number, got {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise InputError(f"dt must be a positive number, got {dt!r}")
    spike_names = set(spiking or ())
    if model is not None:
        spike_names |= _spiking_nodes(model)
    if not isinstance(values, Mapping):
        raise InputError(f"values must be a mapping of node names to arrays, got "
                         f"{type(values).__name__}")
    root: dict = {}
    for key, value in values.items():
        if isinstance(key, str):
            node = key
            if isinstance(value, Mapping):
                obs = {str(k): _observable(v, dt, k == SPIKES, events) for k, v in value.items()}
            else:
                is_spikes = node in spike_names
                obs = {SPIKES if is_spikes else OUTPUT: _observable(value, dt, is_spikes, events)}
        elif (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            node, field = key
            obs = {field: _observable(value, dt, False, False)}
        else:
            raise InputError(f"key {key!r}: expected a node name or a (node, field) pair")
        if "/" in node:
            raise InputError(f"node name {node!r} contains '/', which HDF5 cannot store")
        _insert(root, _path(model, node), obs)
    return _freeze(root)


def _flatten(graph_data, prefix=()) -> dict:
    import nir

    out = {}
    if not isinstance(graph_data, nir.NIRGraphData):
        raise InputError(f"expected a nir.NIRGraphData, got {type(graph_data).__name__}")
    for name, node in graph_data.nodes.items():
        path = prefix + (name,)
        if isinstance(node, nir.NIRGraphData):
            out.update(_flatten(node, path))
        elif isinstance(node, nir.NIRNodeData):
            out[path] = node
        else:
            raise InputError(f"node {'.'.join(path)!r}: expected NIRNodeData or NIRGraphData, "
                             f"got {type(node).__name__}")
    return out


def _grid_steps(t_max: float, dt: float) -> int:
    steps = t_max / dt
    return int(round(steps)) if abs(steps - round(steps)) < 1e-6 else int(math.ceil(steps))


def _dense(obs, dt: float | None, where: str) -> tuple[np.ndarray, float]:
    """An observable -> ``[T, B, N]`` and its dt."""
    import nir

    if isinstance(obs, nir.TimeGriddedData):
        if dt is not None and not math.isclose(float(obs.dt), dt, rel_tol=1e-6):
            raise InputError(f"{where}: the data has dt = {float(obs.dt):g} but the simulation "
                             f"uses dt = {dt:g}; resample it or compile with dt = {float(obs.dt):g}")
        data = np.asarray(obs.data)
        if data.dtype == bool:
            data = data.astype(np.float32)
        return np.moveaxis(data, 1, 0), float(obs.dt)
    if isinstance(obs, nir.EventData):
        if dt is None:
            raise InputError(f"{where}: event data has no time grid; give dt to bin it")
        idx, time = np.asarray(obs.idx), np.asarray(obs.time, dtype=np.float64)
        steps = _grid_steps(float(obs.t_max), dt)
        n = int(obs.n_neurons)
        values = (np.asarray(obs.value, dtype=np.float64)
                  if isinstance(obs, nir.ValuedEventData) else np.ones(idx.shape))
        out = np.zeros((steps, idx.shape[0], n), dtype=np.float32)
        for s in range(idx.shape[0]):
            valid = (idx[s] >= 0) & np.isfinite(time[s])
            k = np.floor(time[s][valid] / dt + 1e-6).astype(np.int64)
            i = idx[s][valid].astype(np.int64)
            if np.any(i >= n):
                raise InputError(f"{where}: event index {int(i.max())} >= n_neurons = {n}")
            keep = (k >= 0) & (k < steps)
            if not keep.all():
                raise InputError(f"{where}: {int((~keep).sum())} events of sample {s} lie outside "
                                 f"[0, t_max = {float(obs.t_max):g})")
            np.add.at(out, (k, s, i), values[s][valid])
        return out, dt
    raise InputError(f"{where}: unknown observable type {type(obs).__name__}")


def _node_shape(model, name: str, field: str | None, n: int, where: str):
    if model is None:
        return None
    try:
        node = model.program.node(name)
    except Exception:
        raise InputError(f"{where}: the graph has no node {name!r}") from None
    shape = tuple(node.out_shape)
    if int(np.prod(shape)) != n:
        if field is not None:  # a state field of another size stays [T, B, N]
            return None
        raise InputError(f"{where}: {n} neurons in the data but node {name!r} has shape {shape}")
    return shape


def from_nir_data(graph_data, *, model=None, dt: float | None = None) -> dict:
    """Convert a :class:`nir.NIRGraphData` to nirjax arrays.

    Args:
        graph_data: the data (e.g. from :func:`read_data` or ``nir.read_data``).
        model: a :class:`nirjax.CompiledGraph`: restores each node's shape (``[T, B,
            *shape]`` instead of ``[T, B, N]``), checks the node names and the number of
            neurons, and supplies ``dt`` for event data.
        dt: the time step to bin event data at and to check gridded data against (default:
            the model's).

    Returns:
        A dict: a node's ``"spikes"`` or ``"output"`` observable under the node name, any
        other observable under ``(node, observable)``. Names of nodes inside subgraphs are
        joined with ``"."``, as nirjax names flattened nodes.

    Raises:
        InputError: unknown nodes, shapes that do not fit the model, a dt that differs.
    """
    if dt is None and model is not None:
        dt = float(model.program.dt)
    out: dict = {}
    for path, node in _flatten(graph_data).items():
        name = ".".join(path)
        if not isinstance(node.observables, Mapping):
            raise InputError(f"node {name!r}: observables must be a dict")
        for obs_name, obs in node.observables.items():
            where = f"node {name!r}, observable {obs_name!r}"
            data, _ = _dense(obs, dt, where)
            is_output = obs_name in (SPIKES, OUTPUT)
            shape = _node_shape(model, name, None if is_output else obs_name, data.shape[-1], where)
            if shape is not None:
                data = data.reshape(data.shape[:2] + shape)
            key = name if is_output else (name, obs_name)
            if key in out:
                raise InputError(f"node {name!r} has both a 'spikes' and an 'output' observable")
            out[key] = data
    return out


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_data(path, graph_data, *, metadata: Mapping | None = None) -> None:
    """Write a :class:`nir.NIRGraphData` with ``nir.write_data`` (gzip), plus ``metadata``
    as a JSON string in the root attribute ``nirjax_metadata`` (``nir.read_data`` ignores it;
    :func:`read_metadata` reads it).

    Args:
        path: the file to write (HDF5; any extension).
        graph_data: the data, e.g. from :func:`to_nir_data`.
        metadata: JSON-serialisable facts about the run (graph hash, dt, semantics, ...).

    Raises:
        NirFileError: the file cannot be written.
    """
    import h5py
    import nir

    try:
        nir.write_data(str(path), graph_data)
        if metadata is not None:
            with h5py.File(path, "a") as f:
                f.attrs[METADATA_ATTR] = json.dumps(_jsonable(metadata))
    except OSError as exc:
        raise NirFileError(f"{str(path)!r}: cannot write NIR data ({exc})") from None


def read_data(path):
    """Read a NIR data file with ``nir.read_data``.

    Args:
        path: the HDF5 file.

    Returns:
        The :class:`nir.NIRGraphData`.

    Raises:
        NirFileError: the file is missing, not HDF5, or not NIR data.
    """
    import h5py
    import nir

    path = pathlib.Path(path)
    if not path.is_file():
        raise NirFileError(f"{str(path)!r}: no such file")
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("__type__")
    except OSError as exc:
        raise NirFileError(f"{str(path)!r}: not an HDF5 file ({exc})") from None
    if kind != "NIRGraphData":
        raise NirFileError(f"{str(path)!r}: not a NIR data file (its root has no "
                           f"__type__ = 'NIRGraphData' attribute)")
    try:
        return nir.read_data(str(path))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise NirFileError(f"{str(path)!r}: malformed NIR data ({type(exc).__name__}: {exc})") from None


def read_metadata(path) -> dict:
    """The metadata :func:`write_data` stored in a NIR data file (``{}`` when none).

    Args:
        path: the HDF5 file.

    Returns:
        The decoded JSON object.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            text = f.attrs.get(METADATA_ATTR)
    except OSError as exc:
        raise NirFileError(f"{str(path)!r}: not an HDF5 file ({exc})") from None
    if text is None:
        return {}
    return json.loads(text if isinstance(text, str) else text.decode())


def is_nir_data(path) -> bool:
    """Whether ``path`` is an HDF5 file whose root is NIR data.

    Args:
        path: a file path.

    Returns:
        ``True`` for a NIR data file.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("__type__") == "NIRGraphData"
    except OSError:
        return False
