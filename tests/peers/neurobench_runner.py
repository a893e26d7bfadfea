"""Count a NIR graph's activity with NeuroBench 2.3.0 on snnTorch 1.0.0 (the oracle of
``tests/test_cost_neurobench.py``).

Launched with the Python of the ``neurobench`` environment (``tests/peers/setup_peers.sh``);
it imports NeuroBench, snnTorch, NIRTorch and nir, never nirjax. Usage::

    python neurobench_runner.py JOBS_DIR

``JOBS_DIR/jobs.json`` lists jobs in the format of ``runner.py`` (graph description or
``.nir`` path, input ``<id>.x.npy`` of shape ``[T, B, *in_shape]``). For every job this
writes ``<id>.nb.json`` (NeuroBench's results) and ``<id>.out.npy`` (the graph's output,
``[T, B, ...]``), or ``<id>.error.txt``; ``versions.json`` holds the package versions.

What runs is NeuroBench's own ``Benchmark`` with its own metrics (static: ``Footprint``,
``ConnectionSparsity``; workload: ``SynapticOperations``, ``ActivationSparsity``,
``MembraneUpdates``) on the module snnTorch builds from the graph:

* feed-forward graphs: ``snntorch.import_from_nir(graph)`` wrapped in NeuroBench's
  ``SNNTorchModel``, with one fix of an snnTorch 1.0.0 bug: ``import_from_nir`` asks for
  ``init_hidden=True`` neurons but builds ``nir.IF`` as ``Leaky(init_hidden=False)``, whose
  ``(spk, mem)`` tuple then reaches the next layer; those Leaky modules get
  ``init_hidden = True`` (same equations, the spikes alone are returned);
* recurrent graphs (``job["snntorch_path"] == "paper"``): released snnTorch cannot import
  them (see ``runner.py``), so the graph goes through the path the NIR paper used
  (``nirtorch.load`` with snnTorch's converter, RSynaptic's step as in snnTorch commit
  a204457) exactly as ``runner.py`` runs it, and the recurrent modules also store their
  membrane in ``self.mem`` as every released snnTorch neuron does (NeuroBench's
  membrane hook reads it). The state is passed from step to step by a subclass of
  ``SNNTorchModel`` whose ``__call__`` is the same loop with the state handed back;
* ``job["per_sample"]``: the data loader has batch size 1 (the NIR paper CNN's
  ``Flatten(start_dim=0)`` also flattens the batch axis in snnTorch).

Besides NeuroBench's results, ``Footprint_connections`` is NeuroBench's ``Footprint`` of a
module holding only the connection layers NeuroBench finds (``model.connection_layers()``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402  (graph loading and the paper-path snnTorch forwards)


def _rsynaptic_forward(self, input_, spk=None, syn=None, mem=None):
    spk, syn, mem = runner._rsynaptic_paper_forward(self, input_, spk, syn, mem)
    self.syn, self.mem = syn, mem  # as released snnTorch neurons do
    return spk, syn, mem


def build_model(graph, job):
    """The snnTorch module for ``graph`` and whether it takes the state explicitly."""
    import snntorch

    if job.get("snntorch_path") == "paper":
        import nirtorch
        from snntorch.import_nir import (_nir_to_snntorch_module,
                                         _replace_rnn_subgraph_with_nirgraph)

        snntorch.RSynaptic.forward = _rsynaptic_forward
        snntorch.RLeaky.forward = runner._rleaky_state_forward
        with contextlib.redirect_stdout(io.StringIO()):
            graph = _replace_rnn_subgraph_with_nirgraph(graph)
            module = nirtorch.load(graph, _nir_to_snntorch_module)
        return module, True
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):
        module = import_from_nir(graph)
    for m in module.modules():
        if isinstance(m, snntorch.Leaky) and not m.init_hidden:
            m.init_hidden = True  # nir.IF is built with init_hidden=False (snnTorch bug)
    return module, False


def make_wrapper():
    from neurobench.models import SNNTorchModel

    class Recorded(SNNTorchModel):
        """NeuroBench's SNNTorchModel; keeps the last output and, for ``stateful`` nets,
        passes the state returned by one step into the next (the loop is otherwise
        ``SNNTorchModel.__call__``'s)."""

        def __init__(self, net, stateful):
            super().__init__(net)
            self.stateful = stateful
            self.outputs = []

        def __call__(self, data):
            import torch

            if not self.stateful:
                out = super().__call__(data)
            else:
                for m in self.net.modules():
                    if hasattr(m, "reset_mem"):
                        m.reset_mem()
                state, spikes = None, []
                for step in range(data.shape[1]):
                    spk, state = self.net(data[:, step, ...], state)
                    spikes.append(spk)
                out = torch.stack(spikes).transpose(0, 1)
            self.outputs.append(out.detach().numpy())
            return out

    return Recorded


def run_job(graph, x, job):
    import torch
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import (ActivationSparsity, MembraneUpdates,
                                             SynapticOperations)
    from neurobench.models import TorchModel

    net, stateful = build_model(graph, job)
    model = make_wrapper()(net, stateful)
    data = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 0, 1)))  # [B, T, ...]
    labels = torch.zeros(data.shape[0])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, labels),
                                         batch_size=1 if job.get("per_sample") else len(data),
                                         shuffle=False)
    conn = torch.nn.ModuleList(model.connection_layers())
    conn_footprint = Footprint()(TorchModel(conn))
    bench = Benchmark(model, loader, [], [],
                      [[Footprint, ConnectionSparsity],
                       [SynapticOperations, ActivationSparsity, MembraneUpdates]])
    with torch.no_grad():
        results = bench.run(quiet=True)
    results = {k: (float(v) if not isinstance(v, dict) else {kk: float(vv) for kk, vv in v.items()})
               for k, v in results.items()}
    results["Footprint_connections"] = float(conn_footprint)
    results["connection_layers"] = len(conn)
    out = np.concatenate([o.reshape((o.shape[0], o.shape[1], -1)) for o in model.outputs], 0)
    return results, np.moveaxis(out, 0, 1)


def main(argv):
    jobs_dir = argv[1]
    with open(os.path.join(jobs_dir, "jobs.json")) as f:
        jobs = json.load(f)
    import neurobench
    import snntorch
    import nirtorch
    import nir

    released = snntorch.RSynaptic.forward, snntorch.RLeaky.forward
    for job in jobs:
        stem = os.path.join(jobs_dir, job["id"])
        try:
            graph = runner.load_graph(job, jobs_dir)
            x = np.load(stem + ".x.npy")
            results, out = run_job(graph, x, job)
            with open(stem + ".nb.json", "w") as f:
                json.dump(results, f)
            np.save(stem + ".out.npy", out.astype(np.float64))
        except Exception as e:  # the test reports the package's own exception
            with open(stem + ".error.txt", "w") as f:
                f.write(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
        finally:
            snntorch.RSynaptic.forward, snntorch.RLeaky.forward = released
    versions = {"neurobench": getattr(neurobench, "__version__", None),
                "snntorch": snntorch.__version__, "nir": nir.__version__,
                "nirtorch": getattr(nirtorch, "__version__", None)}
    with open(os.path.join(jobs_dir, "versions.json"), "w") as f:
        json.dump(versions, f)


if __name__ == "__main__":
    main(sys.argv)
