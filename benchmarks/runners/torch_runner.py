"""Benchmark runner for the torch frameworks Norse and snnTorch (CPU torch build).

Imports the ``.nir`` file with the framework's own importer (``norse.torch.from_nir`` or
``snntorch.import_nir.import_from_nir``) and steps time the way their users do: a Python
loop over time steps, one module call per step.

* Norse (``nirtorch`` graph executor): ``z, state = model(x[t], state)`` starting from
  ``state = None``.
* snnTorch (``nirtorch.nir_to_torch`` graph module, neurons with ``init_hidden=True``):
  ``snntorch.utils.reset(model)`` before each sequence, then ``z = model(x[t])``.
* ``snntorch-rnnfix``: only for graphs with a recurrent LIF/CubaLIF <-> Affine/Linear pair,
  which no released snnTorch imports and runs (1.0.0 fails at import; 0.8-0.9.4 build an
  ``RSynaptic`` whose first step fails). It builds the model the way snnTorch 0.9.4 did
  (``_replace_rnn_subgraph_with_nirgraph`` then ``nirtorch.load`` with snnTorch's
  ``_nir_to_snntorch_module``), replaces ``RSynaptic.forward`` with a version that starts from
  zero state and resets in the same step (the semantics of the snnTorch code the NIR paper
  used), and steps it like Norse after ``snntorch.utils.reset(model)``:
  ``z, state = model(x[t], state)``.

The forward pass runs under ``torch.no_grad()`` (inference); the forward+backward pass
builds the graph over all steps and calls ``loss.backward()`` for every parameter with
``requires_grad`` (the importers make weights and biases trainable, neuron constants are
buffers). Compile time is reported as the first call's extra time over the steady state;
``setup_s`` is the import (``from_nir``) time.

Usage: ``python benchmarks/runners/torch_runner.py SPEC.json OUT.json``
(``SPEC['framework']`` is ``'norse'`` or ``'snntorch'``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SPIKING = {"LIFBoxCell", "LIFCell", "IAFCell", "CubaLIF", "Leaky", "Synaptic", "RLeaky",
           "RSynaptic"}


def _version(mod) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "?"


def _gemm(torch, n: int) -> dict:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    torch.mm(a, b)
    times = []
    for _ in range(common.GEMM_REPEATS):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return common.gemm_summary(n, times)


def _rsynaptic_forward(self, input_, spk=None, syn=None, mem=None):
    """RSynaptic step with explicit state: ``(spk, syn, mem)`` in, ``(spk, syn, mem)`` out.

    ``syn = alpha*syn + x + W_rec spk_prev``; ``mem = beta*mem + syn``; spike when
    ``mem > threshold``; reset (to zero or by subtraction) in the same step.
    """
    import torch

    if spk is None:
        spk, syn, mem = (torch.zeros_like(input_) for _ in range(3))
    reset = self.mem_reset(mem)
    syn = self.alpha.clamp(0, 1) * syn + input_ + self.recurrent(spk)
    mem = self.beta.clamp(0, 1) * mem + syn
    subtract = self.reset_mechanism_val == 0
    mem = mem - reset * (self.threshold if subtract else mem)
    spk = self.fire(mem)
    fresh = spk / self.graded_spikes_factor - reset  # spikes not already reset above
    mem = mem - fresh * (self.threshold if subtract else mem)
    return spk, syn, mem


def _spiking_modules(model):
    chosen = []
    for name, mod in model.named_modules():
        if type(mod).__name__ in SPIKING and not any(name.startswith(c + ".") for c, _ in chosen):
            chosen.append((name, mod))
    return chosen


def run(spec: dict, result: dict) -> dict:
    framework = spec["framework"]
    result["stage"] = "import"
    t0 = time.perf_counter()
    import nir
    import torch

    if framework == "norse":
        import norse.torch

        logging.getLogger().setLevel(logging.ERROR)  # norse logs a warning per r != 1
    elif framework == "snntorch-rnnfix":
        import nirtorch
        import snntorch
        import snntorch.utils
        from snntorch.import_nir import (_nir_to_snntorch_module,
                                         _replace_rnn_subgraph_with_nirgraph)
    else:
        import snntorch
        import snntorch.utils
        from snntorch.import_nir import import_from_nir
    import_s = time.perf_counter() - t0
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))

    package = "snntorch" if framework.startswith("snntorch") else framework
    out: dict = {"versions": {"torch": torch.__version__, package: _version(package),
                              "nirtorch": _version("nirtorch"), "nir": _version("nir")},
                 "torch_threads": torch.get_num_threads(), "import_s": import_s}
    timing = dict(min_repeats=spec["min_repeats"], max_repeats=spec["max_repeats"],
                  min_time=spec["min_time"])
    x = torch.from_numpy(common.load_input(spec))
    steps = x.shape[0]
    target = common.loss_target(spec)

    graph = nir.read(spec["nir_path"])
    log = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):
        if framework == "norse":
            model = norse.torch.from_nir(graph, dt=spec["dt"])
        elif framework == "snntorch-rnnfix":
            graph = _replace_rnn_subgraph_with_nirgraph(graph)
            if not any(isinstance(n, nir.NIRGraph) for n in graph.nodes.values()):
                raise common.NotApplicable(
                    "not a recurrent graph (snntorch-rnnfix only runs where the released "
                    "snnTorch importer fails)")
            snntorch.RSynaptic.forward = _rsynaptic_forward
            model = nirtorch.load(graph, _nir_to_snntorch_module)
            out["notes"] = ["RSynaptic.forward replaced (same-step reset, zero initial "
                            "state); built with nirtorch.load as snnTorch 0.9.4 did"]
        else:
            model = import_from_nir(graph)
    out["setup_s"] = time.perf_counter() - t0
    if log.getvalue().strip():
        out["import_log"] = log.getvalue().strip()[:2000]
    params = [p for p in model.parameters() if p.requires_grad]
    out["n_params"] = int(sum(p.numel() for p in params))

    if framework in ("norse", "snntorch-rnnfix"):
        def simulate(xs):
            if framework == "snntorch-rnnfix":
                # Synaptic/RSynaptic keep their last state in the module: clear it (and its
                # autograd history) before a new sequence, as snnTorch users do
                snntorch.utils.reset(model)
            state, outs = None, []
            for t in range(steps):
                z, state = model(xs[t], state)
                outs.append(z)
            return torch.stack(outs)
    else:
        def simulate(xs):
            snntorch.utils.reset(model)
            outs = []
            for t in range(steps):
                z = model(xs[t])
                outs.append(z[0] if isinstance(z, tuple) else z)
            return torch.stack(outs)

    def forward():
        with torch.no_grad():
            return simulate(x)

    result["stage"] = "forward"
    with common.MemoryPeak() as phase:
        first, times = common.time_calls(forward, **timing)
    common.register("fwd", forward)
    out["fwd_phase_rss_bytes"] = phase.peak
    out["fwd_first_s"] = first
    out["fwd"] = common.summary(times)
    out["fwd_compile_s"] = max(first - out["fwd"]["median"], 0.0)
    with common.MemoryPeak() as mem:
        ys = forward()
    out["fwd_rss_bytes"] = mem.peak
    out["output_mean"] = common.spike_rate(ys.numpy())

    # spike rates of every neuron module, through forward hooks (an extra, untimed pass)
    sums: dict = {}

    def hook(name):
        def fn(module, inputs, output):
            z = output[0] if isinstance(output, tuple) else output
            s, n = sums.get(name, (0.0, 0))
            sums[name] = (s + float(z.detach().double().sum()), n + z.numel())
        return fn

    handles = [mod.register_forward_hook(hook(name)) for name, mod in _spiking_modules(model)]
    forward()
    for h in handles:
        h.remove()
    out["rates"] = {name: s / n for name, (s, n) in sums.items()}

    if spec.get("backward", True):
        try:
            result["stage"] = "backward"
            last = {}

            def forward_backward():
                for p in params:
                    p.grad = None
                ys = simulate(x)
                loss = ((ys.sum(0) - target) ** 2).mean()
                loss.backward()
                last["loss"] = float(loss)

            with common.MemoryPeak() as phase:
                first, times = common.time_calls(forward_backward, **timing)
            common.register("fwdbwd", forward_backward)
            out["fwdbwd_phase_rss_bytes"] = phase.peak
            out["bwd_first_s"] = first
            out["fwdbwd"] = common.summary(times)
            out["bwd_compile_s"] = max(first - out["fwdbwd"]["median"], 0.0)
            with common.MemoryPeak() as mem:
                forward_backward()
            out["fwdbwd_rss_bytes"] = mem.peak
            grads = [p.grad for p in params]
            out["grad_arrays"] = len(grads)
            out["grad_finite"] = bool(all(g is None or bool(torch.isfinite(g).all()) for g in grads))
            out["grad_nonzero_arrays"] = int(sum(g is not None and bool((g != 0).any()) for g in grads))
            out["loss"] = last["loss"]
        except Exception as e:  # keep the forward results; report why backward failed
            out["bwd_reason"] = common.short_error("backward", e)
            out["bwd_traceback"] = common.traceback.format_exc()

    out["process_peak_rss_bytes"] = common.process_peak_rss()
    result["stage"] = "gemm"
    out.update(_gemm(torch, spec["gemm_n"]))
    result.pop("stage", None)
    return out


if __name__ == "__main__":
    spec = common.load_spec(sys.argv[1])
    common.main(run, spec["framework"])
