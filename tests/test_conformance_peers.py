"""Cross-check every platform profile against the real package it reproduces.

Each framework (Norse 1.1.0, snnTorch 1.0.0, Spyx 1.0.0 and 0.1.20, Sinabs 3.1.3, Rockpool
3.1.0) runs in its own environment built by ``tests/peers/setup_peers.sh`` (under ``.peers/``
or ``$NIRJAX_PEERS_DIR``), in a subprocess: the harness writes the graphs and inputs, the
framework imports and runs them with its own ``from_nir``, and the outputs come back here to
be compared with nirjax under the matching profile. Cases: the NIR paper graphs the
framework can import (LIF task, both Braille RSNNs, the CNN) and seeded random chains,
recurrent layers and conv stacks within its import limits (``tests/peers/harness.py``).

A missing environment skips the framework's tests with the reason; with
``NIRJAX_PEERS_REQUIRED=1`` (set by CI) it is a failure instead.

Peer bugs are pinned, not hidden: cases with ``expect_error`` assert that the released
package still fails the way the profile's docstring says (when one of them starts passing,
the profile's documentation needs revisiting), and the snnTorch IF -> ``Leaky(beta=0.9)``
conversion is compared like any other case.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "peers"))
import harness  # noqa: E402

import nirjax  # noqa: E402

REQUIRED = os.environ.get("NIRJAX_PEERS_REQUIRED") == "1"
# a framework is compared once nirjax has its profile: Nengo's cases (harness.FRAMEWORKS
# "nengo") join when the "nengo" profile is registered; until then tests/test_nengo.py checks
# the Nengo kernels and oracle against the same cases
FRAMEWORKS = [fw for fw, (_, profile) in harness.FRAMEWORKS.items() if profile in nirjax.PROFILES]
CASES = {fw: harness.cases_for(fw) for fw in FRAMEWORKS}
_RESULTS: dict = {}
_OURS: dict = {}  # (framework, case id) -> nirjax's result, simulated once per session

# versions setup_peers.sh pins; a test fails if an environment drifts
PINNED = {
    "norse": {"norse": "1.1.0"},
    "snntorch": {"snntorch": "1.0.0"},
    "spyx1": {"spyx": "1.0.0"},
    "spyx01": {"spyx": "0.1.20"},
    "sinabs": {"sinabs": "3.1.3"},
    "rockpool": {"rockpool": "3.1.0"},
    "nengo": {"nengo": "4.1.0"},
}


def _ours(framework, case):
    """nirjax's ``(out, records)`` on ``case`` under the framework's profile (cached)."""
    key = (framework, case.id)
    if key not in _OURS:
        _OURS[key] = harness.run_nirjax(case)
    return _OURS[key]


def _results(framework):
    """Run every case of ``framework`` once (one subprocess) and cache the outcome."""
    if framework not in _RESULTS:
        if harness.peer_python(framework) is None:
            _RESULTS[framework] = None
        else:
            _RESULTS[framework] = harness.run_peer(framework, CASES[framework])
    result = _RESULTS[framework]
    if result is None:
        msg = (f"{framework} environment not found under {harness.peers_dir()}: build it "
               f"with tests/peers/setup_peers.sh")
        if REQUIRED:
            pytest.fail(msg + " (NIRJAX_PEERS_REQUIRED=1)")
        pytest.skip(msg)
    return result


@pytest.mark.peers
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_peer_environment_versions(framework):
    """The environment runs the versions the profiles document."""
    _, versions = _results(framework)
    for package, version in PINNED[framework].items():
        assert versions.get(package) == version, versions


@pytest.mark.peers
@pytest.mark.parametrize(
    "framework,case_id",
    [(fw, c.id) for fw in FRAMEWORKS for c in CASES[fw]],
)
def test_profile_reproduces_peer(framework, case_id):
    """nirjax under the framework's profile gives the same output spikes, step by step, as
    the framework itself (and the same membrane within float tolerance where recorded)."""
    results, _ = _results(framework)
    case = next(c for c in CASES[framework] if c.id == case_id)
    peer = results[case_id]
    if case.expect_error:
        assert peer.error is not None, (
            f"{framework} no longer fails on {case.description!r}; update the profile's "
            f"documentation of this bug")
        assert case.expect_error in peer.error, peer.error
        return
    assert peer.error is None, f"{framework} failed on {case.description}:\n{peer.error}"
    agree = harness.agreement(case, peer, _ours(framework, case))
    assert agree.exact, (
        f"{case.description}: {100 * (1 - agree.identical):.3f}% of {agree.n} output values "
        f"differ, first at (step, batch, neuron) {agree.first_difference}; spikes "
        f"{framework} {agree.spikes_peer:g} vs nirjax {agree.spikes_nirjax:g}")
    for name in case.record:
        assert name in peer.records, f"{framework} did not record {name!r}"
    if case.record:
        assert agree.max_v_rel <= case.v_tolerance, (
            f"{case.description}: membrane differs by {agree.max_v_error:.3g} "
            f"(|v| up to {agree.v_range:.3g})")


@pytest.mark.slow
def test_cases_exercise_the_neurons():
    """Guard against vacuous agreement: the random cases produce output spikes, and across
    cases both silent and active neurons occur (checked on nirjax's side, no peer needed)."""
    for framework in FRAMEWORKS:
        totals = []
        for case in CASES[framework]:
            if case.expect_error or not case.id[0:4] in ("chai", "rec_", "conv"):
                continue
            out, _ = _ours(framework, case)
            totals.append(float(np.sum(out)))
        assert sum(t > 0 for t in totals) >= len(totals) - 1, (framework, totals)
