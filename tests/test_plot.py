"""nirjax.plot: every figure is rendered to a PNG file, and what it draws is checked against
the arrays it was given (spike positions, thresholds, means, the first divergence step)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import nirjax
from builders import paper_path, read_quiet

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'nirjax[plot]')")

from nirjax import plot  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _render(fig, path):
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5_000
    return data


@pytest.fixture(scope="module")
def braille_run():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        model = nirjax.compile(read_quiet(paper_path("braille_bias_zero")), dt=1e-4)
    rng = np.random.default_rng(0)
    xs = (rng.random((120, 3, 12)) < 0.15).astype(np.float32)
    ys, _, rec = model.run(model.params, xs, record=[
        "lif1.lif", ("lif1.lif", "v"), ("lif1.lif", "i_syn")])
    return model, xs, np.asarray(ys), {k: np.asarray(v) for k, v in rec.items()}


def _points(ax):
    """(x, y) of every scatter point drawn on ``ax``."""
    pts = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def test_raster_draws_every_spike(braille_run, tmp_path):
    _, xs, ys, rec = braille_run
    fig = plot.raster({"input": xs, "lif1.lif": rec["lif1.lif"], "output": ys}, sample=2)
    _render(fig, tmp_path / "raster.png")
    axes = fig.axes
    assert len(axes) == 3
    for ax, a in zip(axes, (xs, rec["lif1.lif"], ys)):
        expected = np.argwhere(a[:, 2] > 0).astype(float)  # (step, neuron) of sample 2
        got = _points(ax)
        assert sorted(map(tuple, got)) == sorted(map(tuple, expected))
    assert axes[-1].get_xlabel() == "time step"
    # with dt: milliseconds
    fig = plot.raster(ys, dt=1e-4, max_neurons=3)
    got = _points(fig.axes[0])
    expected = np.argwhere(ys[:, 0, :3] > 0) * [0.1, 1]
    np.testing.assert_allclose(sorted(map(tuple, got)), sorted(map(tuple, expected)))
    assert fig.axes[0].get_xlabel() == "time (ms)"


def test_traces_draw_v_current_and_threshold(braille_run, tmp_path):
    model, _, _, rec = braille_run
    v, i = rec[("lif1.lif", "v")], rec[("lif1.lif", "i_syn")]
    th = np.asarray(model.params["lif1.lif"].v_threshold)
    fig = plot.traces(v, current=i, threshold=th, spikes=rec["lif1.lif"], neurons=[1, 4],
                      sample=1)
    _render(fig, tmp_path / "traces.png")
    ax_v, ax_i = fig.axes
    lines = {ln.get_label(): ln for ln in ax_v.get_lines()}
    np.testing.assert_array_equal(lines["neuron 1"].get_ydata(), v[:, 1, 1])
    np.testing.assert_array_equal(lines["neuron 4"].get_ydata(), v[:, 1, 4])
    assert lines["threshold"].get_ydata()[0] == pytest.approx(float(th[1]))
    spikes = lines["spikes"]
    np.testing.assert_array_equal(spikes.get_xdata(), np.nonzero(rec["lif1.lif"][:, 1, 1])[0])
    currents = [ln.get_ydata() for ln in ax_i.get_lines()]
    np.testing.assert_array_equal(currents[0], i[:, 1, 1])
    # per-neuron thresholds: one dashed line per drawn neuron
    fig = plot.traces(v, threshold=np.linspace(0.5, 1.5, 38), neurons=[0, 37])
    dashed = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert [ln.get_ydata()[0] for ln in dashed] == pytest.approx([0.5, 1.5])


def test_rates_marks_each_layers_mean(braille_run, tmp_path):
    _, xs, ys, rec = braille_run
    fig = plot.rates({"input": xs, "lif1.lif": rec["lif1.lif"], "output": ys}, dt=1e-4)
    _render(fig, tmp_path / "rates.png")
    ax = fig.axes[0]
    means = [seg[0][1] for c in ax.collections if type(c).__name__ == "LineCollection"
             for seg in c.get_segments()]
    expected = [a.mean() / 1e-4 for a in (xs, rec["lif1.lif"], ys)]  # Hz
    assert means == pytest.approx(expected)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith("input") and "Hz" in labels[0] and "silent" in labels[1]


def test_divergence_marks_the_first_differing_step(tmp_path):
    graph = read_quiet(paper_path("lif_norse"))
    x = np.zeros((1000, 1, 1), np.float32)
    x[np.loadtxt(paper_path("lif_norse").with_suffix(".csv"), delimiter=",")[:, 0] > 0] = 1
    report = nirjax.compare(graph, x, dt=1e-4, profiles=["nir", "lava", "exact"])
    fig = plot.divergence(report)
    _render(fig, tmp_path / "divergence.png")
    # independent: the first step at which lava's output spikes differ from nir's
    a, b = report.values["nir"]["output"], report.values["lava"]["output"]
    first = int(np.flatnonzero((a != b).reshape(len(a), -1).any(axis=1))[0])
    assert first == 460  # the paper: nir spikes at 460, lava one step later
    lava_col = [ax for ax in fig.axes if "lava vs nir" in ax.get_title()]
    assert lava_col and "step 460" in lava_col[0].get_title()
    vlines = [ln.get_xdata()[0] for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert vlines and vlines[0] == first
    exact_col = [ax for ax in fig.axes if "exact vs nir" in ax.get_title()]
    assert "identical" in exact_col[0].get_title()
    # the points: spikes only nir has at 460, only lava has at 461
    pts = {c.get_label(): c.get_offsets() for c in fig.axes[0].collections}
    assert 460 in pts["only nir"][:, 0] and 461 in pts["only lava"][:, 0]
    one = plot.divergence(report, "lava", dt=1e-4)
    assert len(one.axes) == len(report.nodes)
    with pytest.raises(nirjax.InputError, match="not compared"):
        plot.divergence(report, "spyx")


def test_summary_and_bad_input(braille_run, tmp_path):
    model, _, ys, rec = braille_run
    fig = plot.summary({"output": ys, ("lif1.lif", "v"): rec[("lif1.lif", "v")]},
                       thresholds={"lif1.lif": model.params["lif1.lif"].v_threshold}, dt=1e-4)
    _render(fig, tmp_path / "summary.png")
    assert len(fig.axes) == 2
    with pytest.raises(nirjax.InputError, match="sample 5"):
        plot.raster(ys, sample=5)
    with pytest.raises(nirjax.InputError, match=r"\[T, B"):
        plot.traces(np.zeros(4))
    with pytest.raises(nirjax.InputError, match="neurons"):
        plot.traces(rec[("lif1.lif", "v")], neurons=[99])


def test_missing_matplotlib_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(plot.MissingDependencyError, match=r"pip install .*nirjax\[plot\]") as info:
        plot.raster(np.zeros((3, 1, 2)))
    assert isinstance(info.value, nirjax.NirjaxError) and isinstance(info.value, ImportError)
