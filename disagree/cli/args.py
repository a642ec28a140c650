"""Argument pieces shared by the subcommands: registering one, ratings options, value parsers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from disagree.errors import DisagreeError

SAMPLERS = ["nutpie", "pymc", "numpyro", "advi"]
REFERENCE_HELP = "reference levels, e.g. gender=female,politics=liberal"


def command(sub: argparse._SubParsersAction, name: str, run: Callable[..., int],
             help_text: str) -> argparse.ArgumentParser:
    """Register subcommand ``name`` that runs ``run``; return its parser."""
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(run=run)
    return p


def ratings_args(p: argparse.ArgumentParser, dimensions: bool = True) -> None:
    """Add the options that read a ratings file."""
    p.add_argument("ratings", type=Path, metavar="RATINGS",
                   help="ratings file: CSV, TSV or Parquet, long or wide format")
    if dimensions:
        p.add_argument("--dimensions", type=csv_list, default=None,
                       help="comma-separated dimensions to keep (wide files: the dimension "
                            "columns)")
    p.add_argument("--scale", type=int, default=None,
                   help="number of rating categories (default: the largest rating seen)")
    p.add_argument("--columns", type=mapping_arg, default=None,
                   help="renames, e.g. user_id=rater_id,instance_id=item_id")
    p.add_argument("--ignore-columns", type=csv_list, default=None,
                   help="comma-separated columns to leave out")
    p.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8)")


def renamed_flag(p: argparse.ArgumentParser, old: str, new: str,
                  type: Callable[[str], object] = str, **kwargs) -> None:
    """Register an old spelling of ``new``: same destination, a warning on stderr when used."""
    def convert(text: str) -> object:
        print(f"disagree: warning: {old} is deprecated; use {new}", file=sys.stderr)
        return type(text)

    p.add_argument(old, dest=new.lstrip("-").replace("-", "_"), type=convert,
                   help=argparse.SUPPRESS, default=None, **kwargs)


def load_table(args: argparse.Namespace):
    """Load the ratings file named by the ratings options."""
    from disagree.data import load_ratings

    return load_ratings(args.ratings, columns=args.columns,
                        dimensions=getattr(args, "dimensions", None), scale=args.scale,
                        ignore_columns=args.ignore_columns, encoding=args.encoding)


def weights_arg(text: str) -> str | dict[str, float]:
    """Parse ``dim`` or ``dim=w,dim=w`` (weighted dimensions)."""
    if "=" not in text:
        return text.strip()
    try:
        return {k: float(v) for k, v in mapping_arg(text).items()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected dimension=weight,...") from None


def fractions_arg(text: str) -> tuple[float, ...]:
    """Parse comma-separated fractions."""
    try:
        return tuple(float(t) for t in csv_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected fractions such as 0.8,0.1,0.1") \
            from None


def csv_list(text: str) -> list[str]:
    """Parse a comma-separated list."""
    return [t.strip() for t in text.split(",") if t.strip()]


def mapping_arg(text: str) -> dict[str, str]:
    """Parse ``name=value,name=value``."""
    out = {}
    for part in csv_list(text):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{part!r}: expected name=value")
        out[key.strip()] = value.strip()
    return out


def group_arg(text: str) -> dict[str, str]:
    """Parse a group such as ``politics=conservative,gender=female``."""
    from disagree.data.groups import parse_group

    try:
        return parse_group(text)
    except DisagreeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None



def draw_budget(args: argparse.Namespace) -> dict[str, int | float | None]:
    """Return the draw settings of ``fit``.

    ``--draws`` is an exact request; without it, 1000 draws and on until the diagnostics are
    ok, up to ``--max-draws`` (default 4000).
    """
    exact = args.draws is not None
    return {"draws": args.draws if exact else 1000,
            "max_draws": args.max_draws or (None if exact else 4000),
            "max_seconds": args.max_seconds}
