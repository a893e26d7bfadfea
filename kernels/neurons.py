r"""Neuron kernels: I, IF, LI, LIF, CubaLI, CubaLIF, composed from small pure pieces.

Every kernel works on ONE unbatched sample (the compiler ``vmap``\ s it over the batch). A
node's kernel is a :class:`Neuron`: pure functions closed over the node's configuration (as an
optax ``GradientTransformation`` closes over its hyperparameters), assembled once per node by
:func:`nirjax.semantics.neuron.neuron_for` from the node's :class:`~nirjax.Semantics`:

* ``prepare(params) -> coeffs``: everything that depends on parameters and ``dt`` but not on
  time (decay factors, gains), computed once per run outside the time loop (so gradients
  reach ``tau`` and ``r`` through it);
* ``init_state(params, shape) -> state``: the state at t = 0;
* ``step(coeffs, state, x) -> (state, y)``: one time step of length ``dt``;
* ``emit(coeffs, state) -> y`` and ``absorb(coeffs, state, x) -> state`` for a neuron whose
  output is computed from the carried state alone (``fire='before'``; ``None`` otherwise).

The pieces, each a pure function or a small factory closing over static numbers:

========================  ====================================================================
piece                     signature and variants
========================  ====================================================================
parameters                ``params -> params``: :func:`neutral` (a platform drops ``r``, ...)
rate / decay              ``tau -> factor``: :func:`euler_rate` ``dt/tau``, :func:`inverse_rate`
                          ``dt*(1/tau)``, :func:`exact_decay` ``exp(-dt/tau)``,
                          :func:`euler_decay` ``1 - dt/tau``, :func:`clipped`,
                          :func:`constant`
membrane update           ``(coeffs, v, x) -> v'``: :func:`leaky_euler`, :func:`leaky_exact`,
                          :func:`leaky_norse`, :func:`decayed`, :func:`add_decayed`,
                          :func:`integrate`,
                          :func:`accumulate`
current-based update      ``(coeffs, state, x) -> (i_syn, v')``: :func:`cuba_euler`,
                          :func:`cuba_exact`, :func:`cuba_norse`, :func:`cuba_decayed`
spike rule                :class:`SpikeRule`: the test (``>``/``>=``, surrogate), binary or
                          multi spikes, unit or Dirac amplitude
reset rule                :class:`ResetRule`: to ``v_reset``, by subtraction or none,
                          detached or not, with an optional floor at ``-v_threshold``
firing                    ``(v, v_threshold, v_reset, v_carried) -> (v, y)``:
                          :func:`fire_same_step`, :func:`fire_flagged` (snnTorch); and
                          :func:`fire_before` (emit/absorb from the carried state)
initial state             :func:`rest_or_zero`
cells                     :func:`one_variable_neuron`, :func:`cuba_neuron`
========================  ====================================================================

Conventions (the defaults are the NIR 1.0.8 specification; see :mod:`nirjax.semantics` for
the platform profiles that choose the other pieces):

* ``x`` is the summed input of the node at step n (the fan-in sum of the graph), held
  constant over the step ``[t_n, t_n + dt)``.
* Forward Euler: ``v[n+1] = v[n] + dt * f(v[n], x[n])``. Exact: the exact solution of the
  linear ODE over one step with ``x`` held constant (zero-order hold).
* Spike test ``z = H(v - v_threshold)`` on the freshly integrated ``v``, strict (``>``, the
  NIR spec) or inclusive (``>=``); its derivative is the surrogate's.
* Reset, in the same step as the spike: to ``v_reset`` (NIR >= 1.0.6), by subtraction of
  ``v_threshold`` (the spec's docstring before 1.0.6), or none; written as
  ``v*(1-z) + v_reset*z`` / ``v - v_threshold*n`` so the surrogate gradient flows through
  the reset unless it is detached. The state returned (and recorded) is the state AFTER the
  reset.

Platform forms (each the convention of some NIR platform; the association of every float
operation is the platform's own, which decides float32 rounding):

* form ``'norse'``: Euler with the rate ``dt*(1/tau)`` and Norse's association: LIF
  ``v + (dt*(1/tau))*((R*x + v_leak) - v)``; LI and a CubaLIF synapse as the spec's Euler
  update with that rate; a CubaLIF synapse also relaxes to, and starts at, the neuron's
  ``v_leak``.
* form ``'decay'``: ``v[n+1] = (a*v[n] + g*x[n]) + c`` with the decay ``a = 1 - dt/tau``
  (Euler) or ``exp(-dt/tau)`` (exact), IF ``a = 1``, optionally clipped to ``[0, 1]`` or
  replaced by a fixed value; ``g`` and ``c`` from the input gain: ``'nir'`` ``g = k*R``,
  ``c = k*v_leak`` with ``k = dt/tau`` (exact: ``1 - a``), IF/I ``g = dt*R``; ``'unit'``
  ``g = 1``, ``c = v_leak``; ``'threshold'`` (spiking nodes): the spec's Euler update in
  units of ``v / S``, ``g = 1`` and threshold, ``v_reset`` and ``c`` divided by ``S`` (``S =
  (R*dt)/tau``, CubaLIF ``(w_in*(dt/tau_syn)) * ((R*dt)/tau_mem)``, IF ``R``; a layer whose
  every ``S`` is within ``1e-8 + 1e-5`` of 1 is not rescaled); ``'input'`` as ``'nir'`` but a
  CubaLI(F) membrane adds the current unscaled. CubaLI(F): ``i[n+1] = b*i[n] + g_s*x[n]``
  (``'decay_add'``) or ``b*(i[n] + g_s*x[n])`` (``'add_decay'``), ``v[n+1] = (a*v[n] +
  g_m*i*) + c``, ``i*`` the old or the new current. An LI under ``'add_decay'`` is such a
  synapse on its own: ``v[n+1] = a*(v[n] + g*x[n]) + c``. The exact decay may be rounded as
  ``exp((1/tau)*(-dt))`` (rate ``'reciprocal'``, PyTorch's association).
* spikes ``'multi'``: ``n = H(v - theta) * floor(v/theta)`` spikes per step, optionally at
  most ``max_spikes``; a subtractive reset removes ``n*theta``. Amplitude ``'dirac'``: the
  output is ``n/dt``.
* ``fire='before'``: the output of step n is the test of the carried membrane,
  ``z[n] = H(v[n] - v_threshold)`` (one step of latency per neuron), its reset applied to
  the integrated value, to the carried value before integrating, or both.
* snnTorch's reset flag: ``q = H(v[n] - v_threshold)`` (strict) from the carried membrane;
  the integrated ``v'`` is first reset by ``q``, then tested, ``z = H(v' - theta)``, and reset
  by ``z - q``.
* a floor ``v = max(v - m, 0) + m`` with ``m = -v_threshold`` after the reset (Sinabs' IF),
  or ``v = max(v, 0)`` (Nengo's LIF, ``min_voltage = 0``).
* the ``'nengo'`` form (Nengo's LIF, the NIR paper's IF and Nengo's Lowpass, in units of the
  threshold) is built from the pieces of :mod:`nirjax.kernels.nengo`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from .surrogate import Surrogate, spike

__all__ = [
    "Neuron", "SpikeRule", "ResetRule",
    "IParams", "IState", "IFParams", "IFState", "LIParams", "LIState", "LIFParams",
    "LIFState", "CubaLIParams", "CubaLIState", "CubaLIFParams", "CubaLIFState",
    "LICoeffs", "LIFCoeffs", "CubaCoeffs",
    "neutral", "IGNORABLE",
    "euler_rate", "inverse_rate", "exact_decay", "euler_decay", "clipped", "constant",
    "unit_scale", "cuba_exact_cross",
    "leaky_euler", "leaky_exact", "leaky_norse", "decayed", "add_decayed", "integrate",
    "accumulate",
    "cuba_euler", "cuba_exact", "cuba_norse", "cuba_decayed",
    "spike_rule", "reset_rule", "fire_same_step", "fire_flagged", "fire_before",
    "rest_or_zero", "zeros", "one_variable_neuron", "cuba_neuron",
]

#: Parameters a platform may drop, and the neutral value that replaces each.
IGNORABLE = ("r", "v_leak", "v_reset", "w_in")
_NEUTRAL = {"r": 1.0, "v_leak": 0.0, "v_reset": 0.0, "w_in": 1.0}
# snnTorch's importer leaves a threshold unscaled when np.allclose(S, 1) (rtol 1e-5, atol 1e-8)
_UNIT_SCALE_ATOL = 1e-8 + 1e-5


class Neuron(NamedTuple):
    """A neuron kernel for one node, composed from pieces and closed over its configuration.

    Attributes:
        prepare: ``params -> coeffs``, once per run, outside the time loop.
        init_state: ``(params, shape) -> state`` at t = 0 (dtype of the parameters).
        step: ``(coeffs, state, x) -> (state, y)``.
        emit: ``(coeffs, state) -> y`` when the output depends on the carried state only
            (then the node has no same-step feedthrough), else ``None``.
        absorb: ``(coeffs, state, x) -> state`` with ``emit``.
        associative_scan: ``(coeffs, state, xs) -> (state, ys)`` over a chunk ``xs``
            ``[K, ...]``, solved in parallel over time, where the update is reset-free
            linear (:mod:`nirjax.kernels.linear_scan`); ``None`` otherwise.
        pallas: ``(coeffs, v0, xs, block, interpret) -> (v, zs)``, a fused multi-step kernel
            over flattened neurons (:mod:`nirjax.kernels.pallas_lif`); ``None`` otherwise.
    """

    prepare: Callable
    init_state: Callable
    step: Callable
    emit: Optional[Callable] = None
    absorb: Optional[Callable] = None
    associative_scan: Optional[Callable] = None
    pallas: Optional[Callable] = None


# ----------------------------------------------------------------------------- parameters


class IParams(NamedTuple):
    """Parameters of the NIR ``I`` (integrator) node."""

    r: jax.Array


class IState(NamedTuple):
    """State of ``I``: the integrated value ``v``."""

    v: jax.Array


class IFParams(NamedTuple):
    """Parameters of the NIR ``IF`` node."""

    r: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


class IFState(NamedTuple):
    """State of ``IF``: membrane potential ``v``."""

    v: jax.Array


class LIParams(NamedTuple):
    """Parameters of the NIR ``LI`` node."""

    tau: jax.Array
    r: jax.Array
    v_leak: jax.Array


class LIState(NamedTuple):
    """State of ``LI``: membrane potential ``v``."""

    v: jax.Array


class LIFParams(NamedTuple):
    """Parameters of the NIR ``LIF`` node."""

    tau: jax.Array
    r: jax.Array
    v_leak: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


class LIFState(NamedTuple):
    """State of ``LIF``: membrane potential ``v`` (after the reset)."""

    v: jax.Array


class CubaLIParams(NamedTuple):
    """Parameters of the NIR ``CubaLI`` node."""

    tau_syn: jax.Array
    tau_mem: jax.Array
    r: jax.Array
    v_leak: jax.Array
    w_in: jax.Array


class CubaLIState(NamedTuple):
    """State of ``CubaLI``/``CubaLIF``: synaptic current ``i_syn`` and membrane ``v``."""

    i_syn: jax.Array
    v: jax.Array


class CubaLIFParams(NamedTuple):
    """Parameters of the NIR ``CubaLIF`` node."""

    tau_syn: jax.Array
    tau_mem: jax.Array
    r: jax.Array
    v_leak: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array
    w_in: jax.Array


CubaLIFState = CubaLIState


def neutral(fields: tuple) -> Callable:
    """``params -> params`` with each field named in ``fields`` replaced by its neutral value
    (``r`` -> 1, ``v_leak`` -> 0, ``v_reset`` -> 0, ``w_in`` -> 1), for platforms that drop
    it; the identity when ``fields`` is empty."""
    fields = tuple(fields)

    def use(params):
        if not fields:
            return params
        changes = {f: jnp.full_like(getattr(params, f), _NEUTRAL[f])
                   for f in fields if f in params._fields}
        return params._replace(**changes) if changes else params

    return use


# ----------------------------------------------------------------------------- coefficients


class LICoeffs(NamedTuple):
    """Coefficients of a one-variable non-spiking cell (LI, I): ``leak`` is the rate
    ``dt/tau`` (Euler; ``dt*(1/tau)`` Norse), ``exp(-dt/tau)`` (exact) or the decay ``a``;
    ``r`` is the input factor (the decay form's gain ``g``); ``v_leak`` the leak potential
    (the decay form's per-step bias ``c``)."""

    leak: jax.Array
    r: jax.Array
    v_leak: jax.Array


class LIFCoeffs(NamedTuple):
    """Coefficients of a one-variable spiking cell (LIF, IF): those of :class:`LICoeffs`
    plus the threshold and reset value, in the state's units."""

    leak: jax.Array
    r: jax.Array
    v_leak: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


class CubaCoeffs(NamedTuple):
    """Time-invariant coefficients of the current-based cell.

    Euler: ``syn = dt/tau_syn``, ``mem = dt/tau_mem`` (Norse: ``dt*(1/tau)``), ``cross``
    zero. Exact: ``syn = exp(-dt/tau_syn)``, ``mem = exp(-dt/tau_mem)``, ``cross`` from
    :func:`cuba_exact_cross`. Decay form: ``syn`` and ``mem`` are the decays ``b`` and ``a``,
    ``w_in`` the synapse gain ``g_s``, ``r`` the membrane gain ``g_m``, ``v_leak`` the
    per-step bias ``c``, and threshold and reset value are in the state's units.
    """

    syn: jax.Array
    mem: jax.Array
    cross: jax.Array
    r: jax.Array
    v_leak: jax.Array
    w_in: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


def euler_rate(dt: float) -> Callable:
    """``tau -> dt/tau``, forward Euler's factor per step."""
    return lambda tau: dt / tau


def inverse_rate(dt: float) -> Callable:
    """``tau -> dt*(1/tau)`` (``1/tau`` rounded first, as Norse computes it)."""
    return lambda tau: dt * (1.0 / tau)


def exact_decay(dt: float, reciprocal: bool = False) -> Callable:
    """``tau -> exp(-dt/tau)``, the exact decay over one step; with ``reciprocal`` the
    argument is rounded as ``(1/tau) * (-dt)`` (PyTorch's ``-dt / tensor``, which
    ``Tensor.__rtruediv__`` computes as the reciprocal times ``-dt``: Rockpool's
    ``torch.exp(-dt / tau)``)."""
    if reciprocal:
        return lambda tau: jnp.exp((1.0 / tau) * (-dt))
    return lambda tau: jnp.exp(-dt / tau)


def euler_decay(dt: float, reciprocal: bool = False) -> Callable:
    """``tau -> 1 - dt/tau``, forward Euler's decay (``1 - (1/tau)*dt`` with
    ``reciprocal``)."""
    if reciprocal:
        return lambda tau: 1.0 - (1.0 / tau) * dt
    return lambda tau: 1.0 - dt / tau


def clipped(decay: Callable) -> Callable:
    """``decay`` clipped to ``[0, 1]``."""
    return lambda tau: jnp.clip(decay(tau), 0.0, 1.0)


def constant(value: float) -> Callable:
    """``tau -> value`` everywhere (a decay fixed by the platform)."""
    return lambda tau: jnp.full_like(tau, value)


def unit_scale(scale):
    """snnTorch's rule: no rescaling when every factor is within 1e-5 of 1."""
    return jnp.where(jnp.all(jnp.abs(scale - 1.0) <= _UNIT_SCALE_ATOL), jnp.ones_like(scale),
                     scale)


def cuba_exact_cross(dt: float, tau_syn, tau_mem, syn, mem):
    """``tau_syn * (syn - mem) / (tau_syn - tau_mem)``, the current's share of the exact
    membrane update; when the time constants are within 1e-6 of each other its expansion
    ``(dt/tau_mem) * mem * (1 + d*dt/(2*tau_mem**2))`` in ``d = tau_syn - tau_mem`` (the
    limit ``(dt/tau) * exp(-dt/tau)`` at ``d = 0``)."""
    diff = tau_syn - tau_mem
    close = jnp.abs(diff) <= 1e-6 * jnp.abs(tau_mem)
    safe_diff = jnp.where(close, 1.0, diff)  # keeps the unused branch's gradient finite
    # near-equal time constants: first-order expansion of the quotient in diff, which
    # avoids its cancellation (the zeroth-order limit alone is off by ~diff/tau_mem)
    near = dt / tau_mem * mem * (1.0 + diff * dt / (2.0 * tau_mem ** 2))
    return jnp.where(close, near, tau_syn * (syn - mem) / safe_diff)


# ----------------------------------------------------------------------------- updates


def leaky_euler(c, v, x):
    """Euler step of ``tau dv/dt = (v_leak - v) + R*x``:
    ``v + (dt/tau) * ((v_leak - v) + R*x)`` (``c.leak = dt/tau``)."""
    return v + c.leak * ((c.v_leak - v) + c.r * x)


def leaky_exact(c, v, x):
    """Exact step of ``tau dv/dt = (v_leak - v) + R*x`` with ``x`` held:
    ``u + (v - u) * exp(-dt/tau)``, ``u = v_leak + R*x`` (``c.leak = exp(-dt/tau)``)."""
    target = c.v_leak + c.r * x
    return target + (v - target) * c.leak


def leaky_norse(c, v, x):
    """Euler step of ``tau dv/dt = (v_leak - v) + R*x`` in Norse's association:
    ``v + (dt*(1/tau)) * ((R*x + v_leak) - v)`` (``c.leak = dt*(1/tau)``)."""
    return v + c.leak * ((c.r * x + c.v_leak) - v)


def decayed(c, v, x):
    """One step of ``tau dv/dt = (v_leak - v) + R*x`` in the decay form:
    ``(a*v + g*x) + c`` (``c.leak = a``, ``c.r = g``, ``c.v_leak = c``; the factors chosen by
    the input gain, e.g. ``a = 1 - dt/tau``, ``g = (dt/tau)*R``, ``c = (dt/tau)*v_leak``)."""
    return (c.leak * v + c.r * x) + c.v_leak


def add_decayed(c, v, x):
    """The decay form of an exponential synapse that decays in the step it receives input.

    Continuous: ``tau dv/dt = -v`` between inputs, each input ``g*x`` added at the start of
    its step. Discrete: ``v' = a*(v + g*x) + c`` with ``a = exp(-dt/tau)`` (``c.leak = a``,
    ``c.r = g``, ``c.v_leak = c``; Rockpool's ``ExpSynTorch``: ``isyn += x; isyn *= a``)."""
    return c.leak * (v + c.r * x) + c.v_leak


def integrate(dt: float) -> Callable:
    """``(c, v, x) -> v + dt*(R*x)``: the integrator ``dv/dt = R*x`` (exact for held input)."""
    return lambda c, v, x: v + dt * (c.r * x)


def accumulate(c, v, x):
    """``dv/dt = R*x`` with the input already in units of ``v`` per step: ``v + x``."""
    return v + x


def cuba_euler(new_current: bool) -> Callable:
    """Euler step of ``tau_syn di/dt = -i + w_in*x``, ``tau_mem dv/dt = (v_leak - v) + R*i*``:
    ``i' = i + syn*(w_in*x - i)``, ``v' = v + mem*((v_leak - v) + R*i*)`` with ``i*`` the old
    current (forward Euler of the coupled system) or the new one."""

    def update(c, state, x):
        i_syn = state.i_syn + c.syn * (c.w_in * x - state.i_syn)
        i_used = i_syn if new_current else state.i_syn
        return i_syn, state.v + c.mem * ((c.v_leak - state.v) + c.r * i_used)

    return update


def cuba_exact(c, state, x):
    """Exact step with ``x`` held (``d = w_in*x``): ``i' = d + (i - d)*syn``,
    ``v' = u + (v - u)*mem + R*(i - d)*cross``, ``u = v_leak + R*d``."""
    drive = c.w_in * x
    i_syn = drive + (state.i_syn - drive) * c.syn
    target = c.v_leak + c.r * drive
    v = target + (state.v - target) * c.mem + c.r * (state.i_syn - drive) * c.cross
    return i_syn, v


def cuba_norse(new_current: bool) -> Callable:
    """Norse: ``i' = i + syn*((v_leak - i) + w_in*x)`` (the synapse relaxes to the neuron's
    ``v_leak``), ``v' = v + mem*((R*i* + v_leak) - v)``."""

    def update(c, state, x):
        i_syn = state.i_syn + c.syn * ((c.v_leak - state.i_syn) + c.w_in * x)
        i_used = i_syn if new_current else state.i_syn
        return i_syn, state.v + c.mem * ((c.r * i_used + c.v_leak) - state.v)

    return update


def cuba_decayed(add_decay: bool, new_current: bool) -> Callable:
    """The decay form: ``i' = b*i + g_s*x`` (or ``b*(i + g_s*x)`` with ``add_decay``),
    ``v' = (a*v + g_m*i*) + c``."""

    def update(c, state, x):
        if add_decay:
            i_syn = c.syn * (state.i_syn + c.w_in * x)
        else:
            i_syn = c.syn * state.i_syn + c.w_in * x
        i_used = i_syn if new_current else state.i_syn
        return i_syn, (c.mem * state.v + c.r * i_used) + c.v_leak

    return update


# ----------------------------------------------------------------------------- spikes, resets


class SpikeRule(NamedTuple):
    """How a membrane becomes output.

    Attributes:
        test: ``(v, v_threshold) -> z``, the binary test with its surrogate derivative.
        count: ``(v, v_threshold) -> (z, n)``: the test and the number of spikes.
        output: ``n -> y``: the output for ``n`` spikes (``n``, or ``n/dt``).
    """

    test: Callable
    count: Callable
    output: Callable


def spike_rule(inclusive: bool, surrogate: Surrogate, multi: bool = False,
               dirac_dt: float | None = None, max_count: float | None = None) -> SpikeRule:
    """The spike test ``H(v - theta)`` (strict, or ``>=`` when ``inclusive``), one spike or
    ``floor(v/theta)`` (``multi``; at most ``max_count`` when given, as Rockpool's
    ``max_spikes_per_dt``), of amplitude 1 or ``1/dt`` (``dirac_dt = dt``)."""

    def test(v, v_threshold):
        return spike(v - v_threshold, inclusive, surrogate)

    def count(v, v_threshold):
        z = test(v, v_threshold)
        if multi:
            # n = z * floor(v/theta); the surrogate gradient flows through z
            n = jnp.maximum(jnp.floor(v / v_threshold), 1.0)
            if max_count is not None:
                n = jnp.minimum(n, max_count)
            return z, z * jax.lax.stop_gradient(n)
        return z, z

    if dirac_dt is None:
        output = lambda n: n
    else:
        output = lambda n: n * (1.0 / dirac_dt)
    return SpikeRule(test, count, output)


class ResetRule(NamedTuple):
    """What a spike does to the membrane.

    Attributes:
        kind: ``'v_reset'``, ``'subtract'`` or ``'none'``.
        detach: whether the reset is cut from the gradient.
        apply: ``(v, z, n, v_threshold, v_reset) -> v``.
        floor: ``(v, v_threshold) -> v``, the lower clamp after the reset (or the identity).
    """

    kind: str
    detach: bool
    apply: Callable
    floor: Callable


def reset_rule(kind: str, detach: bool = False, floor=False) -> ResetRule:
    """``kind='v_reset'``: ``v*(1-z) + v_reset*z``; ``'subtract'``: ``v - v_threshold*n``;
    ``'none'``: ``v``. ``floor`` (after the reset): ``True`` or ``'-threshold'``:
    ``v = max(v + theta, 0) - theta`` (Sinabs' ``min_v_mem = -theta``); ``'zero'``:
    ``v = max(v, 0)`` (Nengo's ``min_voltage = 0``); ``False`` or ``'none'``: no floor."""
    if floor is True:
        floor = "-threshold"
    if floor is False or floor is None:
        floor = "none"

    def apply(v, z, n, v_threshold, v_reset):
        if detach:
            z, n = jax.lax.stop_gradient(z), jax.lax.stop_gradient(n)
        if kind == "v_reset":
            return v * (1.0 - z) + v_reset * z
        if kind == "subtract":
            return v - v_threshold * n
        return v

    def clamp(v, v_threshold):
        if floor == "none":
            return v
        if floor == "zero":
            return jnp.maximum(v, 0.0)
        low = -v_threshold
        return jnp.maximum(v - low, 0.0) + low

    return ResetRule(kind, detach, apply, clamp)


def fire_same_step(spikes: SpikeRule, reset: ResetRule) -> Callable:
    """``(v, v_threshold, v_reset, v_carried) -> (v, y)``: test the integrated ``v``, reset
    it in the same step, clamp; ``y`` is the output of the ``n`` spikes."""

    def fire(v, v_threshold, v_reset, v_carried=None):
        z, n = spikes.count(v, v_threshold)
        v = reset.apply(v, z, n, v_threshold, v_reset)
        return reset.floor(v, v_threshold), spikes.output(n)

    return fire


def fire_flagged(spikes: SpikeRule, reset: ResetRule, surrogate: Surrogate) -> Callable:
    """snnTorch's reset flag: ``q = H(v_carried - theta)`` (strict, no gradient); the
    integrated ``v`` is first reset by ``q`` (``v - q*theta`` or ``v - q*(v - v_reset)``),
    tested, ``z = H(v - theta)``, and reset by ``z - q``; binary spikes."""
    subtract = reset.kind == "subtract"

    def fire(v, v_threshold, v_reset, v_carried):
        q = jax.lax.stop_gradient(spike(v_carried - v_threshold, False, surrogate))
        v = v - q * v_threshold if subtract else v - q * (v - v_reset)
        z = spikes.test(v, v_threshold)
        d = z - q
        zr = jax.lax.stop_gradient(d) if reset.detach else d
        v = v - zr * v_threshold if subtract else v - zr * (v - v_reset)
        return reset.floor(v, v_threshold), spikes.output(z)

    return fire


class _FireBefore(NamedTuple):
    emit: Callable
    absorb: Callable


def fire_before(spikes: SpikeRule, reset: ResetRule, reset_carried: bool,
                reset_integrated: bool) -> _FireBefore:
    """The output of a step from the carried membrane, ``n = H(v[n] - theta)``, and the
    update that absorbs the input: reset the carried value by ``n`` (``reset_carried``),
    integrate, reset the integrated value (``reset_integrated``), clamp.

    Returns ``(emit, absorb)`` with ``emit(v, v_threshold) -> y`` and
    ``absorb(v, v_threshold, v_reset, integrate) -> (v, aux)``, where
    ``integrate(v) -> (v', aux)`` integrates the (reset) carried membrane and ``aux`` carries
    whatever else it updated (a synaptic current) through.
    """

    def emit(v, v_threshold):
        return spikes.output(spikes.count(v, v_threshold)[1])

    def absorb(v, v_threshold, v_reset, integrate_fn):
        z, n = spikes.count(v, v_threshold)
        if reset_carried:
            v = reset.apply(v, z, n, v_threshold, v_reset)
        v, aux = integrate_fn(v)
        if reset_integrated:
            v = reset.apply(v, z, n, v_threshold, v_reset)
        return reset.floor(v, v_threshold), aux

    return _FireBefore(emit, absorb)


# ----------------------------------------------------------------------------- cells


def rest_or_zero(rest: bool) -> Callable:
    """``(v_leak, shape, dtype) -> v0``: ``v = v_leak`` (at rest) or ``0``."""

    def initial(v_leak, shape, dtype):
        if rest:
            return jnp.broadcast_to(jnp.asarray(v_leak, dtype), shape)
        return jnp.zeros(shape, dtype)

    return initial


def zeros(v_leak, shape, dtype):
    """``v0 = 0`` whatever ``v_leak`` is (a cell without a rest value)."""
    return jnp.zeros(shape, dtype)


def one_variable_neuron(state_cls, use: Callable, coeffs: Callable, update: Callable,
                        initial: Callable, dtype_field: str, fire: Callable | None = None,
                        before: _FireBefore | None = None) -> Neuron:
    """A cell with one state variable ``v`` (I, IF, LI, LIF).

    Args:
        state_cls: the state NamedTuple (``LIFState``, ...).
        use: the parameter piece (:func:`neutral`).
        coeffs: ``params -> coeffs`` (after ``use``).
        update: ``(coeffs, v, x) -> v'``.
        initial: ``(v_leak, shape, dtype) -> v0``; the dtype is that of ``dtype_field``.
        fire: ``(v, v_threshold, v_reset, v_carried) -> (v, y)`` for a spiking cell.
        before: ``(emit, absorb)`` from :func:`fire_before` instead of ``fire``.

    The output of a non-spiking cell is ``v[n+1]``.
    """

    def prepare(params):
        return coeffs(use(params))

    def init_state(params, shape):
        params = use(params)
        v_leak = getattr(params, "v_leak", None)
        return state_cls(initial(v_leak, shape, jnp.result_type(getattr(params, dtype_field))))

    if before is not None:
        def emit(c, state):
            return before.emit(state.v, c.v_threshold)

        def absorb(c, state, x):
            v, _ = before.absorb(state.v, c.v_threshold, c.v_reset,
                                 lambda v: (update(c, v, x), None))
            return state_cls(v)

        def step(c, state, x):
            return absorb(c, state, x), emit(c, state)

        return Neuron(prepare, init_state, step, emit, absorb)

    if fire is None:
        def step(c, state, x):
            v = update(c, state.v, x)
            return state_cls(v), v
    else:
        def step(c, state, x):
            v, y = fire(update(c, state.v, x), c.v_threshold, c.v_reset, state.v)
            return state_cls(v), y

    return Neuron(prepare, init_state, step)


def cuba_neuron(use: Callable, coeffs: Callable, update: Callable, initial: Callable,
                current_at_rest: bool, fire: Callable | None = None,
                before: _FireBefore | None = None) -> Neuron:
    """The current-based cell (CubaLI, CubaLIF): state ``(i_syn, v)``.

    Args:
        use: the parameter piece.
        coeffs: ``params -> CubaCoeffs`` (after ``use``).
        update: ``(coeffs, state, x) -> (i_syn, v')``.
        initial: ``(v_leak, shape, dtype) -> v0``.
        current_at_rest: the current starts at ``v_leak`` (Norse) instead of 0.
        fire: as for :func:`one_variable_neuron` (CubaLIF).
        before: as for :func:`one_variable_neuron` (CubaLIF).

    The synaptic current is never reset. The output of CubaLI is ``v[n+1]``.
    """

    def prepare(params):
        return coeffs(use(params))

    def init_state(params, shape):
        params = use(params)
        dtype = jnp.result_type(params.tau_mem)
        if current_at_rest:
            i0 = jnp.broadcast_to(jnp.asarray(params.v_leak, dtype), shape)
        else:
            i0 = jnp.zeros(shape, dtype)
        return CubaLIState(i0, initial(params.v_leak, shape, dtype))

    if before is not None:
        def emit(c, state):
            return before.emit(state.v, c.v_threshold)

        def absorb(c, state, x):
            def integrate_fn(v):
                i_syn, v = update(c, CubaLIState(state.i_syn, v), x)
                return v, i_syn

            v, i_syn = before.absorb(state.v, c.v_threshold, c.v_reset, integrate_fn)
            return CubaLIState(i_syn, v)

        def step(c, state, x):
            return absorb(c, state, x), emit(c, state)

        return Neuron(prepare, init_state, step, emit, absorb)

    if fire is None:
        def step(c, state, x):
            i_syn, v = update(c, state, x)
            return CubaLIState(i_syn, v), v
    else:
        def step(c, state, x):
            i_syn, v = update(c, state, x)
            v, y = fire(v, c.v_threshold, c.v_reset, state.v)
            return CubaLIState(i_syn, v), y

    return Neuron(prepare, init_state, step)
