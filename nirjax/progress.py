"""Progress of long loops: steps done, rate and time left, on a terminal only.

The rule, the same for ``nirjax run`` and :func:`nirjax.train.fit`: progress is shown when
standard error is a terminal, and nothing is written when it is piped or redirected, or when
the caller asks for quiet (``--quiet``, ``progress=False``). ``progress=True`` forces it on
(one line per update instead of a line redrawn in place).

:func:`run` simulates a compiled graph in segments of time steps, carrying the state from one
segment to the next, so that a long simulation can report progress; the result equals one
call of ``model.run`` on the whole input.

>>> import io
>>> out = io.StringIO()
>>> bar = Progress(100, unit="steps", label="run", enabled=True, stream=out, clock=iter(range(9)).__next__)
>>> bar.update(40); bar.update(60); bar.close()
>>> print(out.getvalue().splitlines()[-1])
run: 100/100 steps (100%), 60 steps/s, done in 2.0 s
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable

__all__ = ["Progress", "enabled", "run"]


def enabled(progress: bool | None = None, stream=None) -> bool:
    """Whether to show progress: ``progress`` if given, else whether ``stream`` (default
    ``sys.stderr``) is a terminal.

    Args:
        progress: ``True`` / ``False`` to force it on / off; ``None`` for the terminal rule.
        stream: the stream progress would be written to.

    Returns:
        ``True`` when progress should be written.
    """
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """A progress line: ``label: done/total unit (pct), rate unit/s, time left``.

    The rate is measured from the first update on (the first update of a jitted loop
    includes compilation, which would make the time left too long); before the second update
    it is measured from the start.

    Args:
        total: the number of units to do, or ``None`` when unknown (no percentage, no time
            left).
        unit: the name of a unit (``"steps"``).
        label: the text before the counts.
        enabled: see :func:`enabled`.
        stream: where to write (default ``sys.stderr``).
        clock: a function returning seconds (default ``time.perf_counter``).
        min_interval: on a terminal, redraw at most this often (seconds); the last update is
            always drawn.
    """

    def __init__(self, total: int | None, unit: str = "steps", label: str = "", *,
                 enabled: bool | None = None, stream=None,
                 clock: Callable[[], float] | None = None, min_interval: float = 0.1):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = globals()["enabled"](enabled, self.stream)
        self.tty = self.enabled and globals()["enabled"](None, self.stream)
        self.total = total
        self.unit = unit
        self.label = label
        self.done = 0
        self._clock = clock or time.perf_counter
        self._min_interval = min_interval
        self._start = self._clock()
        self._first: tuple[float, int] | None = None
        self._last_draw = -math.inf
        self._width = 0
        self.extra = ""

    def rate(self, now: float | None = None) -> float:
        """Units per second so far (see the class docstring)."""
        now = self._clock() if now is None else now
        if self._first is not None and self.done > self._first[1] and now > self._first[0]:
            return (self.done - self._first[1]) / (now - self._first[0])
        elapsed = now - self._start
        return self.done / elapsed if elapsed > 0 else math.inf

    def line(self, now: float | None = None) -> str:
        """The progress text for the current count."""
        now = self._clock() if now is None else now
        rate = self.rate(now)
        head = f"{self.label}: " if self.label else ""
        if self.total:
            pct = 100.0 * self.done / self.total
            text = f"{head}{self.done}/{self.total} {self.unit} ({pct:.0f}%)"
        else:
            text = f"{head}{self.done} {self.unit}"
        if math.isfinite(rate):
            text += f", {rate:,.0f} {self.unit}/s"
        if self.total:
            if self.done >= self.total:
                text += f", done in {_duration(now - self._start)}"
            elif rate > 0 and math.isfinite(rate):
                text += f", {_duration((self.total - self.done) / rate)} left"
        if self.extra:
            text += f", {self.extra}"
        return text

    def update(self, n: int = 1, extra: str | None = None) -> None:
        """Add ``n`` units done; ``extra`` replaces the text appended to the line (e.g. a loss)."""
        now = self._clock()
        self.done += n
        if extra is not None:
            self.extra = extra
        if self._first is None:
            self._first = (now, self.done)
        if not self.enabled:
            return
        last = self.total is not None and self.done >= self.total
        if not last and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        self._draw(self.line(now))

    def _draw(self, text: str) -> None:
        if self.tty:
            pad = max(self._width - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the line (on a terminal, the line redrawn in place is kept)."""
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _slice(tree, start, stop):
    if isinstance(tree, dict):
        return {k: v[start:stop] for k, v in tree.items()}
    return tree[start:stop]


def _steps(xs) -> tuple[int, int]:
    first = next(iter(xs.values())) if isinstance(xs, dict) else xs
    return int(first.shape[0]), int(first.shape[1])


def run(model, params, xs, state=None, record=None, *, segment: int | None = None,
        progress: bool | None = None, stream=None, label: str = "run") -> tuple[Any, Any, dict]:
    """``model.run`` in segments of time steps, showing progress on a terminal.

    The state at the end of one segment is the initial state of the next, so the outputs and
    records equal those of one ``model.run(params, xs, state, record=record)`` call (the
    tests check this bit for bit). Each distinct segment length is compiled once: at most
    two (the segment and the tail).

    Args:
        model: a :class:`nirjax.CompiledGraph`.
        params: its parameters (e.g. ``model.params``).
        xs: the inputs ``[T, B, *input_shape]`` (or a dict of them).
        state: the initial state (default ``model.init_state(B)``).
        record: as for ``model.run``.
        segment: steps per segment (default: about 1/20 of the run, at least 1; the whole
            run in one call when progress is not shown).
        progress: see :func:`enabled`.
        stream: where progress goes (default ``sys.stderr``).
        label: the progress line's label.

    Returns:
        ``(ys, state, rec)``: outputs ``[T, B, ...]`` as NumPy arrays (a dict for several
        outputs), the final state, and the records (an empty dict without ``record``).
    """
    import jax
    import numpy as np

    steps, batch = _steps(xs)
    if steps < 1:
        from .errors import InputError

        raise InputError(f"the inputs have {steps} time steps; at least one is needed")
    show = enabled(progress, stream)
    if state is None:
        state = model.init_state(batch)
    if segment is None:
        segment = max(1, -(-steps // 20)) if show else max(steps, 1)
    segment = max(1, int(segment))
    bar = Progress(steps, "steps", label, enabled=show, stream=stream)
    ys_parts, rec_parts = [], []
    with bar:
        for start in range(0, steps, segment):
            stop = min(start + segment, steps)
            part = _slice(xs, start, stop)
            if record is None:
                ys, state = model.run(params, part, state)
                rec = {}
            else:
                ys, state, rec = model.run(params, part, state, record=record)
            jax.block_until_ready(ys)
            ys_parts.append(jax.tree_util.tree_map(np.asarray, ys))
            rec_parts.append({k: np.asarray(v) for k, v in rec.items()})
            bar.update(stop - start)
    cat = lambda *a: np.concatenate(a, axis=0)
    ys = jax.tree_util.tree_map(cat, *ys_parts)
    rec = {k: cat(*(r[k] for r in rec_parts)) for k in rec_parts[0]}
    return ys, state, rec
