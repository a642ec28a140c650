"""The ``disagree`` command line: a thin layer over the library.

Each subcommand is ``add_<name>(subparsers)`` plus ``run_<name>(args)``. Any
:class:`~disagree.errors.DisagreeError` becomes ``disagree: error: <message>`` on stderr and exit
code 2; nothing else is caught, so real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from disagree._io import write_table
from disagree.errors import DisagreeError

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    warnings.showwarning = _show_warning
    # pip-installed PyTensor never links a BLAS; nutpie compiles with numba and does not need it
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    try:
        return int(args.run(args) or 0)
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
    print(_truth_lines(survey.truth))
    return 0


# --- validate ------------------------------------------------------------------------------

def add_validate(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree validate``."""
    p = _command(sub, "validate", run_validate,
                 "check a ratings file and print a summary (exit 2 on bad input)")
    _ratings_args(p)


def run_validate(args: argparse.Namespace) -> int:
    """Validate and summarise a ratings file."""
    print(_load(args).summary())
    return 0


# --- describe ------------------------------------------------------------------------------

def add_describe(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree describe``."""
    p = _command(sub, "describe", run_describe,
                 "descriptive tables and figures: distributions, raw group differences, "
                 "Krippendorff's alpha, Figure 1")
    _ratings_args(p)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    _factor_args(p)


def run_describe(args: argparse.Namespace) -> int:
    """Describe a ratings file into a folder."""
    from disagree.describe import describe

    table = _load(args)
    paths = describe(table, args.out, factors=args.factors, reference=args.reference,
                     threshold=args.threshold)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


# --- fit -----------------------------------------------------------------------------------

def add_fit(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree fit``."""
    p = _command(sub, "fit", run_fit, "fit the Bayesian hierarchical ordinal model "
                 "(writes posterior.nc, diagnostics.json, model.json)")
    _ratings_args(p)
    p.add_argument("--out", required=True, type=Path, help="fit directory")
    p.add_argument("--covariates", required=True, type=_csv_list,
                   help="comma-separated rater attributes, e.g. gender,politics,ethnicity")
    p.add_argument("--reference", type=_mapping, default=None,
                   help="reference levels, e.g. gender=female,politics=liberal")
    p.add_argument("--sampler", default="nutpie", choices=["nutpie", "pymc", "numpyro", "advi"])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--low-rank", action="store_true",
                   help="nutpie's low-rank modified mass matrix adaptation")


def run_fit(args: argparse.Namespace) -> int:
    """Fit and save the model."""
    from disagree.model import fit

    table = _load(args)
    result = fit(table, args.covariates, args.reference, args.dimensions, sampler=args.sampler,
                 draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                 low_rank=args.low_rank, out_dir=args.out, progress=sys.stderr.isatty())
    print(f"wrote {args.out}/posterior.nc, diagnostics.json, model.json")
    print(_diagnostics_lines(result.diagnostics))
    return 0


# --- contrasts -----------------------------------------------------------------------------

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
                   help="CSV of target-population cells: covariate columns + proportion")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 when the fit's diagnostics are not ok")


def run_contrasts(args: argparse.Namespace) -> int:
    """Write the contrasts table of a fit."""
    from disagree.model import load_fit
    from disagree.model.plots import plot_contrasts

    result = load_fit(args.fit_dir)
    if args.strict and not result.diagnostics["ok"]:
        print(f"disagree: fit {args.fit_dir} did not pass its diagnostics:\n"
              + _diagnostics_lines(result.diagnostics), file=sys.stderr)
        return EXIT_NOT_CONVERGED
    population = _read_population(args.population)
    table = result.contrasts(threshold=args.threshold, on=args.on, population=population)
    write_table(args.out, table)
    png = _save_png(args.out.with_suffix(".png"), plot_contrasts(table)[0])
    print(table.round(3).to_string(index=False))
    print(f"wrote {args.out} and {png}")
    return 0


# --- diagnose ------------------------------------------------------------------------------

def add_diagnose(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree diagnose``."""
    p = _command(sub, "diagnose", run_diagnose,
                 "print a fit's diagnostics; write trace/rank and posterior predictive plots")
    p.add_argument("fit_dir", type=Path, metavar="FITDIR")
    p.add_argument("--out", type=Path, default=None, help="folder for plots (default FITDIR)")


def run_diagnose(args: argparse.Namespace) -> int:
    """Diagnostics, trace/rank plots and posterior predictive checks of a fit."""
    from disagree.model import load_fit
    from disagree.model.plots import plot_ppc, plot_trace

    result = load_fit(args.fit_dir)
    out = args.out or args.fit_dir
    print(_diagnostics_lines(result.diagnostics))
    ppc = result.ppc()
    write_table(out / "ppc.csv", ppc)
    figures = {"trace.png": plot_trace(result.idata)[0]}
    for factor in ppc["factor"].unique():  # in order of appearance
        figures[f"ppc_{factor}.png"] = plot_ppc(ppc, factor)[0]
    for name, fig in figures.items():
        _save_png(out / name, fig)
    print(f"wrote ppc.csv and {', '.join(figures)} to {out}")
    return 0


# --- softlabels ----------------------------------------------------------------------------

def add_softlabels(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree softlabels``."""
    p = _command(sub, "softlabels", run_softlabels,
                 "posterior soft labels per rater, demographic group or population")
    p.add_argument("fit_dir", type=Path, metavar="FITDIR")
    p.add_argument("--level", choices=["rater", "group", "population"], default="population")
    p.add_argument("--by", type=_csv_list, default=None,
                   help="group level: comma-separated covariates, e.g. gender,politics")
    p.add_argument("--population", type=Path, default=None,
                   help="population level: CSV of cells (covariate columns + proportion)")
    p.add_argument("--dimensions", type=_csv_list, default=None)
    p.add_argument("--draws", type=int, default=None, help="use this many evenly spaced draws")
    p.add_argument("--out", required=True, type=Path, help="Parquet (or CSV) file to write")


def run_softlabels(args: argparse.Namespace) -> int:
    """Compute and write soft labels."""
    from disagree.labels import soft_labels, write_soft_labels
    from disagree.model import load_fit

    result = load_fit(args.fit_dir)
    population = _read_population(args.population)
    labels = soft_labels(result, args.level, by=args.by, population=population,
                         dimensions=args.dimensions, draws=args.draws,
                         progress=sys.stderr.isatty())
    write_soft_labels(labels, args.out)
    print(f"wrote {args.out}: {len(labels):,} rows ({args.level} level)")
    return 0


# --- pairs ---------------------------------------------------------------------------------

def add_pairs(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree pairs``."""
    p = _command(sub, "pairs", run_pairs,
                 "weighted preference pairs for TRL (pairs.jsonl, pairs.parquet, splits, "
                 "manifest.json)")
    _ratings_args(p, declare_scale=False)
    p.add_argument("--fit", type=Path, default=None, help="fit directory (needed for soft)")
    p.add_argument("--dimension", required=True, type=_weights,
                   help="a dimension, or weighted dimensions, e.g. toxicity=1,helpfulness=0.5")
    p.add_argument("--strategy", choices=["majority", "all", "soft"], default="majority")
    p.add_argument("--unit", choices=["population", "group", "rater"], default=None,
                   help="whose preference (default: population, or group with --group)")
    p.add_argument("--group", type=_mapping, default=None,
                   help="restrict to a demographic group, e.g. politics=conservative")
    p.add_argument("--scale", dest="pair_scale", type=int, choices=[2, 3, 5], default=None,
                   help="convert ratings to this many points first")
    p.add_argument("--margin", type=float, default=0.1,
                   help="soft: drop pairs whose weight is within this of 0.5 (default 0.1)")
    p.add_argument("--split", type=_fractions, default=(0.8, 0.1, 0.1),
                   help="train,validation,test fractions by prompt (default 0.8,0.1,0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output folder")


def run_pairs(args: argparse.Namespace) -> int:
    """Build and write preference pairs."""
    from disagree.pairs import make_pairs

    table = _load(args)
    pairs = make_pairs(table, args.fit, dimension=args.dimension, strategy=args.strategy,
                       unit=args.unit, group=args.group, scale=args.pair_scale,
                       margin=args.margin, split=args.split, seed=args.seed)
    pairs.save(args.out)
    counts = pairs.frame["split"].value_counts().reindex(["train", "validation", "test"])
    print(f"wrote {len(pairs):,} pairs to {args.out} ("
          + ", ".join(f"{k}: {int(v)}" for k, v in counts.fillna(0).items()) + ")")
    return 0


# --- train ---------------------------------------------------------------------------------

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
    from disagree.errors import TrainError

    try:
        from disagree.train.config import load_config
        from disagree.train.run import train
    except ImportError as err:
        raise TrainError(f"training needs the 'train' extra (pip install -e '.[train]'): "
                         f"{err}") from err
    cfg = load_config(args.config)
    if args.output_dir is not None:
        cfg = dataclasses.replace(cfg, output_dir=args.output_dir.absolute())
    if args.check:
        print(f"config ok: {cfg.method} on {cfg.model} -> {cfg.output_dir}")
        return 0
    out = train(cfg, progress=not args.quiet)
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    final = run.get("final_metrics", {})
    shown = {k: v for k, v in {**final.get("train", {}), **final.get("eval", {})}.items()
             if k in ("train_loss", "eval_rewards/accuracies", "eval_rewards/margins")}
    print(f"{cfg.method}: {run.get('global_step')} steps, {run.get('wall_seconds')} s; "
          + ", ".join(f"{k} {v:.3f}" for k, v in shown.items()) + f"\nrun folder: {out}")
    return 0


# --- demo ----------------------------------------------------------------------------------

def add_demo(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree demo``."""
    p = _command(sub, "demo", run_demo,
                 "the pipeline on the bundled default survey: simulate -> validate -> "
                 "describe -> fit -> contrasts -> soft pairs -> tiny soft-DPO run (CPU)")
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default demo)")
    p.add_argument("--no-fit", action="store_true", help="stop after describe (seconds)")
    p.add_argument("--sampler", default="nutpie", choices=["nutpie", "pymc", "numpyro", "advi"])


def run_demo(args: argparse.Namespace) -> int:
    """Simulate the default survey, check it equals the bundled copy, validate, describe, fit."""
    from disagree.data import load_ratings, simulate_survey
    from disagree.data.simulate import REFERENCE, default_survey_path
    from disagree.describe import describe, raw_differences

    out: Path = args.out
    steps = 3 if args.no_fit else 7
    start = time.perf_counter()
    print(f"1/{steps} simulate: default survey, seed 0")
    survey = simulate_survey(seed=0)
    path = survey.save(out / "data")
    print(f"    wrote {path}")
    print(_truth_lines(survey.truth))
    bundled = default_survey_path()
    if bundled.exists():
        same = bundled.read_bytes() == path.read_bytes()
        print(f"    identical to the bundled {bundled.name}: {'yes' if same else 'NO'}")
    print(f"2/{steps} validate")
    table = load_ratings(path, scale=survey.config.scale)
    print("    " + table.summary().replace("\n", "\n    "))
    print(f"3/{steps} describe")
    describe(table, out / "describe", reference=REFERENCE)
    raw = raw_differences(table, reference=REFERENCE)
    truth = {(c["dimension"], c["level"]): c["estimate"]
             for c in survey.truth["contrasts"] if c["measure"] == "relative_pct"}
    headline = [key.split("|") for key in survey.truth["targets"]]
    print("    raw (model-free) relative differences in P(rating >= 4), vs truth:")
    for dim, _, level in headline:
        row = raw[(raw.dimension == dim) & (raw.level == level)
                  & (raw.measure == "relative_pct")].iloc[0]
        print(f"    {dim:>20} {level} vs {row.reference}: raw {row.estimate:+6.1f}%   "
              f"truth {truth[(dim, level)]:+6.1f}%")
    if not args.no_fit:
        from disagree.model import fit

        covariates = ["gender", "politics", "ethnicity", "country"]
        print(f"4/{steps} fit: joint model of the 5 dimensions, covariates "
              f"{', '.join(covariates)} ({args.sampler})")
        result = fit(table, covariates, {c: REFERENCE[c] for c in covariates},
                     sampler=args.sampler, out_dir=out / "fit", progress=sys.stderr.isatty())
        print("    " + _diagnostics_lines(result.diagnostics).replace("\n", "\n    "))
        print(f"5/{steps} contrasts: model-based relative differences, 95% intervals, vs truth")
        contrasts = result.contrasts()
        write_table(out / "contrasts.csv", contrasts)
        for dim, _, level in headline:
            row = contrasts[(contrasts.dimension == dim) & (contrasts.level == level)
                            & (contrasts.measure == "relative_pct")].iloc[0]
            print(f"    {dim:>20} {level} vs {row.reference}: {row.estimate:+6.1f}% "
                  f"[{row.lower:+6.1f}, {row.upper:+6.1f}]   truth {truth[(dim, level)]:+6.1f}%")
        _demo_train(table, result, out, steps)
    print(f"done in {time.perf_counter() - start:.1f} s; outputs in {out}/")
    return 0


def _demo_train(table, result, out: Path, steps: int) -> None:
    """Run steps 6 and 7 of the demo: soft toxicity pairs, then a tiny soft-DPO run."""
    from disagree.pairs import make_pairs

    print(f"6/{steps} pairs: soft toxicity pairs (posterior probability of being less toxic)")
    pairs = make_pairs(table, result, strategy="soft", dimension="toxicity", seed=0)
    pairs.save(out / "pairs")
    weights = pairs.frame["weight"]
    print(f"    {len(pairs):,} pairs, weights {weights.min():.2f}..{weights.max():.2f} "
          f"(median {weights.median():.2f}) -> {out / 'pairs'}")
    print(f"7/{steps} train: soft-target DPO of a tiny model built locally, on the CPU")
    try:
        from disagree.train.metrics import read_metrics
        from disagree.train.run import train
        from disagree.train.tiny import TINY_TRAINING
    except ImportError:
        print("    skipped: needs the 'train' extra (pip install -e '.[train]')")
        return
    run = train({"method": "dpo-soft", "model": "tiny", "output_dir": str(out / "train"),
                 "seed": 0, "threads": 1, "pairs": str(out / "pairs"),
                 "training": TINY_TRAINING}, progress=False)
    evals = [r for r in read_metrics(run / "metrics.jsonl") if r["split"] == "eval"]
    print("    validation pairs, from the reference model (step 0) to the trained one:")
    for key in ("eval_rewards/accuracies", "eval_rewards/margins", "eval_loss"):
        print(f"    {key[5:]:<20} step {evals[0]['step']}: {evals[0][key]:.3f} -> "
              f"step {evals[-1]['step']}: {evals[-1][key]:.3f}")
    print("    (TRL counts a tie as wrong: at step 0 every margin is 0, so accuracy is 0)")
    print(f"    run folder {run}")


# --- shared pieces -------------------------------------------------------------------------

def _command(sub: argparse._SubParsersAction, name: str, run: Callable[..., int],
             help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(run=run)
    return p


def _ratings_args(p: argparse.ArgumentParser, declare_scale: bool = True) -> None:
    p.add_argument("ratings", type=Path, metavar="RATINGS",
                   help="ratings file: CSV, TSV or Parquet, long or wide format")
    p.add_argument("--dimensions", type=_csv_list, default=None,
                   help="comma-separated dimensions to keep (wide files: the dimension columns)")
    if declare_scale:
        p.add_argument("--scale", type=int, default=None,
                       help="number of rating categories (default: the largest rating seen)")
    p.add_argument("--columns", type=_mapping, default=None,
                   help="renames, e.g. user_id=rater_id,instance_id=item_id")
    p.add_argument("--ignore-columns", type=_csv_list, default=None,
                   help="comma-separated columns to leave out")
    p.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8)")


def _factor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--factors", type=_csv_list, default=None,
                   help="comma-separated rater attributes (default: all with 2-12 levels)")
    p.add_argument("--reference", type=_mapping, default=None,
                   help="reference levels, e.g. gender=female,politics=liberal")
    p.add_argument("--threshold", type=int, default=None,
                   help="lowest rating counted as high (default 4 on a 5-point scale)")


def _load(args: argparse.Namespace):
    from disagree.data import load_ratings

    return load_ratings(args.ratings, columns=args.columns, dimensions=args.dimensions,
                        scale=getattr(args, "scale", None), ignore_columns=args.ignore_columns,
                        encoding=args.encoding)


def _save_png(path: Path, fig) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    import matplotlib.pyplot as plt

    from disagree._io import write_atomic

    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path


def _read_population(path: Path | None):
    import pandas as pd

    if path is None:
        return None
    if not path.exists():
        raise DisagreeError(f"{path}: no such population file")
    return pd.read_csv(path)


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


def _truth_lines(truth: dict) -> str:
    threshold = truth["high_threshold"]
    lines = [f"    calibrated true contrasts (relative_pct in P(rating >= {threshold})):"]
    for c in truth["contrasts"]:
        if c["measure"] == "relative_pct" and f"{c['dimension']}|{c['factor']}|{c['level']}" \
                in truth["targets"]:
            lines.append(f"    {c['dimension']:>20} {c['level']} vs {c['reference']}: "
                         f"{c['estimate']:+.1f}%")
    return "\n".join(lines)


def _diagnostics_lines(diag: dict) -> str:
    def num(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    seconds = ", ".join(f"{k} {v:.1f}" for k, v in diag["seconds"].items())
    lines = [f"sampler {diag['sampler']}: ok={diag['ok']}  R-hat max "
             f"{num(diag['rhat_max'], '.4f')}  bulk ESS min {num(diag['ess_bulk_min'], '.0f')}  "
             f"tail ESS min {num(diag['ess_tail_min'], '.0f')}  divergences "
             f"{diag['divergences']}  seconds: {seconds}"]
    lines += [f"  - {f}" for f in diag["failures"][:12]]
    if len(diag["failures"]) > 12:
        lines.append(f"  ... ({len(diag['failures'])} problems in all)")
    return "\n".join(lines)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"disagree: warning: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
