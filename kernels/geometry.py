"""Convolution and pooling geometry (pure Python, no JAX): padding and output sizes.

Shared by the conv kernels and by the compiler's shape inference so both agree.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["conv_padding", "conv_output_size", "conv_output_shape"]


def conv_padding(padding, kernel: Sequence[int], dilation: Sequence[int]) -> tuple:
    """Resolve NIR padding into explicit ``(low, high)`` pairs per axis.

    ``'valid'`` is no padding; ``'same'`` pads ``d*(k-1)`` in total, ``floor`` of half before
    and the rest after (PyTorch's rule, which requires stride 1); an int or sequence of
    ints pads symmetrically.

    >>> conv_padding('same', (4,), (1,))
    ((1, 2),)
    >>> conv_padding((1, 2), (3, 3), (1, 1))
    ((1, 1), (2, 2))
    """
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    pads = [int(p) for p in (padding if isinstance(padding, (tuple, list)) else [padding] * nd)]
    return tuple((p, p) for p in pads)


def conv_output_size(size: int, pad: tuple, kernel: int, stride: int, dilation: int) -> int:
    """Output length of one spatial axis: ``floor((n + lo + hi - d*(k-1) - 1)/s) + 1``.

    >>> conv_output_size(34, (1, 1), 5, 2, 1)
    16
    """
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def conv_output_shape(spatial, padding, kernel, stride, dilation) -> tuple:
    """Output spatial shape of a convolution (``padding`` as NIR gives it).

    >>> conv_output_shape((34, 34), (1, 1), (5, 5), (2, 2), (1, 1))
    (16, 16)
    """
    pads = conv_padding(padding, kernel, dilation)
    return tuple(
        conv_output_size(n, p, k, s, d)
        for n, p, k, s, d in zip(spatial, pads, kernel, stride, dilation)
    )
