"""Fuzz tests (issue 12): hostile files, graphs, options and run-time inputs end in a clean
``NirjaxError`` or a correct result, never anything else.

Every case comes from ``fuzzlib`` (see its docstring for the surfaces and how results are
checked: valid random graphs against the float64 oracle with ``optimize`` True and False,
write -> read round trips bit for bit). Hypothesis draws the seeds, derandomized, so the suite
is the same on every run; the numbers of examples keep the whole file to about a minute.
The longer campaign (``fuzz_campaign.py``) runs only on demand: ``pytest -m slow`` or
``NIRJAX_SLOW=1``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import fuzzlib  # noqa: E402

import nirjax  # noqa: E402

GOOD = ("ok", "clean", "skip")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _fuzz(surface: str, examples: int):
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2 ** 31 - 1))
    def test(seed, workdir):
        outcome, detail = fuzzlib.classify(surface, seed, workdir)
        assert outcome in GOOD, f"{surface} case {seed}: {outcome}: {detail}"

    test.__name__ = f"test_fuzz_{surface}"
    test.__doc__ = f"Random {surface!r} cases (fuzzlib.case_{surface}) end cleanly."
    return test


test_fuzz_file = _fuzz("file", 30)
test_fuzz_graph = _fuzz("graph", 8)
test_fuzz_value = _fuzz("value", 30)
test_fuzz_option = _fuzz("option", 15)
test_fuzz_runtime = _fuzz("runtime", 20)
test_fuzz_roundtrip = _fuzz("roundtrip", 4)
test_fuzz_write = _fuzz("write", 30)


@pytest.mark.parametrize("name", [m for m, _, _ in fuzzlib.value_mutations()])
def test_every_value_mutation(name, workdir):
    """Each bad value of ``fuzzlib.value_mutations`` at least once, on a graph it applies to."""
    must_fail, fn = next((f, m) for n, f, m in fuzzlib.value_mutations() if n == name)
    for seed in range(40):
        g, _ = fuzzlib.random_graph(np.random.default_rng(seed))
        try:
            g = fn(np.random.default_rng(seed), g)
        except Exception:
            continue
        if g is not None:
            break
    else:
        pytest.skip(f"no random graph takes mutation {name!r}")
    try:
        model = nirjax.compile(g, dt=fuzzlib.DT)
        fuzzlib._smoke_run(model, np.random.default_rng(0))
    except nirjax.NirjaxError:
        return
    assert not must_fail, f"{name!r} was accepted"


@pytest.mark.parametrize("name", [m for m, _ in fuzzlib.write_mutations()])
def test_every_write_mutation(name, tmp_path):
    """Each bad graph of ``fuzzlib.write_mutations``: NirFileError, old file intact."""
    fn = dict(fuzzlib.write_mutations())[name]
    g, _ = fuzzlib.random_graph(np.random.default_rng(1))
    path = tmp_path / "old.nir"
    nirjax.write(path, g)
    before = path.read_bytes()
    bad = fn(np.random.default_rng(1), g)
    if bad is None:
        pytest.skip("does not apply")
    with pytest.raises(nirjax.NirFileError):
        nirjax.write(path, bad)
    assert path.read_bytes() == before


# compile options: validated by the typed CompileOptions (nirjax.compiler.options)
BAD_OPTIONS = [
    {"precision": "bogus"}, {"chunk_bytes": -1}, {"chunk_bytes": 2.5}, {"unroll": True},
    {"checkpoint": 2.5}, {"dt": "1e-4"}, {"dt": True}, {"optimize": "yes"},
    {"dtype": "complex64"}, {"matmul_dtype": "int8"}, {"pallas": 2},
]


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=[
    next(iter(o)) + "=" + repr(next(iter(o.values()))) for o in BAD_OPTIONS])
def test_invalid_compile_options(options):
    """A bad compile option fails at compile, naming the option, before anything runs."""
    g, _ = fuzzlib.random_graph(np.random.default_rng(3))
    opts = {"dt": 1e-3, **options}
    name = next(iter(options))
    with pytest.raises((nirjax.OptionsError, nirjax.SemanticsError), match=name):
        nirjax.compile(g, **opts)


@pytest.mark.slow
def test_fuzz_campaign(request, tmp_path):
    """The campaign script over every surface (several minutes): no non-clean outcome."""
    if "slow" not in (request.config.getoption("markexpr") or "") and not os.environ.get("NIRJAX_SLOW"):
        pytest.skip("the fuzz campaign runs on demand: pytest -m slow (or NIRJAX_SLOW=1)")
    import fuzz_campaign

    cases = int(os.environ.get("NIRJAX_FUZZ_CASES", "700"))
    assert fuzz_campaign.main(["--cases", str(cases), "--seed", "7000",
                               "--json", str(tmp_path / "outcomes.json")]) == 0
