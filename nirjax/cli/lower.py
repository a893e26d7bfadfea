"""``nirjax lower``: lower a ``.nir`` file to a chip and write the vendor's file.

    nirjax lower FILE --target T -o OUT [--dt DT] [--report] [--option KEY=VALUE ...]

examples:
  nirjax lower braille.nir --target xylo-audio2 -o braille.npz --dt 1e-4 --report
  nirjax lower cnn.nir --target speck -o cnn_speck.nir
  nirjax lower braille.nir --target loihi2 -o braille_netx.h5 --dt 1e-4 -O scale=paper

This module provides ``add_arguments(parser)`` and ``run(args) -> int`` (the exit status)
for :mod:`nirjax.cli`. It writes to ``sys.stdout`` (the
report, with ``--report``, and one line saying what was written) and ``sys.stderr`` (one
line per lowering warning, and on failure ONE line starting ``nirjax lower: error:`` with
every design-rule violation, exit status 2).
"""

from __future__ import annotations

import argparse
import sys
import warnings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``lower`` command's arguments to ``parser`` and return it.

    >>> import argparse
    >>> args = add_arguments(argparse.ArgumentParser()).parse_args(
    ...     ["g.nir", "--target", "xylo-audio2", "-o", "g.npz", "--dt", "1e-4"])
    >>> args.target, args.output, args.dt, args.report
    ('xylo-audio2', 'g.npz', 0.0001, False)
    """
    from ..lowering import TARGET_NAMES

    parser.add_argument("file", help="the .nir file to lower")
    parser.add_argument("--target", "-t", required=True,
                        help=f"the chip target: {', '.join(TARGET_NAMES)}")
    parser.add_argument("--output", "-o", required=True,
                        help="where to write the vendor's file (e.g. .npz for Xylo)")
    parser.add_argument("--dt", type=float, default=None,
                        help="the time step in the graph's time unit (NIR graphs carry none; "
                             "e.g. 1e-4 for the NIR paper's graphs)")
    parser.add_argument("--report", action="store_true",
                        help="print the lowering report (mapping, resources, quantization)")
    parser.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                        help="a target option (repeatable), e.g. -O method=channel")
    return parser


def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _options(items) -> dict:
    from ..errors import LoweringError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LoweringError(f"--option {item!r}: expected KEY=VALUE")
        out[key.strip()] = _value(value.strip())
    return out


def _one_line(exc: BaseException) -> str:
    return " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def run(args: argparse.Namespace) -> int:
    """Run ``nirjax lower`` with parsed ``args``; returns the exit status (0, or 2 on error).

    Args:
        args: the namespace of a parser built with :func:`add_arguments`.
    """
    from ..errors import NirjaxError
    from ..lowering import lower

    try:
        options = _options(args.option)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hw = lower(args.file, args.target, dt=args.dt, **options)
            hw.export(args.output)
    except (NirjaxError, OSError) as exc:
        sys.stderr.write(f"nirjax lower: error: {_one_line(exc)}\n")
        return 2
    for w in caught:
        sys.stderr.write(f"nirjax lower: warning: {_one_line(w.message)}\n")
    if args.report:
        sys.stdout.write(hw.report() + "\n")
    sys.stdout.write(f"wrote {args.output}: {args.file} lowered to {hw.target} at dt = "
                     f"{hw.dt:g}\n")
    return 0
