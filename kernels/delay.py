"""Delay: a per-element ring buffer of whole time steps.

NIR: ``y(t) = x(t - tau)`` with an elementwise delay ``tau``. The compiler rounds each
``tau`` to ``n = floor(tau/dt + 1/2)`` whole steps (round half up) and this kernel computes
``y[t] = x[t - n]`` with ``x[t] = 0`` for ``t < 0``.

A delay whose every element has ``n >= 1`` has no direct feedthrough: its output at step t
depends only on its state, so the compiler emits it before the step's other nodes and lets it
close a cycle without adding a step of latency.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DelayConfig", "DelayState", "delay_init_state", "delay_emit", "delay_absorb", "delay_step"]


class DelayConfig(NamedTuple):
    """Static delay in whole steps, flattened (``steps``) with the node's ``shape``."""

    steps: tuple
    shape: tuple

    @property
    def length(self) -> int:
        """Ring buffer length: the largest delay in steps."""
        return max(self.steps) if self.steps else 0


class DelayState(NamedTuple):
    """``buffer[k]`` holds a past input; ``pos`` is the slot the current input goes to.

    Slot ``(pos - k) % L`` holds ``x[t - k]`` for ``k = 1..L``.
    """

    buffer: jax.Array
    pos: jax.Array


def delay_init_state(cfg: DelayConfig, dtype) -> DelayState:
    """Zero history (``x[t] = 0`` for ``t < 0``)."""
    return DelayState(jnp.zeros((max(cfg.length, 1),) + tuple(cfg.shape), dtype),
                      jnp.zeros((), jnp.int32))


def _read(state: DelayState, cfg: DelayConfig):
    length = max(cfg.length, 1)
    steps = np.asarray(cfg.steps, np.int32).reshape(cfg.shape)
    if steps.size and np.all(steps == steps.reshape(-1)[0]):
        # one delay for every element: read one slot (a slice, elementwise in the neurons,
        # so a buffer split over devices is read where it lives)
        slot = (state.pos - int(steps.reshape(-1)[0])) % length
        return jax.lax.dynamic_index_in_dim(state.buffer, slot, 0, keepdims=False)
    slots = (state.pos - steps) % length
    return jnp.take_along_axis(state.buffer, slots[None], axis=0)[0]


def delay_emit(state: DelayState, cfg: DelayConfig):
    """Output ``x[t - n]`` of a delay whose every ``n >= 1`` (needs no current input)."""
    return _read(state, cfg)


def delay_absorb(state: DelayState, x, cfg: DelayConfig) -> DelayState:
    """Store the current input ``x[t]`` and advance the ring."""
    length = max(cfg.length, 1)
    buffer = jax.lax.dynamic_update_index_in_dim(state.buffer, x.astype(state.buffer.dtype),
                                                 state.pos, 0)
    return DelayState(buffer, (state.pos + 1) % length)


def delay_step(state: DelayState, x, cfg: DelayConfig):
    """One step of a delay that may hold zero-step elements: ``y[t] = x[t - n]``.

    >>> cfg = DelayConfig((0, 2), (2,))
    >>> s = delay_init_state(cfg, jnp.float32)
    >>> ys = []
    >>> for t in range(4):
    ...     s, y = delay_step(s, jnp.array([t + 1.0, t + 1.0]), cfg)
    ...     ys.append(y.tolist())
    >>> ys
    [[1.0, 0.0], [2.0, 0.0], [3.0, 1.0], [4.0, 2.0]]
    """
    if cfg.length == 0:
        return state, x
    y = _read(state, cfg)
    steps = np.asarray(cfg.steps).reshape(cfg.shape)
    y = jnp.where(steps == 0, x, y)
    return delay_absorb(state, x, cfg), y
