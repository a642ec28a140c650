"""NUTS on a GPU (numpyro, JAX) against nutpie on the CPU, at 1x, 10x and 100x the study's size.

The survey is the study's shape on ONE dimension (toxicity): 1x is 1,095 raters and 300
responses, 27,375 ratings (25 a rater); 10x and 100x multiply the raters and the responses by
10 and 100 (273,750 and 2,737,500 ratings), so ratings per rater and per response stay as in the
study. The model is disagree's default (factors gender, politics, ethnicity, country).

Each configuration runs in a fresh interpreter (its own peak memory, its own JAX device state):

* ``numpyro``: ``disagree.model.fit(..., sampler="numpyro")`` on JAX's default device (the GPU
  when JAX sees one), the chains vectorised into one batched computation on that device,
  float32 by default (``--dtypes float32,float64`` to compare; the model is the same, only the
  arithmetic's precision changes);
* ``nutpie``: the default sampler on the CPU (one chain a core), by default at 1x only
  (``--nutpie-sizes``): at 10x/100x on 2 CPU cores it takes too long to be a benchmark.

Columns: ``wall s`` the whole ``fit`` call (model building, compilation, sampling,
diagnostics); ``sample s`` the sampler's own time (for numpyro it includes XLA's compilation of
the sampler, which JAX does on the first call); ``minESS`` the minimum bulk ESS over ALL
monitored parameters (coefficients, cut points, sds: ``diagnostics["ess_bulk_min"]``);
``ESS/s`` = minESS / wall s (and per sampling second); peak host memory (RSS) and, for JAX on a
GPU, peak device memory. ``ok`` is disagree's flag (R-hat <= 1.01, bulk ESS >= 400, no
divergences).

Run: ``.venv/bin/python benchmarks/gpu_fit.py [--sizes 1,10,100] [--draws 1000] [--tune N]
[--chains 4] [--dtypes float32] [--nutpie-sizes 1] [--budget-s S] [--out results.csv]``.
Quick CPU check: ``.venv/bin/python benchmarks/gpu_fit.py --sizes 1 --draws 200``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

STUDY = {"n_raters": 1095, "n_prompts": 60, "prompts_per_rater": 5}  # 27,375 ratings
FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US"}
COLUMNS = ["size", "ratings", "sampler", "dtype", "device", "chains", "draws", "tune", "wall_s",
           "compile_s", "sampling_s", "ess_bulk_min", "ess_per_wall_s", "ess_per_sampling_s",
           "leapfrogs_per_iter", "ms_per_leapfrog", "rhat_max", "divergences", "ok",
           "peak_rss_mib", "peak_device_mib", "error"]


def run_one(config: dict) -> dict:
    """Simulate the survey and fit one configuration in this process; return its figures."""
    import warnings

    warnings.simplefilter("ignore")
    if config["sampler"] == "numpyro":
        os.environ["DISAGREE_JAX_DTYPE"] = config["dtype"]
    from disagree.model import fit

    k = config["size"]
    table = survey_table(k)
    start = time.perf_counter()
    result = fit(table, FACTORS, REFERENCE, sampler=config["sampler"], draws=config["draws"],
                 tune=config["tune"], chains=config["chains"], seed=0, progress=False)
    wall = time.perf_counter() - start
    diag = result.diagnostics
    device, device_mib = "cpu", None
    if config["sampler"] == "numpyro":
        import jax

        dev = jax.devices()[0]
        kind = getattr(dev, "device_kind", "")
        device = dev.platform if kind.lower() in ("", dev.platform) else f"{dev.platform}:{kind}"
        stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
        if stats and "peak_bytes_in_use" in stats:
            device_mib = stats["peak_bytes_in_use"] / 2**20
    else:
        device = f"cpu:{min(config['chains'], os.cpu_count() or 1)} cores"
    ess = diag["ess_bulk_min"]
    steps = result.idata.sample_stats.get("n_steps") if "sample_stats" in result.idata else None
    # vectorised chains wait for the longest tree: per iteration count the max over chains
    leapfrogs = None if steps is None else float(
        steps.max("chain").mean() if config["sampler"] == "numpyro" else steps.mean())
    iterations = config["draws"] + config["tune"]
    return {"size": k, "ratings": len(table.ratings), "sampler": config["sampler"],
            "dtype": config["dtype"], "device": device, "chains": config["chains"],
            "draws": config["draws"], "tune": config["tune"], "wall_s": wall,
            "compile_s": diag["seconds"].get("compile"),
            "sampling_s": diag["seconds"].get("sampling"), "ess_bulk_min": ess,
            "ess_per_wall_s": ess / wall if ess is not None else None,
            "ess_per_sampling_s": ess / diag["seconds"]["sampling"] if ess is not None else None,
            "leapfrogs_per_iter": leapfrogs,
            "ms_per_leapfrog": None if not leapfrogs else
            1000 * diag["seconds"]["sampling"] / (iterations * leapfrogs),
            "rhat_max": diag["rhat_max"], "divergences": diag["divergences"], "ok": diag["ok"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_device_mib": device_mib, "error": None}


GRADIENT_COLUMNS = ["size", "ratings", "dtype", "device", "chains", "compile_s", "ms_per_gradient",
                    "ns_per_rating", "error"]


def survey_table(k: int):
    """The study-shaped one-dimension survey at ``k`` times the study's size."""
    from disagree.data import simulate_survey

    return simulate_survey(seed=0, dimensions=("toxicity",), n_raters=STUDY["n_raters"] * k,
                           n_prompts=STUDY["n_prompts"] * k,
                           prompts_per_rater=STUDY["prompts_per_rater"]).table


def run_gradient(config: dict) -> list[dict]:
    """Time one gradient of the log density (all chains at once, vmapped) on JAX's device.

    The same JAX function numpyro's NUTS calls at every leapfrog step (``fit``'s default
    parametrisation), at the model's initial point; the mean of ``repeats`` calls after one;
    one row per dtype (JAX's x64 switched per dtype in this process).
    """
    import warnings

    warnings.simplefilter("ignore")
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pytensor.link.jax.dispatch  # noqa: F401  (sets x64 from floatX on import)
    from pymc.model.transform.optimization import freeze_dims_and_data
    from pymc.sampling.jax import get_jaxified_logp

    from disagree.model.build import build_model
    from disagree.model.likelihood import register_jax
    from disagree.model.sampling import _frozen
    from disagree.model.spec import make_spec, model_data

    table = survey_table(config["size"])
    spec = make_spec(table, FACTORS, REFERENCE, None, None, None, "dummy")
    model = build_model(spec, model_data(table, spec), rater_centred=True)  # fit's default here
    frozen, _ = _frozen(model, freeze_dims_and_data)
    register_jax()
    logp = get_jaxified_logp(frozen, negative_logp=False)
    point = frozen.initial_point()
    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", "")
    rows = []
    for name in config["dtypes"]:
        jax.config.update("jax_enable_x64", name == "float64")
        dtype = jnp.float64 if name == "float64" else jnp.float32
        x = [jnp.asarray(np.repeat(np.asarray(point[v.name])[None], config["chains"], 0), dtype)
             for v in frozen.value_vars]
        grad = jax.jit(jax.vmap(jax.value_and_grad(lambda *a: logp(a))))
        t0 = time.perf_counter()
        jax.block_until_ready(grad(*x))
        t1 = time.perf_counter()
        for _ in range(config["repeats"]):
            out = grad(*x)
        jax.block_until_ready(out)
        ms = 1000 * (time.perf_counter() - t1) / config["repeats"]
        rows.append({"size": config["size"], "ratings": len(table.ratings), "dtype": name,
                     "device": dev.platform if kind.lower() in ("", dev.platform) else
                     f"{dev.platform}:{kind}", "chains": config["chains"], "compile_s": t1 - t0,
                     "ms_per_gradient": ms,
                     "ns_per_rating": 1e6 * ms / (len(table.ratings) * config["chains"]),
                     "error": None})
    return rows


def spawn(config: dict, timeout: float | None) -> dict:
    """Run ``config`` in a fresh interpreter and parse its JSON line."""
    try:
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(config)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"stopped after {timeout:.0f} s (time budget)"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {**config, "error": tail[:300]}
    return json.loads(lines[-1])


def fmt(v: object, spec: str) -> str:
    width = "".join(c for c in spec if c.isdigit() or c == ".").split(".")[0]
    return f"{'-':>{width}}" if v is None else format(v, spec)


def print_row(r: dict) -> None:
    if r.get("error"):
        print(f"{r['size']:>4}x {r['sampler']:<8}{r.get('dtype') or '':<8} ERROR {r['error']}",
              flush=True)
        return
    print(f"{r['size']:>4}x{r['ratings']:>10,} {r['sampler']:<8}{r['dtype']:<8}"
          f"{r['device'][:22]:<23}{r['chains']:>3}{r['wall_s']:>9.1f}{fmt(r['compile_s'], '8.1f')}"
          f"{fmt(r['sampling_s'], '9.1f')}{fmt(r['ess_bulk_min'], '8.0f')}"
          f"{fmt(r['ess_per_wall_s'], '9.2f')}{fmt(r['ess_per_sampling_s'], '10.2f')}"
          f"{fmt(r.get('leapfrogs_per_iter'), '7.1f')}{fmt(r.get('ms_per_leapfrog'), '8.2f')}"
          f"{fmt(r['rhat_max'], '7.3f')}{r['divergences']:>5}{str(r['ok']):>6}"
          f"{r['peak_rss_mib']:>9.0f}{fmt(r['peak_device_mib'], '9.0f')}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,100", help="multiples of the study's size")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=None, help="default: --draws")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--dtypes", default="float32",
                        help="numpyro precisions, comma-separated: float32, float64")
    parser.add_argument("--nutpie-sizes", default="1",
                        help="sizes also fitted with nutpie on the CPU ('' for none)")
    parser.add_argument("--nutpie-chains", type=int, default=None,
                        help="nutpie's chains (default: --chains, one a core)")
    parser.add_argument("--no-numpyro", action="store_true", help="nutpie rows only")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no configuration after this many seconds; stop a running "
                             "one at the budget")
    parser.add_argument("--out", help="write the rows to this CSV (rewritten after each row)")
    parser.add_argument("--gradients", action="store_true",
                        help="instead of fits, time one log-density gradient (all chains) per "
                             "size and dtype on JAX's default device")
    parser.add_argument("--repeats", type=int, default=50, help="gradients timed (--gradients)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        config = json.loads(args.one)
        print(json.dumps(run_gradient(config) if config.get("gradient") else run_one(config)))
        return
    if args.gradients:
        gradients(args)
        return
    tune = args.draws if args.tune is None else args.tune
    sizes = [int(s) for s in args.sizes.split(",") if s]
    nutpie_sizes = {int(s) for s in args.nutpie_sizes.split(",") if s}
    configs = []
    for k in sizes:  # per size: numpyro first, then nutpie on the CPU
        if not args.no_numpyro:
            configs += [{"size": k, "sampler": "numpyro", "dtype": d, "chains": args.chains,
                         "draws": args.draws, "tune": tune} for d in args.dtypes.split(",")]
        if k in nutpie_sizes:
            configs.append({"size": k, "sampler": "nutpie", "dtype": "float64",
                            "chains": args.nutpie_chains or args.chains, "draws": args.draws,
                            "tune": tune})
    print(f"one dimension (toxicity), study size 1x = 1,095 raters, 27,375 ratings; "
          f"draws={args.draws} tune={tune}; minESS = min bulk ESS over all monitored "
          "parameters; ESS/s per wall second of the whole fit call (and per sampling second)",
          flush=True)
    print(f"{'size':>5}{'ratings':>10} {'sampler':<8}{'dtype':<8}{'device':<23}{'ch':>3}"
          f"{'wall s':>9}{'comp s':>8}{'sample s':>9}{'minESS':>8}{'ESS/s':>9}{'ESS/s smp':>10}"
          f"{'leapf':>7}{'ms/leap':>8}{'R-hat':>7}{'div':>5}{'ok':>6}{'RSS MiB':>9}"
          f"{'dev MiB':>9}", flush=True)
    start, rows = time.perf_counter(), []
    for config in configs:
        left = None if args.budget_s is None else args.budget_s - (time.perf_counter() - start)
        if left is not None and left <= 0:
            print(f"{config['size']:>4}x {config['sampler']:<8}{config['dtype']:<8} skipped: "
                  "time budget spent", flush=True)
            continue
        row = spawn(config, left)
        rows.append(row)
        print_row(row)
        if args.out:
            with open(args.out, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)


def gradients(args: argparse.Namespace) -> None:
    """Print (and write) the gradient timings of ``--gradients``."""
    print(f"one log-density gradient, {args.chains} chains vmapped, mean of {args.repeats}",
          flush=True)
    print(f"{'size':>5}{'ratings':>11} {'dtype':<8}{'device':<23}{'ch':>3}{'comp s':>8}"
          f"{'ms/grad':>9}{'ns/rating':>10}", flush=True)
    start, rows = time.perf_counter(), []
    for k in [int(s) for s in args.sizes.split(",") if s]:
        config = {"gradient": True, "size": k, "dtypes": args.dtypes.split(","),
                  "chains": args.chains, "repeats": args.repeats}
        left = None if args.budget_s is None else args.budget_s - (time.perf_counter() - start)
        if left is not None and left <= 0:
            print(f"{k:>4}x skipped: time budget spent", flush=True)
            continue
        result = spawn(config, left)
        for r in result if isinstance(result, list) else [result]:
            rows.append(r)
            if r.get("error"):
                print(f"{k:>4}x ERROR {r['error']}", flush=True)
                continue
            print(f"{k:>4}x{r['ratings']:>11,} {r['dtype']:<8}{r['device'][:22]:<23}"
                  f"{r['chains']:>3}{r['compile_s']:>8.1f}{r['ms_per_gradient']:>9.3f}"
                  f"{r['ns_per_rating']:>10.2f}", flush=True)
        if args.out:
            with open(args.out, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=GRADIENT_COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)


if __name__ == "__main__":
    main()
