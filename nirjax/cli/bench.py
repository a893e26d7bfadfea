"""``nirjax bench``: the hardware benchmark of one graph, as a command.

    nirjax bench FILE.nir [--input X.npy] [--targets all] [--json out.json] [--plot out.png]
                 [--dt DT] [--semantics NAME] [--steps T --batch B --rate P --seed S]
                 [--no-measure]

examples:
  nirjax bench braille_subtract
  nirjax bench model.nir --dt 1e-4 --input x.npy --targets loihi2,xylo-audio2 --json out.json
  nirjax bench cnn_sinabs --targets speck,cpu --plot cost.png

prints the side-by-side table of :meth:`nirjax.cost.BenchmarkReport.table` (per target:
fits?, cores, time per step, samples/s, energy per inference and its basis; then nirjax's
measured figures). ``FILE`` is a ``.nir`` file or a shipped example name (those default to
``dt = 1e-4``). Without ``--input`` the input is Bernoulli spikes from
``numpy.random.default_rng(seed)`` with probability ``rate`` per channel and step.
``--input`` takes a ``.npy`` array ``[T, B, *input_shape]`` or, for several Input nodes, a
``.npz`` keyed by their names. Bad input gives one line on stderr and exit status 2.

This module provides ``add_arguments(parser)`` and ``run(args) -> int`` for
:mod:`nirjax.cli`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

__all__ = ["add_arguments", "run", "HELP"]

HELP = "benchmark a graph against neuromorphic chips (estimates) and nirjax (measured)"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``nirjax bench``'s arguments to ``parser`` (a subcommand's parser).

    >>> import argparse
    >>> p = add_arguments(argparse.ArgumentParser(prog="nirjax bench"))
    >>> p.parse_args(["g.nir", "--targets", "loihi2,speck"]).targets
    'loihi2,speck'
    """
    parser.add_argument("graph", help="a .nir file or a shipped example name")
    parser.add_argument("--input", default=None,
                        help="input spikes: .npy [T, B, *input_shape] (or .npz keyed by "
                             "Input name); default: generated Bernoulli spikes")
    parser.add_argument("--targets", default="all",
                        help="'all' (default), 'chips', or comma-separated names: loihi, "
                             "loihi2, spinnaker2, xylo-audio2, xylo-audio3, xylo-imu, speck, "
                             "truenorth, cpu, gpu")
    parser.add_argument("--json", default=None, help="write the full report as JSON here")
    parser.add_argument("--plot", default=None,
                        help="write the energy-vs-time plot here (needs matplotlib)")
    parser.add_argument("--dt", type=float, default=None,
                        help="time step in the graph's time unit (default 1e-4 for shipped "
                             "examples; required otherwise)")
    parser.add_argument("--semantics", default="nir", help="semantics profile (default: nir)")
    parser.add_argument("--steps", type=int, default=256,
                        help="generated input: time steps (default 256)")
    parser.add_argument("--batch", type=int, default=16,
                        help="generated input: samples (default 16)")
    parser.add_argument("--rate", type=float, default=0.1,
                        help="generated input: spike probability per channel and step "
                             "(default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="generated input: seed")
    parser.add_argument("--no-measure", action="store_true",
                        help="skip nirjax's own timing")
    return parser


def _resolve(graph: str):
    from ..examples import EXAMPLES, example_path

    if graph in EXAMPLES:
        return example_path(graph), True
    return graph, False


def _load_input(path: str, model):
    from ..cost.report import BenchmarkError

    p = pathlib.Path(path)
    if not p.exists():
        raise BenchmarkError(f"--input {path!r}: no such file")
    try:
        data = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BenchmarkError(f"--input {path!r}: not a .npy/.npz array file ({exc})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        return {k: data[k] for k in data.files}
    return data


def _generated(model, args):
    from ..cost.report import BenchmarkError

    if args.steps < 1 or args.batch < 1 or not 0.0 <= args.rate <= 1.0:
        raise BenchmarkError(f"generated input needs --steps >= 1, --batch >= 1 and 0 <= --rate "
                             f"<= 1; got {args.steps}, {args.batch}, {args.rate}")
    rng = np.random.default_rng(args.seed)
    return {name: (rng.random((args.steps, args.batch) + tuple(shape)) < args.rate)
            .astype(np.float32) for name, shape in model.input_shapes.items()}


def run(args) -> int:
    """Run ``nirjax bench`` with parsed ``args``; prints the table, returns the exit status
    (0, or 2 with one line on stderr for bad input)."""
    import warnings

    from ..api import compile as compile_graph
    from ..errors import NirjaxError
    from ..cost.report import BenchmarkError, benchmark

    try:
        path, shipped = _resolve(args.graph)
        dt = args.dt if args.dt is not None else (1e-4 if shipped else None)
        if not shipped and not pathlib.Path(path).exists():
            raise BenchmarkError(f"graph {args.graph!r}: no such file (and not a shipped "
                                 f"example)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pre-1.0.6 files: reset ambiguity (see nirjax run)
            model = compile_graph(path, dt=dt, semantics=args.semantics)
        xs = _load_input(args.input, model) if args.input else _generated(model, args)
        report = benchmark(model, xs, targets=args.targets,
                           measure_time=not args.no_measure,
                           name=pathlib.Path(str(path)).stem)
        print(report.table())
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report.to_dict(), f, indent=1)
            print(f"\nreport written to {args.json}")
        if args.plot:
            report.plot(args.plot)
            print(f"plot written to {args.plot}")
        return 0
    except (NirjaxError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"nirjax bench: error: {message}", file=sys.stderr)
        return 2
