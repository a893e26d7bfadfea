"""Parameter transforms for quantization-aware training: a generic ``bits``-bit grid
(:func:`fake_quantize`) and a chip target's own quantization (:func:`hardware_aware`)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler import CompiledGraph
from ..errors import InputError, ParameterError

__all__ = ["fake_quantize", "hardware_aware"]


def fake_quantize(m, bits: int = 8) -> Callable:
    """A parameter transform rounding the selected parameters to ``bits``-bit grids.

    Each selected field gets a symmetric uniform grid with step
    ``max|p| / (2**(bits-1) - 1)`` (one scale per node and field, as an int8 weight memory
    with a per-layer exponent stores it). The forward pass sees the rounded values; the
    gradient passes straight through the rounding (``p + stop_gradient(q(p) - p)``), the
    usual quantization-aware training. Use as ``Trainer(..., transform=fake_quantize(mask))``
    and export ``transform(params)`` so the written graph holds the rounded values.

    Args:
        m: a mask (from :func:`mask`) selecting the fields to quantize.
        bits: bits per value, including the sign.
    """
    if not (isinstance(bits, int) and bits >= 2):
        raise ParameterError(f"fake_quantize: bits must be an int >= 2, got {bits!r}")
    levels = 2 ** (bits - 1) - 1

    def quantize(p):
        s = jnp.max(jnp.abs(p)) / levels
        s = jnp.where(s > 0, s, 1.0)
        q = jnp.round(p / s) * s
        return p + jax.lax.stop_gradient(q - p)

    def transform(params):
        return jax.tree_util.tree_map(
            lambda sel, p: quantize(p) if bool(np.all(sel)) else p, m, params)

    return transform


def hardware_aware(model, target: str, **options) -> Callable:
    """A parameter transform putting a chip target's quantization in the forward pass.

    The transform maps float parameters to the float values the chip represents (rounded
    weights on the layer's grid, time constants the chip's decays can express, thresholds
    and biases on the chip's grid), with straight-through gradients through every rounding,
    so that ``Trainer(model, loss, opt, transform=hardware_aware(model, "xylo-audio2"))``
    fine-tunes the float graph until the chip reproduces it. Lower the transformed
    parameters: ``nirjax.lower(model, target, params=transform(params))`` gives the chip
    the integers the transform rounded to.

    Compile ``model`` with the target's float semantics for the closest match
    (``nirjax.lowering.TARGETS[target].semantics(graph)``, e.g. Xylo's ``xylo-float``).

    Args:
        model: the float :class:`~nirjax.CompiledGraph` to fine-tune.
        target: a target name (see :data:`nirjax.lowering.TARGETS`) whose lowering has a
            fine-tuning transform (``fake_quant``).
        **options: the target's lowering options that change its quantization (e.g.
            ``gains`` for Xylo).

    Returns:
        ``transform(params) -> params``.

    Raises:
        LoweringError: unknown target, a target without a fine-tuning transform, or a graph
            the target cannot run (every violation listed).

    >>> import nirjax
    >>> from nirjax import train
    >>> model = nirjax.compile(nirjax.example_path("braille_bias_zero"), dt=1e-4)  # doctest: +SKIP
    >>> transform = train.hardware_aware(model, "xylo-audio2")                    # doctest: +SKIP
    """
    from ..errors import LoweringError
    from ..lowering import get_target

    if not isinstance(model, CompiledGraph):
        raise InputError(f"hardware_aware: model must be a nirjax.CompiledGraph, got "
                         f"{type(model).__name__}")
    tgt = get_target(target)
    if tgt.fake_quant is None:
        raise LoweringError(f"target {tgt.name!r} has no fine-tuning transform (its lowering "
                            f"registers no fake_quant)")
    unknown = sorted(set(options) - set(tgt.options))
    if unknown:
        raise LoweringError(f"target {tgt.name!r} has no option(s) {', '.join(unknown)}; its "
                            f"options: {', '.join(tgt.options) or 'none'}")
    return tgt.fake_quant(model.program, dict(options))
