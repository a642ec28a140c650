"""``disagree softlabels`` and ``pairs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq

from disagree.cli.args import (
    command,
    csv_list,
    fractions_arg,
    group_arg,
    load_table,
    ratings_args,
    renamed_flag,
    weights_arg,
)


def add_softlabels(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree softlabels``."""
    p = command(sub, "softlabels", run_softlabels,
                 "posterior soft labels per rater, group or population")
    p.add_argument("fit_dir", type=Path, metavar="FITDIR")
    p.add_argument("--unit", choices=["rater", "group", "population"], default=None,
                   help="whose labels (default population)")
    renamed_flag(p, "--level", "--unit", choices=["rater", "group", "population"])
    p.add_argument("--factors", type=csv_list, default=None,
                   help="unit group: comma-separated factors, e.g. gender,politics")
    renamed_flag(p, "--by", "--factors", type=csv_list)
    p.add_argument("--population", type=Path, default=None,
                   help="unit population: table of cells (factor columns + proportion)")
    p.add_argument("--dimensions", type=csv_list, default=None)
    p.add_argument("--draws", type=int, default=None, help="use this many evenly spaced draws")
    p.add_argument("--items", choices=["rated", "prompts", "all"], default="rated",
                   help="unit rater: label the items each rater rated (default), every "
                        "response to the prompts they saw (needs --ratings), or all items; "
                        "streamed to Parquet a row group at a time")
    p.add_argument("--ratings", type=Path, default=None,
                   help="unit rater, --items prompts: the ratings file (items' prompt_id)")
    p.add_argument("--out", required=True, type=Path,
                   help="Parquet (or CSV, not for unit rater) file to write")


def run_softlabels(args: argparse.Namespace) -> int:
    """Compute and write soft labels (rater labels streamed in row groups)."""
    from disagree.labels import soft_labels, write_soft_labels

    if args.unit == "rater":
        return stream_rater_labels(args)
    labels = soft_labels(args.fit_dir, args.unit, args.factors, population=args.population,
                         dimensions=args.dimensions, draws=args.draws,
                         progress=sys.stderr.isatty())
    write_soft_labels(labels, args.out)
    print(f"wrote {args.out}: {len(labels):,} rows (unit {args.unit or 'population'})")
    return 0


def stream_rater_labels(args: argparse.Namespace) -> int:
    """Stream rater-level soft labels to Parquet (``softlabels --unit rater``)."""
    from disagree.data import load_ratings
    from disagree.labels import write_rater_labels

    prompts = load_ratings(args.ratings) if args.ratings else None
    write_rater_labels(args.fit_dir, args.out, items=args.items, prompts=prompts,
                       dimensions=args.dimensions, draws=args.draws,
                       progress=sys.stderr.isatty())
    rows = pq.ParquetFile(args.out).metadata.num_rows
    print(f"wrote {args.out}: {rows:,} rows (unit rater, items {args.items})")
    return 0


def add_pairs(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree pairs``."""
    p = command(sub, "pairs", run_pairs,
                 "weighted preference pairs for TRL (pairs.jsonl, pairs.parquet, splits, "
                 "manifest.json)")
    ratings_args(p, dimensions=False)
    p.add_argument("--fit", type=Path, default=None, help="fit directory (needed for soft)")
    p.add_argument("--dimension", required=True, type=weights_arg,
                   help="a dimension, or weighted dimensions, e.g. toxicity=1,helpfulness=0.5")
    p.add_argument("--strategy", choices=["majority", "all", "soft"], default="majority")
    p.add_argument("--unit", choices=["population", "group", "rater"], default=None,
                   help="whose preference (default: population, or group with --group)")
    p.add_argument("--group", type=group_arg, default=None,
                   help="restrict to a group of raters, e.g. politics=conservative")
    p.add_argument("--to-scale", type=int, choices=[2, 3, 5], default=None,
                   help="convert the ratings to this many points first")
    p.add_argument("--margin", type=float, default=0.0,
                   help="soft: drop pairs whose weight is within this of 0.5 (default 0: "
                        "keep the near-indifferent pairs)")
    p.add_argument("--split", type=fractions_arg, default=(0.8, 0.1, 0.1),
                   help="train,validation,test fractions by prompt (default 0.8,0.1,0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output folder")


def run_pairs(args: argparse.Namespace) -> int:
    """Build and write preference pairs."""
    from disagree.pairs import make_pairs

    pairs = make_pairs(load_table(args), args.fit, dimension=args.dimension, strategy=args.strategy,
                       unit=args.unit, group=args.group, to_scale=args.to_scale,
                       margin=args.margin, split=args.split, seed=args.seed)
    pairs.save(args.out)
    print(f"wrote {pairs.summary()} to {args.out}")
    return 0

