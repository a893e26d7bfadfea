"""Run NIR graphs in Nengo 4.1, converted the way the NIR paper converted them.

Imported by ``tests/peers/runner.py`` (framework ``nengo``) inside the ``nengo`` peer
environment (``tests/peers/setup_peers.sh``); it needs ``nengo`` and ``nir``, never nirjax.

Nengo has no ``from_nir``: the NIR paper (Pedersen et al., Nat. Commun. 2024) wrote one
converter per task in the NIR repository (github.com/neuromorphs/NIR):
``paper/01_lif/lif_nengo.ipynb`` (LIF task), ``paper/03_rnn/nir_to_nengo.py`` (Braille) and
``paper/02_cnn/nengo_import.py`` (CNN). :func:`nir_to_nengo` below is written from their
conventions (not copied), generalised where the scripts hard-code the paper graphs' node names
and shapes:

========== ==================================================================================
NIR node   Nengo object
========== ==================================================================================
Input      passthrough ``Node(None, size_in=prod(shape))``
Output     passthrough ``Node``; its value is what the network outputs
Affine     ``Node(lambda t, x: W @ x + b)`` (float64: ``W`` float32 is promoted)
Linear     ``Node(lambda t, x: W @ x)``
LIF        ``Ensemble(N, 1, LIF(tau_rc=tau[0], tau_ref=0, amplitude=1), gain=1/v_threshold,
           bias=0)``, voltage starting at 0; spikes are ``1/dt``. Needs ``r == 1`` and
           ``v_leak == 0`` (the scripts assert it).
CubaLIF    ``Ensemble(N, 1, LIF(tau_rc=tau_mem[0], tau_ref=0, amplitude=dt),
           gain=w_in*r[0]/v_threshold, bias=0)`` (spikes of 1) and a ``Lowpass(tau_syn')``
           synapse on every incoming connection, ``tau_syn' = -dt/log(1 - dt/tau_syn[0])``.
           Needs uniform ``r``, ``v_threshold``, ``tau_syn``, ``tau_mem`` and ``v_leak == 0``.
IF         ``Ensemble`` of the paper's own ``IF`` neuron type (:class:`IF` below; amplitude
           ``dt``), ``gain = 1/v_threshold/dt``; needs ``r == 1``.
LI         passthrough ``Node`` with a ``Lowpass(tau[0])`` synapse on incoming connections
           (``r`` and ``v_leak`` are not read).
Flatten    passthrough ``Node``.
Conv2d     a sub-network: a zero-padding ``Node`` and a ``nengo.Convolution`` transform
           (``padding="valid"`` on the padded input, channels first). The bias is NOT used.
SumPool2d  a ``nengo.Convolution`` with an identity kernel per channel, ``padding="valid"``
           (the node's ``padding`` is not used).
========== ==================================================================================

Every NIR edge becomes one ``nengo.Connection`` with ``synapse=None``, except edges into a
CubaLIF or an LI (the Lowpass above). Other node types (and nested NIRGraphs) are refused, as
the paper scripts refuse them.

Two departures from a literal transcription, both to reproduce the paper's numbers: the
scripts' ``np.product`` (removed in NumPy 2) is ``np.prod``, and ``tau_syn[0]`` is turned into
a Python float before computing ``tau_syn'``: the paper ran NumPy 1, where
``dt / np.float32(...)`` is computed in float64; NumPy 2 (NEP 50) would compute it in float32.

The network is built once per job; each sample of the batch is one run after
``Simulator.reset()`` (the paper built a new network per sample: same initial state).
Input ``x[t]`` is presented at simulator step ``t + 1`` (time ``(t + 1)*dt``), which is where
``PresentInput(x, presentation_time=dt)`` of the paper puts it; probe row ``t`` is the state
after that step.
"""

from __future__ import annotations

import numpy as np


def _need(condition, node, message):
    """The paper scripts ``assert`` their preconditions; raise a readable error instead."""
    if not condition:
        raise ValueError(f"node {node!r}: the NIR paper's Nengo conversion requires {message}")


def _shape(value):
    if isinstance(value, dict):  # nir 1.x input_type / output_type: {"input": shape}
        (value,) = value.values()
    return tuple(int(v) for v in np.asarray(value).reshape(-1))


def if_neuron_type():
    """The paper's ``IF`` neuron type (a ``nengo.SpikingRectifiedLinear`` subclass).

    Update per step, as in paper/03_rnn/nir_to_nengo.py and paper/02_cnn/nengo_import.py:
    ``voltage += J*dt``; ``output = (amplitude/dt) * (voltage > 1)``; ``voltage = 0`` where
    the output is nonzero. No rectification, no refractory period.
    """
    import nengo

    class IF(nengo.SpikingRectifiedLinear):
        def step(self, dt, J, output, voltage):
            voltage += J * dt
            output[:] = (self.amplitude / dt) * np.where(voltage > 1, 1, 0)
            voltage[output > 0] = 0

    return IF


def node_shapes(graph):
    """Input and output shape of every node (the paper scripts hard-code them), propagated
    along the edges from the Input node(s) and the nodes whose parameters fix a shape."""
    import nir

    out_shape = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            out_shape[name] = _shape(node.input_type)
        elif isinstance(node, (nir.LIF, nir.LI)):
            out_shape[name] = np.shape(node.tau)
        elif isinstance(node, nir.CubaLIF):
            out_shape[name] = np.shape(node.tau_mem)
        elif isinstance(node, nir.IF):
            out_shape[name] = np.shape(node.r)
        elif isinstance(node, (nir.Affine, nir.Linear)):
            out_shape[name] = (int(node.weight.shape[0]),)
    in_shape, changed = {}, True
    while changed:
        changed = False
        for s, d in graph.edges:
            if s not in out_shape or d in in_shape:
                continue
            shape = in_shape[d] = tuple(out_shape[s])
            changed = True
            node = graph.nodes[d]
            if d in out_shape:
                continue
            if isinstance(node, nir.Conv2d):
                kh, kw = node.weight.shape[2:]
                (ph, pw), (sh, sw) = np.asarray(node.padding), np.asarray(node.stride)
                out_shape[d] = (int(node.weight.shape[0]), int((shape[1] + 2 * ph - kh) // sh + 1),
                                int((shape[2] + 2 * pw - kw) // sw + 1))
            elif isinstance(node, nir.SumPool2d):  # padding not used (as in the paper)
                (kh, kw), (sh, sw) = np.asarray(node.kernel_size), np.asarray(node.stride)
                out_shape[d] = (shape[0], int((shape[1] - kh) // sh + 1),
                                int((shape[2] - kw) // sw + 1))
            elif isinstance(node, nir.Flatten):
                out_shape[d] = (int(np.prod(shape)),)
            else:
                out_shape[d] = shape
    return in_shape, out_shape


def nir_to_nengo(graph, dt, probe_voltage=(), lif_options=None):
    """Build a ``nengo.Network`` from a flat NIR graph with the NIR paper's conventions.

    Args:
        graph: a ``nir.NIRGraph`` without nested graphs.
        dt: the simulator time step (the CubaLIF synapse and IF gain depend on it, as in
            the paper scripts).
        probe_voltage: neuron node names whose membrane (Nengo's ``voltage``, i.e. ``v /
            v_threshold``) is probed; LI nodes give their filtered output instead.
        lif_options: extra ``nengo.LIF`` arguments for every LIF population (``tau_ref``,
            ``min_voltage``): NOT the paper's conversion; the tests use it to check the
            general LIF kernel (refractory period) against Nengo.

    Returns:
        ``(net, input_node, output_node, probes)`` with ``probes`` a dict name -> Probe
        (the output's under ``None``).
    """
    import nengo
    import nir

    in_shape, out_shape = node_shapes(graph)
    IF = if_neuron_type()
    lif_options = dict(lif_options or {})
    pre, post, synapse, kinds = {}, {}, {}, {}
    net = nengo.Network(seed=0)
    with net:
        for name, node in graph.nodes.items():
            kinds[name] = type(node).__name__
            if isinstance(node, nir.Input):
                pre[name] = nengo.Node(None, size_in=int(np.prod(_shape(node.input_type))),
                                       label=f"Input {name}")
            elif isinstance(node, nir.Output):
                post[name] = nengo.Node(None, size_in=int(np.prod(_shape(node.output_type))),
                                        label=f"Output {name}")
            elif isinstance(node, nir.LIF):
                _need(np.all(node.r == 1), name, "LIF r == 1")
                _need(np.all(node.v_leak == 0), name, "LIF v_leak == 0")
                n = int(np.asarray(node.tau).size)
                ens = nengo.Ensemble(
                    n, 1, label=f"LIF {name}",
                    neuron_type=nengo.LIF(**dict(dict(
                        tau_rc=np.asarray(node.tau).reshape(-1)[0], tau_ref=0,
                        initial_state={"voltage": nengo.dists.Choice([0])}), **lif_options)),
                    gain=np.ones(n) / np.asarray(node.v_threshold).reshape(-1), bias=np.zeros(n))
                pre[name] = post[name] = ens.neurons
            elif isinstance(node, nir.CubaLIF):
                flat = {f: np.asarray(getattr(node, f)).reshape(-1)
                        for f in ("r", "v_leak", "v_threshold", "tau_syn", "tau_mem", "w_in")}
                for f in ("r", "v_threshold", "tau_syn", "tau_mem"):
                    _need(np.all(flat[f] == flat[f][0]), name, f"one CubaLIF {f} per layer")
                _need(np.all(flat["v_leak"] == 0), name, "CubaLIF v_leak == 0")
                tau_syn = float(flat["tau_syn"][0])  # NumPy-1 arithmetic (see module doc)
                tau_syn = -dt / np.log(1 - dt / tau_syn)
                n = flat["tau_mem"].size
                ens = nengo.Ensemble(
                    n, 1, label=f"CubaLIF {name}",
                    neuron_type=nengo.LIF(**dict(dict(
                        tau_ref=0, tau_rc=flat["tau_mem"][0], amplitude=dt,
                        initial_state={"voltage": nengo.dists.Choice([0])}), **lif_options)),
                    gain=flat["w_in"] * flat["r"][0] * np.ones(n) / flat["v_threshold"],
                    bias=np.zeros(n))
                pre[name] = post[name] = ens.neurons
                synapse[name] = nengo.synapses.Lowpass(tau_syn)
            elif isinstance(node, nir.IF):
                _need(np.all(node.r == 1), name, "IF r == 1")
                n = int(np.asarray(node.r).size)
                ens = nengo.Ensemble(
                    n, 1, label=f"IF {name}",
                    neuron_type=IF(initial_state={"voltage": nengo.dists.Choice([0])},
                                   amplitude=dt),
                    gain=np.ones(n) / np.asarray(node.v_threshold).reshape(-1) / dt,
                    bias=np.zeros(n))
                pre[name] = post[name] = ens.neurons
            elif isinstance(node, nir.LI):
                n = int(np.asarray(node.tau).size)
                filt = nengo.Node(None, size_in=n, label=f"LI {name}")
                pre[name] = post[name] = filt
                synapse[name] = nengo.synapses.Lowpass(np.asarray(node.tau).reshape(-1)[0])
            elif isinstance(node, (nir.Affine, nir.Linear)):
                w = node.weight
                b = node.bias if isinstance(node, nir.Affine) else None
                fn = ((lambda t, x, w=w, b=b: w @ x + b) if b is not None
                      else (lambda t, x, w=w: w @ x))
                pre[name] = post[name] = nengo.Node(fn, size_in=w.shape[1], size_out=w.shape[0],
                                                    label=f"{kinds[name]} {name}")
            elif isinstance(node, nir.Flatten):
                pre[name] = post[name] = nengo.Node(None, size_in=int(np.prod(in_shape[name])),
                                                    label=f"Flatten {name}")
            elif isinstance(node, nir.Conv2d):
                _need(int(np.prod(np.asarray(node.dilation))) == 1 and int(node.groups) == 1,
                      name, "Conv2d dilation 1 and groups 1")
                pre[name], post[name] = _conv(nengo, name, node, in_shape[name])
            elif isinstance(node, nir.SumPool2d):
                pre[name], post[name] = _sumpool(nengo, name, node, in_shape[name])
            else:
                raise ValueError(f"node {name!r}: the NIR paper's Nengo conversion has no rule "
                                 f"for {type(node).__name__}")
        for s, d in graph.edges:
            if pre[s].size_out != post[d].size_in:
                raise ValueError(f"edge {s!r} -> {d!r}: size {pre[s].size_out} does not match "
                                 f"{post[d].size_in}")
            nengo.Connection(pre[s], post[d], synapse=synapse.get(d))
        inputs = [n for n, k in kinds.items() if k == "Input"]
        outputs = [n for n, k in kinds.items() if k == "Output"]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"one Input and one Output expected, got {inputs} / {outputs}")
        probes = {None: nengo.Probe(post[outputs[0]])}
        for name in probe_voltage:
            if kinds[name] in ("LIF", "CubaLIF", "IF"):
                probes[name] = nengo.Probe(pre[name], "voltage")
            else:
                probes[name] = nengo.Probe(pre[name])
    return net, pre[inputs[0]], probes


def _conv(nengo, name, node, shape):
    """Conv2d as in paper/02_cnn/nengo_import.py: pad with zeros, then a valid convolution."""
    (ph, pw) = (int(p) for p in np.asarray(node.padding).reshape(-1))
    padded = np.pad(np.ones(shape), [(0, 0), (ph, ph), (pw, pw)])
    kernel = np.transpose(node.weight, (2, 3, 1, 0))  # OIHW -> (kh, kw, in, out)
    with nengo.Network(label=f"Conv2d {name}"):
        conv = nengo.Convolution(n_filters=node.weight.shape[0], input_shape=padded.shape,
                                 channels_last=False, init=kernel,
                                 strides=tuple(int(s) for s in np.asarray(node.stride)),
                                 padding="valid", kernel_size=tuple(node.weight.shape[2:]))
        inp = nengo.Node(None, size_in=int(np.prod(shape)), label=f"{name}.in")
        pad = nengo.Node(None, size_in=padded.size, label=f"{name}.pad")
        nengo.Connection(inp, pad[np.flatnonzero(padded.reshape(-1) > 0)], synapse=None)
        out = nengo.Node(None, size_in=conv.size_out, label=f"{name}.out")
        nengo.Connection(pad, out, synapse=None, transform=conv)
    return out, inp


def _sumpool(nengo, name, node, shape):
    """SumPool2d as in paper/02_cnn/nengo_import.py: a per-channel identity convolution."""
    channels = shape[0]
    size = tuple(int(k) for k in np.asarray(node.kernel_size))
    kernel = np.broadcast_to(np.eye(channels), size + (channels, channels)).copy()
    with nengo.Network(label=f"SumPool2d {name}"):
        conv = nengo.Convolution(n_filters=channels, input_shape=tuple(shape),
                                 channels_last=False, init=kernel,
                                 strides=tuple(int(s) for s in np.asarray(node.stride)),
                                 padding="valid", kernel_size=size)
        inp = nengo.Node(None, size_in=int(np.prod(shape)), label=f"{name}.in")
        out = nengo.Node(None, size_in=conv.size_out, label=f"{name}.out")
        nengo.Connection(inp, out, synapse=None, transform=conv)
    return out, inp


def run_nengo(graph, x, job):
    """Simulate ``x`` (``[T, B, *in_shape]``) sample by sample; returns ``(result,
    versions)`` with ``out`` ``[T, B, *out_shape]`` and ``v:<name>`` ``[T, B, N]``."""
    import nengo

    dt = float(job["dt"])
    record = job.get("record", [])
    net, inp, probes = nir_to_nengo(graph, dt, probe_voltage=record,
                                    lif_options=job.get("nengo_lif"))
    T, B = x.shape[:2]
    current = {"x": None}
    with net:
        # the paper: Node(PresentInput(x, presentation_time=dt)), i.e. x[round(t/dt) - 1]
        stim = nengo.Node(lambda t: current["x"][int((t - dt) / dt + 1e-7)],
                          size_out=int(np.prod(x.shape[2:])), label="stim")
        nengo.Connection(stim, inp, synapse=None)
    outs, recs = [], {n: [] for n in record}
    with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
        for b in range(B):
            current["x"] = np.asarray(x[:, b], np.float64).reshape(T, -1)
            sim.reset()
            sim.run_steps(T)
            outs.append(np.asarray(sim.data[probes[None]]))
            for n in record:
                recs[n].append(np.asarray(sim.data[probes[n]]))
    out = np.stack(outs, axis=1)
    out = out.reshape((T, B) + tuple(job.get("out_shape") or out.shape[2:]))
    result = {"out": out}
    result.update({f"v:{n}": np.stack(v, axis=1) for n, v in recs.items()})
    return result, {"nengo": nengo.__version__, "numpy": np.__version__}
