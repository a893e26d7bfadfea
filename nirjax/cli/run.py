"""Simulate a NIR graph on your input and save what it did.

Without FILE: the NIR paper's Braille graph (shipped with nirjax) on generated Bernoulli
spikes. The input (--input) is an array file, an event file (binned to dt) or NIR data;
--record adds node outputs (NODE) and state fields (NODE:FIELD, e.g. lif1:v) to what is
printed, plotted and saved. --output OUT.npz holds the outputs, records, the simulated input
and the metadata that reproduces the run (graph SHA-256, dt, semantics, nirjax version);
any other extension writes the same in NIR's data format (nir.read_data reads it).

Several devices and processes (jax.distributed): --mesh batch=4 (or neurons=4,
batch=2,neurons=4) splits the run over this process's devices; --coordinator HOST:PORT
--num-processes N --process-id I joins a multi-process run (start the same command once per
process, process 0 listening on the coordinator address). Each process feeds its own rows of
the batch and every process prints the results of a single-process run; process 0 alone
writes --output and --plot.

examples:
  nirjax run
  nirjax run model.nir --dt 1e-4 --input spikes.npy --output out.npz --record lif1 lif1:v
  nirjax run cnn_sinabs --input events.npz --plot raster.png
  nirjax run model.nir --dt 1e-4 --input recording.h5 --semantics snntorch --output out.h5
  nirjax run --local-devices 8 --mesh batch=2,neurons=4 --shard-min 1
  nirjax run --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0   # on host A
  nirjax run --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 1   # on host B

OUT.npz keys: output/<Output node>, record/<node>, record/<node>/<field>, input/<Input node>
(all [T, B, *shape]), metadata (a JSON string), dt, semantics, graph_sha256, nirjax_version.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from ..compiler.distributed import add_distributed_arguments
from . import _common as c


def add_arguments(parser) -> None:
    """The options of ``nirjax run``."""
    c.add_graph_argument(parser, optional=True)
    parser.add_argument("--semantics", "-s", default="nir", metavar="P",
                        help="platform profile or semantics (default: nir; see nirjax.PROFILES)")
    parser.add_argument("--record", "-r", nargs="+", action="extend", default=[],
                        metavar="NODE[:FIELD]",
                        help="record a node's output (NODE) or a state field (NODE:FIELD, e.g. "
                             "lif1:v); several allowed")
    parser.add_argument("--output", "-o", metavar="OUT", default=None,
                        help="write outputs, records, input and metadata: .npz, or NIR data "
                             "(nir.write_data) for any other extension")
    parser.add_argument("--events", action="store_true",
                        help="with a NIR data --output: write spikes as EventData")
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="draw outputs and records of the first sample (needs matplotlib)")
    parser.add_argument("--sample", type=int, default=0, help="the sample --plot draws (default 0)")
    c.add_quiet_arguments(parser)
    c.add_input_arguments(parser)
    add_distributed_arguments(parser)


def run(args) -> int:
    """Run ``nirjax run``; returns the exit status."""
    import jax

    import nirjax
    from .. import progress
    from ..compiler import distributed

    # gloo (the collectives of a multi-process run) writes connection messages to stdout
    # while processes join and exchange data: send them to stderr until the results are
    # gathered, so that stdout is the single-process printout
    quiet = contextlib.ExitStack()
    if args.coordinator is not None:
        quiet.enter_context(distributed.native_stdout_to_stderr())
    with quiet:
        # before anything starts JAX's devices: join the other processes, build the mesh
        mesh = distributed.setup(args)
        writer = jax.process_index() == 0  # in a multi-process run only process 0 writes files
        loaded = c.load_graph(args.graph)
        out_path = c.check_writable(args.output, "--output") if args.output and writer else None
        plot_path = c.check_plot_path(args.plot) if args.plot and writer else None
        options = {} if mesh is None else {"mesh": mesh}
        if args.shard_min is not None:
            options["shard_min"] = args.shard_min
        model = c.compile_model(loaded, c.resolve_dt(args, loaded), args.semantics, **options)
        records = c.parse_records(args.record, model)
        plot_records = list(records)
        if plot_path is not None and not records:
            plot_records = [n.name for n in model.program.nodes
                            if n.rule.spiking and n.name not in model.output_names]
        xs, info = c.load_input(args, model)
        steps, batch = next(iter(xs.values())).shape[:2]
        if plot_path is not None and not -batch <= args.sample < batch:
            raise nirjax.InputError(f"--sample {args.sample}: out of range for {batch} samples")

        t0 = time.perf_counter()
        if mesh is None:
            ys, _, rec = progress.run(model, model.params, xs, record=plot_records or None,
                                      progress=c.progress_flag(args))
        else:
            # the whole input is the same in every process; each process feeds only its own rows
            rows = distributed.process_rows(batch, mesh)
            feed = distributed.global_batch({k: v[:, rows] for k, v in xs.items()}, mesh,
                                            batch=batch)
            ys, _, rec = model.run(model.params, feed, record=plot_records or [])
            ys = distributed.gather(ys)  # whole, in every process
            rec = {k: distributed.gather(v) for k, v in rec.items()}  # keys mix str and tuples
        elapsed = time.perf_counter() - t0
    outputs = ys if isinstance(ys, dict) else {model.output_names[0]: ys}
    saved_records = {k: v for k, v in rec.items() if k in records}

    print(f"nirjax {nirjax.__version__}: {loaded.path}")
    print(f"  NIR file version {nirjax.file_version(loaded.graph)}; dt = {model.program.dt:g}; "
          f"semantics = {model.program.semantics.name!r}; backend = {jax.default_backend()}")
    if mesh is not None:
        axes = ", ".join(f"{a}={n}" for a, n in dict(mesh.shape).items())
        print(f"  devices: mesh {axes} over {mesh.devices.size} devices in "
              f"{jax.process_count()} process(es); this is process {jax.process_index()}, "
              f"feeding batch rows {rows.start}..{rows.stop - 1}")
    for text in loaded.notes:
        print(f"  note: {text}")
    print(model.program.describe())
    for line in c.describe_input(xs, info):
        print(line)
    for name, y in outputs.items():
        y = np.asarray(y)
        counts = y.sum(axis=0).reshape(batch, -1)
        print(f"output {name!r}: shape {y.shape}, {int(y.sum())} spikes in total, "
              f"mean rate {y.mean():.4f} per neuron and step")
        print(f"  spike counts per output neuron (summed over the batch): "
              f"{counts.sum(axis=0).astype(int).tolist()[:64]}")
        print(f"  predicted class (most spikes) of the first samples: "
              f"{counts.argmax(axis=1)[:10].tolist()}")
    for key, value in saved_records.items():
        value = np.asarray(value)
        print(f"record {c.record_key(key)!r}: shape {value.shape}, min {value.min():.4g}, "
              f"max {value.max():.4g}, mean {value.mean():.4g}")
    rate = steps * batch / elapsed if elapsed > 0 else float("inf")
    print(f"timing: {elapsed:.3f} s including compilation = {rate:,.0f} sample-steps/s")

    meta = c.metadata(loaded, model, info, records, getattr(args, "argv", None))
    if out_path is not None:
        if out_path.suffix.lower() == ".npz":
            c.save_npz(out_path, outputs, saved_records, xs, meta)
        else:
            c.save_nir_data(out_path, model, outputs, saved_records, xs, meta, events=args.events)
        print(f"wrote {out_path}")
    if plot_path is not None:
        from .. import plot

        values = {**outputs, **{k: rec[k] for k in plot_records}}
        thresholds = {}
        for key in values:
            if isinstance(key, tuple) and key[1] == "v":
                th = c.param(model, key[0], "v_threshold")
                if th is not None:
                    thresholds[key[0]] = th
        fig = plot.summary(values, sample=args.sample, dt=float(model.program.dt),
                           thresholds=thresholds,
                           title=f"{loaded.path.name}, semantics {model.program.semantics.name!r}, "
                                 f"sample {args.sample}")
        try:
            fig.savefig(plot_path, dpi=110)
        except (OSError, ValueError) as exc:
            raise nirjax.InputError(f"--plot {str(plot_path)!r}: cannot write it ({exc})") from None
        print(f"wrote {plot_path}")
    return 0
