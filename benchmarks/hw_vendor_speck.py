"""Throughput of sinabs' own simulation of a Speck network (the vendor side of the Speck
speed comparison).

Runs sinabs 3.1.3's ``DynapcnnNetwork(..., discretize=True)`` forward (the reference the
``speck`` lowering is bit-exact with) on a batch of random input events, in the ``sinabs``
peer environment (``tests/peers/setup_peers.sh``), and prints samples per second. nirjax's
side of the comparison (the lowered network in the compiled scan) is wired in with the
lowering itself; this script only measures the vendor.

Usage::

    python benchmarks/hw_vendor_speck.py [--batch 32] [--steps 100] [--repeats 3]

The numbers depend on the machine and its load; they are not results until run on a quiet
machine.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
import speck_harness  # noqa: E402


def main(argv=None):
    """Time sinabs on the NIR paper's CNN and print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.05, help="events per pixel per step")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = (rng.random((args.steps, args.batch, 2, 34, 34)) < args.rate).astype(np.float32)
    result = speck_harness.sinabs_throughput(speck_harness.PAPER_CNN, x, args.repeats)
    print(json.dumps({"graph": "cnn_sinabs.nir", **result}))


if __name__ == "__main__":
    main()
