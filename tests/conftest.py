"""Shared fixtures and configuration of the nirjax test suite.

* Strict rank promotion (``jax_numpy_rank_promotion='raise'``): library code broadcasts
  explicitly, so an axis mix-up fails instead of broadcasting silently.
* ``x64``: run a test with ``jax_enable_x64`` on (models compiled inside it are float64), so
  comparisons against the float64 NumPy oracles (``tests/oracle.py``) can be tight.
* ``read_paper``: ``nirjax.read`` of a paper file, with the expected
  ``ResetAmbiguityWarning`` of pre-1.0.6 files filtered (tests of that warning check it
  explicitly with ``pytest.warns``). The paper files are copied into ``tests/data/paper``
  (see the README there for their origin and license).
* ``braille``: the NIR paper's Braille RSNN as shipped (``braille_bias_zero``), read as a
  user would; its file predates NIR 1.0.6, so reading it must warn (checked).

Markers (registered in pyproject): ``slow`` (minutes on 2 cores; ``-m "not slow"`` skips
them) and ``peers`` (runs the real peer frameworks from ``tests/peers/setup_peers.sh``).

Shared helpers (graph builders, the primitive table) live in ``builders.py`` and the float64
NumPy oracles in ``oracle.py``.

pyproject turns every warning into an error, so a test that expects a warning says so.
"""

from __future__ import annotations

import jax
import pytest

import nirjax
from builders import paper_path, read_quiet

jax.config.update("jax_numpy_rank_promotion", "raise")



@pytest.fixture
def x64():
    """Enable float64 in JAX for the duration of the test."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def read_paper():
    """``read_paper("cnn_sinabs")`` -> the graph, reset-ambiguity warning filtered."""
    return lambda name: read_quiet(paper_path(name))


def pytest_terminal_summary(terminalreporter):
    """Report the near-threshold crossings the peer cross-checks attributed to float32
    rounding (``tests/test_conformance_peers.py``), so a run shows how many it allowed."""
    module = __import__("sys").modules.get("test_conformance_peers")
    events = getattr(module, "ROUNDING_EVENTS", None)
    if not events:
        return
    terminalreporter.section("peer cross-checks: crossings decided by float32 rounding")
    for framework, items in sorted(events.items()):
        kinds = {}
        for _, e in items:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        terminalreporter.write_line(
            f"{framework}: {len(items)} sample(s) parted at a near-threshold crossing "
            f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})")
        for case_id, e in items:
            terminalreporter.write_line(f"  {case_id}: {e}")


@pytest.fixture
def braille():
    """The shipped Braille RSNN graph (12 -> 38 recurrent CubaLIF -> 7 CubaLIF)."""
    with pytest.warns(nirjax.ResetAmbiguityWarning):
        return nirjax.read(nirjax.example_path("braille_bias_zero"))
