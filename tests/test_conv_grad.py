"""The convolution kernel's hand-written weight gradient against JAX's own conv rule.

``kernels.conv`` computes channels-last with a custom VJP (weight gradient as one contraction
per kernel offset), and runs a strided convolution with few input channels as a stride-1
convolution of the space-to-depth rearranged input. The oracle is ``jax.grad`` through a
plain NCHW ``lax.conv_general_dilated`` in float64, which shares no code with the kernel.
Both entry points are checked: ``conv`` (one channels-first sample, vmapped) and
``conv_last`` (a batch of channels-last samples, the staged program's form).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from nirjax.kernels.conv import ConvConfig, ConvParams, _use_space_to_depth, conv, conv_last

CASES = [
    # (C_in, C_out, spatial, kernel, stride, padding, dilation, groups)
    (3, 4, (9, 8), (3, 2), (1, 1), ((1, 1), (0, 1)), (1, 1), 1),
    (4, 6, (11, 10), (3, 3), (2, 3), ((2, 1), (1, 1)), (2, 1), 2),
    (2, 4, (7, 7), (5, 5), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
    (6, 6, (8, 9), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 2), 6),
    (3, 2, (13,), (4,), (3,), ((2, 0),), (2,), 1),
    # space-to-depth: non-square stride, kernel not a multiple of it, asymmetric padding
    (2, 3, (9, 11), (3, 4), (2, 3), ((1, 0), (2, 1)), (1, 1), 1),
    (3, 2, (13,), (5,), (3,), ((2, 1),), (1,), 1),
    (1, 4, (8, 8), (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), 1),
]
SPACE_TO_DEPTH = [i for i, c in enumerate(CASES)
                  if _use_space_to_depth(c[0], ConvConfig(c[4], c[5], c[6], c[7]))]


def test_space_to_depth_cases_exist():
    assert len(SPACE_TO_DEPTH) >= 4  # the paper CNN's first layer and the three above


@pytest.mark.parametrize("last", [False, True], ids=["conv", "conv_last"])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv_gradients_match_jax_rule(case, last):
    jax.config.update("jax_enable_x64", True)
    try:
        c_in, c_out, spatial, kernel, stride, padding, dilation, groups = case
        rng = np.random.default_rng(len(spatial) * 100 + c_in)
        x = jnp.asarray(rng.normal(size=(5, c_in) + spatial))
        w = jnp.asarray(rng.normal(size=(c_out, c_in // groups) + kernel))
        b = jnp.asarray(rng.normal(size=(c_out,)))
        cfg = ConvConfig(stride, padding, dilation, groups)
        nd = len(spatial)
        dn = ("NC" + "HW"[:nd], "OI" + "HW"[:nd], "NC" + "HW"[:nd])

        def ours(w, b, x):
            if last:
                y = jnp.moveaxis(conv_last(ConvParams(w, b), jnp.moveaxis(x, 1, -1), cfg), -1, 1)
            else:
                y = jax.vmap(lambda xi: conv(ConvParams(w, b), xi, cfg))(x)
            return jnp.sum(jnp.sin(y))

        def oracle(w, b, x):
            y = lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                         dimension_numbers=dn, feature_group_count=groups,
                                         precision="highest")
            return jnp.sum(jnp.sin(y + b.reshape((1, -1) + (1,) * nd)))

        assert x.dtype == jnp.float64
        np.testing.assert_allclose(ours(w, b, x), oracle(w, b, x), rtol=1e-12)
        got = jax.grad(ours, argnums=(0, 1, 2))(w, b, x)
        want = jax.grad(oracle, argnums=(0, 1, 2))(w, b, x)
        for name, g, h in zip(("weight", "bias", "input"), got, want):
            assert g.shape == h.shape, name
            np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-10, err_msg=name)
    finally:
        jax.config.update("jax_enable_x64", False)
