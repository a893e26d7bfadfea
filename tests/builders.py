"""Graph builders shared by the tests: random NIR nodes, chains, and the primitive table."""

from __future__ import annotations

import dataclasses
import pathlib
import warnings
import zlib
from typing import Callable

import nir
import numpy as np

import nirjax

DATA = pathlib.Path(__file__).parent / "data"
PAPER = DATA / "paper"

PAPER_GRAPHS = {
    "lif_norse": "lif_norse.nir",
    "lif_rockpool": "lif_rockpool.nir",
    "two_lif_neurons": "two_lif_neurons.nir",
    "cnn_sinabs": "cnn_sinabs.nir",
    "braille_bias_zero": "braille_noDelay_bias_zero.nir",
    "braille_subtract": "braille_noDelay_noBias_subtract.nir",
}
MALFORMED = {
    "braille_bias_zero_subgraph": "braille_noDelay_bias_zero_subgraph.nir",
    "braille_subtract_subgraph": "braille_noDelay_noBias_subtract_subgraph.nir",
}


def paper_path(name: str) -> pathlib.Path:
    """Path of a paper file by short name (``PAPER_GRAPHS``/``MALFORMED``) or file name."""
    file = PAPER_GRAPHS.get(name) or MALFORMED.get(name) or name
    path = PAPER / file
    assert path.is_file(), path
    return path


def read_quiet(path):
    """``nirjax.read`` with the reset-ambiguity warning of old files filtered."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        return nirjax.read(path)


def rng_for(key: str) -> np.random.Generator:
    """A generator seeded by a string, so each test's data is fixed and independent."""
    return np.random.default_rng(zlib.crc32(key.encode()))


def graph(nodes: dict, edges: list) -> nir.NIRGraph:
    """A ``nir.NIRGraph`` exactly as given (no type inference, no added nodes)."""
    return nir.NIRGraph(nodes=dict(nodes), edges=list(edges), type_check=False)


def io_nodes(in_shape, out_shape, in_name="input", out_name="output") -> dict:
    return {in_name: nir.Input(input_type=np.array(in_shape)),
            out_name: nir.Output(output_type=np.array(out_shape))}


def chain(in_shape, out_shape, *named) -> nir.NIRGraph:
    """``input -> named[0] -> named[1] -> ... -> output``; ``named`` are (name, node)."""
    nodes = {"input": nir.Input(input_type=np.array(in_shape))}
    names = ["input"]
    for name, node in named:
        nodes[name] = node
        names.append(name)
    nodes["output"] = nir.Output(output_type=np.array(out_shape))
    names.append("output")
    return graph(nodes, list(zip(names[:-1], names[1:])))


# ----------------------------------------------------------------------------- random nodes


def neuron(kind: str, rng: np.random.Generator, shape=(5,), **fixed):
    """A neuron with random, non-trivial parameters for ``dt = 1e-3`` that spikes on inputs
    of order 1 (see :func:`neuron_input`)."""
    u = lambda lo, hi: rng.uniform(lo, hi, shape)
    if kind == "I":
        p = dict(r=u(100.0, 400.0))
    elif kind == "IF":
        p = dict(r=u(100.0, 400.0), v_threshold=u(0.8, 1.6), v_reset=u(-0.3, 0.2))
    elif kind == "LI":
        p = dict(tau=u(2e-3, 1e-2), r=u(0.5, 2.0), v_leak=u(-0.2, 0.2))
    elif kind == "LIF":
        p = dict(tau=u(2e-3, 1e-2), r=u(0.5, 2.0), v_leak=u(-0.2, 0.2),
                 v_threshold=u(0.6, 1.2), v_reset=u(-0.3, 0.2))
    elif kind == "CubaLI":
        p = dict(tau_syn=u(2e-3, 5e-3), tau_mem=u(3e-3, 1e-2), r=u(1.0, 3.0),
                 v_leak=u(-0.2, 0.2), w_in=u(0.5, 2.0))
    elif kind == "CubaLIF":
        p = dict(tau_syn=u(2e-3, 5e-3), tau_mem=u(3e-3, 1e-2), r=u(1.0, 3.0),
                 v_leak=u(-0.2, 0.2), v_threshold=u(0.6, 1.2), v_reset=u(-0.3, 0.2),
                 w_in=u(0.5, 2.0))
    else:
        raise ValueError(kind)
    p.update(fixed)
    return getattr(nir, kind)(**p)


def neuron_input(rng, steps, batch, shape=(5,)):
    """Random drive ``[T, B, *shape]`` that makes :func:`neuron` nodes spike."""
    return rng.uniform(-0.5, 2.5, (steps, batch) + tuple(shape))


def conv_node(rng, nd, c_in, c_out, kernel, stride=1, padding=0, dilation=1, groups=1,
              input_shape=None):
    kernel = tuple(kernel) if np.ndim(kernel) else (kernel,) * nd
    weight = rng.normal(size=(c_out, c_in // groups) + kernel)
    bias = rng.normal(size=(c_out,))
    cls = nir.Conv1d if nd == 1 else nir.Conv2d
    if nd == 1:
        if input_shape is not None:  # nir's Conv1d takes the length as an int
            input_shape = int(np.asarray(input_shape).reshape(-1)[0])
        return cls(input_shape=input_shape, weight=weight, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, bias=bias)
    as2 = lambda v: v if isinstance(v, str) else tuple(np.broadcast_to(v, (2,)).tolist())
    return cls(input_shape=input_shape, weight=weight, stride=as2(stride),
               padding=as2(padding), dilation=as2(dilation), groups=groups, bias=bias)


# ----------------------------------------------------------------------------- the table


@dataclasses.dataclass
class Case:
    """One primitive in a small graph, with an input generator.

    Attributes:
        graph: the graph; the primitive under test is the node ``"node"`` (or, for the
            NIRGraph case, the subgraph ``"sub"``).
        in_shape: unbatched input shape.
        dt: time step.
        make_input: ``(rng, T, B) -> xs``.
        has_params: whether ``model.params`` has an entry to differentiate.
        smooth: whether the output is a smooth function of params and inputs (no spikes),
            so finite differences must match ``jax.grad``.
        record: state fields to record and compare, e.g. ``(("node", "v"),)``.
    """

    graph: nir.NIRGraph
    in_shape: tuple
    dt: float
    make_input: Callable
    has_params: bool = True
    smooth: bool = True
    record: tuple = ()
    expected_warning: type | None = None


def _uniform(lo, hi, shape):
    return lambda rng, T, B: rng.uniform(lo, hi, (T, B) + tuple(shape))


def _case_io(rng):
    g = graph({**io_nodes((3, 2), (3, 2))}, [("input", "output")])
    return Case(g, (3, 2), 1e-3, _uniform(-1, 1, (3, 2)), has_params=False)


def _case_affine(rng):
    node = nir.Affine(weight=rng.normal(size=(3, 4, 5)), bias=rng.normal(size=(3, 4)))
    return Case(chain((3, 5), (3, 4), ("node", node)), (3, 5), 1e-3, _uniform(-1, 1, (3, 5)))


def _case_linear(rng):
    node = nir.Linear(weight=rng.normal(size=(4, 6)))
    return Case(chain((6,), (4,), ("node", node)), (6,), 1e-3, _uniform(-1, 1, (6,)))


def _case_scale(rng):
    node = nir.Scale(scale=rng.normal(size=(5,)))
    return Case(chain((5,), (5,), ("node", node)), (5,), 1e-3, _uniform(-1, 1, (5,)))


def _case_conv1d(rng):
    node = conv_node(rng, 1, 4, 6, 3, stride=2, padding=1, dilation=1, groups=2)
    return Case(chain((4, 11), (6, 6), ("node", node)), (4, 11), 1e-3, _uniform(-1, 1, (4, 11)))


def _case_conv2d(rng):
    node = conv_node(rng, 2, 2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                     groups=2, input_shape=np.array([7, 6]))
    # H: (7 + 2 - 2 - 1)//2 + 1 = 4; W: (6 + 0 - 2 - 1)//1 + 1 = 4
    return Case(chain((2, 7, 6), (4, 4, 4), ("node", node)), (2, 7, 6), 1e-3,
                _uniform(-1, 1, (2, 7, 6)))


def _case_flatten(rng):
    node = nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=1, end_dim=2)
    return Case(chain((2, 3, 4), (2, 12), ("node", node)), (2, 3, 4), 1e-3,
                _uniform(-1, 1, (2, 3, 4)), has_params=False)


def _case_sumpool(rng):
    node = nir.SumPool2d(kernel_size=np.array([2, 3]), stride=np.array([2, 1]),
                         padding=np.array([1, 0]))
    # H: (5 + 2 - 2)//2 + 1 = 3; W: (6 - 3)//1 + 1 = 4
    return Case(chain((3, 5, 6), (3, 3, 4), ("node", node)), (3, 5, 6), 1e-3,
                _uniform(-1, 1, (3, 5, 6)), has_params=False)


def _case_avgpool(rng):
    node = nir.AvgPool2d(kernel_size=np.array([3, 2]), stride=np.array([1, 2]),
                         padding=np.array([1, 1]))
    # H: (5 + 2 - 3)//1 + 1 = 5; W: (6 + 2 - 2)//2 + 1 = 4
    return Case(chain((3, 5, 6), (3, 5, 4), ("node", node)), (3, 5, 6), 1e-3,
                _uniform(-1, 1, (3, 5, 6)), has_params=False)


def _case_threshold(rng):
    node = nir.Threshold(threshold=rng.uniform(-0.5, 0.5, (5,)))
    return Case(chain((5,), (5,), ("node", node)), (5,), 1e-3, _uniform(-1, 1, (5,)),
                smooth=False)


def _case_delay(rng):
    dt = 1e-3
    node = nir.Delay(delay=np.array([0.0, 1e-3, 3e-3, 2e-3, 5e-3]))
    return Case(chain((5,), (5,), ("node", node)), (5,), dt, _uniform(-1, 1, (5,)),
                has_params=False)


def _neuron_case(kind):
    def build(rng):
        node = neuron(kind, rng)
        spiking = kind in ("IF", "LIF", "CubaLIF")
        record = (("node", "v"),) + ((("node", "i_syn"),) if kind.startswith("Cuba") else ())
        return Case(chain((5,), (5,), ("node", node)), (5,), 1e-3,
                    lambda rng, T, B: neuron_input(rng, T, B), smooth=not spiking,
                    record=record)

    return build


def _case_subgraph(rng):
    inner = graph({"i": nir.Input(input_type=np.array([4])),
                   "aff": nir.Affine(weight=rng.normal(size=(4, 4)), bias=rng.normal(size=(4,))),
                   "li": neuron("LI", rng, (4,)),
                   "o": nir.Output(output_type=np.array([4]))},
                  [("i", "aff"), ("aff", "li"), ("li", "o")])
    g = graph({**io_nodes((4,), (4,)), "sub": inner}, [("input", "sub"), ("sub", "output")])
    return Case(g, (4,), 1e-3, _uniform(-1, 1, (4,)), record=(("sub.li", "v"),))


PRIMITIVE_CASES = {
    "Input/Output": _case_io,
    "Affine": _case_affine,
    "Linear": _case_linear,
    "Scale": _case_scale,
    "Conv1d": _case_conv1d,
    "Conv2d": _case_conv2d,
    "Flatten": _case_flatten,
    "SumPool2d": _case_sumpool,
    "AvgPool2d": _case_avgpool,
    "Threshold": _case_threshold,
    "Delay": _case_delay,
    "I": _neuron_case("I"),
    "IF": _neuron_case("IF"),
    "LI": _neuron_case("LI"),
    "LIF": _neuron_case("LIF"),
    "CubaLI": _neuron_case("CubaLI"),
    "CubaLIF": _neuron_case("CubaLIF"),
    "NIRGraph": _case_subgraph,
}

# every NIR 1.0.8 primitive type must appear in the table
NIR_TYPES = ("Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "Flatten",
             "SumPool2d", "AvgPool2d", "Threshold", "Delay", "I", "IF", "LI", "LIF",
             "CubaLI", "CubaLIF", "NIRGraph")


def build_case(case_id: str) -> Case:
    return PRIMITIVE_CASES[case_id](rng_for("case:" + case_id))
