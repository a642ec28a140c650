"""Every stage at k times the study's size: the fit, then labels, pairs, contrasts and PPC.

The survey is the study-shaped simulation (``simulate_survey``, seed 0, five dimensions) with
``k`` times the raters and prompts (k = 10: 10,950 raters, 600 prompts x 5 responses, 273,750
ratings). Each step runs in its own process; the table gives its whole-process wall time
(imports and loading included) and peak RSS (``ru_maxrss``):

``fit``
    ``disagree fit`` with factors gender, politics, ethnicity; ``--sampler`` (default advi,
    1000 draws: a posterior of the right shape for the later steps in minutes; ``nutpie``
    samples until ok, ``--no-rater-effects`` drops the rater effects' draws).
``rater``
    rater-level labels of the items each rater rated, streamed to Parquet
    (:func:`disagree.labels.write_rater_labels`).
``group`` / ``population``
    group labels of every gender x politics x ethnicity cell / the sample population
    (``--label-draws N``: from N evenly spaced draws; the work is linear in them, and
    ``benchmarks/label_thinning.py`` measures what it costs in accuracy).
``pairs``
    ``soft`` pairs on toxicity (population weights), written.
``contrasts`` / ``ppc``
    :meth:`Fit.contrasts` and :meth:`Fit.ppc` (200 draws).

Kumar-sized data (``--kumar``: 17,280 raters, 21,520 prompts x 5 responses = 107,600 items,
six prompts a rater: 518,400 ratings of toxicity) runs the same steps on one dimension.

Run: ``.venv/bin/python benchmarks/scale.py --k 10 --out /tmp/scale10``
(``--steps fit,rater,...`` for some; a step whose output exists is rerun, the survey and fit are
reused when present).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

STUDY = {"n_raters": 1095, "n_prompts": 60}
FACTORS = ["gender", "politics", "ethnicity"]
STEPS = ["fit", "rater", "group", "population", "pairs", "contrasts", "ppc"]


def simulate(out: Path, k: int, kumar: bool) -> Path:
    """Write the survey once; return its path."""
    path = out / "ratings.parquet"
    if path.exists():
        return path
    from disagree.data import save_ratings, simulate_survey

    shape = ({"n_raters": 17_280, "n_prompts": 21_520, "prompts_per_rater": 6,
              "dimensions": ("toxicity",)} if kumar else
             {"n_raters": STUDY["n_raters"] * k, "n_prompts": STUDY["n_prompts"] * k})
    save_ratings(simulate_survey(seed=0, **shape).table, path)
    return path


def step(name: str, out: Path, sampler: str, extra: list[str],
         label_draws: int | None = None) -> dict:
    """Run one step in this process; return its figures."""
    warnings.simplefilter("ignore")
    ratings, fit_dir = out / "ratings.parquet", out / "fit"
    figures: dict = {}
    if name == "fit":
        from disagree.cli import main

        args = ["fit", str(ratings), "--factors", ",".join(FACTORS), "--sampler", sampler,
                "--out", str(fit_dir), *extra]
        if sampler == "advi":
            args += ["--draws", "1000"]
        main(args)
        diag = json.loads((fit_dir / "diagnostics.json").read_text())
        figures = {"ok": diag["ok"], "min_ess": diag["ess_bulk_min"],
                   "seconds": diag["seconds"]}
    elif name == "rater":
        import pyarrow.parquet as pq

        from disagree.labels import write_rater_labels

        path = write_rater_labels(fit_dir, out / "raters.parquet")
        meta = pq.ParquetFile(path).metadata
        figures = {"rows": meta.num_rows, "row_groups": meta.num_row_groups}
    elif name in ("group", "population"):
        from disagree.labels import soft_labels, write_soft_labels

        labels = soft_labels(fit_dir, name, FACTORS if name == "group" else None,
                             draws=label_draws)
        write_soft_labels(labels, out / f"{name}.parquet")
        figures = {"rows": len(labels)}
    elif name == "pairs":
        from disagree.data import load_ratings
        from disagree.pairs import make_pairs

        pairs = make_pairs(load_ratings(ratings), fit_dir, dimension="toxicity",
                           strategy="soft")
        pairs.save(out / "pairs")
        figures = {"pairs": len(pairs.frame)}
    else:
        from disagree.model import load_fit

        table = getattr(load_fit(fit_dir), name)()
        figures = {"rows": len(table)}
    return figures | {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def spawn(name: str, args: argparse.Namespace, extra: list[str]) -> dict:
    """Run ``name`` in a fresh process; add its whole-process wall time."""
    start = time.perf_counter()
    thin = ["--label-draws", str(args.label_draws)] if args.label_draws else []
    proc = subprocess.run([sys.executable, __file__, "--child", name, "--out", str(args.out),
                           "--sampler", args.sampler, *thin, "--", *extra],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:], "wall_s": wall}
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"wall_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--kumar", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", default=",".join(STEPS))
    p.add_argument("--sampler", default="advi")
    p.add_argument("--label-draws", type=int, default=None,
                   help="group and population labels from this many evenly spaced draws")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("extra", nargs="*", help="more `disagree fit` options, after --")
    args = p.parse_args()
    if args.child:
        print(json.dumps(step(args.child, args.out, args.sampler, args.extra,
                              args.label_draws)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    simulate(args.out, args.k, args.kumar)
    print(f"survey: {args.out / 'ratings.parquet'} ({time.perf_counter() - start:.0f} s)",
          flush=True)
    for name in args.steps.split(","):
        if name == "fit" and (args.out / "fit" / "model.json").exists():
            print("fit: reusing", args.out / "fit", flush=True)
            continue
        r = spawn(name, args, args.extra)
        rest = {k: v for k, v in r.items() if k not in ("wall_s", "peak_rss_gib")}
        print(f"{name:<11} wall {r['wall_s']:8.1f} s   peak RSS "
              f"{r.get('peak_rss_gib', float('nan')):5.2f} GiB   {rest}", flush=True)


if __name__ == "__main__":
    main()
