"""The cost of one log-density-and-gradient evaluation, this tree against an earlier commit.

What NUTS and ADVI pay per step: nutpie's compiled log density with its gradient (Numba), and
PyTensor's default (C) mode that ADVI uses, timed over repeated evaluations at one point, on
three simulated surveys, each written to Parquet and read back as ``disagree fit`` reads it:
``1x``, the study's size on one dimension (1,095 raters, 27,375 ratings), ``10x``, ten times
the study on five dimensions (10,950 raters, 273,750 ratings) and ``kumar``, Kumar-sized data
(17,280 raters, 107,600 responses, 518,400 ratings). ``--against REV`` checks REV out into a
temporary git worktree and runs the same measurement there, in its own process, side by side.

Run: ``.venv/bin/python benchmarks/gradient_cost.py --against 4ccf3f2``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTORS = ["gender", "politics", "ethnicity"]
SURVEYS = {  # name: the simulator's shape
    "1x": dict(n_raters=1095, n_prompts=60, prompts_per_rater=5, dimensions=("toxicity",)),
    "10x": dict(n_raters=10950, n_prompts=600),
    "kumar": dict(n_raters=17_280, n_prompts=21_520, prompts_per_rater=6,
                  dimensions=("toxicity",)),
}


def measure(name: str, evals: int) -> dict:
    """Time the model's log density and gradient on survey ``name`` (in this process)."""
    import warnings

    warnings.simplefilter("ignore")
    import nutpie
    import pytensor

    from disagree.data import load_ratings, save_ratings, simulate_survey
    from disagree.model import make_spec
    from disagree.model.build import build_model
    from disagree.model.spec import model_data

    with tempfile.TemporaryDirectory() as tmp:  # from a file, as `disagree fit` reads it
        path = save_ratings(simulate_survey(seed=0, **SURVEYS[name]).table,
                            Path(tmp) / "ratings.parquet")
        table = load_ratings(path)
    spec = make_spec(table, FACTORS, None, None, None, None, "dummy")
    data = model_data(table, spec)
    model = build_model(spec, data)
    compiled = nutpie.compile_pymc_model(model)
    point = model.initial_point(0)
    c_mode = pytensor.function(model.value_vars,
                               [model.logp(), *pytensor.grad(model.logp(), model.value_vars)])
    calls = {"numba": (compiled.logp_func, [compiled.initial_point_func(0)]),
             "c": (c_mode, [point[v.name] for v in model.value_vars])}
    out = {"ratings": len(data.y)}
    for mode, (fn, args) in calls.items():
        fn(*args)
        start = time.perf_counter()
        for _ in range(evals):
            fn(*args)
        out[f"{mode}_ms"] = 1000 * (time.perf_counter() - start) / evals
    return out


def run(tree: Path, name: str, evals: int) -> dict:
    """``measure`` in a fresh process importing ``disagree`` from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, __file__, "--child", name, "--evals", str(evals)],
                          env=env, cwd=tree, capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--against", default=None, help="an earlier commit to compare with")
    p.add_argument("--evals", type=int, default=100)
    p.add_argument("--surveys", default=",".join(SURVEYS))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.evals)))
        return
    trees = {"this tree": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            old = Path(tmp) / "old"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                            args.against], check=True, capture_output=True)
            trees[args.against] = old
        try:
            for name in args.surveys.split(","):
                for label, tree in trees.items():
                    r = run(tree, name, args.evals)
                    print(f"{name:<22} {label:<10} {json.dumps(r)}", flush=True)
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(Path(tmp) / "old")], capture_output=True)


if __name__ == "__main__":
    main()
