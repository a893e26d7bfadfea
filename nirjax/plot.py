"""Pictures of a simulation: spike rasters, membrane traces, firing rates, divergences.

Every function returns a :class:`matplotlib.figure.Figure` (made without ``pyplot``, so
nothing accumulates in a global figure list); save it with ``fig.savefig("out.png")`` or
let a notebook show it. Arrays are nirjax's time-major ``[T, B, *shape]``; neurons are the
node's shape flattened in C order. Give ``dt`` (seconds) to label the time axis in
milliseconds instead of steps.

matplotlib is an optional dependency: ``pip install "nirjax[plot]"``. Without it every
function raises :class:`MissingDependencyError`.

>>> import numpy as np, nirjax.plot                                  # doctest: +SKIP
>>> ys, state, rec = model.run(model.params, xs, record=["lif1", ("lif1", "v")])  # doctest: +SKIP
>>> nirjax.plot.raster({"lif1": rec["lif1"], "output": ys}).savefig("raster.png")  # doctest: +SKIP
>>> nirjax.plot.traces(rec[("lif1", "v")], threshold=model.params["lif1"].v_threshold)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError, NirjaxError

__all__ = ["raster", "traces", "rates", "divergence", "summary", "MissingDependencyError"]


class MissingDependencyError(NirjaxError, ImportError):
    """An optional dependency (matplotlib for :mod:`nirjax.plot`) is not installed."""


def _mpl():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "nirjax.plot needs matplotlib, which is not installed: pip install "
            "\"nirjax[plot]\" (or pip install matplotlib)") from None
    _notebook_display(Figure)
    return matplotlib, Figure


def _notebook_display(figure_class) -> None:
    """In IPython, make a returned Figure display as an image: the inline backend registers
    that only once pyplot has made a figure, which these functions never do. A format the
    user configured (``%config InlineBackend.figure_formats``) is left alone."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    formatters = shell.display_formatter.formatters
    kinds = ("image/png", "image/svg+xml", "image/jpeg", "application/pdf")
    if any(figure_class in getattr(formatters.get(k), "type_printers", {}) for k in kinds):
        return
    try:
        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(shell, {"png"})
    except (ImportError, AttributeError, TypeError, ValueError):  # shows as text instead
        return


def _figure(rows: int = 1, cols: int = 1, *, width: float = 8.0, height: float = 2.6,
            height_ratios=None, sharex=True):
    _, Figure = _mpl()
    fig = Figure(figsize=(width, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None)
    return fig, axes


def _array(x, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim < 2:
        raise InputError(f"{what}: expected a time-major array [T, B, ...], got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise InputError(f"{what}: expected numbers, got dtype {a.dtype}")
    return a.reshape(a.shape[0], a.shape[1], -1).astype(np.float64)


def _sample(a: np.ndarray, sample: int, what: str) -> np.ndarray:
    if not (isinstance(sample, (int, np.integer)) and -a.shape[1] <= sample < a.shape[1]):
        raise InputError(f"{what}: sample {sample!r} is out of range for batch size {a.shape[1]}")
    return a[:, sample]


def _layers(spikes, what: str) -> dict:
    if isinstance(spikes, Mapping):
        if not spikes:
            raise InputError(f"{what}: no layers given")
        return {str(k if isinstance(k, str) else ":".join(k)): v for k, v in spikes.items()}
    return {"": spikes}


def _time_axis(steps: int, dt: float | None):
    if dt is None:
        return np.arange(steps, dtype=np.float64), "time step"
    return np.arange(steps) * float(dt) * 1e3, "time (ms)"


def _raster_panel(ax, a2: np.ndarray, dt, label: str, max_neurons: int | None):
    """Draw ``a2`` ([T, N] counts) as a raster on ``ax``; returns the drawn (t, n) points."""
    t_axis, xlabel = _time_axis(a2.shape[0], dt)
    n = a2.shape[1] if max_neurons is None else min(a2.shape[1], max_neurons)
    steps, neurons = np.nonzero(a2[:, :n])
    counts = a2[steps, neurons]
    size = 12.0 * np.clip(counts, 1, 4)
    ax.scatter(t_axis[steps], neurons, s=size, marker="|", color="black", linewidths=1.0)
    ax.set_xlim(t_axis[0] - 0.5 * (t_axis[1] - t_axis[0] if len(t_axis) > 1 else 1),
                t_axis[-1] + 0.5 * (t_axis[1] - t_axis[0] if len(t_axis) > 1 else 1))
    ax.set_ylim(-0.5, max(n, 1) - 0.5)
    shown = f" (first {n} of {a2.shape[1]})" if n < a2.shape[1] else ""
    ax.set_ylabel(f"{label} neuron{shown}" if label else f"neuron{shown}")
    total = int(a2.sum())
    ax.set_title(f"{label + ': ' if label else ''}{total} spikes", fontsize=9, loc="left")
    if counts.size and counts.max() > 1:
        ax.text(1.0, 1.01, f"several spikes in one step: up to {int(counts.max())}",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    return xlabel


def raster(spikes, *, sample: int = 0, dt: float | None = None,
           max_neurons: int | None = None, title: str | None = None, ax=None):
    """Spike raster of one sample: one dot per spike, neuron index against time.

    Args:
        spikes: ``[T, B, *shape]`` spikes (or spike counts), or a mapping of layer names to
            such arrays: one panel per layer, top to bottom in the mapping's order.
        sample: the batch index to draw.
        dt: the time step in seconds (time axis in ms); ``None``: time steps.
        max_neurons: draw at most this many neurons per layer (the first ones).
        title: the figure title.
        ax: a matplotlib ``Axes`` to draw a single layer into.

    Returns:
        The figure.
    """
    layers = _layers(spikes, "raster")
    arrays = {k: _sample(_array(v, f"raster {k!r}"), sample, f"raster {k!r}")
              for k, v in layers.items()}
    if ax is not None:
        if len(arrays) != 1:
            raise InputError(f"raster: ax draws one layer, got {len(arrays)}")
        fig, axes = ax.figure, [ax]
    else:
        heights = [min(max(a.shape[1], 4), 60) for a in arrays.values()]
        fig, grid = _figure(len(arrays), 1, height=1.0, height_ratios=heights)
        fig.set_figheight(max(2.2, 0.9 + 0.045 * sum(heights) + 0.5 * len(arrays)))
        axes = list(grid[:, 0])
    xlabel = "time step"
    for a_x, (name, a2) in zip(axes, arrays.items()):
        xlabel = _raster_panel(a_x, a2, dt, name, max_neurons)
    axes[-1].set_xlabel(xlabel)
    if title or ax is None:
        fig.suptitle(title or f"spike raster, sample {sample}", fontsize=10)
    return fig


def _thresholds(threshold, n_all: int, picked: np.ndarray):
    if threshold is None:
        return None
    th = np.asarray(threshold, dtype=np.float64).reshape(-1)
    if th.size == 1:
        return np.full(len(picked), float(th[0]))
    if th.size != n_all:
        raise InputError(f"traces: threshold has {th.size} values for {n_all} neurons")
    return th[picked]


def traces(v, *, current=None, threshold=None, spikes=None, sample: int = 0,
           neurons: Sequence[int] | None = None, dt: float | None = None,
           title: str | None = None, ax=None):
    """Membrane potential (and synaptic current) of a few neurons over time, with the
    firing threshold drawn as a dashed line.

    Args:
        v: membrane potentials ``[T, B, *shape]`` (e.g. ``rec[("lif1", "v")]``).
        current: synaptic currents, same shape (e.g. ``rec[("lif1", "i_syn")]``): drawn in a
            second panel below.
        threshold: the threshold, a scalar or one value per neuron (e.g.
            ``model.params["lif1"]["v_threshold"]``).
        spikes: the neurons' spikes, same shape: marked as ticks above the trace.
        sample: the batch index to draw.
        neurons: flat indices of the neurons to draw (default: the first five).
        dt: the time step in seconds (time axis in ms); ``None``: time steps.
        title: the figure title.
        ax: a matplotlib ``Axes`` (the membrane panel), or a pair of them with ``current``.

    Returns:
        The figure.
    """
    va = _sample(_array(v, "traces v"), sample, "traces v")
    n_all = va.shape[1]
    picked = np.arange(min(n_all, 5)) if neurons is None else np.asarray(list(neurons), dtype=int)
    if picked.size == 0 or picked.min() < 0 or picked.max() >= n_all:
        raise InputError(f"traces: neurons {picked.tolist()} out of range for {n_all} neurons")
    ca = None
    if current is not None:
        ca = _sample(_array(current, "traces current"), sample, "traces current")
        if ca.shape != va.shape:
            raise InputError(f"traces: current has shape {ca.shape}, v has {va.shape} (sample {sample})")
    sa = None
    if spikes is not None:
        sa = _sample(_array(spikes, "traces spikes"), sample, "traces spikes")
        if sa.shape != va.shape:
            raise InputError(f"traces: spikes have shape {sa.shape}, v has {va.shape} (sample {sample})")
    th = _thresholds(threshold, n_all, picked)
    rows = 2 if ca is not None else 1
    if ax is not None:
        axes = list(np.atleast_1d(ax))
        if len(axes) != rows:
            raise InputError(f"traces: expected {rows} axes, got {len(axes)}")
        fig = axes[0].figure
    else:
        fig, grid = _figure(rows, 1, height=2.6)
        axes = list(grid[:, 0])
    t_axis, xlabel = _time_axis(va.shape[0], dt)
    _, _ = _mpl()
    from matplotlib import colormaps

    colors = colormaps["tab10"]
    ax_v = axes[0]
    uniform = th is not None and bool(np.all(th == th[0]))
    for j, n in enumerate(picked):
        ax_v.plot(t_axis, va[:, n], color=colors(j % 10), linewidth=1.0, label=f"neuron {n}")
    if th is not None:
        for j in range(1 if uniform else len(picked)):
            ax_v.axhline(th[j], color="black" if uniform else colors(j % 10), linestyle="--",
                         linewidth=0.9, label="threshold" if j == 0 else None)
    if sa is not None:
        for j, n in enumerate(picked):
            # spikes as ticks along the top edge (x in data, y in axes coordinates)
            hits = np.nonzero(sa[:, n])[0]
            ax_v.plot(t_axis[hits], np.full(hits.size, 1.0 - 0.04 * (j + 1)), "|",
                      color=colors(j % 10), markersize=7,
                      transform=ax_v.get_xaxis_transform(), label="spikes" if j == 0 else None)
    ax_v.set_ylabel("membrane v")
    if sa is not None:
        lo, hi = ax_v.get_ylim()
        ax_v.set_ylim(lo, hi + 0.04 * (len(picked) + 1) * (hi - lo))
    ax_v.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if ca is not None:
        ax_i = axes[1]
        for j, n in enumerate(picked):
            ax_i.plot(t_axis, ca[:, n], color=colors(j % 10), linewidth=1.0)
        ax_i.set_ylabel("synaptic current")
    axes[-1].set_xlabel(xlabel)
    if title or ax is None:
        fig.suptitle(title or f"membrane traces, sample {sample}", fontsize=10)
    return fig


def rates(spikes, *, dt: float | None = None, title: str | None = None, ax=None):
    """Firing rate of every neuron, per layer: a box of the per-neuron rates (mean over all
    steps and samples), every neuron as a dot, the layer's mean as a red bar.

    Args:
        spikes: a mapping of layer names to ``[T, B, *shape]`` spikes (or one array).
        dt: the time step in seconds: rates in Hz; ``None``: spikes per step.
        title: the figure title.
        ax: a matplotlib ``Axes`` to draw into.

    Returns:
        The figure.
    """
    layers = _layers(spikes, "rates")
    per_neuron = {}
    for k, v in layers.items():
        a = _array(v, f"rates {k!r}")
        r = a.mean(axis=(0, 1))
        per_neuron[k or "layer"] = r / float(dt) if dt is not None else r
    if ax is None:
        fig, grid = _figure(1, 1, width=max(4.0, 1.6 * len(per_neuron) + 2), height=3.6)
        ax = grid[0, 0]
    fig = ax.figure
    names = list(per_neuron)
    data = [per_neuron[n] for n in names]
    ax.boxplot(data, positions=np.arange(len(names)), widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for i, r in enumerate(data):
        ax.scatter(i + rng.uniform(-0.18, 0.18, r.size), r, s=6, color="tab:blue", alpha=0.5,
                   linewidths=0)
        ax.hlines(r.mean(), i - 0.3, i + 0.3, color="tab:red", linewidth=2)
    unit = "Hz" if dt is not None else "spikes/step"
    labels = [f"{n}\nmean {r.mean():.4g} {unit}\n{100 * np.mean(r == 0):.0f}% silent"
              for n, r in zip(names, data)]
    ax.set_xticks(np.arange(len(names)), labels, fontsize=8)
    ax.set_ylabel(f"firing rate per neuron ({unit})")
    fig.suptitle(title or "firing rates", fontsize=10)
    return fig


def divergence(report, profile: str | None = None, *, sample: int | None = None,
               nodes: Sequence[str] | None = None, max_neurons: int = 64,
               dt: float | None = None, title: str | None = None):
    """Where and when profiles' spikes first differ from the reference's.

    One column per compared profile, one row per compared node. A spike both profiles emit
    is a black bar; a spike only the reference emits a blue triangle pointing down, one only
    the other profile emits a red triangle pointing up. A dashed red line marks the first
    divergence (step and node in the column title). Non-spiking outputs are drawn as traces
    (reference solid, profile dashed).

    Args:
        report: a :class:`nirjax.Comparison` from :func:`nirjax.compare`.
        profile: one profile to draw against the reference (default: every other one).
        sample: the batch index (default: the sample of the first divergence of the first
            drawn profile, else 0).
        nodes: the nodes to draw (default: every compared node).
        max_neurons: draw at most this many neurons per node (the first ones).
        dt: the time step in seconds (time axis in ms); ``None``: time steps.
        title: the figure title.

    Returns:
        The figure.
    """
    ref = report.reference
    others = [p for p in report.profiles if p != ref] if profile is None else [profile]
    for p in others:
        if p not in report.values:
            raise InputError(f"divergence: profile {p!r} was not compared; profiles: "
                             f"{list(report.profiles)}")
    if not others:
        raise InputError("divergence: the comparison has only the reference profile")
    drawn = list(report.nodes if nodes is None else nodes)
    for n in drawn:
        if n not in report.nodes:
            raise InputError(f"divergence: node {n!r} was not compared; nodes: {list(report.nodes)}")
    divs = {p: report.divergence(p) for p in others}
    if sample is None:
        first = divs[others[0]]
        sample = first.sample if first is not None else 0
    _mpl()
    from matplotlib.ticker import MaxNLocator

    fig, grid = _figure(len(drawn), len(others), width=6.0, height=2.2, sharex=True)
    fig.set_figwidth(max(6.0, 5.0 * len(others)))
    for c, p in enumerate(others):
        d = divs[p]
        for r, node in enumerate(drawn):
            ax = grid[r, c]
            a = _sample(_array(report.values[ref][node], node), sample, node)[:, :max_neurons]
            b = _sample(_array(report.values[p][node], node), sample, node)[:, :max_neurons]
            t_axis, xlabel = _time_axis(a.shape[0], dt)
            spiking = np.all(a == np.round(a)) and np.all(b == np.round(b)) and a.min() >= 0 \
                and b.min() >= 0
            if spiking:
                both = np.nonzero((a > 0) & (b > 0))
                only_ref = np.nonzero((a > 0) & ~(b > 0))
                only_p = np.nonzero(~(a > 0) & (b > 0))
                ax.scatter(t_axis[both[0]], both[1], marker="|", s=30, color="black",
                           label="both")
                # drawn a little above (reference) and below (profile) the neuron's row, so
                # that a spike moved by one step shows as two markers, not one
                ax.scatter(t_axis[only_ref[0]], only_ref[1] + 0.22, marker="v", s=18,
                           color="tab:blue", label=f"only {ref}")
                ax.scatter(t_axis[only_p[0]], only_p[1] - 0.22, marker="^", s=18,
                           color="tab:red", label=f"only {p}")
                ax.set_ylim(-0.5, max(a.shape[1], 1) - 0.5)
                ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
                ax.set_ylabel(f"{node}\nneuron")
            else:
                for j in range(min(a.shape[1], 5)):
                    ax.plot(t_axis, a[:, j], color=f"C{j}", linewidth=1.0)
                    ax.plot(t_axis, b[:, j], color=f"C{j}", linewidth=1.0, linestyle="--")
                ax.set_ylabel(f"{node}\nvalue")
            ax.set_xlim(t_axis[0], t_axis[-1] + (t_axis[1] - t_axis[0] if len(t_axis) > 1 else 1))
            if d is not None:
                ax.axvline(t_axis[d.step], color="tab:red", linestyle="--", linewidth=0.9)
            if r == 0:
                at = f" ({t_axis[d.step]:g} ms)" if d is not None and dt is not None else ""
                where = "identical to the reference" if d is None else (
                    f"first divergence: step {d.step}{at}, node {d.node!r}")
                ax.set_title(f"{p} vs {ref} (sample {sample}): {where}", fontsize=9)
                if spiking:
                    ax.legend(fontsize=7, loc="upper left", ncols=3)
            if r == len(drawn) - 1:
                ax.set_xlabel(xlabel)
    fig.suptitle(title or "where the profiles' spikes diverge", fontsize=10)
    return fig


def summary(values: Mapping, *, sample: int = 0, dt: float | None = None,
            thresholds: Mapping | None = None, max_neurons: int | None = 64,
            title: str | None = None):
    """One figure of a run: a raster panel for each node output and a trace panel for each
    recorded state field (what ``nirjax run --plot`` draws).

    Args:
        values: keys as in ``model.run(..., record=...)``'s records: a node name (drawn as a
            raster) or a ``(node, field)`` pair (drawn as traces).
        sample: the batch index to draw.
        dt: the time step in seconds (time axis in ms); ``None``: time steps.
        thresholds: node name -> threshold, drawn on that node's ``v`` traces.
        max_neurons: draw at most this many neurons per raster.
        title: the figure title.

    Returns:
        The figure.
    """
    if not values:
        raise InputError("summary: nothing to draw")
    keys = list(values)
    heights = []
    for k in keys:
        a = _array(values[k], str(k))
        heights.append(3.0 if isinstance(k, tuple) else
                       min(max(min(a.shape[2], max_neurons or a.shape[2]), 4), 40) / 12 + 0.8)
    fig, grid = _figure(len(keys), 1, height=1.0, height_ratios=heights)
    fig.set_figheight(0.9 + 0.9 * sum(heights))
    xlabel = "time step"
    for ax, k in zip(grid[:, 0], keys):
        if isinstance(k, tuple):
            th = (thresholds or {}).get(k[0]) if k[1] == "v" else None
            a = _array(values[k], str(k))
            traces(values[k], threshold=th, sample=sample, dt=dt, ax=ax)
            ax.set_ylabel(f"{k[0]}\n{k[1]}")
            ax.set_title(f"{k[0]}: {k[1]} (first {min(a.shape[2], 5)} neurons)", fontsize=9,
                         loc="left")
            ax.set_xlabel("")
            _, xlabel = _time_axis(a.shape[0], dt)
        else:
            a = _sample(_array(values[k], str(k)), sample, str(k))
            xlabel = _raster_panel(ax, a, dt, k, max_neurons)
    grid[-1, 0].set_xlabel(xlabel)
    fig.suptitle(title or f"sample {sample}", fontsize=10)
    return fig
