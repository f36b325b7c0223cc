"""The ``lava-gle`` command line. Each subcommand lives in ``lava_gle/commands/<name>.py``
with ``add_parser(subparsers)`` and ``run(args) -> int``.

Errors lava-gle raises on purpose (bad description, shape mismatch, missing hardware)
are printed as one ``error: ...`` line with exit status 2, never as a traceback; its
warnings (fixed-point saturation, approximate gains, recipe advice) as one
``warning: ...`` line each, without Python's source line.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from lava_gle.errors import LavaGleError, LavaGleWarning

#: Subcommand modules under lava_gle.commands, in the order ``--help`` lists them.
COMMANDS = ("simulate", "demo", "compare", "experiment", "map", "deploy", "microcode", "sweep")


class _Version(argparse.Action):
    """``--version``: the version and, run from a git clone, the commit
    (:func:`lava_gle.provenance.describe`), looked up only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version (and git commit) and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from lava_gle.provenance import code_version, describe
        print(describe(code_version()))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lava-gle",
        description="Generalized Latent Equilibrium (GLE) networks on Lava and Loihi 2.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"lava_gle.commands.{name}").add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None,
                  _default=warnings.showwarning) -> None:
    """``warnings.showwarning`` of the command line: lava-gle's own warnings
    (:class:`~lava_gle.errors.LavaGleWarning`) as ``warning: <message>`` on stderr, the
    others as Python shows them."""
    if not issubclass(category, LavaGleWarning):
        _default(message, category, filename, lineno, file, line)
        return
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.run(args) or 0)
    except LavaGleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output (e.g. `| head`) went away: stop quietly, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
