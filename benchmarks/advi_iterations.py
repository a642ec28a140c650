"""How many ADVI steps a fit needs, and what a step costs in each compile mode.

Part 1 (``--modes``): the cost of one ADVI step on the survey, compiled by PyTensor's C linker
(its default) and by numba: the wall time of ``pm.fit`` with 20 and with 420 steps, the
difference over 400 (the first call's time is mostly the compile).

Part 2: one ADVI run of ``--iterations`` steps (numba mode, the seed of ``disagree fit``) that
keeps the approximation's mean and sd at every ``--every`` steps. For each checkpoint it prints
how far its means are from the final ones in final sds, over the global parameters (the
coefficients, cut points and the log sds: what contrasts and labels rest on) and over all
parameters (every rater and item effect too), and the mean loss (negative ELBO) over the
``--every`` steps before it. A checkpoint whose globals sit within a small fraction of a sd of
the final ones has converged as far as the longer run can tell.

Run (the Kumar-sized survey of ``benchmarks/scale.py --kumar``):
``.venv/bin/python benchmarks/advi_iterations.py /tmp/kumar/ratings.parquet``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pymc as pm

from disagree.data import load_ratings
from disagree.model import make_spec
from disagree.model.build import build_model
from disagree.model.spec import model_data

FACTORS = ["gender", "politics", "ethnicity"]
GLOBALS = ("beta", "cutpoints_centred", "rater_sd", "item_sd", "rater_chol")


def step_cost(model: pm.Model, mode: str) -> tuple[float, float]:
    """Return (first call seconds, milliseconds a step) of ADVI compiled in ``mode``."""
    kwargs = {} if mode == "C" else {"compile_kwargs": {"mode": mode}}
    seconds = []
    for n in (20, 420):
        start = time.perf_counter()
        with model:
            pm.fit(n=n, method="advi", random_seed=0, progressbar=False, **kwargs)
        seconds.append(time.perf_counter() - start)
    return seconds[0], (seconds[1] - seconds[0]) / 400 * 1000


def checkpoints(model: pm.Model, iterations: int, every: int, adam: float | None) -> None:
    """Run ADVI once; print each checkpoint's distance from the final approximation.

    ``adam``: the learning rate of Adam as the optimiser (PyMC's default: windowed Adagrad).
    """
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def keep(approx, losses, i):
        if i % every == 0:
            kept[i] = approx.mean.get_value().copy(), approx.std.eval().copy()

    start = time.perf_counter()
    with model:
        approx = pm.fit(n=iterations, method="advi", random_seed=0, progressbar=False,
                        callbacks=[keep], compile_kwargs={"mode": "NUMBA"},
                        **({"obj_optimizer": pm.adam(learning_rate=adam)} if adam else {}))
    print(f"{iterations} steps in {time.perf_counter() - start:.0f} s")
    mean, sd = approx.mean.get_value(), approx.std.eval()
    ordering = approx.groups[0].ordering
    glob = np.concatenate([np.arange(mean.size)[sl] for name, (_, sl, _, _) in ordering.items()
                           if name.startswith(GLOBALS)])  # rater_sd_log__ and the like
    print(f"{glob.size} global of {mean.size} parameters")
    print("step    globals: max / median |dmean|/sd   all: max / median   sd ratio (globals)"
          "   mean loss")
    for i, (m, s) in sorted(kept.items()):
        z = np.abs(m - mean) / sd
        ratio = s[glob] / sd[glob]
        loss = approx.hist[max(0, i - every):i].mean()
        print(f"{i:>6}  {z[glob].max():8.3f} {np.median(z[glob]):8.3f}   "
              f"{z.max():8.3f} {np.median(z):8.3f}   {ratio.min():.2f}-{ratio.max():.2f}"
              f"   {loss:,.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ratings")
    p.add_argument("--iterations", type=int, default=30_000)
    p.add_argument("--every", type=int, default=5_000)
    p.add_argument("--modes", default="C,NUMBA", help="step cost in these modes ('' for none)")
    p.add_argument("--adam", type=float, default=None,
                   help="Adam with this learning rate (default: PyMC's windowed Adagrad)")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    table = load_ratings(args.ratings)
    spec = make_spec(table, FACTORS, None)
    model = build_model(spec, model_data(table, spec), rater_centred=False)
    for mode in filter(None, args.modes.split(",")):
        first, ms = step_cost(model, mode)
        print(f"{mode}: first call {first:.1f} s (compile), {ms:.2f} ms a step")
    if args.iterations:
        checkpoints(model, args.iterations, args.every, args.adam)


if __name__ == "__main__":
    main()
