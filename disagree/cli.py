"""The ``disagree`` command line: a thin layer over the library.

Each subcommand is ``add_<name>(subparsers)`` plus ``run_<name>(args)``; a ``run_*`` parses
its arguments, makes one library call and prints what that call returns. Any
:class:`~disagree.errors.DisagreeError` becomes ``disagree: error: <message>`` on stderr and exit
code 2; nothing else is caught, so real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from disagree.errors import ConvergenceError, DisagreeError

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
SAMPLERS = ["nutpie", "pymc", "numpyro", "advi"]
REFERENCE_HELP = "reference levels, e.g. gender=female,politics=liberal"


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
                add_softlabels, add_pairs, add_train, add_demo):
        add(sub)
    return parser


# --- simulate ------------------------------------------------------------------------------

def add_simulate(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree simulate``."""
    p = _command(sub, "simulate", run_simulate,
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


# --- validate, describe --------------------------------------------------------------------

def add_validate(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree validate``."""
    p = _command(sub, "validate", run_validate,
                 "check a ratings file and print a summary (exit 2 on bad input)")
    _ratings_args(p)


def run_validate(args: argparse.Namespace) -> int:
    """Validate and summarise a ratings file."""
    print(_load(args).summary())
    return 0


def add_describe(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree describe``."""
    p = _command(sub, "describe", run_describe,
                 "descriptive tables and figures: distributions, raw group differences, "
                 "Krippendorff's alpha, Figure 1")
    _ratings_args(p)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--factors", type=_csv_list, default=None,
                   help="comma-separated factors (rater attributes; default: all with 2-12 "
                        "levels)")
    p.add_argument("--reference", type=_group, default=None, help=REFERENCE_HELP)
    p.add_argument("--threshold", type=int, default=None,
                   help="lowest rating counted as high (default 4 on a 5-point scale)")


def run_describe(args: argparse.Namespace) -> int:
    """Describe a ratings file into a folder."""
    from disagree.describe import describe

    paths = describe(_load(args), args.out, factors=args.factors, reference=args.reference,
                     threshold=args.threshold)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


# --- fit, contrasts, diagnose --------------------------------------------------------------

def add_fit(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree fit``."""
    p = _command(sub, "fit", run_fit, "fit the Bayesian hierarchical ordinal model "
                 "(writes posterior.nc, diagnostics.json, model.json)")
    _ratings_args(p)
    p.add_argument("--out", required=True, type=Path, help="fit directory")
    p.add_argument("--factors", type=_csv_list, default=None,
                   help="comma-separated factors (rater attributes), e.g. gender,politics")
    _renamed_flag(p, "--covariates", "--factors", type=_csv_list)
    p.add_argument("--reference", type=_group, default=None, help=REFERENCE_HELP)
    p.add_argument("--sampler", default="nutpie", choices=SAMPLERS)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--low-rank", action="store_true",
                   help="nutpie's low-rank modified mass matrix adaptation")


def run_fit(args: argparse.Namespace) -> int:
    """Fit and save the model."""
    from disagree.model import fit

    if not args.factors:
        raise DisagreeError("fit needs --factors, e.g. --factors gender,politics")
    result = fit(_load(args), args.factors, args.reference, args.dimensions,
                 sampler=args.sampler, draws=args.draws, tune=args.tune, chains=args.chains,
                 seed=args.seed, low_rank=args.low_rank, out_dir=args.out,
                 progress=sys.stderr.isatty())
    print(f"wrote {args.out}/posterior.nc, diagnostics.json, model.json\n{result.summary()}")
    return 0


def add_contrasts(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree contrasts``."""
    p = _command(sub, "contrasts", run_contrasts, "contrast table of a fit (and forest plot)")
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
    print(f"wrote {' and '.join(map(str, paths))}")
    return 0


def add_diagnose(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree diagnose``."""
    p = _command(sub, "diagnose", run_diagnose,
                 "print a fit's diagnostics; write trace/rank and posterior predictive plots")
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


# --- softlabels, pairs ---------------------------------------------------------------------

def add_softlabels(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree softlabels``."""
    p = _command(sub, "softlabels", run_softlabels,
                 "posterior soft labels per rater, group or population")
    p.add_argument("fit_dir", type=Path, metavar="FITDIR")
    p.add_argument("--unit", choices=["rater", "group", "population"], default=None,
                   help="whose labels (default population)")
    _renamed_flag(p, "--level", "--unit", choices=["rater", "group", "population"])
    p.add_argument("--factors", type=_csv_list, default=None,
                   help="unit group: comma-separated factors, e.g. gender,politics")
    _renamed_flag(p, "--by", "--factors", type=_csv_list)
    p.add_argument("--population", type=Path, default=None,
                   help="unit population: table of cells (factor columns + proportion)")
    p.add_argument("--dimensions", type=_csv_list, default=None)
    p.add_argument("--draws", type=int, default=None, help="use this many evenly spaced draws")
    p.add_argument("--out", required=True, type=Path, help="Parquet (or CSV) file to write")


def run_softlabels(args: argparse.Namespace) -> int:
    """Compute and write soft labels."""
    from disagree.labels import soft_labels, write_soft_labels

    labels = soft_labels(args.fit_dir, args.unit, args.factors, population=args.population,
                         dimensions=args.dimensions, draws=args.draws,
                         progress=sys.stderr.isatty())
    write_soft_labels(labels, args.out)
    print(f"wrote {args.out}: {len(labels):,} rows (unit {args.unit or 'population'})")
    return 0


def add_pairs(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree pairs``."""
    p = _command(sub, "pairs", run_pairs,
                 "weighted preference pairs for TRL (pairs.jsonl, pairs.parquet, splits, "
                 "manifest.json)")
    _ratings_args(p, dimensions=False)
    p.add_argument("--fit", type=Path, default=None, help="fit directory (needed for soft)")
    p.add_argument("--dimension", required=True, type=_weights,
                   help="a dimension, or weighted dimensions, e.g. toxicity=1,helpfulness=0.5")
    p.add_argument("--strategy", choices=["majority", "all", "soft"], default="majority")
    p.add_argument("--unit", choices=["population", "group", "rater"], default=None,
                   help="whose preference (default: population, or group with --group)")
    p.add_argument("--group", type=_group, default=None,
                   help="restrict to a group of raters, e.g. politics=conservative")
    p.add_argument("--to-scale", type=int, choices=[2, 3, 5], default=None,
                   help="convert the ratings to this many points first")
    p.add_argument("--margin", type=float, default=0.1,
                   help="soft: drop pairs whose weight is within this of 0.5 (default 0.1)")
    p.add_argument("--split", type=_fractions, default=(0.8, 0.1, 0.1),
                   help="train,validation,test fractions by prompt (default 0.8,0.1,0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output folder")


def run_pairs(args: argparse.Namespace) -> int:
    """Build and write preference pairs."""
    from disagree.pairs import make_pairs

    pairs = make_pairs(_load(args), args.fit, dimension=args.dimension, strategy=args.strategy,
                       unit=args.unit, group=args.group, to_scale=args.to_scale,
                       margin=args.margin, split=args.split, seed=args.seed)
    pairs.save(args.out)
    print(f"wrote {pairs.summary()} to {args.out}")
    return 0


# --- train, demo ---------------------------------------------------------------------------

def add_train(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree train``."""
    p = _command(sub, "train", run_train,
                 "DPO (plain, soft, importance) or GRPO with TRL from a YAML config; resumes "
                 "from the last checkpoint when re-run (needs the 'train' extra)")
    p.add_argument("config", type=Path, help="run config (see configs/*.yaml)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="run folder (overrides the config's output_dir)")
    p.add_argument("--check", action="store_true",
                   help="only check the config and its inputs; load no model")
    p.add_argument("--quiet", action="store_true", help="no progress bar or stage lines")


def run_train(args: argparse.Namespace) -> int:
    """Check a run config, then train (or resume)."""
    from disagree import train

    cfg = train.load_config(args.config)
    if args.output_dir is not None:
        cfg = cfg.with_output_dir(args.output_dir)
    if args.check:
        print(f"config ok: {cfg.method} on {cfg.model} -> {cfg.output_dir}")
        return 0
    print(train.train(cfg, progress=not args.quiet).summary())
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree demo``."""
    p = _command(sub, "demo", run_demo,
                 "the pipeline on the bundled default survey (or --data): simulate -> "
                 "validate -> describe -> fit -> contrasts -> soft pairs -> tiny soft-DPO run")
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default demo)")
    p.add_argument("--data", type=Path, default=None,
                   help="your own ratings file instead of the simulated survey")
    p.add_argument("--no-fit", action="store_true", help="stop after describe (seconds)")
    p.add_argument("--sampler", default="nutpie", choices=SAMPLERS)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo pipeline (its steps print as they go)."""
    from disagree.demo import run

    run(args.out, args.data, fit_model=not args.no_fit, sampler=args.sampler,
        progress=sys.stderr.isatty())
    return 0


# --- shared pieces -------------------------------------------------------------------------

def _command(sub: argparse._SubParsersAction, name: str, run: Callable[..., int],
             help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(run=run)
    return p


def _ratings_args(p: argparse.ArgumentParser, dimensions: bool = True) -> None:
    p.add_argument("ratings", type=Path, metavar="RATINGS",
                   help="ratings file: CSV, TSV or Parquet, long or wide format")
    if dimensions:
        p.add_argument("--dimensions", type=_csv_list, default=None,
                       help="comma-separated dimensions to keep (wide files: the dimension "
                            "columns)")
    p.add_argument("--scale", type=int, default=None,
                   help="number of rating categories (default: the largest rating seen)")
    p.add_argument("--columns", type=_mapping, default=None,
                   help="renames, e.g. user_id=rater_id,instance_id=item_id")
    p.add_argument("--ignore-columns", type=_csv_list, default=None,
                   help="comma-separated columns to leave out")
    p.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8)")


def _renamed_flag(p: argparse.ArgumentParser, old: str, new: str,
                  type: Callable[[str], object] = str, **kwargs) -> None:
    """Register an old spelling of ``new``: same destination, a warning on stderr when used."""
    def convert(text: str) -> object:
        print(f"disagree: warning: {old} is deprecated; use {new}", file=sys.stderr)
        return type(text)

    p.add_argument(old, dest=new.lstrip("-").replace("-", "_"), type=convert,
                   help=argparse.SUPPRESS, default=None, **kwargs)


def _load(args: argparse.Namespace):
    from disagree.data import load_ratings

    return load_ratings(args.ratings, columns=args.columns,
                        dimensions=getattr(args, "dimensions", None), scale=args.scale,
                        ignore_columns=args.ignore_columns, encoding=args.encoding)


def _weights(text: str) -> str | dict[str, float]:
    if "=" not in text:
        return text.strip()
    try:
        return {k: float(v) for k, v in _mapping(text).items()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected dimension=weight,...") from None


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in _csv_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected fractions such as 0.8,0.1,0.1") \
            from None


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _mapping(text: str) -> dict[str, str]:
    out = {}
    for part in _csv_list(text):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{part!r}: expected name=value")
        out[key.strip()] = value.strip()
    return out


def _group(text: str) -> dict[str, str]:
    from disagree.data.groups import parse_group

    try:
        return parse_group(text)
    except DisagreeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
