"""Independent float64 NumPy reference implementations (oracles) of NIR graphs.

Everything here is written from the NIR definitions (NIR 1.0.8 docstrings, the NIR paper) and
from the discrete updates nirjax documents in its kernels' docstrings, README and
``nirjax/graph/flat.py``; nothing is imported from nirjax. The oracles are plain loops over time
on ONE unbatched sample, in float64:

* neurons: forward Euler of the NIR ODE, or its exact solution over one step with the input
  held constant, computed from the matrix exponential of the linear system (so the exact
  integrator is checked against a different derivation than a closed form);
* Conv1d/Conv2d: cross-correlation written as a sum over kernel taps (PyTorch semantics:
  symmetric zero padding, 'same' pads ``d*(k-1)`` with the extra element at the end);
* pooling: window sums over zero-padded input; AvgPool divides by ``kh*kw``;
* Delay: a list of past inputs, delay rounded to ``floor(delay/dt + 1/2)`` steps;
* graphs: :class:`NpGraph` flattens subgraphs, orders nodes by the depth-first rule in
  nirjax's ``graph.py`` docstring, sums fan-in, and lets the cycle-closing edges read the
  previous step's value (zeros at step 0).
"""

from __future__ import annotations

import math

import nir
import numpy as np

DEFAULT_SEM = dict(integrator="euler", reset="v_reset", threshold_test=">",
                   cuba_current="old", initial_v="rest")

SPIKING = ("IF", "LIF", "CubaLIF")
NEURONS = ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")


def full_sem(sem=None) -> dict:
    """``sem`` with every unspecified field at the NIR default."""
    out = dict(DEFAULT_SEM)
    out.update(sem or {})
    return out


# ----------------------------------------------------------------------------- maths


def expm(a: np.ndarray) -> np.ndarray:
    """Matrix exponential: scaling and squaring of a 30-term Taylor series (float64)."""
    a = np.asarray(a, np.float64)
    norm = float(np.max(np.sum(np.abs(a), axis=-1)))
    squarings = max(0, int(math.ceil(math.log2(norm))) + 2) if norm > 0 else 0
    b = a / 2.0 ** squarings
    result = np.eye(a.shape[0])
    term = np.eye(a.shape[0])
    for k in range(1, 30):
        term = term @ b / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


def delay_steps(delay, dt) -> np.ndarray:
    """Whole steps of a delay: ``floor(delay/dt + 1/2)``."""
    return np.floor(np.asarray(delay, np.float64) / dt + 0.5).astype(int)


def conv_pads(padding, kernel, dilation) -> list:
    """Explicit ``(low, high)`` zero padding per spatial axis (PyTorch rules)."""
    nd = len(kernel)
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        assert padding == "same"
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return pads
    p = np.asarray(padding).reshape(-1)
    if p.size == 1:
        p = np.repeat(p, nd)
    return [(int(v), int(v)) for v in p]


def _tuple(value, nd):
    v = np.asarray(value).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, nd)
    return tuple(int(x) for x in v)


def conv(x, weight, bias, stride, padding, dilation, groups):
    """Cross-correlation of ONE sample ``x`` ``(C_in, *spatial)`` as a sum over taps."""
    x = np.asarray(x, np.float64)
    weight = np.asarray(weight, np.float64)
    nd = x.ndim - 1
    kernel = weight.shape[2:]
    stride, dilation = _tuple(stride, nd), _tuple(dilation, nd)
    groups = int(np.asarray(groups).reshape(-1)[0])
    pads = conv_pads(padding, kernel, dilation)
    xp = np.pad(x, [(0, 0)] + pads)
    c_out, c_in_g = weight.shape[:2]
    out_sp = [(xp.shape[1 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
              for a in range(nd)]
    y = np.zeros((c_out, *out_sp))
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for c in range(c_in_g):
            for tap in np.ndindex(*kernel):
                window = tuple(
                    slice(tap[a] * dilation[a],
                          tap[a] * dilation[a] + stride[a] * (out_sp[a] - 1) + 1, stride[a])
                    for a in range(nd))
                y[o] += weight[(o, c) + tap] * xp[(g * c_in_g + c,) + window]
        y[o] += np.asarray(bias, np.float64)[o]
    return y


def sum_pool(x, kernel_size, stride, padding):
    """Window sums of ONE sample ``(C, H, W)`` over zero-padded input."""
    x = np.asarray(x, np.float64)
    k, s, p = _tuple(kernel_size, 2), _tuple(stride, 2), _tuple(padding, 2)
    xp = np.pad(x, [(0, 0), (p[0], p[0]), (p[1], p[1])])
    ho = (xp.shape[1] - k[0]) // s[0] + 1
    wo = (xp.shape[2] - k[1]) // s[1] + 1
    y = np.zeros((x.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, i, j] = xp[:, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]].sum(axis=(1, 2))
    return y


def flatten_shape(shape, start_dim, end_dim):
    """NIR Flatten on the UNBATCHED shape."""
    nd = len(shape)
    s = start_dim % nd
    e = end_dim % nd
    return tuple(shape[:s]) + (int(np.prod(shape[s:e + 1])),) + tuple(shape[e + 1:])


def _arr(node, field):
    value = getattr(node, field, None)
    return None if value is None else np.asarray(value, np.float64)


def _shape_of(value):
    arr = np.asarray(value)
    return tuple(int(v) for v in arr.reshape(-1))


# ----------------------------------------------------------------------------- neurons


class Neuron:
    """One NIR neuron node, simulated element by element in float64.

    Attributes after each :meth:`step`: ``v`` (after the reset), ``i_syn`` (Cuba types),
    ``margin`` (the smallest ``|v' - v_threshold|`` seen so far, spiking types).
    """

    def __init__(self, node, dt, sem=None):
        self.kind = type(node).__name__
        self.dt = float(dt)
        self.sem = full_sem(sem)
        k = self.kind
        self.r = _arr(node, "r")
        names = {"I": ["r"], "IF": ["r", "v_threshold", "v_reset"],
                 "LI": ["tau", "r", "v_leak"],
                 "LIF": ["tau", "r", "v_leak", "v_threshold", "v_reset"],
                 "CubaLI": ["tau_syn", "tau_mem", "r", "v_leak", "w_in"],
                 "CubaLIF": ["tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset",
                             "w_in"]}[k]
        p = {f: _arr(node, f) for f in names}
        if "v_reset" in p and p["v_reset"] is None:
            p["v_reset"] = np.zeros_like(p["v_threshold"])
        if "w_in" in p and p["w_in"] is None:
            p["w_in"] = np.ones_like(p["v_leak"])
        self.shape = np.broadcast_shapes(*[np.shape(v) for v in p.values()])
        self.p = {f: np.broadcast_to(v, self.shape).astype(np.float64) for f, v in p.items()}
        rest = self.sem["initial_v"] == "rest" and "v_leak" in self.p
        self.v = self.p["v_leak"].copy() if rest else np.zeros(self.shape)
        self.i_syn = np.zeros(self.shape)
        self.margin = np.inf
        self.spikes = 0
        if k in ("CubaLI", "CubaLIF") and self.sem["integrator"] == "exact":
            self._prepare_cuba_exact()

    def _prepare_cuba_exact(self):
        """Per element: ``s' = Phi s + A^-1 (Phi - 1) c`` for ``ds/dt = A s + c``."""
        n = int(np.prod(self.shape))
        ts = self.p["tau_syn"].reshape(-1)
        tm = self.p["tau_mem"].reshape(-1)
        r = self.p["r"].reshape(-1)
        self._phi = np.zeros((n, 2, 2))
        self._gamma = np.zeros((n, 2, 2))
        for e in range(n):
            a = np.array([[-1.0 / ts[e], 0.0], [r[e] / tm[e], -1.0 / tm[e]]])
            phi = expm(a * self.dt)
            self._phi[e] = phi
            self._gamma[e] = np.linalg.solve(a, phi - np.eye(2))

    def _fire(self, v):
        th = self.p["v_threshold"]
        self.margin = min(self.margin, float(np.min(np.abs(v - th))))
        z = (v > th) if self.sem["threshold_test"] == ">" else (v >= th)
        mode = self.sem["reset"]
        if mode == "v_reset":
            v = np.where(z, self.p["v_reset"], v)
        elif mode == "subtract":
            v = np.where(z, v - th, v)
        else:
            assert mode == "none"
        self.spikes += int(z.sum())
        return v, z.astype(np.float64)

    def _adopt_shape(self, shape):
        """Scalar (0-d) parameters take the shape of the input that arrives."""
        self.shape = shape
        self.p = {f: np.broadcast_to(v, shape).copy() for f, v in self.p.items()}
        self.v = np.broadcast_to(self.v, shape).copy()
        self.i_syn = np.broadcast_to(self.i_syn, shape).copy()
        if hasattr(self, "_phi"):
            self._prepare_cuba_exact()

    def step(self, x):
        """One step with input ``x`` held over it; returns the node's output."""
        x = np.asarray(x, np.float64)
        if np.broadcast_shapes(self.shape, x.shape) != self.shape:
            self._adopt_shape(np.broadcast_shapes(self.shape, x.shape))
        x = np.broadcast_to(x, self.shape)
        dt, p, k, sem = self.dt, self.p, self.kind, self.sem
        if k in ("I", "IF"):
            # dv/dt = R x: Euler and the exact solution coincide for held input
            v = self.v + dt * p["r"] * x
        elif k in ("LI", "LIF"):
            if sem["integrator"] == "euler":
                v = self.v + dt / p["tau"] * ((p["v_leak"] - self.v) + p["r"] * x)
            else:
                decay = np.exp(-dt / p["tau"])
                v = decay * self.v + (1.0 - decay) * (p["v_leak"] + p["r"] * x)
        else:
            drive = p["w_in"] * x
            if sem["integrator"] == "euler":
                i_new = self.i_syn + dt / p["tau_syn"] * (drive - self.i_syn)
                i_used = i_new if sem["cuba_current"] == "new" else self.i_syn
                v = self.v + dt / p["tau_mem"] * ((p["v_leak"] - self.v) + p["r"] * i_used)
            else:
                s = np.stack([self.i_syn.reshape(-1), self.v.reshape(-1)], axis=-1)
                c = np.stack([drive.reshape(-1) / p["tau_syn"].reshape(-1),
                              p["v_leak"].reshape(-1) / p["tau_mem"].reshape(-1)], axis=-1)
                s_new = (np.einsum("nij,nj->ni", self._phi, s)
                         + np.einsum("nij,nj->ni", self._gamma, c))
                i_new = s_new[:, 0].reshape(self.shape)
                v = s_new[:, 1].reshape(self.shape)
            self.i_syn = i_new
        if k in SPIKING:
            v, z = self._fire(v)
            self.v = v
            return z
        self.v = v
        return v.copy()

    def field(self, name):
        """A state field by nirjax's name (``v`` or ``i_syn``)."""
        return {"v": self.v, "i_syn": self.i_syn}[name].copy()


def simulate_neuron(node, xs, dt, sem=None):
    """Run one neuron over ``xs`` ``[T, *shape]``; returns (outputs, v, i_syn, oracle)."""
    n = Neuron(node, dt, sem)
    ys, vs, isyn = [], [], []
    for x in xs:
        ys.append(n.step(x))
        vs.append(n.v.copy())
        isyn.append(n.i_syn.copy())
    return np.stack(ys), np.stack(vs), np.stack(isyn), n


# ----------------------------------------------------------------------------- other ops


class Stateless:
    """A stateless NIR op (Affine, Linear, Scale, Conv, Pool, Flatten, Threshold, I/O)."""

    def __init__(self, node, dt, sem=None):
        self.node = node
        self.kind = type(node).__name__
        self.sem = full_sem(sem)

    def step(self, x):
        n, k = self.node, self.kind
        x = np.asarray(x, np.float64)
        if k == "Input":
            shape = _shape_of(n.input_type["input"])
            if x.shape != shape and shape[:1] == (1,) and x.shape == shape[1:]:
                return x  # a leading batch axis of 1 (Norse/Rockpool exports) is dropped
            return x.reshape(shape)
        if k == "Output":
            declared = n.output_type.get("output") if isinstance(n.output_type, dict) else None
            if declared is None:
                return x
            shape = _shape_of(declared)
            lead = len(shape) - x.ndim
            if lead > 0 and shape[lead:] == x.shape and set(shape[:lead]) == {1}:
                return x  # leading 1s (a batch axis an exporter wrote) are dropped
            return x.reshape(shape)
        if k in ("Affine", "Linear"):
            w = _arr(n, "weight")
            y = (w @ x[..., None])[..., 0]
            return y + _arr(n, "bias") if k == "Affine" else y
        if k == "Scale":
            return _arr(n, "scale") * x
        if k in ("Conv1d", "Conv2d"):
            return conv(x, n.weight, n.bias, n.stride, n.padding, n.dilation, n.groups)
        if k == "SumPool2d":
            return sum_pool(x, n.kernel_size, n.stride, n.padding)
        if k == "AvgPool2d":
            kernel = _tuple(n.kernel_size, 2)
            return sum_pool(x, n.kernel_size, n.stride, n.padding) / (kernel[0] * kernel[1])
        if k == "Flatten":
            start = int(np.asarray(n.start_dim).reshape(-1)[0])
            end = int(np.asarray(n.end_dim).reshape(-1)[0])
            return x.reshape(flatten_shape(x.shape, start, end))
        if k == "Threshold":
            th = _arr(n, "threshold")
            z = (x > th) if self.sem["threshold_test"] == ">" else (x >= th)
            return z.astype(np.float64)
        raise NotImplementedError(k)


class Delay:
    """NIR Delay: ``y[t] = x[t - n]`` per element, ``x = 0`` before the start."""

    def __init__(self, node, dt, sem=None):
        self.steps = delay_steps(node.delay, dt)
        self.history = []  # past inputs, oldest first

    @property
    def feedthrough(self) -> bool:
        return bool(np.any(self.steps == 0))

    def _read(self, back_offset):
        """Element e of the input ``steps[e] + back_offset`` entries back."""
        shape = self.history[0].shape if self.history else self.steps.shape
        steps = np.broadcast_to(self.steps, shape)
        y = np.zeros(shape)
        for idx in np.ndindex(*shape):
            k = steps[idx] + back_offset
            if k <= len(self.history):
                y[idx] = self.history[-k][idx]
        return y

    def emit(self):
        """Output before this step's input arrives (every delay >= 1)."""
        return self._read(0) if self.history else np.zeros(self.steps.shape)

    def absorb(self, x):
        self.history.append(np.array(x, np.float64))

    def step(self, x):
        self.absorb(x)
        return self._read(1)


def make_op(node, dt, sem=None):
    """The oracle object of one (non-graph) NIR node."""
    kind = type(node).__name__
    if kind in NEURONS:
        return Neuron(node, dt, sem)
    if kind == "Delay":
        return Delay(node, dt, sem)
    return Stateless(node, dt, sem)


# ----------------------------------------------------------------------------- graphs


def dfs_order(names, edges, roots, feedthrough):
    """The ordering rule of nirjax's ``graph.py`` docstring, written independently.

    Depth-first search over the dependency edges (edges into nodes without feedthrough are
    not dependencies), started from ``roots``, then from the nodes without feedthrough, then
    from every node, each group in sorted name order; successors in sorted name order. An
    edge reaching a node on the stack is delayed. Returns (reverse post-order, set of delayed
    edges).
    """
    names, roots = sorted(names), sorted(roots)
    succ = {n: sorted({d for s, d in edges if s == n and feedthrough[d]}) for n in names}
    state, post, delayed = {}, [], set()

    def visit(n):
        state[n] = "open"
        for m in succ[n]:
            if m not in state:
                visit(m)
            elif state[m] == "open":
                delayed.add((n, m))
        state[n] = "done"
        post.append(n)

    for start in list(roots) + [n for n in names if not feedthrough[n]] + list(names):
        if start not in state:
            visit(start)
    return post[::-1], delayed


class NpGraph:
    """A NumPy interpreter of a NIR graph, one unbatched sample at a time.

    Args:
        graph: a ``nir.NIRGraph`` (nested graphs are inlined as ``sub.node``).
        dt: time step.
        sem: semantics dict (see ``DEFAULT_SEM``); ``overrides``: node -> semantics dict.
    """

    def __init__(self, graph, dt, sem=None, overrides=None):
        self.nodes = {}
        self.edges = []
        self.inputs, self.outputs = [], []
        self._flatten(graph, ())
        overrides = overrides or {}
        self.ops = {n: make_op(node, dt, {**full_sem(sem), **overrides.get(n, {})})
                    for n, node in self.nodes.items()}
        self.feedthrough = {n: not (isinstance(op, Delay) and not op.feedthrough)
                            for n, op in self.ops.items()}
        self.order, self.delayed = dfs_order(list(self.nodes), self.edges, self.inputs,
                                             self.feedthrough)
        self.previous = {}

    def _flatten(self, g, path):
        """Inline ``g``; returns (its Input flat names, its Output flat names)."""
        local = {}
        for name, node in g.nodes.items():
            flat = ".".join(path + (name,))
            if isinstance(node, nir.NIRGraph):
                local[name] = ("graph",) + self._flatten(node, path + (name,))
            else:
                self.nodes[flat] = node
                local[name] = ("node", flat)
                if not path and isinstance(node, nir.Input):
                    self.inputs.append(flat)
                if not path and isinstance(node, nir.Output):
                    self.outputs.append(flat)

        def resolve(ref, as_source):
            if ref in local:
                entry = local[ref]
                if entry[0] == "node":
                    return entry[1]
                ports = entry[2] if as_source else entry[1]
                assert len(ports) == 1, (ref, ports)
                return ports[0]
            head, _, tail = ref.partition(".")
            entry = local[head]
            assert entry[0] == "graph"
            flat = ".".join(path + (head, tail))
            assert flat in (entry[2] if as_source else entry[1])
            return flat

        for src, dst in g.edges:
            self.edges.append((resolve(src, True), resolve(dst, False)))
        ins = [".".join(path + (n,)) for n, v in g.nodes.items() if isinstance(v, nir.Input)]
        outs = [".".join(path + (n,)) for n, v in g.nodes.items() if isinstance(v, nir.Output)]
        return ins, outs

    def _sum(self, name, values):
        total = None
        for src, dst in self.edges:
            if dst != name:
                continue
            if (src, dst) in self.delayed:
                value = self.previous.get(src)  # None: zeros at step 0
            else:
                value = values[src]
            if value is not None:
                total = value if total is None else total + value
        if total is None:
            total = np.zeros(self._param_shape(name))
        return total

    def _param_shape(self, name):
        node = self.nodes[name]
        for field in ("v_threshold", "v_leak", "r", "scale", "threshold", "delay"):
            if getattr(node, field, None) is not None:
                return np.shape(getattr(node, field))
        if getattr(node, "weight", None) is not None:
            w = np.shape(node.weight)
            return w[:-2] + (w[-1],)
        raise ValueError(f"oracle: cannot tell the input shape of {name!r}")

    def step(self, inputs: dict):
        """One step; returns the dict of every node's output this step."""
        values = {}
        for n in self.order:
            if not self.feedthrough[n]:
                values[n] = self.ops[n].emit()
        for n in self.order:
            if not self.feedthrough[n]:
                continue
            x = inputs[n] if n in self.inputs else self._sum(n, values)
            values[n] = self.ops[n].step(x)
        for n in self.order:
            if not self.feedthrough[n]:
                self.ops[n].absorb(self._sum(n, values))
        self.previous = {s: values[s] for s, d in self.delayed}
        return values

    def run(self, xs: dict, record=()):
        """Simulate; ``xs`` maps Input names to ``[T, *shape]``. Returns (ys, rec) dicts."""
        steps = len(next(iter(xs.values())))
        ys = {o: [] for o in self.outputs}
        rec = {r: [] for r in record}
        for t in range(steps):
            values = self.step({k: v[t] for k, v in xs.items()})
            for o in self.outputs:
                ys[o].append(values[o])
            for r in record:
                if isinstance(r, tuple):
                    rec[r].append(self.ops[r[0]].field(r[1]))
                else:
                    rec[r].append(values[r])
        return ({k: np.stack(v) for k, v in ys.items()},
                {k: np.stack(v) for k, v in rec.items()})


def run_graph(graph, xs, dt, sem=None, record=(), overrides=None):
    """Batched oracle run: ``xs`` ``[T, B, ...]`` (dict for several inputs), one sample at
    a time. Returns (ys, rec) with nirjax's conventions (array for a single output)."""
    probe = NpGraph(graph, dt, sem, overrides)
    xs_d = xs if isinstance(xs, dict) else {probe.inputs[0]: xs}
    batch = next(iter(xs_d.values())).shape[1]
    ys_all, rec_all = [], []
    for b in range(batch):
        g = NpGraph(graph, dt, sem, overrides)
        ys, rec = g.run({k: np.asarray(v, np.float64)[:, b] for k, v in xs_d.items()}, record)
        ys_all.append(ys)
        rec_all.append(rec)
    ys = {k: np.stack([y[k] for y in ys_all], axis=1) for k in ys_all[0]}
    rec = {k: np.stack([r[k] for r in rec_all], axis=1) for k in rec_all[0]}
    if len(ys) == 1:
        ys = next(iter(ys.values()))
    return ys, rec
