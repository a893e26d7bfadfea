r"""Nengo 4.1's neuron and synapse updates, as the NIR paper's Nengo conversion uses them.

Nengo has no NIR importer; the NIR paper (Pedersen et al., Nat. Commun. 2024) converted its
graphs by hand (NIR repository: ``paper/01_lif/lif_nengo.ipynb``, ``paper/03_rnn/
nir_to_nengo.py``, ``paper/02_cnn/nengo_import.py``). These kernels compute what Nengo 4.1.0
computes for the objects that conversion builds; the facts, with their place in Nengo's source:

* ``nengo.LIF.step`` (nengo/neurons.py L667-699): refractory time decremented by ``dt``, an
  effective step ``delta_t = clip(dt - refractory_time, 0, dt)``, the exact update
  ``voltage -= (J - voltage) * expm1(-delta_t/tau_rc)``, spikes where ``voltage > 1`` with
  output ``amplitude/dt``, the spike time inside the step ``t_spike = dt + tau_rc *
  log1p(-(voltage - 1)/(J - 1))``, ``voltage`` floored at ``min_voltage`` (default 0),
  spiking neurons set to 0 and their refractory time to ``tau_ref + t_spike``.
* The input current (nengo/builder/ensemble.py L224, nengo/builder/connection.py L308-331):
  ``J = bias + sum over connections of gain * (connection output)``; the paper sets
  ``bias = 0``, so ``J = gain * x``.
* ``nengo.synapses.Lowpass(tau)`` (nengo/synapses.py L430-454, L229-236, L355-366): the
  transfer function ``1/(tau s + 1)`` discretized by zero-order hold, run as
  ``X = a*X + b*u`` with ``a = exp(-dt/tau)`` and ``b = 1 - exp(-dt/tau)`` (Nengo evaluates
  both with a Pade matrix exponential, nengo/utils/filter_design.py L516-535, which can differ
  from the closed forms here by 2 and 4 units in the last place respectively; measured
  over 4000 time constants in [1.2e-4, 2e-2] s at dt = 1e-4).
  A synapse is built in ``mode="update"`` (nengo/builder/connection.py L303): whatever reads
  it in step ``n`` sees the value computed in step ``n - 1`` (operators are ordered sets,
  incs, reads, updates: nengo/utils/simulator.py L45-48), so a Lowpass connection delays by
  one step: :func:`lowpass_emit` gives that previous value, :func:`lowpass_absorb` the update.
* The paper's ``IF`` neuron type (nir_to_nengo.py, nengo_import.py): ``voltage += J*dt``,
  spikes where ``voltage > 1`` with output ``amplitude/dt``, spiking neurons set to 0.

With ``tau_ref = 0`` (the paper's choice) the refractory bookkeeping changes nothing: after a
spike the refractory time is ``t_spike <= dt``, one step later it is ``t_spike - dt <= 0``,
so ``delta_t`` is again the full ``dt`` (the rest of the spiking step is not integrated: the
neuron sits at 0 until the step ends). The kernels keep the general update anyway.

dtype: Nengo computes in float64 (``nengo.rc`` precision 64 bits) and every kernel here uses
Nengo's association, so in float64 they follow Nengo to the last bit up to the Lowpass
coefficients above and the summation order of matrix products. In float32 they are the same
update rounded to float32, which flips occasional spikes against Nengo.

All functions work on one unbatched sample of any shape (parameters broadcast against it).

The ``nengo`` profile (:func:`nirjax.profiles.nengo`) composes its neurons from the small
pieces at the end of this module (:func:`membrane`, :func:`lowpass`, :func:`cuba_membrane`,
with :func:`lowpass_coeffs`, :func:`cubalif_tau_syn` and :func:`paper_gain_product` computing
the conversion constants from the NIR parameters inside the compiled program, so gradients
reach them); the whole-step functions above (:func:`lif_step` with its refractory
bookkeeping, :func:`if_step`, :func:`lowpass_step`) are the same updates in Nengo's own
structure, checked against Nengo by ``tests/test_nengo.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .surrogate import Surrogate, spike

__all__ = [
    "LIFParams", "LIFState", "lif_init_state", "lif_current", "lif_voltage", "lif_step",
    "IFParams", "IFState", "if_init_state", "if_step",
    "LowpassCoeffs", "LowpassState", "lowpass_coeffs", "lowpass_init_state", "lowpass_emit",
    "lowpass_absorb", "lowpass_step",
    "cubalif_tau_syn", "paper_lif_params", "paper_cubalif_params", "paper_if_params",
    "paper_gain_product", "membrane", "lowpass", "cuba_membrane",
]


# ----------------------------------------------------------------------------- LIF


class LIFParams(NamedTuple):
    """A ``nengo.LIF`` population inside an ``Ensemble``.

    Attributes:
        tau_rc: membrane time constant (s).
        tau_ref: absolute refractory period (s); 0 in the NIR paper's conversion.
        gain: input gain, ``J = gain*x + bias``.
        bias: input bias; 0 in the NIR paper's conversion.
        amplitude: spike output scale; the output of a spike is ``amplitude/dt``.
        min_voltage: floor of the voltage (Nengo's default 0).
    """

    tau_rc: jax.Array
    tau_ref: jax.Array
    gain: jax.Array
    bias: jax.Array
    amplitude: jax.Array
    min_voltage: jax.Array


class LIFState(NamedTuple):
    """``nengo.LIF`` state: ``voltage`` (normalised: threshold 1) and ``refractory_time``."""

    voltage: jax.Array
    refractory_time: jax.Array


def lif_init_state(shape, dtype=jnp.float32) -> LIFState:
    """The paper's initial state: ``voltage = 0`` (``initial_state={"voltage":
    Choice([0])}``) and Nengo's default ``refractory_time = 0``."""
    zero = jnp.zeros(shape, dtype)
    return LIFState(zero, zero)


def lif_current(params: LIFParams, x):
    """Nengo's neuron input current ``J = bias + gain*x`` for the summed input ``x``."""
    return params.bias + params.gain * x


def lif_voltage(voltage, J, expm1_term):
    r"""Nengo's exact LIF membrane step with ``J`` held over the step (nengo/neurons.py L684):
    ``voltage - (J - voltage) * expm1_term`` with ``expm1_term = expm1(-dT/tau_rc)``, which
    solves ``tau_rc dv/dt = J - v`` over ``dT`` (the same association as Nengo's
    ``voltage -= (J - voltage) * expm1(...)``)."""
    return voltage - (J - voltage) * expm1_term


def lif_step(params: LIFParams, state: LIFState, x, dt: float,
             surrogate: Surrogate = Surrogate()):
    r"""One step of ``nengo.LIF`` (nengo/neurons.py L667-699).

    Continuous: ``tau_rc dv/dt = J - v`` with ``J = gain*x + bias`` held over the step; a
    spike when ``v`` reaches 1, then ``v = 0`` for ``tau_ref``.

    Discrete (in this order, as Nengo computes it)::

        r  = refractory_time - dt
        dT = clip(dt - r, 0, dt)
        v  = voltage - (J - voltage) * expm1(-dT / tau_rc)
        z  = H(v - 1)                                   strict: v > 1
        t* = dt + tau_rc * log1p(-(v - 1) / (J - 1))    where z (spike time in the step)
        v  = max(v, min_voltage);  v = 0 where z
        refractory_time = tau_ref + t* where z, else r
        output = z * (amplitude / dt)

    Args:
        params: the population's parameters.
        state: voltage and refractory time carried from the previous step.
        x: the neuron's summed input this step (before the gain).
        dt: time step (s).
        surrogate: surrogate derivative of ``H`` (the forward value is Nengo's).

    Returns:
        ``(state, output)``.
    """
    J = lif_current(params, x)
    refractory = state.refractory_time - dt
    delta_t = jnp.clip(dt - refractory, 0.0, dt)
    v = lif_voltage(state.voltage, J, jnp.expm1(-delta_t / params.tau_rc))
    z = spike(v - 1.0, False, surrogate)
    fired = z > 0
    safe = jnp.where(fired, J - 1.0, 1.0)  # J > v > 1 where fired; elsewhere unused
    t_spike = dt + params.tau_rc * jnp.log1p(-jnp.where(fired, v - 1.0, 0.0) / safe)
    v = jnp.where(v < params.min_voltage, params.min_voltage, v)
    v = v * (1.0 - z)
    refractory = jnp.where(fired, params.tau_ref + t_spike, refractory)
    out = z * (params.amplitude / dt)
    return LIFState(v, refractory.astype(state.refractory_time.dtype)), out


# ----------------------------------------------------------------------------- IF


class IFParams(NamedTuple):
    """The NIR paper's ``IF`` neuron type in an ``Ensemble``.

    Attributes:
        gain: input gain (``1/v_threshold/dt`` in the paper's conversion).
        bias: input bias (0).
        amplitude: spike output scale (``dt``: spikes of 1).
    """

    gain: jax.Array
    bias: jax.Array
    amplitude: jax.Array


class IFState(NamedTuple):
    """The IF state: ``voltage`` (threshold 1)."""

    voltage: jax.Array


def if_init_state(shape, dtype=jnp.float32) -> IFState:
    """``voltage = 0`` (the paper's ``initial_state``)."""
    return IFState(jnp.zeros(shape, dtype))


def if_step(params: IFParams, state: IFState, x, dt: float,
            surrogate: Surrogate = Surrogate()):
    r"""One step of the NIR paper's ``IF`` neuron type (paper/03_rnn/nir_to_nengo.py).

    Continuous: ``dv/dt = J``; a spike when ``v`` exceeds 1, then ``v = 0``.

    Discrete::

        J = bias + gain*x
        v = voltage + J*dt
        z = H(v - 1)                       strict: v > 1
        output = (amplitude/dt) * z;  v = 0 where output > 0

    With the paper's ``gain = 1/v_threshold/dt`` the increment ``J*dt`` is ``x/v_threshold``
    up to rounding (Nengo rounds ``gain*x`` and then ``*dt``; so does this kernel).

    Returns:
        ``(state, output)``.
    """
    J = params.bias + params.gain * x
    v = state.voltage + J * dt
    z = spike(v - 1.0, False, surrogate)
    out = (params.amplitude / dt) * z
    return IFState(v * (1.0 - z)), out


# ----------------------------------------------------------------------------- Lowpass


class LowpassCoeffs(NamedTuple):
    """Discrete ``nengo.synapses.Lowpass``: ``X = a*X + b*u``."""

    a: jax.Array
    b: jax.Array


class LowpassState(NamedTuple):
    """The filter state ``X`` (equal to the filter's output)."""

    x: jax.Array


def lowpass_coeffs(tau, dt: float) -> LowpassCoeffs:
    r"""Zero-order-hold discretization of ``tau dy/dt = u - y``: ``a = exp(-dt/tau)``,
    ``b = -expm1(-dt/tau)`` (= ``1 - a``, computed without cancellation).

    >>> c = lowpass_coeffs(jnp.float32(1e-3), 1e-4)
    >>> round(float(c.a), 6), round(float(c.b), 6)
    (0.904837, 0.095163)
    """
    k = -dt / jnp.asarray(tau)
    return LowpassCoeffs(jnp.exp(k), -jnp.expm1(k))


def lowpass_init_state(shape, dtype=jnp.float32) -> LowpassState:
    """``X = 0`` (Nengo's default ``y0 = 0``)."""
    return LowpassState(jnp.zeros(shape, dtype))


def lowpass_emit(coeffs: LowpassCoeffs, state: LowpassState):
    """The synapse's output this step, ``y[n] = X[n-1]``: it needs no input of step ``n``
    (no direct feedthrough), which is how a Lowpass closes a cycle in Nengo."""
    return state.x


def lowpass_absorb(coeffs: LowpassCoeffs, state: LowpassState, u) -> LowpassState:
    """The filter update with this step's input, ``X[n] = a*X[n-1] + b*u[n]`` (Nengo's
    ``LinearFilter.OneX``: ``X *= a; X += b*u``), run after every reader of ``y[n]``."""
    return LowpassState(coeffs.a * state.x + coeffs.b * u)


def lowpass_step(coeffs: LowpassCoeffs, state: LowpassState, u):
    r"""One step of a ``Lowpass`` synapse on a connection, with the one-step delay Nengo's
    operator order gives it.

    Continuous: ``tau dy/dt = u - y``.

    Discrete: the output of step ``n`` is the state computed in step ``n - 1``, and the
    state is updated with this step's input::

        y[n]   = X[n-1]                     (lowpass_emit)
        X[n]   = a*X[n-1] + b*u[n]          (lowpass_absorb);  X[-1] = 0

    Returns:
        ``(state, y)``.
    """
    return lowpass_absorb(coeffs, state, u), lowpass_emit(coeffs, state)


# ----------------------------------------------------------------------------- conversion


def cubalif_tau_syn(tau_syn, dt: float):
    r"""The NIR paper's Lowpass time constant for a CubaLIF synapse:
    ``tau' = -dt / log(1 - dt/tau_syn)``, chosen so that ``exp(-dt/tau') = 1 - dt/tau_syn``:
    the zero-order-hold filter then decays like the spec's forward-Euler synapse, and its
    input factor ``b = 1 - exp(-dt/tau') = dt/tau_syn`` (up to rounding). Defined for
    ``tau_syn > dt``."""
    return -dt / jnp.log(1.0 - dt / jnp.asarray(tau_syn))


def _first(a):
    """The first element, broadcast to ``a``'s shape: the paper's conversion takes one
    time constant per layer (``tau[0]``)."""
    a = jnp.asarray(a)
    return jnp.broadcast_to(a.reshape(-1)[0], a.shape)


def paper_lif_params(tau, v_threshold) -> LIFParams:
    """``nengo.LIF`` parameters of a NIR ``LIF`` in the paper's conversion (lif_nengo.ipynb,
    nir_to_nengo.py): ``tau_rc = tau[0]`` for the whole layer, ``tau_ref = 0``, ``gain =
    1/v_threshold``, ``bias = 0``, ``amplitude = 1`` (spikes of ``1/dt``), ``min_voltage =
    0``. (The conversion requires ``r = 1`` and ``v_leak = 0``; ``v_reset`` is not read.)"""
    thr = jnp.asarray(v_threshold)
    zero = jnp.zeros_like(thr)
    return LIFParams(_first(tau).astype(thr.dtype), zero, 1.0 / thr, zero, zero + 1.0, zero)


def paper_cubalif_params(tau_syn, tau_mem, r, w_in, v_threshold, dt: float,
                         product_dtype=None):
    """Parameters of a NIR ``CubaLIF`` in the paper's conversion (nir_to_nengo.py): a
    ``nengo.LIF`` with ``tau_rc = tau_mem[0]``, ``tau_ref = 0``, ``amplitude = dt`` (spikes
    of 1), ``gain = w_in*r[0]/v_threshold``, and a ``Lowpass(cubalif_tau_syn(tau_syn[0]))``
    on every incoming connection.

    Args:
        product_dtype: the dtype Nengo's ``w_in * r[0]`` is rounded to: NumPy multiplies the
            graph's arrays in their stored dtype (float32 for a float32 file), before the
            float64 division by ``v_threshold``. ``None``: the dtype of the inputs.

    Returns:
        ``(LIFParams, LowpassCoeffs)``. (The conversion requires one ``r``, ``tau_syn``,
        ``tau_mem`` and ``v_threshold`` per layer and ``v_leak = 0``; ``v_reset`` is not
        read.)
    """
    thr = jnp.asarray(v_threshold)
    w_in, r0 = jnp.asarray(w_in), _first(r)
    if product_dtype is not None:
        w_in, r0 = w_in.astype(product_dtype), r0.astype(product_dtype)
    gain = (w_in * r0).astype(thr.dtype) / thr
    zero = jnp.zeros_like(thr)
    lif = LIFParams(_first(tau_mem).astype(thr.dtype), zero, gain, zero, zero + dt, zero)
    return lif, lowpass_coeffs(cubalif_tau_syn(_first(tau_syn).astype(thr.dtype), dt), dt)


def paper_if_params(v_threshold, dt: float) -> IFParams:
    """The paper's ``IF`` ensemble (nir_to_nengo.py, nengo_import.py): ``gain =
    (1/v_threshold)/dt``, ``bias = 0``, ``amplitude = dt`` (spikes of 1). (The conversion
    requires ``r = 1``; ``v_reset`` is not read.)"""
    thr = jnp.asarray(v_threshold)
    zero = jnp.zeros_like(thr)
    return IFParams((1.0 / thr) / dt, zero, zero + dt)


def paper_gain_product(w_in, r0, product_dtype=None):
    """``w_in * r[0]`` of the paper's CubaLIF gain, rounded as NumPy rounds it: in
    ``product_dtype`` (the dtype the graph stores ``w_in`` and ``r`` in: a float32 product for
    a float32 file), then cast back to ``w_in``'s dtype for the division by ``v_threshold``.
    ``None``: in ``w_in``'s dtype."""
    w_in, r0 = jnp.asarray(w_in), jnp.asarray(r0)
    if product_dtype is None:
        return w_in * r0
    return (w_in.astype(product_dtype) * r0.astype(product_dtype)).astype(w_in.dtype)


# ----------------------------------------------------------------------------- pieces
# The pieces nirjax.semantics.neuron composes into the "nengo" form's neurons. Coefficients
# are nirjax.kernels.neurons' LIFCoeffs / LICoeffs / CubaCoeffs with these meanings:
#   LIF / IF   leak = expm1(-dt/tau_rc) (LIF), r = the gain (J = r*x), threshold 1, reset 0
#   LI         leak = a = exp(-dt/tau), r = b = -expm1(-dt/tau)
#   CubaLIF    syn = a and w_in = b of the synapse's Lowpass, mem = expm1(-dt/tau_rc),
#              r = the gain


def membrane(c, v, x):
    r"""``(coeffs, v, x) -> v'``: :func:`lif_voltage` with ``J = c.r * x`` (gain times the
    summed input, bias 0) and ``expm1_term = c.leak``.

    Continuous: ``tau_rc dv/dt = J - v``. Discrete: ``v' = v - (J - v)*expm1(-dt/tau_rc)``.
    """
    return lif_voltage(v, c.r * x, c.leak)


def lowpass(c, v, x):
    r"""``(coeffs, X, u) -> X'``: the Lowpass update ``X' = a*X + b*u`` (``c.leak = a``,
    ``c.r = b``; Nengo's ``X *= a; X += b*u``).

    Continuous: ``tau dX/dt = u - X``; zero-order hold: ``a = exp(-dt/tau)``,
    ``b = -expm1(-dt/tau)``.
    """
    return c.leak * v + c.r * x


def cuba_membrane(new_current: bool = True):
    r"""``(coeffs, state, x) -> (X', v')``: a Nengo LIF population behind a Lowpass synapse.

    Continuous: ``tau' dX/dt = u - X``, ``tau_rc dv/dt = gain*X - v``. Discrete: the
    synapse ``X' = a*X + b*x`` (``c.syn = a``, ``c.w_in = b``), then the membrane
    ``v' = v - (gain*X* - v)*expm1(-dt/tau_rc)`` (``c.r = gain``, ``c.mem = expm1(...)``)
    with ``X*`` the updated ``X'`` (``new_current``) or the carried ``X``. Nengo's neurons
    read the filter's value of the previous step: the ``nengo`` profile delays ``x`` by one
    step (an inserted ``Delay``) and uses the updated value, which is that same number.
    """

    def update(c, state, x):
        i_syn = c.syn * state.i_syn + c.w_in * x
        used = i_syn if new_current else state.i_syn
        return i_syn, lif_voltage(state.v, c.r * used, c.mem)

    return update
