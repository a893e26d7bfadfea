"""nirjax.compare: one graph under several profiles, and where their spikes diverge."""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pytest

import nirjax
from nirjax.errors import InputError, NirjaxWarning, SemanticsError

DATA = pathlib.Path(__file__).parent / "data" / "paper"
DT = 1e-4


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NirjaxWarning)
        return fn(*a, **k)


def lif_task():
    g = quiet(nirjax.read, nirjax.example_path("lif_norse"))
    x = np.loadtxt(DATA / "lif_norse.csv", delimiter=",")[:, 0].reshape(-1, 1, 1)
    return g, x.astype(np.float32)


def test_lif_task_divergence_is_the_published_one_step_shift():
    """Norse spikes at 460 and Lava one step later (the published traces): the first
    divergence is at step 460, in the LIF node, 1 vs 0."""
    g, x = lif_task()
    c = nirjax.compare(g, x, dt=DT, profiles=["norse", "lava", "snntorch"])
    d = c.divergence("lava")
    norse_steps = np.flatnonzero(np.loadtxt(DATA / "lif_norse.csv", delimiter=",")[:, 2])
    lava_steps = np.flatnonzero(np.loadtxt(DATA / "lif_lava_cpu_float.csv", delimiter=",")[:, 2])
    assert d.step == min(norse_steps[0], lava_steps[0]) == 460
    assert d.node == "1" and (d.reference_value, d.value) == (1.0, 0.0)
    assert d.nodes == ("1", "output")
    assert c.divergence("snntorch") is None  # same spikes as Norse (published: identical)
    assert c.agreement("snntorch") == 1.0
    assert c.spike_count("norse") == c.spike_count("lava") == 4
    text = str(c)
    assert "lava" in text and "step 460, node '1'" in text and "(reference)" in text


def test_divergence_agrees_with_separately_run_models():
    """On the Braille graph, the reported first divergence is the first step where the two
    profiles' recorded spikes differ, taken from independently compiled models."""
    g = quiet(nirjax.read, nirjax.example_path("braille_bias_zero"))
    x = (np.random.default_rng(3).random((120, 3, 12)) < 0.05).astype(np.float32)
    c = quiet(nirjax.compare, g, x, DT, ["nir", "snntorch"])
    runs = {}
    for p in ("nir", "snntorch"):
        m = quiet(nirjax.compile, g, dt=DT, semantics=p)
        runs[p] = m.run(m.params, x, record=["lif1.lif", "lif2"])[2]
    diff_steps = {n: np.flatnonzero((np.asarray(runs["nir"][n]) != np.asarray(runs["snntorch"][n]))
                                    .reshape(x.shape[0], -1).any(1)) for n in ("lif1.lif", "lif2")}
    first = min(s[0] for s in diff_steps.values() if s.size)
    d = c.divergence("snntorch")
    assert d.step == first
    assert d.node == next(n for n in ("lif1.lif", "lif2") if diff_steps[n].size
                          and diff_steps[n][0] == first)
    a = np.asarray(runs["nir"][d.node])[d.step, d.sample][d.index]
    assert a == d.reference_value != d.value
    assert 0 < c.agreement("snntorch") < 1


def test_profiles_by_value_and_mapping():
    """Profiles can be Semantics values under report names; identical ones never diverge."""
    g, x = lif_task()
    sub = nirjax.PROFILES["nir"].replace(reset="subtract")
    c = nirjax.compare(g, x[:300], dt=DT, profiles={"spec": "nir", "same": nirjax.Semantics(),
                                                  "subtract": sub})
    assert c.profiles == ("spec", "same", "subtract")
    assert c.divergence("same") is None
    assert c.nodes == ("1", "output")


def test_compare_rejects_bad_requests():
    g, x = lif_task()
    with pytest.raises(SemanticsError, match="at least two"):
        nirjax.compare(g, x, dt=DT, profiles=["nir"])
    with pytest.raises(SemanticsError, match="unknown semantics profile"):
        nirjax.compare(g, x, dt=DT, profiles=["nir", "brian"])
    with pytest.raises(InputError, match="'nope'"):
        nirjax.compare(g, x, dt=DT, profiles=["nir", "norse"], nodes=["nope"])
    c = nirjax.compare(g, x[:50], dt=DT, profiles=["nir", "norse"])
    with pytest.raises(InputError, match="'lava' was not compared"):
        c.divergence("lava")
