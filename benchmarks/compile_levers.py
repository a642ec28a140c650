"""Levers measured against a first fit's compile and the ten-times fit's leapfrog steps.

Parts (each configuration in a fresh subprocess, so its compile and peak memory are its own):

* ``compile``: the ``onedim`` survey of ``benchmarks/fit_speed.py`` (one dimension, 27,375
  ratings, 4 factors), the model ``disagree fit`` builds for it, compiled and sampled by
  nutpie (2 chains x ``--draws`` draws after as many tuning steps, seed 0), each with an empty
  PyTensor compile cache (a first fit on a new machine): nutpie's Numba backend as ``fit``
  uses it, again on the cache that run left (a refit), the same with numba's LLVM optimisation
  off (``NUMBA_OPT=0``), and nutpie's JAX backend (PyTensor's gradient, JAX-compiled).
  Columns: imports and build, compile, sampling, mean leapfrog steps after tuning, min bulk
  ESS over the coefficients, cut points and sds.
* ``ten``: ten times the study (10,950 raters, 600 prompts, five dimensions, simulator seed
  1), ``fit`` as the defaults have it (``diagonal``) against one lever at a time
  (``--ten-configs``, names of ``TEN``: nutpie's low-rank modified mass matrix, centred rater
  effects), 2 chains, ``--ten-tune`` tuning steps and ``--ten-draws`` draws: sampling
  seconds, mean leapfrog steps and step size after tuning, min bulk ESS over everything
  ``ok`` judges, peak RSS (an in-memory fit; ``disagree fit`` streams its draws). A
  configuration that passes ``--ten-limit`` seconds is stopped and reported as such.

Run: ``.venv/bin/python benchmarks/compile_levers.py [compile] [ten] [--draws 1000]
[--ten-tune 300 --ten-draws 300] [--ten-configs diagonal,low-rank,centred]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

START = time.perf_counter()  # before the heavy imports
FACTORS = ["gender", "politics", "ethnicity", "country"]
COMPILE = [  # (name, backend, extra environment, compile cache: "new" or "previous")
    ("numba (fit's default)", "numba", {}, "new"),
    ("numba, refit (warm cache)", "numba", {}, "previous"),
    ("numba, NUMBA_OPT=0", "numba", {"NUMBA_OPT": "0"}, "new"),
    ("JAX backend", "jax", {}, "new"),
]
TEN = {"diagonal": {}, "low-rank": {"low_rank": True}, "centred": {"rater_centred": True}}


def compile_one(backend: str, draws: int) -> dict:
    """Build, compile and sample the ``onedim`` model with nutpie's ``backend``."""
    import warnings

    warnings.simplefilter("ignore")
    import arviz as az
    import nutpie

    from disagree.data import simulate_survey
    from disagree.model.build import build_model
    from disagree.model.fitting import default_centring
    from disagree.model.likelihood import register_jax
    from disagree.model.sampling import SamplerSettings, one_blas_thread
    from disagree.model.spec import make_spec, model_data

    table = simulate_survey(seed=0, dimensions=("toxicity",), prompts_per_rater=5).table
    spec = make_spec(table, FACTORS, None, None, None, None, "dummy")
    centring = default_centring(table, spec)
    model = build_model(spec, model_data(table, spec), rater_centred=centring["rater"],
                        item_centred=centring["item"])
    kept = SamplerSettings("nutpie", draws, draws, 2, 0, False).kept(model.named_vars)
    t0 = time.perf_counter()
    if backend == "jax":
        register_jax()
    options = {"backend": "jax", "gradient_backend": "pytensor",  # the cut points' initval
               "freeze_model": False} if backend == "jax" else {}
    compiled = nutpie.compile_pymc_model(model, var_names=kept, **options)
    t1 = time.perf_counter()
    with one_blas_thread():
        idata = nutpie.sample(compiled, draws=draws, tune=draws, chains=2, cores=2, seed=0,
                              progress_bar=False)
    t2 = time.perf_counter()
    ess = az.ess(idata.posterior[["beta", "cutpoints", "rater_sd", "item_sd"]], method="bulk")
    return {"before_s": t0 - START, "compile_s": t1 - t0, "sampling_s": t2 - t1,
            "steps": float(idata.sample_stats.n_steps.mean()),
            "ess_min": min(float(v.min()) for v in ess.data_vars.values())}


def ten_one(config: str, tune: int, draws: int) -> dict:
    """Fit the ten-times survey with the options of ``TEN[config]``."""
    import warnings

    warnings.simplefilter("ignore")
    from disagree.data import simulate_survey
    from disagree.model import fit

    table = simulate_survey(seed=1, n_raters=10_950, n_prompts=600).table
    result = fit(table, ["gender", "politics", "ethnicity"], chains=2, tune=tune, draws=draws,
                 progress=False, seed=1, **TEN[config])
    stats, diag = result.idata.sample_stats, result.diagnostics
    return {"compile_s": diag["seconds"]["compile"], "sampling_s": diag["seconds"]["sampling"],
            "steps": float(stats.n_steps.mean()), "step_size": float(stats.step_size.mean()),
            "ess_min": diag["ess_bulk_min"], "ok": diag["ok"],
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def spawn(args: list[str], env: dict[str, str], limit: float | None = None) -> dict:
    """Run this script's ``--one`` with ``args`` in a fresh interpreter; its JSON line."""
    try:
        proc = subprocess.run([sys.executable, __file__, "--one", *args], capture_output=True,
                              text=True, env={**os.environ, **env}, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {limit:.0f} s"}
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("parts", nargs="*", default=["compile", "ten"])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--ten-tune", type=int, default=300)
    p.add_argument("--ten-draws", type=int, default=300)
    p.add_argument("--ten-configs", default="diagonal,low-rank")
    p.add_argument("--ten-limit", type=float, default=1800.0)
    p.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        kind, *rest = args.one
        out = compile_one(rest[0], int(rest[1])) if kind == "compile" else \
            ten_one(rest[0], int(rest[1]), int(rest[2]))
        print(json.dumps(out | {"process_s": time.perf_counter() - START}))
        return
    if "compile" in args.parts:
        print(f"compile: one dimension, 27,375 ratings; 2 chains x {args.draws} draws "
              f"(+{args.draws} tuning)")
        print(f"{'configuration':<28}{'process s':>10}{'before s':>9}{'compile s':>10}"
              f"{'sample s':>9}{'steps':>7}{'min ESS':>8}", flush=True)
        cache = None
        for name, backend, env, which in COMPILE:
            cache = tempfile.mkdtemp() if which == "new" or cache is None else cache
            r = spawn(["compile", backend, str(args.draws)],
                      env | {"PYTENSOR_FLAGS": f"base_compiledir={cache}"})
            if "error" in r:
                print(f"{name:<28} ERROR {r['error']}", flush=True)
                continue
            print(f"{name:<28}{r['process_s']:>10.1f}{r['before_s']:>9.1f}{r['compile_s']:>10.1f}"
                  f"{r['sampling_s']:>9.1f}{r['steps']:>7.1f}{r['ess_min']:>8.0f}", flush=True)
    if "ten" in args.parts:
        print(f"ten times: 10,950 raters, 600 prompts, 5 dimensions; 2 chains, "
              f"{args.ten_tune} tuning steps + {args.ten_draws} draws")
        print(f"{'configuration':<14}{'process s':>10}{'compile s':>10}{'sample s':>9}"
              f"{'steps':>7}{'step size':>10}{'min ESS':>8}{'ok':>6}{'peak GiB':>9}", flush=True)
        for name in args.ten_configs.split(","):
            r = spawn(["ten", name, str(args.ten_tune), str(args.ten_draws)], {},
                      args.ten_limit)
            if "error" in r:
                print(f"{name:<14} ERROR {r['error']}", flush=True)
                continue
            print(f"{name:<14}{r['process_s']:>10.1f}{r['compile_s']:>10.1f}"
                  f"{r['sampling_s']:>9.1f}{r['steps']:>7.1f}{r['step_size']:>10.3f}"
                  f"{r['ess_min']:>8.0f}{str(r['ok']):>6}{r['peak_gib']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
