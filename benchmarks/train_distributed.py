"""Data-parallel training over several processes, each feeding its own rows of every batch.

The NIR paper's Braille RSNN (shipped with nirjax) is fine-tuned on a synthetic data set
whose sample ``i`` is generated from seed ``i`` alone, so a process can produce exactly its
own rows of a batch without ever seeing the others' (as it would read its own shard of a
real data set from disk). The model is compiled with ``mesh=`` over every device of every
process; :func:`nirjax.distributed.global_batch` turns each process's rows into the global
batch; :class:`nirjax.train.Trainer` and :func:`nirjax.train.fit` run unchanged, XLA summing
the gradient across processes. Every process prints the same lines, and they are those of a
single-process run of the same command (up to the last digits of float sums)::

    # one process, one device (the reference)
    python benchmarks/train_distributed.py
    # two processes on this machine, two CPU devices each (start both; the order is free)
    python benchmarks/train_distributed.py --coordinator 127.0.0.1:12345 --num-processes 2 --process-id 0 --local-devices 2 &
    python benchmarks/train_distributed.py --coordinator 127.0.0.1:12345 --num-processes 2 --process-id 1 --local-devices 2
    # on two hosts: the same with --coordinator HOST_OF_PROCESS_0:PORT and no --local-devices

``--mesh batch=2,neurons=2`` also splits the hidden layer over devices (with
``--shard-min 1``, since the Braille graph's layers are small).

The last line, ``RESULT {...}``, is JSON (losses, accuracies, a checksum of the trained
parameters) for scripts and tests to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings

import numpy as np

STEPS = 60          # time steps per sample
CLASSES = 7         # output neurons of the Braille graph
CHANNELS = 12       # input channels


def sample(index: int, seed: int) -> tuple[np.ndarray, int]:
    """Sample ``index`` of the synthetic data set: ``[STEPS, CHANNELS]`` spikes and a label.

    Class ``c`` fires channels ``c`` and ``c + 5`` more often; the rest is background. Each
    sample depends on ``(seed, index)`` only.
    """
    rng = np.random.default_rng([seed, index])
    label = index % CLASSES
    rate = np.full(CHANNELS, 0.04)
    rate[[label, (label + 5) % CHANNELS]] = 0.3
    return (rng.random((STEPS, CHANNELS)) < rate).astype(np.float32), label


def local_batch(first: int, rows: slice, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """This process's rows of the global batch whose first sample is ``first``."""
    pairs = [sample(first + r, seed) for r in range(rows.start, rows.stop)]
    xs = np.stack([p[0] for p in pairs], axis=1)          # [T, rows, CHANNELS]
    return xs, np.array([p[1] for p in pairs], np.int32)


def main(argv=None) -> dict:
    """Parse the options, join the other processes, train, print; returns the result."""
    import nirjax
    from nirjax import distributed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--batches", type=int, default=4, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    distributed.add_distributed_arguments(parser)
    args = parser.parse_args(argv)
    # gloo writes connection messages to stdout while processes exchange data: send them to
    # stderr until training is done (everything below prints afterwards)
    quiet = contextlib.ExitStack()
    if args.coordinator is not None:
        quiet.enter_context(distributed.native_stdout_to_stderr())
    mesh = distributed.setup(args)          # first: before JAX starts its devices

    import jax
    import optax
    from nirjax import train

    options = {} if mesh is None else {"mesh": mesh}
    if args.shard_min is not None:
        options["shard_min"] = args.shard_min
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nirjax.ResetAmbiguityWarning)
        model = nirjax.compile(nirjax.example_path("braille_bias_zero"), dt=1e-4,
                               semantics={"cuba_current": "new"}, surrogate="fast_sigmoid",
                               **options)
    rows = (distributed.process_rows(args.batch, mesh) if mesh is not None
            else slice(0, args.batch))

    def batches(epoch):
        """The epoch's batches, each process building only its own rows."""
        out = []
        for b in range(args.batches):
            xs, labels = local_batch(b * args.batch, rows, args.seed)
            if mesh is not None:
                xs = distributed.global_batch(xs, mesh, batch_axis=1, batch=args.batch)
                labels = distributed.global_batch(labels, mesh, batch_axis=0, batch=args.batch)
            out.append((xs, labels))
        return out

    held_out = []
    for b in range(2):  # evaluation batches: samples after the training set
        xs, labels = local_batch((args.batches + b) * args.batch, rows, args.seed + 1)
        if mesh is not None:
            xs = distributed.global_batch(xs, mesh, batch_axis=1, batch=args.batch)
            labels = distributed.global_batch(labels, mesh, batch_axis=0, batch=args.batch)
        held_out.append((xs, labels))

    trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(args.lr),
                            readout=("lif2", "v"),
                            metrics={"acc": train.max_membrane_accuracy}, clip_norm=1.0)
    where = ("one device" if mesh is None else
             f"mesh {', '.join(f'{a}={n}' for a, n in dict(mesh.shape).items())} over "
             f"{mesh.devices.size} devices in {jax.process_count()} process(es); process "
             f"{jax.process_index()} feeds rows {rows.start}..{rows.stop - 1} of each batch")
    with quiet:
        result = train.fit(trainer, model.params, batches, epochs=args.epochs,
                           eval_data=held_out)
        params = distributed.gather(result.params)
    print(f"training the Braille RSNN: {args.epochs} epochs x {args.batches} batches of "
          f"{args.batch}; {where}", flush=True)
    for record in result.history:
        print(f"step {record['step']:3d}  loss {record['loss']:.5f}  acc {record['acc']:.4f}")
    for record in result.eval_history:
        print(f"epoch {record['epoch']}  eval_loss {record['eval_loss']:.5f}  "
              f"eval_acc {record['eval_acc']:.4f}")
    checksum = float(sum(np.abs(np.asarray(a, np.float64)).sum()
                         for a in jax.tree_util.tree_leaves(params)))
    print(f"sum of |trained parameters|: {checksum:.6g}")
    summary = {"loss": [r["loss"] for r in result.history],
               "acc": [r["acc"] for r in result.history],
               "eval_loss": [r["eval_loss"] for r in result.eval_history],
               "checksum": checksum, "processes": jax.process_count(),
               "devices": jax.device_count()}
    print("RESULT " + json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
