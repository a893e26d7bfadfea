"""Running one simulation or training on several processes (hosts) with ``jax.distributed``.

JAX runs one program on every process ("multi-controller"): each process starts the same
script, :func:`initialize` connects it to the others through a coordinator, and from then
on ``jax.devices()`` lists the devices of every process. A mesh over those devices
(:func:`make_mesh`) given to ``nirjax.compile(..., mesh=mesh)`` makes every compiled run a
computation across processes; XLA moves the data (over gloo on CPU hosts, NCCL on GPUs).

Each process feeds its own rows of every batch: :func:`process_rows` says which rows,
:func:`global_batch` assembles the global array from each process's rows, and
:func:`gather` brings a result back whole to every process (for printing or saving).

>>> import nirjax
>>> from nirjax import distributed
>>> distributed.parse_mesh("batch=4,neurons=2")
{'batch': 4, 'neurons': 2}

Started from the command line (each process gets its own ``--process-id``)::

    nirjax run --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0   # host A
    nirjax run --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 1   # host B

On one machine, ``--local-devices K`` splits each process's CPU into ``K`` devices (as
``XLA_FLAGS=--xla_force_host_platform_device_count=K`` does), which is how the tests run
two processes of two devices each on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import InputError, OptionsError
from .sharding import BATCH, MESH_AXES, NEURONS, auto_mesh

__all__ = ["initialize", "is_initialized", "make_mesh", "parse_mesh", "process_rows",
           "global_batch", "gather", "add_distributed_arguments", "setup",
           "native_stdout_to_stderr"]

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


def _backends_started() -> bool:
    from jax._src import xla_bridge

    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else bool(getattr(xla_bridge, "_backends", {}))


def is_initialized() -> bool:
    """Whether :func:`initialize` (or ``jax.distributed.initialize``) has run here."""
    from jax._src import distributed as jax_distributed

    return jax_distributed.global_state.client is not None


def initialize(coordinator: str, num_processes: int, process_id: int, *,
               local_devices: int | None = None, timeout_s: int = 300) -> None:
    """Join a multi-process run: ``jax.distributed.initialize`` with CPU collectives.

    Call it first, before anything creates a JAX array or lists devices (JAX fixes the
    set of devices the first time it is used). On CPU hosts the collectives go over gloo
    (``jax_cpu_collectives_implementation``); GPUs use NCCL on their own.

    Args:
        coordinator: ``"HOST:PORT"`` of process 0, which listens there (every process gets
            the same address).
        num_processes: how many processes take part.
        process_id: this process's index, ``0 <= process_id < num_processes``.
        local_devices: split this process's CPU into that many devices (for testing
            several devices per process on one machine); ``None``: JAX's default.
        timeout_s: how long to wait for the other processes to connect.

    Raises:
        OptionsError: a malformed address or index, or JAX already started its devices.
    """
    if not isinstance(coordinator, str) or not _HOST_PORT.match(coordinator):
        raise OptionsError(f"coordinator {coordinator!r}: expected HOST:PORT, e.g. "
                           f"127.0.0.1:12345")
    port = int(_HOST_PORT.match(coordinator).group(2))
    if not 0 < port < 65536:
        raise OptionsError(f"coordinator {coordinator!r}: port {port} is not in 1..65535")
    if not (isinstance(num_processes, int) and not isinstance(num_processes, bool)
            and num_processes >= 1):
        raise OptionsError(f"num_processes={num_processes!r}: expected a positive int")
    if not (isinstance(process_id, int) and not isinstance(process_id, bool)
            and 0 <= process_id < num_processes):
        raise OptionsError(f"process_id={process_id!r}: expected an int in 0..{num_processes - 1} "
                           f"(num_processes={num_processes})")
    if local_devices is not None and not (isinstance(local_devices, int) and local_devices >= 1):
        raise OptionsError(f"local_devices={local_devices!r}: expected a positive int")
    if is_initialized():
        raise OptionsError("jax.distributed is already initialized in this process")
    if _backends_started():
        raise OptionsError(
            "initialize must run before JAX starts its devices (before the first array, "
            "jax.devices() or a compiled run in this process)")
    if local_devices is not None:
        jax.config.update("jax_num_cpu_devices", int(local_devices))
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=int(timeout_s))


def parse_mesh(spec: str) -> dict:
    """Axis sizes from ``"batch=4,neurons=2"``; a bare name (``"batch"``) takes the devices
    left over (size ``-1``).

    Raises:
        OptionsError: an unknown axis, a repeated one or a malformed size.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise OptionsError(f"mesh {spec!r}: expected e.g. 'batch', 'neurons=4' or "
                           f"'batch=2,neurons=4'")
    sizes: dict = {}
    for part in spec.split(","):
        name, _, size = part.strip().partition("=")
        name = name.strip()
        if name not in MESH_AXES or name in sizes:
            raise OptionsError(f"mesh {spec!r}: axis {name!r} is unknown or repeated; axes are "
                               f"'batch' and 'neurons'")
        if size.strip() in ("", "-1"):
            sizes[name] = -1
        elif size.strip().isdigit() and int(size) >= 1:
            sizes[name] = int(size)
        else:
            raise OptionsError(f"mesh {spec!r}: size {size!r} of axis {name!r} is not a "
                               f"positive int")
    return sizes


def make_mesh(batch: int | None = None, neurons: int | None = None,
              devices: Any = None) -> Mesh:
    """A mesh over ``devices`` (default: every device of every process) for
    ``nirjax.compile(..., mesh=...)``.

    Args:
        batch: size of the ``"batch"`` axis, ``-1`` for the devices left over, ``None``
            for no such axis.
        neurons: size of the ``"neurons"`` axis, likewise.
        devices: the devices, in order (``jax.devices()`` lists process 0's first, so each
            process holds a contiguous block of batch rows).

    With neither axis given the mesh is ``"batch"`` over all devices. The axes are in
    ``Auto`` mode, as nirjax uses them.

    Raises:
        OptionsError: the sizes do not multiply to the number of devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    sizes = {BATCH: batch, NEURONS: neurons}
    sizes = {k: v for k, v in sizes.items() if v is not None}
    if not sizes:
        sizes = {BATCH: -1}
    for k, v in sizes.items():
        if not (isinstance(v, (int, np.integer)) and (v >= 1 or v == -1)):
            raise OptionsError(f"mesh axis {k}={v!r}: expected a positive int or -1")
    fixed = math.prod(v for v in sizes.values() if v != -1)
    free = [k for k, v in sizes.items() if v == -1]
    if len(free) > 1:
        raise OptionsError("mesh: at most one axis may take the devices left over (-1)")
    if free:
        if fixed == 0 or len(devices) % fixed:
            raise OptionsError(f"mesh {sizes}: {len(devices)} devices do not divide by {fixed}")
        sizes[free[0]] = len(devices) // fixed
    total = math.prod(sizes.values())
    if total != len(devices):
        raise OptionsError(f"mesh {sizes}: needs {total} devices, there are {len(devices)} "
                           f"({jax.process_count()} process(es)); give sizes that multiply to "
                           f"{len(devices)}")
    names = tuple(sizes)
    grid = np.array(devices, dtype=object).reshape(tuple(sizes.values()))
    return auto_mesh(Mesh(grid, names))


def _batch_sharding(mesh: Mesh, ndim: int, batch_axis: int) -> NamedSharding:
    spec = [None] * ndim
    if BATCH in mesh.axis_names:
        spec[batch_axis] = BATCH
    return NamedSharding(auto_mesh(mesh), PartitionSpec(*spec))


def process_rows(batch: int, mesh: Mesh) -> slice:
    """The rows of a global batch of ``batch`` samples that this process feeds.

    Process ``p`` holds the batch blocks of its own devices; with a mesh over
    ``jax.devices()`` in order they are contiguous. Without a ``"batch"`` axis every
    process feeds every row.

    Raises:
        InputError: ``batch`` does not divide over the ``"batch"`` axis, or this process's
            rows are not contiguous (a mesh whose device order interleaves processes).
    """
    size = dict(mesh.shape).get(BATCH, 1)
    if batch % size:
        raise InputError(f"batch size {batch} is not divisible by the mesh's 'batch' axis "
                         f"({size} devices)")
    sharding = _batch_sharding(mesh, 1, 0)
    index = sharding.addressable_devices_indices_map((batch,))
    rows = sorted({(s[0].start or 0, batch if s[0].stop is None else s[0].stop)
                   for s in index.values()})
    start, stop = rows[0][0], rows[-1][1]
    covered = sum(b - a for a, b in rows)
    if covered != stop - start:
        raise InputError(f"this process's rows {rows} of the batch are not contiguous; build "
                         f"the mesh over jax.devices() in order (nirjax.distributed.make_mesh)")
    return slice(start, stop)


def global_batch(local: Any, mesh: Mesh, batch_axis: int = 1, batch: int | None = None):
    """A global array from each process's own rows (``jax.make_array_from_process_local_data``).

    Args:
        local: a pytree of arrays (NumPy or JAX), this process's rows
            (:func:`process_rows`) on axis ``batch_axis``: inputs ``[T, b, ...]``
            (``batch_axis=1``), labels ``[b]`` (``batch_axis=0``).
        mesh: the mesh the model was compiled with.
        batch_axis: the batch axis of every leaf.
        batch: the global batch size (default: ``b`` times the number of batch blocks the
            processes hold, i.e. every process feeds as many rows).

    Returns:
        The same pytree of global ``jax.Array`` s, split over ``"batch"``, ready for
        ``model.run``, ``jax.grad`` or ``train.Trainer.step``.
    """
    def one(x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        if x.ndim <= batch_axis:
            raise InputError(f"global_batch: a leaf of shape {tuple(x.shape)} has no batch "
                             f"axis {batch_axis}")
        sharding = _batch_sharding(mesh, x.ndim, batch_axis)
        shape = None
        if batch is not None:
            shape = tuple(batch if i == batch_axis else d for i, d in enumerate(x.shape))
        return jax.make_array_from_process_local_data(sharding, x, shape)

    return jax.tree_util.tree_map(one, local)


def gather(tree: Any):
    """Every leaf of ``tree`` whole, as NumPy, in every process (an all-gather across
    processes; a plain copy in a single-process run)."""
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree_util.tree_map(one, tree)


def _flush_native_stdout() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)  # C stdio buffers of native libraries
    except (OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def native_stdout_to_stderr():
    """While the block runs, send what is written to file descriptor 1 to standard error.

    Gloo, the CPU collectives of a multi-process run, writes a line such as ``[Gloo] Rank 0
    is connected to 1 peer ranks...`` to standard output whenever it connects a group of
    processes (at the first compiled run on a mesh, at :func:`gather`). Wrapped around
    those calls, its lines go to standard error and standard output holds only what the
    program prints, the same in every process as in a single-process run. Does nothing
    when standard output or standard error has no file descriptor (e.g. captured by a
    test harness).
    """
    try:
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    _flush_native_stdout()
    saved = os.dup(out_fd)
    try:
        os.dup2(err_fd, out_fd)
        yield
    finally:
        sys.stdout.flush()
        _flush_native_stdout()
        os.dup2(saved, out_fd)
        os.close(saved)


def add_distributed_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of a multi-device / multi-process run to ``parser``.

    ``--coordinator HOST:PORT``, ``--num-processes N``, ``--process-id I`` (all three, or
    none), ``--local-devices K`` and ``--mesh SPEC`` (see :func:`parse_mesh`). Read them
    back with :func:`setup`.
    """
    group = parser.add_argument_group(
        "devices and processes",
        "run over several devices and processes (jax.distributed; gloo collectives on CPU)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="address of process 0 (the same in every process)")
    group.add_argument("--num-processes", type=int, default=None, metavar="N",
                       help="number of processes taking part")
    group.add_argument("--process-id", type=int, default=None, metavar="I",
                       help="index of this process, 0 .. N-1")
    group.add_argument("--local-devices", type=int, default=None, metavar="K",
                       help="split this process's CPU into K devices")
    group.add_argument("--mesh", default=None, metavar="SPEC",
                       help="mesh axes, e.g. 'batch', 'neurons=4', 'batch=2,neurons=4' "
                            "(default with --coordinator or --local-devices: 'batch' over "
                            "all devices)")
    group.add_argument("--shard-min", type=int, default=None, metavar="M",
                       help="with a 'neurons' axis: the smallest layer (values per sample) "
                            "split over devices (compile option shard_min, default 1024)")
    return parser


def setup(args: argparse.Namespace) -> Mesh | None:
    """Initialize from options added by :func:`add_distributed_arguments`; return the mesh.

    Joins the multi-process run when ``--coordinator`` is given (before JAX starts its
    devices), then builds the mesh from ``--mesh`` (default ``"batch"`` over every device
    when several processes or ``--local-devices`` are used; ``None``, one device,
    otherwise).

    Raises:
        OptionsError: an incomplete set of the three process options, or a bad value.
    """
    given = [args.coordinator is not None, args.num_processes is not None,
             args.process_id is not None]
    if any(given) and not all(given):
        raise OptionsError("--coordinator, --num-processes and --process-id go together: "
                           "give all three (or none for one process)")
    if all(given):
        initialize(args.coordinator, args.num_processes, args.process_id,
                   local_devices=args.local_devices)
    elif args.local_devices is not None:
        if _backends_started():
            raise OptionsError("--local-devices must be applied before JAX starts its devices")
        jax.config.update("jax_num_cpu_devices", int(args.local_devices))
    spec = args.mesh
    if spec is None:
        if not (all(given) or args.local_devices is not None):
            return None
        spec = BATCH
    sizes = parse_mesh(spec)
    return make_mesh(sizes.get(BATCH), sizes.get(NEURONS))
