"""Nengo 4.1 running NIR graphs converted the NIR paper's way: kernels, oracle, real package.

Three implementations of the same networks are compared:

* ``nirjax.kernels.nengo``: the JAX kernels (Nengo's LIF, the paper's IF, Nengo's Lowpass),
  run step by step in a plain Python loop (:class:`KernelBackend` plugged into the oracle's
  graph walk), float64 unless stated;
* ``tests/nengo_oracle.py``: an independent float64 NumPy model of the converted network;
* Nengo 4.1.0 itself, in the ``nengo`` peer environment (``tests/peers/setup_peers.sh``),
  building the network with the paper's conventions (``tests/peers/nengo_runner.py``).

The published Nengo trace of the paper's LIF task (``tests/data/paper/lif_nengo.csv``: input,
Nengo's voltage, spikes x dt) needs no environment. Tests that need Nengo skip with the reason
when the environment is missing and fail with ``NIRJAX_PEERS_REQUIRED=1``.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nengo_oracle
from nirjax.kernels import nengo as nk

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import harness  # noqa: E402

DT = 1e-4
DATA = os.path.join(os.path.dirname(__file__), "data", "paper")
REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
CASES = harness.cases_for("nengo", n_random=2, braille_batches=2)
_PEER: dict = {}


def _paper_lif():
    graph = nir.read(os.path.join(DATA, "lif_norse.nir"))
    csv = np.loadtxt(os.path.join(DATA, "lif_nengo.csv"), delimiter=",")
    return graph, csv


def _require_nengo():
    """Skip (or fail, with NIRJAX_PEERS_REQUIRED=1) when the nengo environment is missing."""
    if harness.peer_python("nengo") is None:
        msg = (f"nengo environment not found under {harness.peers_dir()}: build it with "
               f"tests/peers/setup_peers.sh")
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)


def _peer():
    """All nengo cases run once in real Nengo (one subprocess), cached."""
    _require_nengo()
    if "result" not in _PEER:
        _PEER["result"] = harness.run_peer("nengo", CASES)
    return _PEER["result"]


def _graph(case):
    return nir.read(case.graph) if isinstance(case.graph, (str, os.PathLike)) else case.graph


class KernelBackend:
    """The oracle's three dynamic pieces computed by ``nirjax.kernels.nengo`` (jit-compiled
    steps, called once per time step), in ``dtype``."""

    def __init__(self, dtype=jnp.float64, lif_options=None):
        self.dtype = dtype
        self.lif_options = dict(lif_options or {})

    def _arr(self, a):
        return jnp.asarray(np.asarray(a).reshape(-1), self.dtype)

    def lif(self, node, dt, batch):
        if isinstance(node, nir.CubaLIF):
            stored = np.result_type(np.asarray(node.w_in).dtype, np.asarray(node.r).dtype)
            params, _ = nk.paper_cubalif_params(
                self._arr(node.tau_syn), self._arr(node.tau_mem), self._arr(node.r),
                self._arr(node.w_in), self._arr(node.v_threshold), dt,
                product_dtype=jnp.dtype(stored) if stored.itemsize < 8 else None)
        else:
            params = nk.paper_lif_params(self._arr(node.tau), self._arr(node.v_threshold))
        params = params._replace(**{k: jnp.full_like(params.gain, v)
                                    for k, v in self.lif_options.items()})
        shape = (batch,) + params.gain.shape
        return nk.lif_init_state(shape, self.dtype), self._stepper(nk.lif_step, params, dt, shape)

    def if_(self, node, dt, batch):
        params = nk.paper_if_params(self._arr(node.v_threshold), dt)
        shape = (batch,) + params.gain.shape
        return nk.if_init_state(shape, self.dtype), self._stepper(nk.if_step, params, dt, shape)

    def _stepper(self, kernel, params, dt, shape):
        # one sample per call, vmapped over the batch (the kernels work on one sample)
        step = jax.jit(jax.vmap(lambda state, x: kernel(params, state, x, dt)))

        def run(state, inputs):
            x = jnp.zeros(shape, self.dtype)
            for value in inputs:
                x = x + jnp.asarray(value, self.dtype)
            state, out = step(state, x)
            return state, np.asarray(out, np.float64), np.asarray(state.voltage, np.float64)

        return run

    def lowpass(self, tau, dt, shape):
        coeffs = nk.lowpass_coeffs(jnp.asarray(tau, self.dtype), dt)
        absorb = jax.jit(lambda state, u: nk.lowpass_absorb(coeffs, state,
                                                            jnp.asarray(u, self.dtype)))
        return (nk.lowpass_init_state(shape, self.dtype),
                lambda state: np.asarray(nk.lowpass_emit(coeffs, state), np.float64), absorb)


# ----------------------------------------------------------------------------- no environment


def test_oracle_reproduces_published_nengo_trace():
    """The oracle of the paper's conversion gives lif_nengo.csv bit for bit: spikes at 460,
    510, 710, 760 of amplitude 1/dt, and Nengo's voltage at every step."""
    graph, csv = _paper_lif()
    out, rec = nengo_oracle.NengoNet(graph, DT).run(csv[:, None, :1], record=("1",))
    assert np.flatnonzero(out[:, 0, 0]).tolist() == [460, 510, 710, 760]
    np.testing.assert_array_equal(out[:, 0, 0] * DT, csv[:, 2])
    np.testing.assert_array_equal(rec["1"][:, 0, 0], csv[:, 1])


def test_kernels_reproduce_published_nengo_trace(x64):
    """Affine -> nengo.LIF of the LIF task, the kernel stepped in a plain loop, float64:
    lif_nengo.csv's spikes exactly and its voltage to 1e-15."""
    graph, csv = _paper_lif()
    lif, aff = graph.nodes["1"], graph.nodes["0"]
    params = nk.paper_lif_params(jnp.asarray(lif.tau, jnp.float64),
                                 jnp.asarray(lif.v_threshold, jnp.float64))
    step = jax.jit(lambda s, x: nk.lif_step(params, s, x, DT))
    state, spikes, volts = nk.lif_init_state((1,), jnp.float64), [], []
    for x in csv[:, :1]:
        state, z = step(state, np.asarray(aff.weight, np.float64) @ x + np.asarray(aff.bias, np.float64))
        spikes.append(float(z[0]))
        volts.append(float(state.voltage[0]))
    np.testing.assert_array_equal(np.array(spikes) * DT, csv[:, 2])
    np.testing.assert_allclose(volts, csv[:, 1], rtol=0, atol=1e-15)


def test_kernels_float32_on_published_nengo_trace():
    """The same loop in float32: the same spike steps, voltage within float32 rounding."""
    graph, csv = _paper_lif()
    lif = graph.nodes["1"]
    params = nk.paper_lif_params(jnp.asarray(lif.tau), jnp.asarray(lif.v_threshold))
    step = jax.jit(lambda s, x: nk.lif_step(params, s, x, DT))
    state, spikes, volts = nk.lif_init_state((1,)), [], []
    for x in csv[:, :1].astype(np.float32):
        state, z = step(state, jnp.asarray(x))
        spikes.append(float(z[0]))
        volts.append(float(state.voltage[0]))
    assert np.flatnonzero(spikes).tolist() == [460, 510, 710, 760]
    np.testing.assert_allclose(volts, csv[:, 1], rtol=0, atol=1e-6)


def test_lif_kernel_closed_form(x64):
    """With tau_ref = 0 the refractory bookkeeping changes nothing: every step is the exact
    update v - (J - v)*expm1(-dt/tau_rc), floored at 0, spike above 1, reset to 0 (checked
    against that closed form on random currents, including negative ones)."""
    rng = np.random.default_rng(0)
    n = 50
    params = nk.LIFParams(*(jnp.asarray(a) for a in (
        rng.uniform(1e-3, 2e-2, n), np.zeros(n), rng.uniform(0.5, 3.0, n), rng.normal(0, 0.5, n),
        np.ones(n), np.zeros(n))))
    step = jax.jit(lambda s, x: nk.lif_step(params, s, x, DT))
    state, v = nk.lif_init_state((n,), jnp.float64), np.zeros(n)
    fired = 0
    for _ in range(300):
        x = rng.normal(0.8, 1.5, n) * 40
        state, out = step(state, x)
        J = np.asarray(params.bias) + np.asarray(params.gain) * x
        v = v - (J - v) * np.expm1(-DT / np.asarray(params.tau_rc))
        z = v > 1
        v = np.where(z, 0.0, np.maximum(v, 0.0))
        fired += z.sum()
        np.testing.assert_array_equal(np.asarray(out), z / DT)
        np.testing.assert_allclose(np.asarray(state.voltage), v, rtol=0, atol=1e-13)
    assert fired > 100


def test_lowpass_coefficients_and_delay(x64):
    """Kernel coefficients equal the zero-order hold computed from the matrix exponential
    (oracle.expm) to a few ulps; the paper's tau' makes the decay 1 - dt/tau_syn; the filter
    output lags its input by one step (Nengo's update-mode synapse)."""
    for tau in (1.2e-4, 1.7e-4, 1e-3, 4.3e-3, 2e-2):
        a, b = nengo_oracle.lowpass_zoh(tau, DT)
        c = nk.lowpass_coeffs(jnp.float64(tau), DT)
        assert abs(float(c.a) - a) <= 4 * np.spacing(a) and abs(float(c.b) - b) <= 8 * np.spacing(b)
    for tau_syn in (2.2222e-4, 1e-3, 4e-3):
        a = nk.lowpass_coeffs(nk.cubalif_tau_syn(jnp.float64(tau_syn), DT), DT).a
        assert abs(float(a) - (1 - DT / tau_syn)) < 1e-15
    c = nk.lowpass_coeffs(jnp.float64(1e-3), DT)
    state, ys = nk.lowpass_init_state((1,), jnp.float64), []
    for u in [0.0, 1.0, 0.0, 0.0]:
        state, y = nk.lowpass_step(c, state, jnp.array([u]))
        ys.append(float(y[0]))
    assert ys[:2] == [0.0, 0.0]
    np.testing.assert_allclose(ys[2:], [float(c.b), float(c.a * c.b)], rtol=1e-15)


def test_if_kernel_closed_form(x64):
    """The paper's IF: v += (gain*x)*dt with gain = (1/theta)/dt, spike of 1 above 1, to 0."""
    rng = np.random.default_rng(1)
    thr = rng.uniform(0.5, 2.0, 20)
    params = nk.paper_if_params(jnp.asarray(thr), DT)
    state, v = nk.if_init_state((20,), jnp.float64), np.zeros(20)
    for _ in range(100):
        x = rng.normal(0.2, 0.5, 20)
        state, out = nk.if_step(params, state, jnp.asarray(x), DT)
        v = v + (1.0 / thr / DT * x) * DT
        z = v > 1
        v = np.where(z, 0.0, v)
        np.testing.assert_array_equal(np.asarray(out), z.astype(float))
        np.testing.assert_allclose(np.asarray(state.voltage), v, rtol=0, atol=1e-12)


def test_kernels_jit_vmap_grad():
    """vmap equals a loop over samples; surrogate gradients w.r.t. the gain are finite and
    nonzero; the carry keeps its dtype."""
    n, B = 6, 3
    params = nk.paper_lif_params(jnp.full((n,), 3e-3), jnp.full((n,), 0.5))
    xs = jnp.asarray(np.random.default_rng(2).uniform(0, 2, (20, B, n)), jnp.float32)

    def run(gain, x):  # x: [T, n]
        p = params._replace(gain=gain)

        def body(s, xt):
            s, z = nk.lif_step(p, s, xt, DT)
            return s, z
        state, zs = jax.lax.scan(body, nk.lif_init_state((n,)), x)
        assert state.voltage.dtype == jnp.float32
        return zs

    batched = jax.jit(jax.vmap(run, in_axes=(None, 1), out_axes=1))(params.gain, xs)
    looped = jnp.stack([run(params.gain, xs[:, b]) for b in range(B)], axis=1)
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(looped))
    assert float(jnp.sum(batched)) > 0
    grad = jax.grad(lambda g: jnp.sum(run(g, xs[:, 0])) * DT)(params.gain)
    assert np.all(np.isfinite(np.asarray(grad))) and float(jnp.sum(jnp.abs(grad))) > 0


# ----------------------------------------------------------------------------- real Nengo


@pytest.mark.peers
def test_nengo_environment_version():
    """The environment runs the Nengo the profile documents."""
    _, versions = _peer()
    assert versions.get("nengo") == "4.1.0", versions


@pytest.mark.peers
@pytest.mark.parametrize("case_id", [pytest.param(c.id, marks=pytest.mark.slow) if c.id == "cnn"
                                     else c.id for c in CASES])
def test_oracle_equals_nengo(case_id):
    """The float64 oracle of the converted network equals Nengo: every output value (spikes
    identical; an LI output to 1e-12) and the recorded voltages to 1e-12. Cases Nengo refuses
    (a cycle without a synapse) the oracle refuses too."""
    results, _ = _peer()
    case = next(c for c in CASES if c.id == case_id)
    peer = results[case_id]
    if case.expect_error:
        assert peer.error is not None and case.expect_error in peer.error, peer.error
        with pytest.raises(ValueError, match="cycle without a Lowpass"):
            nengo_oracle.NengoNet(_graph(case), DT)
        return
    assert peer.error is None, peer.error
    out, rec = nengo_oracle.run_batch(_graph(case), case.x, DT, record=case.record)
    _assert_same(case, peer, out, rec, v_atol=1e-12)


def _assert_same(case, peer, out, rec, v_atol):
    theirs = peer.out.reshape(out.shape)
    if case.out_tolerance:  # a filtered value (LI), not spikes
        np.testing.assert_allclose(out, theirs, rtol=1e-12, atol=1e-12)
    else:
        bad = np.argwhere(out != theirs)
        assert len(bad) == 0, (f"{case.description}: {len(bad)} of {out.size} outputs differ, "
                               f"first at (step, batch, neuron) {tuple(bad[0])}")
    for name in case.record:
        np.testing.assert_allclose(rec[name], peer.records[name].reshape(rec[name].shape),
                                   rtol=0, atol=v_atol)


@pytest.mark.peers
@pytest.mark.parametrize("case_id", [c.id for c in CASES if not c.expect_error
                                     and not c.id.startswith(("cnn", "conv"))])
def test_kernels_equal_nengo(x64, case_id):
    """nirjax.kernels.nengo (float64) in the converted network equals Nengo: identical
    outputs, voltages to 1e-12. (Conv cases differ from these only in stateless layers.)"""
    results, _ = _peer()
    case = next(c for c in CASES if c.id == case_id)
    out, rec = nengo_oracle.run_batch(_graph(case), case.x, DT, record=case.record,
                                      backend=KernelBackend())
    _assert_same(case, results[case_id], out, rec, v_atol=1e-12)


@pytest.mark.peers
def test_kernels_without_float32_product_drift(x64):
    """Nengo's CubaLIF gain multiplies w_in*r in the graph's float32 before the float64
    division: computing that product in float64 instead moves the voltage by ~1e-8 (the
    fact the kernel's ``product_dtype`` argument exists for)."""
    results, _ = _peer()
    case = next(c for c in CASES if c.id == "chain_CubaLIF_0")
    be = KernelBackend()
    lif = be.lif

    def lif64(node, dt, batch):  # w_in, r as float64 before the product
        node = nir.CubaLIF(**{f: np.asarray(getattr(node, f), np.float64) for f in (
            "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")})
        return lif(node, dt, batch)

    be.lif = lif64
    _, rec = nengo_oracle.run_batch(_graph(case), case.x, DT, record=case.record, backend=be)
    name = case.record[0]
    err = np.max(np.abs(rec[name] - results[case.id].records[name].reshape(rec[name].shape)))
    assert 1e-10 < err < 1e-5


@pytest.mark.peers
def test_kernels_float32_braille():
    """The kernels in float32 on both Braille graphs: output spikes as Nengo's (float64) in
    at least 99.9% of values (measured: all), voltages within 1e-5."""
    results, _ = _peer()
    for case in CASES:
        if not case.id.startswith("braille") or not case.id.endswith("_b0"):
            continue
        out, rec = nengo_oracle.run_batch(_graph(case), case.x, DT, record=case.record,
                                          backend=KernelBackend(jnp.float32))
        peer = results[case.id]
        assert np.mean(out == peer.out.reshape(out.shape)) >= 0.999, case.id
        name = case.record[0]
        np.testing.assert_allclose(rec[name], peer.records[name].reshape(rec[name].shape),
                                   rtol=0, atol=1e-5)


@pytest.mark.peers
def test_lif_kernel_refractory_equals_nengo(x64):
    """The general LIF update (tau_ref = 0.25 ms, i.e. 2.5 steps: a partial step after the
    refractory period; min_voltage -0.5) equals nengo.LIF, though the paper's conversion
    never uses it."""
    rng = np.random.default_rng(3)
    n_in, n = 5, 12
    graph = harness.chain_graph([
        ("fc", nir.Linear(weight=(rng.normal(0, 1, (n, n_in)) * 25).astype(np.float32))),
        ("lif", nir.LIF(tau=np.full(n, 3e-3, np.float32), r=np.ones(n, np.float32),
                        v_leak=np.zeros(n, np.float32), v_threshold=np.ones(n, np.float32),
                        v_reset=np.zeros(n, np.float32)))], n_in)
    options = {"tau_ref": 2.5e-4, "min_voltage": -0.5}
    case = harness.Case("refractory", graph, harness.spikes(rng, (150, 2, n_in), 0.4), "nengo",
                        job={"nengo_lif": options}, record=("lif",))
    _require_nengo()
    peer = harness.run_peer("nengo", [case])[0]["refractory"]
    assert peer.error is None, peer.error
    out, rec = nengo_oracle.run_batch(graph, case.x, DT, record=("lif",),
                                      backend=KernelBackend(lif_options=options))
    assert np.count_nonzero(out) > 50
    assert np.any(rec["lif"] < 0)
    _assert_same(case, peer, out, rec, v_atol=1e-12)


def test_cases_exercise_the_neurons():
    """Guard against vacuous agreement: the random Nengo cases spike (checked on the
    oracle, no environment needed)."""
    totals = []
    for case in CASES:
        if case.expect_error or not case.id.startswith(("chain", "rec_")):
            continue
        out, _ = nengo_oracle.run_batch(_graph(case), case.x, DT)
        totals.append(float(np.count_nonzero(out)))
    assert all(t > 0 for t in totals), totals


# ----------------------------------------------------------------------------- the profile


def _compile(graph, dtype=None, **kw):
    """``nirjax.compile(graph, semantics="nengo")``, the profile's conversion warnings
    silenced (tests of those warnings check them explicitly)."""
    import warnings

    import nirjax

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.NirjaxWarning)
        return nirjax.compile(graph, dt=DT, semantics="nengo", dtype=dtype, **kw)


def _run_profile(case, dtype=None):
    """The compiled profile on a case: ``(out [T, B, ...], {node: v})``."""
    model = _compile(_graph(case), dtype)
    record = [(n, "v") for n in case.record] or None
    result = model.run(model.params, case.x, model.init_state(case.x.shape[1]), record=record)
    recs = {n: np.asarray(result[2][(n, "v")]) for n in case.record}
    return np.asarray(result[0]), recs


@pytest.mark.parametrize("dtype", [None, "float64"])
def test_profile_reproduces_published_nengo_trace(dtype):
    """nirjax.compile(lif_norse.nir, semantics="nengo") gives lif_nengo.csv: spikes of 1/dt
    at 460, 510, 710, 760 and Nengo's voltage (float64: to 1e-15; the default float32: to
    float32 rounding)."""
    graph, csv = _paper_lif()
    ctx = jax.enable_x64(True) if dtype else jax.enable_x64(False)
    with ctx:
        model = _compile(graph, dtype)
        ys, _, rec = model.run(model.params, csv[:, None, :1].astype(np.float32),
                               record=[("1", "v")])
        z, v = np.asarray(ys).ravel(), np.asarray(rec[("1", "v")]).ravel()
    np.testing.assert_array_equal(z * DT, csv[:, 2])
    assert np.flatnonzero(z).tolist() == [460, 510, 710, 760]
    np.testing.assert_allclose(v, csv[:, 1], rtol=0, atol=1e-15 if dtype else 1e-6)


@pytest.mark.parametrize("case_id", [pytest.param(c.id, marks=pytest.mark.slow) if c.id == "cnn"
                                     else c.id for c in CASES if not c.expect_error])
def test_profile_float64_equals_oracle(x64, case_id):
    """The compiled profile in float64 equals the float64 oracle of the converted network on
    every case (no environment needed): identical outputs (an LI's to 1e-12), voltages to
    1e-12."""
    case = next(c for c in CASES if c.id == case_id)
    out, rec = nengo_oracle.run_batch(_graph(case), case.x, DT, record=case.record)
    ours, ours_rec = _run_profile(case, "float64")
    ours = ours.reshape(out.shape)
    if case.out_tolerance:
        np.testing.assert_allclose(ours, out, rtol=1e-12, atol=1e-12)
    else:
        bad = np.argwhere(ours != out)
        assert len(bad) == 0, f"{len(bad)} of {out.size} outputs differ, first at {tuple(bad[0])}"
    for name in case.record:
        np.testing.assert_allclose(ours_rec[name], rec[name].reshape(ours_rec[name].shape),
                                   rtol=0, atol=1e-12)


@pytest.mark.peers
@pytest.mark.parametrize("case_id", [pytest.param(c.id, marks=pytest.mark.slow) if c.id == "cnn"
                                     else c.id for c in CASES if not c.expect_error])
def test_profile_float64_equals_nengo(x64, case_id):
    """The compiled profile in float64 (the recommended dtype) equals real Nengo 4.1.0:
    identical outputs, voltages to 1e-12. (The default float32 is compared with Nengo by
    tests/test_conformance_peers.py.)"""
    results, _ = _peer()
    case = next(c for c in CASES if c.id == case_id)
    out, rec = _run_profile(case, "float64")
    _assert_same(case, results[case_id], out.reshape(out.shape[:2] + (-1,)), rec,
                 v_atol=1e-12)


def test_profile_refuses_a_loop_without_synapse():
    """Nengo refuses a LIF <-> Linear loop ('Input graph has cycles': no synapse delays it);
    so does the profile, naming the loop's nodes, while the default semantics run it."""
    import nirjax

    case = next(c for c in CASES if c.id.startswith("rec_LIF"))
    with pytest.raises(nirjax.SemanticsError, match=r"'n1', 'w_rec'.*Input graph has cycles"):
        _compile(_graph(case))
    nirjax.compile(_graph(case), dt=DT)  # the NIR default cuts the loop


def test_profile_latency_one_step_per_synapse(x64):
    """Input -> Linear -> LI: the output is the Lowpass of the input delayed by one step
    (closed form), through an inserted Delay node; Input -> Linear -> LIF adds no step."""
    import nirjax

    n, tau = 3, 2e-3
    w = np.eye(n) * 2.0
    li = harness.chain_graph([("fc", nir.Linear(weight=w)),
                              ("li", nir.LI(tau=np.full(n, tau), r=np.ones(n),
                                            v_leak=np.zeros(n)))], n)
    model = _compile(li, "float64")
    assert "fc->li" in [node.name for node in model.program.nodes]
    x = np.zeros((6, 1, n))
    x[1] = 1.0
    ys = np.asarray(model(x))[:, 0, 0]
    a = np.exp(-DT / tau)
    np.testing.assert_allclose(ys, [0, 0, 2 * (1 - a), 2 * (1 - a) * a, 2 * (1 - a) * a ** 2,
                                    2 * (1 - a) * a ** 3], rtol=1e-12, atol=0)
    lif = harness.chain_graph([("fc", nir.Linear(weight=w * 1e3)),
                               ("lif", nir.LIF(tau=np.full(n, tau), r=np.ones(n),
                                               v_leak=np.zeros(n), v_threshold=np.ones(n),
                                               v_reset=np.zeros(n)))], n)
    ys = np.asarray(_compile(lif, "float64")(x))[:, 0, 0]
    assert np.flatnonzero(ys).tolist() == [1] and ys[1] == 1 / DT


def test_profile_warns_about_what_the_conversion_does_not_read():
    """The paper graphs compile without warning; a graph outside what the scripts accept
    warns once, naming every node and value not read (r, v_leak, per-neuron tau, a conv
    bias, a type the scripts do not convert)."""
    import warnings

    import nirjax

    for name in ("lif_norse.nir", "braille_noDelay_bias_zero.nir",
                 "braille_noDelay_noBias_subtract.nir", "cnn_sinabs.nir"):
        graph = nir.read(os.path.join(DATA, name))
        with warnings.catch_warnings():
            warnings.simplefilter("error", nirjax.NirjaxWarning)
            nirjax.compile(graph, dt=DT, semantics="nengo")
    n = 4
    graph = harness.chain_graph([
        ("fc", nir.Linear(weight=np.ones((n, n)))),
        ("lif", nir.LIF(tau=np.linspace(2e-3, 5e-3, n), r=np.full(n, 2.0), v_leak=np.zeros(n),
                        v_threshold=np.ones(n), v_reset=np.zeros(n))),
        ("scale", nir.Scale(scale=np.ones(n))), ("fc2", nir.Linear(weight=np.ones((n, n))))], n)
    with pytest.warns(nirjax.NirjaxWarning) as record:
        nirjax.compile(graph, dt=DT, semantics="nengo")
    (message,) = [str(w.message) for w in record]
    assert "'lif' (LIF): one tau per layer, tau[0] = 0.002 used" in message
    assert "'lif' (LIF): r is not read" in message
    assert "Scale: 'scale'" in message and "v_leak" not in message


def test_profile_drops_conv_bias_and_pool_padding(x64):
    """Conv2d biases and SumPool2d padding are not used by the paper's conversion: the
    output equals that of the same graph with zero bias and padding (warned), and the
    padded pool's output shape is the unpadded one."""
    import nirjax

    rng = np.random.default_rng(7)
    conv = nir.Conv2d(input_shape=None, weight=rng.normal(0, 0.5, (3, 2, 3, 3)),
                      stride=np.array([1, 1]), padding=np.array([1, 1]),
                      dilation=np.array([1, 1]), groups=1, bias=np.full(3, 0.3))
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                         padding=np.array([1, 1]))
    neuron = nir.IF(r=np.ones((3, 6, 6)), v_threshold=np.full((3, 6, 6), 0.5),
                    v_reset=np.zeros((3, 6, 6)))

    def build(conv, pool):
        return nir.NIRGraph(
            nodes={"input": nir.Input(input_type=np.array([2, 6, 6])), "conv": conv,
                   "if": neuron, "pool": pool, "output": nir.Output(output_type=np.array([3, 3, 3]))},
            edges=[("input", "conv"), ("conv", "if"), ("if", "pool"), ("pool", "output")],
            type_check=False)

    with pytest.warns(nirjax.NirjaxWarning, match=r"'conv' \(Conv2d\): bias dropped.*'pool' "
                                                  r"\(SumPool2d\): padding dropped"):
        model = nirjax.compile(build(conv, pool), dt=DT, semantics="nengo")
    bare = nirjax.compile(build(
        nir.Conv2d(input_shape=None, weight=conv.weight, stride=conv.stride, padding=conv.padding,
                   dilation=conv.dilation, groups=1, bias=np.zeros(3)),
        nir.SumPool2d(kernel_size=pool.kernel_size, stride=pool.stride, padding=np.zeros(2, int))),
        dt=DT, semantics="nengo")
    x = (rng.random((20, 2, 2, 6, 6)) < 0.3).astype(np.float64)
    ys = np.asarray(model(x))
    assert ys.shape == (20, 2, 3, 3, 3) and ys.sum() > 0
    np.testing.assert_array_equal(ys, np.asarray(bare(x)))


def test_profile_gradients_reach_the_conversion_constants(x64):
    """The conversion constants are computed from the parameters inside the compiled
    program: d(sum of an LI's output)/d tau equals the central finite difference of the
    float64 oracle; a CubaLIF's tau_syn[0], tau_mem[0], w_in and v_threshold get finite
    nonzero surrogate gradients, the other tau_syn elements none (one tau per layer)."""
    import nirjax

    rng = np.random.default_rng(11)
    n_in, n = 4, 3
    w = rng.normal(0, 1, (n, n_in))
    tau = 3e-3

    def li_graph(t):
        return harness.chain_graph([("fc", nir.Linear(weight=w)),
                                    ("li", nir.LI(tau=np.full(n, t), r=np.ones(n),
                                                  v_leak=np.zeros(n)))], n_in)

    x = rng.random((40, 2, n_in))
    model = _compile(li_graph(tau), "float64")
    g = jax.grad(lambda p: jnp.sum(model.run(p, x)[0]))(model.params)["li"].tau
    h = 1e-9
    fd = (np.sum(nengo_oracle.run_batch(li_graph(tau + h), x, DT)[0])
          - np.sum(nengo_oracle.run_batch(li_graph(tau - h), x, DT)[0])) / (2 * h)
    np.testing.assert_allclose(float(g[0]), fd, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(g[1:]), 0.0)

    case = next(c for c in CASES if c.id == "chain_CubaLIF_0")
    model = _compile(_graph(case), "float64")
    grads = jax.grad(lambda p: jnp.sum(model.run(p, case.x)[0]))(model.params)["n1"]
    for field in ("tau_syn", "tau_mem", "w_in", "v_threshold"):
        value = np.asarray(getattr(grads, field))
        assert np.all(np.isfinite(value)) and np.any(value != 0), field
    assert np.all(np.asarray(grads.tau_syn)[1:] == 0)


def test_profile_rejects_tau_syn_not_above_dt():
    """tau' = -dt/log(1 - dt/tau_syn) needs tau_syn > dt: a ParameterError naming the node."""
    import nirjax

    case = next(c for c in CASES if c.id == "chain_CubaLIF_0")
    graph = _graph(case)
    graph.nodes["n1"].tau_syn = np.full_like(graph.nodes["n1"].tau_syn, DT)
    with pytest.raises(nirjax.ParameterError, match=r"'n1' \(CubaLIF\).*tau_syn"):
        _compile(graph)
