"""Profile nirjax on the speed workloads: where the time goes and what would help.

For each workload this prints and writes (``benchmarks/results/<name>.md``):

1. nirjax forward and forward+backward time under compile-option variants (default, the
   plain one-scan program ``optimize=False``, ``unroll`` 2 and 8, ``matmul_dtype=bfloat16``,
   ``associative_scan=True``
   and any ``--variant key=value[,key=value]`` given);
2. XLA's per-operation profile of nirjax's compiled forward (``jax.profiler`` trace of one
   call, summed per HLO instruction): which matmuls, convolutions and fusions take the time;
3. hand-written JAX schedules of the same network with the same numerics (outputs compared
   spike for spike with nirjax's), timed on the same machine, as bounds for what a compiler
   pass can reach:

   * ``per-step``: one ``lax.scan``, every layer's matmul per step (nirjax's and Spyx's
     schedule, without nirjax's generality);
   * ``hoisted input``: the first Affine/Linear as one GEMM over all ``T*B`` rows, then the
     per-step scan;
   * ``layer-by-layer`` (feed-forward chains): every Affine/Linear as one GEMM over ``T*B``
     rows, each neuron layer an elementwise scan;
   * for the CNN: the convolution inside the scan in NCHW layout (nirjax's) vs NHWC.

4. float32 GEMM throughput (``jnp.dot``) for the shapes the schedules use.

Run: ``python benchmarks/profile_nirjax.py [--workloads W1,W2,W4] [--variant unroll=4]``.
Timings are medians of repeated synchronised calls; this is a diagnosis tool, not the
benchmark table (``benchmarks/speed.py``).
"""

from __future__ import annotations

import argparse
import ast
import collections
import glob
import gzip
import json
import pathlib
import statistics
import sys
import tempfile
import time
import warnings

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import nirjax  # noqa: E402
import workloads as wl  # noqa: E402


def bench(fn, *args, min_time=1.0, min_repeats=3, max_repeats=50) -> float:
    """Median seconds of ``fn(*args)`` (synchronised) after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats
                                        or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def parse_variant(text: str) -> dict:
    out = {}
    for item in text.split(","):
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


# ----------------------------------------------------------------------------- nirjax


def nirjax_fns(path, dt, opts, x):
    """Jitted forward and value-and-grad of the benchmark loss for a compiled graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nirjax.compile(str(path), dt=dt, **opts)
    state = model.init_state(x.shape[1])
    target = 0.1 * x.shape[0]
    fwd = jax.jit(lambda p, xs: model.run(p, xs, state)[0])

    def loss(p, xs):
        return jnp.mean((jnp.sum(model.run(p, xs, state)[0], axis=0) - target) ** 2)

    return model, fwd, jax.jit(jax.value_and_grad(loss))


def op_profile(fn, *args, top=12) -> list:
    """(HLO instruction, ms per call, count) of one traced call, largest first."""
    jax.block_until_ready(fn(*args))
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d)
        jax.block_until_ready(fn(*args))
        jax.profiler.stop_trace()
        files = sorted(glob.glob(f"{d}/**/*.trace.json.gz", recursive=True))
        if not files:
            return []
        events = json.load(gzip.open(files[-1])).get("traceEvents", [])
    skip = ("ThunkExecutor", "Slinky", "Pjit", "$", "while", "PjRt", "Execute")
    total = collections.Counter()
    count = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith(skip) and "::" not in name:
            total[name] += e.get("dur", 0)
            count[name] += 1
    return [(name, us / 1e3, count[name]) for name, us in total.most_common(top)]


# ----------------------------------------------------------------------------- references


def chain_layers(graph):
    """[(weight [out,in], bias [out] | None, neuron node)] of an Input->...->Output chain."""
    import nir

    succ = {}
    for src, dst in graph.edges:
        succ.setdefault(src, []).append(dst)
    name = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    layers, pending = [], None
    while True:
        nxt = [d for d in succ.get(name, []) if not (d, name) in graph.edges]
        if not nxt:
            break
        name = nxt[0]
        node = graph.nodes[name]
        if isinstance(node, (nir.Affine, nir.Linear)):
            pending = (np.asarray(node.weight, np.float32),
                       np.asarray(node.bias, np.float32) if isinstance(node, nir.Affine) else None)
        elif isinstance(node, (nir.LIF, nir.CubaLIF)):
            rec = [d for d in succ.get(name, []) if (d, name) in graph.edges]
            w_rec = np.asarray(graph.nodes[rec[0]].weight, np.float32) if rec else None
            layers.append((pending[0], pending[1], node, w_rec))
            pending = None
        elif isinstance(node, nir.Output):
            break
    return layers


def _neuron_coeffs(node, dt):
    import nir

    f = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    if isinstance(node, nir.LIF):
        return dict(kind="lif", a=f(dt / node.tau), r=f(node.r), v_leak=f(node.v_leak),
                    thr=f(node.v_threshold), v_reset=f(node.v_reset))
    return dict(kind="cuba", a_syn=f(dt / node.tau_syn), a_mem=f(dt / node.tau_mem), r=f(node.r),
                w_in=f(node.w_in), v_leak=f(node.v_leak), thr=f(node.v_threshold),
                v_reset=f(node.v_reset))


def _neuron_init(c, shape):
    v0 = jnp.broadcast_to(c["v_leak"], shape)
    return (v0,) if c["kind"] == "lif" else (jnp.zeros(shape), v0)


def _neuron_step(c, state, x):
    """nirjax's default semantics: Euler, reset to v_reset, '>' test, CubaLIF uses old I.

    The spike is nirjax's own surrogate-gradient Heaviside, so gradients match too.
    """
    from nirjax.kernels.surrogate import spike

    if c["kind"] == "lif":
        (v,) = state
        v = v + c["a"] * ((c["v_leak"] - v) + c["r"] * x)
        z = spike(v - c["thr"])
        return (v * (1 - z) + c["v_reset"] * z,), z
    i, v = state
    i_new = i + c["a_syn"] * (-i + c["w_in"] * x)
    v = v + c["a_mem"] * ((c["v_leak"] - v) + c["r"] * i)
    z = spike(v - c["thr"])
    return (i_new, v * (1 - z) + c["v_reset"] * z), z


def references(graph, dt, batch, feedforward: bool) -> tuple[dict, tuple]:
    """Hand-written schedules of a chain graph.

    Returns ``(schedules, weights)``: name -> ``fn(weights, xs)`` (output spikes), and the
    weights ``(ws, bs, recs)`` taken from the graph (the differentiable parameters).
    """
    layers = chain_layers(graph)
    ws = tuple(jnp.asarray(w) for w, _, _, _ in layers)
    bs = tuple(jnp.asarray(b) if b is not None else jnp.zeros(w.shape[0]) for w, b, _, _ in layers)
    recs = tuple(jnp.asarray(r) if r is not None else None for _, _, _, r in layers)
    cs = [_neuron_coeffs(n, dt) for _, _, n, _ in layers]

    def per_step(weights, xs, hoist_first=False):
        ws, bs, recs = weights
        init = [(_neuron_init(c, (batch, w.shape[0])), jnp.zeros((batch, w.shape[0])))
                for c, w in zip(cs, ws)]

        def body(carry, x_t):
            h, new = x_t, []
            for k, ((st, z_prev), w, b, wr, c) in enumerate(zip(carry, ws, bs, recs, cs)):
                cur = h if (hoist_first and k == 0) else h @ w.T + b
                if wr is not None:
                    cur = cur + z_prev @ wr.T
                st, h = _neuron_step(c, st, cur)
                new.append((st, h))
            return new, h

        if hoist_first:
            xs = jnp.einsum("tbi,oi->tbo", xs, ws[0]) + bs[0]
        return lax.scan(body, init, xs)[1]

    def layer_by_layer(weights, xs):
        ws, bs, _ = weights
        h = xs
        for w, b, c in zip(ws, bs, cs):
            cur = (h.reshape(-1, h.shape[-1]) @ w.T + b).reshape(h.shape[:2] + (w.shape[0],))
            h = lax.scan(lambda st, x_t, c=c: _neuron_step(c, st, x_t),
                         _neuron_init(c, (batch, w.shape[0])), cur)[1]
        return h

    out = {"per-step": per_step,
           "hoisted input": lambda weights, xs: per_step(weights, xs, hoist_first=True)}
    if feedforward and all(r is None for r in recs):
        out["layer-by-layer"] = layer_by_layer
    return out, (ws, bs, recs)


def conv_layouts(t, batch) -> dict:
    """The CNN's 16->16 3x3 convolution inside a scan, NCHW (nirjax) vs NHWC layout."""
    rng = np.random.default_rng(0)
    xs = jnp.asarray((rng.random((t, batch, 16, 16, 16)) < 0.05).astype(np.float32))
    w = jnp.asarray(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))

    def nchw(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def nhwc_transposed(x, w):
        y = lax.conv_general_dilated(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), (1, 1),
                                     ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y.transpose(0, 3, 1, 2)

    def in_scan(conv):
        return jax.jit(lambda xs, w: lax.scan(lambda c, x: (c, conv(x, w)), 0.0, xs)[1])

    outs = {}
    for name, conv in (("NCHW conv inside scan (nirjax)", nchw),
                       ("NHWC conv inside scan (transposes around it)", nhwc_transposed)):
        outs[name] = bench(in_scan(conv), xs, w) / t
    outs["NCHW conv over all T*B at once"] = bench(
        jax.jit(lambda xs, w: nchw(xs.reshape((-1,) + xs.shape[2:]), w)), xs, w) / t
    return outs


def gemm_rate(m, k, n) -> float:
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((m, k), dtype=np.float32))
    b = jnp.asarray(rng.standard_normal((k, n), dtype=np.float32))
    return 2.0 * m * k * n / bench(jax.jit(jnp.dot), a, b, min_time=0.5) / 1e9


# ----------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="W1,W2,W4")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--variant", action="append", default=[],
                   help="nirjax.compile options to compare, e.g. unroll=4 (repeatable)")
    p.add_argument("--no-default-variants", action="store_true")
    p.add_argument("--no-backward", action="store_true")
    p.add_argument("--out", default=str(HERE / "results" / "profile_cpu.md"))
    p.add_argument("--graphs-dir", default=str(HERE / "graphs"))
    args = p.parse_args(argv)

    variants = [] if args.no_default_variants else [
        {}, {"optimize": False}, {"unroll": 2}, {"unroll": 8}, {"matmul_dtype": "bfloat16"},
        {"associative_scan": True}]
    variants += [parse_variant(v) for v in args.variant]
    lines = ["# nirjax profile (CPU)", "",
             f"jax {jax.__version__}, {jax.devices()[0].device_kind}, "
             f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; command: "
             f"`python benchmarks/profile_nirjax.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
             ""]

    def emit(text=""):
        print(text, flush=True)
        lines.append(text)

    for name in wl.parse_names(args.workloads):
        w = wl.WORKLOADS[name]
        path, x_path = wl.build(w, pathlib.Path(args.graphs_dir), args.steps, args.batch)
        x = jnp.asarray(np.load(x_path).astype(np.float32))
        t, b = x.shape[:2]
        emit(f"## {name}: {w.description}, T={t}, B={b}")
        emit()
        emit("| nirjax options | forward [ms] | forward+backward [ms] |")
        emit("|---|---|---|")
        base = None
        for opts in variants:
            cells = []
            try:
                model, fwd, grad = nirjax_fns(path, w.dt, opts, x)
                cells.append(f"{bench(fwd, model.params, x) * 1e3:.2f}")
                if base is None:
                    base = (model, fwd)
                if args.no_backward:
                    cells.append("-")
                else:
                    cells.append(f"{bench(grad, model.params, x) * 1e3:.2f}")
            except Exception as e:  # an option the installed nirjax lacks, or a failed grad
                cells.append(f"failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
            cells += [""] * (2 - len(cells))
            emit(f"| {opts or 'default'} | {cells[0]} | {cells[1]} |")
        emit()
        if base is not None:
            model, fwd = base
            prof = op_profile(fwd, model.params, x)
            total = sum(ms for _, ms, _ in prof) or 1.0
            emit("XLA per-operation time of one nirjax forward call (default options; "
                 "the largest instructions):")
            emit()
            emit("| HLO instruction | ms per forward | calls | share of listed |")
            emit("|---|---|---|---|")
            for op, ms, n in prof:
                emit(f"| `{op}` | {ms:.2f} | {n} | {100 * ms / total:.0f} % |")
            emit()
        import nir

        graph = nir.read(str(path))
        if w.kind in ("ff", "rec", "onb", "braille"):
            try:
                refs, weights = references(graph, w.dt, b, feedforward=w.kind in ("ff", "onb"))
            except Exception as e:
                refs = {}
                emit(f"(no hand-written reference for this graph: {type(e).__name__}: {e})")
            if refs:
                ys_nirjax = np.asarray(base[1](base[0].params, x)) if base else None
                emit("Hand-written JAX schedules of the same network (same numerics as nirjax's "
                     "default semantics, nirjax's surrogate; forward+backward = value and gradient "
                     "of the benchmark loss w.r.t. the weights and biases):")
                emit()
                emit("| schedule | forward [ms] | forward+backward [ms] | output spikes differing "
                     "from nirjax |")
                emit("|---|---|---|---|")
                target = 0.1 * t
                for rname, fn in refs.items():
                    fwd_ref = jax.jit(fn)
                    ms = bench(fwd_ref, weights, x) * 1e3
                    loss = lambda wts, xs, fn=fn: jnp.mean(  # noqa: E731
                        (jnp.sum(fn(wts, xs), axis=0) - target) ** 2)
                    g_ms = ("-" if args.no_backward else
                            f"{bench(jax.jit(jax.value_and_grad(loss)), weights, x) * 1e3:.2f}")
                    ys = np.asarray(fwd_ref(weights, x))
                    diff = "-" if ys_nirjax is None else int(np.sum(ys != ys_nirjax))
                    emit(f"| {rname} | {ms:.2f} | {g_ms} | {diff} of "
                         f"{ys_nirjax.size if ys_nirjax is not None else '-'} |")
                emit()
                layers = chain_layers(graph)
                emit("float32 GEMM throughput (`jnp.dot`) for the matmul shapes:")
                emit()
                emit("| shape (M x K x N) | GFLOP/s |")
                emit("|---|---|")
                for wgt, _, _, wr in layers:
                    for m_rows in (b, t * b):
                        emit(f"| {m_rows} x {wgt.shape[1]} x {wgt.shape[0]} | "
                             f"{gemm_rate(m_rows, wgt.shape[1], wgt.shape[0]):.1f} |")
                emit(f"| 2048 x 2048 x 2048 | {gemm_rate(2048, 2048, 2048):.1f} |")
                emit()
        if w.kind == "cnn":
            emit("The CNN's 16->16 3x3 convolution (per step, B as in the workload):")
            emit()
            emit("| variant | ms per step |")
            emit("|---|---|")
            for k, v in conv_layouts(min(t, 60), b).items():
                emit(f"| {k} | {v * 1e3:.2f} |")
            emit()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
