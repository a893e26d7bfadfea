r"""Xylo integer kernels: the arithmetic of SynSense Xylo (Audio 2, Audio 3, IMU), bit-exact.

Pure int32 JAX functions written for ONE unbatched sample (every one also broadcasts over
leading batch dimensions of the states and counts), reproducing ``xylosim`` 0.1.3's ``v2`` core (``src/v2/cpp/XyloIAFNeuron.cpp`` and
``XyloLayer.cpp``), which Rockpool 3.1.0's ``XyloSim`` runs for all three chips
(``syns61201`` Audio 2, ``syns63300`` IMU, and Audio 3, whose ``syns65302`` package re-exports
the IMU ``XyloSim``). Every quantity is an integer; the 16-bit state saturates.

The chip's network is fixed: ``Nin`` input channels -> ``Nhid`` hidden neurons (each with one
or two synaptic currents, optional recurrent weights) -> ``Nout`` readout neurons (one
synaptic current). One time step, in xylosim's order (``XyloLayer::evolve``):

1. **Input events.** For each input channel ``c`` in index order, its event count is cut to
   ``min(n_c, 15)`` and every event adds ``w = wrap16(w_in[c, j, s] << weight_shift_in)`` to
   ``i_syn[j, s]`` of each target, one event at a time, each addition saturating:
   ``i = sat16(i + w)``. Because every event saturates on its own, ``sat16(i + W·n)`` (a
   matrix product then one clip) is NOT the chip's result once anything saturates.
2. **Recurrent events.** The hidden spike counts of the PREVIOUS step (at most 31 per neuron)
   are delivered the same way, pre-neuron by pre-neuron in index order, with ``w_rec`` and
   ``weight_shift_rec``, after all input events.
3. **Readout events.** The same previous-step hidden counts are delivered to the readout's
   ``i_syn`` with ``w_out`` and ``weight_shift_out``. Recurrent and readout paths therefore
   carry one step of latency; the input path none.
4. **Every neuron** (hidden, then readout; they do not interact within the step):
   ``i_syn[s] = i_syn[s] - decay(i_syn[s], dash_syn[s])``;
   ``dv = wrap16(-decay(v, dash_mem))``; ``dv = sat16(dv + sum_s i_syn[s])``;
   ``dv = sat16(dv + bias)``; ``v = sat16(v + dv)``;
   where ``decay(x, d) = x >> d`` (arithmetic shift, i.e. floor) except that it is ``+1``
   when that shift gives 0 for ``x > 0`` (for ``x < 0`` the floor is never 0).
5. **Spikes**: ``while v >= threshold`` and fewer than ``max_spikes`` (31 hidden, 1
   readout): emit one, ``v -= threshold``. For ``threshold > 0`` this is
   ``n = clip(v // threshold, 0, max_spikes)``, ``v -= n * threshold``; for
   ``threshold == 0``, ``n = max_spikes`` when ``v >= 0`` (``v`` unchanged). Negative
   thresholds are outside this kernel's domain (the design rules reject them).

``sat16(x) = clip(x, -32768, 32767)`` (xylosim's ``safe_add`` is exactly this clip);
``wrap16`` is two's-complement truncation to 16 bits (C++ conversion to ``int16_t``), which
matters only for ``-decay(-32768, 0)`` and for weight shifts above 8.

Continuous model (NIR CubaLIF, for orientation): ``tau_syn di/dt = -i + W x``,
``tau_mem dv/dt = -v + i + b``; the chip replaces ``exp(-dt/tau)`` by ``1 - 2**-dash`` with
``dash = round(log2(tau/dt))`` and integrates with unit gains (Rockpool's ``LIFTorch``).

The exact vectorised delivery (steps 1-3). For one state value ``x`` the events of one source
``c`` are ``k`` identical additions of ``w``; saturating additions of one sign are monotone,
so ``k`` of them equal one ``sat16(x + k*w)``. Each source is thus the map
``f_c(x) = min(max(x + a_c, lo), hi)`` with ``a_c = k_c*w_c``, ``lo = -32768``,
``hi = 32767``, and maps of this form are closed under composition::

    (g o f)(x) = min(max(x + A_f + A_g, max(lo_f + A_g, lo_g)), min(max(hi_f + A_g, lo_g), hi_g))

so the ordered product of all sources (:func:`compose`, associative, not commutative) is a
tree reduction of depth ``log2(C)`` over the sources, computed for all targets at once
(:func:`events_delivery`). Restricted to 16-bit inputs, ``A`` can be clipped to
``±65535`` and ``lo`` to ``<= 32767`` without changing the map, so int32 never overflows.

A cheap exact shortcut (:func:`deliver`): when even the sum of only the positive (only the
negative) contributions of all sources keeps every target inside 16 bits, no partial sum can
saturate and the result is ``x + counts @ weights``: two integer matrix products and a test
(or, with the sources' weights stacked once as ``[max(w, 0) | min(w, 0)]`` by
:func:`split_weights`, ONE product; in float32 where :func:`float32_exact` proves every
partial sum below ``2**24``, so the float product is the exact integer).
:func:`deliver` takes that branch with ``lax.cond`` when it holds for every element of the
call, else the tree. Called on a whole batch (every function here broadcasts over leading
batch dimensions) the test covers the batch; under ``vmap`` the ``cond`` becomes a select
that computes both branches (still exact).

Kernel boundaries (for the integer rule table). Per-event saturation makes the order of
ALL events reaching a current matter, across weight nodes (input before recurrent), so a
weight node cannot hand its target a sum. Two layers of API:

* fused population rules, one stateful step per chip population, the weights as their
  parameters: :func:`hidden_step` (input + recurrent weights + CubaLIF; the recurrent input
  is the population's own previous spikes, held in its state) and :func:`readout_step`
  (readout weights + CubaLIF; it holds the hidden spikes it received for one step, so the
  readout path's latency is inside the rule). :func:`network_step` is these two in a row and
  is what the tests compare with xylosim.
* primitives, for a table that keeps weight nodes apart: :func:`events_delivery` (a weight
  node's events as a :class:`Delivery`, a map on the target's ``i_syn``, not a sum),
  :func:`compose` (a neuron's fan-in, in the chip's order), :func:`neuron_step` (apply the
  combined delivery, decay, integrate, fire); or :func:`deliver` (an ordered list of
  :class:`EventSource`, with the shortcut) and :func:`neuron_update`.

Aliases (xylosim's per-neuron spike copies) are not modelled; nirjax never produces them and
``nirjax.lowering.xylo.quantize.load_spec`` refuses a specification that has them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "STATE_MIN", "STATE_MAX", "MAX_INPUT_EVENTS", "MAX_HIDDEN_SPIKES", "MAX_READOUT_SPIKES",
    "sat16", "wrap16", "decay", "shifted_weight",
    "Delivery", "identity_delivery", "compose", "apply_delivery", "events_delivery",
    "EventSource", "deliver", "split_weights", "float32_exact",
    "XyloNeuronParams", "XyloNeuronState", "neuron_init_state", "neuron_step", "neuron_update",
    "fire",
    "XyloHiddenParams", "XyloHiddenState", "hidden_init_state", "hidden_step",
    "XyloReadoutParams", "XyloReadoutState", "readout_init_state", "readout_step",
    "XyloParams", "XyloState", "XyloRecord", "init_state", "network_step",
]

STATE_MIN = -(2 ** 15)
STATE_MAX = 2 ** 15 - 1
MAX_INPUT_EVENTS = 15  # xylosim MAX_NUM_INP_SPIKES
MAX_HIDDEN_SPIKES = 31  # xylosim MAX_NUM_SPIKES
MAX_READOUT_SPIKES = 1  # xylosim MAX_NUM_OUT_SPIKES
_SPAN = STATE_MAX - STATE_MIN  # 65535: a shift beyond this saturates any 16-bit value


def sat16(x):
    """Saturate to the signed 16-bit range: ``clip(x, -32768, 32767)``.

    >>> import jax.numpy as jnp
    >>> sat16(jnp.array([40000, -40000, 5])).tolist()
    [32767, -32768, 5]
    """
    return jnp.clip(x, STATE_MIN, STATE_MAX)


def wrap16(x):
    """Two's-complement truncation of an int32 to 16 bits (C++ conversion to ``int16_t``).

    >>> import jax.numpy as jnp
    >>> wrap16(jnp.array([32768, 65024, -5])).tolist()
    [-32768, -512, -5]
    """
    x = jnp.asarray(x, jnp.int32)
    return ((x + 2 ** 15) & 0xFFFF) - 2 ** 15


def decay(x, dash):
    """The chip's bit-shift decay step: ``x >> dash``, or ``+1`` if that is 0 for ``x > 0``.

    ``>>`` is the arithmetic shift (floor division by ``2**dash``), so for ``x < 0`` it is
    at most ``-1`` and never 0; ``decay(0, d) = 0``. ``dash`` in ``[0, 15]``.

    >>> import jax.numpy as jnp
    >>> decay(jnp.array([100, 3, -3, 0, -1]), 2).tolist()
    [25, 1, -1, 0, -1]
    """
    x = jnp.asarray(x, jnp.int32)
    d = jnp.right_shift(x, jnp.asarray(dash, jnp.int32))
    return jnp.where((d == 0) & (x > 0), 1, d)


def shifted_weight(weight, shift):
    """A synapse's increment per event: ``wrap16(weight << shift)`` (8-bit ``weight``).

    >>> shifted_weight(-3, 4).tolist()
    -48
    """
    w = jnp.asarray(weight, jnp.int32)
    return wrap16(jnp.left_shift(w, jnp.asarray(shift, jnp.int32)))


class Delivery(NamedTuple):
    """A map on 16-bit states: ``x -> min(max(x + add, lo), hi)``, elementwise.

    What a weight node does to its targets' synaptic currents in one step (all its events,
    in order, each saturating). ``lo`` and ``hi`` lie in the 16-bit range (``lo > hi`` means
    the constant ``hi``); ``add`` in ``[-65535, 65535]``.
    """

    add: jax.Array
    lo: jax.Array
    hi: jax.Array


def identity_delivery(shape) -> Delivery:
    """The map that leaves a state of ``shape`` unchanged (no events)."""
    return Delivery(jnp.zeros(shape, jnp.int32), jnp.full(shape, STATE_MIN, jnp.int32),
                    jnp.full(shape, STATE_MAX, jnp.int32))


def compose(first: Delivery, then: Delivery) -> Delivery:
    """The map ``then o first``: the events of ``first`` delivered before those of ``then``.

    Exact on 16-bit inputs (see the module docstring for the derivation); associative but not
    commutative, so a neuron's fan-in must be combined in the chip's order.

    >>> import jax.numpy as jnp
    >>> up = Delivery(jnp.array(30000), jnp.array(-32768), jnp.array(32767))
    >>> down = Delivery(jnp.array(-30000), jnp.array(-32768), jnp.array(32767))
    >>> apply_delivery(compose(up, down), jnp.array(10000)).tolist()  # 32767 - 30000
    2767
    """
    add = jnp.clip(first.add + then.add, -_SPAN, _SPAN)
    lo = jnp.minimum(jnp.maximum(first.lo + then.add, then.lo), STATE_MAX)
    hi = jnp.minimum(jnp.maximum(first.hi + then.add, then.lo), then.hi)
    return Delivery(add, lo, hi)


def apply_delivery(delivery: Delivery, x):
    """``min(max(x + add, lo), hi)``: the state after the delivered events."""
    x = jnp.asarray(x, jnp.int32)
    return jnp.minimum(jnp.maximum(x + delivery.add, delivery.lo), delivery.hi)


def _reduce_sources(add):
    """Ordered composition over axis ``-3`` of the elementary maps ``sat16(x + add[c])``."""
    n = add.shape[-3]
    lo = jnp.full(add.shape, STATE_MIN, jnp.int32)
    hi = jnp.full(add.shape, STATE_MAX, jnp.int32)
    size = 1
    while size < n:
        size *= 2
    if size > n:  # pad with identities so that every level pairs neighbours
        pad = [(0, 0)] * add.ndim
        pad[-3] = (0, size - n)
        add = jnp.pad(add, pad)
        lo = jnp.pad(lo, pad, constant_values=STATE_MIN)
        hi = jnp.pad(hi, pad, constant_values=STATE_MAX)
    d = Delivery(add, lo, hi)
    while d.add.shape[-3] > 1:
        first = Delivery(*(a[..., 0::2, :, :] for a in d))
        then = Delivery(*(a[..., 1::2, :, :] for a in d))
        d = compose(first, then)
    return Delivery(*(a[..., 0, :, :] for a in d))


def events_delivery(counts, weights, shift, max_events: int) -> Delivery:
    r"""The integer rule of a Xylo weight node: one step's events as a :class:`Delivery`.

    NIR: Linear ``y = W x`` into a synaptic current. Chip (integers): for each source ``c``
    in index order, ``k_c = min(counts[c], max_events)`` events, each doing
    ``i[j, s] = sat16(i[j, s] + wrap16(weights[c, j, s] << shift))`` for every target
    ``(j, s)``. Returned as the composed map of all sources (exact, see the module
    docstring); apply it with :func:`apply_delivery`.

    Args:
        counts: event counts per source at this step, shape ``(..., C)``, integers >= 0
            (input channels: at most 255 reach the chip; hidden spikes: at most 31).
        weights: 8-bit weights, shape ``(C, N, S)`` (sources, targets, synapses per target).
        shift: the layer's ``weight_shift`` (0..8 keeps every shifted weight in 16 bits).
        max_events: events per source and step the chip delivers at most (15 for input
            channels, 31 for hidden spikes).

    Returns:
        A :class:`Delivery` of shape ``(..., N, S)``.

    >>> import jax.numpy as jnp
    >>> w = jnp.array([[[20000]], [[-100]]])  # 2 sources, 1 target, 1 synapse
    >>> d = events_delivery(jnp.array([2, 1]), w, 0, 15)
    >>> apply_delivery(d, jnp.array([[0]])).tolist()  # sat(sat(0+20000)+20000) - 100
    [[32667]]
    """
    k = jnp.clip(jnp.asarray(counts, jnp.int32), 0, max_events)
    w = shifted_weight(weights, shift)
    w = jnp.reshape(w, (1,) * (k.ndim - 1) + jnp.shape(w))  # explicit batch axes
    add = jnp.clip(k[..., :, None, None] * w, -_SPAN, _SPAN)
    return _reduce_sources(add)


class EventSource(NamedTuple):
    """One weight node's events in a step: the arguments of :func:`events_delivery`.

    ``max_events`` must be a Python int (static).
    """

    counts: jax.Array
    weights: jax.Array
    shift: jax.Array
    max_events: int


def split_weights(sources, dtype=jnp.int32):
    """Every source's shifted weights, stacked, as ``[positive parts | negative parts]``.

    Args:
        sources: ``(weights (C, N, S), shift)`` pairs, in delivery order.
        dtype: int32, or float32 when every sum the shortcut computes stays below ``2**24``
            in magnitude (then float32 matrix products are exact; see
            :func:`float32_exact`).

    Returns:
        ``(sum C, 2*N*S)``: row ``c`` holds ``max(w_c, 0)`` then ``min(w_c, 0)``, flattened,
        for :func:`deliver`'s ``split``.

    >>> import jax.numpy as jnp
    >>> split_weights([(jnp.array([[[3]], [[-2]]]), 1)]).tolist()
    [[6, 0], [0, -4]]
    """
    ws = [shifted_weight(w, shift).reshape(jnp.shape(w)[0], -1) for w, shift in sources]
    w = jnp.concatenate(ws, 0)
    return jnp.concatenate([jnp.maximum(w, 0), jnp.minimum(w, 0)], 1).astype(dtype)


def float32_exact(sources) -> bool:
    """Whether float32 products of event counts and shifted weights are exact for ``sources``.

    ``sources``: ``(weights, shift, max_events)`` with concrete (NumPy) weights. True when,
    for every target, ``sum_c max_events_c * |w_c << shift|`` is below ``2**24``: every
    partial sum of such products is then an integer float32 represents exactly.

    >>> import numpy as np
    >>> float32_exact([(np.full((16, 4, 1), 127), 0, 15)]), float32_exact([(np.full((999, 4, 1), -128), 8, 31)])
    (True, False)
    """
    import numpy as np

    total = 0
    for w, shift, max_events in sources:
        w = np.asarray(w, np.int64)
        shifted = ((np.left_shift(w, int(shift)) + 2 ** 15) & 0xFFFF) - 2 ** 15
        total = total + max_events * np.sum(np.abs(shifted), axis=0)
    return bool(np.max(total, initial=0) < 2 ** 24)


def deliver(x, sources, fast_path: bool = True, split=None):
    r"""Apply every source's events, in order, to the states ``x`` (exactly).

    Chip (integers): for each source in order, for each of its events,
    ``x = sat16(x + wrap16(w << shift))``; equal to
    ``apply_delivery(compose(events_delivery(s0), events_delivery(s1), ...), x)``.

    With ``fast_path``, first ``P = sum_c k_c max(w_c, 0)`` and ``M = sum_c k_c min(w_c, 0)``
    (integer matrix products over all sources): if ``x + P <= 32767`` and
    ``x + M >= -32768`` everywhere, no partial sum can leave 16 bits and the result is
    ``x + P + M``; otherwise (``lax.cond``) the exact tree of :func:`events_delivery`.

    Args:
        x: states ``(..., N, S)`` (int32 holding 16-bit values).
        sources: a sequence of :class:`EventSource` (counts ``(..., C)``, weights
            ``(C, N, S)``).
        fast_path: try the unsaturated shortcut first.
        split: optional :func:`split_weights` of the sources (computed once, outside the time
            loop): the shortcut is then ONE matrix product of all sources' clipped counts
            with it (in its dtype: float32 only where :func:`float32_exact` holds).

    Returns:
        The states after all events, like ``x``.

    >>> import jax.numpy as jnp
    >>> src = EventSource(jnp.array([3]), jnp.array([[[100]]]), 0, 15)
    >>> deliver(jnp.array([[32500]]), [src]).tolist()  # saturates: the exact branch
    [[32767]]
    """
    x = jnp.asarray(x, jnp.int32)

    def exact(x):
        d = None
        for s in sources:
            e = events_delivery(s.counts, s.weights, s.shift, s.max_events)
            d = e if d is None else compose(d, e)
        return x if d is None else apply_delivery(d, x)

    if not fast_path or not sources:
        return exact(x)
    if split is not None:
        k = jnp.concatenate([jnp.clip(jnp.asarray(s.counts, jnp.int32), 0, s.max_events)
                             for s in sources], -1)
        pn = jnp.matmul(k.astype(split.dtype), split,
                        precision=jax.lax.Precision.HIGHEST).astype(jnp.int32)
        half = pn.shape[-1] // 2
        pos = pn[..., :half].reshape(x.shape)
        neg = pn[..., half:].reshape(x.shape)
    else:
        pos = neg = 0
        for s in sources:
            k = jnp.clip(jnp.asarray(s.counts, jnp.int32), 0, s.max_events)
            w = shifted_weight(s.weights, s.shift)
            pos = pos + jnp.einsum("...c,cns->...ns", k, jnp.maximum(w, 0))
            neg = neg + jnp.einsum("...c,cns->...ns", k, jnp.minimum(w, 0))
    safe = jnp.all((x + pos <= STATE_MAX) & (x + neg >= STATE_MIN))
    return jax.lax.cond(safe, lambda x: x + pos + neg, exact, x)


class XyloNeuronParams(NamedTuple):
    """One population's integer parameters (hidden or readout).

    Attributes:
        dash_syn: synaptic decay shifts, shape ``(N, S)``, in ``[0, 15]``.
        dash_mem: membrane decay shifts, shape ``(N,)``, in ``[0, 15]``.
        threshold: thresholds, shape ``(N,)``, in ``[0, 32767]``.
        bias: membrane bias added every step, shape ``(N,)``, 16-bit.
    """

    dash_syn: jax.Array
    dash_mem: jax.Array
    threshold: jax.Array
    bias: jax.Array


class XyloNeuronState(NamedTuple):
    """``i_syn`` of shape ``(N, S)`` and ``v`` of shape ``(N,)``, int32 holding 16-bit values."""

    i_syn: jax.Array
    v: jax.Array


def neuron_init_state(params: XyloNeuronParams) -> XyloNeuronState:
    """All currents and membranes at 0 (xylosim's ``reset_all``)."""
    return XyloNeuronState(jnp.zeros(jnp.shape(params.dash_syn), jnp.int32),
                           jnp.zeros(jnp.shape(params.dash_mem), jnp.int32))


def fire(v, threshold, max_spikes: int):
    """Spike count and membrane after the chip's spike loop.

    ``while v >= threshold and n < max_spikes: n += 1; v -= threshold``, i.e. for
    ``threshold > 0``: ``n = clip(v // threshold, 0, max_spikes)``, ``v -= n*threshold``;
    for ``threshold == 0``: ``n = max_spikes`` if ``v >= 0`` else 0, ``v`` unchanged.

    ``v // threshold`` is computed without integer division (scalar on CPUs):
    ``q = floor(float32(v) / float32(threshold))``, then one integer correction,
    ``r = v - q*threshold``; ``q += (r >= threshold) - (r < 0)``. Exact for the chip's
    16-bit state (``|v| <= 2**15``, ``1 <= threshold <= 2**15``): the float quotient is
    within a few ulp of ``v/threshold`` even where the backend divides through a reciprocal
    estimate (relative error well below ``2**-20``, so an absolute error below ``2**-5``
    at ``|v/threshold| <= 2**15``), its floor is therefore off by at most one, and the
    correction (``0 <= r < threshold`` holds exactly for the true floor) removes that one.

    >>> import jax.numpy as jnp
    >>> n, v = fire(jnp.array([250, 99, -5]), jnp.array([100, 100, 100]), 31)
    >>> n.tolist(), v.tolist()
    ([2, 0, 0], [50, 99, -5])
    """
    v = jnp.asarray(v, jnp.int32)
    th = jnp.asarray(threshold, jnp.int32)
    positive = th > 0
    # floor(v / th) from a float32 quotient, corrected in integers (see the docstring):
    # XLA's integer division is scalar on CPUs, and jnp.floor_divide does two of them
    safe_th = jnp.where(positive, th, 1)
    q = jnp.floor(v.astype(jnp.float32) / safe_th.astype(jnp.float32)).astype(jnp.int32)
    r = v - q * safe_th
    q = q + (r >= safe_th).astype(jnp.int32) - (r < 0).astype(jnp.int32)
    n_pos = jnp.clip(q, 0, max_spikes)
    n = jnp.where(positive, n_pos, jnp.where(v >= 0, max_spikes, 0)).astype(jnp.int32)
    return n, v - n * th


def neuron_step(params: XyloNeuronParams, state: XyloNeuronState, delivery: Delivery,
                max_spikes: int):
    r"""The integer rule of a Xylo neuron population (NIR CubaLIF): one step.

    NIR: ``tau_syn di/dt = -i + x``, ``tau_mem dv/dt = -v + sum(i) + b``, spike and subtract.
    Chip (integers, in this order): ``i = apply(delivery, i)`` (this step's events);
    ``i -= decay(i, dash_syn)``; ``dv = wrap16(-decay(v, dash_mem))``;
    ``dv = sat16(dv + sum_s i[s])``; ``dv = sat16(dv + bias)``; ``v = sat16(v + dv)``;
    then :func:`fire` with ``max_spikes`` (31 hidden, 1 readout).

    Args:
        params: the population's :class:`XyloNeuronParams`.
        state: ``i_syn`` ``(N, S)`` and ``v`` ``(N,)`` before the step.
        delivery: the composed events of every incoming weight node this step.
        max_spikes: spikes per neuron and step at most.

    Returns:
        ``(state, n)``: the state after the spike subtraction (what xylosim records) and the
        spike counts ``n`` (int32, ``0..max_spikes``).

    >>> import jax.numpy as jnp
    >>> p = XyloNeuronParams(jnp.array([[1]]), jnp.array([1]), jnp.array([100]), jnp.array([0]))
    >>> s = neuron_init_state(p)
    >>> s, n = neuron_step(p, s, events_delivery(jnp.array([1]), jnp.array([[[120]]]), 0, 15), 31)
    >>> s.i_syn.tolist(), s.v.tolist(), n.tolist()  # i = 120 - 60; v = 60; no spike
    ([[60]], [60], [0])
    """
    return neuron_update(params, apply_delivery(delivery, state.i_syn), state.v, max_spikes)


def _lead(p, like):
    """``p`` with leading unit axes up to the rank of ``like`` (explicit batch broadcasting)."""
    p = jnp.asarray(p)
    return jnp.reshape(p, (1,) * (jnp.ndim(like) - p.ndim) + p.shape)


def neuron_update(params: XyloNeuronParams, i_syn, v, max_spikes: int):
    """:func:`neuron_step` after the events: ``i_syn`` already holds this step's events.

    Decay, integrate, fire: ``i -= decay(i, dash_syn)``; ``dv = wrap16(-decay(v, dash_mem))``;
    ``dv = sat16(dv + sum_s i[s])``; ``dv = sat16(dv + bias)``; ``v = sat16(v + dv)``;
    :func:`fire`. Returns ``(state, n)`` as :func:`neuron_step`.
    """
    i_syn = jnp.asarray(i_syn, jnp.int32)
    v = jnp.asarray(v, jnp.int32)
    i_syn = i_syn - decay(i_syn, _lead(params.dash_syn, i_syn))
    dv = wrap16(-decay(v, _lead(params.dash_mem, v)))
    dv = sat16(dv + jnp.sum(i_syn, axis=-1))
    dv = sat16(dv + _lead(jnp.asarray(params.bias, jnp.int32), v))
    v = sat16(v + dv)
    n, v = fire(v, _lead(params.threshold, v), max_spikes)
    return XyloNeuronState(i_syn, v), n


class XyloHiddenParams(NamedTuple):
    """The hidden population with its incoming weights (the chip's fused hidden rule).

    Attributes:
        w_in: ``(Nin, Nhid, S)`` input weights (zero beyond the input-expansion neurons).
        w_rec: ``(Nhid, Nhid, S)`` recurrent weights, ``[pre, post, synapse]``; every
            hidden-to-hidden connection of the network (recurrent or layer to layer).
        shift_in, shift_rec: the ``weight_shift`` of each (int32 scalars).
        neuron: :class:`XyloNeuronParams` (``dash_syn`` ``(Nhid, S)``).
    """

    w_in: jax.Array
    w_rec: jax.Array
    shift_in: jax.Array
    shift_rec: jax.Array
    neuron: XyloNeuronParams


class XyloHiddenState(NamedTuple):
    """``i_syn`` ``(Nhid, S)``, ``v`` ``(Nhid,)`` and ``spikes``, the counts of the last step."""

    i_syn: jax.Array
    v: jax.Array
    spikes: jax.Array


def hidden_init_state(params: XyloHiddenParams) -> XyloHiddenState:
    """Everything 0 (xylosim's ``reset_all``)."""
    zero = neuron_init_state(params.neuron)
    return XyloHiddenState(zero.i_syn, zero.v, jnp.zeros_like(zero.v))


def hidden_step(params: XyloHiddenParams, state: XyloHiddenState, counts,
                fast_path: bool = True, split=None):
    r"""The fused integer rule of Xylo's hidden population (input Linear + recurrent Linear +
    CubaLIF): one step.

    NIR: ``Input -> Linear(w_in) -> CubaLIF`` with ``CubaLIF -> Linear(w_rec) -> CubaLIF``.
    Chip (integers): ``i = deliver(i, [input events (counts, w_in, shift_in, <= 15 per
    channel), recurrent events (state.spikes, w_rec, shift_rec, <= 31)])`` (every event
    saturating, input first: the weights and the synapse cannot be separate kernels);
    then :func:`neuron_update` with 31 spikes at most. The recurrent input is the
    population's own spikes of the previous step, held in the state.

    Args:
        params: :class:`XyloHiddenParams`.
        state: :class:`XyloHiddenState`.
        counts: input event counts ``(Nin,)`` of this step, integers in ``[0, 255]``.
        fast_path: see :func:`deliver`.
        split: optional ``split_weights([(w_in, shift_in), (w_rec, shift_rec)])`` (see
            :func:`deliver`).

    Returns:
        ``(state, spikes)``: spikes ``(Nhid,)`` int32 in ``0..31`` (also kept in the state).
    """
    i_syn = deliver(state.i_syn, [
        EventSource(counts, params.w_in, params.shift_in, MAX_INPUT_EVENTS),
        EventSource(state.spikes, params.w_rec, params.shift_rec, MAX_HIDDEN_SPIKES)], fast_path,
        split)
    neuron, spikes = neuron_update(params.neuron, i_syn, state.v, MAX_HIDDEN_SPIKES)
    return XyloHiddenState(neuron.i_syn, neuron.v, spikes), spikes


class XyloReadoutParams(NamedTuple):
    """The readout population with its incoming weights (the chip's fused readout rule).

    Attributes:
        w_out: ``(Nhid, Nout, 1)`` readout weights (zero except the output-expansion rows).
        shift_out: the readout ``weight_shift`` (int32 scalar).
        neuron: :class:`XyloNeuronParams` (``dash_syn`` ``(Nout, 1)``).
    """

    w_out: jax.Array
    shift_out: jax.Array
    neuron: XyloNeuronParams


class XyloReadoutState(NamedTuple):
    """``i_syn`` ``(Nout, 1)``, ``v`` ``(Nout,)`` and ``pending``: the hidden spikes received
    in the last step, delivered in this one (the readout path's step of latency)."""

    i_syn: jax.Array
    v: jax.Array
    pending: jax.Array


def readout_init_state(params: XyloReadoutParams) -> XyloReadoutState:
    """Everything 0 (xylosim's ``reset_all``)."""
    zero = neuron_init_state(params.neuron)
    return XyloReadoutState(zero.i_syn, zero.v,
                            jnp.zeros(jnp.shape(params.w_out)[0], jnp.int32))


def readout_step(params: XyloReadoutParams, state: XyloReadoutState, hidden_spikes,
                 fast_path: bool = True, split=None):
    r"""The fused integer rule of Xylo's readout (Linear + CubaLIF): one step.

    NIR: ``CubaLIF(hidden) -> Linear(w_out) -> CubaLIF(readout)``. Chip (integers): the
    hidden spikes of the PREVIOUS step (``state.pending``, at most 31 per neuron) are
    delivered, each event saturating, ``i = deliver(i, [(pending, w_out, shift_out,
    31)])``; then :func:`neuron_update` with at most 1 spike; ``pending = hidden_spikes``.
    The output does not depend on this step's input (no feedthrough): one step of latency.

    Args:
        params: :class:`XyloReadoutParams`.
        state: :class:`XyloReadoutState`.
        hidden_spikes: the hidden population's spikes ``(Nhid,)`` of THIS step.
        fast_path: see :func:`deliver`.
        split: optional ``split_weights([(w_out, shift_out)])`` (see :func:`deliver`).

    Returns:
        ``(state, spikes)``: readout spikes ``(Nout,)``, int32 0 or 1.
    """
    i_syn = deliver(state.i_syn, [EventSource(state.pending, params.w_out, params.shift_out,
                                              MAX_HIDDEN_SPIKES)], fast_path, split)
    neuron, out = neuron_update(params.neuron, i_syn, state.v, MAX_READOUT_SPIKES)
    pending = jnp.asarray(hidden_spikes, jnp.int32)
    return XyloReadoutState(neuron.i_syn, neuron.v, pending), out


class XyloParams(NamedTuple):
    """A whole Xylo network in the chip's integer form (arrays padded to ``Nhid``)."""

    hidden: XyloHiddenParams
    readout: XyloReadoutParams


class XyloState(NamedTuple):
    """The hidden and readout states."""

    hidden: XyloHiddenState
    readout: XyloReadoutState


class XyloRecord(NamedTuple):
    """What one :func:`network_step` returns: readout spikes and every recorded state.

    Matches xylosim's recordings: ``Spikes`` (hidden counts), ``Vmem``, ``Isyn``, ``Isyn2``,
    ``Vmem_out``, ``Isyn_out``, all after the step's spike subtraction.
    """

    out: jax.Array
    hidden_spikes: jax.Array
    v: jax.Array
    i_syn: jax.Array
    v_out: jax.Array
    i_syn_out: jax.Array


def init_state(params: XyloParams) -> XyloState:
    """The network after xylosim's ``reset_all``: every state and spike buffer 0."""
    return XyloState(hidden_init_state(params.hidden), readout_init_state(params.readout))


def network_step(params: XyloParams, state: XyloState, counts, fast_path: bool = True):
    r"""One step of the whole chip: :func:`hidden_step` then :func:`readout_step`.

    Chip (integers), as xylosim orders it: input events, then the previous step's hidden
    spikes to the hidden (recurrent) and readout neurons, every event saturating; then every
    hidden neuron (31 spikes at most) and every readout neuron (1 at most). The readout at
    step t thus sees hidden spikes of step t-1.

    Args:
        params: :class:`XyloParams`.
        state: :class:`XyloState` before the step.
        counts: input event counts of this step, shape ``(Nin,)``, integers in ``[0, 255]``
            (the chip takes at most 15 per channel).
        fast_path: use :func:`deliver`'s unsaturated shortcut (same result).

    Returns:
        ``(state, record)`` with a :class:`XyloRecord` (``record.out``: readout spikes 0/1).
    """
    hidden, spikes = hidden_step(params.hidden, state.hidden, counts, fast_path)
    readout, out = readout_step(params.readout, state.readout, spikes, fast_path)
    record = XyloRecord(out, spikes, hidden.v, hidden.i_syn, readout.v, readout.i_syn)
    return XyloState(hidden, readout), record
