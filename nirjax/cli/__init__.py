"""The ``nirjax`` command line.

One module per command, each with ``add_arguments(parser)``, ``run(args) -> int`` and a
docstring (its ``--help`` text, with examples), registered in :data:`COMMANDS`. A command
whose module is not installed (``lower`` and ``bench`` come with the lowering and cost
packages) is not offered. Bad input of any kind ends the command with ONE line on stderr,
``nirjax: error: ...`` (or ``nirjax COMMAND: error: ...`` for a bad option), and exit status 2.

``nirjax`` with no argument runs ``nirjax run``: the NIR paper's Braille graph on generated
spikes.

>>> from nirjax.cli import main
>>> main(["info", "lif_norse", "--json"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import sys

__all__ = ["main", "COMMANDS", "Command", "available_commands", "build_parser"]


@dataclasses.dataclass(frozen=True)
class Command:
    """A command: its name, the module implementing it, a one-line summary."""

    name: str
    module: str
    summary: str

    def available(self) -> bool:
        """Whether the implementing module can be imported (without importing it)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):  # a missing parent package
            return False


#: every command, in the order ``nirjax --help`` lists them
COMMANDS = (
    Command("run", "nirjax.cli.run",
            "simulate a graph on your input (or generated spikes); save, record, plot"),
    Command("info", "nirjax.cli.info", "print the compiled program of a graph (--json)"),
    Command("compare", "nirjax.cli.compare",
            "run a graph under several platform profiles; where do their spikes diverge"),
    Command("lower", "nirjax.cli.lower", "lower a graph to a neuromorphic chip"),
    Command("bench", "nirjax.cli.bench", "estimate a graph's cost on hardware"),
)


def available_commands() -> list:
    """The commands whose implementation is installed."""
    return [cmd for cmd in COMMANDS if cmd.available()]


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr, exit status 2."""

    hint = None  # the command whose --help the message points to

    def error(self, message):  # noqa: D401 - argparse's interface
        where = self.hint or self.prog
        self.exit(2, f"{where}: error: {_one_line(message)} (see {where} --help)\n")


def _one_line(text) -> str:
    return " ".join(str(text).split())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (to add its options).

    Args:
        command: the command whose options to add (``None``: none, for ``nirjax --help``).

    Returns:
        The parser.
    """
    commands = available_commands()
    parser = _Parser(
        prog="nirjax",
        description="Simulate NIR graphs with JAX. 'nirjax COMMAND --help' shows a command's "
                    "options and examples; 'nirjax' alone runs the NIR paper's Braille graph.",
        epilog="examples:\n  nirjax run\n  nirjax run model.nir --dt 1e-4 --input x.npy "
               "--output out.npz\n  nirjax info model.nir --dt 1e-4 --json\n  nirjax compare "
               "model.nir --dt 1e-4 --profiles nir,snntorch,lava",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                parser_class=_Parser)
    for cmd in commands:
        p = sub.add_parser(cmd.name, help=cmd.summary, description=cmd.summary,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if cmd.name == command:
            module = importlib.import_module(cmd.module)
            p.description = (module.__doc__ or cmd.summary).strip()
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def _command_of(argv: list) -> str | None:
    names = {cmd.name for cmd in COMMANDS}
    for token in argv:
        if token in names:
            return token
        if not token.startswith("-"):
            return None
    return None


def main(argv=None) -> int:
    """Entry point of the ``nirjax`` command.

    Args:
        argv: the arguments (default ``sys.argv[1:]``); none at all runs ``nirjax run``.

    Returns:
        The exit status: 0, or 2 on bad input (one line on stderr).
    """
    from ..errors import NirjaxError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["run"]
    command = _command_of(argv)
    parser = build_parser(command)
    parser.hint = f"nirjax {command}" if command else None
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2, already reported)
        return int(exc.code or 0)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    args.argv = argv
    try:
        return int(args._run(args))
    except NirjaxError as exc:
        print(f"nirjax: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"nirjax: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nirjax: interrupted", file=sys.stderr)
        return 130
