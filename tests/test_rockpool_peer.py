"""The rockpool profile's LI, spike cap and decay rounding against the real Rockpool 3.1.0.

Run in the ``torch`` peer environment through ``tests/peers/harness.py`` (skipped with the
reason when the environment is missing; a failure with ``NIRJAX_PEERS_REQUIRED=1``). The
harness's Rockpool cases (``harness.rockpool_cases``: an Affine -> LI chain and a LIF chain
driven past ``max_spikes_per_dt``) are compared step by step by
``tests/test_conformance_peers.py``; this file checks what that comparison cannot see.
"""

from __future__ import annotations

import os
import sys

import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirjax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import harness  # noqa: E402

DT = harness.DT
REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
F32 = np.float32


def _run(cases):
    if harness.peer_python("rockpool") is None:
        msg = (f"torch environment (Rockpool) not found under {harness.peers_dir()}: build it "
               f"with tests/peers/setup_peers.sh")
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)
    results, _ = harness.run_peer("rockpool", cases)
    return results


@pytest.mark.peers
def test_decay_argument_is_rounded_as_torch_rounds_it():
    """Rockpool computes ``torch.exp(-dt / tau)``, i.e. ``exp((1/tau) * (-dt))`` in float32
    (``Tensor.__rtruediv__``): the profile's decay is ``exp`` of exactly the argument
    Rockpool's own ``tau_to_decay`` forms, for every one of 200 time constants (with
    ``-dt/tau`` rounded as a division, some decays differ)."""
    rng = np.random.default_rng(5)
    n = 200
    tau = np.exp(rng.uniform(np.log(2e-5), np.log(1e-3), n)).astype(F32)  # |dt/tau| ~ 0.1-5
    lif = nir.LIF(tau=tau, r=(tau / F32(DT) - 1).astype(F32), v_leak=np.zeros(n, F32),
                  v_threshold=np.ones(n, F32), v_reset=np.zeros(n, F32))
    graph = harness.chain_graph([("fc1", nir.Linear(weight=np.eye(n, dtype=F32))),
                                 ("n1", lif)], n)
    case = harness.Case("decay_args", graph, np.zeros((2, 1, n), F32), "rockpool",
                        job={"decay_args": True})
    peer = _run([case])["decay_args"]
    assert peer.error is None, peer.error
    arg = peer.extras["decay_arg:n1"].astype(F32).reshape(-1)
    dt = float(peer.extras["dt:n1"])  # Rockpool's dt, inferred from r
    model = nirjax.compile(graph, dt=dt, semantics="rockpool")
    node = model.program.node("n1")
    decay = np.asarray(node.rule.prepare(model.params["n1"], node.config).leak)
    np.testing.assert_array_equal(decay, np.asarray(jnp.exp(jnp.asarray(arg))))
    divided = np.asarray(jnp.exp(-dt / jnp.asarray(tau)))
    assert np.mean(divided != decay) > 0.02, np.mean(divided != decay)  # the test can fail


@pytest.mark.peers
def test_from_nir_truncates_li_tau():
    """Rockpool's from_nir builds an LI as ExpSynTorch(tau=tau.int()): every tau below 1 s
    becomes 0 and the synapse outputs zeros (the bug the profile documents and does not
    reproduce: it simulates the ExpSynTorch Rockpool exports, as the harness's
    ``li_as_exported`` cases check)."""
    n = 3
    li = nir.LI(tau=np.full(n, 0.01, F32), r=np.full(n, 9.0, F32), v_leak=np.zeros(n, F32))
    graph = harness.chain_graph([("li", li)], n)
    x = np.zeros((5, 1, n), F32)
    x[0] = 1.0
    case = harness.Case("li_truncated", graph, x, "rockpool", job={"released": True})
    peer = _run([case])["li_truncated"]
    assert peer.error is None, peer.error
    assert np.all(peer.out == 0)
    ours = np.asarray(nirjax.compile(graph, dt=1e-3, semantics="rockpool")(x))[:, 0, 0]
    np.testing.assert_allclose(ours, np.exp(-1e-3 / 0.01) ** np.arange(1, 6), rtol=1e-6)
