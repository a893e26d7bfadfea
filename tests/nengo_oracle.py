"""Float64 NumPy oracle of a NIR graph run by Nengo 4.1 after the NIR paper's conversion.

Written from Nengo 4.1.0's source and the NIR paper's conversion scripts (facts and line
numbers in ``kernels/nengo.py`` and ``tests/peers/nengo_runner.py``); nothing is imported from
nirjax or nengo. A plain loop over time, float64 (Nengo's precision); the samples of a batch
are independent rows of every array (Nengo runs one sample per simulation).

The converted network, as Nengo evaluates it within one step:

* every NIR node becomes one unit: Input / Output / Flatten / LI pass their summed input
  through, Affine / Linear compute ``W @ x (+ b)`` (float64, ``W`` promoted), Conv2d a
  zero-padded cross-correlation WITHOUT its bias, SumPool2d window sums WITHOUT its padding,
  LIF / CubaLIF ``nengo.LIF`` populations and IF the paper's ``IF`` type;
* every edge is a connection; an edge into a CubaLIF or an LI carries a ``Lowpass`` synapse,
  every other edge none;
* an edge without a synapse is evaluated in the same step (Nengo orders its operators by
  their signal dependencies), so the units run in topological order of those edges; a cycle
  among them is Nengo's ``BuildError`` ("Input graph has cycles");
* an edge with a synapse delivers the filter state of the previous step; after all units
  ran, each filter takes this step's value of its source: ``X = a*X + b*u``.

The Lowpass coefficients come from the zero-order hold computed here with the oracle's own
matrix exponential (``oracle.expm``) of ``[[-dt/tau, dt], [0, 0]]``: ``a = M[0, 0]``,
``b = M[0, 1]/tau``; Nengo evaluates the same matrix exponential with a Pade approximant, so
``a`` and ``b`` agree to a few units in the last place.

A *backend* supplies the three dynamic pieces (LIF population, IF population, Lowpass
filter); :data:`NUMPY` is this module's own float64 implementation. Tests plug nirjax's
kernels in as another backend to check them on the same networks against real Nengo.
"""

from __future__ import annotations

import math

import nir
import numpy as np

import oracle

SYNAPSE_INTO = ("CubaLIF", "LI")


def _flat(a) -> np.ndarray:
    return np.asarray(a).reshape(-1)


def _shape(value):
    if isinstance(value, dict):
        (value,) = value.values()
    return tuple(int(v) for v in np.asarray(value).reshape(-1))


def cubalif_tau_syn(tau_syn: float, dt: float) -> float:
    """The paper's synapse time constant ``-dt/log(1 - dt/tau_syn)`` (float64)."""
    return -dt / math.log(1.0 - dt / float(tau_syn))


def lowpass_zoh(tau: float, dt: float) -> tuple[float, float]:
    """``(a, b)`` of the zero-order-hold Lowpass ``tau dy/dt = u - y`` (oracle's expm)."""
    m = oracle.expm(np.array([[-dt / tau, dt], [0.0, 0.0]]))
    return float(m[0, 0]), float(m[0, 1] / tau)


# ----------------------------------------------------------------------------- NumPy backend


class NumpyBackend:
    """Float64 NumPy versions of Nengo's LIF, the paper's IF and Nengo's Lowpass."""

    def lif(self, node, dt, batch):
        """A LIF or CubaLIF population of ``batch`` samples: ``(state, step)``;
        ``step(state, inputs)`` returns ``(state, output, voltage)`` with ``inputs`` the list
        of incoming connection values (each ``[batch, N]``)."""
        if isinstance(node, nir.CubaLIF):
            tau_rc = float(_flat(node.tau_mem)[0])
            # w_in * r[0] in the graph's own dtype (float32 files: a float32 product), as
            # NumPy evaluates the paper's expression; then float64
            gain = (np.asarray(node.w_in).reshape(-1) * _flat(node.r)[0]).astype(np.float64)
            gain = gain * np.ones(gain.size) / _flat(node.v_threshold).astype(np.float64)
            amplitude = dt
        else:
            tau_rc = float(_flat(node.tau)[0])
            gain = 1.0 / _flat(node.v_threshold).astype(np.float64)
            amplitude = 1.0
        n = gain.size
        state = (np.zeros((batch, n)), np.zeros((batch, n)))
        tau_ref, min_voltage = 0.0, 0.0

        def step(state, inputs):
            voltage, refractory = state[0].copy(), state[1].copy()
            J = np.zeros((batch, n))
            for x in inputs:
                J = J + gain * x
            refractory = refractory - dt
            delta_t = np.clip(dt - refractory, 0.0, dt)
            voltage = voltage - (J - voltage) * np.expm1(-delta_t / tau_rc)
            fired = voltage > 1.0
            out = fired * (amplitude / dt)
            with np.errstate(divide="ignore", invalid="ignore"):
                t_spike = dt + tau_rc * np.log1p(-(voltage[fired] - 1.0) / (J[fired] - 1.0))
            voltage[voltage < min_voltage] = min_voltage
            voltage[fired] = 0.0
            refractory[fired] = tau_ref + t_spike
            return (voltage, refractory), out, voltage

        return state, step

    def if_(self, node, dt, batch):
        """The paper's IF population: ``voltage += J*dt``, spike above 1, back to 0."""
        gain = 1.0 / _flat(node.v_threshold).astype(np.float64) / dt
        n = gain.size

        def step(voltage, inputs):
            J = np.zeros((batch, n))
            for x in inputs:
                J = J + gain * x
            voltage = voltage + J * dt
            out = (dt / dt) * (voltage > 1.0)
            voltage = np.where(out > 0, 0.0, voltage)
            return voltage, out, voltage

        return np.zeros((batch, n)), step

    def lowpass(self, tau, dt, shape):
        """A Lowpass synapse on one connection: ``(state, read, update)``; ``read(state)`` is
        what the post unit sees this step, ``update(state, u)`` the filter step."""
        a, b = lowpass_zoh(float(tau), dt)
        return np.zeros(shape), (lambda s: s), (lambda s, u: a * s + b * u)


NUMPY = NumpyBackend()


# ----------------------------------------------------------------------------- network


class NengoNet:
    """A flat NIR graph as the paper's Nengo conversion runs it (see the module docstring).

    Args:
        graph: ``nir.NIRGraph`` without nested graphs, one Input and one Output.
        dt: time step (s).
        backend: the LIF / IF / Lowpass implementation (default :data:`NUMPY`).
    """

    def __init__(self, graph, dt: float, backend=None):
        self.graph, self.dt = graph, float(dt)
        self.backend = backend or NUMPY
        self.nodes = dict(graph.nodes)
        self.types = {n: type(node).__name__ for n, node in self.nodes.items()}
        for n, t in self.types.items():
            if t not in ("Input", "Output", "Affine", "Linear", "LIF", "CubaLIF", "IF", "LI",
                         "Flatten", "Conv2d", "SumPool2d"):
                raise ValueError(f"node {n!r}: no Nengo conversion for {t}")
        self.edges = [tuple(e) for e in graph.edges]
        self.filtered = [e for e in self.edges if self.types[e[1]] in SYNAPSE_INTO]
        self.order = self._order()
        (self.input,) = [n for n, t in self.types.items() if t == "Input"]
        (self.output,) = [n for n, t in self.types.items() if t == "Output"]
        self.in_shape = self._shapes()

    def _order(self):
        direct = [e for e in self.edges if e not in self.filtered]
        indeg = {n: 0 for n in self.nodes}
        for _, d in direct:
            indeg[d] += 1
        ready = [n for n in self.nodes if indeg[n] == 0]
        order = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for s, d in direct:
                if s == n:
                    indeg[d] -= 1
                    if indeg[d] == 0:
                        ready.append(d)
        if len(order) != len(self.nodes):
            raise ValueError("cycle without a Lowpass synapse (Nengo: 'Input graph has cycles')")
        return order

    def _shapes(self):
        """Input shape of every node, propagated in evaluation order (cycles: neurons know
        their own size)."""
        out = {self.input: _shape(self.nodes[self.input].input_type)}
        for n, node in self.nodes.items():
            for f in ("tau", "tau_mem", "r"):
                if self.types[n] in ("LIF", "CubaLIF", "IF", "LI") and hasattr(node, f):
                    out[n] = np.shape(getattr(node, f))
                    break
        ins = {}
        for n in self.order:
            node, t = self.nodes[n], self.types[n]
            if n in out:  # the Input, and neurons (their input has their own shape)
                ins[n] = tuple(out[n])
                continue
            ins[n] = tuple(out[next(s for s, d in self.edges if d == n and s in out)])
            if t in ("Affine", "Linear"):
                out[n] = (node.weight.shape[0],)
            elif t == "Conv2d":
                out[n] = oracle.conv(np.zeros(ins[n]), node.weight, np.zeros(node.weight.shape[0]),
                                     node.stride, node.padding, 1, 1).shape
            elif t == "SumPool2d":
                out[n] = oracle.sum_pool(np.zeros(ins[n]), node.kernel_size, node.stride, 0).shape
            elif t == "Flatten":
                out[n] = (int(np.prod(ins[n])),)
            else:
                out[n] = ins[n]
        return ins

    def run(self, xs, record=()):
        """Simulate ``xs`` ``[T, B, *in_shape]``; returns ``(out [T, B, n_out], {name: [T, B,
        N]})`` with the membrane (``voltage``) of recorded neurons, or an LI's output."""
        dt, be = self.dt, self.backend
        xs = np.asarray(xs, np.float64)
        batch = xs.shape[1]
        neurons, state = {}, {}
        for n, t in self.types.items():
            if t in ("LIF", "CubaLIF"):
                state[n], neurons[n] = be.lif(self.nodes[n], dt, batch)
            elif t == "IF":
                state[n], neurons[n] = be.if_(self.nodes[n], dt, batch)
        filters = {}
        for e in self.filtered:
            s, d = e
            node = self.nodes[d]
            tau = (cubalif_tau_syn(_flat(node.tau_syn)[0], dt) if self.types[d] == "CubaLIF"
                   else float(_flat(node.tau)[0]))
            size = int(np.prod(np.shape(node.tau_mem if self.types[d] == "CubaLIF" else node.tau)))
            filters[e] = list(be.lowpass(tau, dt, (batch, size)))
        outs, recs = [], {n: [] for n in record}
        for x in xs:
            vals = {}
            for n in self.order:
                ins = [filters[(s, d)][1](filters[(s, d)][0]) if (s, d) in filters else vals[s]
                       for s, d in self.edges if d == n]
                vals[n], v = self._unit(n, x, ins, neurons, state)
                if n in recs:
                    recs[n].append(np.asarray(v, np.float64).reshape(batch, -1))
            for e, f in filters.items():
                f[0] = f[2](f[0], vals[e[0]])
            outs.append(np.asarray(vals[self.output], np.float64))
        return np.array(outs), {n: np.array(v) for n, v in recs.items()}

    def _unit(self, n, x, ins, neurons, state):
        t, node = self.types[n], self.nodes[n]
        batch = x.shape[0]
        if t == "Input":
            return np.asarray(x).reshape(batch, -1), None
        if t in ("LIF", "CubaLIF", "IF"):
            state[n], out, v = neurons[n](state[n], ins)
            return np.asarray(out, np.float64), v
        total = 0.0
        for v in ins:
            total = total + v
        total = np.asarray(total, np.float64)
        total = np.broadcast_to(total, (batch,) + total.shape[-1:])
        if t in ("Output", "Flatten", "LI"):
            return total, total
        if t in ("Affine", "Linear"):
            w = np.asarray(node.weight, np.float64)
            y = np.stack([w @ row for row in total])  # Nengo's Node: W @ x for one sample
            if t == "Affine":
                y = y + np.asarray(node.bias, np.float64)
            return y, None
        images = total.reshape((batch,) + tuple(self.in_shape[n]))
        if t == "Conv2d":
            w = node.weight
            y = [oracle.conv(img, w, np.zeros(w.shape[0]), node.stride, node.padding, 1, 1)
                 for img in images]
        else:  # SumPool2d: the paper's identity convolution ignores the node's padding
            y = [oracle.sum_pool(img, node.kernel_size, node.stride, 0) for img in images]
        return np.stack(y).reshape(batch, -1), None


def run_batch(graph, xs, dt, record=(), backend=None):
    """``NengoNet(graph, dt, backend).run(xs, record)`` for ``xs`` ``[T, B, ...]``; returns
    ``(out [T, B, n_out], {name: [T, B, N]})``."""
    return NengoNet(graph, dt, backend).run(xs, record)
