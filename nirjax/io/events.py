"""Event streams (DVS cameras, silicon cochleas) as spike-count inputs of a graph.

Neuromorphic sensors emit *events*: a time stamp, a pixel or channel address and a polarity.
The tonic library (https://tonic.readthedocs.io), the ecosystem's reader of such data,
stores them as NumPy structured arrays with fields ``t``, ``x``, ``y`` (cameras only) and
``p``, time stamps in microseconds, and describes a sensor by ``sensor_size = (W, H, P)``
(width, height, polarities; ``H = 1`` for an audio sensor). :func:`to_frames` turns such
arrays into the dense ``[T, B, P, H, W]`` (cameras) or ``[T, B, P*W]`` (audio) spike counts a
compiled graph takes, one step per ``dt``:

    step of an event = floor((t - t_start) * time_unit / dt),    kept if 0 <= step < T

(computed in integers when ``t`` is an integer and ``dt/time_unit`` a whole number of units,
else in float64 with a margin of 1e-9 steps so that float rounding of ``k*dt`` cannot move an
event on a step boundary into the previous step)

and every event adds 1 to ``frames[step, sample, p, y, x]``. The time window is
``[t_start, t_start + T*dt)``; events outside it are not counted (:func:`count_outside`
says how many). It agrees with tonic's ``ToFrame(sensor_size, time_window=dt/time_unit,
start_time=t_start, end_time=t_start + T*dt/time_unit)`` (``tonic.functional.to_frame_numpy``;
the test suite checks this when tonic is installed) but does not need tonic, works on a whole
batch at once and does not require the events to be sorted by time.

>>> import numpy as np
>>> ev = np.zeros(3, dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
>>> ev["x"], ev["y"], ev["t"], ev["p"] = [0, 1, 1], [0, 0, 0], [50, 120, 180], [1, 0, 0]
>>> frames = to_frames(ev, sensor_size=(2, 1, 2), dt=1e-4)   # 100 us steps
>>> frames.shape, frames[1, 0, 0, 0].tolist()
((2, 1, 2, 1, 2), [0.0, 2.0])
"""

from __future__ import annotations

import math
import pathlib
from typing import Sequence

import numpy as np

from ..errors import InputError

__all__ = ["EVENT_FIELDS", "is_event_array", "to_frames", "count_outside", "load_events",
           "make_events"]

#: the fields of a tonic-style event array (``y`` only for two-dimensional sensors)
EVENT_FIELDS = ("t", "x", "y", "p")


def is_event_array(a) -> bool:
    """Whether ``a`` is a structured array with the event fields ``t``, ``x`` and ``p``.

    Args:
        a: any object.

    Returns:
        ``True`` for a tonic-style event array.
    """
    names = getattr(getattr(a, "dtype", None), "names", None)
    return bool(names) and all(f in names for f in ("t", "x", "p"))


def _as_batch(events) -> list:
    if is_event_array(events):
        return [events]
    if isinstance(events, np.ndarray) and events.dtype.names:
        raise InputError(
            f"event array has fields {list(events.dtype.names)}; expected the fields t, x, p "
            f"(and y for a camera), as tonic writes them")
    try:
        batch = list(events)
    except TypeError:
        raise InputError(f"expected an event array or a sequence of them, got "
                         f"{type(events).__name__}") from None
    for i, e in enumerate(batch):
        if not is_event_array(e):
            raise InputError(
                f"sample {i}: expected a structured array with fields t, x, p (and y), got "
                f"{getattr(getattr(e, 'dtype', None), 'names', None) or type(e).__name__}")
    if not batch:
        raise InputError("no event arrays given (the batch is empty)")
    return batch


def _check_sensor(sensor_size) -> tuple[int, int, int]:
    try:
        size = tuple(int(s) for s in sensor_size)
    except (TypeError, ValueError):
        raise InputError(f"sensor_size must be (W, H, P) integers, got {sensor_size!r}") from None
    if len(size) != 3 or min(size) < 1:
        raise InputError(f"sensor_size must be (W, H, P) with positive entries (H = 1 for a "
                         f"one-dimensional sensor), got {sensor_size!r}")
    return size


def _steps_per_unit(dt: float, time_unit: float) -> float:
    """The step length in the events' time unit, snapped to an integer when it is one
    within float rounding (``1e-4 / 1e-6`` is ``99.99999999999999``)."""
    if not (isinstance(dt, (int, float, np.floating)) and math.isfinite(dt) and dt > 0):
        raise InputError(f"dt must be a positive number of seconds, got {dt!r}")
    if not (isinstance(time_unit, (int, float, np.floating)) and math.isfinite(time_unit)
            and time_unit > 0):
        raise InputError(f"time_unit must be a positive number of seconds, got {time_unit!r}")
    width = float(dt) / float(time_unit)
    if abs(width - round(width)) <= 1e-9 * width and round(width) >= 1:
        return float(round(width))
    return width


def _step_index(t: np.ndarray, t_start, width: float) -> np.ndarray:
    rel = np.asarray(t) - t_start
    if width.is_integer() and np.issubdtype(rel.dtype, np.integer):
        return np.floor_divide(rel, int(width)).astype(np.int64)
    # float time stamps: k*dt computed in floating point may fall a hair below the boundary
    # of step k (0.0003 / 1e-4 = 2.9999999999999996); a margin of 1e-9 steps puts it in step k
    return np.floor(rel.astype(np.float64) / width + 1e-9).astype(np.int64)


def _n_steps(batch, t_start, width, n_steps, t_stop) -> int:
    if n_steps is not None:
        if not (isinstance(n_steps, (int, np.integer)) and n_steps >= 0):
            raise InputError(f"n_steps must be a non-negative int, got {n_steps!r}")
        if t_stop is not None:
            raise InputError("give n_steps or t_stop, not both")
        return int(n_steps)
    if t_stop is not None:
        if t_stop <= t_start:
            raise InputError(f"t_stop ({t_stop}) must be after t_start ({t_start})")
        return int(math.ceil((t_stop - t_start) / width - 1e-9))
    last = max((int(_step_index(e["t"], t_start, width).max()) for e in batch if len(e)),
               default=-1)
    if last < 0:
        raise InputError(
            f"cannot infer the number of steps: no event at or after t_start = {t_start}; "
            f"give n_steps or t_stop")
    return last + 1


def to_frames(events, sensor_size, dt: float, *, time_unit: float = 1e-6, t_start=0,
              t_stop=None, n_steps: int | None = None, dtype=np.float32) -> np.ndarray:
    """Bin tonic-style events into spike counts per time step.

    Args:
        events: one event array (a sample) or a sequence of them (a batch): structured
            arrays with fields ``t``, ``x``, ``p`` and, for a camera, ``y``.
        sensor_size: ``(W, H, P)``, tonic's convention (``H = 1`` without a ``y`` field).
            With ``P = 1`` every event counts in channel 0, whatever its ``p`` (as tonic does;
            more than one distinct polarity is then an error).
        dt: the time step in seconds (the graph's time unit).
        time_unit: seconds per unit of ``t`` (default ``1e-6``: tonic's microseconds).
        t_start: the start of the window, in the unit of ``t``.
        t_stop: the end of the window (exclusive), in the unit of ``t``; the number of steps
            is then ``ceil((t_stop - t_start) / (dt / time_unit))``.
        n_steps: the number of steps ``T`` instead of ``t_stop``. With neither, ``T`` is the
            smallest that counts the latest event of the batch.
        dtype: the dtype of the result.

    Returns:
        ``[T, B, P, H, W]`` counts for events with a ``y`` field, ``[T, B, P*W]`` (index
        ``p*W + x``) for one-dimensional events.

    Raises:
        InputError: an address outside the sensor, a bad window or a non-event array.
    """
    batch = _as_batch(events)
    width_px, height, polarities = _check_sensor(sensor_size)
    width = _steps_per_unit(dt, time_unit)
    camera = "y" in batch[0].dtype.names
    if any(("y" in e.dtype.names) != camera for e in batch):
        raise InputError("the samples mix events with and without a y field")
    if not camera and height != 1:
        raise InputError(f"the events have no y field but sensor_size {tuple(sensor_size)} "
                         f"has height {height}; use (W, 1, P)")
    steps = _n_steps(batch, t_start, width, n_steps, t_stop)
    frames = np.zeros((steps, len(batch), polarities, height, width_px), dtype=dtype)
    for b, e in enumerate(batch):
        if not len(e):
            continue
        for name in ("x", "y", "p") if camera else ("x", "p"):
            raw = np.asarray(e[name])
            if not (np.issubdtype(raw.dtype, np.integer) or raw.dtype == bool
                    or np.all(raw == np.round(raw))):
                raise InputError(f"sample {b}: event field {name!r} holds non-integer addresses "
                                 f"(dtype {raw.dtype})")
        x = np.asarray(e["x"]).astype(np.int64)
        y = np.asarray(e["y"]).astype(np.int64) if camera else np.zeros_like(x)
        p = np.asarray(e["p"]).astype(np.int64)
        if polarities == 1:
            if np.unique(p).size > 1:
                raise InputError(
                    f"sample {b}: sensor_size has one polarity but the events have "
                    f"{np.unique(p).size} distinct p values; use P = {np.unique(p).size}")
            p = np.zeros_like(p)
        for name, values, size in (("x", x, width_px), ("y", y, height), ("p", p, polarities)):
            bad = (values < 0) | (values >= size)
            if bad.any():
                raise InputError(
                    f"sample {b}: event field {name!r} has values {sorted(set(values[bad].tolist()))[:5]} "
                    f"outside [0, {size}) of sensor_size (W, H, P) = "
                    f"{(width_px, height, polarities)}" + (
                        "; polarities -1/+1 map to (p + 1) // 2" if name == "p" and values.min() < 0 else ""))
        k = _step_index(e["t"], t_start, width)
        keep = (k >= 0) & (k < steps)
        np.add.at(frames, (k[keep], b, p[keep], y[keep], x[keep]), 1)
    if not camera:
        frames = frames.reshape(steps, len(batch), polarities * width_px)
    return frames


def count_outside(events, dt: float, *, time_unit: float = 1e-6, t_start=0, t_stop=None,
                  n_steps: int | None = None) -> int:
    """The number of events :func:`to_frames` leaves out: those before ``t_start`` or at or
    after the end of the window (arguments as for :func:`to_frames`).

    Returns:
        The count over the whole batch.
    """
    batch = _as_batch(events)
    width = _steps_per_unit(dt, time_unit)
    steps = _n_steps(batch, t_start, width, n_steps, t_stop)
    out = 0
    for e in batch:
        k = _step_index(e["t"], t_start, width)
        out += int(np.sum((k < 0) | (k >= steps)))
    return out


def load_events(path) -> list:
    """Read event arrays from a file: a ``.npy`` structured array (one sample) or a ``.npz``
    of them (one sample per array, in the order they were saved).

    Args:
        path: the file.

    Returns:
        A list of structured arrays.

    Raises:
        InputError: the file holds no event arrays.
    """
    path = pathlib.Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"event file {str(path)!r}: cannot read it ({exc})") from None
    if isinstance(loaded, np.ndarray):
        arrays = [loaded]
    else:
        with loaded:
            arrays = [loaded[k] for k in loaded.files]
    if not arrays or not all(is_event_array(a) for a in arrays):
        raise InputError(f"event file {str(path)!r}: expected structured arrays with fields "
                         f"t, x, p (and y)")
    return arrays


def make_events(rng: np.random.Generator, sensor_size, n_events: int, duration: int, *,
                sort: bool = True) -> np.ndarray:
    """Random events in tonic's layout, for tests and examples (no data set to download).

    Args:
        rng: a NumPy generator.
        sensor_size: ``(W, H, P)``; ``H = 1`` gives events without a ``y`` field.
        n_events: how many events.
        duration: time stamps are drawn uniformly from ``[0, duration)`` (integers, e.g.
            microseconds).
        sort: sort by time, as recorded streams are.

    Returns:
        A structured array with fields ``x``, (``y``), ``t``, ``p`` (tonic's field order).
    """
    width_px, height, polarities = _check_sensor(sensor_size)
    fields = [("x", np.int64)] + ([("y", np.int64)] if height > 1 else []) + [
        ("t", np.int64), ("p", np.int64)]
    ev = np.zeros(int(n_events), dtype=fields)
    ev["x"] = rng.integers(0, width_px, n_events)
    if height > 1:
        ev["y"] = rng.integers(0, height, n_events)
    ev["t"] = rng.integers(0, duration, n_events)
    ev["p"] = rng.integers(0, polarities, n_events)
    if sort:
        ev = ev[np.argsort(ev["t"], kind="stable")]
    return ev
