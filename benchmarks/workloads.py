"""The benchmark workloads: NIR graphs and spike inputs, generated with fixed seeds.

Every workload is written as a ``.nir`` file (with the ``nir`` package's own writer, so that
every framework reads the same file with its own importer) plus a ``uint8`` spike input
``[T, B, *input_shape]`` saved as ``.npy``. Nothing here imports a simulator: the graphs are
built from NumPy arrays with ``nir`` and the paper graphs are copied from the files nirjax
ships (``nirjax.examples``).

Neuron parameters follow the convention every importer can represent: ``v_leak = 0``,
``v_reset = 0``, one threshold per layer and ``r = tau/dt`` (``w_in = tau_syn/dt`` for
CubaLIF), so that forward Euler becomes ``v <- beta*v + x`` with ``beta = 1 - dt/tau`` (the
form snnTorch and Spyx use). Weight gains were chosen so that every spiking layer fires at a
realistic rate (a few percent to a few tens of percent); the harness measures and reports
the rates in every framework.

==========  ==================================================================================
name        graph
==========  ==================================================================================
``W1``      700 -> Affine 512 -> LIF -> Affine 512 -> LIF -> Affine 20 -> LIF; T=250, B=32
``W2``      700 -> Affine 256 -> CubaLIF (+ recurrent Linear 256x256) -> Affine 20 -> CubaLIF
``W3``      the NIR paper's Braille RSNN (``braille_noDelay_bias_zero.nir``); T=256, B=32
``W4``      the NIR paper's spiking CNN (``cnn_sinabs.nir``, input 2x34x34); T=300, B=32
``W5-N``    N -> Linear NxN -> LIF (the Open Neuromorphic benchmark); T=500, B=16
``W6``      DVS-gesture-like CNN: 2x64x64 -> Conv 16 (3x3) -> IF -> SumPool 2 -> Conv 32 (3x3)
            -> IF -> SumPool 2 -> Flatten -> Affine 11 -> LIF; T=100, B=16
==========  ==================================================================================
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil

import nir
import numpy as np

__all__ = ["Workload", "WORKLOADS", "build", "parse_names", "input_spikes"]

DT = 1e-4
LIF_TAU = 2e-3
# LIF layers keep r = 1 (the value Norse requires); their input weights carry the factor
# tau/dt that r = tau/dt would otherwise supply, so forward Euler is v <- beta*v + x.
LIF_GAIN = LIF_TAU / DT


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark case.

    Attributes:
        name: e.g. ``"W1"`` or ``"W5-1024"``.
        description: one line for tables.
        steps: number of time steps T.
        batch: batch size B.
        dt: time step passed to every importer (in the graph's time unit).
        input_rate: probability of an input spike per channel and step.
        seed: seed of the weights and of the input.
        kind: ``"ff"``, ``"rec"``, ``"braille"``, ``"cnn"``, ``"dvs"`` or ``"onb"``.
        size: N for the Open Neuromorphic benchmark.
    """

    name: str
    description: str
    steps: int
    batch: int
    dt: float
    input_rate: float
    seed: int
    kind: str
    size: int = 0


def _lif(n, tau=LIF_TAU, threshold=1.0):
    return nir.LIF(
        tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
        v_threshold=np.full(n, threshold), v_reset=np.zeros(n),
    )


def _cubalif(n, tau_syn=5e-4, tau_mem=1e-3, threshold=1.0):
    return nir.CubaLIF(
        tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.full(n, tau_mem / DT),
        v_leak=np.zeros(n), v_threshold=np.full(n, threshold), v_reset=np.zeros(n),
        w_in=np.full(n, tau_syn / DT),
    )


def _dense(rng, n_out, n_in, gain, bias=0.0):
    w = (rng.standard_normal((n_out, n_in)) * gain / np.sqrt(n_in)).astype(np.float32)
    b = np.full(n_out, bias, np.float32)
    return w, b


def _io(n):
    shape = np.array([n]) if np.isscalar(n) else np.array(n)
    return nir.Input(input_type={"input": shape}), nir.Output(output_type={"output": shape})


def graph_w1(seed: int) -> nir.NIRGraph:
    """W1: 700 -> Affine 512 -> LIF -> Affine 512 -> LIF -> Affine 20 -> LIF."""
    rng = np.random.default_rng(seed)
    sizes = [700, 512, 512, 20]
    gains = [1.7 * LIF_GAIN, 2.7 * LIF_GAIN, 3.0 * LIF_GAIN]
    biases = [0.02 * LIF_GAIN, 0.0, 0.0]
    inp, _ = _io(700)
    _, out = _io(20)
    nodes = {"input": inp, "output": out}
    edges = []
    prev = "input"
    for i in range(3):
        w, b = _dense(rng, sizes[i + 1], sizes[i], gains[i], biases[i])
        nodes[f"fc{i + 1}"] = nir.Affine(weight=w, bias=b)
        nodes[f"lif{i + 1}"] = _lif(sizes[i + 1])
        edges += [(prev, f"fc{i + 1}"), (f"fc{i + 1}", f"lif{i + 1}")]
        prev = f"lif{i + 1}"
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def graph_w2(seed: int) -> nir.NIRGraph:
    """W2: 700 -> Affine 256 -> CubaLIF <-> Linear 256x256 -> Affine 20 -> CubaLIF.

    The recurrent pair is named ``lif1.lif`` / ``lif1.w_rec`` like the NIR paper's Braille
    graph, the pattern the Spyx and snnTorch importers look for.
    """
    rng = np.random.default_rng(seed)
    w1, b1 = _dense(rng, 256, 700, 0.8, 0.0)
    w_rec, _ = _dense(rng, 256, 256, 0.4)
    w2, b2 = _dense(rng, 20, 256, 1.5, 0.0)
    inp, _ = _io(700)
    _, out = _io(20)
    nodes = {
        "input": inp,
        "fc1": nir.Affine(weight=w1, bias=b1),
        "lif1.lif": _cubalif(256),
        "lif1.w_rec": nir.Linear(weight=w_rec),
        "fc2": nir.Affine(weight=w2, bias=b2),
        "lif2": _cubalif(20),
        "output": out,
    }
    edges = [("input", "fc1"), ("fc1", "lif1.lif"), ("lif1.lif", "lif1.w_rec"),
             ("lif1.w_rec", "lif1.lif"), ("lif1.lif", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def graph_w5(seed: int, n: int) -> nir.NIRGraph:
    """W5: N -> Linear NxN -> LIF (the Open Neuromorphic benchmark network)."""
    rng = np.random.default_rng(seed)
    w, _ = _dense(rng, n, n, 1.5 * LIF_GAIN)
    inp, _ = _io(n)
    _, out = _io(n)
    nodes = {"input": inp, "fc1": nir.Linear(weight=w), "lif1": _lif(n), "output": out}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def graph_w6(seed: int) -> nir.NIRGraph:
    """W6: a DVS-gesture-like spiking CNN on 2x64x64 event frames (``dt = 1``).

    2x64x64 -> Conv2d 16 (3x3, padding 1) -> IF -> SumPool2d 2 -> Conv2d 32 (3x3, padding 1)
    -> IF -> SumPool2d 2 -> Flatten (8192) -> Affine 11 -> LIF 11. IF neurons as in the
    paper CNN (``r = 1``, threshold 1, reset to 0); the LIF has ``tau = 20`` steps and ``r = 1``
    with the factor ``tau/dt`` in its input weights.
    """
    rng = np.random.default_rng(seed)
    tau = 20.0

    def conv(c_out, c_in, gain, size):
        w = (rng.standard_normal((c_out, c_in, 3, 3)) * gain / np.sqrt(c_in * 9)).astype(np.float32)
        return nir.Conv2d(input_shape=np.array([size, size]), weight=w, stride=np.array([1, 1]),
                          padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=1,
                          bias=np.zeros(c_out, np.float32))

    def if_(shape):
        return nir.IF(r=np.ones(shape, np.float32), v_threshold=np.ones(shape, np.float32),
                      v_reset=np.zeros(shape, np.float32))

    def pool():
        return nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                             padding=np.array([0, 0]))

    w_fc, b_fc = _dense(rng, 11, 32 * 16 * 16, 4.0 * tau)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 64, 64])}),
        "conv1": conv(16, 2, 3.0, 64), "if1": if_((16, 64, 64)), "pool1": pool(),
        "conv2": conv(32, 16, 1.5, 32), "if2": if_((32, 32, 32)), "pool2": pool(),
        "flat": nir.Flatten(input_type={"input": np.array([32, 16, 16])}, start_dim=0, end_dim=2),
        "fc": nir.Affine(weight=w_fc, bias=b_fc),
        "lif": nir.LIF(tau=np.full(11, tau), r=np.ones(11), v_leak=np.zeros(11),
                       v_threshold=np.ones(11), v_reset=np.zeros(11)),
        "output": nir.Output(output_type={"output": np.array([11])}),
    }
    order = ["input", "conv1", "if1", "pool1", "conv2", "if2", "pool2", "flat", "fc", "lif", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])))


W5_SIZES = (512, 1024, 2048, 4096, 8192, 16384)

WORKLOADS: dict[str, Workload] = {
    "W1": Workload("W1", "feed-forward 700-512-512-20 LIF", 250, 32, DT, 0.05, 1, "ff"),
    "W2": Workload("W2", "recurrent 700-256(rec)-20 CubaLIF", 250, 32, DT, 0.05, 2, "rec"),
    "W3": Workload("W3", "NIR paper Braille RSNN 12-38(rec)-7", 256, 32, DT, 0.05, 3, "braille"),
    "W4": Workload("W4", "NIR paper CNN 2x34x34 (Sinabs)", 300, 32, 1.0, 0.05, 4, "cnn"),
    "W6": Workload("W6", "DVS-like CNN 2x64x64-conv16-pool-conv32-pool-11", 100, 16, 1.0, 0.05,
                   6, "dvs"),
}
for _n in W5_SIZES:
    WORKLOADS[f"W5-{_n}"] = Workload(f"W5-{_n}", f"Linear {_n}x{_n} + LIF", 500, 16, DT, 0.05,
                                     5, "onb", _n)

DEFAULT = ("W1", "W2", "W3", "W4", "W6", "W5-512", "W5-1024", "W5-2048", "W5-4096")
QUICK = ("W1", "W2", "W3", "W4", "W6", "W5-512")


def parse_names(spec: str | None, quick: bool = False) -> list[str]:
    """Workload names from a comma list; ``W5`` expands to the default sizes."""
    if not spec:
        return list(QUICK if quick else DEFAULT)
    names = []
    for item in spec.split(","):
        item = item.strip()
        if item == "W5":
            names += [n for n in DEFAULT if n.startswith("W5-")]
        elif item in WORKLOADS:
            names.append(item)
        else:
            raise SystemExit(f"unknown workload {item!r}; known: W5, {', '.join(WORKLOADS)}")
    return names


def _example(name: str) -> pathlib.Path:
    import nirjax  # only for the path of the shipped paper graphs

    return pathlib.Path(nirjax.example_path(name))


def input_shape(graph: nir.NIRGraph) -> tuple:
    """The unbatched shape of the graph's (single) Input node."""
    inputs = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    return tuple(int(d) for d in np.ravel(list(inputs[0].input_type.values())[0]))


def input_spikes(w: Workload, shape: tuple, steps: int | None = None,
                 batch: int | None = None) -> np.ndarray:
    """Bernoulli spike input ``[T, B, *shape]`` (``uint8``) from the workload's seed."""
    rng = np.random.default_rng(1000 + w.seed)
    t = w.steps if steps is None else steps
    b = w.batch if batch is None else batch
    return (rng.random((t, b) + tuple(shape), dtype=np.float32) < w.input_rate).astype(np.uint8)


def build(w: Workload, directory: pathlib.Path, steps: int | None = None,
          batch: int | None = None) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the workload's graph and input under ``directory``; returns their paths.

    ``steps``/``batch`` override the workload's T and B (the quick mode uses smaller ones).
    """
    directory.mkdir(parents=True, exist_ok=True)
    nir_path = directory / f"{w.name}.nir"
    if w.kind == "braille":
        shutil.copyfile(_example("braille_bias_zero"), nir_path)
    elif w.kind == "cnn":
        shutil.copyfile(_example("cnn_sinabs"), nir_path)
    else:
        graph = {"ff": lambda: graph_w1(w.seed), "rec": lambda: graph_w2(w.seed),
                 "onb": lambda: graph_w5(w.seed, w.size), "dvs": lambda: graph_w6(w.seed)}[w.kind]()
        nir.write(str(nir_path), graph)
    shape = input_shape(nir.read(str(nir_path)))
    x = input_spikes(w, shape, steps, batch)
    t, b = x.shape[:2]
    x_path = directory / f"{w.name}_T{t}_B{b}.npy"
    np.save(x_path, x)
    return nir_path, x_path
