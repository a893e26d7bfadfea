r"""Neuron kernels: I, IF, LI, LIF, CubaLI, CubaLIF.

Every kernel works on ONE unbatched sample (the compiler ``vmap``\ s it over the batch) and
is split in three pure functions:

* ``prepare(params, cfg) -> coeffs``: everything that depends on parameters and ``dt`` but not
  on time (decay factors, gains). The compiler calls it once per run, outside the time loop,
  so gradients still reach ``tau`` and ``r`` through it.
* ``init_state(params, shape, cfg) -> state``: the state at t = 0.
* ``step(coeffs, state, x, cfg) -> (state, y)``: one time step of length ``dt``.

The spiking kernels (IF, LIF, CubaLIF) also have ``emit(coeffs, state, cfg) -> y`` and
``absorb(coeffs, state, x, cfg) -> state``, used when ``cfg.fire == 'before'`` (the output of a
step then depends on the state only, see below).

Conventions shared by all kernels (``cfg`` is a :class:`NeuronConfig`; the defaults are the
NIR 1.0.8 specification, see :mod:`nirjax.semantics` for the platform profiles that set the
other options):

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

Options beyond the spec (each the convention of some NIR platform; all default to the spec):

* ``form``, the arithmetic form of the membrane update (float32 rounding depends on it):

  - ``'nir'``: as above, ``v + (dt/tau)*((v_leak - v) + R*x)`` (Euler) or the exact update.
  - ``'norse'``: Euler with the rate ``dt*(1/tau)`` (``1/tau`` rounded first) and Norse's
    association: LIF ``v + (dt*(1/tau))*((R*x + v_leak) - v)``, LI and a CubaLIF synapse
    ``i + (dt*(1/tau))*((v_leak - i) + w_in*x)``; a CubaLIF synapse also relaxes to, and
    starts at, the neuron's ``v_leak``. IF and I are as ``'nir'``.
  - ``'decay'``: ``v[n+1] = (a*v[n] + g*x[n]) + c`` with the decay ``a = 1 - dt/tau``
    (Euler) or ``exp(-dt/tau)`` (exact), IF/I ``a = 1``; ``g`` and ``c`` from
    ``input_gain``. CubaLI(F): ``i[n+1] = b*i[n] + g_s*x[n]`` (``synapse='decay_add'``) or
    ``b*(i[n] + g_s*x[n])`` (``'add_decay'``), ``v[n+1] = (a*v[n] + g_m*i*) + c``.

* ``input_gain`` (form ``'decay'``): ``'nir'``: ``g = (dt/tau)*R`` (exact: ``(1-a)*R``), ``c =
  (dt/tau)*v_leak``, CubaLIF ``g_s = (dt/tau_syn)*w_in``, ``g_m = (dt/tau_mem)*R``: the
  spec's Euler update, re-associated; IF/I ``g = dt*R``. ``'unit'``: the input is added as is,
  ``g = g_s = g_m = 1``, ``c = v_leak`` (a per-step bias). ``'threshold'`` (spiking nodes; LI,
  CubaLI and I keep ``'nir'``): the spec's Euler update expressed in units of ``v / S``, so that
  ``g = g_s = g_m = 1`` and the threshold becomes ``v_threshold / S``, with ``S = (R*dt)/tau``
  (LIF), ``S = (w_in*(dt/tau_syn)) * ((R*dt)/tau_mem)`` (CubaLIF), ``S = R`` (IF); ``v_reset``
  and ``c = (dt/tau)*v_leak`` are divided by ``S`` too, and a layer whose every ``S`` is within
  ``1e-8 + 1e-5`` of 1 is not rescaled at all. The state (and what ``record`` returns) is then
  in those scaled units.
  ``'input'``: as ``'nir'``, except that a CubaLI(F) membrane adds the current unscaled
  (``g_m = 1``: only the input is scaled, as if ``R = tau_mem/dt``).
* ``ignore``: parameters replaced by their neutral value before use (``r`` -> 1, ``v_leak`` ->
  0, ``v_reset`` -> 0, ``w_in`` -> 1), for platforms that drop them.
* ``clip_decay``: clip ``a`` and ``b`` to ``[0, 1]``; ``fixed_decay``: use this ``a`` instead.
* ``fire``: ``'after'`` (test the freshly integrated ``v``, above) or ``'before'``: the step's
  output is the test of the membrane carried in from the previous step, ``z[n] = H(v[n] -
  v_threshold)``, so a neuron adds one step of latency and its output does not depend on the
  same step's input; the reset by that ``z`` is applied to the integrated value
  (``reset_at='integrated'``: ``v[n+1] = reset(a*v[n] + g*x[n] + c)``), to the carried value
  before integrating (``'carried'``: ``v[n+1] = a*reset(v[n]) + ...``) or to both (``'both'``).
* ``reset_flag='previous_v'``: a reset flag ``q = H(v[n] - v_threshold)`` (strict) is computed
  from the carried membrane; the integrated ``v'`` is first reset by ``q`` (``v' - q*theta`` or
  ``v' - q*(v' - v_reset)``), then tested, ``z = H(v' - theta)``, and reset by ``z - q``. With
  reset to a value and ``theta > 0`` this equals the plain reset; with subtraction a membrane
  left above threshold needs ``2*theta`` to fire again.
* ``spikes='multi'``: ``n = H(v - theta) * floor(v / theta)`` spikes per step (several when ``v``
  is several thresholds high); a subtractive reset removes ``n*theta``.
* ``spike_amplitude='dirac'``: the output is ``n / dt`` (a Dirac of area ``n``) instead of ``n``.
* ``v_min='-threshold'``: after the reset ``v = max(v - m, 0) + m`` with ``m = -theta``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .surrogate import Surrogate, spike

__all__ = [
    "NeuronConfig", "is_spec_form",
    "IParams", "IState", "i_prepare", "i_init_state", "i_step",
    "IFParams", "IFState", "if_prepare", "if_init_state", "if_step", "if_emit", "if_absorb",
    "LIParams", "LIState", "li_prepare", "li_init_state", "li_step",
    "LIFParams", "LIFState", "lif_prepare", "lif_init_state", "lif_step", "lif_emit",
    "lif_absorb",
    "CubaLIParams", "CubaLIState", "cubali_prepare", "cubali_init_state", "cubali_step",
    "CubaLIFParams", "CubaLIFState", "cubalif_prepare", "cubalif_init_state", "cubalif_step",
    "cubalif_emit", "cubalif_absorb",
]

INTEGRATORS = ("euler", "exact")
RESETS = ("v_reset", "subtract", "none")
THRESHOLD_TESTS = (">", ">=")
FORMS = ("nir", "norse", "decay")
INPUT_GAINS = ("nir", "unit", "threshold", "input")
SYNAPSES = ("decay_add", "add_decay")
FIRES = ("after", "before")
RESET_ATS = ("integrated", "carried", "both")
RESET_FLAGS = ("spike", "previous_v")
SPIKES = ("binary", "multi")
SPIKE_AMPLITUDES = ("unit", "dirac")
V_MINS = ("none", "-threshold")
IGNORABLE = ("r", "v_leak", "v_reset", "w_in")
_NEUTRAL = {"r": 1.0, "v_leak": 0.0, "v_reset": 0.0, "w_in": 1.0}
# snnTorch's importer leaves a threshold unscaled when np.allclose(S, 1) (rtol 1e-5, atol 1e-8)
_UNIT_SCALE_ATOL = 1e-8 + 1e-5


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
        form: arithmetic form of the update, ``'nir'``, ``'norse'`` or ``'decay'``.
        input_gain: ``'nir'``, ``'unit'`` or ``'threshold'`` (form ``'decay'``).
        synapse: ``'decay_add'`` or ``'add_decay'`` (form ``'decay'``, CubaLI/CubaLIF).
        ignore: names of parameters replaced by their neutral value.
        clip_decay: clip the decay factors to ``[0, 1]`` (form ``'decay'``).
        fixed_decay: a decay factor used instead of the one from ``tau`` (form ``'decay'``).
        fire: ``'after'`` or ``'before'`` (see the module docstring).
        reset_at: ``'integrated'``, ``'carried'`` or ``'both'`` (``fire='before'``).
        reset_flag: ``'spike'`` or ``'previous_v'``.
        spikes: ``'binary'`` or ``'multi'``.
        spike_amplitude: ``'unit'`` or ``'dirac'``.
        v_min: ``'none'`` or ``'-threshold'``.
    """

    dt: float
    integrator: str = "euler"
    reset: str = "v_reset"
    threshold_test: str = ">"
    cuba_current: str = "old"
    initial_v: str = "rest"
    surrogate: Surrogate = Surrogate()
    detach_reset: bool = False
    form: str = "nir"
    input_gain: str = "nir"
    synapse: str = "decay_add"
    ignore: tuple = ()
    clip_decay: bool = False
    fixed_decay: float | None = None
    fire: str = "after"
    reset_at: str = "integrated"
    reset_flag: str = "spike"
    spikes: str = "binary"
    spike_amplitude: str = "unit"
    v_min: str = "none"


def is_spec_form(cfg) -> bool:
    """Whether ``cfg`` uses none of the platform options (every field after
    ``detach_reset`` at its default): whole-chunk kernels written for the spec's update
    (``pallas_lif``, ``linear_scan``) may replace the step only then."""
    if not isinstance(cfg, NeuronConfig):
        return True
    return all(getattr(cfg, f) == NeuronConfig._field_defaults[f]
               for f in NeuronConfig._fields[NeuronConfig._fields.index("form"):])


# ----------------------------------------------------------------------------- helpers


def _use(params, cfg: NeuronConfig):
    """``params`` with the fields named in ``cfg.ignore`` set to their neutral value."""
    if not cfg.ignore:
        return params
    changes = {f: jnp.full_like(getattr(params, f), _NEUTRAL[f])
               for f in cfg.ignore if f in params._fields}
    return params._replace(**changes) if changes else params


def _test(v, v_threshold, cfg: NeuronConfig):
    """The binary spike test ``H(v - v_threshold)`` with the configured comparison."""
    return spike(v - v_threshold, cfg.threshold_test == ">=", cfg.surrogate)


def _count(v, v_threshold, cfg: NeuronConfig):
    """``(z, n)``: the binary test and the number of spikes (``n = z`` unless multi)."""
    z = _test(v, v_threshold, cfg)
    if cfg.spikes == "multi":
        # n = z * floor(v/theta); the surrogate gradient flows through z
        n = z * jax.lax.stop_gradient(jnp.maximum(jnp.floor(v / v_threshold), 1.0))
        return z, n
    return z, z


def _reset(v, z, n, v_threshold, v_reset, cfg: NeuronConfig):
    """Apply the reset for ``z`` (binary) / ``n`` (spike count) to ``v``."""
    if cfg.detach_reset:
        z, n = jax.lax.stop_gradient(z), jax.lax.stop_gradient(n)
    if cfg.reset == "v_reset":
        return v * (1.0 - z) + v_reset * z
    if cfg.reset == "subtract":
        return v - v_threshold * n
    return v


def _clamp(v, v_threshold, cfg: NeuronConfig):
    if cfg.v_min == "-threshold":
        low = -v_threshold
        return jnp.maximum(v - low, 0.0) + low
    return v


def _output(n, cfg: NeuronConfig):
    return n * (1.0 / cfg.dt) if cfg.spike_amplitude == "dirac" else n


def _fire_and_reset(v, v_threshold, v_reset, cfg: NeuronConfig, v_carried=None):
    """Spike test on ``v`` and the reset; returns ``(v_after_reset, output)``.

    ``v_carried`` is the membrane carried into the step (needed for
    ``reset_flag='previous_v'``).
    """
    if cfg.reset_flag == "previous_v" and cfg.reset != "none":
        q = jax.lax.stop_gradient(spike(v_carried - v_threshold, False, cfg.surrogate))
        if cfg.reset == "subtract":
            v = v - q * v_threshold
        else:
            v = v - q * (v - v_reset)
        z = _test(v, v_threshold, cfg)
        d = z - q
        zr = jax.lax.stop_gradient(d) if cfg.detach_reset else d
        v = v - zr * v_threshold if cfg.reset == "subtract" else v - zr * (v - v_reset)
        return _clamp(v, v_threshold, cfg), _output(z, cfg)
    z, n = _count(v, v_threshold, cfg)
    v = _reset(v, z, n, v_threshold, v_reset, cfg)
    return _clamp(v, v_threshold, cfg), _output(n, cfg)


def _initial_v(v_leak, shape, cfg: NeuronConfig, dtype):
    if cfg.initial_v == "rest":
        return jnp.broadcast_to(jnp.asarray(v_leak, dtype), shape)
    return jnp.zeros(shape, dtype)


def _leak_coeff(tau, cfg: NeuronConfig):
    """``dt/tau`` (Euler) or ``exp(-dt/tau)`` (exact); form 'norse': ``dt*(1/tau)``."""
    if cfg.integrator == "exact":
        return jnp.exp(-cfg.dt / tau)
    if cfg.form == "norse":
        return cfg.dt * (1.0 / tau)
    return cfg.dt / tau


def _decay(tau, cfg: NeuronConfig):
    """Decay factor per step of the 'decay' form: ``1 - dt/tau`` or ``exp(-dt/tau)``."""
    if cfg.fixed_decay is not None:
        return jnp.full_like(tau, cfg.fixed_decay)
    a = jnp.exp(-cfg.dt / tau) if cfg.integrator == "exact" else 1.0 - cfg.dt / tau
    return jnp.clip(a, 0.0, 1.0) if cfg.clip_decay else a


def _rate(tau, a, cfg: NeuronConfig):
    """The spec's input factor per step: ``dt/tau`` (Euler) or ``1 - exp(-dt/tau)``."""
    return 1.0 - a if cfg.integrator == "exact" else cfg.dt / tau


def _unit_scale(scale):
    """snnTorch's rule: no rescaling when every factor is within 1e-5 of 1."""
    return jnp.where(jnp.all(jnp.abs(scale - 1.0) <= _UNIT_SCALE_ATOL), jnp.ones_like(scale),
                     scale)


def _leaky_update(v, drive, leak, v_leak, cfg: NeuronConfig):
    """One step of ``tau dv/dt = (v_leak - v) + drive`` with ``drive`` held constant.

    Euler: ``v + (dt/tau) * ((v_leak - v) + drive)``; exact: ``target + (v - target) *
    exp(-dt/tau)`` with ``target = v_leak + drive``. (Form 'norse' passes ``leak =
    dt*(1/tau)``; the association is the same as Norse's leaky-integrator box.)
    """
    if cfg.integrator == "exact":
        target = v_leak + drive
        return target + (v - target) * leak
    return v + leak * ((v_leak - v) + drive)


class _MemCoeffs(NamedTuple):
    """One-variable update ``v' = (a*v + g*x) + c`` (form 'decay') with its threshold."""

    a: jax.Array
    g: jax.Array
    c: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


def _decay_step(c: _MemCoeffs, v, x):
    return (c.a * v + c.g * x) + c.c


# ----------------------------------------------------------------------------- I


class IParams(NamedTuple):
    """Parameters of the NIR ``I`` (integrator) node."""

    r: jax.Array


class IState(NamedTuple):
    """State of ``I``: the integrated value ``v``."""

    v: jax.Array


def i_prepare(params: IParams, cfg: NeuronConfig) -> IParams:
    """I has no time-invariant coefficients beyond its parameters.

    Form 'decay' with ``input_gain='unit'``: ``r`` is replaced by ``1/dt`` so that the update
    below adds ``x`` as is.
    """
    params = _use(params, cfg)
    if cfg.form == "decay" and cfg.input_gain == "unit":
        return IParams(jnp.full_like(params.r, 1.0 / cfg.dt))
    return params


def i_init_state(params: IParams, shape, cfg: NeuronConfig) -> IState:
    """``v = 0`` at t = 0 (an integrator has no rest value)."""
    return IState(jnp.zeros(shape, jnp.result_type(params.r)))


def i_step(coeffs: IParams, state: IState, x, cfg: NeuronConfig):
    r"""Integrator.

    NIR: ``dv/dt = R * I``; output ``v``.

    Discrete (Euler and exact coincide for input held over the step):
    ``v[n+1] = v[n] + dt * R * x[n]``; output ``v[n+1]``. (Form 'decay', unit gain:
    ``v[n+1] = v[n] + x[n]``.)
    """
    if cfg.form == "decay" and cfg.input_gain == "unit":
        v = state.v + x
    else:
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


def if_prepare(params: IFParams, cfg: NeuronConfig):
    """IF has no time-invariant coefficients beyond its parameters (form 'nir'/'norse').

    Form 'decay': ``v' = (a*v + g*x) + 0`` with ``a = 1`` (or ``fixed_decay``) and ``g =
    dt*R`` (gain 'nir'), ``1`` ('unit'), or ``1`` with ``theta/R`` ('threshold').
    """
    params = _use(params, cfg)
    if cfg.form != "decay":
        return params
    a = _decay(jnp.ones_like(params.r), cfg._replace(fixed_decay=cfg.fixed_decay or 1.0))
    zero = jnp.zeros_like(params.r)
    if cfg.input_gain in ("nir", "input"):
        return _MemCoeffs(a, cfg.dt * params.r, zero, params.v_threshold, params.v_reset)
    if cfg.input_gain == "unit":
        return _MemCoeffs(a, jnp.ones_like(params.r), zero, params.v_threshold, params.v_reset)
    s = _unit_scale(params.r)
    return _MemCoeffs(a, jnp.ones_like(params.r), zero, params.v_threshold / s,
                      params.v_reset / s)


def if_init_state(params: IFParams, shape, cfg: NeuronConfig) -> IFState:
    """``v = 0`` at t = 0 (IF has no leak potential)."""
    return IFState(jnp.zeros(shape, jnp.result_type(params.r)))


def _if_integrate(coeffs, v, x, cfg):
    if cfg.form == "decay":
        return _decay_step(coeffs, v, x)
    return v + cfg.dt * (coeffs.r * x)


def if_step(coeffs, state: IFState, x, cfg: NeuronConfig):
    r"""Integrate-and-fire.

    NIR: ``dv/dt = R * I``; ``z = H(v - v_threshold)``; on a spike ``v <- v_reset``.

    Discrete: ``v' = v[n] + dt * R * x[n]`` (exact for held input, so both integrators);
    ``z = H(v' - v_threshold)``; ``v[n+1] = reset(v', z)``; output ``z``. Form 'decay':
    ``v' = a*v[n] + g*x[n]`` (see :func:`if_prepare`). With ``fire='before'`` see
    :func:`if_emit`.
    """
    if cfg.fire == "before":
        return if_absorb(coeffs, state, x, cfg), if_emit(coeffs, state, cfg)
    v = _if_integrate(coeffs, state.v, x, cfg)
    v, z = _fire_and_reset(v, coeffs.v_threshold, coeffs.v_reset, cfg, state.v)
    return IFState(v), z


def if_emit(coeffs, state: IFState, cfg: NeuronConfig):
    """``fire='before'``: the output of this step, ``H(v[n] - v_threshold)`` (spike counts
    when multi), from the carried membrane only."""
    return _output(_count(state.v, coeffs.v_threshold, cfg)[1], cfg)


def if_absorb(coeffs, state: IFState, x, cfg: NeuronConfig) -> IFState:
    """``fire='before'``: the state after this step, ``v[n+1] = reset(v[n] + g*x[n])`` with
    the reset by this step's output (placement per ``cfg.reset_at``)."""
    return IFState(_absorb_one(coeffs, state.v, x, cfg, _if_integrate))


def _absorb_one(coeffs, v, x, cfg, integrate):
    z, n = _count(v, coeffs.v_threshold, cfg)
    if cfg.reset_at in ("carried", "both"):
        v = _reset(v, z, n, coeffs.v_threshold, coeffs.v_reset, cfg)
    v = integrate(coeffs, v, x, cfg)
    if cfg.reset_at in ("integrated", "both"):
        v = _reset(v, z, n, coeffs.v_threshold, coeffs.v_reset, cfg)
    return _clamp(v, coeffs.v_threshold, cfg)


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
    """``leak`` is ``dt/tau`` (Euler), ``exp(-dt/tau)`` (exact) or ``dt*(1/tau)`` (form
    'norse'); form 'decay' uses ``leak`` as the decay ``a``, ``r`` as the gain ``g`` and
    ``v_leak`` as the per-step bias ``c``."""

    leak: jax.Array
    r: jax.Array
    v_leak: jax.Array


def _decay_gains(tau, r, v_leak, cfg, spiking):
    """``(a, g, c, scale)`` of the 'decay' form for a leaky one-variable cell."""
    a = _decay(tau, cfg)
    gain = cfg.input_gain if (spiking or cfg.input_gain != "threshold") else "nir"
    if gain == "unit":
        return a, jnp.ones_like(r), v_leak, None
    k = _rate(tau, a, cfg)
    if gain in ("nir", "input"):
        return a, k * r, k * v_leak, None
    s = _unit_scale(r * cfg.dt / tau)
    return a, jnp.ones_like(r), k * v_leak / s, s


def li_prepare(params: LIParams, cfg: NeuronConfig) -> LICoeffs:
    """Leak coefficient of the chosen integrator (and form)."""
    params = _use(params, cfg)
    if cfg.form == "decay":
        a, g, c, _ = _decay_gains(params.tau, params.r, params.v_leak, cfg, False)
        return LICoeffs(a, g, c)
    return LICoeffs(_leak_coeff(params.tau, cfg), params.r, params.v_leak)


def li_init_state(params: LIParams, shape, cfg: NeuronConfig) -> LIState:
    """``v = v_leak`` (``initial_v='rest'``) or ``0``."""
    params = _use(params, cfg)
    return LIState(_initial_v(params.v_leak, shape, cfg, jnp.result_type(params.tau)))


def li_step(coeffs: LICoeffs, state: LIState, x, cfg: NeuronConfig):
    r"""Leaky integrator.

    NIR: ``tau dv/dt = (v_leak - v) + R * I``; output ``v``.

    Discrete, Euler: ``v[n+1] = v[n] + (dt/tau) * ((v_leak - v[n]) + R*x[n])``.
    Exact: ``v[n+1] = u + (v[n] - u) * exp(-dt/tau)`` with ``u = v_leak + R*x[n]``.
    Form 'decay': ``v[n+1] = (a*v[n] + g*x[n]) + c``. Output ``v[n+1]``.
    """
    if cfg.form == "decay":
        v = (coeffs.leak * state.v + coeffs.r * x) + coeffs.v_leak
    else:
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
    """``leak`` is ``dt/tau`` (Euler), ``exp(-dt/tau)`` (exact) or ``dt*(1/tau)`` (form
    'norse'). Form 'decay': ``leak`` is the decay ``a``, ``r`` the gain ``g``, ``v_leak`` the
    per-step bias ``c``, and threshold and reset value are in the state's units."""

    leak: jax.Array
    r: jax.Array
    v_leak: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


def lif_prepare(params: LIFParams, cfg: NeuronConfig) -> LIFCoeffs:
    """Leak coefficient of the chosen integrator (and form; see the module docstring)."""
    params = _use(params, cfg)
    if cfg.form == "decay":
        a, g, c, s = _decay_gains(params.tau, params.r, params.v_leak, cfg, True)
        th, vr = params.v_threshold, params.v_reset
        if s is not None:
            th, vr = th / s, vr / s
        return LIFCoeffs(a, g, c, th, vr)
    return LIFCoeffs(_leak_coeff(params.tau, cfg), params.r, params.v_leak,
                     params.v_threshold, params.v_reset)


def lif_init_state(params: LIFParams, shape, cfg: NeuronConfig) -> LIFState:
    """``v = v_leak`` (``initial_v='rest'``) or ``0``."""
    params = _use(params, cfg)
    return LIFState(_initial_v(params.v_leak, shape, cfg, jnp.result_type(params.tau)))


def _lif_integrate(coeffs: LIFCoeffs, v, x, cfg: NeuronConfig):
    if cfg.form == "decay":
        return (coeffs.leak * v + coeffs.r * x) + coeffs.v_leak
    if cfg.form == "norse":
        return v + coeffs.leak * ((coeffs.r * x + coeffs.v_leak) - v)
    return _leaky_update(v, coeffs.r * x, coeffs.leak, coeffs.v_leak, cfg)


def lif_step(coeffs: LIFCoeffs, state: LIFState, x, cfg: NeuronConfig):
    r"""Leaky integrate-and-fire.

    NIR: ``tau dv/dt = (v_leak - v) + R * I``; ``z = H(v - v_threshold)``; on a spike
    ``v <- v_reset``.

    Discrete: ``v'`` from :func:`li_step`'s update (Euler or exact);
    ``z = H(v' - v_threshold)``; ``v[n+1] = reset(v', z)``; output ``z``.
    Form 'norse': ``v' = v[n] + (dt*(1/tau)) * ((R*x[n] + v_leak) - v[n])``; form 'decay':
    ``v' = (a*v[n] + g*x[n]) + c``. With ``fire='before'`` see :func:`lif_emit`.
    """
    if cfg.fire == "before":
        return lif_absorb(coeffs, state, x, cfg), lif_emit(coeffs, state, cfg)
    v = _lif_integrate(coeffs, state.v, x, cfg)
    v, z = _fire_and_reset(v, coeffs.v_threshold, coeffs.v_reset, cfg, state.v)
    return LIFState(v), z


def lif_emit(coeffs: LIFCoeffs, state: LIFState, cfg: NeuronConfig):
    """``fire='before'``: this step's output ``H(v[n] - v_threshold)`` from the carried
    membrane only (spike counts when multi)."""
    return _output(_count(state.v, coeffs.v_threshold, cfg)[1], cfg)


def lif_absorb(coeffs: LIFCoeffs, state: LIFState, x, cfg: NeuronConfig) -> LIFState:
    """``fire='before'``: ``v[n+1] = reset(a*v[n] + g*x[n] + c)`` (``reset_at='integrated'``),
    ``a*reset(v[n]) + g*x[n] + c`` (``'carried'``) or both, reset by :func:`lif_emit`'s
    spikes."""
    return LIFState(_absorb_one(coeffs, state.v, x, cfg, _lif_integrate))


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
    Form 'norse': ``syn = dt*(1/tau_syn)``, ``mem = dt*(1/tau_mem)``.
    Form 'decay': ``syn`` and ``mem`` are the decays ``b`` and ``a``, ``w_in`` the synapse
    gain ``g_s``, ``r`` the membrane gain ``g_m``, ``v_leak`` the per-step bias ``c``, and
    threshold and reset value are in the state's units.
    """

    syn: jax.Array
    mem: jax.Array
    cross: jax.Array
    r: jax.Array
    v_leak: jax.Array
    w_in: jax.Array
    v_threshold: jax.Array
    v_reset: jax.Array


def _cuba_prepare(p, v_threshold, v_reset, cfg: NeuronConfig, spiking: bool) -> CubaCoeffs:
    if cfg.form == "decay":
        b = _decay(p.tau_syn, cfg)
        a = _decay(p.tau_mem, cfg)
        one = jnp.ones_like(a)
        gain = cfg.input_gain if (spiking or cfg.input_gain != "threshold") else "nir"
        if gain == "unit":
            return CubaCoeffs(b, a, jnp.zeros_like(a), one, p.v_leak, one, v_threshold, v_reset)
        ks, km = _rate(p.tau_syn, b, cfg), _rate(p.tau_mem, a, cfg)
        if gain == "nir":
            return CubaCoeffs(b, a, jnp.zeros_like(a), km * p.r, km * p.v_leak, ks * p.w_in,
                              v_threshold, v_reset)
        if gain == "input":
            return CubaCoeffs(b, a, jnp.zeros_like(a), one, km * p.v_leak, ks * p.w_in,
                              v_threshold, v_reset)
        s = _unit_scale((p.w_in * (cfg.dt / p.tau_syn)) * (p.r * cfg.dt / p.tau_mem))
        return CubaCoeffs(b, a, jnp.zeros_like(a), one, km * p.v_leak / s, one,
                          v_threshold / s, v_reset / s)
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
        syn = _leak_coeff(p.tau_syn, cfg)
        mem = _leak_coeff(p.tau_mem, cfg)
        cross = jnp.zeros_like(syn)
    return CubaCoeffs(syn, mem, cross, p.r, p.v_leak, p.w_in, v_threshold, v_reset)


def _cuba_update(c: CubaCoeffs, state: CubaLIState, x, cfg: NeuronConfig):
    """Integrate synaptic current and membrane over one step; returns ``(i_syn, v)``."""
    if cfg.form == "decay":
        if cfg.synapse == "add_decay":
            i_syn = c.syn * (state.i_syn + c.w_in * x)
        else:
            i_syn = c.syn * state.i_syn + c.w_in * x
        i_used = i_syn if cfg.cuba_current == "new" else state.i_syn
        return i_syn, (c.mem * state.v + c.r * i_used) + c.v_leak
    drive = c.w_in * x
    if cfg.integrator == "exact":
        i_syn = drive + (state.i_syn - drive) * c.syn
        target = c.v_leak + c.r * drive
        v = target + (state.v - target) * c.mem + c.r * (state.i_syn - drive) * c.cross
        return i_syn, v
    if cfg.form == "norse":
        i_syn = state.i_syn + c.syn * ((c.v_leak - state.i_syn) + drive)
        i_used = i_syn if cfg.cuba_current == "new" else state.i_syn
        return i_syn, state.v + c.mem * ((c.r * i_used + c.v_leak) - state.v)
    i_syn = state.i_syn + c.syn * (drive - state.i_syn)
    i_used = i_syn if cfg.cuba_current == "new" else state.i_syn
    v = state.v + c.mem * ((c.v_leak - state.v) + c.r * i_used)
    return i_syn, v


def _cuba_init(params, shape, cfg: NeuronConfig) -> CubaLIState:
    params = _use(params, cfg)
    dtype = jnp.result_type(params.tau_mem)
    if cfg.form == "norse":  # Norse's synapse starts at (and relaxes to) the neuron's v_leak
        i0 = jnp.broadcast_to(jnp.asarray(params.v_leak, dtype), shape)
    else:
        i0 = jnp.zeros(shape, dtype)
    return CubaLIState(i0, _initial_v(params.v_leak, shape, cfg, dtype))


def cubali_prepare(params: CubaLIParams, cfg: NeuronConfig) -> CubaCoeffs:
    """Decay coefficients of the chosen integrator (see :class:`CubaCoeffs`)."""
    params = _use(params, cfg)
    zero = jnp.zeros_like(params.v_leak)
    return _cuba_prepare(params, zero, zero, cfg, False)


def cubali_init_state(params: CubaLIParams, shape, cfg: NeuronConfig) -> CubaLIState:
    """``i_syn = 0`` (form 'norse': ``v_leak``) and ``v = v_leak`` (``initial_v='rest'``) or
    ``0``."""
    return _cuba_init(params, shape, cfg)


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

    Form 'norse': ``I[n+1] = I[n] + (dt*(1/tau_syn))*((v_leak - I[n]) + w_in*x[n])``,
    ``v[n+1] = v[n] + (dt*(1/tau_mem))*((R*I* + v_leak) - v[n])``. Form 'decay':
    ``I[n+1] = b*I[n] + g_s*x[n]`` (or ``b*(I[n] + g_s*x[n])``), ``v[n+1] = (a*v[n] +
    g_m*I*) + c``.
    """
    i_syn, v = _cuba_update(coeffs, state, x, cfg)
    return CubaLIState(i_syn, v), v


def cubalif_prepare(params: CubaLIFParams, cfg: NeuronConfig) -> CubaCoeffs:
    """Decay coefficients of the chosen integrator (see :class:`CubaCoeffs`)."""
    params = _use(params, cfg)
    return _cuba_prepare(params, params.v_threshold, params.v_reset, cfg, True)


def cubalif_init_state(params: CubaLIFParams, shape, cfg: NeuronConfig) -> CubaLIState:
    """``i_syn = 0`` (form 'norse': ``v_leak``) and ``v = v_leak`` (``initial_v='rest'``) or
    ``0``."""
    return _cuba_init(params, shape, cfg)


def cubalif_step(coeffs: CubaCoeffs, state: CubaLIState, x, cfg: NeuronConfig):
    r"""Current-based leaky integrate-and-fire.

    NIR: as CubaLI, plus ``z = H(v - v_threshold)`` and ``v <- v_reset`` on a spike (the
    synaptic current is not reset).

    Discrete: ``(I[n+1], v')`` from :func:`cubali_step`'s update;
    ``z = H(v' - v_threshold)``; ``v[n+1] = reset(v', z)``; output ``z``. With
    ``fire='before'`` see :func:`cubalif_emit`.
    """
    if cfg.fire == "before":
        return cubalif_absorb(coeffs, state, x, cfg), cubalif_emit(coeffs, state, cfg)
    i_syn, v = _cuba_update(coeffs, state, x, cfg)
    v, z = _fire_and_reset(v, coeffs.v_threshold, coeffs.v_reset, cfg, state.v)
    return CubaLIState(i_syn, v), z


def cubalif_emit(coeffs: CubaCoeffs, state: CubaLIState, cfg: NeuronConfig):
    """``fire='before'``: this step's output ``H(v[n] - v_threshold)`` from the carried
    membrane only (spike counts when multi)."""
    return _output(_count(state.v, coeffs.v_threshold, cfg)[1], cfg)


def cubalif_absorb(coeffs: CubaCoeffs, state: CubaLIState, x, cfg: NeuronConfig) -> CubaLIState:
    """``fire='before'``: reset the carried ``v[n]`` by :func:`cubalif_emit`'s spikes
    (``reset_at='carried'``), integrate current and membrane as in :func:`cubali_step`, and/or
    reset the integrated value (``'integrated'``; ``'both'`` does both)."""
    z, n = _count(state.v, coeffs.v_threshold, cfg)
    v = state.v
    if cfg.reset_at in ("carried", "both"):
        v = _reset(v, z, n, coeffs.v_threshold, coeffs.v_reset, cfg)
    i_syn, v = _cuba_update(coeffs, CubaLIState(state.i_syn, v), x, cfg)
    if cfg.reset_at in ("integrated", "both"):
        v = _reset(v, z, n, coeffs.v_threshold, coeffs.v_reset, cfg)
    return CubaLIState(i_syn, _clamp(v, coeffs.v_threshold, cfg))
