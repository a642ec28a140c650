"""NUTS's target acceptance rate against ESS and time, on surveys of the study's size.

For each survey (one dimension, 1,095 raters, 27,375 ratings; simulator seed and the paper's
group differences times a scale) the model is compiled once, then sampled by nutpie with each
target (2 chains x 1,000 draws after 1,000 tuning steps, one BLAS thread a chain). Printed:
sampling seconds, mean leapfrog steps a draw, divergences, and the min bulk ESS over every
monitored parameter (coefficients, cut points, sds) and over the coefficients.

Run: ``.venv/bin/python benchmarks/target_accept.py --targets 0.8,0.65,0.5
--surveys 0:1,7:0.5,11:2``
"""

from __future__ import annotations

import argparse
import time
import warnings

FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", default="0.8,0.65,0.5")
    p.add_argument("--surveys", default="0:1,7:0.5,11:2", help="SEED:SCALE,...")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    import arviz as az
    import nutpie

    from disagree.data import simulate_survey
    from disagree.data.simulate import PAPER_TARGETS
    from disagree.model import make_spec
    from disagree.model.build import build_model
    from disagree.model.fitting import default_centring
    from disagree.model.sampling import SamplerSettings, one_blas_thread
    from disagree.model.spec import model_data

    for survey in args.surveys.split(","):
        seed, scale = int(survey.split(":")[0]), float(survey.split(":")[1])
        targets = {k: v * scale for k, v in PAPER_TARGETS.items() if k.startswith("toxicity|")}
        table = simulate_survey(seed=seed, dimensions=("toxicity",), prompts_per_rater=5,
                                targets=targets).table
        spec = make_spec(table, FACTORS, REFERENCE, None, None, None, "dummy")
        centring = default_centring(table, spec)
        model = build_model(spec, model_data(table, spec), rater_centred=centring["rater"],
                            item_centred=centring["item"])
        kept = SamplerSettings("nutpie", 1000, 1000, 2, 0, False).kept(model.named_vars)
        compiled = nutpie.compile_pymc_model(model, var_names=kept)
        for target in (float(t) for t in args.targets.split(",")):
            start = time.perf_counter()
            with one_blas_thread():
                idata = nutpie.sample(compiled, draws=1000, tune=1000, chains=2, cores=2, seed=0,
                                      progress_bar=False, target_accept=target)
            seconds = time.perf_counter() - start
            ess = az.ess(idata.posterior[["beta", "cutpoints", "rater_sd", "item_sd"]])
            stats = idata.sample_stats
            print(f"survey {survey} target {target}: sampling {seconds:.1f} s, "
                  f"steps {float(stats.n_steps.mean()):.1f}, "
                  f"divergences {int(stats.diverging.sum())}, "
                  f"min bulk ESS all {min(float(ess[v].min()) for v in ess.data_vars):.0f}, "
                  f"coefficients {float(ess['beta'].min()):.0f}", flush=True)


if __name__ == "__main__":
    main()
