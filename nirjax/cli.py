"""The ``nirjax`` command line.

``nirjax run`` with no argument simulates the NIR paper's Braille graph (shipped with the
package) on generated spike input and prints what it did; ``nirjax run FILE --dt DT`` runs any
``.nir`` file; ``nirjax info FILE`` prints the compiled program.

``nirjax run`` also runs over several devices and processes: ``--mesh batch=4`` (or
``neurons=4``, ``batch=2,neurons=4``) shards the run over this process's devices, and
``--coordinator HOST:PORT --num-processes N --process-id I`` joins a multi-process run
(``jax.distributed``; start the same command once per process, process 0 listening on the
coordinator address). Each process then feeds its own rows of the generated batch, and every
process prints the same results as a single-process run.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .compiler.distributed import add_distributed_arguments


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nirjax", description="Simulate NIR graphs with JAX.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="simulate a graph on generated spike input")
    run.add_argument("graph", nargs="?", default=None,
                     help="a .nir file or a shipped example name (default: the NIR paper's "
                          "Braille graph, braille_bias_zero)")
    run.add_argument("--dt", type=float, default=None,
                     help="time step in the graph's time unit (default 1e-4 for shipped examples)")
    run.add_argument("--steps", type=int, default=256, help="number of time steps (default 256)")
    run.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    run.add_argument("--rate", type=float, default=0.1,
                     help="probability of an input spike per channel and step (default 0.1)")
    run.add_argument("--semantics", default="nir", help="semantics profile (default: nir)")
    run.add_argument("--seed", type=int, default=0, help="seed of the generated input")
    add_distributed_arguments(run)
    info = sub.add_parser("info", help="print the compiled program of a graph")
    info.add_argument("graph", help="a .nir file or a shipped example name")
    info.add_argument("--dt", type=float, default=None)
    return parser


def _resolve(graph: str | None):
    from .examples import EXAMPLES, example_path

    name = graph or "braille_bias_zero"
    if name in EXAMPLES:
        return example_path(name), True
    return name, False


def _run(args) -> int:
    import warnings

    import jax

    import nirjax
    from .compiler import distributed

    # before anything starts JAX's devices: join the other processes, build the mesh
    mesh = distributed.setup(args)
    path, shipped = _resolve(args.graph)
    dt = args.dt if args.dt is not None else (1e-4 if shipped else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = nirjax.read(path)
    t0 = time.perf_counter()
    options = {} if mesh is None else {"mesh": mesh}
    if args.shard_min is not None:
        options["shard_min"] = args.shard_min
    model = nirjax.compile(graph, dt=dt, semantics=args.semantics, **options)
    rng = np.random.default_rng(args.seed)
    # the whole batch, the same in every process; each process feeds only its own rows
    xs = {
        name: (rng.random((args.steps, args.batch) + shape) < args.rate).astype(np.float32)
        for name, shape in model.input_shapes.items()
    }
    feed = xs
    if mesh is not None:
        rows = distributed.process_rows(args.batch, mesh)
        feed = distributed.global_batch({k: v[:, rows] for k, v in xs.items()}, mesh,
                                        batch=args.batch)
    ys, _ = model.run(model.params, feed)
    jax.block_until_ready(ys)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ys, _ = model.run(model.params, feed)
    jax.block_until_ready(ys)
    t_run = time.perf_counter() - t0
    ys = distributed.gather(ys)  # whole, in every process
    outputs = ys if isinstance(ys, dict) else {model.output_names[0]: ys}

    print(f"nirjax {nirjax.__version__}: {path}")
    print(f"  NIR file version {nirjax.file_version(graph)}; dt = {model.program.dt:g}; "
          f"semantics = {model.program.semantics.name!r}; backend = {jax.default_backend()}")
    if mesh is not None:
        axes = ", ".join(f"{a}={n}" for a, n in dict(mesh.shape).items())
        print(f"  devices: mesh {axes} over {mesh.devices.size} devices in "
              f"{jax.process_count()} process(es); this is process {jax.process_index()}, "
              f"feeding batch rows {rows.start}..{rows.stop - 1}")
    for w in caught:
        print(f"  note: {w.message}")
    print(model.program.describe())
    print(f"input: {args.steps} steps x {args.batch} samples of generated Bernoulli spikes "
          f"(p = {args.rate} per channel and step, seed {args.seed})")
    for name, x in xs.items():
        print(f"  {name}: shape {x.shape}, {int(x.sum())} spikes")
    for name, y in outputs.items():
        y = np.asarray(y)
        counts = y.sum(axis=0).reshape(args.batch, -1)
        print(f"output {name!r}: shape {y.shape}, {int(y.sum())} spikes in total, "
              f"mean rate {y.mean():.4f} per neuron and step")
        print(f"  spike counts per output neuron (summed over the batch): "
              f"{counts.sum(axis=0).astype(int).tolist()}")
        print(f"  predicted class (most spikes) of the first samples: "
              f"{counts.argmax(axis=1)[:10].tolist()}")
    rate = args.steps * args.batch / t_run
    print(f"timing: first call (trace + compile + run) {t_first:.3f} s; "
          f"jitted run {t_run * 1e3:.2f} ms = {rate:,.0f} sample-steps/s")
    return 0


def _info(args) -> int:
    import nirjax

    path, shipped = _resolve(args.graph)
    dt = args.dt if args.dt is not None else (1e-4 if shipped else None)
    model = nirjax.compile(path, dt=dt)
    print(model.program.describe())
    delayed = model.program.delayed_edges
    print("delayed (cycle-closing) edges: " + (", ".join(f"{e.src} -> {e.dst}" for e in delayed) or "none"))
    return 0


def main(argv=None) -> int:
    """Entry point of the ``nirjax`` command."""
    from .errors import NirjaxError

    args = _build_parser().parse_args(argv)
    if args.command is None:
        args = _build_parser().parse_args(["run"] + list(argv or []))
    try:
        return _run(args) if args.command == "run" else _info(args)
    except NirjaxError as exc:
        print(f"nirjax: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
