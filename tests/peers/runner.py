"""Run NIR graphs in a peer framework (Norse, snnTorch, Spyx, Sinabs, Rockpool, Nengo).

Launched by ``tests/peers/harness.py`` with the Python of a peer environment made by
``tests/peers/setup_peers.sh``; it imports the peer package, never nirjax. Usage::

    python runner.py FRAMEWORK JOBS_DIR

``JOBS_DIR/jobs.json`` lists jobs; each names a graph (``<id>.graph.json`` + ``.npz``, a
portable description rebuilt here with this environment's ``nir`` version, or a ``.nir``
path read with ``nir.read``) and an input ``<id>.x.npy`` of shape ``[T, B, *in_shape]``.
For every job this writes ``<id>.out.npz`` with ``out`` (the graph output, ``[T, B, ...]``)
and ``v:<node>`` (a neuron's membrane, in the framework's own units, where recorded; for
Rockpool also ``z:<node>``, the layer's spikes, and ``d:<node>:alpha|beta``, the float32
decays it used; ``job["record_all"]`` records every neuron layer), or
``<id>.error.txt`` with the exception. ``versions.json`` holds the package versions.

Per framework (everything else is the package's own code, called as its users call it):

* ``norse``: ``norse.torch.from_nir(graph, dt, reset_method)``, stepped once per time step
  with the state the executor returns.
* ``snntorch``: ``snntorch.import_from_nir(graph)`` and one call per step. Recurrent graphs
  (``job["snntorch_path"] == "paper"``): snnTorch's own converter through the GraphExecutor
  path snnTorch used until 0.9 (``nirtorch.load`` with ``_nir_to_snntorch_module`` after
  ``_replace_rnn_subgraph_with_nirgraph``), with ``RSynaptic.forward`` replaced by the
  semantics of snnTorch commit a204457 (the code the NIR paper ran): explicit state, zero
  state on the first call, and the same-step reset applied to the membrane it returns; and
  ``RLeaky.forward`` wrapped so that NIRTorch hands its whole state back (see
  ``_rleaky_state_forward``).
* ``spyx1``: ``spyx.nir.from_nir(graph, x, dt, return_all_states=True)`` (Spyx 1.0, nnx).
* ``spyx01``: ``spyx.nir.from_nir(graph, x, dt)`` of Spyx 0.1 (haiku), with the two import
  bugs of every 0.1 release worked around: ``nir.Sequence`` is defined (nir 1.x removed it)
  and an Affine/Linear before a LIF gets the weight scale the code intends (``dt/tau``)
  instead of raising ``UnboundLocalError`` on ``w_in``.

A job with ``"released": true`` runs without the workaround (Spyx 0.1, Rockpool) to pin the
released package's behaviour; for snnTorch, ``"snntorch_path": "released"`` calls
``import_from_nir`` on a recurrent graph.
* ``sinabs``: ``sinabs.from_nir(graph, batch_size=B)``, every LIF's ``tau_mem`` divided by
  ``dt`` (Sinabs counts time in steps; the NIR paper did the same), input ``[B*T, ...]``.
* ``rockpool``: ``rockpool.nn.modules.from_nir(graph)`` after aliasing ``nir.LIF.tau_mem`` to
  ``tau`` (its importer reads a field ``nir.LIF`` does not have); one call on ``[B, T, N]``.
  ``from_nir`` builds an LI as ``ExpSynTorch(tau=tau.int())`` (every tau below 1 s becomes 0,
  a one-element LI raises ``AttributeError``): a job with ``"li_as_exported": true`` builds
  each LI as the ``ExpSynTorch`` Rockpool exports as LI instead, with the graph's ``tau`` and
  the job's ``dt``. ``"decay_args": true`` also returns ``x:decay_arg:<module>``, the argument
  of ``exp`` in Rockpool's own ``tau_to_decay(dt, tau_mem)`` (evaluated with ``torch.exp``
  replaced by the identity), and ``x:dt:<module>``, the module's ``dt``.
* ``nengo``: Nengo has no importer; the graph is converted with the NIR paper's conventions
  (``nengo_runner.py`` beside this file) and run by ``nengo.Simulator``, one sample at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import json
import os
import sys
import traceback

import numpy as np


# ----------------------------------------------------------------------------- graphs


def build_graph(desc: dict, arrays, prefix: str = ""):
    """Rebuild a NIR graph from the portable description with this environment's ``nir``."""
    import nir

    nodes = {}
    for name, spec in desc["nodes"].items():
        key = f"{prefix}{name}"
        if spec["type"] == "NIRGraph":
            nodes[name] = build_graph(spec, arrays, prefix=f"{key}/")
            continue
        cls = getattr(nir, spec["type"])
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) \
            else set(inspect.signature(cls).parameters)
        kwargs = {}
        for field, kind in spec["fields"].items():
            if field not in fields:  # e.g. v_reset for nir < 1.0.6: the package drops it
                continue
            if kind == "array":
                kwargs[field] = arrays[f"{key}::{field}"]
            else:
                kwargs[field] = kind["value"]
        nodes[name] = cls(**kwargs)
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in desc["edges"]])


def load_graph(job, jobs_dir):
    import nir

    if job["graph"].endswith(".nir"):
        if job.get("type_check") is False:  # e.g. lif_rockpool.nir, which nir.read refuses
            return nir.read(job["graph"], type_check=False)
        return nir.read(job["graph"])
    with open(os.path.join(jobs_dir, job["graph"])) as f:
        desc = json.load(f)
    arrays = np.load(os.path.join(jobs_dir, job["graph"].replace(".graph.json", ".graph.npz")))
    return build_graph(desc, arrays)


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


# ----------------------------------------------------------------------------- Norse


def _last_v(state):
    """The membrane ``v`` of a Norse cell state (for CubaLIF, the LIF part's, which comes
    after the synapse's in the nested state tuples)."""
    found = None
    stack = [state]
    while stack:
        s = stack.pop(0)
        if hasattr(s, "v") and hasattr(s, "_fields"):
            found = s.v
        elif isinstance(s, (tuple, list)):
            stack = list(s) + stack
    return found


def run_norse(graph, x, job):
    import torch
    import norse
    import norse.torch
    from norse.torch.functional.reset import reset_subtract, reset_value

    reset = reset_subtract if job.get("reset") == "subtract" else reset_value
    record = job.get("record", [])
    outs, recs = [], {n: [] for n in record}
    samples = [x[:, b:b + 1] for b in range(x.shape[1])] if job.get("per_sample") else [x]
    for xs in samples:
        module = norse.torch.from_nir(graph, dt=job["dt"], reset_method=reset)
        state, out, rec = None, [], {n: [] for n in record}
        with torch.no_grad():
            for x_t in torch.from_numpy(xs):
                z, state = module(x_t, state)
                out.append(_np(z).reshape((xs.shape[1],) + _np(z).shape[-len(job["out_shape"]):]))
                for n in record:
                    rec[n].append(_np(_last_v(state.state[n.replace(".", "_")])))
        outs.append(np.array(out))
        for n in record:
            recs[n].append(np.array(rec[n]))
    result = {"out": np.concatenate(outs, axis=1)}
    for n in record:
        result[f"v:{n}"] = np.concatenate(recs[n], axis=1)
    return result, {"norse": norse.__version__}


# ----------------------------------------------------------------------------- snnTorch


def _rsynaptic_paper_forward(self, input_, spk=None, syn=None, mem=None):
    """RSynaptic as in snnTorch commit a204457 (Oct 2023), reset_delay=False.

    Written from the equations of that commit: state passed explicitly (zeros on the first
    call); reset flag from the carried membrane; current ``syn = alpha*syn + input +
    recurrent(spk)``; membrane ``mem = beta*mem + syn``; the reset for the flag, the spike
    test, then the same-step reset of the returned membrane for (spike - flag).
    """
    import torch

    if spk is None:
        spk, syn, mem = (torch.zeros_like(input_) for _ in range(3))
    flag = self.mem_reset(mem)
    syn = self.alpha.clamp(0, 1) * syn + input_ + self.recurrent(spk)
    mem = self.beta.clamp(0, 1) * mem + syn
    subtract = int(self.reset_mechanism_val) == 0
    zero = int(self.reset_mechanism_val) == 1
    if subtract:
        mem = mem - flag * self.threshold
    elif zero:
        mem = mem - flag * mem
    spk = self.fire(mem)
    if not self.reset_delay:
        again = spk / self.graded_spikes_factor - flag
        if subtract:
            mem = mem - again * self.threshold
        elif zero:
            mem = mem - again * mem
    return spk, syn, mem


def _rleaky_state_forward(self, input_, spk=None, mem=None):
    """RLeaky.forward with its state handed back complete.

    NIRTorch's GraphExecutor stores a stateful snnTorch module's outputs after the first as
    its state and passes them back positionally; RLeaky returns ``(spk, mem)``, so ``mem``
    comes back as the ``spk`` argument and the recurrent weight acts on the membrane. This
    wrapper keeps snnTorch's own update (``state_function``, ``fire``, ``mem_reset``) and
    returns ``(spk, spk, mem)`` so that ``(spk, mem)`` comes back in place.
    """
    import torch

    self.spk = torch.zeros_like(input_) if spk is None else spk
    self.mem = torch.zeros_like(input_) if mem is None else mem
    self.reset = self.mem_reset(self.mem)
    self.mem = self.state_function(input_)
    self.spk = self.fire(self.mem)
    if not self.reset_delay:
        again = self.spk / self.graded_spikes_factor - self.reset
        if int(self.reset_mechanism_val) == 0:
            self.mem = self.mem - again * self.threshold
        elif int(self.reset_mechanism_val) == 1:
            self.mem = self.mem - again * self.mem
    return self.spk, self.spk, self.mem


def run_snntorch(graph, x, job):
    import torch
    import snntorch

    record = job.get("record", [])
    released = snntorch.RSynaptic.forward, snntorch.RLeaky.forward
    try:
        return _run_snntorch(graph, x, job, record)
    finally:
        snntorch.RSynaptic.forward, snntorch.RLeaky.forward = released


def _run_snntorch(graph, x, job, record):
    import torch
    import snntorch

    if job.get("snntorch_path") == "paper":
        import nirtorch
        from snntorch.import_nir import (_nir_to_snntorch_module,
                                         _replace_rnn_subgraph_with_nirgraph)

        snntorch.RSynaptic.forward = _rsynaptic_paper_forward
        snntorch.RLeaky.forward = _rleaky_state_forward
        with contextlib.redirect_stdout(io.StringIO()):
            graph = _replace_rnn_subgraph_with_nirgraph(graph)
            module = nirtorch.load(graph, _nir_to_snntorch_module)
        if job.get("reset") == "subtract":  # snnTorch's own subtraction (its models' default)
            for m in module.modules():
                if isinstance(m, (snntorch.Synaptic, snntorch.RSynaptic, snntorch.Leaky,
                                  snntorch.RLeaky)):
                    m.reset_mechanism = "subtract"
                    if hasattr(m, "_base_sub"):
                        m.state_function = m._base_sub
        state, out, rec = None, [], {n: [] for n in record}
        with torch.no_grad():
            for x_t in torch.from_numpy(x):
                z, state = module(x_t, state)
                out.append(_np(z))
                for n in record:
                    s = state.state[n]
                    rec[n].append(_np(s[-1]))  # (spk, syn, mem) / (spk, mem): mem is last
        result = {"out": np.array(out)}
        result.update({f"v:{n}": np.array(v) for n, v in rec.items()})
        return result, {"snntorch": snntorch.__version__, "path": "paper RSynaptic"}
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):
        module = import_from_nir(graph)
    neurons = {n: getattr(module, n) for n in record}
    for m in module.modules():
        if hasattr(m, "reset_mem"):
            m.reset_mem()
    out, rec = [], {n: [] for n in record}
    with torch.no_grad():
        for x_t in torch.from_numpy(x):
            z = module(x_t)
            while isinstance(z, tuple):  # (output, state); an IF's Leaky returns (spk, mem)
                z = z[0]
            out.append(_np(z))
            for n, m in neurons.items():
                rec[n].append(_np(m.mem))
    result = {"out": np.array(out)}
    result.update({f"v:{n}": np.array(v) for n, v in rec.items()})
    return result, {"snntorch": snntorch.__version__}


# ----------------------------------------------------------------------------- Spyx


@contextlib.contextmanager
def _spyx01_patches(enabled=True):
    """Work around Spyx 0.1's import bugs for the duration of one job."""
    import nir
    import jax.numpy as jnp
    import spyx.nir as sn

    if not enabled:
        yield
        return
    had_sequence = hasattr(nir, "Sequence")
    if not had_sequence:
        nir.Sequence = type("Sequence", (), {})  # referenced by spyx 0.1, removed in nir 1.x
    original = sn._nir_node_to_spyx_params

    def params(node_pair, dt):
        node, nxt = node_pair
        if isinstance(node, (nir.Affine, nir.Linear)) and isinstance(nxt, nir.LIF):
            scale = dt / nxt.tau  # what the code computes before failing on the unset w_in
            p = {"w": jnp.array(node.weight) * scale}
            if isinstance(node, nir.Affine):
                p["b"] = jnp.array(node.bias) * scale
            return p
        return original(node_pair, dt)

    sn._nir_node_to_spyx_params = params
    try:
        yield
    finally:
        sn._nir_node_to_spyx_params = original
        if not had_sequence:
            del nir.Sequence


def run_spyx(graph, x, job, version):
    import jax.numpy as jnp
    import spyx
    import spyx.nir

    order = job["chain"]  # the chain's node names, "input" to "output"
    record = job.get("record", [])
    if version == "0.1":
        xb = jnp.asarray(np.moveaxis(x, 0, 1))  # haiku API: batch-major [B, T, ...]
        with _spyx01_patches(not job.get("released")):
            snn, params = spyx.nir.from_nir(graph, xb, dt=job["dt"], return_all_states=True)
            out, states = snn.apply(params, xb)
        result = {"out": np.moveaxis(np.asarray(out), 0, 1)}
        layers = [n for n in order if job["types"][n] in ("LIF", "IF", "CubaLIF")]
        for n in record:
            v = np.asarray(states[layers.index(n)])
            if job["types"][n] == "CubaLIF":
                v = v[..., : v.shape[-1] // 2]
            result[f"v:{n}"] = np.moveaxis(v, 0, 1)
    else:
        model, (out, states) = spyx.nir.from_nir(graph, jnp.asarray(_to_channels_last(x)),
                                                 dt=job["dt"], return_all_states=True)
        result = {"out": np.asarray(out)}
        layers = [n for n in order[1:-1] if job["types"][n] != "Affine_rec"]
        for n in record:
            v = np.asarray(states[layers.index(n)])
            if job["types"][n] == "CubaLIF":
                v = v[..., : v.shape[-1] // 2]
            result[f"v:{n}"] = v
    return result, {"spyx": getattr(spyx, "__version__", version)}


def _to_channels_last(x):
    return np.moveaxis(x, 2, -1) if x.ndim == 5 else x


# ----------------------------------------------------------------------------- Sinabs


def run_sinabs(graph, x, job):
    import torch
    import sinabs
    import sinabs.layers as sl

    T, B = x.shape[:2]
    module = sinabs.from_nir(graph, batch_size=B)
    lifs = [m for m in module.modules() if isinstance(m, sl.LIFSqueeze)]
    for m in lifs:
        m.tau_mem.data /= job["dt"]  # Sinabs reads tau in steps (the NIR paper did this too)
    record = job.get("record", [])
    for n in record:
        getattr(module, n).record_states = True
    xs = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, 1)).reshape((B * T,) + x.shape[2:]))
    with torch.no_grad():
        out = module(xs)
    out = out[0] if isinstance(out, tuple) else out
    out = _np(out).reshape((B, T) + _np(out).shape[1:])
    result = {"out": np.moveaxis(out, 0, 1)}
    for n in record:
        v = _np(getattr(module, n).recordings["v_mem"])
        result[f"v:{n}"] = np.moveaxis(v.reshape((B, T, -1)), 0, 1)
    return result, {"sinabs": sinabs.__version__}


# ----------------------------------------------------------------------------- Rockpool


def run_rockpool(graph, x, job):
    import warnings

    import nir
    import torch
    import rockpool
    from rockpool.nn.modules import from_nir

    import rockpool.nn.modules.torch.nir as rockpool_nir
    from rockpool.nn.modules.torch import ExpSynTorch

    alias = not job.get("released") and not hasattr(nir.LIF, "tau_mem")
    if alias:
        nir.LIF.tau_mem = property(lambda self: self.tau)  # from_nir reads node.tau_mem
    convert = rockpool_nir._convert_nir_to_rockpool

    def as_exported(node):  # the ExpSynTorch Rockpool exports as LI, tau not truncated
        if isinstance(node, nir.LI):
            tau = torch.as_tensor(np.asarray(node.tau).reshape(-1), dtype=torch.float)
            return ExpSynTorch(shape=(int(tau.numel()),), tau=tau, dt=float(job["dt"]))
        return convert(node)

    if job.get("li_as_exported"):
        rockpool_nir._convert_nir_to_rockpool = as_exported
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = from_nir(graph)
    finally:
        if alias:
            del nir.LIF.tau_mem
        rockpool_nir._convert_nir_to_rockpool = convert
    record = job.get("record", [])
    mods = dict(module.named_modules())
    neurons = [n for n, m in mods.items() if hasattr(m, "vmem") and hasattr(m, "threshold")]
    if job.get("record_all"):
        record = sorted(set(record) | set(neurons))
    for n in record:
        mods[n]._record = True
    xs = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, 1)))  # [B, T, N]
    with torch.no_grad():
        out, _ = module(xs)
        result = {"out": np.moveaxis(_np(out), 0, 1)}
        for n in record:
            result[f"v:{n}"] = np.moveaxis(_np(mods[n]._record_dict["vmem"]), 0, 1)
            result[f"z:{n}"] = np.moveaxis(_np(mods[n]._record_dict["spikes"]), 0, 1)
            # the float32 decays the module multiplies by (exp(-dt/tau) in torch's kernels)
            for field in ("alpha", "beta"):
                value = getattr(mods[n], field, None)
                if value is not None:
                    result[f"d:{n}:{field}"] = _np(value).astype(np.float32).reshape(-1)
    dts = {n: float(m.dt) for n, m in mods.items() if hasattr(m, "dt") and hasattr(m, "tau_mem")}
    if job.get("decay_args"):
        from rockpool.nn.modules.torch import lif_neuron_torch

        exp = torch.exp
        torch.exp = lambda x: x  # tau_to_decay returns its argument of exp
        try:
            for n, m in mods.items():
                if hasattr(m, "tau_mem"):
                    arg = lif_neuron_torch.tau_to_decay(m.dt, m.tau_mem.detach())
                    result[f"x:decay_arg:{n}"] = _np(arg)
                    result[f"x:dt:{n}"] = np.asarray(float(m.dt))
        finally:
            torch.exp = exp
    return result, {"rockpool": rockpool.__version__, "inferred_dt": dts}


# ----------------------------------------------------------------------------- Nengo


def run_nengo(graph, x, job):
    from nengo_runner import run_nengo as run  # beside this file; needs nengo

    return run(graph, x, job)


# ----------------------------------------------------------------------------- main


RUNNERS = {
    "norse": run_norse,
    "snntorch": run_snntorch,
    "spyx1": lambda g, x, job: run_spyx(g, x, job, "1.0"),
    "spyx01": lambda g, x, job: run_spyx(g, x, job, "0.1"),
    "sinabs": run_sinabs,
    "rockpool": run_rockpool,
    "nengo": run_nengo,
}


def main(argv):
    framework, jobs_dir = argv[1], argv[2]
    with open(os.path.join(jobs_dir, "jobs.json")) as f:
        jobs = json.load(f)
    info = {}
    for job in jobs:
        stem = os.path.join(jobs_dir, job["id"])
        try:
            graph = load_graph(job, jobs_dir)
            x = np.load(stem + ".x.npy")
            result, info = RUNNERS[framework](graph, x, job)
            np.savez(stem + ".out.npz", **{
                k: np.asarray(v) if k.startswith("d:") else np.asarray(v, np.float64)
                for k, v in result.items()})
        except Exception as e:  # the harness reports the peer's own exception
            with open(stem + ".error.txt", "w") as f:
                f.write(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
    with open(os.path.join(jobs_dir, "versions.json"), "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main(sys.argv)
