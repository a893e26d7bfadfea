"""Run a NIR graph of the Braille RSNN's shape in Norse or snnTorch (a peer framework).

Launched by tests/test_export.py in a separate Python that has torch, nir, nirtorch, norse and
snntorch installed (``NIRJAX_PEERS_PYTHON``); nirjax is not imported here. Usage:

    python run_peer.py {norse|snntorch} GRAPH.nir INPUTS.npy OUT.npz

INPUTS is ``[T, B, n_in]``. OUT holds ``out`` (the graph's output spikes, ``[T, B, n_out]``) and
``hidden`` (the recurrent layer's spikes). The versions used are printed as JSON.

* Norse 1.1.0: ``norse.torch.from_nir(graph, dt=1e-4, reset_method=reset_value)``, stepped
  with the state the returned executor hands back (the paper's usage).
* snnTorch 1.0.0: its released ``import_from_nir`` cannot run a recurrent graph (nirtorch 2.6
  fails on the recurrent subgraph it builds, and every release since 0.8 ships an RSynaptic
  whose same-step reset is written to a discarded local and which fails on its first step
  without a state). So the graph is built with snnTorch's own converter functions through
  the GraphExecutor path snnTorch used before 1.0 (``nirtorch.load``), and
  ``RSynaptic.forward`` is replaced by a step with explicit state and the reset applied to the
  membrane it returns (``reset_delay=False``: same step). Every other equation, parameter
  and module is snnTorch's own.
"""

import contextlib
import io
import json
import sys

import nir
import nirtorch
import numpy as np
import torch


def run_norse(graph, xs):
    import norse
    import norse.torch
    from norse.torch.functional.reset import reset_value

    module = norse.torch.from_nir(graph, dt=1e-4, reset_method=reset_value)
    state, out, hidden = None, [], []
    with torch.no_grad():
        for x_t in torch.from_numpy(xs):
            z, state = module(x_t, state)
            out.append(z.numpy())
            hidden.append(state.cache["lif1_lif"].numpy())
    return np.array(out), np.array(hidden), {"norse": norse.__version__}


def _rsynaptic_step(self, input_, spk=None, syn=None, mem=None):
    """snnTorch RSynaptic with explicit state and a same-step reset of the returned membrane."""
    if spk is None:
        spk, syn, mem = (torch.zeros_like(input_) for _ in range(3))
    reset = self.mem_reset(mem)                       # H(mem_prev - threshold), detached
    syn = self.alpha.clamp(0, 1) * syn + input_ + self.recurrent(spk)
    mem = self.beta.clamp(0, 1) * mem + syn
    mechanism = int(self.reset_mechanism_val)         # 0: subtract, 1: zero, 2: none
    if mechanism == 0:
        mem = mem - reset * self.threshold
    elif mechanism == 1:
        mem = mem - reset * mem
    spk = self.fire(mem)
    if not self.reset_delay:
        do_reset = spk / self.graded_spikes_factor - reset
        if mechanism == 0:
            mem = mem - do_reset * self.threshold
        elif mechanism == 1:
            mem = mem - do_reset * mem
    return spk, syn, mem


def run_snntorch(graph, xs):
    import snntorch
    from snntorch.import_nir import _nir_to_snntorch_module, _replace_rnn_subgraph_with_nirgraph

    snntorch.RSynaptic.forward = _rsynaptic_step
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints progress
        graph = _replace_rnn_subgraph_with_nirgraph(graph)
        module = nirtorch.load(graph, _nir_to_snntorch_module)
    state, out, hidden = None, [], []
    with torch.no_grad():
        for x_t in torch.from_numpy(xs):
            z, state = module(x_t, state)
            out.append(z.numpy())
            hidden.append(state.cache["lif1"].numpy())
    return np.array(out), np.array(hidden), {"snntorch": snntorch.__version__}


def main(argv):
    framework, path, inputs, dest = argv
    xs = np.load(inputs).astype(np.float32)
    graph = nir.read(path)
    runner = {"norse": run_norse, "snntorch": run_snntorch}[framework]
    out, hidden, versions = runner(graph, xs)
    np.savez(dest, out=out, hidden=hidden)
    versions.update({"torch": torch.__version__, "nir": nir.version, "nirtorch": nirtorch.__version__})
    print(json.dumps(versions))


if __name__ == "__main__":
    main(sys.argv[1:])
