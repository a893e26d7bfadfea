"""Runs in a subprocess with 8 host CPU devices (``tests/test_sharding.py`` starts it).

``XLA_FLAGS=--xla_force_host_platform_device_count=8`` must be set before JAX starts, so this
runs as its own Python process. For every graph and mesh it compiles the graph twice — with
no mesh (one device, the reference) and with ``mesh=`` — runs both on the same inputs and
prints one JSON line (``RESULT {...}``) of comparisons, which the tests check; nothing here
asserts. The reference is an independent run on one device (no sharding constraint, no
collective), so a wrong layout or a lost collective shows as a difference.

Usage: ``python tests/multidevice_worker.py forward|gradients|hlo|errors``.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import nir  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import nirjax  # noqa: E402
from builders import conv_node, paper_path, read_quiet  # noqa: E402
from nirjax import train  # noqa: E402

B = 8


# ----------------------------------------------------------------------------- graphs


def _lif(n, rng, shape=None, tau=5e-3):
    shape = (n,) if shape is None else shape
    return nir.LIF(tau=rng.uniform(0.5, 1.5, shape) * tau, r=rng.uniform(0.8, 1.2, shape),
                   v_leak=np.zeros(shape), v_threshold=rng.uniform(0.5, 1.0, shape),
                   v_reset=np.zeros(shape))


def recurrent_graph():
    """6 -> Affine 32 -> CubaLIF 32 <-> (Linear 32x32 -> Delay 2 steps) -> Affine 16 -> LI."""
    rng = np.random.default_rng(7)
    n = 32
    nodes = {
        "input": nir.Input(input_type=np.array([6])),
        "fc_in": nir.Affine(rng.normal(0, 1.5, (n, 6)), rng.normal(0, 0.1, n)),
        "lif": nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=rng.uniform(4e-3, 8e-3, n),
                           r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.3),
                           v_reset=np.zeros(n), w_in=np.full(n, 2.0)),
        "w_rec": nir.Linear(rng.normal(0, 0.6, (n, n))),
        "delay": nir.Delay(np.full(n, 2e-3)),
        "fc_out": nir.Affine(rng.normal(0, 1.0, (16, n)), np.zeros(16)),
        "li": nir.LI(tau=np.full(16, 4e-3), r=np.ones(16), v_leak=np.zeros(16)),
        "output": nir.Output(output_type=np.array([16])),
    }
    edges = [("input", "fc_in"), ("fc_in", "lif"), ("lif", "w_rec"), ("w_rec", "delay"),
             ("delay", "lif"), ("lif", "fc_out"), ("fc_out", "li"), ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), 1e-3, (6,), 0.4


def conv_graph():
    """(2, 10, 10) -> Conv2d 8x3x3 -> LIF -> SumPool 2 -> Flatten 200 -> Affine 16 -> LIF."""
    rng = np.random.default_rng(8)
    conv = conv_node(rng, 2, 2, 8, 3, padding=1, input_shape=np.array([10, 10]))
    conv = nir.Conv2d(input_shape=(10, 10), weight=conv.weight * 0.8, stride=(1, 1),
                      padding=(1, 1), dilation=(1, 1), groups=1, bias=conv.bias * 0.1)
    nodes = {
        "input": nir.Input(input_type=np.array([2, 10, 10])),
        "conv": conv,
        "lif1": _lif(8, rng, (8, 10, 10)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([8, 5, 5])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(rng.normal(0, 0.5, (16, 200)), np.zeros(16)),
        "lif2": _lif(16, rng),
        "output": nir.Output(output_type=np.array([16])),
    }
    edges = [("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "flat"),
             ("flat", "fc"), ("fc", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), 1e-3, (2, 10, 10), 0.3


def paper(name, dt, shape, rate):
    return lambda: (read_quiet(paper_path(name)), dt, shape, rate)


GRAPHS = {
    "lif_task": paper("lif_norse", 1e-4, (1,), 0.2),
    "braille": paper("braille_bias_zero", 1e-4, (12,), 0.3),
    "cnn": paper("cnn_sinabs", 1.0, (2, 34, 34), 0.15),
    "recurrent": recurrent_graph,
    "conv": conv_graph,
}
# the "neurons" axis size per graph: the largest that divides its big layers
NEURONS = {"lif_task": 8, "braille": 2, "cnn": 8, "recurrent": 8, "conv": 8}
STEPS = {"lif_task": 60, "braille": 30, "cnn": 6, "recurrent": 30, "conv": 12}
# a state field to record per graph (its membrane)
RECORD = {"lif_task": ("1", "v"), "braille": ("lif1.lif", "v"), "cnn": ("3", "v"),
          "recurrent": ("lif", "v"), "conv": ("lif1", "v")}


def meshes(name):
    n = NEURONS[name]
    return {"batch": ((8,), ("batch",)), "neurons": ((n,), ("neurons",)),
            "both": ((8 // n if n < 8 else 2, n if n < 8 else 4), ("batch", "neurons"))}


def inputs(name, steps=None, batch=B, seed=0):
    graph, dt, shape, rate = GRAPHS[name]()
    rng = np.random.default_rng(seed)
    t = STEPS[name] if steps is None else steps
    return graph, dt, (rng.random((t, batch) + shape) < rate).astype(np.float32)


def _maxerr(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _spec(x):
    return [a if a is None or isinstance(a, str) else list(a) for a in x.sharding.spec]


# ----------------------------------------------------------------------------- sections


def forward():
    out = {}
    for name in GRAPHS:
        graph, dt, xs = inputs(name)
        record = [RECORD[name]]
        ref = nirjax.compile(graph, dt=dt)
        y0, s0, r0 = ref.run(ref.params, xs, record=record)
        for mode, (shape, axes) in meshes(name).items():
            mesh = jax.make_mesh(shape, axes)
            model = nirjax.compile(graph, dt=dt, mesh=mesh, shard_min=1)
            y, s, r = model.run(model.params, xs, record=record)
            node = RECORD[name][0]
            state_leaf = jax.tree_util.tree_leaves(s.nodes[node])[0]
            out[f"{name}/{mode}"] = {
                "spikes_equal": bool(np.array_equal(np.asarray(y), np.asarray(y0))),
                "spikes": int(np.asarray(y0).sum()),
                "state_err": max(_maxerr(a, b) for a, b in zip(
                    jax.tree_util.tree_leaves(s), jax.tree_util.tree_leaves(s0))),
                "record_err": _maxerr(r[tuple(record[0])], r0[tuple(record[0])]),
                "state_scale": max(float(np.max(np.abs(np.asarray(a)))) for a in
                                   jax.tree_util.tree_leaves(s0)),
                "out_spec": _spec(y),
                "state_spec": _spec(state_leaf),
                "node_sharded": model.sharding.sharded(node),
                "devices": len(mesh.devices.flat),
            }
    # the per-step API on both axes
    graph, dt, xs = inputs("recurrent")
    ref = nirjax.compile(graph, dt=dt)
    shape, axes = meshes("recurrent")["both"]
    model = nirjax.compile(graph, dt=dt, mesh=jax.make_mesh(shape, axes), shard_min=1)
    s0, s = ref.init_state(B), model.init_state(B)
    equal, err = True, 0.0
    for t in range(8):
        y0, s0 = ref.step(ref.params, s0, xs[t])
        y, s = model.step(model.params, s, xs[t])
        equal &= bool(np.array_equal(np.asarray(y), np.asarray(y0)))
        err = max(err, max(_maxerr(a, b) for a, b in zip(jax.tree_util.tree_leaves(s),
                                                         jax.tree_util.tree_leaves(s0))))
    out["recurrent/step"] = {"spikes_equal": equal, "state_err": err,
                             "state_spec": _spec(s.nodes["lif"].v)}
    # the staged program's options: plain scan, chunk checkpointing
    for opts in ({"optimize": False}, {"checkpoint": 4}, {"associative_scan": True}):
        ref = nirjax.compile(graph, dt=dt, **opts)
        model = nirjax.compile(graph, dt=dt, mesh=jax.make_mesh(shape, axes), shard_min=1, **opts)
        y0, s0 = ref.run(ref.params, xs)
        y, s = model.run(model.params, xs)
        out[f"recurrent/{'+'.join(opts)}"] = {
            "spikes_equal": bool(np.array_equal(np.asarray(y), np.asarray(y0))),
            "state_err": max(_maxerr(a, b) for a, b in zip(jax.tree_util.tree_leaves(s),
                                                           jax.tree_util.tree_leaves(s0)))}
    return out


def _rel(tree, ref):
    errs = []
    for a, b in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(ref)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        errs.append(float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)))
    return max(errs)


def gradients():
    out = {}
    for name, modes in (("recurrent", ("batch", "neurons", "both")), ("conv", ("both",))):
        graph, dt, xs = inputs(name)
        node, field = RECORD[name]

        def loss_of(model):
            def loss(params, xs):
                ys, _, rec = model.run(params, xs, record=[(node, field)])
                return jnp.mean(rec[(node, field)] ** 2) + jnp.mean(ys)
            return jax.jit(jax.value_and_grad(loss))

        ref = nirjax.compile(graph, dt=dt, surrogate="fast_sigmoid")
        l0, g0 = loss_of(ref)(ref.params, xs)
        for mode in modes:
            shape, axes = meshes(name)[mode]
            model = nirjax.compile(graph, dt=dt, surrogate="fast_sigmoid",
                                   mesh=jax.make_mesh(shape, axes), shard_min=1)
            loss, grads = loss_of(model)(model.params, xs)
            out[f"{name}/{mode}"] = {"loss_rel_err": abs(float(loss) - float(l0)) / abs(float(l0)),
                                     "grad_rel_err": _rel(grads, g0)}
    # one training step (Trainer: clipping, Adam, bounds) and a short fit
    graph, dt, xs = inputs("braille", batch=B)
    labels = np.arange(B) % 7
    def train_with(mesh):
        opts = {} if mesh is None else {"mesh": mesh, "shard_min": 1}
        model = nirjax.compile(graph, dt=dt, surrogate="fast_sigmoid", **opts)
        trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(1e-2),
                                readout=("lif2", "v"), clip_norm=1.0,
                                metrics={"acc": train.max_membrane_accuracy})
        state, logs = trainer.step(trainer.init(), xs, labels)
        fit = train.fit(trainer, model.params, [(xs, labels)] * 2, epochs=1)
        return state, logs, fit

    s0, l0, f0 = train_with(None)
    for mode in ("both",):
        s1, l1, f1 = train_with(jax.make_mesh(*meshes("braille")[mode]))
        out[f"train/{mode}"] = {
            "loss_err": abs(float(l1["loss"]) - float(l0["loss"])),
            "params_rel_err": _rel(s1.params, s0.params),
            "fit_loss_err": max(abs(a["loss"] - b["loss"]) for a, b in zip(f1.history, f0.history)),
            "fit_params_rel_err": _rel(f1.params, f0.params),
            "param_spec": _spec(s1.params["lif1.w_rec"].weight),
        }
    return out


def _collectives(hlo):
    """(computation, op, shape) of every collective in compiled HLO text."""
    found, comp = [], None
    for line in hlo.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith("{"):
            comp = line.split()[1] if line.startswith("ENTRY") else line.split()[0]
        m = re.search(r"= (\S+) (all-gather|all-reduce|reduce-scatter|all-to-all|"
                      r"collective-permute)(?:-start)?\(", line)
        if m:
            found.append((comp, m.group(2), m.group(1)))
    return found


def _while_bodies(hlo):
    return set(re.findall(r"while\(.*?body=%?([\w.\-]+)", hlo))


def hlo():
    out = {}
    rng = np.random.default_rng(3)
    n = 512
    w5 = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([n])),
        "fc": nir.Linear(rng.normal(0, 20 / np.sqrt(n), (n, n))),
        "lif": _lif(n, rng, tau=2e-3),
        "output": nir.Output(output_type=np.array([n]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    xs = (rng.random((40, B, n)) < 0.05).astype(np.float32)
    model = nirjax.compile(w5, dt=1e-4, mesh=jax.make_mesh((8,), ("neurons",)), shard_min=n)
    text = jax.jit(model.run).lower(model.params, model.shard_inputs(xs)).compile().as_text()
    ref = nirjax.compile(w5, dt=1e-4)
    out["w5"] = {"collectives": _collectives(text), "loops": sorted(_while_bodies(text)),
                 "weight_shard": list(model.params["fc"].weight.addressable_shards[0].data.shape),
                 "spikes_equal": bool(np.array_equal(np.asarray(model(xs)), np.asarray(ref(xs))))}
    graph, dt, xs = inputs("recurrent")
    model = nirjax.compile(graph, dt=dt, mesh=jax.make_mesh((2, 4), ("batch", "neurons")),
                           shard_min=1)
    placed = model.shard_inputs(xs)
    text = jax.jit(model.run).lower(model.params, placed).compile().as_text()
    grad = jax.jit(jax.grad(lambda p, x: jnp.sum(model.run(p, x)[0])))
    grad_text = grad.lower(model.params, placed).compile().as_text()
    out["recurrent"] = {"collectives": _collectives(text), "loops": sorted(_while_bodies(text)),
                        "grad_collectives": _collectives(grad_text),
                        "grad_loops": sorted(_while_bodies(grad_text))}
    return out


def errors():
    graph, dt, xs = inputs("braille", batch=6)
    model = nirjax.compile(graph, dt=dt, mesh=jax.make_mesh((4,), ("batch",)))
    out = {}
    for what, call in (("run", lambda: model.run(model.params, xs)),
                       ("init_state", lambda: model.init_state(6)),
                       ("step", lambda: model.step(model.params, model.init_state(8), xs[0]))):
        try:
            call()
            out[what] = None
        except nirjax.NirjaxError as exc:
            out[what] = f"{type(exc).__name__}: {exc}"
    return out


if __name__ == "__main__":
    sections = {"forward": forward, "gradients": gradients, "hlo": hlo, "errors": errors}
    result = {name: sections[name]() for name in sys.argv[1:]}
    print("RESULT " + json.dumps(result), flush=True)
