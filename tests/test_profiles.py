"""Platform profiles: published traces, float64 oracles of each platform's equations, the
graph-level semantics (latency, cycle breaking, dropped recurrent biases) and validation.

The oracles below are written from the platforms' own update equations (cited in
``nirjax/semantics/profiles.py``), one NumPy loop per platform and neuron type, in float64; nirjax runs
with ``jax_enable_x64`` so the comparison can be tight. The real packages are compared in
``tests/test_conformance_peers.py``.
"""

from __future__ import annotations

import pathlib
import warnings

import jax
import nir
import numpy as np
import pytest

import nirjax
from nirjax.errors import NirjaxWarning, SemanticsError

from builders import read_quiet, rng_for

DATA = pathlib.Path(__file__).parent / "data" / "paper"
DT = 1e-4
ALL_PROFILES = ("nir", "exact", "norse", "snntorch", "spyx", "spyx1", "sinabs", "rockpool",
                "lava", "lava_fixed", "spinnaker2", "nengo")


def csv(name):
    return np.loadtxt(DATA / f"{name}.csv", delimiter=",")


def lif_graph_path(name):
    return nirjax.example_path("lif_norse") if name == "lif_norse" else DATA / f"{name}.nir"


# ----------------------------------------------------------------------------- LIF task

# profile -> (graph the platform ran, its published trace, tolerance on v in the trace's units)
LIF_TASK = {
    "nir": ("lif_norse", "lif_norse", 1e-6),
    "exact": ("lif_norse", "lif_exact", None),  # the trace resets at the crossing time
    "norse": ("lif_norse", "lif_norse", 1e-7),
    "snntorch": ("lif_norse", "lif_snntorch", 1e-6),  # v is snnTorch's mem = v/0.04
    "spinnaker2": ("lif_norse", "lif_spinnaker2", 1e-3),  # chip weight 102 vs 102.02 by hand
    "lava": ("lif_norse", "lif_lava_cpu_float", 1e-7),
    "spyx": ("lif_norse", "lif_spyx", 1e-7),
    "rockpool": ("lif_rockpool", "lif_rockpool", 1e-6),
    "sinabs": ("lif_norse", "lif_sinabs", 1e-7),  # input column is the paper's 0.04 * spikes
    "nengo": ("lif_norse", "lif_nengo", 1e-6),  # v is Nengo's voltage, v/v_threshold
}
PUBLISHED_STEPS = {
    "exact": [460, 510, 710, 760], "norse": [460, 510, 710, 760],
    "snntorch": [460, 510, 710, 760], "spinnaker2": [460, 510, 710, 760],
    "nir": [460, 510, 710, 760], "lava": [461, 511, 711, 761], "spyx": [461, 511, 711, 761],
    "rockpool": [450, 500, 710, 760], "sinabs": [450, 500, 710, 760],
    "nengo": [460, 510, 710, 760],
}


def run_lif_task(profile, graph_name, x):
    g = read_quiet(lif_graph_path(graph_name))
    model = nirjax.compile(g, dt=DT, semantics=profile)
    lif = next(n.name for n in model.program.nodes if n.type_name == "LIF")
    ys, _, rec = model.run(model.params, x.reshape(-1, 1, 1).astype(np.float32),
                           record=[(lif, "v")])
    return np.asarray(ys).ravel(), np.asarray(rec[(lif, "v")]).ravel()


@pytest.mark.parametrize("profile", sorted(LIF_TASK))
def test_lif_task_matches_published_trace(profile):
    """The judged NIR paper LIF task: each profile spikes at the steps its platform published,
    and its membrane follows the published one."""
    graph_name, trace, tol = LIF_TASK[profile]
    ref = csv(trace)
    z, v = run_lif_task(profile, graph_name, ref[:, 0])
    assert np.flatnonzero(z).tolist() == PUBLISHED_STEPS[profile]
    assert np.flatnonzero(ref[:, 2]).tolist() == PUBLISHED_STEPS[profile]
    assert np.array_equal(z != 0, ref[:, 2] != 0)
    if tol is None:  # exact: compare up to the first spike (the trace then resets in-step)
        first = PUBLISHED_STEPS[profile][0]
        np.testing.assert_allclose(v[:first], ref[:first, 1], atol=1e-6)
    else:
        np.testing.assert_allclose(v, ref[:, 1], rtol=0, atol=tol)


def test_lava_profile_spikes_match_fixed_point_and_loihi_traces():
    """Lava's fixed-point CPU model and the Loihi 2 chip spike at the same steps as its float
    model (the published traces), which the lava profile reproduces."""
    z, _ = run_lif_task("lava", "lif_norse", csv("lif_norse")[:, 0])
    for trace in ("lif_lava_cpu_fixed", "lif_lava_loihi_fixed"):
        assert np.array_equal(z != 0, csv(trace)[:, 2] != 0), trace


def test_lava_fixed_point_is_bit_exact():
    """The 'lava_fixed' profile (Lava's integer LIF) reproduces the published CPU fixed-point
    trace exactly, voltage included, and the Loihi 2 chip's spike steps."""
    ref = csv("lif_lava_cpu_fixed")
    z, v = run_lif_task("lava_fixed", "lif_norse", ref[:, 0])
    assert v.dtype == np.int32
    np.testing.assert_array_equal(v, ref[:, 1])
    np.testing.assert_array_equal(z != 0, ref[:, 2] != 0)
    assert np.array_equal(z != 0, csv("lif_lava_loihi_fixed")[:, 2] != 0)


def test_lava_fixed_integer_decay():
    """decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12), exact over the 24-bit range."""
    from nirjax.kernels.loihi import decay

    rng = rng_for("lava-decay")
    x = rng.integers(-(2 ** 23) + 1, 2 ** 23, 2000).astype(np.int64)
    d = rng.integers(0, 4097, 2000).astype(np.int64)
    ref = np.sign(x) * ((np.abs(x) * (4096 - d)) >> 12)
    np.testing.assert_array_equal(np.asarray(decay(x.astype(np.int32), d.astype(np.int32))), ref)


def test_lava_fixed_rejects_other_neurons():
    """The profile maps what the NIR paper's importer maps (LIF, Affine/Linear): a CubaLIF is a
    design-rule error naming the type and the node, and pointing to the loihi2 target."""
    g = read_quiet(nirjax.example_path("braille_subtract"))
    with pytest.raises(nirjax.LoweringError, match="CubaLIF.*'lif1.lif'.*'loihi2'"):
        nirjax.compile(g, dt=DT, semantics="lava_fixed")


def test_platform_graphs_matter():
    """Rockpool's trace needs Rockpool's own file (Linear weight 0.04, raw input); with the
    Norse file and unit input spikes the rockpool profile multi-spikes, as Rockpool does."""
    z, _ = run_lif_task("rockpool", "lif_norse", csv("lif_norse")[:, 0])
    assert z.max() > 1 and np.count_nonzero(z) == 34


# ----------------------------------------------------------------------------- oracles


def H(x):
    return (x > 0).astype(np.float64)


def oracle(profile, typ, p, x, recurrent=False):
    """float64 loop of ``profile``'s documented update for one node driven by ``x`` [T, B, N];
    returns (outputs, recorded v)."""
    T = x.shape[0]
    f = {k: np.asarray(v, np.float64) for k, v in p.items()}
    th = f["v_threshold"]
    z_out, v_out = np.zeros_like(x), np.zeros_like(x)
    v = np.zeros(x.shape[1:])
    i = np.zeros(x.shape[1:])
    if profile == "norse" and typ in ("LIF", "CubaLIF"):
        v = v + f["v_leak"]
        i = i + f["v_leak"]
    for t in range(T):
        xt = x[t]
        if profile == "norse":
            if typ == "LIF":
                v = v + DT * (1 / f["tau"]) * ((xt + f["v_leak"]) - v)
            elif typ == "IF":
                v = v + xt
            else:
                i = i + DT / f["tau_syn"] * ((f["v_leak"] - i) + f["w_in"] * xt)
                v = v + DT / f["tau_mem"] * ((f["r"] * i + f["v_leak"]) - v)
            z = H(v - th)
            v = v * (1 - z)
        elif profile == "snntorch":
            if typ == "IF":
                beta, s = 0.9, f["r"]
            elif typ == "LIF":
                beta, s = np.clip(1 - DT / f["tau"], 0, 1), f["r"] * DT / f["tau"]
            else:
                beta, s = (np.clip(1 - DT / f["tau_mem"], 0, 1),
                           f["w_in"] * DT / f["tau_syn"] * f["r"] * DT / f["tau_mem"])
            s = 1.0 if np.all(np.abs(s - 1) <= 1e-8 + 1e-5) else s
            thr = th / s
            q = H(v - thr)
            if typ == "CubaLIF":
                i = np.clip(1 - DT / f["tau_syn"], 0, 1) * i + xt
                m = beta * v + i
            else:
                m = beta * v + xt
            if typ == "IF":  # snnTorch's IF: Leaky(beta=0.9), subtractive reset
                m = m - q * thr
                z = H(m - thr)
                v = m - (z - q) * thr
            else:
                m = m - q * m
                z = H(m - thr)
                v = m - (z - q) * m
        elif profile in ("spyx", "spyx1"):
            z = H(v - th)
            raw = profile == "spyx1"
            if typ == "LIF":
                beta = np.clip(1 - DT / f["tau"], 0, 1)
                v = beta * v + (1 if raw else DT / f["tau"]) * xt - z * th
            elif typ == "IF":
                v = v + (1 if raw else DT) * xt - z * th
            else:
                alpha = np.clip(1 - DT / f["tau_syn"], 0, 1)
                beta = np.clip(1 - DT / f["tau_mem"], 0, 1)
                i = alpha * i + (1 if raw else DT / f["tau_syn"] * f["w_in"]) * xt
                v = beta * (v - z * th) + i
                if profile == "spyx" and not recurrent:  # Spyx 0.1 CuBaLIF: twice
                    v = v - z * th
        elif profile in ("sinabs", "rockpool"):
            bias = f.get("v_leak", 0.0) if profile == "rockpool" else 0.0
            if typ == "LIF":
                v = np.exp(-DT / f["tau"]) * v + xt + bias
            elif typ == "IF":
                v = v + xt
            else:
                i = np.exp(-DT / f["tau_syn"]) * (i + xt)
                v = np.exp(-DT / f["tau_mem"]) * v + i + bias
            z = np.where(v >= th, np.floor(v / th), 0.0)
            v = v - z * th
            if profile == "sinabs" and typ == "IF":
                v = np.maximum(v, -th)
        elif profile == "lava":
            if typ == "LIF":
                v = (1 - DT / f["tau"]) * v + DT / f["tau"] * xt
            elif typ == "IF":
                v = v + xt
            else:
                i = (1 - DT / f["tau_syn"]) * i + f["w_in"] * DT / f["tau_syn"] * xt
                v = (1 - DT / f["tau_mem"]) * v + i
            z = H(v - th)
            v = v * (1 - z)
        elif profile == "spinnaker2":
            if typ == "LIF":
                s = f["r"] * DT / f["tau"]
                v = (1 - DT / f["tau"]) * v + xt + f["v_leak"] / f["r"]
            elif typ == "IF":
                s = f["r"]
                v = v + xt
            else:
                s = f["w_in"] * DT / f["tau_syn"] * f["r"] * DT / f["tau_mem"]
                i = (1 - DT / f["tau_syn"]) * i + xt
                v = (1 - DT / f["tau_mem"]) * v + i + DT / f["tau_mem"] * f["v_leak"] / s
            z = H(v - th / s)
            v = v * (1 - z)
        z_out[t], v_out[t] = z, v
    return z_out, v_out


def random_params(rng, typ, n):
    """Parameters exercising every field: r, v_leak, w_in, v_reset away from their neutral
    values (profiles that ignore them must ignore them)."""
    p = dict(v_threshold=np.full(n, rng.uniform(0.6, 1.2)), r=rng.uniform(0.5, 2.0, n),
             v_reset=rng.uniform(-0.3, 0.3, n))
    if typ == "LIF":
        p.update(tau=rng.uniform(1e-3, 5e-3, n), v_leak=rng.uniform(-0.2, 0.2, n))
    elif typ == "CubaLIF":
        p.update(tau_syn=rng.uniform(1e-3, 4e-3, n), tau_mem=rng.uniform(3e-3, 8e-3, n),
                 v_leak=rng.uniform(-0.1, 0.1, n), w_in=rng.uniform(0.5, 2.0, n))
    return p


def drive(profile, typ, p, rng, shape):
    """Inputs sized so the platform's input gain gives a few spikes per neuron."""
    raw = profile in ("sinabs", "rockpool", "spyx1", "norse") or (
        profile == "lava" and typ == "IF")
    if typ == "IF":
        scale = 0.4 if raw else (0.4 / DT if profile not in ("snntorch", "spinnaker2") else 0.4)
    elif typ == "LIF":
        scale = 0.5 if raw else 0.5 * np.mean(p["tau"]) / DT
        if profile in ("snntorch", "spinnaker2"):
            scale = 0.5 / np.mean(p["r"] * DT / p["tau"])
        if profile == "norse":
            scale = 0.5 * np.mean(p["tau"]) / DT
    else:
        scale = 0.1 if raw else 0.1 * np.mean(p["tau_syn"]) / DT
        if profile in ("snntorch", "spinnaker2"):
            scale = 0.1 / np.mean(p["w_in"] * DT / p["tau_syn"] * p["r"] * DT / p["tau_mem"])
        if profile == "norse":
            scale = 3.0
    sign = np.where(rng.random(shape) < 0.25, -1.5, 1.0)  # inhibition reaches the clamps
    return (rng.random(shape) < 0.3) * rng.uniform(0.5, 1.5, shape) * scale * sign


def single_node(typ, p, n):
    kwargs = {k: np.asarray(v, np.float64) for k, v in p.items()}
    if typ == "IF":
        kwargs = {k: kwargs[k] for k in ("r", "v_threshold", "v_reset")}
    node = getattr(nir, typ)(**kwargs)
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n])), "node": node,
                               "output": nir.Output(output_type=np.array([n]))},
                        edges=[("input", "node"), ("node", "output")], type_check=False)


ORACLE_CASES = [(p, t) for p in ("norse", "snntorch", "spyx", "spyx1", "sinabs", "rockpool",
                                 "lava", "spinnaker2") for t in ("LIF", "IF", "CubaLIF")]


@pytest.mark.parametrize("profile,typ", ORACLE_CASES)
def test_profile_kernel_against_float64_oracle(profile, typ):
    """Each profile computes its platform's documented update (float64, tight)."""
    rng = rng_for(f"oracle-{profile}-{typ}")
    n, T, B = 6, 150, 2
    p = random_params(rng, typ, n)
    if profile == "snntorch" and typ == "CubaLIF":  # snnTorch's convention r = tau_mem/dt
        p["r"] = p["tau_mem"] / DT
    x = drive(profile, typ, p, rng, (T, B, n))
    with jax.enable_x64(True):
        model = nirjax.compile(single_node(typ, p, n), dt=DT, semantics=profile)
        ys, _, rec = model.run(model.params, x, record=[("node", "v")])
        ys, v = np.asarray(ys), np.asarray(rec[("node", "v")])
    z_ref, v_ref = oracle(profile, typ, p, x)
    assert z_ref.sum() > 0 and (z_ref == 0).any(), "the case must both spike and not spike"
    np.testing.assert_array_equal(ys, z_ref)
    np.testing.assert_allclose(v, v_ref, rtol=1e-9, atol=1e-9)


def test_multi_spike_and_clamp_options():
    """spikes='multi' emits floor(v/theta) spikes and subtracts them all; v_min clamps."""
    p = dict(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1))
    g = single_node("IF", p, 1)
    x = np.array([3.5, 0.2, -5.0, 0.4, 0.7]).reshape(-1, 1, 1)
    with jax.enable_x64(True):
        m = nirjax.compile(g, dt=DT, semantics="sinabs")
        ys, _, rec = m.run(m.params, x, record=[("node", "v")])
    # v: 3.5 -> 3 spikes, 0.5; 0.7; 0.7-5 = -4.3 clamped to -1; -0.6; 0.1
    np.testing.assert_allclose(np.ravel(ys), [3, 0, 0, 0, 0])
    np.testing.assert_allclose(np.ravel(rec[("node", "v")]), [0.5, 0.7, -1.0, -0.6, 0.1],
                               atol=1e-12)


def test_rockpool_li_is_an_exponential_synapse():
    """Rockpool's LI is ExpSynTorch, i = b*(i + x) (the input decays in the step it
    arrives; r and v_leak are not read): an impulse at t = 0 with tau = 0.01, dt = 1e-3
    gives b, b**2, ... (Rockpool: 0.905, 0.819, ...), while the sinabs profile's LI (ExpLeak)
    keeps v = a*v + x: 1, a, a**2, ..."""
    p = dict(tau=[0.01], r=[3.0], v_leak=[0.5])
    x = np.zeros((5, 1, 1))
    x[0] = 1.0
    with jax.enable_x64(True):
        rock = np.ravel(nirjax.compile(_nonspiking_node("LI", p), dt=1e-3,
                                       semantics="rockpool")(x))
        sin = np.ravel(nirjax.compile(_nonspiking_node("LI", dict(p, r=[1.0], v_leak=[0.0])),
                                      dt=1e-3, semantics="sinabs")(x))
    b = np.exp(-0.1)
    np.testing.assert_allclose(rock, b ** np.arange(1, 6), rtol=1e-12)
    np.testing.assert_allclose(rock[:2], [0.905, 0.819], atol=5e-4)
    np.testing.assert_allclose(sin, b ** np.arange(0, 5), rtol=1e-12)


def test_rockpool_caps_spikes_per_step():
    """Rockpool emits at most max_spikes_per_dt = 2**16 spikes per neuron and step and
    subtracts only those: v = 1e5 gives 65536 spikes and leaves 34464 (without the cap,
    100000 spikes)."""
    p = dict(tau=[1e-2], r=[1.0], v_leak=[0.0], v_threshold=[1.0], v_reset=[0.0])
    g = single_node("LIF", p, 1)
    x = np.array([1e5, 0.0]).reshape(-1, 1, 1)
    with jax.enable_x64(True):
        m = nirjax.compile(g, dt=DT, semantics="rockpool")
        ys, _, rec = m.run(m.params, x, record=[("node", "v")])
        uncapped = nirjax.compile(g, dt=DT, semantics=nirjax.PROFILES["rockpool"].replace(
            max_spikes=None))(x)
    a = np.exp(-DT / 1e-2)
    assert np.ravel(ys)[0] == 2 ** 16 and np.ravel(uncapped)[0] == 1e5
    v0 = 1e5 - 2 ** 16
    np.testing.assert_allclose(np.ravel(rec[("node", "v")]), [v0, a * v0 - np.floor(a * v0)],
                               rtol=1e-9)
    assert np.ravel(ys)[1] == np.floor(a * v0)


def test_dirac_spike_amplitude():
    """spike_amplitude='dirac' outputs 1/dt per spike, the reset is unchanged."""
    p = dict(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1))
    x = np.full((6, 1, 1), 0.6 / DT)
    plain = nirjax.compile(single_node("IF", p, 1), dt=DT)
    dirac = nirjax.compile(single_node("IF", p, 1), dt=DT,
                           semantics={"spike_amplitude": "dirac"})
    np.testing.assert_allclose(np.asarray(dirac(x)), np.asarray(plain(x)) / DT, rtol=1e-6)
    assert np.asarray(plain(x)).sum() == 3


def _nonspiking_node(typ, p, n=1):
    node = getattr(nir, typ)(**{k: np.asarray(v, np.float64) for k, v in p.items()})
    return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n])), "node": node,
                               "output": nir.Output(output_type=np.array([n]))},
                        edges=[("input", "node"), ("node", "output")], type_check=False)


def _loop(x, update, state):
    """Run ``state, v = update(state, x_t)`` over the steps; returns the v trace."""
    out = []
    for t in range(x.shape[0]):
        state, v = update(state, x[t])
        out.append(v)
    return np.stack(out)


_TAU, _R, _VL, _TS, _TM, _W = 2e-3, 1.5, 0.1, 1.5e-3, 4e-3, 0.7
_K, _KS, _KM = DT / _TAU, DT / _TS, DT / _TM
_LI = dict(tau=[_TAU], r=[_R], v_leak=[_VL])
_CUBALI = dict(tau_syn=[_TS], tau_mem=[_TM], r=[_R], v_leak=[_VL], w_in=[_W])
_IF = dict(r=[_R], v_threshold=[1e9], v_reset=[0.0])  # never spikes: v is the raw update
_LIF = dict(tau=[_TAU], r=[_R], v_leak=[_VL], v_threshold=[1e9], v_reset=[0.0])

# (id, NIR type, params, semantics, float64 oracle: (state, x_t) -> (state, v), initial state)
OPTION_CASES = [
    ("IF-fixed_decay-0", "IF", _IF, dict(form="decay", input_gain="unit", fixed_decay=0.0),
     lambda v, x: (x + 0 * v,) * 2, 0.0),
    ("IF-fixed_decay-0.5", "IF", _IF, dict(form="decay", input_gain="unit", fixed_decay=0.5),
     lambda v, x: (0.5 * v + x,) * 2, 0.0),
    ("IF-decay-nir-gain", "IF", _IF, dict(form="decay"),
     lambda v, x: (v + DT * _R * x,) * 2, 0.0),
    ("LIF-fixed_decay-0.3", "LIF", _LIF, dict(form="decay", fixed_decay=0.3),
     lambda v, x: ((0.3 * v + _K * _R * x) + _K * _VL,) * 2, _VL),
    ("LIF-decay-exact-unit", "LIF", _LIF, dict(form="decay", integrator="exact",
                                                input_gain="unit"),
     lambda v, x: ((np.exp(-_K) * v + x) + _VL,) * 2, _VL),
    ("I-decay-unit", "I", dict(r=[_R]), dict(form="decay", input_gain="unit"),
     lambda v, x: (v + x,) * 2, 0.0),
    ("I-euler", "I", dict(r=[_R]), dict(),
     lambda v, x: (v + DT * _R * x,) * 2, 0.0),
    ("LI-decay-threshold-keeps-nir-gain", "LI", _LI, dict(form="decay", input_gain="threshold"),
     lambda v, x: (((1 - _K) * v + _K * _R * x) + _K * _VL,) * 2, _VL),
    ("LI-norse", "LI", _LI, dict(form="norse"),
     lambda v, x: (v + DT * (1 / _TAU) * ((_VL - v) + _R * x),) * 2, _VL),
    ("LI-exact-zero-start", "LI", _LI, dict(integrator="exact", initial_v="zero"),
     lambda v, x: ((_VL + _R * x) + (v - (_VL + _R * x)) * np.exp(-_K),) * 2, 0.0),
]


def _cuba(i_v, x, sem):
    i, v = i_v
    if sem == "add_decay-exact-unit":
        i = np.exp(-_KS) * (i + x)
        v = (np.exp(-_KM) * v + i) + _VL
    elif sem == "norse-old":
        i_new = i + DT * (1 / _TS) * ((_VL - i) + _W * x)
        v = v + DT * (1 / _TM) * ((_R * i + _VL) - v)
        i = i_new
    elif sem == "decay-input-new":
        i = (1 - _KS) * i + _KS * _W * x
        v = ((1 - _KM) * v + i) + _KM * _VL
    return (i, v), v


CUBA_CASES = [
    ("add_decay-exact-unit", dict(form="decay", integrator="exact", input_gain="unit",
                                  synapse="add_decay", initial_v="zero", cuba_current="new"),
     (0.0, 0.0)),
    ("norse-old", dict(form="norse"), (_VL, _VL)),  # Norse's synapse starts at v_leak
    ("decay-input-new", dict(form="decay", input_gain="input", cuba_current="new"), (0.0, _VL)),
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_semantics_options_against_float64_oracle(case, x64):
    """Single non-spiking updates under the less common options, each against its documented
    equation (the IF ``fixed_decay=0.0`` case: ``v = x``, not a decay of 1)."""
    _, typ, p, sem, update, v0 = case
    x = rng_for(case[0]).uniform(-1.0, 2.0, (12, 1, 1))
    model = nirjax.compile(_nonspiking_node(typ, p), dt=DT, semantics=sem)
    _, _, rec = model.run(model.params, x, record=[("node", "v")])
    expected = _loop(x, update, np.full((1, 1), v0))
    np.testing.assert_allclose(np.asarray(rec[("node", "v")]), expected, rtol=1e-12, atol=1e-12)


def test_if_fixed_decay_zero_forgets_the_past(x64):
    model = nirjax.compile(_nonspiking_node("IF", _IF), dt=DT,
                           semantics=dict(form="decay", input_gain="unit", fixed_decay=0.0))
    _, _, rec = model.run(model.params, np.ones((3, 1, 1)), record=[("node", "v")])
    np.testing.assert_array_equal(np.ravel(rec[("node", "v")]), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("case", CUBA_CASES, ids=[c[0] for c in CUBA_CASES])
def test_cubali_options_against_float64_oracle(case, x64):
    name, sem, start = case
    x = rng_for(f"cuba-{name}").uniform(-1.0, 2.0, (12, 1, 1))
    model = nirjax.compile(_nonspiking_node("CubaLI", _CUBALI), dt=DT, semantics=sem)
    ys, _, rec = model.run(model.params, x, record=[("node", "i_syn")])
    state = tuple(np.full((1, 1), s) for s in start)
    expected = _loop(x, lambda iv, xt: _cuba(iv, xt, name), state)
    np.testing.assert_allclose(np.asarray(ys), expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- graph level


def lif_chain(layers, rng, bias=0.0):
    nodes, edges, prev, n_prev = {"input": nir.Input(input_type=np.array([3]))}, [], "input", 3
    for k, n in enumerate(layers):
        nodes[f"fc{k}"] = nir.Affine(weight=rng.uniform(0, 1.0, (n, n_prev)) * 30,
                                     bias=np.full(n, bias))
        nodes[f"lif{k}"] = nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                                   v_threshold=np.ones(n), v_reset=np.zeros(n))
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        prev, n_prev = f"lif{k}", n
    nodes["output"] = nir.Output(output_type=np.array([n_prev]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_latency_weights_delays_each_weight_layer_one_step():
    """latency='weights' (Lava's Dense): a chain with two weight layers and no bias gives
    exactly the latency-free output two steps later."""
    rng = rng_for("latency")
    g = lif_chain([4, 3], rng)
    x = (rng.random((60, 2, 3)) < 0.3).astype(np.float32)
    lava = nirjax.compile(g, dt=DT, semantics="lava")
    plain = nirjax.compile(g, dt=DT, semantics=nirjax.PROFILES["lava"].replace(latency="none"))
    a, b = np.asarray(lava(x)), np.asarray(plain(x))
    assert b.sum() > 0
    np.testing.assert_array_equal(a[2:], b[:-2])
    assert not a[:2].any()
    delays = [n.name for n in lava.program.nodes if n.type_name == "Delay"]
    assert sorted(delays) == ["fc0->lif0", "fc1->lif1"]
    assert lava.program.delayed_edges == ()


def recurrent_lif(rng, n=5, bias=0.3):
    nodes = {"input": nir.Input(input_type=np.array([3])),
             "fc": nir.Affine(weight=rng.uniform(0, 20, (n, 3)), bias=np.zeros(n)),
             "lif": nir.LIF(tau=np.full(n, 3e-3), r=np.ones(n), v_leak=np.zeros(n),
                            v_threshold=np.ones(n), v_reset=np.zeros(n)),
             "w_rec": nir.Affine(weight=rng.uniform(-10, 10, (n, n)), bias=np.full(n, bias)),
             "output": nir.Output(output_type=np.array([n]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
             ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def rec_oracle(g, x, bias_at_t0, keep_bias=True):
    """float64 NIR Euler LIF with a recurrent Affine acting on last step's spikes."""
    W, Wr = g.nodes["fc"].weight, g.nodes["w_rec"].weight
    b = g.nodes["w_rec"].bias if keep_bias else 0 * g.nodes["w_rec"].bias
    n = W.shape[0]
    v, z, out = np.zeros((x.shape[1], n)), np.zeros((x.shape[1], n)), []
    for t in range(x.shape[0]):
        rec = z @ Wr.T + (b if (t > 0 or bias_at_t0) else 0)
        v = v + DT / 3e-3 * ((0 - v) + x[t] @ W.T + rec)
        z = H(v - 1.0)
        v = v * (1 - z)
        out.append(z)
    return np.array(out)


@pytest.mark.parametrize("cycle_break,bias_at_t0", [("dfs", False), ("neuron", True)])
def test_cycle_break_places_the_recurrent_delay(cycle_break, bias_at_t0):
    """'dfs' delays the recurrent weight's output (no bias at t=0, Norse/NIRTorch);
    'neuron' delays the spikes (the weight and its bias act at t=0, snnTorch/Rockpool)."""
    rng = rng_for("cycle-break")
    g = recurrent_lif(rng)
    x = (rng.random((80, 2, 3)) < 0.3).astype(np.float64)
    with jax.enable_x64(True):
        m = nirjax.compile(g, dt=DT, semantics={"cycle_break": cycle_break})
        ys = np.asarray(m(x))
    ref = rec_oracle(g, x, bias_at_t0)
    np.testing.assert_array_equal(ys, ref)
    assert not np.array_equal(ref, rec_oracle(g, x, not bias_at_t0)), "the t=0 bias matters"
    delayed = {(e.src, e.dst) for e in m.program.delayed_edges}
    if cycle_break == "neuron":  # a one-step Delay node between the neuron and the weight
        assert delayed == set() and m.program.node("lif->w_rec").type_name == "Delay"
    else:
        assert delayed == {("w_rec", "lif")}


def test_recurrent_bias_drop_warns_and_drops():
    """recurrent_bias='drop' (Spyx, Rockpool) simulates the recurrent Affine without its
    bias and says so."""
    rng = rng_for("drop-bias")
    g = recurrent_lif(rng, bias=0.5)
    x = (rng.random((80, 2, 3)) < 0.3).astype(np.float64)
    sem = nirjax.Semantics(cycle_break="neuron", recurrent_bias="drop")
    with pytest.warns(NirjaxWarning, match="'w_rec'.*bias is dropped"):
        m = nirjax.compile(g, dt=DT, semantics=sem)
    assert m.program.node("w_rec").type_name == "Linear"
    with jax.enable_x64(True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NirjaxWarning)
            m = nirjax.compile(g, dt=DT, semantics=sem)
        np.testing.assert_array_equal(np.asarray(m(x)), rec_oracle(g, x, True, keep_bias=False))


def test_spyx_recurrent_and_feedforward_cells_differ_as_in_spyx01():
    """Spyx 0.1 resets a recurrent CubaLIF once and a feed-forward one twice."""
    g = read_quiet(nirjax.example_path("braille_bias_zero"))
    with pytest.warns(NirjaxWarning, match="lif1.w_rec"):  # Spyx drops the recurrent bias
        m = nirjax.compile(g, dt=DT, semantics="spyx")
    assert m.program.node("lif1.lif").semantics.reset_at == "carried"
    assert m.program.node("lif2").semantics.reset_at == "both"
    assert not m.program.node("lif2").feedthrough  # fire='before': output from state only
    assert m.program.delayed_edges == ()  # the recurrent loop needs no extra delay


def test_nir_and_exact_profiles_are_the_defaults():
    """'nir' is Semantics() and changes nothing; 'exact' only switches the integrator."""
    assert nirjax.PROFILES["nir"] == nirjax.Semantics()
    assert nirjax.PROFILES["exact"] == nirjax.Semantics(integrator="exact", name="exact")


# ----------------------------------------------------------------------------- API


def test_every_profile_is_documented():
    """Each platform profile states its discrete updates and its departures from the spec,
    citing the platform's code."""
    assert set(ALL_PROFILES) <= set(nirjax.PROFILES)
    for name in ALL_PROFILES:
        sem = nirjax.PROFILES[name]
        assert isinstance(sem, nirjax.Semantics) and sem.name == name
        text = sem.describe()
        assert text.startswith(f"Semantics {name!r}")
        if name not in ("nir", "exact"):
            doc = getattr(nirjax.profiles, name).__doc__
            assert "Departures from the NIR spec" in doc and ".py" in doc, name
            assert doc in text


@pytest.mark.parametrize("changes,field", [
    ({"form": "norse", "integrator": "exact"}, "form"),
    ({"input_gain": "unit"}, "input_gain"),
    ({"reset_at": "carried"}, "reset_at"),
    ({"ignore": ("tau",)}, "ignore"),
    ({"fixed_decay": 1.5}, "fixed_decay"),
    ({"spikes": "many"}, "spikes"),
    ({"reset_flag": "previous_v", "spikes": "multi"}, "reset_flag"),
    ({"form": "nengo"}, "form"),  # Nengo's update is exact
    ({"rate": "reciprocal"}, "rate"),  # a decay-form rounding
    ({"spikes": "multi", "max_spikes": 0}, "max_spikes"),
    ({"max_spikes": 4}, "max_spikes"),  # caps multi-spikes only
    ({"imports": ("LIF", 3)}, "imports"),
])
def test_invalid_semantics_are_rejected(changes, field):
    with pytest.raises(SemanticsError, match=field):
        nirjax.Semantics(**changes)


def test_graph_fields_cannot_be_overridden_per_node():
    with pytest.raises(SemanticsError, match="latency"):
        nirjax.Semantics().override("lif1", latency="weights")
    with pytest.raises(SemanticsError, match="cycle_break"):
        nirjax.Semantics().override_type("LIF", cycle_break="neuron")


def test_type_and_node_overrides_compose():
    """Type overrides apply to every node of the type; node overrides come last."""
    s = (nirjax.Semantics().override_type("LIF", reset="subtract")
         .override("lif1", threshold_test=">="))
    assert s.for_node("lif1", "LIF").reset == "subtract"
    assert s.for_node("lif1", "LIF").threshold_test == ">="
    assert s.for_node("lif2", "LIF").threshold_test == ">"
    assert s.for_node("cuba", "CubaLIF").reset == "v_reset"
    assert nirjax.PROFILES["norse"].for_node("a", "LIF").ignore == ("r", "v_reset")
    assert nirjax.PROFILES["norse"].for_node("a", "CubaLIF").ignore == ("v_reset",)


PAPER_RUNS = {"braille": ("braille_bias_zero", (20, 3, 12)),
              "cnn": ("cnn_sinabs", (5, 2, 2, 34, 34))}


@pytest.mark.slow
@pytest.mark.parametrize("graph", sorted(PAPER_RUNS))
@pytest.mark.parametrize("name", [p for p in ALL_PROFILES if p != "lava_fixed"])  # LIF only
def test_profiles_run_every_paper_graph(name, graph):
    """Every profile compiles and runs every paper graph, batched (whatever the platform
    itself can import)."""
    example, shape = PAPER_RUNS[graph]
    rng = rng_for(f"paper-graphs-{name}-{graph}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NirjaxWarning)
        m = nirjax.compile(read_quiet(nirjax.example_path(example)), dt=DT, semantics=name)
        ys = np.asarray(m((rng.random(shape) < 0.2).astype(np.float32)))
    assert ys.shape[:2] == shape[:2] and np.all(np.isfinite(ys))
