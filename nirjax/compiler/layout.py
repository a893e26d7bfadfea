"""Layout pass: which values of the staged program are kept channels-last.

NIR shapes are channels-first: a Conv2d value is ``(C, H, W)``. XLA:CPU convolves and pools
channels-last ``(H, W, C)`` several times faster (a channels-first convolution inside a loop
takes a slow generic path, and a channels-first 2x2 sum pool reduces along the short
innermost axis), so the convolution kernel computes channels-last and, run on its own,
transposes its input and output. Between the layers of a convolution stack those transposes
cost as much as the convolutions. This pass keeps whole stretches of a convolution stack
channels-last instead:

* a node whose rule has a channels-last kernel (``Rule.apply_last``: Conv1d, Conv2d, the
  pools) computes channels-last when it is a stage of its own (a ``map`` stage);
* an elementwise node (``Rule.elementwise``: neurons, Scale, Threshold) with the same input
  and output shape computes channels-last when it is a stage of its own, not on a cycle,
  and one of its inputs is channels-last; its coefficients and state are permuted the same
  way (the update of every element is unchanged);
* every other node (Flatten, Affine, Output, members of cycles, ...) sees channels-first
  values, and a value is transposed where a consumer needs the other layout.

Only the layout changes, never an arithmetic operation, so the staged program computes the
same numbers as with every value channels-first. The state a user passes in and gets back,
the outputs and the records stay channels-first: the state is permuted at the start and at
the end of a run, records and outputs where they are read.

Shapes here are NIR (unbatched) shapes; values in the staged program carry two leading axes
``[K, B, ...]`` (steps of a chunk, batch), states one ``[B, ...]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["channels_last", "to_last", "to_first", "coeffs_to_last"]


def channels_last(program, stages) -> frozenset:
    """Names of the nodes whose values the staged program keeps channels-last.

    Args:
        program: the :class:`~nirjax.compiler.Program`.
        stages: its stages (:func:`nirjax.compiler.schedule.schedule`).
    """
    stage_of = {m: s for s in stages for m in s.members}
    self_loops = {e.src for e in program.edges if e.src == e.dst}
    last: set = set()
    for n in program.nodes:  # program order: sources before their (undelayed) consumers
        stage = stage_of[n.name]
        if (len(n.out_shape) < 2 or len(stage.members) != 1 or n.name in self_loops
                or any(e.delayed for e in program.incoming(n.name))):
            continue
        if n.rule.apply_last is not None and stage.kind == "map":
            last.add(n.name)
        elif (n.rule.elementwise and tuple(n.in_shape) == tuple(n.out_shape)
              and any(e.src in last for e in program.incoming(n.name))):
            last.add(n.name)
    return frozenset(last)


def to_last(x, lead: int):
    """Move the channel axis (the first after ``lead`` leading axes) to the end."""
    return jnp.moveaxis(x, lead, -1)


def to_first(x, lead: int):
    """Move the last (channel) axis back behind the ``lead`` leading axes."""
    return jnp.moveaxis(x, -1, lead)


def coeffs_to_last(coeffs, shape: tuple):
    """An elementwise node's coefficients for its channels-last value of NIR ``shape``.

    A coefficient broadcasts against ``shape`` (NumPy rules); one of lower rank is first
    broadcast to the full shape (its axes line up with the trailing axes of ``shape``, which
    the permutation moves), a scalar stays as it is.
    """
    def permute(a):
        a = jnp.asarray(a)
        if a.ndim == 0:
            return a
        if a.ndim < len(shape):
            a = jnp.broadcast_to(a, shape)
        return jnp.moveaxis(a, 0, -1)

    return jax.tree_util.tree_map(permute, coeffs)
