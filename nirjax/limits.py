"""Size limits that keep a bad file, graph or call from exhausting memory or time.

nirjax checks declared sizes BEFORE it allocates anything: the arrays a ``.nir`` file
declares (before reading them), the state and per-step buffers a compiled graph needs (at
compile time, per sample), and the same for a batch (at ``init_state`` / ``run``). A size
over a limit raises a :class:`~nirjax.errors.NirjaxError` naming the file/node/field and the
bytes it would need; raise the limit if the size is what you want:

>>> import nirjax
>>> nirjax.limits().max_read_bytes > 0
True
>>> with nirjax.set_limits(max_memory_bytes=64 << 30):   # 64 GiB, for this block only
...     pass
>>> previous = nirjax.set_limits(max_read_bytes=8 << 30)  # 8 GiB from now on
>>> _ = nirjax.set_limits(**previous._asdict())           # back to what it was

The defaults can also be set with the environment variables ``NIRJAX_MAX_READ_BYTES``,
``NIRJAX_MAX_MEMORY_BYTES`` and ``NIRJAX_MAX_DEPTH`` (read when nirjax is imported).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from .errors import NirjaxError

__all__ = ["Limits", "limits", "set_limits", "format_bytes"]


class Limits(NamedTuple):
    """The limits in force (see :func:`set_limits`).

    Attributes:
        max_read_bytes: the total size of the arrays one ``.nir`` file may declare
            (default 4 GiB), checked from the declared shapes and dtypes before any data is
            read. A 17 KB file can declare a 149 GiB chunked array that is never stored.
        max_memory_bytes: the memory a compiled graph may need for its state and the values
            of one step (default 8 GiB): checked per sample at compile time, and for the
            batch (plus the inputs and outputs of every step) at ``init_state`` and ``run``.
            The check is an estimate from shapes: XLA may need more for temporaries.
        max_depth: how deeply subgraphs and metadata dicts may nest (default 64), in a file
            or in a ``nir`` object; deeper nesting or a graph that contains itself is an
            error, found before any recursion.
        max_delay_steps: the longest Delay, in steps of ``dt`` (default 10**7, e.g. 1000 s
            at ``dt = 1e-4``); a Delay keeps a ring buffer of that many inputs (its memory is
            also counted in ``max_memory_bytes``). At most 2**31 - 1 (the buffer's int32
            index).
    """

    max_read_bytes: int = 4 << 30
    max_memory_bytes: int = 8 << 30
    max_depth: int = 64
    max_delay_steps: int = 10 ** 7


def _from_env() -> Limits:
    values = {}
    for field, env in (("max_read_bytes", "NIRJAX_MAX_READ_BYTES"),
                       ("max_memory_bytes", "NIRJAX_MAX_MEMORY_BYTES"),
                       ("max_depth", "NIRJAX_MAX_DEPTH"),
                       ("max_delay_steps", "NIRJAX_MAX_DELAY_STEPS")):
        raw = os.environ.get(env)
        if raw:
            try:
                values[field] = int(float(raw))
            except ValueError:
                raise NirjaxError(f"environment variable {env}={raw!r} is not a number") from None
    return Limits()._replace(**values)


_CURRENT = [_from_env()]


def limits() -> Limits:
    """The limits in force."""
    return _CURRENT[0]


class _Restore:
    """The previous limits; as a context manager, restores them on exit."""

    def __init__(self, previous: Limits):
        self.previous = previous

    def _asdict(self) -> dict:
        return self.previous._asdict()

    def __enter__(self) -> Limits:
        return limits()

    def __exit__(self, *exc) -> None:
        _CURRENT[0] = self.previous

    def __repr__(self):
        return f"previous {self.previous!r}"


def set_limits(**values) -> _Restore:
    """Change limits (fields of :class:`Limits`); returns the previous ones.

    Use it as a context manager to change them for one block only. Every value must be a
    positive int.

    Raises:
        NirjaxError: an unknown field or a value that is not a positive int.
    """
    current = limits()
    for key, value in values.items():
        if key not in Limits._fields:
            raise NirjaxError(f"set_limits: unknown limit {key!r}; limits are {', '.join(Limits._fields)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NirjaxError(f"set_limits: {key} must be a positive int, got {value!r}")
        if key == "max_delay_steps" and value > (1 << 31) - 1:
            raise NirjaxError("set_limits: max_delay_steps can be at most 2**31 - 1 (a Delay's "
                              "ring buffer is indexed with int32)")
    _CURRENT[0] = current._replace(**values)
    return _Restore(current)


def format_bytes(n: int) -> str:
    """``n`` bytes in readable units (``"149.0 GiB (160000000000 bytes)"``)."""
    n = int(n)
    for unit, shift in (("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit} ({n} bytes)"
    return f"{n} bytes"
