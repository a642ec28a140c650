"""``disagree simulate``, ``validate`` and ``describe``."""

from __future__ import annotations

import argparse
from pathlib import Path

from disagree.cli.args import (
    REFERENCE_HELP,
    command,
    csv_list,
    group_arg,
    load_table,
    ratings_args,
)


def add_simulate(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree simulate``."""
    p = command(sub, "simulate", run_simulate,
                 "simulate a paper-calibrated survey (ratings + truth.json)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raters", type=int, default=1095, help="number of raters (default 1095)")
    p.add_argument("--prompts", type=int, default=60, help="number of prompts (default 60)")
    p.add_argument("--scale", type=int, default=5, help="rating categories (default 5)")
    p.add_argument("--missing-rate", type=float, default=0.0,
                   help="probability that a rating is missing (default 0)")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")


def run_simulate(args: argparse.Namespace) -> int:
    """Simulate and write the survey."""
    from disagree.data import simulate_survey

    survey = simulate_survey(seed=args.seed, n_raters=args.raters, n_prompts=args.prompts,
                             scale=args.scale, missing_rate=args.missing_rate)
    path = survey.save(args.out, args.format)
    print(f"wrote {path} ({len(survey.ratings):,} ratings) and {args.out / 'truth.json'}")
    print(survey.summary())
    return 0



def add_validate(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree validate``."""
    p = command(sub, "validate", run_validate,
                 "check a ratings file and print a summary (exit 2 on bad input)")
    ratings_args(p)


def run_validate(args: argparse.Namespace) -> int:
    """Validate and summarise a ratings file."""
    print(load_table(args).summary())
    return 0


def add_describe(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree describe``."""
    p = command(sub, "describe", run_describe,
                 "descriptive tables and figures: distributions, raw group differences, "
                 "Krippendorff's alpha, Figure 1")
    ratings_args(p)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--factors", type=csv_list, default=None,
                   help="comma-separated factors (rater attributes; default: all with 2-12 "
                        "levels)")
    p.add_argument("--reference", type=group_arg, default=None, help=REFERENCE_HELP)
    p.add_argument("--threshold", type=int, default=None,
                   help="lowest rating counted as high (default 4 on a 5-point scale)")


def run_describe(args: argparse.Namespace) -> int:
    """Describe a ratings file into a folder."""
    from disagree.describe import describe

    paths = describe(load_table(args), args.out, factors=args.factors, reference=args.reference,
                     threshold=args.threshold)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0

