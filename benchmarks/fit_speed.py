"""Sampling speed and memory of disagree's model against bambi + nutpie, in one run.

Parts (each configuration runs in a fresh subprocess, so peak memory is its own):

* ``onedim``: one dimension of a survey with 1,095 raters and 27,375 ratings on that dimension
  (each rater rates 25 responses). Min bulk ESS per second of sampling over the effect
  parameters (the coefficients) for (a) bambi with nutpie on
  ``rating ~ 0 + dummies + (1|rater_id) + (1|item_id)`` and (b) disagree's model with its
  default sampler, plus disagree variants one lever at a time; prints the ratio to bambi.
* ``joint``: the joint five-dimension fit of the default survey (target < 3 min, ok flag).
* ``interactions``: one dimension (the ``onedim`` design, with a politics x item interaction of
  sd 0.6 in the data) with ``interactions=["politics"]``, against bambi + nutpie on
  ``... + (1|item_id) + (1|item_id:politics)``, non-centred (the default) and centred
  deviations.
  Here the headline is whole-process: each side's subprocess wall time (imports, reading the
  same Parquet file, building, compiling, sampling, diagnostics) and the minimum bulk ESS over
  *all* monitored parameters (coefficients, cut points/thresholds and every sd). Each disagree
  variant runs twice: "cold" with an empty PyTensor compile cache (a first fit on a new
  machine) and "warm" with the cache that run left (a refit of a model of the same
  structure); bambi runs cold.
* ``interactions-null``: the same design with no interaction in the data, fitted with one:
  whether each parametrisation still mixes when ``item_group_sd`` sits near zero.
* ``joint-interactions``: the joint five-dimension fit of the default survey with interactions
  on politics and ethnicity (on every dimension, and on emotional awareness only, where the
  bundled survey has them), and with the survey's own interaction cells, next to the same fit
  without; each samples until ok (target < 4 min, ok flag).
* ``cutpoints``: the ``onedim`` design with its cut points shifted (``--cut-shifts``: negative
  makes the lowest category rare, positive the highest), whole process as ``interactions``:
  bambi + nutpie, then disagree with its cut points anchored at the median rating (the
  default) and with PyMC's ``ordered`` from the lowest up, both on one PyTensor compile cache
  that a first, printed, cold run of the default fills.
* ``large``: a ten-times-larger survey (10,950 raters), ADVI and NUTS, with peak memory.
* ``onedim-process``: the ``onedim`` survey from one Parquet file, what a user waits for: the
  whole ``disagree fit`` command (a subprocess: imports, reading, validation, compile,
  sampling, diagnostics, writing the fit directory), cold (empty PyTensor compile cache) and
  warm (its cache), against bambi + nutpie's whole script (imports, reading, building,
  compile, sampling, ESS, writing ``idata`` to NetCDF), also cold and warm, each disagree row
  against bambi's in the same state (a first fit against a first fit, a refit against a
  refit; until 2026-12-08 the refit was set against bambi's first fit); min bulk ESS over every
  monitored parameter on both sides (disagree: coefficients, cut points, sds; bambi: its
  coefficients, thresholds and sigmas), 2 chains x ``--draws`` draws after as many tuning
  steps, exactly (no sampling until ok).

Run: ``.venv/bin/python benchmarks/fit_speed.py [onedim] [joint] [large] [interactions]
[interactions-null] [joint-interactions] [onedim-process] [cutpoints] [--draws N]
[--surveys 0:1,7:0.5,11:2] [--cut-shifts -1.5,0,1.5]``.
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
import warnings

import arviz as az

PROCESS_START = time.perf_counter()  # before the heavy imports: whole-process wall time

COVARIATES = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US"}
ONEDIM = [  # (name, options of disagree.model.fit)
    ("disagree default", {}),
    ("  rater effects non-centred", {"rater_centred": False}),
    ("  item effects Normal, not zero-sum", {"item_zero_sum": False}),
    ("  + low-rank mass matrix", {"low_rank": True}),
    ("  tune 300", {"tune": 300}),
]


def run_one(config: dict) -> dict:
    """Fit one configuration (in this process) and return its figures."""
    warnings.simplefilter("ignore")
    from disagree.data import load_default_survey, simulate_survey
    from disagree.model import bambi_model, fit

    draws, tune = config["draws"], config.get("tune", config["draws"])
    interactions = config.get("interactions")
    if config["data"] == "file":
        from disagree.data import load_ratings

        table = load_ratings(config["path"], scale=5)
    elif config["data"] == "onedim":
        table = simulate_survey(seed=0, dimensions=("toxicity",), prompts_per_rater=5).table
    elif config["data"] == "joint":
        table = load_default_survey()
    else:
        table = simulate_survey(seed=0, n_raters=10_950, n_prompts=600).table
    start = time.perf_counter()
    if config["name"] == "bambi + nutpie":
        import nutpie

        model = bambi_model(table, "toxicity", COVARIATES, REFERENCE, interactions=interactions)
        model.build()
        pm_model = model.backend.model
        keep = [v.name for v in pm_model.free_RVs]  # bambi's own nutpie path drops "p" too
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(pm_model, var_names=keep)
        t1 = time.perf_counter()
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=2, cores=2, seed=0,
                              progress_bar=False)
        seconds = time.perf_counter() - t1
        names = [n for n in idata.posterior.data_vars if n in model.components["p"].common_terms]
        ess = az.ess(idata.posterior[names], method="bulk")
        min_ess = min(float(ess[n]) for n in names)
        every = names + [n for n in idata.posterior.data_vars
                         if n == "threshold" or n.endswith("_sigma")]
        ess_all = az.ess(idata.posterior[every], method="bulk")
        worst = min(every, key=lambda n: float(ess_all[n].min()))
        out = {"compile_s": t1 - t0, "sampling_s": seconds, "ok": None,
               "ess_bulk_min_all": float(ess_all[worst].min()), "worst": worst}
        if config.get("write"):  # what a user's script ends with
            idata.to_netcdf(os.path.join(tempfile.mkdtemp(), "bambi.nc"))
    else:
        options = {k: v for k, v in config.get("options", {}).items() if k != "tune"}
        result = fit(table, COVARIATES, REFERENCE, draws=draws, sampler=config.get(
            "sampler", "nutpie"), tune=config.get("options", {}).get("tune", tune),
            seed=0, chains=2, progress=False, interactions=interactions, **options)
        diag = result.diagnostics
        seconds = diag["seconds"]["sampling"]
        betas = [p for p in diag["parameters"] if p["parameter"].startswith("beta")]
        min_ess = min(p["ess_bulk"] for p in betas) if betas else float("nan")
        out = {"compile_s": diag["seconds"]["compile"], "sampling_s": seconds, "ok": diag["ok"],
               "rhat_max": diag["rhat_max"], "ess_bulk_min_all": diag["ess_bulk_min"],
               "divergences": diag["divergences"],
               "worst": min(diag["parameters"], key=lambda p: p["ess_bulk"])["parameter"],
               "draws_used": diag.get("extension", {}).get("draws_used", draws)}
    out.update(name=config["name"], ratings=len(table.ratings), min_ess_beta=min_ess,
               ess_per_s=min_ess / seconds, wall_s=time.perf_counter() - start,
               process_s=time.perf_counter() - PROCESS_START,
               peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def spawn(config: dict) -> dict:
    """Run ``config`` in a fresh interpreter and parse its JSON line.

    ``config["compiledir"]``, when given, is PyTensor's ``base_compiledir`` for the run: its
    numba cache of compiled operations. A new, empty folder is a first fit on a new machine
    (cold); the folder of an earlier run of the same model is a refit (warm).
    """
    env = dict(os.environ)
    if "compiledir" in config:
        env["PYTENSOR_FLAGS"] = f"base_compiledir={config['compiledir']}"
    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(config)],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        return {"name": config["name"], "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def whole_process(configs: list[dict]) -> None:
    """Run each config on the same Parquet file; print whole-process ESS/s over all parameters."""
    print(f"{'configuration':<36}{'process s':>10}{'compile s':>10}{'sample s':>9}"
          f"{'minESS all':>11}{'ESS/s':>8}{'x bambi':>8}{'minESS coef':>12}{'x coef':>7}"
          f"{'x (sampling, coef)':>19}"
          f"{'ok':>6}{'draws':>6}{'peak MiB':>9}  slowest", flush=True)
    base = base_coef = base_whole_coef = None
    for config in configs:
        r = spawn(config)
        if "error" in r:
            print(f"{r['name']:<36} ERROR {r['error']}", flush=True)
            continue
        rate = r["ess_bulk_min_all"] / r["process_s"]
        coef_rate = r["min_ess_beta"] / r["sampling_s"]
        whole_coef = r["min_ess_beta"] / r["process_s"]
        if r["name"].startswith("bambi"):
            base, base_coef, base_whole_coef = rate, coef_rate, whole_coef
        print(f"{r['name']:<36}{r['process_s']:>10.1f}{fmt(r['compile_s'], '10.1f')}"
              f"{r['sampling_s']:>9.1f}{r['ess_bulk_min_all']:>11.0f}{rate:>8.2f}"
              f"{fmt(rate / base if base else None, '8.1f')}{r['min_ess_beta']:>12.0f}"
              f"{fmt(whole_coef / base_whole_coef if base_whole_coef else None, '7.1f')}"
              f"{fmt(coef_rate / base_coef if base_coef else None, '19.1f')}"
              f"{str(r['ok']):>6}{r.get('draws_used', config['draws']):>6}"
              f"{r['peak_mib']:>9.0f}  {r.get('worst', '')}", flush=True)


def cli_fit(path: str, draws: int, compiledir: str) -> dict:
    """Run the whole ``disagree fit`` command on ``path``; wall time, peak RSS and its ESS."""
    out = tempfile.mkdtemp()
    rss = os.path.join(out, "peak_rss_kib")
    reference = ",".join(f"{k}={v}" for k, v in REFERENCE.items())
    command = ["/usr/bin/time", "-f", "%M", "-o", rss,
               os.path.join(os.path.dirname(sys.executable), "disagree"), "fit", path,
               "--out", os.path.join(out, "fit"), "--factors", ",".join(COVARIATES),
               "--reference", reference, "--draws", str(draws), "--tune", str(draws),
               "--chains", "2", "--seed", "0"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}"})
    wall = time.perf_counter() - start
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    with open(os.path.join(out, "fit", "diagnostics.json"), encoding="utf-8") as f:
        diag = json.load(f)
    betas = [p["ess_bulk"] for p in diag["parameters"] if p["parameter"].startswith("beta")]
    worst = min(diag["parameters"], key=lambda p: p["ess_bulk"])["parameter"]
    with open(rss, encoding="utf-8") as f:
        peak = int(f.read().split()[-1]) / 1024
    return {"process_s": wall, "compile_s": diag["seconds"]["compile"],
            "sampling_s": diag["seconds"]["sampling"], "ess_bulk_min_all": diag["ess_bulk_min"],
            "min_ess_beta": min(betas), "ok": diag["ok"], "peak_mib": peak, "worst": worst}


def onedim_process(draws: int, seed: int = 0, scale: float = 1.0) -> None:
    """The ``onedim-process`` part: the whole ``disagree fit`` command against bambi's script.

    ``seed`` and ``scale`` make other surveys of the same shape: the simulator's seed, and the
    paper-calibrated group differences (``targets``, relative percentages) times ``scale``.
    """
    from disagree.data import simulate_survey
    from disagree.data.simulate import PAPER_TARGETS

    targets = {k: v * scale for k, v in PAPER_TARGETS.items()  # toxicity's: one dimension
               if k.split("|")[0] == "toxicity"}
    path = str(simulate_survey(seed=seed, dimensions=("toxicity",), prompts_per_rater=5,
                               targets=targets).save(tempfile.mkdtemp()))
    print(f"one dimension, 27,375 ratings, survey seed {seed}, group differences x {scale}; "
          f"draws={draws} tune={draws} chains=2; ESS/s = min bulk ESS over ALL parameters / "
          "whole-process seconds")
    print(f"{'configuration':<30}{'process s':>10}{'compile s':>10}{'sample s':>9}"
          f"{'minESS all':>11}{'ESS/s':>8}{'x bambi':>8}{'minESS coef':>12}{'x coef':>7}"
          f"{'ok':>6}{'peak MiB':>9}  slowest parameter", flush=True)
    bambi_cache, cache = tempfile.mkdtemp(), tempfile.mkdtemp()
    config = {"name": "bambi + nutpie", "data": "file", "path": path, "draws": draws,
              "write": True, "compiledir": bambi_cache}
    bambi = {state: spawn(config) for state in ("cold", "warm")}  # warm: a refit on its cache
    rows = [(f"bambi + nutpie (script), {state}", state, bambi[state]) for state in bambi]
    rows += [(f"disagree fit, {state}", state, cli_fit(path, draws, cache))
             for state in ("cold", "warm")]
    for name, state, r in rows:  # each against bambi in the same state of its compile cache
        if "error" in r:
            print(f"{name:<30} ERROR {r['error']}", flush=True)
            continue
        base = bambi[state]
        rate = r["ess_bulk_min_all"] / r["process_s"]
        ratio = coef = fmt(None, "8.1f")
        if "error" not in base:
            ratio = fmt(rate / (base["ess_bulk_min_all"] / base["process_s"]), "8.1f")
            coef = fmt(r["min_ess_beta"] / r["process_s"]
                       / (base["min_ess_beta"] / base["process_s"]), "7.1f")
        print(f"{name:<30}{r['process_s']:>10.1f}{r['compile_s']:>10.1f}{r['sampling_s']:>9.1f}"
              f"{r['ess_bulk_min_all']:>11.0f}{rate:>8.2f}{ratio}"
              f"{r['min_ess_beta']:>12.0f}{coef}{str(r['ok']):>6}{r['peak_mib']:>9.0f}"
              f"  {r['worst']}",
              flush=True)


def cutpoints(draws: int, shifts: list[float]) -> None:
    """The ``cutpoints`` part: anchored against ``ordered`` cut points, rare end categories."""
    from disagree.data import simulate_survey

    cache = tempfile.mkdtemp()
    for i, shift in enumerate(shifts):
        survey = simulate_survey(seed=0, dimensions=("toxicity",), prompts_per_rater=5,
                                 cut_shift={"toxicity": shift})
        path = str(survey.save(tempfile.mkdtemp()))
        shares = survey.table.ratings["rating"].value_counts(normalize=True).sort_index()
        print(f"one dimension, cut points shifted by {shift:+}: rating shares "
              f"{', '.join(f'{v:.3f}' for v in shares)}; draws={draws} tune={draws} chains=2; "
              "ESS/s = min bulk ESS over ALL parameters / whole-process seconds")
        common = {"data": "file", "path": path, "draws": draws, "compiledir": cache}
        runs = [{**common, "name": "bambi + nutpie", "compiledir": tempfile.mkdtemp()}]
        if i == 0:
            runs.append({**common, "name": "disagree anchored, cold"})
        runs += [{**common, "name": "disagree anchored (default)"},
                 {**common, "name": "disagree ordered", "options": {"cutpoints_anchored": False}}]
        whole_process(runs)


def fmt(v: object, spec: str) -> str:
    """Format ``v`` with ``spec``; ``None`` as a dash of the same width."""
    return format("-", ">" + spec.split(".")[0]) if v is None else format(v, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parts", nargs="*", default=["onedim", "joint", "large"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--max-draws", type=int, default=4000,
                        help="joint-interactions: sample until ok up to this many draws")
    parser.add_argument("--large-samplers", default="advi,nutpie",
                        help="samplers for the ten-times-larger survey")
    parser.add_argument("--surveys", default="0:1",
                        help="onedim-process: SEED:SCALE,... surveys (seed of the simulator, "
                             "group differences times SCALE)")
    parser.add_argument("--cut-shifts", default="-1.5,0,1.5",
                        help="cutpoints: shifts of the cut points (negative: lowest rare)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return
    if "interactions" in args.parts:
        from disagree.data import simulate_survey

        path = simulate_survey(seed=0, dimensions=("toxicity",), prompts_per_rater=5,
                               interactions={"toxicity": {"politics": 0.6}}).save(
            tempfile.mkdtemp())
        common = {"data": "file", "path": str(path), "draws": args.draws,
                  "interactions": ["politics"]}
        print(f"one dimension, politics interaction; draws={args.draws} tune={args.draws} "
              "chains=2; ESS/s = min bulk ESS over ALL parameters / whole-process seconds")
        runs = [{**common, "name": "bambi + nutpie", "compiledir": tempfile.mkdtemp()}]
        for label, centred in (("non-centred (default)", False), ("centred", True)):
            cache = tempfile.mkdtemp()  # cold: an empty compile cache; warm: the same again
            runs += [{**common, "name": f"disagree, {label}, {state}", "compiledir": cache,
                      "options": {"interaction_centred": centred}}
                     for state in ("cold", "warm")]
        whole_process(runs)
    if "interactions-null" in args.parts:
        from disagree.data import simulate_survey

        path = simulate_survey(seed=0, dimensions=("toxicity",), prompts_per_rater=5,
                               interactions={}).save(tempfile.mkdtemp())
        print(f"one dimension, NO interaction in the data, fitted with interactions=['politics']"
              f"; draws={args.draws}: which parametrisation survives item_group_sd near zero")
        whole_process([{"data": "file", "path": str(path), "draws": args.draws,
                        "interactions": ["politics"], "name": f"disagree, {label}",
                        "options": {"interaction_centred": centred}}
                       for label, centred in (("non-centred (default)", False),
                                              ("centred", True))])
    if "joint-interactions" in args.parts:
        print(f"joint fit of the default survey (5 dimensions), whole process; {args.draws} "
              f"draws a chain, then on in steps of {args.draws} until ok or {args.max_draws}")
        joint = {"data": "joint", "draws": args.draws,
                 "options": {"max_draws": args.max_draws}}
        whole_process([{**joint, "name": "no interactions"},
                       {**joint, "name": "politics, ethnicity: every dim",
                        "interactions": ["politics", "ethnicity"]},
                       {**joint, "name": "politics, ethnicity: EA only",
                        "interactions": {"emotional_awareness": ["politics", "ethnicity"]}},
                       {**joint, "name": "the survey's cells (as the demo)",
                        "interactions": {"toxicity": ["gender"],
                                         "emotional_awareness": ["politics", "ethnicity"]}}])
    if "cutpoints" in args.parts:
        cutpoints(args.draws, [float(v) for v in args.cut_shifts.split(",")])
    if "onedim-process" in args.parts:
        for survey in args.surveys.split(","):
            seed, scale = survey.split(":")
            onedim_process(args.draws, int(seed), float(scale))
    configs = []
    if "onedim" in args.parts:
        configs.append({"name": "bambi + nutpie", "data": "onedim", "draws": args.draws})
        configs += [{"name": name, "data": "onedim", "draws": args.draws, "options": options}
                    for name, options in ONEDIM]
    if "joint" in args.parts:
        configs.append({"name": "joint 5 dims (default survey)", "data": "joint",
                        "draws": args.draws})
    if "large" in args.parts:
        configs += [{"name": f"10x survey, {s}", "data": "large", "draws": args.draws,
                     "sampler": s} for s in args.large_samplers.split(",")]
    if not configs:
        return
    print(f"draws={args.draws} tune={args.draws} chains=2; ESS/s = min bulk ESS over the "
          "coefficients / sampling seconds (compile excluded); 'x incl.' counts compile too")
    print(f"{'configuration':<34}{'ratings':>9}{'compile s':>10}{'sample s':>10}"
          f"{'minESS':>8}{'ESS/s':>8}{'x bambi':>8}{'ok':>6}{'peak MiB':>9}{'x incl.':>8}",
          flush=True)
    base = base_total = None
    for config in configs:  # each row is printed as soon as it is measured
        r = spawn(config)
        if "error" in r:
            print(f"{r['name']:<34} ERROR {r['error']}", flush=True)
            continue
        total = r["min_ess_beta"] / (r["sampling_s"] + (r["compile_s"] or 0.0))
        if r["name"] == "bambi + nutpie":
            base, base_total = r["ess_per_s"], total
        ratio = r["ess_per_s"] / base if base else None
        ratio_total = total / base_total if base_total else None
        print(f"{r['name']:<34}{r['ratings']:>9,}{fmt(r['compile_s'], '10.1f')}"
              f"{r['sampling_s']:>10.1f}{r['min_ess_beta']:>8.0f}{r['ess_per_s']:>8.1f}"
              f"{fmt(ratio, '8.1f')}{str(r['ok']):>6}{r['peak_mib']:>9.0f}"
              f"{fmt(ratio_total, '8.1f')}", flush=True)


if __name__ == "__main__":
    main()
