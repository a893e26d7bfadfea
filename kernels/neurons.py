r"""Neuron kernels: I, IF, LI, LIF, CubaLI, CubaLIF.

Every kernel works on ONE unbatched sample (the compiler ``vmap``\ s it over the batch) and
is split in three pure functions:

* ``prepare(params, cfg) -> coeffs``: everything that depends on parameters and ``dt`` but not
  on time (decay factors, gains). The compiler calls it once per run, outside the time loop,
  so gradients still reach ``tau`` and ``r`` through it.
* ``init_state(params, shape, cfg) -> state``: the state at t = 0.
* ``step(coeffs, state, x, cfg) -> (state, y)``: one time step of length ``dt``.

Conventions shared by all kernels (``cfg`` is a :class:`NeuronConfig`):

* ``x`` is the summed input of the node at step n (the fan-in sum of the graph), held
  constant over the step ``[t_n, t_n + dt)``.
* Integrator ``'euler'``: forward Euler, ``v[n+1] = v[n] + dt * f(v[n], x[n])``.
  Integrator ``'exact'``: the exact solution of the linear ODE over one step with ``x`` held
  constant (zero-order hold), i.e. exponential integration.
* Spike test: ``z = H(v - v_threshold)`` on the freshly integrated ``v``; ``H`` is the strict
  step ``v > v_threshold`` (``cfg.threshold_test == '>'``, the NIR spec) or the inclusive
  ``v >= v_threshold`` (``'>='``). Its derivative is ``cfg.surrogate``'s.
* Reset, in the same step as the spike: ``'v_reset'`` sets ``v = v_reset`` (NIR >= 1.0.6),
  ``'subtract'`` sets ``v = v - v_threshold`` (the spec's docstring before 1.0.6),
  ``'none'`` leaves ``v``. Written as ``v*(1-z) + v_reset*z`` / ``v - v_threshold*z`` so the
  surrogate gradient flows through the reset unless ``cfg.detach_reset``.
* The state returned (and recorded) is the state AFTER the reset.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .surrogate import Surrogate, spike

__all__ = [
    "NeuronConfig",
    "IParams", "IState", "i_prepare", "i_init_state", "i_step",
    "IFParams", "IFState", "if_prepare", "if_init_state", "if_step",
    "LIParams", "LIState", "li_prepare", "li_init_state", "li_step",
    "LIFParams", "LIFState", "lif_prepare", "lif_init_state", "lif_step",
    "CubaLIParams", "CubaLIState", "cubali_prepare", "cubali_init_state", "cubali_step",
    "CubaLIFParams", "CubaLIFState", "cubalif_prepare", "cubalif_init_state", "cubalif_step",
]

INTEGRATORS = ("euler", "exact")
RESETS = ("v_reset", "subtract", "none")
THRESHOLD_TESTS = (">", ">=")


class NeuronConfig(NamedTuple):
    """Static (hashable) options of a neuron kernel, resolved by the compiler.

    Attributes:
        dt: step length, in the graph's time unit.
        integrator: ``'euler'`` or ``'exact'``.
        reset: ``'v_reset'``, ``'subtract'`` or ``'none'``.
        threshold_test: ``'>'`` or ``'>='``.
        cuba_current: for CubaLI/CubaLIF under Euler, whether ``v`` integrates the synaptic
            current of the previous step (``'old'``: plain forward Euler of the coupled
            system) or the one just updated (``'new'``).
        initial_v: ``'rest'`` (v = v_leak at t = 0) or ``'zero'``.
        surrogate: the spike function's surrogate derivative.
        detach_reset: stop gradients through the reset term.
    """

    dt: float
    integrator: str = "euler"
    reset: str = "v_reset"
    threshold_test: str = ">"
    cuba_current: str = "old"
    initial_v: str = "rest"
    surrogate: Surrogate = Surrogate()
    detach_reset: bool = False


# ----------------------------------------------------------------------------- helpers


def _fire_and_reset(v, v_threshold, v_reset, cfg: NeuronConfig):
    """Spike test on ``v`` and the reset; returns ``(v_after_reset, z)``."""
    z = spike(v - v_threshold, cfg.threshold_test == ">=", cfg.surrogate)
    zr = jax.lax.stop_gradient(z) if cfg.detach_reset else z
    if cfg.reset == "v_reset":
        v = v * (1.0 - zr) + v_reset * zr
    elif cfg.reset == "subtract":
        v = v - v_threshold * zr
    return v, z


def _initial_v(v_leak, shape, cfg: NeuronConfig, dtype):
    if cfg.initial_v == "rest":
        return jnp.broadcast_to(jnp.asarray(v_leak, dtype), shape)
    return jnp.zeros(shape, dtype)


def _leak_coeff(tau, cfg: NeuronConfig):
    """``dt/tau`` (Euler) or ``exp(-dt/tau)`` (exact)."""
    if cfg.integrator == "exact":
        return jnp.exp(-cfg.dt / tau)
    return cfg.dt / tau


def _leaky_update(v, drive, leak, v_leak, cfg: NeuronConfig):
    """One step of ``tau dv/dt = (v_leak - v) + drive`` with ``drive`` held constant.

    Euler: ``v + (dt/tau) * ((v_leak - v) + drive)``; exact: ``target + (v - target) *
    exp(-dt/tau)`` with ``target = v_leak + drive``.
    """
    if cfg.integrator == "exact":
        target = v_leak + drive
        return target + (v - target) * leak
    return v + leak * ((v_leak - v) + drive)


# ----------------------------------------------------------------------------- I


class IParams(NamedTuple):
    """Parameters of the NIR ``I`` (integrator) node."""

    r: jax.Array


class IState(NamedTuple):
    """State of ``I``: the integrated value ``v``."""

    v: jax.Array


def i_prepare(params: IParams, cfg: NeuronConfig) -> IParams:
    """I has no time-invariant coefficients beyond its parameters."""
    return params


def i_init_state(params: IParams, shape, cfg: NeuronConfig) -> IState:
    """``v = 0`` at t = 0 (an integrator has no rest value)."""
    return IState(jnp.zeros(shape, jnp.result_type(params.r)))


def i_step(coeffs: IParams, state: IState, x, cfg: NeuronConfig):
    r"""Integrator.

    NIR: ``dv/dt = R * I``; output ``v``.

    Discrete (Euler and exact coincide for input held over the step):
    ``v[n+1] = v[n] + dt * R * x[n]``; output ``v[n+1]``.
    """
    v = state.v + cfg.dt * (coeffs.r * x)
    return IState(v), v


# ----------------------------------------------------------------------------- IF


class IFParams(NamedTuple):
    """Parameters of the NIR ``IF`` node."""

    r: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


class IFState(NamedTuple):
    """State of ``IF``: membrane potential ``v``."""

    v: jax.Array


def if_prepare(params: IFParams, cfg: NeuronConfig) -> IFParams:
    """IF has no time-invariant coefficients beyond its parameters."""
    return params


def if_init_state(params: IFParams, shape, cfg: NeuronConfig) -> IFState:
    """``v = 0`` at t = 0 (IF has no leak potential)."""
    return IFState(jnp.zeros(shape, jnp.result_type(params.r)))


def if_step(coeffs: IFParams, state: IFState, x, cfg: NeuronConfig):
    r"""Integrate-and-fire.

    NIR: ``dv/dt = R * I``; ``z = H(v - v_threshold)``; on a spike ``v <- v_reset``.

    Discrete: ``v' = v[n] + dt * R * x[n]`` (exact for held input, so both integrators);
    ``z = H(v' - v_threshold)``; ``v[n+1] = reset(v', z)``; output ``z``.
    """
    v = state.v + cfg.dt * (coeffs.r * x)
    v, z = _fire_and_reset(v, coeffs.v_threshold, coeffs.v_reset, cfg)
    return IFState(v), z


# ----------------------------------------------------------------------------- LI


class LIParams(NamedTuple):
    """Parameters of the NIR ``LI`` node."""

    tau: jax.Array
    r: jax.Array
    v_leak: jax.Array


class LIState(NamedTuple):
    """State of ``LI``: membrane potential ``v``."""

    v: jax.Array


class LICoeffs(NamedTuple):
    """``leak`` is ``dt/tau`` (Euler) or ``exp(-dt/tau)`` (exact)."""

    leak: jax.Array
    r: jax.Array
    v_leak: jax.Array


def li_prepare(params: LIParams, cfg: NeuronConfig) -> LICoeffs:
    """Leak coefficient of the chosen integrator."""
    return LICoeffs(_leak_coeff(params.tau, cfg), params.r, params.v_leak)


def li_init_state(params: LIParams, shape, cfg: NeuronConfig) -> LIState:
    """``v = v_leak`` (``initial_v='rest'``) or ``0``."""
    return LIState(_initial_v(params.v_leak, shape, cfg, jnp.result_type(params.tau)))


def li_step(coeffs: LICoeffs, state: LIState, x, cfg: NeuronConfig):
    r"""Leaky integrator.

    NIR: ``tau dv/dt = (v_leak - v) + R * I``; output ``v``.

    Discrete, Euler: ``v[n+1] = v[n] + (dt/tau) * ((v_leak - v[n]) + R*x[n])``.
    Exact: ``v[n+1] = u + (v[n] - u) * exp(-dt/tau)`` with ``u = v_leak + R*x[n]``.
    Output ``v[n+1]``.
    """
    v = _leaky_update(state.v, coeffs.r * x, coeffs.leak, coeffs.v_leak, cfg)
    return LIState(v), v


# ----------------------------------------------------------------------------- LIF


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


class LIFCoeffs(NamedTuple):
    """``leak`` is ``dt/tau`` (Euler) or ``exp(-dt/tau)`` (exact)."""

    leak: jax.Array
    r: jax.Array
    v_leak: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


def lif_prepare(params: LIFParams, cfg: NeuronConfig) -> LIFCoeffs:
    """Leak coefficient of the chosen integrator."""
    return LIFCoeffs(_leak_coeff(params.tau, cfg), params.r, params.v_leak,
                     params.v_threshold, params.v_reset)


def lif_init_state(params: LIFParams, shape, cfg: NeuronConfig) -> LIFState:
    """``v = v_leak`` (``initial_v='rest'``) or ``0``."""
    return LIFState(_initial_v(params.v_leak, shape, cfg, jnp.result_type(params.tau)))


def lif_step(coeffs: LIFCoeffs, state: LIFState, x, cfg: NeuronConfig):
    r"""Leaky integrate-and-fire.

    NIR: ``tau dv/dt = (v_leak - v) + R * I``; ``z = H(v - v_threshold)``; on a spike
    ``v <- v_reset``.

    Discrete: ``v'`` from :func:`li_step`'s update (Euler or exact);
    ``z = H(v' - v_threshold)``; ``v[n+1] = reset(v', z)``; output ``z``.
    """
    v = _leaky_update(state.v, coeffs.r * x, coeffs.leak, coeffs.v_leak, cfg)
    v, z = _fire_and_reset(v, coeffs.v_threshold, coeffs.v_reset, cfg)
    return LIFState(v), z


# ----------------------------------------------------------------------------- CubaLI(F)


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


class CubaCoeffs(NamedTuple):
    """Time-invariant coefficients of the current-based cell.

    Euler: ``syn = dt/tau_syn``, ``mem = dt/tau_mem``, ``cross`` unused (zero).
    Exact: ``syn = exp(-dt/tau_syn)``, ``mem = exp(-dt/tau_mem)``, and
    ``cross = tau_syn * (syn - mem) / (tau_syn - tau_mem)``; when the time constants are
    within 1e-6 of each other, its expansion ``(dt/tau_mem) * mem * (1 + d*dt/(2*tau_mem**2))``
    in ``d = tau_syn - tau_mem`` (the limit ``(dt/tau) * exp(-dt/tau)`` at ``d = 0``).
    """

    syn: jax.Array
    mem: jax.Array
    cross: jax.Array
    r: jax.Array
    v_leak: jax.Array
    w_in: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


def _cuba_prepare(p, v_threshold, v_reset, cfg: NeuronConfig) -> CubaCoeffs:
    if cfg.integrator == "exact":
        syn = jnp.exp(-cfg.dt / p.tau_syn)
        mem = jnp.exp(-cfg.dt / p.tau_mem)
        diff = p.tau_syn - p.tau_mem
        close = jnp.abs(diff) <= 1e-6 * jnp.abs(p.tau_mem)
        safe_diff = jnp.where(close, 1.0, diff)  # keeps the unused branch's gradient finite
        # near-equal time constants: first-order expansion of the quotient in diff, which
        # avoids its cancellation (the zeroth-order limit alone is off by ~diff/tau_mem)
        near = cfg.dt / p.tau_mem * mem * (1.0 + diff * cfg.dt / (2.0 * p.tau_mem ** 2))
        cross = jnp.where(close, near, p.tau_syn * (syn - mem) / safe_diff)
    else:
        syn = cfg.dt / p.tau_syn
        mem = cfg.dt / p.tau_mem
        cross = jnp.zeros_like(syn)
    return CubaCoeffs(syn, mem, cross, p.r, p.v_leak, p.w_in, v_threshold, v_reset)


def _cuba_update(c: CubaCoeffs, state: CubaLIState, x, cfg: NeuronConfig):
    """Integrate synaptic current and membrane over one step; returns ``(i_syn, v)``."""
    drive = c.w_in * x
    if cfg.integrator == "exact":
        i_syn = drive + (state.i_syn - drive) * c.syn
        target = c.v_leak + c.r * drive
        v = target + (state.v - target) * c.mem + c.r * (state.i_syn - drive) * c.cross
        return i_syn, v
    i_syn = state.i_syn + c.syn * (drive - state.i_syn)
    i_used = i_syn if cfg.cuba_current == "new" else state.i_syn
    v = state.v + c.mem * ((c.v_leak - state.v) + c.r * i_used)
    return i_syn, v


def cubali_prepare(params: CubaLIParams, cfg: NeuronConfig) -> CubaCoeffs:
    """Decay coefficients of the chosen integrator (see :class:`CubaCoeffs`)."""
    zero = jnp.zeros_like(params.v_leak)
    return _cuba_prepare(params, zero, zero, cfg)


def cubali_init_state(params: CubaLIParams, shape, cfg: NeuronConfig) -> CubaLIState:
    """``i_syn = 0`` and ``v = v_leak`` (``initial_v='rest'``) or ``0``."""
    dtype = jnp.result_type(params.tau_mem)
    return CubaLIState(jnp.zeros(shape, dtype), _initial_v(params.v_leak, shape, cfg, dtype))


def cubali_step(coeffs: CubaCoeffs, state: CubaLIState, x, cfg: NeuronConfig):
    r"""Current-based leaky integrator.

    NIR: ``tau_syn dI/dt = -I + w_in * S``; ``tau_mem dv/dt = (v_leak - v) + R * I``;
    output ``v``.

    Discrete, Euler: ``I[n+1] = I[n] + (dt/tau_syn) * (w_in*x[n] - I[n])`` and
    ``v[n+1] = v[n] + (dt/tau_mem) * ((v_leak - v[n]) + R*I*)`` with ``I* = I[n]``
    (``cuba_current='old'``, forward Euler of the coupled system) or ``I* = I[n+1]``
    (``'new'``).

    Exact (zero-order hold on ``x``; ``a = exp(-dt/tau_syn)``, ``b = exp(-dt/tau_mem)``,
    ``d = w_in*x[n]``): ``I[n+1] = d + (I[n] - d) * a`` and
    ``v[n+1] = u + (v[n] - u) * b + R * (I[n] - d) * tau_syn*(a - b)/(tau_syn - tau_mem)``
    with ``u = v_leak + R*d``. Output ``v[n+1]``.
    """
    i_syn, v = _cuba_update(coeffs, state, x, cfg)
    return CubaLIState(i_syn, v), v


def cubalif_prepare(params: CubaLIFParams, cfg: NeuronConfig) -> CubaCoeffs:
    """Decay coefficients of the chosen integrator (see :class:`CubaCoeffs`)."""
    return _cuba_prepare(params, params.v_threshold, params.v_reset, cfg)


def cubalif_init_state(params: CubaLIFParams, shape, cfg: NeuronConfig) -> CubaLIState:
    """``i_syn = 0`` and ``v = v_leak`` (``initial_v='rest'``) or ``0``."""
    dtype = jnp.result_type(params.tau_mem)
    return CubaLIState(jnp.zeros(shape, dtype), _initial_v(params.v_leak, shape, cfg, dtype))


def cubalif_step(coeffs: CubaCoeffs, state: CubaLIState, x, cfg: NeuronConfig):
    r"""Current-based leaky integrate-and-fire.

    NIR: as CubaLI, plus ``z = H(v - v_threshold)`` and ``v <- v_reset`` on a spike (the
    synaptic current is not reset).

    Discrete: ``(I[n+1], v')`` from :func:`cubali_step`'s update;
    ``z = H(v' - v_threshold)``; ``v[n+1] = reset(v', z)``; output ``z``.
    """
    i_syn, v = _cuba_update(coeffs, state, x, cfg)
    v, z = _fire_and_reset(v, coeffs.v_threshold, coeffs.v_reset, cfg)
    return CubaLIState(i_syn, v), z
