"""Loihi 2 integer kernels: Lava 0.10's bit-accurate (``fixed_pt``) synapse and CUBA neuron.

These are the updates Lava's CPU models compute when a network runs with
``Loihi2SimCfg(select_tag="fixed_pt")``, the models lava-dl netx builds from an HDF5 file:

* ``PyDenseModelBitAcc`` / ``PyDelayDenseModelBitAcc`` (lava-nc 0.10.0,
  ``lava/proc/dense/models.py``): the integer sum of the weights of the active inputs, shifted
  by ``weight_exp``, sent one step later (and ``d`` further steps for a synapse delay ``d``);
* ``PyLifModelBitAcc`` (``lava/proc/lif/models.py``): the CUBA neuron with 24-bit current and
  voltage, 12-bit decays, a 6-bit left-aligned input, bias and threshold;
* ``PyConvModelFixed`` (``lava/proc/conv/models.py``): the integer correlation of the active
  inputs with the kernel, clamped to signed 24 bits, sent one step later.

Latency is not part of these kernels: a synapse's output here is what Lava's synapse sends on
the *next* step, and the graph pass that inserts one step of delay per weight layer (the one
the ``lava`` profiles use, ``latency="weights"``) supplies it. So the kernels compose as
``a[t] = dense(W, s[t - 1])`` with ``u, v, s = cuba(a[t])``.

The NIR paper's fixed-point importer (``paper/nir_to_lava.py`` with ``fixed_pt=True``, the
``lava_fixed`` profile) is a special case of the same two kernels: its LIF is a dense synapse
with the single weight ``int(256*dt/tau)`` on binary events in front of the CUBA neuron with
``du = 4095`` (:func:`importer_lif_params`, :func:`importer_lif_step`), and its Dense is
:func:`dense` on graded values with ``weight_exp = 0`` (:func:`importer_dense_params`).

Every function works on one unbatched sample and int32 arrays; none is differentiable.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "STATE_BITS", "DECAY_BITS", "STATE_SHIFT", "MAX_DELAY",
    "DenseParams", "dense",
    "DelayDenseParams", "DelayDenseState", "delay_dense_init_state", "delay_dense_step",
    "ConvParams", "conv",
    "CubaParams", "CubaState", "cuba_init_state", "cuba_step",
    "decay", "shift", "wrap_state",
    "ImporterLifParams", "importer_lif_params", "importer_lif_step", "importer_dense_params",
]

STATE_BITS = 24
"""Width of the neuron's current ``u`` and voltage ``v`` (signed)."""
DECAY_BITS = 12
"""Decays are fractions ``d / 2**12``."""
STATE_SHIFT = 6
"""Input, bias (in netx) and threshold are left-aligned by 6 bits into the 24-bit state."""
MAX_DELAY = 62
"""Largest synaptic delay netx keeps (``lava/lib/dl/netx/hdf5.py`` clamps larger ones)."""

_HALF = 2 ** (STATE_BITS - 1)


def shift(x, exponent):
    """``x * 2**exponent`` as Lava computes it: ``x << e`` for ``e > 0``, else the arithmetic
    right shift ``x >> -e`` (floor division by ``2**-e``).

    >>> import jax.numpy as jnp
    >>> shift(jnp.array([-3, 3]), -1).tolist(), shift(jnp.array([3]), 2).tolist()
    ([-2, 1], [12])
    """
    exponent = jnp.asarray(exponent, jnp.int32)
    return jnp.where(exponent > 0, jnp.left_shift(x, jnp.maximum(exponent, 0)),
                     jnp.right_shift(x, jnp.maximum(-exponent, 0)))


def decay(x, d):
    """``trunc0(x * (4096 - d) / 4096)``: Lava's decay, rounding toward zero.

    Lava computes ``sign(x) * ((|x| * (4096 - d)) >> 12)`` in int64; this splits ``|x|`` into
    ``q * 4096 + r`` so that the same value comes out in int32 for ``|x| < 2**31`` and
    ``0 <= d <= 4096``.

    >>> import jax.numpy as jnp
    >>> decay(jnp.array([-4096, 100, 7]), 2048).tolist()
    [-2048, 50, 3]
    """
    m = 4096 - d
    ax = jnp.abs(x)
    mag = (ax >> DECAY_BITS) * m + (((ax & 4095) * m) >> DECAY_BITS)
    return jnp.sign(x) * mag


def wrap_state(u):
    """Lava's one-period wrap of the current into 24 bits: ``u - 2**24`` where ``u > 2**23``,
    ``u + 2**24`` where ``u <= -2**23`` (``u = 2**23`` stays; a value more than one period out
    of range stays out of range, as in Lava).

    >>> import jax.numpy as jnp
    >>> wrap_state(jnp.array([2**23, 2**23 + 1, -2**23])).tolist()
    [8388608, -8388607, 8388608]
    """
    u = jnp.where(u > _HALF, u - 2 * _HALF, u)
    return jnp.where(u <= -_HALF, u + 2 * _HALF, u)


# ----------------------------------------------------------------------------- synapses


class DenseParams(NamedTuple):
    """A Lava ``Dense`` as its bit-accurate model holds it.

    Attributes:
        weight: int32 ``[n_out, n_in]``, after Lava's clipping and truncation (netx:
            the file's weight shifted left by ``-weight_exp``).
        weight_exp: int32 scalar, the shared weight exponent.
    """

    weight: jax.Array
    weight_exp: jax.Array


def dense(params: DenseParams, s, num_message_bits: int = 0):
    r"""Lava's bit-accurate Dense accumulation (``PyDenseModelBitAcc.run_spk``), latency aside.

    NIR: Linear/Affine ``y = W x``. Lava, with unary (1-bit) input spikes
    (``num_message_bits = 0``, what netx builds: any nonzero input is one spike)::

        a = shift(W @ [s != 0], weight_exp)      (int32; shift: << e, or >> -e = floor)

    and with graded spikes (``num_message_bits > 0``) ``a = shift(W @ s, weight_exp)``, the
    payloads taken as they are. Lava sends ``a`` computed at step t on step t + 1; that step
    of latency is the graph pass's.

    >>> import jax.numpy as jnp
    >>> p = DenseParams(jnp.array([[64, -128]], jnp.int32), jnp.int32(-6))
    >>> dense(p, jnp.array([1, 1])).tolist(), dense(p, jnp.array([2, 1]), 24).tolist()
    ([-1], [0])
    """
    if num_message_bits > 0:
        active = jnp.asarray(s).astype(jnp.int32)
    else:
        active = (s != 0).astype(jnp.int32)
    acc = jnp.matmul(params.weight, active, preferred_element_type=jnp.int32)
    return shift(acc, params.weight_exp)


class DelayDenseParams(NamedTuple):
    """A Lava ``DelayDense``: weights split by synaptic delay.

    Attributes:
        weight_by_delay: int32 ``[len(delays), n_out, n_in]``; slice ``k`` holds the weights
            whose delay is ``delays[k]`` (zero elsewhere).
        weight_exp: int32 scalar.
        delays: int32 ``[K]``, the distinct delays in steps (``0 <= d <= 62``).
    """

    weight_by_delay: jax.Array
    weight_exp: jax.Array
    delays: jax.Array


class DelayDenseState(NamedTuple):
    """``buffer[k]``: the accumulated input that arrives ``k + 1`` steps from now."""

    buffer: jax.Array


def delay_dense_init_state(params: DelayDenseParams, max_delay: int) -> DelayDenseState:
    """Empty buffer of ``max_delay`` future steps (``max_delay >= 1``; 1 when all delays are 0)."""
    n_out = params.weight_by_delay.shape[1]
    return DelayDenseState(jnp.zeros((max(int(max_delay), 1), n_out), jnp.int32))


def delay_dense_step(params: DelayDenseParams, state: DelayDenseState, s):
    r"""Lava's bit-accurate DelayDense (``PyDelayDenseModelBitAcc.run_spk``), latency aside.

    NIR: Linear/Affine whose synapse ``(i, j)`` delays by ``d_ij`` whole steps. Integers::

        acc_k = shift(W_k @ [s != 0], weight_exp)      for each delay d_k (W_k: weights with d_k)
        a[t]  = sum_k acc_k[t - d_k]

    Lava sends ``a[t]`` on step t + 1 (the graph pass's latency), so synapse ``(i, j)``
    delivers ``d_ij + 1`` steps after the spike. ``state.buffer`` must have at least
    ``max(delays)`` rows.

    >>> import jax.numpy as jnp
    >>> p = DelayDenseParams(jnp.array([[[1]], [[2]]], jnp.int32), jnp.int32(0),
    ...                      jnp.array([0, 2], jnp.int32))
    >>> st = delay_dense_init_state(p, 2)
    >>> out = []
    >>> for x in ([1], [0], [0], [0]):
    ...     st, a = delay_dense_step(p, st, jnp.array(x))
    ...     out.append(int(a[0]))
    >>> out
    [1, 0, 2, 0]
    """
    active = (s != 0).astype(jnp.int32)
    acc = jnp.einsum("koi,i->ko", params.weight_by_delay, active,
                     preferred_element_type=jnp.int32)
    acc = shift(acc, params.weight_exp)
    now = jnp.sum(jnp.where((params.delays == 0)[:, None], acc, 0), axis=0)
    out = now + state.buffer[0]
    # future[j] (arriving j + 1 steps from now) gets the slices with delay j + 1
    future = jnp.concatenate([state.buffer[1:], jnp.zeros_like(state.buffer[:1])])
    rows = jnp.arange(state.buffer.shape[0])[:, None] + 1
    hit = (params.delays[None, :] == rows).astype(jnp.int32)  # [L, K]
    future = future + jnp.matmul(hit, acc, preferred_element_type=jnp.int32)
    return DelayDenseState(future), out


class ConvParams(NamedTuple):
    """A Lava ``Conv`` (fixed point) in NIR's layout.

    Attributes:
        weight: int32 ``[C_out, C_in // groups, kH, kW]`` (correlation, as NIR Conv2d).
        stride, padding, dilation: ``(h, w)`` pairs (static Python ints).
        groups: int.
    """

    weight: jax.Array
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int


def conv(params: ConvParams, s):
    r"""Lava's fixed-point Conv (``PyConvModelFixed.run_spk``), latency aside.

    NIR: Conv2d ``y = W * x`` (correlation, zero padding); Lava with unary input spikes::

        a = clamp(correlate(W, [s != 0]), -2**23, 2**23 - 1)     (int32)

    on ``s`` of shape ``[C_in, H, W]`` (NIR's layout; Lava's own is ``[W, H, C]``). Lava's conv
    has no weight exponent (the process' ``weight_exp`` is never applied) and computes the
    sum in float32 (exact while ``|a| < 2**24``). Sent one step later (the graph pass's).

    >>> import jax.numpy as jnp
    >>> p = ConvParams(jnp.ones((1, 1, 2, 2), jnp.int32), (1, 1), (0, 0), (1, 1), 1)
    >>> conv(p, jnp.ones((1, 2, 3))).tolist()
    [[[4, 4]]]
    """
    active = (s != 0).astype(jnp.int32)[None]
    pad = [(int(p), int(p)) for p in params.padding]
    acc = jax.lax.conv_general_dilated(
        active, params.weight, window_strides=tuple(int(v) for v in params.stride),
        padding=pad, rhs_dilation=tuple(int(v) for v in params.dilation),
        feature_group_count=int(params.groups), preferred_element_type=jnp.int32)[0]
    return jnp.clip(acc, -_HALF, _HALF - 1)


# ----------------------------------------------------------------------------- neuron


class CubaParams(NamedTuple):
    """Lava's LIF process, fixed point (netx's CUBA neuron).

    Attributes:
        du: current decay constant as Lava holds it (netx: ``iDecay - 1``); the current keeps
            ``(4096 - (du + 1)) / 4096`` per step. Scalar or per neuron.
        dv: voltage decay (netx: ``vDecay``); the voltage keeps ``(4096 - dv) / 4096``.
        vth: threshold mantissa (netx: ``vThMant``); the test is ``v > vth << 6``.
        bias_mant: bias mantissa per neuron (netx: ``bias``).
        bias_exp: bias exponent (netx: 6).
    """

    du: jax.Array
    dv: jax.Array
    vth: jax.Array
    bias_mant: jax.Array
    bias_exp: jax.Array


class CubaState(NamedTuple):
    """Integer current ``u`` and voltage ``v`` (24-bit values in int32)."""

    u: jax.Array
    v: jax.Array


def cuba_init_state(params: CubaParams, shape) -> CubaState:
    """``u = v = 0`` (Lava's LIF default)."""
    zero = jnp.zeros(shape, jnp.int32)
    return CubaState(zero, zero)


def cuba_step(params: CubaParams, state: CubaState, a):
    r"""One step of Lava's bit-accurate LIF (``PyLifModelBitAcc``, the model of Loihi 2).

    NIR: CubaLIF ``tau_syn I' = -I + w_in x``, ``tau_mem v' = v_leak - v + r I`` (LIF: the
    current has no memory, ``du + 1 = 4096``; IF: also ``dv = 0``), with everything folded
    into integer weights, bias and threshold. Integer update (``a``: this step's synaptic
    input; ``trunc0``: rounding toward zero)::

        u = wrap24(trunc0(u * (4096 - (du + 1)) / 4096) + (a << 6))
        v = clip(trunc0(v * (4096 - dv) / 4096) + u + shift(bias_mant, bias_exp),
                 -(2**23 - 1), 2**23 - 1)
        s = v > (vth << 6)                     (strict)
        v = 0 where s                          (u is not reset; no refractory period)

    ``wrap24`` is :func:`wrap_state`. Output ``s`` as int32 0/1 (Lava's LIF sends binary
    spikes; netx's ``gradedSpike`` is not read).

    >>> import jax.numpy as jnp
    >>> p = CubaParams(jnp.int32(4095), jnp.int32(0), jnp.int32(2), jnp.zeros(1, jnp.int32),
    ...                jnp.int32(6))
    >>> st = cuba_init_state(p, (1,))
    >>> st, s = cuba_step(p, st, jnp.array([3]))
    >>> int(st.v[0]), int(s[0])
    (0, 1)
    """
    a = jnp.asarray(a, jnp.int32)
    u = wrap_state(decay(state.u, params.du + 1) + jnp.left_shift(a, STATE_SHIFT))
    bias = shift(jnp.asarray(params.bias_mant, jnp.int32), params.bias_exp)
    v = jnp.clip(decay(state.v, params.dv) + u + bias, -_HALF + 1, _HALF - 1)
    s = v > jnp.left_shift(jnp.asarray(params.vth, jnp.int32), STATE_SHIFT)
    v = jnp.where(s, 0, v)
    return CubaState(u.astype(jnp.int32), v.astype(jnp.int32)), s.astype(jnp.int32)


# ----------------------------------------------------------------------------- the NIR paper's importer


class ImporterLifParams(NamedTuple):
    """A LIF as the NIR paper's fixed-point importer builds it: ``Dense(w) -> LIF``.

    Attributes:
        w: the input weight of the LIF's own Dense (one per neuron), int32.
        neuron: the CUBA neuron's :class:`CubaParams`.
    """

    w: jax.Array
    neuron: CubaParams


def importer_lif_params(tau, v_threshold, dt) -> ImporterLifParams:
    """The fixed-point conversion of ``paper/nir_to_lava.py`` (``fixed_pt=True``) of a LIF.

    With ``k = dt / tau`` and ``int`` truncating the (positive) values::

        w = int(256 k);  dv = int(4095 k);  du = 4095;  vth = int(131071 v_threshold) >> 9

    no bias (``bias_mant = 0``, ``bias_exp = 6``). ``du + 1 = 4096``: the current keeps nothing
    of its past, ``u = a << 6``.

    >>> import jax.numpy as jnp
    >>> p = importer_lif_params(jnp.array([2.5e-3]), jnp.array([0.1]), 1e-4)
    >>> int(p.w[0]), int(p.neuron.dv[0]), int(p.neuron.vth[0])
    (10, 163, 25)
    """
    k = dt / tau
    as_int = lambda a: jnp.floor(a).astype(jnp.int32)  # int() of positive values
    w = as_int(k * 256.0)
    dv = as_int(k * 4095.0)
    vth = jnp.right_shift(as_int(v_threshold * 131071.0), 9)
    neuron = CubaParams(du=jnp.full_like(dv, 4095), dv=dv, vth=vth,
                        bias_mant=jnp.zeros_like(dv), bias_exp=jnp.int32(STATE_SHIFT))
    return ImporterLifParams(w, neuron)


def importer_lif_step(params: ImporterLifParams, state: CubaState, x):
    r"""One step of the importer's LIF: its Dense on binary events, then :func:`cuba_step`.

    NIR: LIF ``tau v' = (v_leak - v) + r x`` (the importer reads ``tau`` and ``v_threshold``
    only). Integers: ``a = w * [x != 0]`` (the LIF's Dense sees events; the ``lava_fixed``
    profile adds no step of latency here, which reproduces ``lif_lava_cpu_fixed.csv``), then
    the CUBA update of :func:`cuba_step` with ``du = 4095``, ``bias = 0``. Output 0/1 as int32.

    >>> import jax.numpy as jnp
    >>> p = importer_lif_params(jnp.array([1e-4]), jnp.array([0.1]), 1e-4)
    >>> state = cuba_init_state(p.neuron, (1,))
    >>> state, s = importer_lif_step(p, state, jnp.array([1]))
    >>> int(state.u[0]), int(s[0])
    (16384, 1)
    """
    a = jnp.where(x != 0, params.w, 0).astype(jnp.int32)
    return cuba_step(params.neuron, state, a)


def importer_dense_params(weight) -> DenseParams:
    """The importer's fixed-point Dense: ``int(256*weight)`` truncated toward zero, exponent 0
    (used with graded input: :func:`dense` with ``num_message_bits > 0``).

    >>> import jax.numpy as jnp
    >>> importer_dense_params(jnp.array([[0.5, -0.3]])).weight.tolist()
    [[128, -76]]
    """
    return DenseParams((jnp.asarray(weight) * 256.0).astype(jnp.int32), jnp.int32(0))
