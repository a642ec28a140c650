"""``disagree fit``, ``contrasts`` and ``diagnose``: the model subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disagree.cli.args import (
    REFERENCE_HELP,
    SAMPLERS,
    command,
    csv_list,
    draw_budget,
    group_arg,
    load_table,
    ratings_args,
    renamed_flag,
)
from disagree.errors import DisagreeError
from disagree.model.sampling import TARGET_ACCEPT


def add_fit(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree fit``."""
    p = command(sub, "fit", run_fit, "fit the Bayesian hierarchical ordinal model "
                 "(writes posterior.nc, diagnostics.json, model.json)")
    ratings_args(p)
    p.add_argument("--out", required=True, type=Path, help="fit directory")
    p.add_argument("--factors", type=csv_list, default=None,
                   help="comma-separated factors (rater attributes), e.g. gender,politics")
    renamed_flag(p, "--covariates", "--factors", type=csv_list)
    p.add_argument("--reference", type=group_arg, default=None, help=REFERENCE_HELP)
    p.add_argument("--sampler", default="nutpie", choices=SAMPLERS)
    p.add_argument("--draws", type=int, default=None,
                   help="exactly this many draws a chain; default: 1000, then on in steps of "
                        "1000 until the diagnostics are ok or --max-draws")
    p.add_argument("--max-draws", type=int, default=None,
                   help="draw budget a chain when sampling until ok (default 4000 without "
                        "--draws; with --draws, sample until ok only when given)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="time budget of sampling until ok (stops at the next checkpoint)")
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4,
                   help="chains (default 4: R-hat needs several to mean much)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-accept", type=float, default=TARGET_ACCEPT,
                   help="NUTS's target acceptance rate (default 0.65; raise it, e.g. to 0.9, "
                        "where the fit reports divergences)")
    p.add_argument("--low-rank", action="store_true",
                   help="nutpie's low-rank modified mass matrix adaptation")
    p.add_argument("--no-rater-effects", action="store_true",
                   help="do not store the rater effects' draws (memory with many raters); "
                        "rater-level labels, pairs, the PPC and LOO then refuse the fit")
    p.add_argument("--interactions", type=interactions_arg, default=None,
                   help="factors whose levels rate the items each their own way (group-by-item "
                        "deviations) on every dimension, e.g. politics,gender; or on some "
                        "dimensions only, as dimension:factor items, e.g. "
                        "toxicity:gender,emotional_awareness:politics")
    p.add_argument("--effects", choices=["dummy", "pooled"], default="dummy",
                   help="level effects: independent treatment dummies (default) or a pooled "
                        "zero-sum batch per factor (reference-free)")
    p.add_argument("--advi-iterations", type=int, default=None,
                   help="optimisation steps of --sampler advi (default 10000)")


def interactions_arg(text: str) -> list[str] | dict[str, list[str]]:
    """Parse ``--interactions``: ``f,g`` (a list) or ``dim:f,dim:g`` (dimension -> factors)."""
    items = csv_list(text)
    paired = [i for i in items if ":" in i]
    if not paired:
        return items
    if len(paired) < len(items) or any(i.count(":") != 1 for i in items):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give factors (politics,gender) or dimension:factor items "
            "(toxicity:gender,emotional_awareness:politics), not a mix")
    out: dict[str, list[str]] = {}
    for item in items:
        dim, factor = (t.strip() for t in item.split(":"))
        out.setdefault(dim, []).append(factor)
    return out


def run_fit(args: argparse.Namespace) -> int:
    """Fit and save the model."""
    from disagree.model import fit

    if not args.factors:
        raise DisagreeError("fit needs --factors, e.g. --factors gender,politics")
    result = fit(load_table(args), args.factors, args.reference, args.dimensions,
                 sampler=args.sampler, tune=args.tune, **draw_budget(args), chains=args.chains,
                 seed=args.seed, low_rank=args.low_rank, target_accept=args.target_accept,
                 out_dir=args.out, keep_rater_effects=not args.no_rater_effects,
                 interactions=args.interactions, effects=args.effects,
                 progress=sys.stderr.isatty(), **({"advi_iterations": args.advi_iterations}
                                                  if args.advi_iterations is not None else {}))
    print(f"wrote {args.out}/posterior.nc, diagnostics.json, model.json\n{result.summary()}")
    return 0


def add_contrasts(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree contrasts``."""
    p = command(sub, "contrasts", run_contrasts, "contrast table of a fit (and forest plot)")
    p.add_argument("fit_dir", type=Path, metavar="FITDIR")
    p.add_argument("--out", required=True, type=Path, help="CSV file to write")
    p.add_argument("--threshold", type=int, default=None,
                   help="lowest rating counted as high (default 4 on a 5-point scale)")
    p.add_argument("--on", choices=["high", "mean"], default="high",
                   help="contrast P(high rating) (default) or the mean rating")
    p.add_argument("--population", type=Path, default=None,
                   help="table of target-population cells: factor columns + proportion")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 when the fit's diagnostics are not ok")


def run_contrasts(args: argparse.Namespace) -> int:
    """Write the contrasts table of a fit and its forest plot."""
    from disagree.model import write_contrasts

    table, paths = write_contrasts(args.fit_dir, args.out, threshold=args.threshold, on=args.on,
                                   population=args.population, strict=args.strict)
    print(table.round(3).to_string(index=False))
    print(table.attrs["estimand"])
    print(f"wrote {' and '.join(map(str, paths))}")
    return 0


def add_diagnose(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree diagnose``."""
    p = command(sub, "diagnose", run_diagnose,
                 "print a fit's diagnostics; write trace/rank and posterior predictive plots, "
                 "the prior sensitivity (with item_group_sd's prior vs posterior), the "
                 "estimand table and report.md")
    p.add_argument("fit_dir", type=Path, metavar="FITDIR")
    p.add_argument("--out", type=Path, default=None, help="folder for plots (default FITDIR)")


def run_diagnose(args: argparse.Namespace) -> int:
    """Diagnostics, trace/rank plots and posterior predictive checks of a fit."""
    from disagree.model import diagnose, load_fit

    result = load_fit(args.fit_dir)
    print(result.summary())
    paths = diagnose(result, args.out or args.fit_dir)
    print(f"wrote {', '.join(p.name for p in paths)} to {args.out or args.fit_dir}")
    return 0


def add_disagreement(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree disagreement``."""
    p = command(sub, "disagreement", run_disagreement,
                "per item, where the levels of a factor rate differently (needs a fit with "
                "--interactions on that factor for groups to order items differently)")
    p.add_argument("fit_dir", type=Path, metavar="FITDIR")
    p.add_argument("--factor", required=True, help="e.g. politics")
    p.add_argument("--dimension", required=True, help="e.g. emotional_awareness")
    p.add_argument("--out", required=True, type=Path, help="items table (CSV, TSV, Parquet)")
    p.add_argument("--plot", type=Path, default=None, help="plot of the top items (PNG, PDF)")
    p.add_argument("--data", type=Path, default=None,
                   help="the ratings file (for the items' prompts: pairs of responses to one "
                        "prompt that the groups order differently)")
    p.add_argument("--pairs", type=Path, default=None, help="pairs table (needs --data)")
    p.add_argument("--sort", choices=["difference", "order"], default="difference",
                   help="rank items by the largest difference to the reference (default) or "
                        "by the probability that groups order its prompt's responses differently")
    p.add_argument("--draws", type=int, default=None, help="use this many evenly spaced draws")


def run_disagreement(args: argparse.Namespace) -> int:
    """Write the per-item group disagreement table (and plot)."""
    from disagree.data import load_ratings
    from disagree.labels.report import write_disagreement

    prompts = load_ratings(args.data) if args.data else None
    paths = write_disagreement(args.fit_dir, args.factor, args.dimension, args.out,
                               plot=args.plot, pairs=args.pairs, prompts=prompts,
                               sort=args.sort, draws=args.draws)
    print(f"wrote {', '.join(map(str, paths))}")
    return 0


def add_compare(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree compare``."""
    p = command(sub, "compare", run_compare,
                "compare fits of the same ratings by PSIS-LOO; says per factor whether the data "
                "support groups disagreeing about items")
    p.add_argument("fit_dirs", type=Path, nargs="+", metavar="FITDIR", help="two or more fits")
    p.add_argument("--out", type=Path, default=None, help="write the table (CSV, Parquet)")


def run_compare(args: argparse.Namespace) -> int:
    """Print (and write) the LOO comparison table and its verdicts."""
    from disagree.model import write_comparison

    print(write_comparison(args.fit_dirs, args.out))
    return 0
