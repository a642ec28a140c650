"""The ``disagree`` command line: a thin layer over the library.

Each subcommand is ``add_<name>(subparsers)`` plus ``run_<name>(args)`` in the module of its
stage (``data``, ``model``, ``pairs``, ``train``, ``evaluate``, ``experiments``; shared argument
pieces in ``args``); a ``run_*`` parses its arguments, makes one library call and prints what
that call returns. Any :class:`~disagree.errors.DisagreeError` becomes ``disagree: error:
<message>`` on stderr and exit code 2; nothing else is caught, so real bugs keep their
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from disagree.cli.data import add_describe, add_simulate, add_validate
from disagree.cli.evaluate import add_figure2
from disagree.cli.experiments import add_experiments
from disagree.cli.model import (
    add_compare,
    add_contrasts,
    add_diagnose,
    add_disagreement,
    add_fit,
)
from disagree.cli.pairs import add_pairs, add_softlabels
from disagree.cli.train import add_demo, add_train
from disagree.errors import ConvergenceError, DisagreeError

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    warnings.showwarning = lambda message, *_, **__: print(f"disagree: warning: {message}",
                                                          file=sys.stderr)
    # old spellings of disagree's own arguments and keys are said once each
    warnings.filterwarnings("default", category=DeprecationWarning, module=r"disagree(\.|$)")
    # pip-installed PyTensor never links a BLAS; nutpie compiles with numba and does not need it
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    try:
        return int(args.run(args) or 0)
    except ConvergenceError as exc:
        print(f"disagree: {exc}", file=sys.stderr)
        return EXIT_NOT_CONVERGED
    except DisagreeError as exc:
        print(f"disagree: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def make_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="disagree",
        description="Statistics of rater disagreement in LLM alignment data.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_simulate, add_validate, add_describe, add_fit, add_contrasts, add_diagnose,
                add_compare, add_disagreement, add_softlabels, add_pairs, add_train, add_demo,
                add_figure2, add_experiments):
        add(sub)
    return parser
