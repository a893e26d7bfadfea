"""The one place where Semantics strings choose a neuron's pieces.

:func:`neuron_for` turns a node's :class:`~nirjax.Semantics` into a
:class:`~nirjax.kernels.neurons.Neuron` once, at compile time: each field picks a small pure
piece from :mod:`nirjax.kernels.neurons` (a rate or decay, a membrane update, a spike rule, a
reset rule, firing before or after the update, an initial state) and the pieces are closed
into the node's ``prepare``/``init_state``/``step``, the way an optax factory closes over its
hyperparameters. Nothing downstream reads a Semantics string again.

:data:`CHOICES` lists the values each neuron field accepts and :func:`check` rejects the
combinations no piece defines; :class:`~nirjax.Semantics` calls both when it is built, so a
bad value fails where it is written.

A new platform quirk touches this module: a value in :data:`CHOICES`, a line in
:func:`check` if it excludes others, and the branch of :func:`neuron_for` that picks its
piece (written in :mod:`nirjax.kernels`).
"""

from __future__ import annotations

from functools import partial

import jax.numpy as jnp
import numpy as np

from ..errors import ParameterError, SemanticsError
from ..kernels import linear_scan
from ..kernels import nengo as kng
from ..kernels import neurons as kn

__all__ = ["CHOICES", "NEURON_TYPES", "check", "neuron_for", "departures"]

#: The values of every neuron field of :class:`~nirjax.Semantics` (the first is the spec's).
CHOICES = {
    "integrator": ("euler", "exact"),
    "reset": ("v_reset", "subtract", "none"),
    "threshold_test": (">", ">="),
    "cuba_current": ("old", "new"),
    "initial_v": ("rest", "zero"),
    "form": ("nir", "norse", "decay", "nengo"),
    "input_gain": ("nir", "unit", "threshold", "input"),
    "synapse": ("decay_add", "add_decay"),
    "fire": ("after", "before"),
    "reset_at": ("integrated", "carried", "both"),
    "reset_flag": ("spike", "previous_v"),
    "spikes": ("binary", "multi"),
    "spike_amplitude": ("unit", "dirac"),
    "v_min": ("none", "-threshold", "zero"),
    "rate": ("divide", "reciprocal"),
}

#: The NIR types built by :func:`neuron_for`.
NEURON_TYPES = ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")
_SPIKING = ("IF", "LIF", "CubaLIF")

# fields whose default every whole-chunk kernel (linear_scan, pallas_lif) assumes
_SPEC_ONLY = {"form": "nir", "input_gain": "nir", "synapse": "decay_add", "ignore": (),
              "clip_decay": False, "fixed_decay": None, "fire": "after",
              "reset_at": "integrated", "reset_flag": "spike", "spikes": "binary",
              "spike_amplitude": "unit", "v_min": "none", "rate": "divide",
              "max_spikes": None}


def check(sem) -> None:
    """Reject the combinations of neuron fields that no piece defines.

    Raises:
        SemanticsError: naming the fields that do not go together.
    """
    def bad(msg):
        raise SemanticsError(f"Semantics: {msg}")

    if sem.form == "norse" and sem.integrator != "euler":
        bad("form='norse' is Norse's forward Euler update; it needs integrator='euler'")
    if sem.form == "nengo" and sem.integrator != "exact":
        bad("form='nengo' is Nengo's exact (expm1) update; it needs integrator='exact'")
    if sem.rate != "divide" and sem.form != "decay":
        bad(f"rate={sem.rate!r} applies to form='decay' only (form is {sem.form!r})")
    if sem.max_spikes is not None and sem.spikes != "multi":
        bad("max_spikes caps spikes='multi' only")
    if sem.form != "decay":
        for field, default in (("input_gain", "nir"), ("synapse", "decay_add"),
                               ("clip_decay", False), ("fixed_decay", None)):
            if getattr(sem, field) != default:
                bad(f"{field}={getattr(sem, field)!r} applies to form='decay' only "
                    f"(form is {sem.form!r})")
    if sem.fire == "after" and sem.reset_at != "integrated":
        bad(f"reset_at={sem.reset_at!r} applies to fire='before' only")
    if sem.reset_flag == "previous_v" and (sem.fire == "before" or sem.spikes == "multi"):
        bad("reset_flag='previous_v' is defined for fire='after' with binary spikes only")


def _is_spec(sem) -> bool:
    """Whether only the spec's update is asked for (whole-chunk kernels may replace it)."""
    return all(getattr(sem, f) == v for f, v in _SPEC_ONLY.items())


def _decay(sem, dt):
    """``tau -> a``: the decay form's factor per step."""
    if sem.fixed_decay is not None:
        return kn.constant(sem.fixed_decay)
    reciprocal = sem.rate == "reciprocal"
    decay = (kn.exact_decay(dt, reciprocal) if sem.integrator == "exact"
             else kn.euler_decay(dt, reciprocal))
    return kn.clipped(decay) if sem.clip_decay else decay


def _leak(sem, dt):
    """``tau -> leak`` of the spec's forms: ``exp(-dt/tau)``, ``dt*(1/tau)`` or ``dt/tau``."""
    if sem.integrator == "exact":
        return kn.exact_decay(dt)
    return kn.inverse_rate(dt) if sem.form == "norse" else kn.euler_rate(dt)


def _gain(sem, spiking: bool) -> str:
    """The input gain; ``'threshold'`` rescales spiking nodes only (others keep ``'nir'``)."""
    return sem.input_gain if (spiking or sem.input_gain != "threshold") else "nir"


def _decay_gains(sem, dt, spiking):
    """``(tau, r, v_leak) -> (a, g, c, scale)`` of the decay form for a leaky cell."""
    decay, gain, exact = _decay(sem, dt), _gain(sem, spiking), sem.integrator == "exact"

    def gains(tau, r, v_leak):
        a = decay(tau)
        if gain == "unit":
            return a, jnp.ones_like(r), v_leak, None
        k = 1.0 - a if exact else dt / tau
        if gain in ("nir", "input"):
            return a, k * r, k * v_leak, None
        s = kn.unit_scale(r * dt / tau)
        return a, jnp.ones_like(r), k * v_leak / s, s

    return gains


def _firing(sem, dt):
    """``(fire, before)``: exactly one is set for a spiking node."""
    spikes = kn.spike_rule(sem.threshold_test == ">=", sem.surrogate, sem.spikes == "multi",
                           dt if sem.spike_amplitude == "dirac" else None, sem.max_spikes)
    reset = kn.reset_rule(sem.reset, sem.detach_reset, sem.v_min)
    if sem.fire == "before":
        return None, kn.fire_before(spikes, reset, sem.reset_at in ("carried", "both"),
                                    sem.reset_at in ("integrated", "both"))
    if sem.reset_flag == "previous_v" and sem.reset != "none":
        return kn.fire_flagged(spikes, reset, sem.surrogate), None
    return kn.fire_same_step(spikes, reset), None


def _one_variable(type_name, sem, dt) -> kn.Neuron:
    spiking = type_name in _SPIKING
    fire, before = _firing(sem, dt) if spiking else (None, None)
    decay_form = sem.form == "decay"
    state_cls = {"I": kn.IState, "IF": kn.IFState, "LI": kn.LIState, "LIF": kn.LIFState}[type_name]
    if type_name in ("I", "IF"):
        initial, dtype_field = kn.zeros, "r"
    else:
        initial, dtype_field = kn.rest_or_zero(sem.initial_v == "rest"), "tau"

    if sem.form == "nengo" and type_name != "I":
        coeffs, update = _nengo_one_variable(type_name, dt)
    elif type_name == "I":
        coeffs = lambda p: p
        update = kn.accumulate if decay_form and sem.input_gain == "unit" else kn.integrate(dt)
    elif type_name == "IF" and not decay_form:
        coeffs, update = (lambda p: p), kn.integrate(dt)
    elif type_name == "IF":
        fixed = 1.0 if sem.fixed_decay is None else sem.fixed_decay
        gain = _gain(sem, True)

        def coeffs(p):
            a, zero = kn.constant(fixed)(p.r), jnp.zeros_like(p.r)
            if gain in ("nir", "input"):
                return kn.LIFCoeffs(a, dt * p.r, zero, p.v_threshold, p.v_reset)
            if gain == "unit":
                return kn.LIFCoeffs(a, jnp.ones_like(p.r), zero, p.v_threshold, p.v_reset)
            s = kn.unit_scale(p.r)
            return kn.LIFCoeffs(a, jnp.ones_like(p.r), zero, p.v_threshold / s, p.v_reset / s)

        update = kn.decayed
    elif decay_form:
        gains = _decay_gains(sem, dt, spiking)

        def coeffs(p):
            a, g, c, s = gains(p.tau, p.r, p.v_leak)
            if type_name == "LI":
                return kn.LICoeffs(a, g, c)
            th, vr = p.v_threshold, p.v_reset
            if s is not None:
                th, vr = th / s, vr / s
            return kn.LIFCoeffs(a, g, c, th, vr)

        add_decay = type_name == "LI" and sem.synapse == "add_decay"
        update = kn.add_decayed if add_decay else kn.decayed
    else:
        leak = _leak(sem, dt)
        if type_name == "LI":
            coeffs = lambda p: kn.LICoeffs(leak(p.tau), p.r, p.v_leak)
        else:
            coeffs = lambda p: kn.LIFCoeffs(leak(p.tau), p.r, p.v_leak, p.v_threshold, p.v_reset)
        if sem.integrator == "exact":
            update = kn.leaky_exact
        elif sem.form == "norse" and type_name == "LIF":
            update = kn.leaky_norse
        else:
            update = kn.leaky_euler

    neuron = kn.one_variable_neuron(state_cls, kn.neutral(sem.ignore), coeffs, update, initial,
                                    dtype_field, fire, before)
    if _is_spec(sem) and type_name == "LIF":
        neuron = neuron._replace(pallas=partial(_pallas, update, fire))
    elif _is_spec(sem) and type_name == "LI":
        neuron = neuron._replace(associative_scan=partial(
            linear_scan.li_chunk, exact=sem.integrator == "exact"))
    return neuron


def _first(a):
    """The first element broadcast over the layer: the NIR paper's Nengo conversion reads one
    time constant (and one ``r``) per layer."""
    return jnp.broadcast_to(a.reshape(-1)[0], a.shape)


def _nengo_one_variable(type_name, dt):
    """``(coeffs, update)`` of form ``'nengo'`` (:mod:`nirjax.kernels.nengo`), in units of
    the threshold (Nengo's ``voltage``): LIF ``gain = 1/v_threshold`` and
    ``expm1(-dt/tau[0])``; IF ``gain = (1/v_threshold)/dt`` integrated as ``v + dt*(gain*x)``;
    LI a Lowpass ``a = exp(-dt/tau[0])``, ``b = -expm1(-dt/tau[0])``. Threshold 1, reset 0;
    ``r`` and ``v_leak`` are not read."""
    if type_name == "LIF":
        def coeffs(p):
            one, zero = jnp.ones_like(p.v_threshold), jnp.zeros_like(p.v_threshold)
            return kn.LIFCoeffs(jnp.expm1(-dt / _first(p.tau)), 1.0 / p.v_threshold, zero,
                                one, zero)

        return coeffs, kng.membrane
    if type_name == "IF":
        def coeffs(p):
            one, zero = jnp.ones_like(p.v_threshold), jnp.zeros_like(p.v_threshold)
            return kn.LIFCoeffs(zero, (1.0 / p.v_threshold) / dt, zero, one, zero)

        return coeffs, kn.integrate(dt)

    def coeffs(p):  # LI: a Lowpass(tau[0])
        lp = kng.lowpass_coeffs(_first(p.tau), dt)
        return kn.LICoeffs(lp.a, lp.b, jnp.zeros_like(p.tau))

    return coeffs, kng.lowpass


def _nengo_cuba(dt, product_dtype):
    """``coefficients(p, th, vr)`` of a CubaLIF under form ``'nengo'``: a Nengo LIF
    (``tau_rc = tau_mem[0]``, ``gain = (w_in*r[0])/v_threshold`` with the product rounded in
    ``product_dtype`` when that is narrower than the compile's dtype) behind a
    ``Lowpass(-dt/log(1 - dt/tau_syn[0]))``; threshold 1, reset 0."""

    def coefficients(p, th, vr):
        lp = kng.lowpass_coeffs(kng.cubalif_tau_syn(_first(p.tau_syn), dt), dt)
        narrower = (product_dtype is not None
                    and jnp.dtype(product_dtype).itemsize < jnp.dtype(p.w_in.dtype).itemsize)
        gain = (kng.paper_gain_product(p.w_in, _first(p.r), product_dtype if narrower else None)
                / p.v_threshold)
        one, zero = jnp.ones_like(gain), jnp.zeros_like(gain)
        return kn.CubaCoeffs(lp.a, jnp.expm1(-dt / _first(p.tau_mem)), zero, gain, zero, lp.b,
                             one, zero)

    return coefficients


def _pallas(update, fire, coeffs, v0, xs, block, interpret):
    from ..kernels import pallas_lif  # jax.experimental.pallas, only when asked for

    return pallas_lif.lif_multistep(coeffs, v0, xs, update, fire, block, interpret)


def _cuba(type_name, sem, dt, param_dtype=None) -> kn.Neuron:
    spiking = type_name == "CubaLIF"
    fire, before = _firing(sem, dt) if spiking else (None, None)
    new_current = sem.cuba_current == "new"
    exact = sem.integrator == "exact"

    if sem.form == "nengo" and spiking:
        coefficients = _nengo_cuba(dt, param_dtype)
        update = kng.cuba_membrane(new_current)
    elif sem.form == "decay":
        decay, gain = _decay(sem, dt), _gain(sem, spiking)

        def coefficients(p, th, vr):
            b, a = decay(p.tau_syn), decay(p.tau_mem)
            one, zero = jnp.ones_like(a), jnp.zeros_like(a)
            if gain == "unit":
                return kn.CubaCoeffs(b, a, zero, one, p.v_leak, one, th, vr)
            ks, km = (1.0 - b, 1.0 - a) if exact else (dt / p.tau_syn, dt / p.tau_mem)
            if gain == "nir":
                return kn.CubaCoeffs(b, a, zero, km * p.r, km * p.v_leak, ks * p.w_in, th, vr)
            if gain == "input":
                return kn.CubaCoeffs(b, a, zero, one, km * p.v_leak, ks * p.w_in, th, vr)
            s = kn.unit_scale((p.w_in * (dt / p.tau_syn)) * (p.r * dt / p.tau_mem))
            return kn.CubaCoeffs(b, a, zero, one, km * p.v_leak / s, one, th / s, vr / s)

        update = kn.cuba_decayed(sem.synapse == "add_decay", new_current)
    elif exact:
        def coefficients(p, th, vr):
            syn, mem = jnp.exp(-dt / p.tau_syn), jnp.exp(-dt / p.tau_mem)
            cross = kn.cuba_exact_cross(dt, p.tau_syn, p.tau_mem, syn, mem)
            return kn.CubaCoeffs(syn, mem, cross, p.r, p.v_leak, p.w_in, th, vr)

        update = kn.cuba_exact
    else:
        leak = _leak(sem, dt)

        def coefficients(p, th, vr):
            syn, mem = leak(p.tau_syn), leak(p.tau_mem)
            return kn.CubaCoeffs(syn, mem, jnp.zeros_like(syn), p.r, p.v_leak, p.w_in, th, vr)

        update = kn.cuba_norse(new_current) if sem.form == "norse" else kn.cuba_euler(new_current)

    if spiking:
        coeffs = lambda p: coefficients(p, p.v_threshold, p.v_reset)
    else:
        def coeffs(p):
            zero = jnp.zeros_like(p.v_leak)
            return coefficients(p, zero, zero)

    neuron = kn.cuba_neuron(kn.neutral(sem.ignore), coeffs, update,
                            kn.rest_or_zero(sem.initial_v == "rest"), sem.form == "norse",
                            fire, before)
    if _is_spec(sem):
        if spiking:
            chunk = partial(linear_scan.cubalif_chunk, fire=fire, exact=exact,
                            new_current=new_current)
        else:
            chunk = partial(linear_scan.cubali_chunk, exact=exact, new_current=new_current)
        neuron = neuron._replace(associative_scan=chunk)
    return neuron


def neuron_for(type_name: str, semantics, dt: float, param_dtype=None) -> kn.Neuron:
    """The kernel of one neuron node under its (per-node) semantics, at step ``dt``.

    Args:
        type_name: ``"I"``, ``"IF"``, ``"LI"``, ``"LIF"``, ``"CubaLI"`` or ``"CubaLIF"``.
        semantics: the node's :class:`~nirjax.Semantics` (overrides already applied).
        dt: the time step.
        param_dtype: the dtype the graph stores the node's parameters in, for a platform
            that rounds a product of parameters before the compile's dtype takes over (form
            ``'nengo'``: the CubaLIF gain's ``w_in*r[0]``, a float32 product for a float32
            file); ``None``: the compile's dtype.

    >>> import jax.numpy as jnp
    >>> from nirjax import Semantics
    >>> from nirjax.kernels.neurons import LIFParams, LIFState
    >>> lif = neuron_for("LIF", Semantics(reset="subtract"), 1e-3)
    >>> p = LIFParams(*(jnp.array([x]) for x in (1e-2, 1.0, 0.0, 0.5, 0.0)))
    >>> state, z = lif.step(lif.prepare(p), LIFState(jnp.array([0.45])), jnp.array([1.0]))
    >>> float(z[0]), round(float(state.v[0]), 4)  # v' = 0.45 + 0.1*(1 - 0.45) = 0.505
    (1.0, 0.005)
    """
    if type_name not in NEURON_TYPES:
        raise SemanticsError(f"no neuron kernel for NIR type {type_name!r}; neuron types: "
                             f"{', '.join(NEURON_TYPES)}")
    dt = float(dt)
    if type_name in ("CubaLI", "CubaLIF"):
        return _cuba(type_name, semantics, dt, param_dtype)
    return _one_variable(type_name, semantics, dt)


# form 'nengo': what the NIR paper's conversion reads of each type (type -> (fields read as
# one value per layer, fields not read and their neutral value))
_NENGO_READS = {
    "LIF": (("tau",), {"r": 1.0, "v_leak": 0.0, "v_reset": 0.0}),
    "IF": ((), {"r": 1.0, "v_reset": 0.0}),
    "CubaLIF": (("tau_syn", "tau_mem", "r"), {"v_leak": 0.0, "v_reset": 0.0}),
    "LI": (("tau",), {"r": 1.0, "v_leak": 0.0}),
}


def departures(name: str, type_name: str, semantics, node, dt: float) -> list:
    """What a node's neuron form does not read of this node, where that changes its result.

    Only form ``'nengo'`` reports (the other forms' dropped parameters are their profiles'
    documented ``ignore``): a parameter the NIR paper's Nengo conversion does not read that
    differs from its neutral value (LIF ``r``, ``v_leak``, ``v_reset``; IF ``r``,
    ``v_reset``; CubaLIF ``v_leak``, ``v_reset``; LI ``r``, ``v_leak``), and a parameter read
    as one value per layer (``tau``, ``tau_syn``, ``tau_mem``, CubaLIF ``r``) that varies.

    Returns:
        readable notes naming the node and field (empty when nothing is dropped).

    Raises:
        ParameterError: a CubaLIF's ``tau_syn[0] <= dt``, for which the conversion's
            ``-dt/log(1 - dt/tau_syn)`` is undefined.
    """
    if semantics.form != "nengo" or type_name not in _NENGO_READS:
        return []
    first, unread = _NENGO_READS[type_name]
    where = f"node {name!r} ({type_name})"
    notes = []
    for field in first:
        value = getattr(node, field, None)
        if value is None:
            continue
        arr = np.asarray(value, np.float64).reshape(-1)
        if arr.size and np.any(arr != arr[0]):
            notes.append(f"{where}: one {field} per layer, {field}[0] = {arr[0]:g} used "
                         f"(the layer's range {arr.min():g}..{arr.max():g})")
    for field, neutral in unread.items():
        value = getattr(node, field, None)
        if value is not None and np.any(np.asarray(value) != neutral):
            notes.append(f"{where}: {field} is not read (taken as {neutral:g})")
    if type_name == "CubaLIF":
        tau_syn = float(np.asarray(node.tau_syn, np.float64).reshape(-1)[0])
        if not tau_syn > dt:
            raise ParameterError(
                f"{where}: field 'tau_syn' is {tau_syn:g}, not above dt = {dt:g}: the NIR "
                f"paper's Nengo synapse tau' = -dt/log(1 - dt/tau_syn) needs tau_syn > dt")
    return notes
